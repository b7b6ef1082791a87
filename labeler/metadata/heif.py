"""HEIF / HEIC / AVIF carrier: ``TC260:AIGC`` in the XMP item of the image's ``meta`` box (``xmp-tc260``).

The digest (``/work/shared/spec/labeling-spec.md`` section 4) puts the label of a HEIF image in XMP "per
ISO/IEC 23008-12": HEIF keeps XMP as an *item* of the file-level ``meta`` box, of type ``mime`` with
content type ``application/rdf+xml``, linked to the image it describes by a ``cdsc`` ("content
describes") item reference, which is how libheif, exiftool and Apple write it. AVIF is HEIF with AV1
images (same boxes). Box layouts: ISO/IEC 14496-12 8.11.1 (``meta``), 8.11.3 (``iloc``), 8.11.4
(``pitm``), 8.11.6 (``iinf``/``infe``), 8.11.11 (``idat``), 8.11.12 (``iref``).

Reading: every XMP item's packet (through its ``iloc`` extents, in the file or in ``idat``; at most
:data:`labeler.limits.MAX_XMP_PACKET` bytes), standard copies first.

Writing (no image byte moves within its box; only ``meta`` is rebuilt):

* The first XMP item's packet gets ``TC260:AIGC`` set (other properties kept, ``upsert_aigc``); a label
  in any further XMP item is removed. A file without an XMP item gets one: a new ``infe`` (the next free
  item ID), a ``cdsc`` reference to the primary item (``pitm``), and its location.
* New packets are stored in the ``meta`` box's ``idat`` (construction method 1, appended after any data
  already there), so the media data never changes; the ``iloc`` is rewritten as version 1 at least
  (version 0 has no construction method) with every other entry as it was. An old packet's bytes in
  ``mdat`` are left in place, unreferenced.
* ``meta`` grows, so the boxes after it move unless a ``free``/``skip`` box before the media absorbs the
  change; every absolute item offset is then shifted (:func:`labeler.metadata.bmff_boxes.rewrite`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, UnsupportedFormat
from labeler.metadata import FoundLabel
from labeler.metadata.bmff_boxes import (
    Box,
    Budget,
    Layout,
    box_bytes,
    child_boxes,
    load_box,
    meta_first_child,
    plan_layout,
    rewrite,
    top_level,
)

CARRIER = "xmp-tc260"
XMP_TYPE = b"application/rdf+xml"


@dataclass
class _Extent:
    index: int
    offset: int
    length: int


@dataclass
class _Location:
    item: int
    method: int
    data_ref: int
    base: int
    extents: list[_Extent]


@dataclass
class _Iloc:
    version: int
    sizes: tuple[int, int, int, int]  # offset, length, base_offset, index field widths (bytes)
    entries: list[_Location]


@dataclass
class _Meta:
    """A loaded top-level ``meta`` (plain 8-byte header) and the boxes the carrier reads or rebuilds."""

    buf: bytearray
    children: list[Box]
    primary: int | None = None
    iinf: Box | None = None
    iloc: Box | None = None
    iref: Box | None = None
    idat: Box | None = None
    items: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # id -> (type, content type)


def _uint(buf: bytes, pos: int, width: int, end: int) -> int:
    if pos + width > end:
        raise CorruptFile("heif box is truncated")
    return int.from_bytes(buf[pos:pos + width], "big") if width else 0


def _load(src: BinaryIO) -> tuple[Layout, int, _Meta, Budget]:
    budget = Budget()
    layout = top_level(src, budget)
    index = next((i for i, b in enumerate(layout.boxes) if b.type == b"meta"), None)
    if index is None:
        raise CorruptFile("heif file has no meta box")
    box = layout.boxes[index]
    buf = load_box(src, box, limits.MAX_MOOV)
    if box.header == 16:  # the rebuilt box gets a plain header; meta is at most MAX_MOOV bytes
        buf = bytearray(struct.pack(">I", box.size - 8) + b"meta") + buf[16:]
    root = Box(b"meta", 0, 8, len(buf))
    meta = _Meta(buf, child_boxes(buf, root, budget, meta_first_child(buf, root))[0])
    for child in meta.children:
        if child.type in (b"iinf", b"iloc", b"iref", b"idat") and getattr(meta, child.type.decode()) is None:
            setattr(meta, child.type.decode(), child)
        elif child.type == b"pitm" and meta.primary is None:
            wide = 4 if _uint(buf, child.content, 1, child.end) else 2
            meta.primary = _uint(buf, child.content + 4, wide, child.end)
    if meta.iinf is not None:
        meta.items = _parse_iinf(buf, meta.iinf, budget)
    return layout, index, meta, budget


def _parse_iinf(buf: bytes, box: Box, budget: Budget) -> dict[int, tuple[bytes, bytes]]:
    """item ID -> (item type, content type) of the ``infe`` entries (versions 2 and 3; older ones have no
    item type and are skipped)."""
    wide = 2 if _uint(buf, box.content, 1, box.end) == 0 else 4
    items: dict[int, tuple[bytes, bytes]] = {}
    for infe in child_boxes(buf, box, budget, box.content + 4 + wide)[0]:
        c, end = infe.content, infe.end
        version = _uint(buf, c, 1, end)
        if infe.type != b"infe" or version < 2:
            continue
        id_wide = 2 if version == 2 else 4
        item = _uint(buf, c + 4, id_wide, end)
        at = c + 4 + id_wide + 2  # item_protection_index
        kind = bytes(buf[at:at + 4])
        strings = bytes(buf[at + 4:end]).split(b"\x00")
        content_type = strings[1] if kind == b"mime" and len(strings) > 1 else b""
        items[item] = (kind, content_type)
    return items


def _parse_iloc(buf: bytes, box: Box, budget: Budget) -> _Iloc:
    c, end = box.content, box.end
    version = _uint(buf, c, 1, end)
    if version > 2:
        raise UnsupportedFormat(f"heif iloc version {version}")
    packed = _uint(buf, c + 4, 2, end)
    sizes = (packed >> 12, (packed >> 8) & 15, (packed >> 4) & 15, packed & 15 if version else 0)
    if any(s not in (0, 4, 8) for s in sizes):
        raise CorruptFile("heif iloc box has an invalid field size")
    off, length, base, index = sizes
    wide = 4 if version == 2 else 2
    count = _uint(buf, c + 6, wide, end)
    pos = c + 6 + wide
    entries = []
    for _ in range(count):
        budget.take()
        item = _uint(buf, pos, wide, end)
        pos += wide
        method = 0
        if version:
            method = _uint(buf, pos, 2, end) & 15
            pos += 2
        data_ref, base_offset = _uint(buf, pos, 2, end), _uint(buf, pos + 2, base, end)
        pos += 2 + base
        extents = []
        count_extents, pos = _uint(buf, pos, 2, end), pos + 2
        for _ in range(count_extents):
            budget.take()
            extents.append(_Extent(_uint(buf, pos, index, end), _uint(buf, pos + index, off, end),
                                   _uint(buf, pos + index + off, length, end)))
            pos += index + off + length
        entries.append(_Location(item, method, data_ref, base_offset, extents))
    return _Iloc(version, sizes, entries)


def _iloc_bytes(iloc: _Iloc, marked: set[int]) -> tuple[bytes, dict[int, int]]:
    """The ``iloc`` box, and the byte position (in it) of the first extent offset of each entry whose
    ``id()`` is in ``marked``, by that ``id()``."""
    off, length, base, index = iloc.sizes
    version = iloc.version
    wide = 4 if version == 2 else 2
    out = bytearray(struct.pack(">B3xH", version, off << 12 | length << 8 | base << 4 | index))
    out += len(iloc.entries).to_bytes(wide, "big")
    fields = {}
    for e in iloc.entries:
        out += e.item.to_bytes(wide, "big")
        if version:
            out += struct.pack(">H", e.method)
        out += struct.pack(">H", e.data_ref) + e.base.to_bytes(base, "big")
        out += struct.pack(">H", len(e.extents))
        for k, x in enumerate(e.extents):
            if k == 0 and id(e) in marked:
                fields[id(e)] = 8 + len(out) + index  # 8: the box header
            out += x.index.to_bytes(index, "big") + x.offset.to_bytes(off, "big")
            out += x.length.to_bytes(length, "big")
    return box_bytes(b"iloc", bytes(out)), fields


def _item_data(src: BinaryIO, meta: _Meta, loc: _Location, file_size: int) -> bytes | None:
    """The bytes of one item (construction method 0 in this file, or 1 in ``idat``); None otherwise."""
    if loc.data_ref != 0 or loc.method not in (0, 1) or (loc.method == 1 and meta.idat is None):
        return None
    out = bytearray()
    for x in loc.extents:
        start = loc.base + x.offset
        if loc.method == 1:
            assert meta.idat is not None
            room = meta.idat.end - meta.idat.content
            length = x.length or room - start
            if start + length > room:
                raise CorruptFile("heif item extent runs past its idat box")
            out += meta.buf[meta.idat.content + start:meta.idat.content + start + length]
        else:
            length = x.length or file_size - start
            if start + length > file_size:
                raise CorruptFile("heif item extent runs past the end of the file")
            src.seek(start)
            out += src.read(length)
        if len(out) > limits.MAX_XMP_PACKET:
            raise CorruptFile(f"heif XMP item is over {limits.MAX_XMP_PACKET} bytes")
    return bytes(out)


def _xmp_items(src: BinaryIO, layout: Layout, meta: _Meta, budget: Budget) -> tuple[_Iloc | None, list[tuple[
        _Location, bytes]]]:
    """The ``iloc`` and every XMP item's location and packet, in ``iloc`` order."""
    if meta.iloc is None:
        return None, []
    iloc = _parse_iloc(meta.buf, meta.iloc, budget)
    found = []
    for loc in iloc.entries:
        kind, content_type = meta.items.get(loc.item, (b"", b""))
        if kind == b"mime" and content_type.split(b";")[0].strip() == XMP_TYPE:
            data = _item_data(src, meta, loc, layout.size)
            if data is not None:
                found.append((loc, data))
    return iloc, found


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label value in the XMP items of a HEIF / HEIC / AVIF file."""
    from labeler.metadata.xmp import packet_labels

    layout, _, meta, budget = _load(src)
    _, items = _xmp_items(src, layout, meta, budget)
    found = [label for loc, packet in items for label in packet_labels(packet, f"XMP item {loc.item}")]
    return sorted(found, key=lambda f: not f.standard)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a HEIF / HEIC / AVIF file to ``dst`` with ``value`` as ``TC260:AIGC`` in its XMP item.

    ``dst`` must be seekable: the packets' file offsets are written into ``iloc`` once the file is out.
    """
    from labeler.metadata.xmp import extract_aigc, remove_aigc, upsert_aigc

    layout, index, meta, budget = _load(src)
    if meta.iloc is None or meta.iinf is None or meta.primary is None:
        raise CorruptFile("heif meta box lacks its item boxes (iinf, iloc, pitm)")
    iloc, items = _xmp_items(src, layout, meta, budget)
    assert iloc is not None
    new_info, new_ref = b"", None
    packets = [(items[0][0], upsert_aigc(items[0][1], value))] if items else []
    packets += [(loc, remove_aigc(p)) for loc, p in items[1:] if extract_aigc(p)]
    if not items:
        item = max([*meta.items, *(e.item for e in iloc.entries), meta.primary]) + 1
        new_info = _infe(item)
        new_ref = _iref_plus(meta, item, meta.primary)
        loc = _Location(item, 0, 0, 0, [])
        iloc.entries.append(loc)
        packets.append((loc, upsert_aigc(None, value)))
    replaced = {index: bytearray()}
    ours = _own_box(layout, items)
    if ours is not None:
        replaced[ours] = bytearray()  # the packet box an earlier write appended: dropped, written anew
    at = 0
    for loc, packet in packets:  # offset 0 for now: the file offsets are known once the file is written
        loc.method, loc.data_ref, loc.base = 0, 0, 0
        loc.extents = [_Extent(0, 0, len(packet))]
    if max(e.item for e in iloc.entries) > 0xFFFF:
        iloc.version = 2
    off, length, base, index_size = iloc.sizes
    wide = 8 if layout.size + sum(len(p) for _, p in packets) + (1 << 20) >= 1 << 32 else 4
    iloc.sizes = (max(off, wide), max(length, 4), base, index_size)
    iloc_box, fields = _iloc_bytes(iloc, {id(loc) for loc, _ in packets})
    replaced[index], where = _rebuild(meta, {b"iloc": iloc_box, b"iinf": _iinf_plus(meta, new_info),
                                             b"iref": new_ref})
    starts, _ = plan_layout(layout, {i: len(data) for i, data in replaced.items()})
    rewrite(src, dst, layout, replaced, index, budget)
    end = dst.tell()
    dst.write(box_bytes(b"mdat", b"".join(p for _, p in packets)))
    meta_start = starts[index]
    assert meta_start is not None
    for loc, packet in packets:
        dst.seek(meta_start + where[b"iloc"] + fields[id(loc)])
        dst.write((end + 8 + at).to_bytes(iloc.sizes[0], "big"))
        at += len(packet)
    dst.seek(0, 2)


