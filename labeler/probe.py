"""Identify an input once: what it is (path, bytes or array), its format and medium, and its facts.

The label pipeline and :func:`detectors.verify` call :func:`probe_path` / :func:`probe_bytes` /
:func:`probe_array` once and pass the :class:`Probe` on; no layer sniffs or re-opens the input to find
out what it is. Facts that cost a decoder run (an ffmpeg probe of a video's streams, an image header)
are read on first use and kept in the value, so a layer that does not need them costs nothing.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from labeler.formats import Format, format_info, sniff_bytes, sniff_file

if TYPE_CHECKING:
    from labeler.media.ffmpeg import MediaInfo

SOURCES = ("path", "bytes", "array")


@dataclass(frozen=True)
class Probe:
    """What one input is.

    Attributes
    ----------
    source : {"path", "bytes", "array"}
        How it was given.
    format : str or None
        Container format (:data:`labeler.formats.FORMATS`), from the content; None for an array.
    medium : {"image", "audio", "video"}
        What it holds.
    size : int
        Bytes: the file's size, the buffer's length, or the array's ``nbytes``.
    path : pathlib.Path or None
        The file, for a path.
    data : bytes or None
        The encoded file, for bytes (not copied again by the layers).
    shape : tuple of int or None
        The array's shape, for an array.
    """

    source: str
    format: str | None
    medium: str
    size: int
    path: Path | None = None
    data: bytes | None = None
    shape: tuple[int, ...] | None = None

    @property
    def info(self) -> Format | None:
        """The format's :data:`labeler.formats.FORMAT_TABLE` row (None for an array)."""
        return format_info(self.format) if self.format else None

    @functools.cached_property
    def media(self) -> MediaInfo | None:
        """Streams, duration, rates and dimensions from ffmpeg (audio/video paths; read once, on first use).

        None for images, bytes and arrays. Raises what :func:`labeler.media.ffmpeg.probe` raises.
        """
        if self.path is None or self.medium == "image":
            return None
        from labeler.media.ffmpeg import probe

        return probe(self.path)

    @functools.cached_property
    def image_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of an image from its header (no pixel decode), or of an array.

        None for audio and video, and for a HEIC whose header gives no size.
        """
        if self.shape is not None:
            return (self.shape[1], self.shape[0])
        if self.medium != "image":
            return None
        import io

        from PIL import Image

        if self.format == "heic":
            # Pillow has no HEIF decoder: the primary item's ``ispe`` property holds its size.
            from labeler.metadata.heif import primary_size

            if self.path is None:
                return primary_size(io.BytesIO(self.data or b""))
            with open(self.path, "rb") as handle:
                return primary_size(handle)
        with Image.open(self.path if self.path is not None else io.BytesIO(self.data or b"")) as im:
            return im.size

    @functools.cached_property
    def xmp_chunks(self) -> tuple[tuple[int, int], ...]:
        """``(offset, size)`` of each XMP chunk of a PNG or WebP, from the chunk headers alone.

        ``offset`` is the chunk's (its length field in PNG, its header in WebP), ``size`` its data
        bytes. Empty for other formats and arrays. No pixel is decoded and no chunk body read (a PNG
        ``iTXt`` chunk's keyword excepted); the walk stops quietly where the structure is damaged, which
        the stages report themselves. Lets the metadata stage refuse a packet over
        :data:`labeler.limits.MAX_XMP_PACKET` before the pixel layers run (:mod:`labeler.stages`).
        """
        if self.format not in ("png", "webp") or (self.path is None and self.data is None):
            return ()
        import io

        walk = _png_xmp_chunks if self.format == "png" else _webp_xmp_chunks
        with open(self.path, "rb") if self.path is not None else io.BytesIO(self.data or b"") as handle:
            return tuple(walk(handle, self.size))


def probe_path(path: str | os.PathLike[str]) -> Probe:
    """Probe a file by its content (reads its first bytes; see :func:`labeler.formats.sniff_file`).

    Raises
    ------
    LabelerError
        Empty or unrecognised content.
    OSError
        When the file cannot be read.
    """
    p = Path(path)
    fmt = sniff_file(p)
    return Probe("path", fmt, format_info(fmt).medium, p.stat().st_size, path=p)


def probe_bytes(data: bytes, name: str = "") -> Probe:
    """Probe an encoded file in memory; ``name`` only tells ``m4a`` from ``mp4`` when the brand does not."""
    # The whole buffer: sniff looks past an ID3 tag (FLAC behind ID3) and into an MP4's or WebM's tracks.
    fmt = sniff_bytes(data, name)
    return Probe("bytes", fmt, format_info(fmt).medium, len(data), data=data)


def probe_array(array: Any) -> Probe:
    """Probe a pixel array ``(H, W)`` or ``(H, W, C)``: an image with no container."""
    return Probe("array", None, "image", int(array.nbytes), shape=tuple(array.shape))


def _png_xmp_chunks(handle: BinaryIO, size: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of the XMP ``iTXt`` chunks of a PNG (PNG 5.3 chunk headers, up to IEND)."""
    from labeler.limits import MAX_BOXES
    from labeler.metadata.png import SIGNATURE, XMP_KEYWORD

    if handle.read(len(SIGNATURE)) != SIGNATURE:
        return
    pos = len(SIGNATURE)
    for _ in range(MAX_BOXES):
        header = handle.read(8)
        if len(header) < 8:
            return
        length, ctype = struct.unpack(">I4s", header)
        if ctype == b"IEND" or pos + 12 + length > size:
            return
        if ctype == b"iTXt" and handle.read(min(length, 80)).split(b"\x00", 1)[0] == XMP_KEYWORD:
            yield pos, length
        pos += 12 + length  # length, type, data, CRC
        handle.seek(pos)


def _webp_xmp_chunks(handle: BinaryIO, size: int) -> Iterator[tuple[int, int]]:
    """``(offset, size)`` of the ``XMP `` chunks of a WebP's RIFF form (RFC 9649 2.5-2.7 chunk headers)."""
    from labeler.limits import MAX_BOXES

    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WEBP":
        return
    riff_end = min(8 + struct.unpack_from("<I", head, 4)[0], size)
    pos = 12
    for _ in range(MAX_BOXES):
        header = handle.read(8)
        if pos + 8 > riff_end or len(header) < 8:
            return
        cid, length = struct.unpack("<4sI", header)
        if pos + 8 + length > riff_end:
            return
        if cid == b"XMP ":
            yield pos, length
        pos += 8 + length + (length & 1)  # odd-sized chunks get one pad byte
        handle.seek(pos)
