"""MP4 / MOV / M4A carrier: mdta key ``AIGC`` in ``moov/udta/meta`` ``keys`` + ``ilst`` (``mp4-keys``).

The video practice guide TC260-PG-20257A (as quoted in the digest, section 4)
puts the label of ISO-BMFF files in ``moov/udta/meta``: an ``mdta`` key
``AIGC`` in the ``keys`` box and the JSON text in the matching ``ilst`` item,
which is what ``ffmpeg -metadata AIGC=... -movflags use_metadata_tags`` writes.
Box layout: ISO/IEC 14496-12 (4.2 box header, 8.1.1 mdat, 8.7.5 stco/co64,
8.7.9 saio, 8.8.7 tfhd, 8.8.10 tfra, 8.11.1 meta, 8.11.3 iloc); the keyed
metadata boxes (``keys``, ``ilst`` items numbered by key index, ``data`` atoms
with a type indicator, 1 = UTF-8) are Apple's QuickTime File Format
specification, "Metadata" chapter. There ``meta`` is a plain box, while ISO
14496-12 makes it a full box (4 bytes version/flags): both are read, told apart
by peeking for a child box header.

The top-level boxes are walked by seeking (``mdat`` is never loaded), at most
:data:`labeler.limits.MAX_BOXES` of them, with 64-bit ``largesize`` headers and
size 0 (box runs to the end of the file). ``moov`` is loaded whole, up to
:data:`labeler.limits.MAX_MOOV` bytes. Inside it only fixed paths are followed
(``udta/meta``, ``meta``, ``trak/mdia/minf/stbl``), never a recursive walk, so
hostile nesting costs nothing. A box that runs past its parent or the file, a
missing ``moov`` or an unreadable header is a :class:`~labeler.errors.CorruptFile`.

Read (standard carrier first)
-----------------------------
1. ``mp4-keys``: key ``AIGC`` (any case) of a keyed ``meta`` in ``moov/udta`` or
   directly under ``moov`` (QuickTime's own metadata place), in file order.
2. ``mp4-ilst``: in an ``ilst`` without keys (iTunes style, handler ``mdir``): a
   ``----`` item named ``AIGC``, an item of type ``AIGC``, or any text item whose
   value parses as a label (a phone app's export).
3. ``xmp-tc260``: XMP ``TC260:AIGC`` in the top-level ``uuid`` box
   BE7ACFCB-97A9-42E8-9C71-999491E3AFAC or in a ``moov/udta/XMP_`` box.
4. ``vendor-key`` (non-standard): other keys whose name contains ``aigc``, and
   keyed items whose value parses as a label.

Write policy
------------
* The label goes into the ``keys`` table the movie already has: the first
  ``meta`` with handler ``mdta`` and a ``keys`` box, directly in ``moov`` or in
  ``moov/udta``, in file order (ffmpeg's files: ``moov/udta/meta``; iPhone and
  other QuickTime files: ``moov/meta``). ffmpeg reads only the first ``keys``
  table of a movie, for every keyed ``ilst`` (see :func:`_target`), so a second
  keyed ``meta`` would make it misread tags. An existing ``AIGC`` item is
  replaced in place; otherwise the key is appended to ``keys`` and the item
  (index = new key count) to ``ilst``; no other key or item is renumbered.
* A movie without a ``keys`` table gets a new ``meta`` (``hdlr`` ``mdta``,
  ``keys``, ``ilst``, laid out as ffmpeg writes it) at the end of ``udta``,
  after any iTunes-style ``meta`` (handler ``mdir``), which is kept byte for
  byte: ffmpeg/ffprobe and exiftool read both ``meta`` boxes, and readers that
  only look at the first ``meta`` (mutagen, iTunes-style taggers) still find
  their tags. A missing ``udta`` is appended to ``moov``.
* Removed, so exactly one label remains (GB 45438-2025 6.1 c): every other
  ``AIGC`` key (a second one in the same table, or one in another keyed
  ``meta``; the later keys and items of that table are renumbered, a ``meta``
  left empty is dropped) and the keyless ``ilst`` items of 2. above. An XMP
  packet (top-level ``uuid`` or ``udta/XMP_``) that already holds
  ``TC260:AIGC`` gets the new value (the packet may hold other properties, so it
  is updated, not removed). Vendor keys are left alone.
* Every other top-level box is copied byte for byte (``mdat`` with a streaming
  copy). If boxes move, every absolute file offset is shifted: ``stco``, ``co64``
  and ``saio`` in the sample tables, ``iloc`` (file-based items) in ``meta``
  boxes, ``tfra`` in ``mfra``, an explicit ``base_data_offset`` in the ``tfhd`` of
  movie fragments (moof-relative fragments need nothing). A ``free``/``skip``
  box between the edited boxes and the media data absorbs the size change when
  it can (then nothing moves).
  Refused with :class:`~labeler.errors.UnsupportedFormat`: a ``stco`` or 4-byte
  ``iloc`` offset that would pass 4 GiB.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, InvalidLabel, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, copy_stream

#: XMP in ISO-BMFF: Adobe XMP Specification Part 3 (2016) 1.1.4, top-level ``uuid`` box with this user type.
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
_KEY = b"aigc"  # compared case-insensitively: ffmpeg's metadata keys are case-insensitive
_U32 = 0xFFFFFFFF
# QuickTime File Format, "Metadata" chapter, well-known data types: text values.
_TEXT_TYPES = {0: "utf-8", 1: "utf-8", 2: "utf-16-be", 4: "utf-8", 5: "utf-16-be"}
_PADDING = (b"free", b"skip")
_MEDIA = (b"mdat", b"moof")


@dataclass(frozen=True)
class _Box:
    type: bytes
    start: int  # offset of the header, in the file or in the buffer it was parsed from
    header: int  # 8, or 16 with a 64-bit largesize
    end: int

    @property
    def content(self) -> int:
        return self.start + self.header

    @property
    def size(self) -> int:
        return self.end - self.start


class _Budget:
    """Counts the boxes visited in one call, against :data:`limits.MAX_BOXES`."""

    def __init__(self) -> None:
        self.count = 0

    def take(self, n: int = 1) -> None:
        self.count += n
        if self.count > limits.MAX_BOXES:
            raise UnsafeInput(f"mp4 file has more than {limits.MAX_BOXES} boxes")


def _name(kind: bytes) -> str:
    return kind.decode("latin-1").replace("\x00", "\\0")


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


# ---------------------------------------------------------------------------------------------- top level


@dataclass
class _File:
    boxes: list[_Box]
    size: int
    tail: int  # offset of trailing bytes too short for a box header (== size when none)


def _top_level(src: BinaryIO, budget: _Budget) -> _File:
    size = src.seek(0, os.SEEK_END)
    if size == 0:
        raise CorruptFile("empty file (0 bytes)")
    boxes: list[_Box] = []
    pos = 0
    while size - pos >= 8:
        budget.take()
        src.seek(pos)
        length, kind = struct.unpack(">I4s", src.read(8))
        header = 8
        if length == 1:  # ISO/IEC 14496-12 4.2: 64-bit largesize follows the type
            raw = src.read(8)
            if len(raw) < 8:
                raise CorruptFile(f"mp4 box {_name(kind)!r} at offset {pos} has a truncated header")
            length, header = struct.unpack(">Q", raw)[0], 16
        elif length == 0:  # 4.2: the last box, running to the end of the file
            length = size - pos
        if length < header:
            raise CorruptFile(f"mp4 box {_name(kind)!r} at offset {pos} has an invalid size {length}")
        if length > size - pos:
            raise CorruptFile(
                f"mp4 box {_name(kind)!r} at offset {pos} runs past the end of the file "
                f"({length} bytes declared, {size - pos} present)"
            )
        boxes.append(_Box(kind, pos, header, pos + length))
        pos += length
    if not boxes:
        raise CorruptFile("not an mp4 file (no complete box)")
    return _File(boxes, size, pos)


def _load(src: BinaryIO, box: _Box, limit: int) -> bytearray:
    if box.size > limit:
        raise UnsafeInput(f"mp4 {_name(box.type)!r} box is {box.size} bytes, over the {limit}-byte limit")
    src.seek(box.start)
    data = bytearray(src.read(box.size))
    if len(data) != box.size:
        raise CorruptFile(f"mp4 {_name(box.type)!r} box is truncated")
    return data


def _moov(src: BinaryIO, layout: _File) -> tuple[int, bytearray]:
    """Index of the (first) ``moov`` box and its bytes, rewritten with a plain 8-byte header."""
    index = next((i for i, b in enumerate(layout.boxes) if b.type == b"moov"), None)
    if index is None:
        raise CorruptFile("mp4 file has no moov box (truncated, or not a complete mp4)")
    box = layout.boxes[index]
    data = _load(src, box, limits.MAX_MOOV)
    if box.header == 16:  # edits below patch 32-bit sizes; moov is at most MAX_MOOV bytes
        data = bytearray(struct.pack(">I", box.size - 8) + b"moov") + data[16:]
    elif layout.boxes[index].end == layout.size and data[:4] == b"\x00\x00\x00\x00":
        data[:4] = struct.pack(">I", box.size)  # size 0 = to end of file: made explicit
    return index, data


# ------------------------------------------------------------------------------------------ inside moov


def _children(
    buf: bytes, parent: _Box, budget: _Budget, start: int | None = None, strict: bool = True
) -> tuple[list[_Box], int]:
    """Child boxes of ``parent`` (from ``start``, default its content) and the offset where they stop.

    Bytes after the last child that cannot be a box (QuickTime ends some ``udta`` boxes with a 32-bit
    zero) are left alone; a child that runs past its parent is a :class:`CorruptFile` when ``strict``,
    else where the children stop.
    """
    pos = parent.content if start is None else start
    end = parent.end
    out: list[_Box] = []
    while end - pos >= 8:
        length, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if length == 1:
            if end - pos < 16:
                break
            length, header = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif length == 0:
            break  # terminator (QTFF) or "to end" (only valid at top level): the children stop here
        if length < header or length > end - pos:
            if not strict:
                break
            where = f"in {_name(parent.type)!r} at offset {pos}"
            raise CorruptFile(f"mp4 box {_name(kind)!r} {where} does not fit in its parent")
        budget.take()
        out.append(_Box(kind, pos, header, pos + length))
        pos += length
    return out, pos


def _full_box_children(buf: bytes, box: _Box) -> int:
    """Offset of the first child of a ``meta`` box: after version/flags (ISO) or not (QuickTime)."""
    c = box.content
    if box.end - c >= 8:
        first = struct.unpack_from(">I", buf, c)[0]
        kind = bytes(buf[c + 4:c + 8])
        if 8 <= first <= box.end - c and all(0x20 <= ch <= 0x7E for ch in kind):
            return c  # a child box header right away: QuickTime's plain meta box
    return c + 4


@dataclass
class _Item:
    box: _Box
    index: int  # the item's type read as a big-endian number (the key index in keyed metadata)
    name: str | None  # freeform ('----') item name
    values: list[tuple[_Box, int, bytes]]  # (data atom, type indicator, value bytes)


@dataclass
class _Meta:
    box: _Box
    path: list[_Box]  # ancestors, moov first
    where: str
    first: int  # offset of the first child
    stop: int  # offset after the last child
    children: list[_Box]
    handler: bytes | None
    keys_box: _Box | None
    keys: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)  # (namespace, name, entry bytes)
    declared_keys: int = 0
    ilst: _Box | None = None
    items: list[_Item] = field(default_factory=list)

    def key_name(self, item: _Item) -> bytes | None:
        if self.keyed and 1 <= item.index <= len(self.keys):
            return self.keys[item.index - 1][1]
        return None

    @property
    def keyed(self) -> bool:
        return self.keys_box is not None and self.handler in (b"mdta", None)


def _parse_keys(buf: bytes, box: _Box, budget: _Budget) -> tuple[int, list[tuple[bytes, bytes, bytes]]]:
    # QTFF metadata 'keys': version/flags, entry_count, then (key_size, key_namespace, key_value) entries.
    if box.end - box.content < 8:
        raise CorruptFile("mp4 keys box is too short")
    declared = struct.unpack_from(">I", buf, box.content + 4)[0]
    entries = []
    pos = box.content + 8
    # The loop is bounded by the box's bytes, not by the declared count (which may be 2^32-1).
    while len(entries) < declared and box.end - pos >= 8:
        length = struct.unpack_from(">I", buf, pos)[0]
        if length < 8 or length > box.end - pos:
            break
        budget.take()
        entry = bytes(buf[pos:pos + length])
        entries.append((entry[4:8], entry[8:], entry))
        pos += length
    return declared, entries


def _parse_item(buf: bytes, box: _Box, budget: _Budget) -> _Item:
    # Lenient: one tag item in a shape we do not know must not hide the labels in the others.
    subs, _ = _children(buf, box, budget, strict=False)
    name = None
    values = []
    for sub in subs:
        if sub.type == b"data" and sub.end - sub.content >= 8:
            # QTFF 'data' atom: type indicator (1 byte set + 3 bytes type), locale, value.
            dtype = struct.unpack_from(">I", buf, sub.content)[0] & 0xFFFFFF
            values.append((sub, dtype, bytes(buf[sub.content + 8:sub.end])))
        elif sub.type == b"name" and box.type == b"----" and sub.end - sub.content >= 4:
            name = bytes(buf[sub.content + 4:sub.end]).decode("utf-8", "replace").rstrip("\x00")
    return _Item(box, struct.unpack(">I", box.type)[0], name, values)


def _parse_meta(buf: bytes, box: _Box, path: list[_Box], where: str, budget: _Budget) -> _Meta:
    first = _full_box_children(buf, box)
    children, stop = _children(buf, box, budget, first)
    meta = _Meta(box, path, where, first, stop, children, None, None)
    for child in children:
        if child.type == b"hdlr" and meta.handler is None and child.end - child.content >= 12:
            meta.handler = bytes(buf[child.content + 8:child.content + 12])  # 8.4.3: after pre_defined
        elif child.type == b"keys" and meta.keys_box is None:
            meta.keys_box = child
            meta.declared_keys, meta.keys = _parse_keys(buf, child, budget)
        elif child.type == b"ilst" and meta.ilst is None:
            meta.ilst = child
            items, _ = _children(buf, child, budget)
            meta.items = [_parse_item(buf, item, budget) for item in items]
    return meta


def _root(buf: bytes) -> _Box:
    """The moov box of a loaded moov (its header was made a plain 8-byte one by :func:`_moov`)."""
    return _Box(b"moov", 0, 8, len(buf))


def _metas(buf: bytes, budget: _Budget) -> tuple[list[_Meta], list[tuple[_Box, _Box]]]:
    """(``moov/meta`` and ``moov/udta/meta`` boxes in file order, (udta, ``XMP_`` box) pairs) of a moov."""
    moov = _root(buf)
    metas, xmp_boxes = [], []
    children, _ = _children(buf, moov, budget)
    for child in children:
        if child.type == b"meta":
            metas.append(_parse_meta(buf, child, [moov], "moov/meta", budget))
        elif child.type == b"udta":
            subs, _ = _children(buf, child, budget)
            for sub in subs:
                if sub.type == b"meta":
                    metas.append(_parse_meta(buf, sub, [moov, child], "moov/udta/meta", budget))
                elif sub.type == b"XMP_":
                    xmp_boxes.append((child, sub))
    return metas, xmp_boxes


def _text(dtype: int, value: bytes) -> str | None:
    codec = _TEXT_TYPES.get(dtype)
    if codec is None:
        return None
    return value.decode(codec, "replace").rstrip("\x00")


def _is_label(text: str) -> bool:
    if len(text) > limits.MAX_TEXT_VALUE or "{" not in text:
        return False
    from labeler.record import is_label_json

    return is_label_json(text)


def _small_text(dtype: int, value: bytes) -> str | None:
    """A text value short enough to be scanned for a label (cover art and long texts are skipped)."""
    return _text(dtype, value) if len(value) <= limits.MAX_TEXT_VALUE else None


def _checked(value: bytes) -> None:
    if len(value) > limits.MAX_TEXT_VALUE:
        limit = limits.MAX_TEXT_VALUE
        raise UnsafeInput(f"mp4 aigc metadata value is {len(value)} bytes, over the {limit}-byte limit")


def _classify(meta: _Meta, item: _Item, dtype: int, value: bytes) -> tuple[str, bool] | None:
    """(carrier, standard) of one ``data`` value, or None when it is no label."""
    key = meta.key_name(item)
    if key is not None:
        if key.lower() == _KEY:
            _checked(value)
            return "mp4-keys", True
        if _KEY in key.lower():
            _checked(value)
            return "vendor-key", False
        text = _small_text(dtype, value)
        return ("vendor-key", False) if text is not None and _is_label(text) else None
    name = item.name.lower() if item.name is not None else None
    if item.box.type.lower() == _KEY or name == "aigc":
        _checked(value)
        return "mp4-ilst", True
    if name is not None and "aigc" in name:
        _checked(value)
        return "vendor-key", False
    text = _small_text(dtype, value)
    return ("mp4-ilst", True) if text is not None and _is_label(text) else None


def _item_where(meta: _Meta, item: _Item) -> str:
    key = meta.key_name(item)
    handler = f" ({_name(meta.handler)})" if meta.handler else ""
    if key is not None:
        return f"{meta.where}{handler} key {key.decode('utf-8', 'replace')!r} (item {item.index})"
    if item.name is not None:
        return f"{meta.where}{handler} ilst item '----' name {item.name!r}"
    return f"{meta.where}{handler} ilst item {_name(item.box.type)!r}"


def _meta_labels(meta: _Meta) -> list[FoundLabel]:
    found = []
    for item in meta.items:
        for _, dtype, value in item.values:
            kind = _classify(meta, item, dtype, value)
            if kind is not None:
                raw = _text(dtype, value)
                if raw is None:
                    raw = value.decode("utf-8", "replace").rstrip("\x00")
                found.append(FoundLabel(kind[0], raw, _item_where(meta, item), kind[1]))
    return found


# ------------------------------------------------------------------------------------------------ XMP


def _xmp_module():
    # Imported lazily: the XMP module is optional for ISO-BMFF files and pulls in defusedxml.
    try:
        from labeler.metadata import xmp
    except ImportError:
        return None
    return xmp


def _xmp_values(packet: bytes) -> list[str]:
    xmp = _xmp_module()
    if xmp is None:
        return []
    try:
        return list(xmp.extract_aigc(packet))
    except CorruptFile:
        return []  # a broken packet hides no label we could read; the rest of the file still counts


def _load_uuid_xmp(src: BinaryIO, box: _Box) -> bytes | None:
    if box.type != b"uuid" or box.end - box.content < 16:
        return None
    src.seek(box.content)
    if src.read(16) != XMP_UUID:
        return None
    length = box.end - box.content - 16
    if length > limits.MAX_XMP_PACKET:
        raise UnsafeInput(f"mp4 xmp packet is {length} bytes, over the {limits.MAX_XMP_PACKET}-byte limit")
    return src.read(length)


def _udta_xmp(buf: bytes, box: _Box) -> bytes:
    length = box.end - box.content
    if length > limits.MAX_XMP_PACKET:
        raise UnsafeInput(f"mp4 xmp packet is {length} bytes, over the {limits.MAX_XMP_PACKET}-byte limit")
    return bytes(buf[box.content:box.end])


# ----------------------------------------------------------------------------------------------- read


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label of an MP4/MOV/M4A file, standard carrier first (see the module notes)."""
    budget = _Budget()
    layout = _top_level(src, budget)
    _, buf = _moov(src, layout)
    _require_mvhd(buf, budget)
    metas, xmp_boxes = _metas(buf, budget)
    found: list[FoundLabel] = []
    for meta in metas:
        found.extend(_meta_labels(meta))
    for _, box in xmp_boxes:
        for raw in _xmp_values(_udta_xmp(buf, box)):
            found.append(FoundLabel("xmp-tc260", raw, "moov/udta/XMP_ box"))
    for box in layout.boxes:
        packet = _load_uuid_xmp(src, box)
        if packet is not None:
            where = f"top-level XMP uuid box at offset {box.start}"
            found.extend(FoundLabel("xmp-tc260", raw, where) for raw in _xmp_values(packet))
    rank = {"mp4-keys": 0, "mp4-ilst": 1, "xmp-tc260": 2}
    # sorted() is stable: copies of one carrier stay in file order (ffmpeg's order too).
    return sorted(found, key=lambda f: (not f.standard, rank.get(f.carrier, 3)))


