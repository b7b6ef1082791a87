"""WebP carrier: the ``XMP `` RIFF chunk, with the VP8X XMP flag (carrier ``xmp-tc260``).

The image practice guide TC260-PG-20259A (digest section 4) puts the label of a
WebP file in its XMP metadata chunk. WebP container: RFC 9649 (WebP Image
Format, 2024) 2.5-2.7: a RIFF form ``WEBP``; simple files hold one ``VP8 ``
(lossy) or ``VP8L`` (lossless) chunk; metadata needs the extended format, whose
first chunk ``VP8X`` carries feature flags and the canvas size, and whose chunks
come in the order ``VP8X``, ``ICCP``, ``ANIM``, image data (``ALPH`` + ``VP8 ``,
``VP8L``, or ``ANMF`` frames), ``EXIF``, ``XMP ``, then unknown chunks. Chunk sizes
are little-endian; odd-sized chunks get one pad byte.

The chunks are walked at most :data:`labeler.limits.MAX_BOXES`; a chunk running
past the RIFF form or the file is :class:`~labeler.errors.CorruptFile`. Bytes
after the RIFF form are kept as they are.

Labels read (standard first): ``xmp-tc260`` from ``XMP `` chunks, then EXIF
UserComment (``exif-usercomment``) and ImageDescription
(``exif-imagedescription``, not standard) from the ``EXIF`` chunk (the image
guide's Annex B alternative).

Write policy
------------
* An existing ``XMP `` chunk gets the label (:func:`labeler.metadata.xmp.upsert_aigc`,
  a textual edit keeping every other property) where it is; further ``XMP ``
  chunks lose their ``TC260:AIGC`` properties.
* Otherwise a new ``XMP `` chunk is added after the ``EXIF`` chunk, or else after
  the last image chunk (``VP8 ``/``VP8L``/``ALPH``/``ANMF``), i.e. before any trailing
  unknown chunks, as RFC 9649 2.7 orders them.
* The XMP flag (0x04) of ``VP8X`` is set; its other bits and the canvas size
  are kept. A simple file is converted to the extended format: a ``VP8X`` chunk
  is put first with the canvas size read from the ``VP8 `` frame header (RFC
  6386 9.1) or the ``VP8L`` header (RFC 9649 3.2 of the lossless bitstream), the
  Alpha flag from the ``VP8L`` ``alpha_is_used`` bit, and the ICC/EXIF flags
  from the chunks present.
* The RIFF size is recomputed; every other chunk (``ICCP``, ``EXIF``, ``ANIM``,
  ``ANMF``, ``ALPH``, image data, unknown chunks) is copied byte for byte.
* An EXIF UserComment that holds a label is blanked in place, the chunk keeping its
  size (:func:`labeler.metadata.tiff.blank_exif_label`), so one label remains;
  other UserComments and ImageDescription are left as they are.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput
from labeler.metadata import FoundLabel, read_all
from labeler.metadata.tiff import blank_exif_label, exif_labels
from labeler.metadata.xmp import extract_aigc, packet_labels, remove_aigc, upsert_aigc

# RFC 9649 2.7.1 VP8X flags byte: Rsv(2) ICC Alpha EXIF XMP Animation Rsv.
FLAG_ICC, FLAG_ALPHA, FLAG_EXIF, FLAG_XMP, FLAG_ANIMATION = 0x20, 0x10, 0x08, 0x04, 0x02
_IMAGE_CHUNKS = (b"VP8 ", b"VP8L", b"ALPH", b"ANMF")


@dataclass
class _Chunk:
    cid: bytes
    offset: int  # of the 8-byte header
    size: int  # payload bytes

    @property
    def start(self) -> int:
        return self.offset + 8

    def raw(self, data: bytes) -> bytes:
        """Header, payload and pad byte (added when a last odd chunk lacks it)."""
        body = data[self.offset:self.start + self.size + (self.size & 1)]
        return body + b"\x00" * (8 + self.size + (self.size & 1) - len(body))


def _chunks(data: bytes) -> tuple[list[_Chunk], int]:
    """Top-level chunks of the RIFF form and the end of the form."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise CorruptFile("not a webp file (bad RIFF header)")
    riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
    if riff_end > len(data):
        raise CorruptFile(f"webp is truncated ({riff_end - len(data)} bytes of the RIFF form missing)")
    chunks: list[_Chunk] = []
    pos = 12
    while pos + 8 <= riff_end:
        if len(chunks) >= limits.MAX_BOXES:
            raise UnsafeInput(f"webp has more than {limits.MAX_BOXES} chunks")
        cid, size = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + size > riff_end:
            raise CorruptFile(f"webp is truncated: chunk {cid!r} at offset {pos} runs past the RIFF form")
        chunks.append(_Chunk(cid, pos, size))
        pos += 8 + size + (size & 1)
    if not chunks:
        raise CorruptFile("webp has no chunks")
    return chunks, min(riff_end, len(data))


def _payload(data: bytes, chunk: _Chunk, limit: int, what: str) -> bytes:
    if chunk.size > limit:
        raise UnsafeInput(f"webp {what} chunk is {chunk.size} bytes, over the {limit}-byte limit")
    return data[chunk.start:chunk.start + chunk.size]


