"""The per-layer readers of :func:`detectors.verify`: each builds one ``layers.*`` entry of the report.

The watermark layer (image, audio, video and its soundtrack), the visible layer (image, video, audio cue
and voice prompt), the metadata layer of a file whose carriers could not be parsed, and the warnings for
a layer asked for that could not be examined. The detectors themselves are imported on first use, so
``import detectors`` stays quick.
"""

from __future__ import annotations

import mmap
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.metadata import MetadataLayer
from detectors.sources import Pixels, Samples, VideoProbe
from detectors.verdict import METADATA_UNREADABLE
from detectors.watermark_result import DEFAULT_THRESHOLD
from labeler.errors import LabelerError

if TYPE_CHECKING:
    from detectors.report import Report

__all__ = ["QUICK_WATERMARK_NOTE", "watermark_layer", "visible_layer", "video_visible_layer",
           "audio_visible_layer", "unreadable_metadata", "unexamined_warnings"]

#: The watermark layer's ``note`` when ``layers="quick"`` read an image as given and found no mark.
QUICK_WATERMARK_NOTE = ("read at the geometry as given only (quick; a large JPEG at half size): a "
                        "rescaled or rotated copy, or a mark that only a full-resolution read finds, was "
                        "not searched; verify without --quick for that")


def visible_layer(pixels: Pixels) -> dict[str, Any]:
    """The ``layers.visible`` entry: our visible label found in the image, where and how large."""
    from detectors.visible import detect_image_label

    image = pixels.get()
    if image is None:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": pixels.error}
    from labeler.media.image import to_display

    layer = detect_image_label(to_display(image, pixels.orientation)).to_dict()
    if not layer["present"]:
        layer.update(kind=None, position=None, height_ratio=None)
    return layer


def video_visible_layer(path: Path, video: VideoProbe | None = None) -> dict[str, Any]:
    """The ``layers.visible`` entry for a video: our mark in the first seconds, and for how long.

    When the start carries the mark (what GB 45438 5.3 requires), the middle and end windows are not
    decoded (verify is triage: the start decides ``present``); ``not_read`` then names them, so a
    window left out of ``intervals`` is "not read", never "absent".
    """
    from detectors.visible import detect_video_label

    try:
        info = video.get() if video is not None else None
        layer = detect_video_label(path, stop_at_start=True, info=info).to_dict()
    except LabelerError as exc:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": str(exc)}
    if not layer["present"]:
        layer.update(kind=None, position=None, height_ratio=None, seconds=None)
    return layer


def audio_visible_layer(samples: Samples) -> dict[str, Any]:
    """The ``layers.visible`` entry for audio: our rhythm cue (Morse "AI") and voice prompt.

    The entry describes the highest-scoring label found (``kind`` audio-rhythm or audio-voice, its
    ``position``, onset ``seconds``, ``score``; ``language`` for a prompt); ``found`` lists every cue
    and prompt found, in time order, as ``{kind, position, seconds, score[, language]}``.
    """
    try:
        cue, voice = samples.labels()  # one shared analysis (streamed for a long file)
    except LabelerError as exc:
        return {"present": False, "kind": None, "position": None, "height_ratio": None, "seconds": None,
                "note": str(exc)}
    present = [r for r in (cue, voice) if r.present]
    layer = max(present or [cue, voice], key=lambda r: r.score).to_dict()
    found = [{"kind": "audio-rhythm", "position": p, "seconds": t, "score": s} for t, p, s in cue.cues]
    found += [{"kind": "audio-voice", "position": p, "seconds": t, "score": s, "language": lang}
              for t, p, lang, s in voice.prompts]
    layer["found"] = sorted(found, key=lambda f: f["seconds"])
    if not layer["present"]:
        layer.update(kind=None, position=None, seconds=None, text=None)
        if "language" in layer:
            layer["language"] = None
    return layer


