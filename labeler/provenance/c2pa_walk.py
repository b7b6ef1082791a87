"""How far c2pa-rs may be let walk a file: a bound on its chunks and boxes, read from their headers only.

c2pa-rs reads a stream through one Python callback per chunk or box header and has no limit of its own:
a PNG or WAV of a million empty chunks, or an MP4 whose ``moov`` holds a million tracks, kept it busy
for seconds to minutes (the last past ten minutes, growing, and deaf to SIGTERM inside its callbacks).
Our own readers stop at :data:`labeler.limits.MAX_BOXES`; :func:`too_many_chunks` says when a file
is past that before it is handed to c2pa-rs, for verify (:mod:`detectors.c2pa`) and for the label
call's check for a manifest it would invalidate (:func:`labeler.provenance.c2pa_sign.holds_manifest`).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from labeler import limits

__all__ = ["too_many_chunks"]


def too_many_chunks(handle: BinaryIO) -> str | None:
    """Why c2pa-rs must not walk a PNG, RIFF (WAV, AVI, WebP) or ISO-BMFF file with more than
    :data:`labeler.limits.MAX_BOXES` top-level chunks, or None (any other file, or a chunk structure this
    walk cannot follow: c2pa-rs then gives its own reason).

    c2pa-rs reads a stream through one Python callback per chunk header: a 12 MB PNG of a million empty
    chunks took ~15 s (and time grows with the file), where the metadata readers stop at
    :data:`~labeler.limits.MAX_BOXES` chunks. Only the chunk headers are read here, at most that many.
    """
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    head = handle.read(12)
    if head[4:8] in _BMFF_FIRST:
        return _too_many_boxes(handle, size)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        kind, pos, layout, extra = "png", 8, ">I4s", 12  # length, type, data, CRC (PNG 5.3)
    elif head[:4] in (b"RIFF", b"RF64", b"BW64") and len(head) == 12:
        kind, pos, layout, extra = "riff", 12, "<4sI", 8  # id, size, data, pad byte to even
    else:
        return None
    for _ in range(limits.MAX_BOXES):
        if pos + 8 > size:
            return None
        handle.seek(pos)
        first, second = struct.unpack(layout, handle.read(8))
        if kind == "png":
            if second == b"IEND":
                return None
            pos += extra + first
        else:
            pos += extra + second + (second & 1)
    return f"{kind} file has more than {limits.MAX_BOXES} chunks" if pos + 8 <= size else None


#: Box types an ISO-BMFF file (MP4, MOV, HEIF, AVIF) starts with.
_BMFF_FIRST = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid"})
#: Boxes whose payload is boxes (ISO/IEC 14496-12), and the full boxes among them (4 bytes of version
#: and flags before their children).
_BMFF_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex",
                              b"moof", b"traf", b"mfra", b"meta", b"ilst", b"iprp", b"ipco", b"tref"})
_BMFF_FULL = frozenset({b"meta"})


def _too_many_boxes(handle: BinaryIO, size: int) -> str | None:
    """:func:`too_many_chunks` for ISO-BMFF: the boxes of the file and of its container boxes, counted
    up to :data:`labeler.limits.MAX_BOXES` (a ``moov`` of a million tracks kept c2pa-rs busy for over
    ten minutes, growing, where the metadata reader stops at that many boxes)."""
    ranges, count = [(0, size)], 0
    while ranges:
        pos, end = ranges.pop()
        while pos + 8 <= end:
            count += 1
            if count > limits.MAX_BOXES:
                return f"mp4 file has more than {limits.MAX_BOXES} boxes"
            handle.seek(pos)
            length, kind = struct.unpack(">I4s", handle.read(8))
            header = 8
            if length == 1:
                wide = handle.read(8)
                if len(wide) < 8:
                    break
                length, header = struct.unpack(">Q", wide)[0], 16
            elif length == 0:
                length = end - pos
            if length < header or pos + length > end:
                break  # not a box structure this walk follows: c2pa-rs says what is wrong
            if kind in _BMFF_CONTAINERS:
                ranges.append((pos + header + (4 if kind in _BMFF_FULL else 0), pos + length))
            pos += length
    return None