def _own_box(layout: Layout, items: list[tuple[_Location, bytes]]) -> int | None:
    """Index of the last top-level box when it is an ``mdat`` holding exactly the first XMP item (what an
    earlier :func:`write` appended), else None."""
    last = layout.boxes[-1]
    if not items or last.type != b"mdat" or len(layout.boxes) < 3:
        return None
    loc = items[0][0]
    if loc.method != 0 or len(loc.extents) != 1:
        return None
    x = loc.extents[0]
    whole = (loc.base + x.offset, x.length) == (last.content, last.end - last.content)
    return len(layout.boxes) - 1 if whole else None


def _infe(item: int) -> bytes:
    version = 2 if item <= 0xFFFF else 3
    body = struct.pack(">B3x", version) + item.to_bytes(2 if version == 2 else 4, "big") + b"\x00\x00"
    return box_bytes(b"infe", body + b"mime" + b"XMP\x00" + XMP_TYPE + b"\x00")


def _iref_plus(meta: _Meta, item: int, primary: int) -> bytes:
    """The ``iref`` (the existing one, or a new one) with a ``cdsc`` reference from ``item`` to ``primary``
    added, item IDs as wide as the box's version says (0: 16 bits, 1: 32 bits)."""
    box = meta.iref
    version = meta.buf[box.content] if box is not None else int(max(item, primary) > 0xFFFF)
    if version == 0 and max(item, primary) > 0xFFFF:
        raise UnsupportedFormat("heif iref of 16-bit item IDs cannot reference item IDs over 65535")
    wide = 4 if version else 2
    ref = box_bytes(b"cdsc", item.to_bytes(wide, "big") + b"\x00\x01" + primary.to_bytes(wide, "big"))
    head = bytes(meta.buf[box.content:box.end]) if box is not None else struct.pack(">B3x", version)
    return box_bytes(b"iref", head + ref)


