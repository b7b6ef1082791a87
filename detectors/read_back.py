"""Did the watermark just written come out readable? The check ``aigc label`` and the HTTP service's
``/v1/label`` make on a labeled picture (the library's callers can call it too).

It lives with the detectors because it is one: ``labeler`` (the writing side) never imports them."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["LOW_QUALITY_NOTE", "OTHER_WATERMARK_NOTE", "UNREAD_WATERMARK_NOTE", "UNREADABLE_OUTPUT_NOTE",
           "unread_watermark"]

#: The warning when the watermark a label call wrote cannot be read back from its output.
UNREAD_WATERMARK_NOTE = ("the watermark was embedded but cannot be read back from the output (this content "
                         "gives the invisible mark too little to ride on: a small picture, noise, a pattern "
                         "that repeats every 64 or 128 px, a single tiny frame, a held tone, a few seconds "
                         "of sound...); do not rely on it for this file")
#: Output qualities under this (JPEG, lossy WebP, AVIF) are named as the likely cause of a mark that does
#: not read back. Measured 2026-12-08 on samples/photo (480 x 419): the mark read back from JPEG at 20 and
#: up, and from WebP and AVIF at 60 and up (not at 50, and WebP not at 52 or 58 either).
LOW_QUALITY = 60
#: The warning instead of :data:`UNREAD_WATERMARK_NOTE` when the output was encoded at a quality under
#: :data:`LOW_QUALITY`: the cause is the setting, not the content.
LOW_QUALITY_NOTE = ("the watermark was embedded but cannot be read back from the output: it was encoded at "
                    "quality {quality}, too low for the invisible mark (a lossy re-encode under quality "
                    f"{LOW_QUALITY} can wipe it out); label again with a higher --quality (quality= in "
                    "Python; default 95), or do not rely on it for this file")
#: The warning when the output reads as another payload of the same key: the input was marked already.
OTHER_WATERMARK_NOTE = ("the output still carries an earlier watermark of this key (payload {payload}), and "
                        "the new mark cannot be read under it: the input was already watermarked with this "
                        "key; label the unmarked original instead")
#: Audio up to this long (s) is read back (about 0.05-0.15 s of CPU); longer audio is not: a payload
#: read needs a few seconds of sound and the mark repeats every 3.07 s, so a file that long that does
#: not read back is rare (measured 2026-12-06: speech cut to 1.5-2.5 s carried a mark that its own
#: verify could not read, 3 s and more read back), and reading a long soundtrack costs much more.
READ_BACK_AUDIO_SECONDS = 30.0
#: The start of the warning when the output itself cannot be read (the reason follows in brackets): it
#: says nothing about the mark, so it must not blame the content.
UNREADABLE_OUTPUT_NOTE = "the watermark could not be read back: the output could not be read"


def unread_watermark(output: str | os.PathLike[str] | bytes | bytearray | memoryview, result: Any,
                     key: bytes | None, *, quality: int | None = None) -> str | None:
    """A warning when the watermark just written (a picture's, short audio's or small video's) is not
    found in ``output``; else None.

    Parameters
    ----------
    output : path-like or bytes-like
        The labeled file: the ``dst`` of ``label(path, ..., dst=...)`` / ``label_file``, or the bytes
        ``label(data, ...)`` returned.
    result : labeler.pipeline.LabelResult or labeler.AIGCLabel
        What the label call returned (its ``layers["watermark"]`` and ``format`` say whether a mark was
        written, and which). For bytes, which return no result, the :class:`~labeler.AIGCLabel` the call
        was given: the payload is derived from its ProduceID as the labeler does, the format is sniffed
        from ``output``, and the mark is taken as asked for (call this only with the watermark layer).
    key : bytes or None
        The key the mark was made with (None: nothing to check).
    quality : int or None
        The quality the label call encoded with (``quality=`` / ``--quality``), when the caller knows it.
        None: a JPEG's is read from its quantization tables (libjpeg's, as Pillow writes them); a WebP's
        or AVIF's is then unknown.

    Returns
    -------
    str or None
        None when the mark reads back (or there is nothing to check: no key, no mark written, not a
        picture); :data:`OTHER_WATERMARK_NOTE` when the output reads as another payload of the same key
        (the input was marked already); :data:`LOW_QUALITY_NOTE` when the mark is not found in a lossy
        output encoded at a quality under :data:`LOW_QUALITY`; :data:`UNREAD_WATERMARK_NOTE` when the
        output was read and the mark is not found in it otherwise; :data:`UNREADABLE_OUTPUT_NOTE` and the
        reason when the output could not be read at all.

    Raises
    ------
    labeler.errors.InvalidArgument
        ``result`` is neither a ``LabelResult`` nor an ``AIGCLabel``, ``output`` is neither a path
        nor bytes, or ``key`` is not bytes.

    A picture is read as ``verify --quick`` reads it (the geometry as given; ~10-40 ms at 1080p): the
    image budget follows the content, and pure noise leaves the mark unreadable. Audio of up to
    :data:`READ_BACK_AUDIO_SECONDS` is read by the audio detector (a clip of 1.5-2.5 s carries a mark
    it may not read). Video only when its frames are under
    :data:`labeler.watermark.transforms.RELIABLE_PIXELS` (a file on disk): the video mark has a uniform
    amplitude and reads from one frame in every benchmark cell at 360p and up, and a read-back cost
    0.2-0.45 s a 1080p clip, but at 128-144 px a side whether it reads depends on the content (QA
    2026-12-07: testsrc2 at 128 x 128, 129 x 129 and 136 x 136 was labeled and never read back,
    without a word) and the read costs little there. Not long audio, whose read-back would cost much
    more.

    Examples
    --------
    >>> body = label(upload_bytes, rec, layers="watermark,metadata", key=key)   # bytes in, bytes out
    >>> unread_watermark(body, rec, key)                                        # None: the mark reads back
    """
    from detectors import verify
    from labeler.errors import InvalidArgument
    from labeler.formats import medium
    from labeler.pipeline import LabelResult
    from labeler.record import AIGCLabel

    if not isinstance(output, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise InvalidArgument(f"output must be the labeled file's path or bytes, not {type(output).__name__}")
    if isinstance(result, LabelResult):
        mark = result.layers.get("watermark")
        if mark is None or mark.get("embedded") is False:
            return None
        fmt: str | None = result.format
        payload = mark.get("payload")
    elif isinstance(result, AIGCLabel):
        from labeler.watermark import payload_from_produce_id

        fmt, payload, mark = None, payload_from_produce_id(result.produce_id).hex(), None
    else:
        raise InvalidArgument("result must be the LabelResult the label call returned, or for bytes the "
                              f"AIGCLabel it was given, not {type(result).__name__}")
    if key is None:
        return None
    if fmt is None:
        fmt = _sniff(output)
        if fmt is None:  # the output cannot even be sniffed: verify says why, in its words
            return _unreadable(verify(output, layers="metadata").errors)
    kind = medium(fmt)
    if kind == "audio" and not _short_audio(output):
        return None
    if kind == "video" and not _small_video(output, mark):
        return None
    if kind not in ("image", "audio", "video"):
        return None
    report = verify(output, key=key, layers="quick" if kind == "image" else "watermark")
    if report.errors:
        return _unreadable(report.errors)
    found = report.watermark or {}
    if found.get("present") and found.get("payload") == payload:
        return None
    if found.get("present") and found.get("payload"):
        # the input already carried a mark of this key (a labeled file labeled again with another
        # ProduceID): the old mark still reads and the new one is lost under it, which "too little to
        # ride on" would misdescribe
        return OTHER_WATERMARK_NOTE.format(payload=found["payload"])
    if found.get("checked") is False:
        # the detector did not look (audio under its 1.5 s read): the label call's own note says so,
        # and blaming the content as well would send the user after the wrong cause
        return None
    low = _low_quality(output, fmt, quality)
    return UNREAD_WATERMARK_NOTE if low is None else LOW_QUALITY_NOTE.format(quality=low)


def _low_quality(output: str | os.PathLike[str] | bytes | bytearray | memoryview, fmt: str,
                 quality: int | None) -> int | None:
    """The quality the lossy ``output`` was encoded at when it is under :data:`LOW_QUALITY`, else None
    (a lossless output: PNG, TIFF, a lossless WebP; or a quality unknown)."""
    if fmt not in ("jpeg", "webp", "avif"):
        return None
    try:
        if isinstance(output, (bytes, bytearray, memoryview)):
            head = bytes(output[:4096])
        else:
            with open(output, "rb") as handle:
                head = handle.read(4096)
        if fmt == "webp" and _first_of(head, (b"VP8L", b"VP8 ")) == b"VP8L":
            return None  # a lossless WebP: no quality setting applies
        if quality is None and fmt == "jpeg":
            quality = _jpeg_quality(output)
    except OSError:
        return None
    return quality if isinstance(quality, int) and quality < LOW_QUALITY else None


def _first_of(head: bytes, tags: tuple[bytes, ...]) -> bytes | None:
    """Which of ``tags`` comes first in ``head`` (None: none is there)."""
    found = [(head.find(tag), tag) for tag in tags if tag in head]
    return min(found)[1] if found else None


#: The luminance table of ITU-T T.81 K.1, which libjpeg scales by its quality setting.
_IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
             14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
             92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


def _jpeg_quality(output: str | os.PathLike[str] | bytes | bytearray | memoryview) -> int | None:
    """The libjpeg quality (1-100) whose scaled luminance table is the JPEG's first one (natural order, as
    Pillow gives it), or None when it is no libjpeg table (a camera's) or cannot be read."""
    import io

    from PIL import Image

    source = io.BytesIO(bytes(output)) if isinstance(output, (bytes, bytearray, memoryview)) else output
    try:
        with Image.open(source) as im:
            table = list(getattr(im, "quantization", {}).get(0, ()))
    except (OSError, ValueError, SyntaxError):
        return None
    if len(table) != 64:
        return None
    for quality in range(1, 101):
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        scaled = [min(max((base * scale + 50) // 100, 1), 255) for base in _IJG_LUMA]
        if scaled == table:
            return quality
    return None


def _short_audio(output: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bool:
    """True when ``output`` is audio of at most :data:`READ_BACK_AUDIO_SECONDS` (unknown: False)."""
    from labeler.errors import LabelerError
    from labeler.media import ffmpeg as ff

    if isinstance(output, (bytes, bytearray, memoryview)):
        # no probe for bytes: the mark's size decides (~16 kB/s for the lossless formats' 44.1 kHz mono
        # would under-count compressed audio, so the read runs for anything up to 30 s at 128 kbit/s)
        return len(output) <= READ_BACK_AUDIO_SECONDS * 16_000
    try:
        duration = ff.probe(output).duration
    except (OSError, LabelerError):
        return False
    return duration is not None and duration <= READ_BACK_AUDIO_SECONDS


def _small_video(output: str | os.PathLike[str] | bytes | bytearray | memoryview,
                 mark: dict[str, Any] | None) -> bool:
    """True when ``output`` is a video file whose frames are under ``RELIABLE_PIXELS``: the size the
    label result's ``mark`` states (no probe), else probed (bytes, or a file that cannot be probed:
    False)."""
    from labeler.errors import LabelerError
    from labeler.media.video import video_info
    from labeler.watermark.transforms import RELIABLE_PIXELS

    if mark is not None and isinstance(mark.get("width"), int) and isinstance(mark.get("height"), int):
        return mark["width"] * mark["height"] < RELIABLE_PIXELS
    if isinstance(output, (bytes, bytearray, memoryview)):
        return False
    try:
        info = video_info(output)
    except (OSError, LabelerError):
        return False
    return info.width * info.height < RELIABLE_PIXELS


def _sniff(output: str | os.PathLike[str] | bytes | bytearray | memoryview) -> str | None:
    """The format of ``output``, or None when it cannot be read or is no known format."""
    from labeler.errors import LabelerError
    from labeler.formats import sniff_bytes, sniff_file

    try:
        if isinstance(output, (bytes, bytearray, memoryview)):
            return sniff_bytes(bytes(output))
        return sniff_file(output)
    except (OSError, ValueError, LabelerError):  # ValueError: a NUL in the path
        return None


def _unreadable(errors: list[str]) -> str:
    reason = errors[0] if errors else "unknown reason"
    return f"{UNREADABLE_OUTPUT_NOTE} ({reason})"