def watermark_layer(pixels: Pixels | None, what: str, key: bytes, metadata: MetadataLayer,
                    path: Path | bytes | None = None, samples: Samples | None = None,
                    quick: bool = False, video: VideoProbe | None = None) -> dict[str, Any]:
    """The ``layers.watermark`` entry: detection result, key ID, and agreement with the metadata label.

    Images are read from their decoded pixels, audio from its decoded ``samples`` (one decode shared
    with the audio cue search); ``path`` is the file (or bytes) for media read from a file.
    ``matches_metadata`` is true/false when both a watermark and a metadata ProduceID exist (the
    default payload is derived from the ProduceID), else null. A file the detector cannot read
    (video, an image under 128 px, audio under 1.5 s) gets ``checked: false`` and a ``note``. With
    ``quick`` an image is read at its geometry as given only (offsets, no rescale / rotation search;
    the p-value counts those reads only), and an image without a mark there gets
    :data:`QUICK_WATERMARK_NOTE`, so "not searched" never reads as "absent". ``video`` is the video's
    probe shared with the visible layer (one ffmpeg probe per verify).
    """
    from labeler.watermark.keyfile import key_id

    layer: dict[str, Any] = {"present": False, "checked": False, "payload": None, "p_value": None,
                             "method": None, "matches_metadata": None, "key_id": key_id(key)}
    try:
        if pixels is not None:
            result = _detect_image(pixels, key, search_scale=not quick)
            if quick and not result.found:
                layer["note"] = QUICK_WATERMARK_NOTE
        elif samples is not None:
            result = samples.watermark(key)
        elif what == "video" and isinstance(path, Path):
            result = _video_mark(path, key, layer, video or VideoProbe(path))
        else:
            layer["note"] = f"watermark detection covers images, audio and video; this file is {what}"
            return layer
    except LabelerError as exc:
        layer["note"] = str(exc)
        return layer
    layer.update(result.to_dict())
    # A result that only says why nothing could be decided (audio too short, no frame readable) did not
    # look: ``checked`` false, no p-value, and unexamined_warnings() says so.
    layer["checked"] = getattr(result, "decided", True)
    if not layer["checked"]:
        layer["p_value"] = None
    # a video read that stopped on a decoding error or a cut (VideoWatermarkResult.read_error): the frames
    # before it hold no mark, the rest was not seen; the note starts with it and unexamined_warnings()
    # names it (a mark found is not warned about)
    stopped = None if result.found else getattr(result, "read_error", None)
    if getattr(result, "reason", None):
        layer["note"] = result.reason if stopped is None else f"{result.reason}; {stopped}"
    elif not result.found and result.p_value is not None and result.p_value <= result.threshold:
        # the pilot shows past the threshold but no payload passed its CRC (a small or damaged copy):
        # not counted as present, since the payload is what ties the mark to a label
        pilot = (f"a mark of this key shows (p = {result.p_value:.1e}, pilot only) but its payload "
                 "could not be read")
        layer["note"] = pilot if stopped is None else f"{stopped}; {pilot}"
    elif stopped is not None:
        layer["note"] = stopped
    produce_id = metadata.fields.get("ProduceID") if metadata.fields else None
    if result.found and result.payload is not None and produce_id:
        from labeler.watermark import payload_from_produce_id

        layer["matches_metadata"] = result.payload == payload_from_produce_id(produce_id)
    return layer


def _video_mark(path: Path, key: bytes, layer: dict[str, Any], video: VideoProbe) -> Any:
    """The frames' mark, else the soundtrack's; ``layer`` gets ``frames_read`` and ``stream``.

    Two reads (frames, then soundtrack) are two tests of one file: where a soundtrack may be there,
    each is decided at half the threshold and the p-value reported is doubled (Bonferroni, as
    :func:`detectors.watermark.detect_as_shown` does for its two reads), so the false-positive rate per
    file and key stays at the threshold (each at the full threshold allowed twice it, until 2026-12-07).
    """
    from detectors.watermark_video import detect_video

    two = _may_have_soundtrack(video)
    threshold = DEFAULT_THRESHOLD / 2 if two else DEFAULT_THRESHOLD
    problem = None
    try:
        result = detect_video(path, key=key, info=video.get(), threshold=threshold)
        layer["frames_read"] = result.frames_read
    except LabelerError as exc:  # e.g. frames too small: the soundtrack may still carry the mark
        result, problem = None, exc
    if result is not None and result.found:
        result.method = "video"  # the mark's name, as the label result and the soft binding say
        layer["stream"] = "video"
        return _both_reads(result) if two else result
    audio = _soundtrack_mark(path, key, video, threshold) if two else None
    if audio is not None:
        layer["stream"] = "audio"
        return _both_reads(audio)
    if problem is not None:
        raise problem
    layer["stream"] = None
    return _both_reads(result) if two else result


def _may_have_soundtrack(video: VideoProbe) -> bool:
    """False only when the probe says the file has no audio stream."""
    try:
        return video.get().audio_streams != 0
    except LabelerError:
        return True  # the frames could not be probed: the soundtrack alone may still be readable


def _both_reads(result: Any) -> Any:
    """``result`` of one of the two reads, with its p-values and hypotheses counted for both."""
    return replace(result, p_value=min(1.0, 2.0 * result.p_value), trials=2 * result.trials,
                   zero_bit_p_value=min(1.0, 2.0 * result.zero_bit_p_value), threshold=DEFAULT_THRESHOLD)