# ----------------------------------------------------------------------------------------- moov edits


def _set_size(buf: bytearray, box: _Box, size: int) -> None:
    if box.header == 16:
        struct.pack_into(">Q", buf, box.start + 8, size)
    elif size > _U32:
        raise UnsupportedFormat(f"mp4 {_name(box.type)!r} box would pass 4 GiB")
    else:
        struct.pack_into(">I", buf, box.start, size)


def _splice(buf: bytearray, ancestors: list[_Box], a: int, b: int, new: bytes) -> None:
    """Replace ``buf[a:b]`` with ``new`` and fix the sizes of the boxes that enclose it."""
    delta = len(new) - (b - a)
    buf[a:b] = new
    for box in ancestors:
        _set_size(buf, box, box.size + delta)


def _item_bytes(index: int, value: str) -> bytes:
    # QTFF 'data' atom: type indicator 1 (UTF-8, no terminator), locale 0 (default).
    return _box(struct.pack(">I", index), _box(b"data", struct.pack(">II", 1, 0) + value.encode("utf-8")))


def _key_entry(name: bytes) -> bytes:
    return struct.pack(">I", 8 + len(name)) + b"mdta" + name


def _keys_box(entries: list[bytes]) -> bytes:
    return _box(b"keys", struct.pack(">II", 0, len(entries)) + b"".join(entries))


