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
   keyed items whose value parses as a label; also non-standard, a label in a
   QuickTime ``moov/udta`` text atom (``mp4-udta-cmt``...) or in another XMP
   property (:func:`labeler.metadata.misplaced_label`).

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

The box walking, size fix-ups and offset shifting are :mod:`labeler.metadata.bmff_boxes`; this module
is the label's reader and writer on top of it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, InvalidLabel, UnsafeInput
from labeler.metadata import FoundLabel, misplaced_label
from labeler.metadata.bmff_boxes import (
    Box,
    Budget,
    box_bytes,
    box_name,
    child_boxes,
    load_moov,
    meta_first_child,
    moov_root,
    rewrite,
    splice,
    top_level,
)

#: XMP in ISO-BMFF: Adobe XMP Specification Part 3 (2016) 1.1.4, top-level ``uuid`` box with this user type.
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
_KEY = b"aigc"  # compared case-insensitively: ffmpeg's metadata keys are case-insensitive
# QuickTime File Format, "Metadata" chapter, well-known data types: text values.
_TEXT_TYPES = {0: "utf-8", 1: "utf-8", 2: "utf-16-be", 4: "utf-8", 5: "utf-16-be"}


@dataclass
class _Item:
    box: Box
    index: int  # the item's type read as a big-endian number (the key index in keyed metadata)
    name: str | None  # freeform ('----') item name
    values: list[tuple[Box, int, bytes]]  # (data atom, type indicator, value bytes)


@dataclass
class _Meta:
    box: Box
    path: list[Box]  # ancestors, moov first
    where: str
    first: int  # offset of the first child
    stop: int  # offset after the last child
    children: list[Box]
    handler: bytes | None
    keys_box: Box | None
    keys: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)  # (namespace, name, entry bytes)
    declared_keys: int = 0
    ilst: Box | None = None
    items: list[_Item] = field(default_factory=list)

    def key_name(self, item: _Item) -> bytes | None:
        if self.keyed and 1 <= item.index <= len(self.keys):
            return self.keys[item.index - 1][1]
        return None

    @property
    def keyed(self) -> bool:
        return self.keys_box is not None and self.handler in (b"mdta", None)


def _parse_keys(buf: bytes, box: Box, budget: Budget) -> tuple[int, list[tuple[bytes, bytes, bytes]]]:
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


def _parse_item(buf: bytes, box: Box, budget: Budget) -> _Item:
    # Lenient: one tag item in a shape we do not know must not hide the labels in the others.
    subs, _ = child_boxes(buf, box, budget, strict=False)
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


def _parse_meta(buf: bytes, box: Box, path: list[Box], where: str, budget: Budget) -> _Meta:
    first = meta_first_child(buf, box)
    children, stop = child_boxes(buf, box, budget, first)
    meta = _Meta(box, path, where, first, stop, children, None, None)
    for child in children:
        if child.type == b"hdlr" and meta.handler is None and child.end - child.content >= 12:
            meta.handler = bytes(buf[child.content + 8:child.content + 12])  # 8.4.3: after pre_defined
        elif child.type == b"keys" and meta.keys_box is None:
            meta.keys_box = child
            meta.declared_keys, meta.keys = _parse_keys(buf, child, budget)
        elif child.type == b"ilst" and meta.ilst is None:
            meta.ilst = child
            items, _ = child_boxes(buf, child, budget)
            meta.items = [_parse_item(buf, item, budget) for item in items]
    return meta


def _metas(buf: bytes, budget: Budget) -> tuple[list[_Meta], list[tuple[Box, Box]]]:
    """(``moov/meta`` and ``moov/udta/meta`` boxes in file order, (udta, ``XMP_`` box) pairs) of a moov."""
    moov = moov_root(buf)
    metas, xmp_boxes = [], []
    children, _ = child_boxes(buf, moov, budget)
    for child in children:
        if child.type == b"meta":
            metas.append(_parse_meta(buf, child, [moov], "moov/meta", budget))
        elif child.type == b"udta":
            subs, _ = child_boxes(buf, child, budget)
            for sub in subs:
                if sub.type == b"meta":
                    metas.append(_parse_meta(buf, sub, [moov, child], "moov/udta/meta", budget))
                elif sub.type == b"XMP_":
                    xmp_boxes.append((child, sub))
    return metas, xmp_boxes