def _soundtrack_mark(path: Path, key: bytes, video: VideoProbe, threshold: float) -> Any:
    """The audio watermark of a video's soundtrack (the frames gave none), or None without one."""
    from detectors.audio_scan import AudioScan, decode_or_scan
    from detectors.watermark import detect_audio
    from labeler.media.audio import audio_info

    try:
        # an hour-long soundtrack (stated, or found so as it is decoded) is streamed, and reading stops
        # once the mark decodes
        audio = decode_or_scan(path, audio_info(path), key=key, labels=False, threshold=threshold)
        if isinstance(audio, AudioScan):
            result = audio.get("watermark")
        else:
            result = detect_audio(audio.samples, audio.sample_rate, key=key, threshold=threshold)
    except LabelerError:
        return None  # no audio stream, or none decodable: the frames' answer stands
    return result if result.found else None


def _detect_image(pixels: Pixels, key: bytes, search_scale: bool = True) -> Any:
    from detectors.watermark import detect, detect_as_shown, detect_half

    if not search_scale:  # quick: a large JPEG is read at half size (detect_half), nothing else
        half = pixels.half()
        if half is not None:
            return detect_as_shown(half.pixels, half.orientation,
                                   lambda luma, threshold: detect_half(luma, key=key, threshold=threshold))
    image = pixels.get()
    if image is None:
        raise LabelerError(pixels.error or "the image could not be decoded")
    return detect_as_shown(image, pixels.orientation, lambda luma, threshold: detect(
        luma, key=key, search_scale=search_scale, threshold=threshold))


#: Bytes that only an AIGC label holds: an Appendix E field name (as text, and as UTF-16 for ID3 and
#: EXIF text) and the TC260 XMP namespace. Found in a file whose carriers could not be parsed, they make
#: its metadata "AIGC metadata whose value is not readable" (docs/verdicts.md rule 4), not "no label".
_LABEL_TEXT = (b"ContentProducer", "ContentProducer".encode("utf-16-le"),
               "ContentProducer".encode("utf-16-be"), b"tc260.org.cn/ns/AIGC")


def unreadable_metadata(reason: str, content: Path | bytes) -> MetadataLayer:
    """The metadata layer of a file whose carriers could not be parsed: the reason as its problem, and
    ``present`` when label text shows in the raw bytes (a damaged label is still evidence, never "no
    label"); ``fields`` None, so no rule takes a value from it."""
    return MetadataLayer(present=_holds_label_text(content), problems=[METADATA_UNREADABLE + reason])


def _holds_label_text(content: Path | bytes) -> bool:
    if isinstance(content, bytes):
        return any(marker in content for marker in _LABEL_TEXT)
    try:
        # mapped, not read: the file may be a long video
        with open(content, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return any(view.find(marker) >= 0 for marker in _LABEL_TEXT)
    except (OSError, ValueError):  # an empty file cannot be mapped (and holds nothing)
        return False


def unexamined_warnings(report: Report) -> list[str]:
    """One warning per layer that was asked for but could not be examined, with the reason: metadata
    carriers that could not be parsed, a C2PA reader that could not parse the file, damaged or unreadable
    pixels or samples, audio too short to read, a file too large to decode, a decoder that failed. Such
    a layer is judged as absent by the verdict (a damaged carrier that shows label text as AIGC metadata
    whose value is not readable), and "could not look" must not read as "looked and found nothing". A
    mark found is never warned about; neither is the ``--quick`` note."""
    out = []
    md = report.metadata
    unread = next((p for p in md.problems if p.startswith(METADATA_UNREADABLE)), None) if md else None
    if md is not None and unread is not None:
        judged = ("; the file holds AIGC label text, judged as AIGC metadata whose value is not readable"
                  if md.present else "")
        out.append(f"the metadata layer could not be examined: {unread[len(METADATA_UNREADABLE):]}{judged}")
    cp = report.c2pa
    if cp is not None and not cp.get("present") and cp.get("error"):
        # c2pa-rs could not parse the file (a WAV cut short, an unsupported variant): no manifest seen is
        # not no manifest there. ("C2PA: " is the layer's own prefix; the line names the layer already.)
        error = str(cp["error"])
        out.append(f"the c2pa layer could not be examined: {error.removeprefix('C2PA: ')}")
    wm = report.watermark
    if wm is not None and not wm.get("checked", True) and wm.get("note") not in (None, QUICK_WATERMARK_NOTE):
        out.append(f"the watermark layer could not be examined: {wm['note']}")
    elif wm is not None and not wm.get("present") and wm.get("frames_read") and wm.get("note"):
        from detectors.watermark_video import READ_STOPPED

        if str(wm["note"]).startswith(READ_STOPPED):
            # the frames before a decoding error (or the cut) hold no mark: the rest was not seen
            out.append(f"the watermark layer was examined only in part: {wm['note']}")
    vis = report.visible
    if vis is not None and not vis.get("present") and vis.get("note"):
        out.append(f"the visible layer could not be examined: {vis['note']}")
    return out