def _new_meta(value: str) -> bytes:
    # As ffmpeg's movenc writes it with use_metadata_tags: full box, hdlr 'mdta' with an empty name.
    hdlr = _box(b"hdlr", b"\x00" * 8 + b"mdta" + b"\x00" * 12 + b"\x00")
    keys = _keys_box([_key_entry(b"AIGC")])
    ilst = _box(b"ilst", _item_bytes(1, value))
    return _box(b"meta", b"\x00\x00\x00\x00" + hdlr + keys + ilst)


def _renumbered(buf: bytes, item: _Item, index: int) -> bytes:
    raw = bytearray(buf[item.box.start:item.box.end])
    raw[4:8] = struct.pack(">I", index)
    return bytes(raw)


def _rebuild(buf: bytearray, meta: _Meta, keys: list[bytes] | None, items: list[bytes] | None) -> None:
    """Replace the children of ``meta``: ``keys`` entries and ``ilst`` items as given (None = unchanged).

    A meta left with neither keys nor items (nor anything but its handler) is removed whole.
    """
    others = [c for c in meta.children if c.type not in (b"hdlr", b"keys", b"ilst")]
    no_keys = not keys if keys is not None else not meta.keys
    no_items = not items if items is not None else not meta.items
    if no_keys and no_items and not others:
        _splice(buf, meta.path, meta.box.start, meta.box.end, b"")
        return
    parts = []
    ilst_done = False
    for child in meta.children:
        if child is meta.keys_box and keys is not None:
            parts.append(_keys_box(keys))
            if meta.ilst is None and items is not None:
                parts.append(_box(b"ilst", b"".join(items)))
                ilst_done = True
        elif child is meta.ilst and items is not None:
            parts.append(_box(b"ilst", b"".join(items)))
            ilst_done = True
        else:
            parts.append(bytes(buf[child.start:child.end]))
    if items is not None and not ilst_done:
        parts.append(_box(b"ilst", b"".join(items)))
    _splice(buf, [*meta.path, meta.box], meta.first, meta.stop, b"".join(parts))


