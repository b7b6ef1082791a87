"""The decoded-once media holders of one :func:`detectors.verify` call.

An image's pixels (:class:`Pixels`, with the salvage of a truncated JPEG or a PNG with a damaged
ancillary chunk), an audio file's samples (:class:`Samples`) and a video's probe (:class:`VideoProbe`)
are each read at most once and shared by the layers that need them (:mod:`detectors.layers`); a
decoding error is kept and given to each of those layers. One holder per call, never shared between
calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labeler.errors import LabelerError

__all__ = ["Pixels", "Once", "VideoProbe", "Samples"]


class Pixels:
    """Decode an image at most once for the pixel layers, and remember a decoding error.

    Both pixel layers (watermark, visible mark) look at luma only, so a colour JPEG is decoded to its
    Y channel alone (:func:`labeler.media.image.read_luma_pixels`: no chroma, no colour conversion,
    about half of :func:`~labeler.media.image.read_image`'s time at 1080p); other images come as
    :func:`~labeler.media.image.read_image` gives them. One per :func:`detectors.verify` call (never shared
    between calls), so threads do not meet here.
    """

    def __init__(self, source: Path | bytes, fmt: str | None = None) -> None:
        self.source = source
        self.fmt = fmt
        self._pixels: Any = None
        self.error: str | None = None
        #: EXIF Orientation of the file (1..8; 1 when untagged or not known): the visible mark is
        #: looked for as a viewer shows the picture (:func:`labeler.media.image.to_display`).
        self.orientation = 1
        #: The damage of a picture whose pixels were read anyway (a JPEG as far as its data goes, a PNG
        #: without an ancillary chunk that fails its CRC), else None; ``salvage_note`` says how.
        self.salvaged: str | None = None
        self.salvage_note = ""

    @classmethod
    def of(cls, pixels: Any) -> Pixels:
        """Already decoded pixels (an array given to :func:`detectors.verify`)."""
        made = cls(b"")
        made._pixels = pixels
        return made

    def get(self) -> Any:
        """The pixels (a NumPy array), decoded on the first call; None when they cannot be (``error``
        then says why). A truncated JPEG or PNG, or a PNG with a damaged ancillary chunk, is salvaged
        (``salvaged`` says so)."""
        if self._pixels is None and self.error is None:
            from labeler.media.image import read_luma_image
            from labeler.media.image_salvage import read_truncated_jpeg_luma

            try:
                image = read_luma_image(self.source, fmt=self.fmt)
                self._pixels, self.orientation = image.pixels, image.orientation
            except LabelerError as exc:
                self.error = str(exc)
            if self.error is not None and self.fmt == "jpeg" and "truncated" in self.error:
                # a JPEG cut short (an interrupted download or copy): read the part that is there
                try:
                    self._pixels = read_truncated_jpeg_luma(self.source)
                    self.salvaged, self.error = self.error, None
                    self.salvage_note = ("the pixel layers read the part of the picture that is there (the "
                                         "rest decoded as grey)")
                except LabelerError:
                    pass
            if self.error is not None and self.fmt == "png":
                self._salvage_png()
            if self.error is not None and self.fmt == "png" and "truncated" in self.error:
                self._salvage_cut_png()
        return self._pixels

    def _salvage_png(self) -> None:
        """Decode a PNG without its ancillary chunks that fail their CRC (a damaged text or XMP chunk).

        Pillow refuses the whole file for one bad checksum in a chunk that holds no pixels; libpng (what
        browsers and viewers use) drops such a chunk with a warning and shows the picture. The pixels
        then carry their watermark and visible mark as before; a bad checksum in a pixel chunk is not
        salvaged.
        """
        from labeler.media.image import read_luma_image

        try:
            data = self.source if isinstance(self.source, bytes) else Path(self.source).read_bytes()
        except OSError:
            return
        fixed = _png_without_bad_ancillary_chunks(data)
        if fixed is None:
            return
        try:
            image = read_luma_image(fixed[0], fmt="png")
        except LabelerError:
            return
        self._pixels, self.orientation = image.pixels, image.orientation
        self.salvaged, self.error = fixed[1], None
        self.salvage_note = ("the pixel layers read the picture without that chunk (it holds no pixels; PNG "
                             "decoders drop such a chunk)")

    def _salvage_cut_png(self) -> None:
        """A PNG cut short within its picture data (an interrupted download): the rows that are there,
        as a JPEG cut in its scan is read (:func:`labeler.media.image_salvage.read_truncated_png`)."""
        from labeler.media.image_salvage import read_truncated_png

        try:
            image, share = read_truncated_png(self.source)
        except LabelerError:
            return
        self._pixels, self.orientation = image.pixels, image.orientation
        self.salvaged, self.error = self.error, None
        self.salvage_note = (f"the pixel layers read the part of the picture that is there ({share:.0%} of "
                             "its rows; the rest decoded as grey)")

    def half(self) -> Any:
        """A JPEG's luma decoded at half size (:func:`labeler.media.image.read_luma_half`, an
        :class:`~labeler.media.image.ImageData` with its EXIF) for the quick watermark read, or None
        (another format, a small JPEG, or pixels already decoded in full)."""
        if self._pixels is not None or self.error is not None or self.fmt not in (None, "jpeg"):
            return None
        from labeler.media.image import read_luma_half

        try:
            return read_luma_half(self.source, fmt=self.fmt)
        except LabelerError:
            return None  # the full decode (get) says why, or reads what a truncated JPEG holds


def _png_without_bad_ancillary_chunks(data: bytes) -> tuple[bytes, str] | None:
    """``(data without the ancillary chunks whose CRC fails, what the first one was)``; None when no
    chunk is dropped: every CRC matches, a critical chunk (pixels, palette, header) fails its CRC, or
    the chunk structure itself is broken (a truncated file)."""
    import zlib

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    out, pos, first = [data[:8]], 8, None
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return None
        kind = data[pos + 4:pos + 8]
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            if not kind[0] & 0x20:  # critical: its bytes are the picture's own
                return None
            first = first or (f"damaged png file: {kind.decode('latin-1')!r} chunk at offset {pos} fails its "
                              "crc check")
        else:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return (b"".join(out), first) if first is not None else None

class Once:
    """A value read at most once per :func:`detectors.verify` call for the layers that share it; the read's
    ``LabelerError`` is kept and re-raised to each of them."""

    def __init__(self, source: Path | bytes) -> None:
        self.source = source
        self._value: Any = None
        self._error: LabelerError | None = None

    def _read(self) -> Any:
        raise NotImplementedError

    def get(self) -> Any:
        """The value; raises the read's ``LabelerError``."""
        if self._value is None and self._error is None:
            try:
                self._value = self._read()
            except LabelerError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value