def _iinf_plus(meta: _Meta, infe: bytes) -> bytes | None:
    """The ``iinf`` with ``infe`` added (None: unchanged); its count widened to 32 bits if it must be."""
    if not infe:
        return None
    box = meta.iinf
    assert box is not None
    old = meta.buf[box.content]
    wide = 2 if old == 0 else 4
    count = _uint(meta.buf, box.content + 4, wide, box.end) + 1
    version = 1 if old == 0 and count > 0xFFFF else old
    head = struct.pack(">B", version) + bytes(meta.buf[box.content + 1:box.content + 4])
    rest = bytes(meta.buf[box.content + 4 + wide:box.end])
    return box_bytes(b"iinf", head + count.to_bytes(2 if version == 0 else 4, "big") + rest + infe)


def _rebuild(meta: _Meta, new: dict[bytes, bytes | None]) -> tuple[bytearray, dict[bytes, int]]:
    """The ``meta`` box with its first ``iloc``/``iinf``/``iref`` children replaced (or appended, when it has
    none), and where each replaced child starts in it."""
    root = Box(b"meta", 0, 8, len(meta.buf))
    first = meta_first_child(meta.buf, root)
    parts = [bytes(meta.buf[root.content:first])]
    pos, where = 8 + len(parts[0]), {}
    for child in meta.children:
        body = new.get(child.type) if child.type not in where else None
        if body is not None:
            where[child.type] = pos
        else:
            body = bytes(meta.buf[child.start:child.end])
        parts.append(body)
        pos += len(body)
    for kind, body in new.items():
        if kind not in where and body is not None:
            where[kind] = pos
            parts.append(body)
            pos += len(body)
    return bytearray(box_bytes(b"meta", b"".join(parts))), where