def _remove_one(buf: bytearray, metas: list[_Meta], target: _Meta | None, target_key: int | None) -> bool:
    """Remove one label copy other than the target slot; False when none is left."""
    for meta in metas:
        if meta.keyed:
            for k, (_, name, _) in enumerate(meta.keys, start=1):
                if name.lower() == _KEY and not (meta is target and k == target_key):
                    keys = [entry for j, (_, _, entry) in enumerate(meta.keys, start=1) if j != k]
                    items = []
                    for item in meta.items:
                        if item.index == k:
                            continue
                        index = item.index - 1 if k < item.index <= len(meta.keys) else item.index
                        items.append(_renumbered(buf, item, index))
                    _rebuild(buf, meta, keys, items)
                    return True
        for item in meta.items:
            hits = [v for v in item.values if _classify(meta, item, v[1], v[2]) == ("mp4-ilst", True)]
            if not hits:
                continue
            items = [bytes(buf[i.box.start:i.box.end]) for i in meta.items if i is not item]
            if len(hits) < len(item.values):  # the item's other values stay
                body, pos = bytearray(), item.box.content
                for atom, _, _ in hits:
                    body += buf[pos:atom.start]
                    pos = atom.end
                body += buf[pos:item.box.end]
                items.insert(meta.items.index(item), _box(item.box.type, bytes(body)))
            _rebuild(buf, meta, None, items)
            return True
    return False


