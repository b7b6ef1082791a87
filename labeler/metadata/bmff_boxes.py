"""ISO-BMFF (MP4 / MOV / M4A) box walker: parse, iterate and rewrite boxes, fix sizes and file offsets.

Box layout: ISO/IEC 14496-12 (4.2 box header, 8.1.1 mdat, 8.7.5 stco/co64, 8.7.9 saio, 8.8.7 tfhd,
8.8.10 tfra, 8.11.1 meta, 8.11.3 iloc). No knowledge of any tag here: the AIGC label's reader and
writer (``keys``/``ilst``/XMP) live in :mod:`labeler.metadata.isobmff`, which uses this module.

* :func:`top_level` walks the top-level boxes by seeking (``mdat`` is never loaded), at most
  :data:`labeler.limits.MAX_BOXES` of them (counted by a :class:`Budget`), with 64-bit ``largesize``
  headers and size 0 (box runs to the end of the file); :func:`load_moov` loads ``moov`` whole, up to
  :data:`labeler.limits.MAX_MOOV` bytes, with a plain 8-byte header. A box that runs past its parent
  or the file, a missing ``moov`` or an unreadable header is a :class:`~labeler.errors.CorruptFile`.
* :func:`child_boxes` lists the children of one box in a loaded buffer (callers follow fixed paths,
  never a recursive walk, so hostile nesting costs nothing); :func:`meta_first_child` tells ISO's
  full-box ``meta`` from QuickTime's plain one.
* :func:`require_complete` refuses a file whose boxes run past its end, before a decoding pass.
* :func:`track_handlers` lists the tracks' handler types (``vide``, ``soun``...): what the file holds.
* :func:`splice` replaces bytes inside a loaded box and fixes the sizes of the boxes enclosing them.
* :func:`rewrite` copies a file with some top-level boxes replaced: a ``free``/``skip`` box between the
  edited boxes and the media data absorbs the size change when it can (then nothing moves); otherwise
  every absolute file offset is shifted (``stco``, ``co64`` and ``saio`` in the sample tables, ``iloc``
  in ``meta`` boxes, ``tfra`` in ``mfra``, an explicit ``base_data_offset`` in the ``tfhd`` of movie
  fragments). Refused with :class:`~labeler.errors.UnsupportedFormat`: a ``stco`` or 4-byte ``iloc``
  offset that would pass 4 GiB.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, UnsafeInput, UnsupportedFormat
from labeler.metadata import copy_stream

#: Largest value of a 32-bit box size or file offset.
U32 = 0xFFFFFFFF
_PADDING = (b"free", b"skip")
_MEDIA = (b"mdat", b"moof")


@dataclass(frozen=True)
class Box:
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


class Budget:
    """Counts the boxes visited in one call, against :data:`limits.MAX_BOXES`."""

    def __init__(self) -> None:
        self.count = 0

    def take(self, n: int = 1) -> None:
        self.count += n
        if self.count > limits.MAX_BOXES:
            raise UnsafeInput(f"mp4 file has more than {limits.MAX_BOXES} boxes")


def box_name(kind: bytes) -> str:
    return kind.decode("latin-1").replace("\x00", "\\0")


def box_bytes(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


# ---------------------------------------------------------------------------------------------- top level


@dataclass
class Layout:
    boxes: list[Box]
    size: int
    tail: int  # offset of trailing bytes too short for a box header (== size when none)


def top_level(src: BinaryIO, budget: Budget) -> Layout:
    size = src.seek(0, os.SEEK_END)
    if size == 0:
        raise CorruptFile("empty file (0 bytes)")
    boxes: list[Box] = []
    pos = 0
    while size - pos >= 8:
        budget.take()
        src.seek(pos)
        length, kind = struct.unpack(">I4s", src.read(8))
        header = 8
        if length == 1:  # ISO/IEC 14496-12 4.2: 64-bit largesize follows the type
            raw = src.read(8)
            if len(raw) < 8:
                raise CorruptFile(f"mp4 box {box_name(kind)!r} at offset {pos} has a truncated header")
            length, header = struct.unpack(">Q", raw)[0], 16
        elif length == 0:  # 4.2: the last box, running to the end of the file
            length = size - pos
        if length < header:
            raise CorruptFile(f"mp4 box {box_name(kind)!r} at offset {pos} has an invalid size {length}")
        if length > size - pos:
            raise CorruptFile(
                f"mp4 box {box_name(kind)!r} at offset {pos} runs past the end of the file "
                f"({length} bytes declared, {size - pos} present)"
            )
        boxes.append(Box(kind, pos, header, pos + length))
        pos += length
    if not boxes:
        raise CorruptFile("not an mp4 file (no complete box)")
    return Layout(boxes, size, pos)


def require_complete(path: str | os.PathLike[str]) -> None:
    """Refuse an MP4 / MOV / M4A whose top-level boxes run past the end of the file (an interrupted
    download or copy), before a pass that decodes and re-encodes it.

    ffmpeg reads such a file to where it stops and, when the cut falls between two samples, exits 0
    with nothing said (ffmpeg 7+) or a "partial file" warning: the pixel and audio passes would then
    write a labeled file with its end missing. Only the box headers are read (seeks, never ``mdat``).

    Raises
    ------
    CorruptFile
        "the file is cut short: ..." with the box that runs past the end.
    """
    with open(path, "rb") as src:
        try:
            top_level(src, Budget())
        except CorruptFile as exc:
            if "runs past the end" in str(exc) or "truncated header" in str(exc):
                raise CorruptFile(f"the file is cut short: {exc}") from None
            raise


def load_box(src: BinaryIO, box: Box, limit: int) -> bytearray:
    if box.size > limit:
        raise UnsafeInput(f"mp4 {box_name(box.type)!r} box is {box.size} bytes, over the {limit}-byte limit")
    src.seek(box.start)
    data = bytearray(src.read(box.size))
    if len(data) != box.size:
        raise CorruptFile(f"mp4 {box_name(box.type)!r} box is truncated")
    return data


def load_moov(src: BinaryIO, layout: Layout) -> tuple[int, bytearray]:
    """Index of the (first) ``moov`` box and its bytes, rewritten with a plain 8-byte header."""
    index = next((i for i, b in enumerate(layout.boxes) if b.type == b"moov"), None)
    if index is None:
        raise CorruptFile("mp4 file has no moov box (truncated, or not a complete mp4)")
    box = layout.boxes[index]
    data = load_box(src, box, limits.MAX_MOOV)
    if box.header == 16:  # edits below patch 32-bit sizes; moov is at most MAX_MOOV bytes
        data = bytearray(struct.pack(">I", box.size - 8) + b"moov") + data[16:]
    elif layout.boxes[index].end == layout.size and data[:4] == b"\x00\x00\x00\x00":
        data[:4] = struct.pack(">I", box.size)  # size 0 = to end of file: made explicit
    return index, data


# ------------------------------------------------------------------------------------------ inside moov


def child_boxes(
    buf: bytes, parent: Box, budget: Budget, start: int | None = None, strict: bool = True
) -> tuple[list[Box], int]:
    """Child boxes of ``parent`` (from ``start``, default its content) and the offset where they stop.

    Bytes after the last child that cannot be a box (QuickTime ends some ``udta`` boxes with a 32-bit
    zero) are left alone; a child that runs past its parent is a :class:`CorruptFile` when ``strict``,
    else where the children stop.
    """
    pos = parent.content if start is None else start
    end = parent.end
    out: list[Box] = []
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
            where = f"in {box_name(parent.type)!r} at offset {pos}"
            raise CorruptFile(f"mp4 box {box_name(kind)!r} {where} does not fit in its parent")
        budget.take()
        out.append(Box(kind, pos, header, pos + length))
        pos += length
    return out, pos


def meta_first_child(buf: bytes, box: Box) -> int:
    """Offset of the first child of a ``meta`` box: after version/flags (ISO) or not (QuickTime)."""
    c = box.content
    if box.end - c >= 8:
        first = struct.unpack_from(">I", buf, c)[0]
        kind = bytes(buf[c + 4:c + 8])
        if 8 <= first <= box.end - c and all(0x20 <= ch <= 0x7E for ch in kind):
            return c  # a child box header right away: QuickTime's plain meta box
    return c + 4

def moov_root(buf: bytes) -> Box:
    """The moov box of a loaded moov (its header was made a plain 8-byte one by :func:`load_moov`)."""
    return Box(b"moov", 0, 8, len(buf))


def track_handlers(src: BinaryIO) -> list[bytes]:
    """The handler type of every track, in file order: ``moov/trak/mdia/hdlr`` (ISO/IEC 14496-12 8.4.3;
    ``vide``, ``soun``, ``text``, ``meta``...).

    Raises
    ------
    CorruptFile, UnsafeInput
        As :func:`top_level` and :func:`load_moov` (no ``moov``, a damaged or oversized one).
    """
    budget = Budget()
    _, moov = load_moov(src, top_level(src, budget))

    def children(parent: Box, kind: bytes) -> list[Box]:
        return [b for b in child_boxes(moov, parent, budget, strict=False)[0] if b.type == kind]

    handlers = []
    for trak in children(moov_root(moov), b"trak"):
        for mdia in children(trak, b"mdia"):
            # hdlr: version/flags (4), pre_defined (4), then handler_type
            handlers += [bytes(moov[h.content + 8:h.content + 12]) for h in children(mdia, b"hdlr")
                         if h.end - h.content >= 12]
    return handlers


# ----------------------------------------------------------------------------------------- moov edits


def set_size(buf: bytearray, box: Box, size: int) -> None:
    if box.header == 16:
        struct.pack_into(">Q", buf, box.start + 8, size)
    elif size > U32:
        raise UnsupportedFormat(f"mp4 {box_name(box.type)!r} box would pass 4 GiB")
    else:
        struct.pack_into(">I", buf, box.start, size)


def splice(buf: bytearray, ancestors: list[Box], a: int, b: int, new: bytes) -> None:
    """Replace ``buf[a:b]`` with ``new`` and fix the sizes of the boxes that enclose it."""
    delta = len(new) - (b - a)
    buf[a:b] = new
    for box in ancestors:
        set_size(buf, box, box.size + delta)


# -------------------------------------------------------------------------------------- offset fixing


class Relocation:
    """Maps an absolute offset in the input to the output: the shift of the top-level box holding it."""

    def __init__(self, old: list[Box], new_starts: list[int | None]) -> None:
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
        if width == 4 and new > U32:
            raise UnsupportedFormat(f"mp4 {what} offsets would pass 4 GiB (32-bit table); cannot shift them")
        struct.pack_into(fmt, buf, at, new)


def _patch_stbl(buf: bytearray, stbl: Box, move: Callable[[int], int], budget: Budget) -> None:
    for box in child_boxes(buf, stbl, budget)[0]:
        c = box.content
        if box.type in (b"stco", b"co64") and box.end - c >= 8:
            # 8.7.5: version/flags, entry_count, chunk_offset[] (32 or 64 bit).
            count = struct.unpack_from(">I", buf, c + 4)[0]
            width = 4 if box.type == b"stco" else 8
            _patch_table(buf, c + 8, count, width, box.end, box_name(box.type), move)
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


def _patch_iloc(buf: bytearray, box: Box, move: Callable[[int], int], budget: Budget) -> None:
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


def patch_moov(buf: bytearray, move: Callable[[int], int], budget: Budget) -> None:
    moov = moov_root(buf)
    metas = []
    for child in child_boxes(buf, moov, budget)[0]:
        if child.type == b"meta":
            metas.append(child)
        elif child.type == b"udta":
            metas.extend(c for c in child_boxes(buf, child, budget)[0] if c.type == b"meta")
        elif child.type == b"trak":
            for mdia in child_boxes(buf, child, budget)[0]:
                if mdia.type == b"meta":
                    metas.append(mdia)
                if mdia.type != b"mdia":
                    continue
                for minf in child_boxes(buf, mdia, budget)[0]:
                    if minf.type != b"minf":
                        continue
                    for stbl in child_boxes(buf, minf, budget)[0]:
                        if stbl.type == b"stbl":
                            _patch_stbl(buf, stbl, move, budget)
    for meta in metas:
        patch_meta_iloc(buf, meta, move, budget)


def patch_meta_iloc(buf: bytearray, meta: Box, move: Callable[[int], int], budget: Budget) -> None:
    for child in child_boxes(buf, meta, budget, meta_first_child(buf, meta))[0]:
        if child.type == b"iloc":
            _patch_iloc(buf, child, move, budget)


def patch_moof(buf: bytearray, header: int, move: Callable[[int], int], budget: Budget) -> None:
    moof = Box(b"moof", 0, header, len(buf))
    for traf in child_boxes(buf, moof, budget)[0]:
        if traf.type != b"traf":
            continue
        for tfhd in child_boxes(buf, traf, budget)[0]:
            # 8.8.7: flag 0x000001 = base-data-offset-present, a 64-bit absolute file offset after track_ID.
            # Without it the offsets are relative to the moof (or the previous traf's data) and move with it.
            if tfhd.type == b"tfhd" and tfhd.end - tfhd.content >= 4 and buf[tfhd.content + 3] & 1:
                at = tfhd.content + 8
                if at + 8 > tfhd.end:
                    raise CorruptFile("mp4 tfhd box is truncated")
                struct.pack_into(">Q", buf, at, move(struct.unpack_from(">Q", buf, at)[0]))


def patch_mfra(buf: bytearray, header: int, move: Callable[[int], int], budget: Budget) -> None:
    mfra = Box(b"mfra", 0, header, len(buf))
    for tfra in child_boxes(buf, mfra, budget)[0]:
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
            if wide == 4 and new > U32:
                raise UnsupportedFormat("mp4 tfra offsets would pass 4 GiB (32-bit table)")
            struct.pack_into(fmt, buf, at, new)


# ----------------------------------------------------------------------------------------------- write


def plan_layout(layout: Layout, sizes: dict[int, int]) -> tuple[list[int | None], dict[int, int]]:
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


def _patch_offsets(src: BinaryIO, layout: Layout, replaced: dict[int, bytearray], edited: int,
                   move: Relocation, budget: Budget) -> None:
    """Shift the absolute offsets of ``mfra``, top-level ``meta`` and ``moov`` (loaded into ``replaced``);
    ``replaced[edited]`` is the edited ``moov`` or top-level ``meta`` (a plain 8-byte header)."""
    for i, box in enumerate(layout.boxes):
        if box.type == b"mfra":
            replaced[i] = load_box(src, box, limits.MAX_MOOV)
            patch_mfra(replaced[i], box.header, move, budget)
        elif box.type == b"meta" and i not in replaced:
            data = load_box(src, box, limits.MAX_MOOV)
            patch_meta_iloc(data, Box(b"meta", 0, box.header, len(data)), move, budget)
            replaced[i] = data
    data = replaced[edited]
    if layout.boxes[edited].type == b"meta":
        patch_meta_iloc(data, Box(b"meta", 0, 8, len(data)), move, budget)
    else:
        patch_moov(data, move, budget)


def _copy_boxes(src: BinaryIO, dst: BinaryIO, layout: Layout, replaced: dict[int, bytearray],
                padding: dict[int, int], move: Relocation) -> None:
    """Write the top-level boxes in order: resized padding, replaced boxes, patched fragments, copies."""
    for i, box in enumerate(layout.boxes):
        if i in padding:
            if padding[i]:
                src.seek(box.content)
                body = src.read(min(padding[i], box.size) - 8)
                dst.write(box_bytes(box.type, body + b"\x00" * (padding[i] - 8 - len(body))))
        elif i in replaced:
            dst.write(replaced[i])
        elif box.type == b"moof" and move.moves:
            # Fragments are patched one at a time as they are copied (a long stream has thousands, so
            # each gets its own box budget: the top-level walk already bounded their number).
            data = load_box(src, box, limits.MAX_MOOV)
            patch_moof(data, box.header, move, Budget())
            dst.write(data)
        else:
            src.seek(box.start)
            copy_stream(src, dst, box.size)
    src.seek(layout.tail)
    copy_stream(src, dst, layout.size - layout.tail)


def rewrite(src: BinaryIO, dst: BinaryIO, layout: Layout, replaced: dict[int, bytearray], edited: int,
            budget: Budget) -> None:
    """Copy the file ``src`` (walked into ``layout``) to ``dst`` with the top-level boxes in ``replaced``.

    ``replaced`` maps a top-level box's index to its new bytes; ``edited`` is the index of the edited
    ``moov`` (a movie) or top-level ``meta`` (a HEIF image), whose offsets are shifted too. The
    first ``free``/``skip`` box after an edit and before media data absorbs the size change when it
    can; otherwise every absolute file offset is shifted (see the module notes). ``replaced`` gains
    the patched copies of the boxes whose offsets were shifted.
    """
    starts, padding = plan_layout(layout, {i: len(data) for i, data in replaced.items()})
    move = Relocation(layout.boxes, starts)
    if move.moves:
        _patch_offsets(src, layout, replaced, edited, move, budget)
    _copy_boxes(src, dst, layout, replaced, padding, move)