def _primary_property(src: BinaryIO, kind: bytes) -> tuple[bytes | bytearray, Box] | None:
    """The primary item's first property of type ``kind`` (e.g. ``b"ispe"``, ``b"av1C"``) and the buffer
    it lies in, or None when the file does not say. ``iprp/ipco`` holds the properties (numbered from
    1) and ``ipma`` says which item has which (ISO/IEC 23008-12 9.3)."""
    _, _, meta, budget = _load(src)
    buf = meta.buf
    iprp = next((c for c in meta.children if c.type == b"iprp"), None)
    if iprp is None or meta.primary is None:
        return None
    kids = child_boxes(buf, iprp, budget, strict=False)[0]
    ipco = next((c for c in kids if c.type == b"ipco"), None)
    if ipco is None:
        return None
    props = child_boxes(buf, ipco, budget, strict=False)[0]
    for ipma in (c for c in kids if c.type == b"ipma"):
        version, flags = buf[ipma.content], _uint(buf, ipma.content + 1, 3, ipma.end)
        pos = ipma.content + 8
        for _ in range(_uint(buf, ipma.content + 4, 4, ipma.end)):
            budget.take()
            wide = 4 if version else 2
            item, count = _uint(buf, pos, wide, ipma.end), _uint(buf, pos + wide, 1, ipma.end)
            pos += wide + 1
            step = 2 if flags & 1 else 1
            indexes = [_uint(buf, pos + k * step, step, ipma.end) & (0x7FFF if step == 2 else 0x7F)
                       for k in range(count)]
            pos += count * step
            if item != meta.primary:
                continue
            for i in indexes:
                if 0 < i <= len(props) and props[i - 1].type == kind:
                    return buf, props[i - 1]
    return None