def _target(metas: list[_Meta]) -> tuple[_Meta | None, int | None]:
    """The keyed meta that gets the label, and the index of its AIGC key (None: to be appended).

    That is the first meta in ``moov`` or ``moov/udta`` (file order) with handler ``mdta`` and a
    ``keys`` box. Why the first: ffmpeg (5.1, and the 2026 build bundled with imageio-ffmpeg, as
    tested) uses only the first ``keys`` table of a movie and reads the items of every keyed
    ``ilst`` through it, so a second keyed meta makes it show wrong values (an iPhone's
    ``moov/meta`` plus a new ``udta/meta`` turns ``com.apple.quicktime.make`` into the label, or
    ``AIGC`` into the make). Adding the key to the table that is there keeps every reader right;
    only files without one get a ``udta/meta``.
    """
    for meta in metas:
        if meta.keyed and meta.handler == b"mdta":
            key = next((k for k, (_, n, _) in enumerate(meta.keys, 1) if n.lower() == _KEY), None)
            return meta, key
    return None, None


def _require_mvhd(buf: bytes, budget: _Budget) -> None:
    # A moov without a movie header is not a movie (e.g. moov nested in moov a thousand times):
    # refuse it on read as on write, rather than report "no label" for a file no player can open.
    if not any(c.type == b"mvhd" for c in _children(buf, _root(buf), budget)[0]):
        raise CorruptFile("mp4 moov box has no mvhd (not a movie)")