def _udta_texts(buf: bytes, budget: Budget) -> list[FoundLabel]:
    """A label in a QuickTime user data text atom (``moov/udta/©cmt``, ``©des``... as ffmpeg writes a MOV's
    comment), as a non-standard declaration (:func:`labeler.metadata.misplaced_label`).

    QTFF "User data text strings": records of a 16-bit size, a 16-bit language code, the text; the
    first record is read (the others are translations of it).
    """
    moov = moov_root(buf)
    found: list[FoundLabel] = []
    for child in child_boxes(buf, moov, budget)[0]:
        if child.type != b"udta":
            continue
        for sub in child_boxes(buf, child, budget)[0]:
            if sub.type[:1] != b"\xa9" or sub.end - sub.content < 4:
                continue
            size = int.from_bytes(buf[sub.content:sub.content + 2], "big")
            text = bytes(buf[sub.content + 4:min(sub.content + 4 + size, sub.end)])
            where = f"moov/udta {box_name(sub.type)!r} text atom"
            misplaced = misplaced_label("mp4-udta", box_name(sub.type[1:]), text.rstrip(b"\x00"), where)
            found += [misplaced] if misplaced is not None else []
    return found


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
    handler = f" ({box_name(meta.handler)})" if meta.handler else ""
    if key is not None:
        return f"{meta.where}{handler} key {key.decode('utf-8', 'replace')!r} (item {item.index})"
    if item.name is not None:
        return f"{meta.where}{handler} ilst item '----' name {item.name!r}"
    return f"{meta.where}{handler} ilst item {box_name(item.box.type)!r}"


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
    """The ``TC260:AIGC`` values of a packet (what a write updates)."""
    return [f.raw for f in _xmp_labels(packet, "") if f.standard]


def _xmp_labels(packet: bytes, where: str) -> list[FoundLabel]:
    """Every label of a packet, misplaced ones included (:func:`labeler.metadata.xmp.packet_labels`)."""
    xmp = _xmp_module()
    if xmp is None:
        return []
    try:
        return xmp.packet_labels(packet, where)
    except CorruptFile:
        return []  # a broken packet hides no label we could read; the rest of the file still counts


def _load_uuid_xmp(src: BinaryIO, box: Box) -> bytes | None:
    if box.type != b"uuid" or box.end - box.content < 16:
        return None
    src.seek(box.content)
    if src.read(16) != XMP_UUID:
        return None
    length = box.end - box.content - 16
    if length > limits.MAX_XMP_PACKET:
        raise UnsafeInput(f"mp4 xmp packet is {length} bytes, over the {limits.MAX_XMP_PACKET}-byte limit")
    return src.read(length)


def _udta_xmp(buf: bytes, box: Box) -> bytes:
    length = box.end - box.content
    if length > limits.MAX_XMP_PACKET:
        raise UnsafeInput(f"mp4 xmp packet is {length} bytes, over the {limits.MAX_XMP_PACKET}-byte limit")
    return bytes(buf[box.content:box.end])