def _exif_tiff(payload: bytes) -> bytes:
    # RFC 9649 2.7.1.5 stores the bare TIFF structure; some writers keep JPEG's "Exif\0\0" in front.
    return payload[6:] if payload.startswith(b"Exif\x00") else payload


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label value in a WebP file: XMP first, then EXIF UserComment / ImageDescription."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    chunks, _ = _chunks(data)
    xmp_found: list[FoundLabel] = []
    exif_found: list[FoundLabel] = []
    for chunk in chunks:
        where = f"{chunk.cid.decode('latin-1').strip()} chunk at offset {chunk.offset}"
        if chunk.cid == b"XMP ":
            packet = _payload(data, chunk, limits.MAX_XMP_PACKET, "XMP")
            xmp_found += packet_labels(packet, where)
        elif chunk.cid == b"EXIF":
            exif_found += exif_labels(_exif_tiff(_payload(data, chunk, limits.MAX_IMAGE_FILE, "EXIF")), where)
    return sorted(xmp_found + exif_found, key=lambda f: not f.standard)


def _chunk_bytes(cid: bytes, payload: bytes) -> bytes:
    return struct.pack("<4sI", cid, len(payload)) + payload + b"\x00" * (len(payload) & 1)


def canvas_size(data: bytes, chunk: _Chunk) -> tuple[int, int, bool]:
    """(width, height, alpha_is_used) of a ``VP8 `` or ``VP8L`` bitstream, in pixels."""
    head = data[chunk.start:chunk.start + min(chunk.size, 10)]
    if chunk.cid == b"VP8 ":
        # RFC 6386 9.1: 3-byte frame tag (bit 0 clear on key frames), start code 9d 01 2a, 14-bit sizes.
        if len(head) < 10 or head[0] & 1 or head[3:6] != b"\x9d\x01\x2a":
            raise CorruptFile("webp VP8 chunk does not start with a key frame header")
        width, height = struct.unpack_from("<HH", head, 6)
        return width & 0x3FFF, height & 0x3FFF, False
    # RFC 9649 3.2 (lossless): signature 0x2f, 14 bits width-1, 14 bits height-1, alpha bit, 3-bit version.
    if len(head) < 5 or head[0] != 0x2F:
        raise CorruptFile("webp VP8L chunk has no lossless signature")
    bits = struct.unpack_from("<I", head, 1)[0]
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a WebP file to ``dst`` with ``value`` as ``TC260:AIGC`` in its ``XMP `` chunk (see module doc)."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    chunks, riff_end = _chunks(data)
    parts = [c.raw(data) for c in chunks]
    for i, chunk in enumerate(chunks):
        if chunk.cid == b"EXIF":
            payload = _payload(data, chunk, limits.MAX_IMAGE_FILE, "EXIF")
            head = payload[:len(payload) - len(_exif_tiff(payload))]
            blanked = blank_exif_label(payload[len(head):])
            if blanked is not None:  # same length: the chunk keeps its size
                parts[i] = _chunk_bytes(b"EXIF", head + blanked)
    xmp_indices = [i for i, c in enumerate(chunks) if c.cid == b"XMP "]
    if xmp_indices:
        first = xmp_indices[0]
        parts[first] = _chunk_bytes(
            b"XMP ", upsert_aigc(_payload(data, chunks[first], limits.MAX_XMP_PACKET, "XMP"), value)
        )
        for i in xmp_indices[1:]:
            extra = _payload(data, chunks[i], limits.MAX_XMP_PACKET, "XMP")
            if extract_aigc(extra):
                parts[i] = _chunk_bytes(b"XMP ", remove_aigc(extra))
    else:
        anchors = [i for i, c in enumerate(chunks) if c.cid == b"EXIF"] or [
            i for i, c in enumerate(chunks) if c.cid in _IMAGE_CHUNKS
        ]
        at = anchors[-1] + 1 if anchors else len(chunks)
        parts.insert(at, _chunk_bytes(b"XMP ", upsert_aigc(None, value)))
    first = chunks[0]
    if first.cid == b"VP8X":
        if first.size < 10:
            raise CorruptFile("webp VP8X chunk is too short")
        vp8x = bytearray(parts[0])
        vp8x[8] |= FLAG_XMP
        parts[0] = bytes(vp8x)
    elif first.cid in (b"VP8 ", b"VP8L"):
        width, height, alpha = canvas_size(data, first)
        ids = {c.cid for c in chunks}
        flags = FLAG_XMP
        flags |= FLAG_ALPHA if alpha else 0
        flags |= FLAG_ICC if b"ICCP" in ids else 0
        flags |= FLAG_EXIF if b"EXIF" in ids else 0
        size_bytes = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        payload = bytes([flags, 0, 0, 0]) + size_bytes
        parts.insert(0, _chunk_bytes(b"VP8X", payload))
    else:
        raise CorruptFile(f"webp starts with an unexpected {first.cid!r} chunk")
    size = 4 + sum(len(p) for p in parts)
    if size > 0xFFFFFFFF - 1:
        raise LabelerError("labeled webp would exceed the 4 GiB RIFF limit")
    dst.write(b"RIFF" + struct.pack("<I", size) + b"WEBP")
    for part in parts:
        dst.write(part)
    dst.write(data[riff_end:])


__all__ = [
    "FLAG_ICC", "FLAG_ALPHA", "FLAG_EXIF", "FLAG_XMP", "FLAG_ANIMATION", "canvas_size", "read", "write",
]