def _edit_moov(buf: bytearray, value: str, budget: _Budget) -> bytearray:
    _require_mvhd(buf, budget)
    for _ in range(limits.MAX_BOXES):
        metas, _ = _metas(buf, budget)
        target, key = _target(metas)
        if not _remove_one(buf, metas, target, key):
            break
    target, key = _target(_metas(buf, budget)[0])
    if target is not None:
        if target.declared_keys != len(target.keys):
            raise CorruptFile(
                f"mp4 keys box declares {target.declared_keys} keys but holds {len(target.keys)}"
            )
        keys = [entry for _, _, entry in target.keys]
        index = key
        if index is None:
            keys.append(_key_entry(b"AIGC"))
            index = len(keys)
        items, placed = [], False
        for item in target.items:
            if item.index == index:
                if not placed:
                    items.append(_item_bytes(index, value))
                    placed = True
                continue
            items.append(bytes(buf[item.box.start:item.box.end]))
        if not placed:
            items.append(_item_bytes(index, value))
        _rebuild(buf, target, keys if key is None else None, items)
    else:
        moov = _root(buf)
        children, stop = _children(buf, moov, budget)
        udta = next((c for c in children if c.type == b"udta"), None)
        if udta is None:
            _splice(buf, [moov], stop, stop, _box(b"udta", _new_meta(value)))
        else:
            # After the udta's last box: before a QuickTime zero terminator, after an iTunes-style meta.
            _, at = _children(buf, udta, budget)
            _splice(buf, [moov, udta], at, at, _new_meta(value))
    for n in range(len(_metas(buf, budget)[1])):
        udta, box = _metas(buf, budget)[1][n]  # parsed again: each splice moves what follows
        packet = _udta_xmp(buf, box)
        if _xmp_values(packet):
            new = _xmp_module().upsert_aigc(packet, value)
            _splice(buf, [_root(buf), udta], box.start, box.end, _box(b"XMP_", new))
    return buf


# -------------------------------------------------------------------------------------- offset fixing


class _Relocation:
    """Maps an absolute offset in the input to the output: the shift of the top-level box holding it."""

    def __init__(self, old: list[_Box], new_starts: list[int | None]) -> None:
        pairs = [(b.start, b.end, n - b.start) for b, n in zip(old, new_starts, strict=True) if n is not None]
        self.starts = [p[0] for p in pairs]
        self.ends = [p[1] for p in pairs]
        self.deltas = [p[2] for p in pairs]

    def __call__(self, offset: int) -> int:
        i = bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.ends[i]:
            return offset + self.deltas[i]
        return offset  # outside every box (already broken): left as it is

    @property
    def moves(self) -> bool:
        return any(self.deltas)


def _patch_table(buf: bytearray, pos: int, count: int, width: int, end: int, what: str, move) -> None:
    if pos + count * width > end:
        raise CorruptFile(f"mp4 {what} box holds fewer entries than it declares")
    fmt = ">Q" if width == 8 else ">I"
    for i in range(count):
        at = pos + i * width
        new = move(struct.unpack_from(fmt, buf, at)[0])
        if width == 4 and new > _U32:
            raise UnsupportedFormat(f"mp4 {what} offsets would pass 4 GiB (32-bit table); cannot shift them")
        struct.pack_into(fmt, buf, at, new)