def primary_size(src: BinaryIO) -> tuple[int, int] | None:
    """(width, height) in pixels of the primary item, from its ``ispe`` property (image spatial extents),
    or None when the file does not say. A bound to check before decoding: a grid's ``ispe`` is its whole
    canvas."""
    found = _primary_property(src, b"ispe")
    if found is None:
        return None
    buf, box = found
    return _uint(buf, box.content + 4, 4, box.end), _uint(buf, box.content + 8, 4, box.end)


def av1_coding(src: BinaryIO) -> tuple[int | None, int] | None:
    """An AVIF primary item's chroma subsampling and bit depth, from its ``av1C`` property (AV1 in
    ISOBMFF 2.3.3: byte 2 holds high_bitdepth, twelve_bit, mono_chrome, chroma_subsampling_x and _y in
    bits 6, 5, 4, 3 and 2), or None when the file does not say (a grid: its ``av1C`` is on the tiles).

    The subsampling is in Pillow's JPEG numbers (0: 4:4:4, 1: 4:2:2, 2: 4:2:0), None for a monochrome
    picture: a re-encode keeps it (Pillow does not report what it read and writes 4:2:0 unless told).
    The depth is 8, 10 or 12 (Pillow reads and writes AVIF at 8 bits: a deeper source loses its depth).
    """
    found = _primary_property(src, b"av1C")
    if found is None:
        return None
    buf, box = found
    bits = _uint(buf, box.content + 2, 1, box.end)
    depth = (12 if bits & 0x20 else 10) if bits & 0x40 else 8
    if bits & 0x10:
        return None, depth
    return {(0, 0): 0, (1, 0): 1, (1, 1): 2}.get(((bits >> 3) & 1, (bits >> 2) & 1)), depth