class VideoProbe(Once):
    """A video's :class:`~labeler.media.video.VideoInfo` (watermark and visible layers: one probe)."""

    def _read(self) -> Any:
        from labeler.media.video import video_info

        return video_info(self.source)


class Samples(Once):
    """An audio file's samples for the watermark and the audio labels: one decode, or one streamed pass.

    A short file (or bytes) is decoded whole once and each layer runs its detector on the array when it
    asks. A long file (its stated length over :data:`detectors.audio_scan.STREAM_ABOVE_BYTES`, or one
    that proves that long as it is decoded) is streamed once through both detectors
    (:func:`detectors.audio_scan.decode_or_scan`), so the holder must know up front what the layers
    will ask for: ``key`` for the watermark (None: not asked) and ``labels``.
    """

    def __init__(self, source: Path | bytes, *, key: bytes | None = None, labels: bool = True) -> None:
        super().__init__(source)
        self.key = key
        self.labels_wanted = labels
        #: Why an Ogg file's pages are damaged (``"ogg page at offset N fails its CRC check"``), or None.
        #: libsndfile skips (Vorbis) or conceals (Opus) such a page: the layers examine the sound as it
        #: decodes, and the report says the file is damaged.
        self.damage: str | None = None

    def _read(self) -> Any:
        from labeler.media.audio import audio_info, read_audio

        self.damage = _ogg_damage(self.source)
        if not isinstance(self.source, Path):
            return read_audio(self.source)
        from detectors.audio_scan import decode_or_scan

        return decode_or_scan(self.source, audio_info(self.source), key=self.key, labels=self.labels_wanted)

    def watermark(self, key: bytes) -> Any:
        """The audio watermark detector's :class:`~detectors.watermark_result.WatermarkResult` for ``key``."""
        from detectors.audio_scan import AudioScan
        from detectors.watermark import detect_audio

        audio = self.get()
        if isinstance(audio, AudioScan):
            return (audio if key == self.key else self._own_pass(key, False)).get("watermark")
        return detect_audio(audio.samples, audio.sample_rate, key=key)

    def labels(self) -> tuple[Any, Any]:
        """The rhythm cue's and the voice prompt's results
        (:func:`detectors.visible.audio_labels.detect_audio_labels`)."""
        from detectors.audio_scan import AudioScan
        from detectors.visible.audio_labels import detect_audio_labels

        audio = self.get()
        if isinstance(audio, AudioScan):
            planned = self.labels_wanted
            return (audio if planned else self._own_pass(None, True)).get("labels")
        return detect_audio_labels(audio.samples, audio.sample_rate)

    def _own_pass(self, key: bytes | None, labels: bool) -> Any:
        """A streamed pass for what the first one did not plan for (another key, the labels)."""
        from detectors.audio_scan import scan_audio
        from labeler.media.audio import audio_info

        return scan_audio(Path(self.source), audio_info(self.source), key=key, labels=labels)


def _ogg_damage(source: Path | bytes) -> str | None:
    """:func:`labeler.media.audio_sndfile.ogg_damage` of an Ogg file (a path or its bytes), else None."""
    import io

    from labeler.media.audio_sndfile import ogg_damage

    if isinstance(source, Path):
        with open(source, "rb") as handle:
            return ogg_damage(handle) if handle.read(4) == b"OggS" else None
    return ogg_damage(io.BytesIO(source)) if bytes(source[:4]) == b"OggS" else None