def _patch_stbl(buf: bytearray, stbl: _Box, move: Callable[[int], int], budget: _Budget) -> None:
    for box in _children(buf, stbl, budget)[0]:
        c = box.content
        if box.type in (b"stco", b"co64") and box.end - c >= 8:
            # 8.7.5: version/flags, entry_count, chunk_offset[] (32 or 64 bit).
            count = struct.unpack_from(">I", buf, c + 4)[0]
            _patch_table(buf, c + 8, count, 4 if box.type == b"stco" else 8, box.end, _name(box.type), move)
        elif box.type == b"saio" and box.end - c >= 8:
            # 8.7.9: in a sample table the offsets are absolute file offsets.
            version, flags = buf[c], int.from_bytes(buf[c + 1:c + 4], "big")
            pos = c + 4 + (8 if flags & 1 else 0)
            if pos + 4 > box.end:
                raise CorruptFile("mp4 saio box is truncated")
            count = struct.unpack_from(">I", buf, pos)[0]
            _patch_table(buf, pos + 4, count, 8 if version else 4, box.end, "saio", move)


def _sized(buf: bytes, pos: int, width: int, end: int) -> int:
    if pos + width > end:
        raise CorruptFile("mp4 iloc box is truncated")
    return int.from_bytes(buf[pos:pos + width], "big") if width else 0


def _patch_iloc(buf: bytearray, box: _Box, move: Callable[[int], int], budget: _Budget) -> None:
    # ISO/IEC 14496-12 8.11.3 item location box.
    c, end = box.content, box.end
    version = _sized(buf, c, 1, end)
    sizes = _sized(buf, c + 4, 2, end)
    off_size, len_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version in (1, 2) else 0
    if any(s not in (0, 4, 8) for s in (off_size, len_size, base_size, index_size)):
        raise CorruptFile("mp4 iloc box has an invalid field size")
    wide = 4 if version >= 2 else 2
    count = _sized(buf, c + 6, wide, end)
    pos = c + 6 + wide
    for _ in range(count):
        budget.take()
        pos += wide  # item_ID
        method = 0
        if version in (1, 2):
            method = _sized(buf, pos, 2, end) & 15
            pos += 2
        data_ref = _sized(buf, pos, 2, end)
        base_at = pos + 2
        base = _sized(buf, base_at, base_size, end)
        pos = base_at + base_size
        extents = _sized(buf, pos, 2, end)
        pos += 2
        in_file = method == 0 and data_ref == 0  # offsets into this file (not idat, not another item)
        for e in range(extents):
            pos += index_size
            off_at = pos
            offset = _sized(buf, off_at, off_size, end)
            pos += off_size + len_size
            _sized(buf, pos - len_size, len_size, end)
            if not in_file:
                continue
            if base_size and e == 0:
                new = move(base + offset) - offset
                _store(buf, base_at, base_size, new)
            elif not base_size and off_size:
                _store(buf, off_at, off_size, move(base + offset) - base)


def _store(buf: bytearray, pos: int, width: int, value: int) -> None:
    if value < 0 or value >= 1 << (8 * width):
        raise UnsupportedFormat("mp4 iloc offsets would not fit their field after the move")
    buf[pos:pos + width] = value.to_bytes(width, "big")


def _patch_moov(buf: bytearray, move: Callable[[int], int], budget: _Budget) -> None:
    moov = _root(buf)
    metas = []
    for child in _children(buf, moov, budget)[0]:
        if child.type == b"meta":
            metas.append(child)
        elif child.type == b"udta":
            metas.extend(c for c in _children(buf, child, budget)[0] if c.type == b"meta")
        elif child.type == b"trak":
            for mdia in _children(buf, child, budget)[0]:
                if mdia.type == b"meta":
                    metas.append(mdia)
                if mdia.type != b"mdia":
                    continue
                for minf in _children(buf, mdia, budget)[0]:
                    if minf.type != b"minf":
                        continue
                    for stbl in _children(buf, minf, budget)[0]:
                        if stbl.type == b"stbl":
                            _patch_stbl(buf, stbl, move, budget)
    for meta in metas:
        _patch_meta_iloc(buf, meta, move, budget)


def _patch_meta_iloc(buf: bytearray, meta: _Box, move: Callable[[int], int], budget: _Budget) -> None:
    for child in _children(buf, meta, budget, _full_box_children(buf, meta))[0]:
        if child.type == b"iloc":
            _patch_iloc(buf, child, move, budget)