# ----------------------------------------------------------------------------------------------- read


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label of an MP4/MOV/M4A file, standard carrier first (see the module notes)."""
    budget = Budget()
    layout = top_level(src, budget)
    _, buf = load_moov(src, layout)
    _require_mvhd(buf, budget)
    metas, xmp_boxes = _metas(buf, budget)
    found: list[FoundLabel] = []
    for meta in metas:
        found.extend(_meta_labels(meta))
    found.extend(_udta_texts(buf, budget))
    for _, box in xmp_boxes:
        found.extend(_xmp_labels(_udta_xmp(buf, box), "moov/udta/XMP_ box"))
    for box in layout.boxes:
        packet = _load_uuid_xmp(src, box)
        if packet is not None:
            found.extend(_xmp_labels(packet, f"top-level XMP uuid box at offset {box.start}"))
    rank = {"mp4-keys": 0, "mp4-ilst": 1, "xmp-tc260": 2}
    # sorted() is stable: copies of one carrier stay in file order (ffmpeg's order too).
    return sorted(found, key=lambda f: (not f.standard, rank.get(f.carrier, 3)))



def _item_bytes(index: int, value: str) -> bytes:
    # QTFF 'data' atom: type indicator 1 (UTF-8, no terminator), locale 0 (default).
    data = box_bytes(b"data", struct.pack(">II", 1, 0) + value.encode("utf-8"))
    return box_bytes(struct.pack(">I", index), data)


def _key_entry(name: bytes) -> bytes:
    return struct.pack(">I", 8 + len(name)) + b"mdta" + name


def _keys_box(entries: list[bytes]) -> bytes:
    return box_bytes(b"keys", struct.pack(">II", 0, len(entries)) + b"".join(entries))


def _new_meta(value: str) -> bytes:
    # As ffmpeg's movenc writes it with use_metadata_tags: full box, hdlr 'mdta' with an empty name.
    hdlr = box_bytes(b"hdlr", b"\x00" * 8 + b"mdta" + b"\x00" * 12 + b"\x00")
    keys = _keys_box([_key_entry(b"AIGC")])
    ilst = box_bytes(b"ilst", _item_bytes(1, value))
    return box_bytes(b"meta", b"\x00\x00\x00\x00" + hdlr + keys + ilst)


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
        splice(buf, meta.path, meta.box.start, meta.box.end, b"")
        return
    parts = []
    ilst_done = False
    for child in meta.children:
        if child is meta.keys_box and keys is not None:
            parts.append(_keys_box(keys))
            if meta.ilst is None and items is not None:
                parts.append(box_bytes(b"ilst", b"".join(items)))
                ilst_done = True
        elif child is meta.ilst and items is not None:
            parts.append(box_bytes(b"ilst", b"".join(items)))
            ilst_done = True
        else:
            parts.append(bytes(buf[child.start:child.end]))
    if items is not None and not ilst_done:
        parts.append(box_bytes(b"ilst", b"".join(items)))
    splice(buf, [*meta.path, meta.box], meta.first, meta.stop, b"".join(parts))


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
                items.insert(meta.items.index(item), box_bytes(item.box.type, bytes(body)))
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


def _require_mvhd(buf: bytes, budget: Budget) -> None:
    # A moov without a movie header is not a movie (e.g. moov nested in moov a thousand times):
    # refuse it on read as on write, rather than report "no label" for a file no player can open.
    if not any(c.type == b"mvhd" for c in child_boxes(buf, moov_root(buf), budget)[0]):
        raise CorruptFile("mp4 moov box has no mvhd (not a movie)")


def _edit_moov(buf: bytearray, value: str, budget: Budget) -> bytearray:
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
        moov = moov_root(buf)
        children, stop = child_boxes(buf, moov, budget)
        udta = next((c for c in children if c.type == b"udta"), None)
        if udta is None:
            splice(buf, [moov], stop, stop, box_bytes(b"udta", _new_meta(value)))
        else:
            # After the udta's last box: before a QuickTime zero terminator, after an iTunes-style meta.
            _, at = child_boxes(buf, udta, budget)
            splice(buf, [moov, udta], at, at, _new_meta(value))
    for n in range(len(_metas(buf, budget)[1])):
        udta, box = _metas(buf, budget)[1][n]  # parsed again: each splice moves what follows
        packet = _udta_xmp(buf, box)
        if _xmp_values(packet):
            new = _xmp_module().upsert_aigc(packet, value)
            splice(buf, [moov_root(buf), udta], box.start, box.end, box_bytes(b"XMP_", new))
    return buf


# ----------------------------------------------------------------------------------------------- write


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy an MP4/MOV/M4A file from ``src`` to ``dst`` with ``value`` under key ``AIGC``.

    See the module notes for what is kept, replaced, removed and shifted.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidLabel("label value is not valid unicode text (lone surrogate)") from None
    budget = Budget()
    layout = top_level(src, budget)
    moov_index, buf = load_moov(src, layout)
    replaced: dict[int, bytearray] = {moov_index: _edit_moov(buf, value, budget)}
    for i, box in enumerate(layout.boxes):
        packet = _load_uuid_xmp(src, box)
        if packet is not None and _xmp_values(packet):
            new = _xmp_module().upsert_aigc(packet, value)
            replaced[i] = bytearray(box_bytes(b"uuid", XMP_UUID + new))
    rewrite(src, dst, layout, replaced, moov_index, budget)


def drop_keyed(buf: bytearray, names: set[bytes], budget: Budget) -> bool:
    """Remove the keys called ``names`` (and their values) from the first keyed (``mdta``) metadata of the
    ``moov`` in ``buf`` (ffmpeg's ``use_metadata_tags`` keys), renumbering the items of the others;
    True when any was there. The caller writes ``buf`` back (:func:`labeler.metadata.bmff_boxes.rewrite`).
    """
    metas, _ = _metas(buf, budget)
    meta = next((m for m in metas if m.keyed and m.handler == b"mdta"), None)
    if meta is None or not any(name in names for _, name, _ in meta.keys):
        return False
    kept = [k for k, (_, name, _) in enumerate(meta.keys, 1) if name not in names]
    number = {old: new for new, old in enumerate(kept, 1)}  # items name their key by its index
    values = [_renumbered(buf, item, number[item.index]) for item in meta.items if item.index in number]
    _rebuild(buf, meta, [meta.keys[k - 1][2] for k in kept], values)
    return True
