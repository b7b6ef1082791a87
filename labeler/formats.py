"""Recognise a media container from its first bytes (never from the file name)."""

from __future__ import annotations

import os
from pathlib import Path

from labeler.errors import CorruptFile, UnsupportedFormat

#: Container names this toolkit reads and writes, grouped by medium.
IMAGE_FORMATS = ("jpeg", "png", "webp", "tiff", "gif")
AUDIO_FORMATS = ("wav", "mp3", "flac", "m4a")
VIDEO_FORMATS = ("mp4", "mov")
FORMATS = IMAGE_FORMATS + AUDIO_FORMATS + VIDEO_FORMATS

#: File name extensions that are normal for each format (first one is canonical).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "png": (".png",),
    "webp": (".webp",),
    "tiff": (".tif", ".tiff"),
    "gif": (".gif",),
    "wav": (".wav", ".wave"),
    "mp3": (".mp3",),
    "flac": (".flac",),
    "m4a": (".m4a", ".m4b", ".mp4", ".aac"),
    "mp4": (".mp4", ".m4v", ".m4a", ".mov"),
    "mov": (".mov", ".qt", ".mp4"),
}

# Top-level ISO-BMFF box types that may open a file without 'ftyp' (old QuickTime).
_QT_FIRST_BOXES = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}


def sniff(head: bytes, name: str = "") -> str:
    """Return the format name for a file starting with ``head`` (at least 64 bytes if the file has them).

    ``name`` is only used to tell an audio-only ``.m4a`` from a video ``.mp4``
    when the brand does not say. Raises :class:`UnsupportedFormat` otherwise.
    """
    ext = os.path.splitext(name)[1].lower()
    if not head:
        raise CorruptFile("empty file (0 bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"ID3"):
        return _after_id3(head)
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return "mp3"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _M4A_BRANDS:
            return "m4a"
        if brand == b"qt  ":
            return "mov"
        return "m4a" if ext in (".m4a", ".m4b", ".aac") else "mp4"
    if len(head) >= 8 and head[4:8] in _QT_FIRST_BOXES:
        return "mov"
    raise UnsupportedFormat(
        "unrecognised file content (not JPEG, PNG, WebP, TIFF, GIF, WAV, MP3, FLAC, MP4, MOV or M4A)"
    )


def _after_id3(head: bytes) -> str:
    # An ID3v2 tag may precede FLAC too; look past it when the header is in reach.
    if len(head) >= 10:
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        start = 10 + size + (10 if head[5] & 0x10 else 0)
        if head[start:start + 4] == b"fLaC":
            return "flac"
    return "mp3"


def sniff_file(path: str | os.PathLike[str]) -> str:
    """Return the format name of the file at ``path`` (reads its first bytes)."""
    p = Path(path)
    with p.open("rb") as handle:
        head = handle.read(4096)
        if head.startswith(b"ID3") and len(head) >= 10:
            size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            handle.seek(10 + size + (10 if head[5] & 0x10 else 0))
            if handle.read(4) == b"fLaC":
                return "flac"
    return sniff(head, p.name)


def medium(fmt: str) -> str:
    """Return ``"image"``, ``"audio"`` or ``"video"`` for a format name."""
    if fmt in IMAGE_FORMATS:
        return "image"
    if fmt in AUDIO_FORMATS:
        return "audio"
    return "video"