def _patch_moof(buf: bytearray, header: int, move: Callable[[int], int], budget: _Budget) -> None:
    moof = _Box(b"moof", 0, header, len(buf))
    for traf in _children(buf, moof, budget)[0]:
        if traf.type != b"traf":
            continue
        for tfhd in _children(buf, traf, budget)[0]:
            # 8.8.7: flag 0x000001 = base-data-offset-present, a 64-bit absolute file offset after track_ID.
            # Without it the offsets are relative to the moof (or the previous traf's data) and move with it.
            if tfhd.type == b"tfhd" and tfhd.end - tfhd.content >= 4 and buf[tfhd.content + 3] & 1:
                at = tfhd.content + 8
                if at + 8 > tfhd.end:
                    raise CorruptFile("mp4 tfhd box is truncated")
                struct.pack_into(">Q", buf, at, move(struct.unpack_from(">Q", buf, at)[0]))


def _patch_mfra(buf: bytearray, header: int, move: Callable[[int], int], budget: _Budget) -> None:
    mfra = _Box(b"mfra", 0, header, len(buf))
    for tfra in _children(buf, mfra, budget)[0]:
        if tfra.type != b"tfra" or tfra.end - tfra.content < 16:
            continue
        # 8.8.10: version/flags, track_ID, size fields, number_of_entry, entries (time, moof_offset, ...).
        c = tfra.content
        wide = 8 if buf[c] == 1 else 4
        sizes = struct.unpack_from(">I", buf, c + 8)[0]
        tail = ((sizes >> 4) & 3) + ((sizes >> 2) & 3) + (sizes & 3) + 3
        count = struct.unpack_from(">I", buf, c + 12)[0]
        step = 2 * wide + tail
        pos = c + 16
        if pos + count * step > tfra.end:
            raise CorruptFile("mp4 tfra box holds fewer entries than it declares")
        fmt = ">Q" if wide == 8 else ">I"
        for i in range(count):
            at = pos + i * step + wide
            new = move(struct.unpack_from(fmt, buf, at)[0])
            if wide == 4 and new > _U32:
                raise UnsupportedFormat("mp4 tfra offsets would pass 4 GiB (32-bit table)")
            struct.pack_into(fmt, buf, at, new)


# ----------------------------------------------------------------------------------------------- write


def _plan(layout: _File, sizes: dict[int, int]) -> tuple[list[int | None], dict[int, int]]:
    """New start of every top-level box (None = dropped) and the new sizes of padding boxes.

    ``sizes`` gives the new size of each edited box. The first ``free``/``skip`` box after an edit
    and before media data absorbs the change when it can, so the media data keeps its offsets.
    """
    starts: list[int | None] = []
    padding: dict[int, int] = {}
    pos = delta = 0
    boxes = layout.boxes
    for i, box in enumerate(boxes):
        size = sizes.get(i, box.size)
        if (
            delta
            and i not in sizes
            and box.type in _PADDING
            and box.header == 8
            and any(b.type in _MEDIA for b in boxes[i + 1:])
        ):
            left = box.size - delta
            if left == 0 or left >= 8:
                padding[i] = left
                size = left  # the running shift drops to zero below
        starts.append(pos if size else None)
        delta += size - box.size
        pos += size
    return starts, padding


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy an MP4/MOV/M4A file from ``src`` to ``dst`` with ``value`` under key ``AIGC``.

    See the module notes for what is kept, replaced, removed and shifted.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidLabel("label value is not valid unicode text (lone surrogate)") from None
    budget = _Budget()
    layout = _top_level(src, budget)
    moov_index, buf = _moov(src, layout)
    replaced: dict[int, bytearray] = {moov_index: _edit_moov(buf, value, budget)}
    for i, box in enumerate(layout.boxes):
        packet = _load_uuid_xmp(src, box)
        if packet is not None and _xmp_values(packet):
            new = _xmp_module().upsert_aigc(packet, value)
            replaced[i] = bytearray(_box(b"uuid", XMP_UUID + new))
    starts, padding = _plan(layout, {i: len(data) for i, data in replaced.items()})
    move = _Relocation(layout.boxes, starts)
    if move.moves:
        for i, box in enumerate(layout.boxes):
            if box.type == b"mfra":
                replaced[i] = _load(src, box, limits.MAX_MOOV)
                _patch_mfra(replaced[i], box.header, move, budget)
            elif box.type == b"meta" and i not in replaced:
                data = _load(src, box, limits.MAX_MOOV)
                _patch_meta_iloc(data, _Box(b"meta", 0, box.header, len(data)), move, budget)
                replaced[i] = data
        _patch_moov(replaced[moov_index], move, budget)
    for i, box in enumerate(layout.boxes):
        if i in padding:
            if padding[i]:
                src.seek(box.content)
                body = src.read(min(padding[i], box.size) - 8)
                dst.write(_box(box.type, body + b"\x00" * (padding[i] - 8 - len(body))))
        elif i in replaced:
            dst.write(replaced[i])
        elif box.type == b"moof" and move.moves:
            # Fragments are patched one at a time as they are copied (a long stream has thousands, so
            # each gets its own box budget: the top-level walk already bounded their number).
            data = _load(src, box, limits.MAX_MOOV)
            _patch_moof(data, box.header, move, _Budget())
            dst.write(data)
        else:
            src.seek(box.start)
            copy_stream(src, dst, box.size)
    src.seek(layout.tail)
    copy_stream(src, dst, layout.size - layout.tail)
