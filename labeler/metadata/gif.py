"""GIF carrier: XMP in the ``XMP DataXMP`` Application Extension (carrier ``xmp-tc260``).

The image practice guide TC260-PG-20259A (digest section 4) puts the label of a
GIF file in an XMP packet in an Application Extension. XMP Specification Part 3
(2016) 1.1.2 "GIF": application identifier ``XMP Data``, authentication code
``XMP``, then the packet bytes written as they are (not cut into sub-blocks),
followed by a 258-byte "magic trailer" (0x01, 0xFF, 0xFE ... 0x01, 0x00, then the
block terminator 0x00) that makes a reader walking the bytes as sub-blocks land
on the terminator whatever the packet holds, as long as it holds no NUL byte.
GIF layout: GIF89a specification (CompuServe, 1990) sections 17-27 (header,
logical screen descriptor, colour tables, image descriptor, extensions, data
sub-blocks, trailer).

The blocks are walked from the logical screen descriptor to the trailer, at most
:data:`labeler.limits.MAX_BOXES` blocks (frames and extensions); a block running
past the end of the file is :class:`~labeler.errors.CorruptFile`. A file that ends
right after a complete block without the trailer (common) is accepted; bytes
after the trailer are kept.

Labels read (standard first): ``xmp-tc260`` from ``XMP DataXMP`` extensions,
then ``app-blob`` (``standard=False``) for a Comment Extension holding
``AIGC{...}`` or ``{"AIGC"...``.

Write policy
------------
* An existing ``XMP DataXMP`` extension gets the label
  (:func:`labeler.metadata.xmp.upsert_aigc`, a textual edit keeping every other
  property) where it is; further ones lose their ``TC260:AIGC`` properties.
* Otherwise a new one is inserted after the leading Application and Comment
  Extensions (e.g. the ``NETSCAPE2.0`` loop extension), before the first Graphic
  Control Extension, image or plain-text block, so it stays in the file's
  header area and never separates a Graphic Control Extension from its image.
* A ``GIF87a`` file becomes ``GIF89a`` (its 6-byte signature): extensions are a
  GIF89a feature (GIF89a section 17). Everything else is copied byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput
from labeler.metadata import FoundLabel, aigc_blob, read_all
from labeler.metadata.xmp import extract_aigc, packet_labels, remove_aigc, upsert_aigc

XMP_APP_ID = b"XMP DataXMP"  # XMP Part 3 1.1.2: identifier "XMP Data" + authentication code "XMP"
#: XMP Part 3 1.1.2: 0x01, 0xFF down to 0x00, and the block terminator.
MAGIC_TRAILER = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"
_EXTENSION, _IMAGE, _TRAILER = 0x21, 0x2C, 0x3B
_APPLICATION, _COMMENT = 0xFF, 0xFE


@dataclass
class _Block:
    kind: int  # 0x21 extension (label in ``label``), 0x2C image, 0x3B trailer
    offset: int
    end: int
    label: int = 0
    app_id: bytes = b""
    data_start: int = 0  # first byte after the application identifier sub-block


def _sub_blocks_end(data: bytes, pos: int, what: str) -> int:
    """Offset just after the sub-block sequence starting at ``pos`` (GIF89a 15: data sub-blocks)."""
    size = len(data)
    while True:
        if pos >= size:
            raise CorruptFile(f"gif is truncated inside the {what}")
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos


def _color_table_size(packed: int) -> int:
    # GIF89a 18/20: flag in bit 7, size 3 * 2^(N+1) bytes with N in bits 0-2.
    return 3 * (1 << ((packed & 0x07) + 1)) if packed & 0x80 else 0


def _blocks(data: bytes) -> tuple[int, list[_Block]]:
    """Offset of the first block after the screen descriptor and colour table, and the blocks."""
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        raise CorruptFile("not a gif file (bad signature)")
    pos = 13 + _color_table_size(data[10])
    if pos > len(data):
        raise CorruptFile("gif is truncated inside the global colour table")
    head = pos
    blocks: list[_Block] = []
    size = len(data)
    while pos < size:
        if len(blocks) >= limits.MAX_BOXES:
            raise UnsafeInput(f"gif has more than {limits.MAX_BOXES} blocks")
        kind = data[pos]
        if kind == _TRAILER:
            blocks.append(_Block(kind, pos, pos + 1))
            break
        if kind == _EXTENSION:
            if pos + 2 > size:
                raise CorruptFile("gif is truncated inside an extension")
            label = data[pos + 1]
            block = _Block(kind, pos, 0, label)
            if label == _APPLICATION and pos + 3 <= size and data[pos + 2] == 11:
                block.app_id = data[pos + 3:pos + 14]
                block.data_start = pos + 14
                block.end = _sub_blocks_end(data, pos + 14, "application extension")
            else:
                block.end = _sub_blocks_end(data, pos + 2, "extension")
        elif kind == _IMAGE:
            if pos + 10 > size:
                raise CorruptFile("gif is truncated inside an image descriptor")
            start = pos + 10 + _color_table_size(data[pos + 9]) + 1  # + LZW minimum code size byte
            block = _Block(kind, pos, _sub_blocks_end(data, start, "image data"))
        else:
            raise CorruptFile(f"gif has an unknown block type 0x{kind:02x} at offset {pos}")
        if block.end > size:
            raise CorruptFile("gif is truncated inside a block")
        blocks.append(block)
        pos = block.end
    return head, blocks


def _packet(data: bytes, block: _Block) -> bytes:
    """The XMP packet of an ``XMP DataXMP`` extension."""
    region = data[block.data_start:block.end]
    if region.endswith(MAGIC_TRAILER):
        return region[:-len(MAGIC_TRAILER)]
    at = region.find(MAGIC_TRAILER[:4])
    if at >= 0:
        return region[:at]
    # No magic trailer: a writer that cut the packet into ordinary sub-blocks.
    return _join_sub_blocks(region)


def _join_sub_blocks(region: bytes) -> bytes:
    out, pos = [], 0
    while pos < len(region) and region[pos]:
        out.append(region[pos + 1:pos + 1 + region[pos]])
        pos += 1 + region[pos]
    return b"".join(out)


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label value in a GIF file: XMP first, then AIGC comment blobs."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    _, blocks = _blocks(data)
    found: list[FoundLabel] = []
    blobs: list[FoundLabel] = []
    for block in blocks:
        if block.kind != _EXTENSION:
            continue
        where = f"at offset {block.offset}"
        if block.app_id == XMP_APP_ID:
            packet = _packet(data, block)
            where = f"XMP application extension {where}"
            found += packet_labels(packet, where)
        elif block.label == _COMMENT:
            text = aigc_blob(_join_sub_blocks(data[block.offset + 2:block.end]))
            if text is not None:
                blobs.append(FoundLabel("app-blob", text, f"comment extension {where}", standard=False))
    return sorted(found + blobs, key=lambda f: not f.standard)


def _extension(packet: bytes) -> bytes:
    if b"\x00" in packet:
        raise LabelerError("xmp packet holds a NUL byte, which a gif xmp extension cannot carry")
    return b"\x21\xff\x0b" + XMP_APP_ID + packet + MAGIC_TRAILER


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a GIF file to ``dst`` with ``value`` as ``TC260:AIGC`` in its XMP extension (see module doc)."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    head, blocks = _blocks(data)
    parts = [data[b.offset:b.end] for b in blocks]
    xmp = [i for i, b in enumerate(blocks) if b.app_id == XMP_APP_ID]
    if xmp:
        old = _packet(data, blocks[xmp[0]])
        if len(old) > limits.MAX_XMP_PACKET:
            raise UnsafeInput(f"gif xmp packet is {len(old)} bytes, over the xmp packet limit")
        parts[xmp[0]] = _extension(upsert_aigc(old.rstrip(b"\x00"), value))
        for i in xmp[1:]:
            extra = _packet(data, blocks[i])
            if extract_aigc(extra):
                parts[i] = _extension(remove_aigc(extra))
    else:
        leading = (_APPLICATION, _COMMENT)
        header_area = [b.kind == _EXTENSION and b.label in leading for b in blocks] + [False]
        at = header_area.index(False)
        parts.insert(at, _extension(upsert_aigc(None, value)))
    end = blocks[-1].end if blocks else head
    dst.write(b"GIF89a" + data[6:head])
    for part in parts:
        dst.write(part)
    dst.write(data[end:])


__all__ = ["XMP_APP_ID", "MAGIC_TRAILER", "read", "write"]
