"""MKV / WebM carrier: ``Segment/Tags/Tag/SimpleTag`` with TagName ``AIGC``, TagString the JSON (``mkv-tag``).

The labeling spec (``/work/shared/spec/labeling-spec.md`` section 4, "MKV / WebM") puts the label in a
Matroska tag: a ``SimpleTag`` whose ``TagName`` is ``AIGC`` and whose ``TagString`` is the JSON text,
in a ``Tag`` that targets the whole segment (no track, edition, chapter or attachment UID), which is
what ``ffmpeg -metadata AIGC=<JSON> -c copy out.mkv`` writes and what ffprobe shows as a format tag.
Element IDs and layout: RFC 8794 (EBML) and RFC 9559 (Matroska) sections 5.1 (Segment), 5.1.1
(SeekHead: ``SeekPosition`` relative to the first byte of the Segment's data) and 5.1.8 (Tags).

Reading walks the Segment's top-level elements by seeking (clusters are never loaded; a cluster of
unknown size, as live recorders write, is walked child by child to find its end), at most
:data:`MAX_ELEMENTS` elements. Each ``Tags`` element is loaded (at most :data:`MAX_TAGS` bytes) and
parsed with a nesting limit. A file cut short still gives the labels found before the cut (writing,
and the pixel passes through :func:`require_complete`, refuse it). A label in a SimpleTag of another
name (``COMMENT``, ``DESCRIPTION``) is a non-standard declaration (``mkv-tag-comment``...,
:func:`labeler.metadata.misplaced_label`).

Write policy (no media byte moves, so no offset needs rewriting)
----------------------------------------------------------------
* Every ``AIGC`` SimpleTag of a segment-wide ``Tag`` is removed (a ``Tag`` left without SimpleTags is
  dropped); one new ``Tag`` (``TargetTypeValue`` 50, SimpleTag ``AIGC``, no ``TagLanguage``: its
  default ``und``, as ffmpeg writes it, so exiftool names it ``Aigc``, not ``Aigc-und``) is added to
  the first ``Tags`` element. Every other element keeps its bytes; a ``CRC-32`` of a rewritten ``Tags``
  is recomputed.
* The first ``Tags`` is rewritten in place when it fits its old bytes plus a ``Void`` right after it
  (the spare bytes become a ``Void``); a ``Tags`` that only lost a label always fits. Otherwise its
  old place becomes a ``Void`` of the same length and the grown ``Tags`` is appended at the end of the
  Segment. A file without ``Tags`` gets one appended there too. Either way no cluster, cue or
  attachment moves, so ``Cues``, ``SeekHead`` positions and ``Cluster`` positions stay right.
* An appended ``Tags`` is entered in the first ``SeekHead`` (the existing Tags entry updated, or one
  added), in place, using the ``Void`` that follows it (muxers reserve one: ffmpeg, mkvmerge). Players
  and ffmpeg find elements after the clusters through the SeekHead; when it has no room the tag is
  still in the file (this reader and sequential readers find it) and the Segment size is updated.
* The Segment's size is rewritten (an unknown size stays unknown); positions are relative to the
  Segment's data, so a longer size field moves nothing that is referenced.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, copy_stream, ebml, misplaced_label

CARRIER = "mkv-tag"
#: Most top-level (and unknown-size cluster) elements walked in one file.
MAX_ELEMENTS = 2_000_000
#: Largest ``Tags`` element loaded (bytes).
MAX_TAGS = 16 << 20
_EBML_HEADER_MAX = 4096

# RFC 8794 / RFC 9559 element IDs.
EBML, DOCTYPE, SEGMENT = 0x1A45DFA3, 0x4282, 0x18538067
SEEKHEAD, SEEK, SEEK_ID, SEEK_POSITION = 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC
INFO, TRACKS, CUES, TAGS, CLUSTER = 0x1549A966, 0x1654AE6B, 0x1C53BB6B, 0x1254C367, 0x1F43B675
CHAPTERS, ATTACHMENTS = 0x1043A770, 0x1941A469
TAG, TARGETS, TARGET_TYPE_VALUE = 0x7373, 0x63C0, 0x68CA
TARGET_UIDS = frozenset({0x63C5, 0x63C9, 0x63C4, 0x63C6})  # track, edition, chapter, attachment
SIMPLE_TAG, TAG_NAME, TAG_LANGUAGE, TAG_STRING = 0x67C8, 0x45A3, 0x447A, 0x4487
_LEVEL1 = frozenset({SEEKHEAD, INFO, TRACKS, CUES, TAGS, CLUSTER, CHAPTERS, ATTACHMENTS, EBML, SEGMENT})
DOCTYPES = {"matroska": "mkv", "webm": "webm"}


@dataclass(frozen=True)
class Layout:
    """The top of a Matroska file.

    Attributes
    ----------
    doctype : str
        ``"matroska"`` or ``"webm"``.
    segment : ebml.Element
        The Segment's header (its size None when unknown).
    data_end : int
        End of the Segment's data (the file's end for an unknown size).
    children : list of ebml.Element
        The Segment's top-level elements in order; an unknown-size cluster carries its found size.
    file_size : int
        Bytes in the file.
    damaged : str or None
        Why the walk stopped early (read only), None when it reached the end.
    """

    doctype: str
    segment: ebml.Element
    data_end: int
    children: list[ebml.Element]
    file_size: int
    damaged: str | None = None


def doctype_of(head: bytes) -> str | None:
    """The DocType of the EBML header at the start of ``head``, or None when it is not one."""
    try:
        header = ebml.read_header(head)
        if header.id != EBML or header.size is None or header.size > _EBML_HEADER_MAX:
            return None
        for child, data in ebml.parse_children(head[header.start : header.end], 1, 2):
            if child.id == DOCTYPE:
                return data.rstrip(b"\x00").decode("ascii", "replace")
    except LabelerError:
        return None
    return None


def layout(src: BinaryIO, *, strict: bool = True) -> Layout:
    """Walk the EBML header and the Segment's top-level elements.

    ``strict`` False stops at damage and says why in :attr:`Layout.damaged` instead of raising.

    Raises
    ------
    UnsupportedFormat
        Not an EBML file with DocType matroska or webm.
    CorruptFile
        A damaged header (always) or a damaged Segment (``strict``).
    UnsafeInput
        More than :data:`MAX_ELEMENTS` elements.
    """
    doctype, segment, size = _top(src)
    data_end = size if segment.size is None else segment.end
    if data_end > size:
        if strict:
            raise CorruptFile(_past_the_end(segment, size))
        data_end = size
    children: list[ebml.Element] = []
    try:
        _walk_segment(src, segment.start, data_end, children)
    except CorruptFile as exc:
        if strict:
            raise
        return Layout(doctype, segment, data_end, children, size, str(exc))
    return Layout(doctype, segment, data_end, children, size)


#: Segment children read past before :func:`track_types` gives up (muxers put Tracks within the first few).
_TRACKS_WITHIN = 64
_TRACK_ENTRY, _TRACK_TYPE = 0xAE, 0x83


def track_types(src: BinaryIO) -> list[int]:
    """The TrackType of every TrackEntry (RFC 9559 5.1.4.1.3: 1 video, 2 audio, 17 subtitle...), in order.

    Only the Segment's elements before the first Cluster are walked (where muxers write ``Tracks``: ffmpeg,
    mkvmerge, browsers' MediaRecorder) and only ``Tracks`` is loaded (at most :data:`MAX_TAGS` bytes).
    An empty list means no ``Tracks`` was found there.

    Raises
    ------
    UnsupportedFormat
        Not Matroska or WebM.
    CorruptFile, UnsafeInput
        A damaged header or ``Tracks``, or one too large.
    """
    _, segment, size = _top(src)
    end = size if segment.size is None else min(segment.end, size)
    pos = segment.start
    for _ in range(_TRACKS_WITHIN):
        if end - pos < 2:
            break
        element = _header(src, pos, end, unknown_ok=True)
        if element.id == CLUSTER or element.size is None:
            break
        if element.id == TRACKS:
            if element.size > MAX_TAGS:
                raise UnsafeInput(f"Matroska Tracks of {element.size} bytes")
            src.seek(element.start)
            entries = ebml.parse_children(src.read(element.size), 1, 3)
            return [ebml.read_uint(value) for entry, data in entries if entry.id == _TRACK_ENTRY
                    for field, value in ebml.parse_children(data, 2, 3) if field.id == _TRACK_TYPE]
        pos = element.end
    return []


def _top(src: BinaryIO) -> tuple[str, ebml.Element, int]:
    """(DocType, Segment header, bytes in the file): the EBML header and the Segment's header only.

    Raises
    ------
    UnsupportedFormat
        Not an EBML file with DocType matroska or webm.
    CorruptFile
        A damaged EBML header, or no Segment after it.
    """
    size = src.seek(0, os.SEEK_END)
    src.seek(0)
    head = src.read(_EBML_HEADER_MAX + 16)
    doctype = doctype_of(head)
    if doctype is None or doctype not in DOCTYPES:
        raise UnsupportedFormat(f"not a Matroska or WebM file (EBML DocType {doctype!r})")
    return doctype, _find_segment(src, ebml.read_header(head).end, size), size


def _past_the_end(segment: ebml.Element, size: int) -> str:
    """The message for a Segment of known size that does not fit a file of ``size`` bytes, worded as
    :mod:`labeler.metadata.bmff_boxes` words a box that runs past the end (header included)."""
    return (f"Matroska Segment at offset {segment.offset} runs past the end of the file "
            f"({segment.length} bytes declared, {size - segment.offset} present)")


def require_complete(path: str | os.PathLike[str]) -> None:
    """Refuse a Matroska / WebM file whose Segment runs past the end of the file (an interrupted download
    or copy), before a pass that decodes and re-encodes it.

    ffmpeg decodes such a file to where it stops and exits 0 (its demuxer logs "File ended prematurely"
    at most): the visible pass would then write a labeled file with its end missing. Only the EBML
    and Segment headers are read (the Segment-size check of :func:`layout`; no cluster is walked). A
    Segment of unknown size (a live recording, ``ffmpeg -f matroska pipe:1``) declares no end, so
    nothing here can tell it was cut: it is taken as it is.

    Raises
    ------
    CorruptFile
        "the file is cut short: Matroska Segment ... runs past the end of the file (...)", as
        :func:`labeler.metadata.bmff_boxes.require_complete` says it of an MP4; or a damaged header.
    UnsupportedFormat
        Not Matroska or WebM.
    """
    with open(path, "rb") as src:
        _, segment, size = _top(src)
    if segment.size is not None and segment.end > size:
        raise CorruptFile(f"the file is cut short: {_past_the_end(segment, size)}")


def _find_segment(src: BinaryIO, pos: int, size: int) -> ebml.Element:
    # Void or CRC elements may sit between the EBML header and the Segment.
    for _ in range(16):
        if size - pos < 2:
            break
        element = ebml.read_header(_peek(src, pos), 0, pos)
        if element.id == SEGMENT:
            return element
        if element.size is None:
            break
        pos = element.end
    raise CorruptFile("no Matroska Segment after the EBML header")


def _peek(src: BinaryIO, pos: int) -> bytes:
    src.seek(pos)
    return src.read(12)


def _walk_segment(src: BinaryIO, pos: int, end: int, out: list[ebml.Element]) -> None:
    budget = MAX_ELEMENTS
    while pos < end:
        if end - pos < 2:
            raise CorruptFile(f"Segment ends with {end - pos} stray byte")
        element = _header(src, pos, end, unknown_ok=True)
        budget -= 1
        if element.size is None:
            if element.id != CLUSTER:
                raise CorruptFile(f"element 0x{element.id:X} at byte {pos} has an unknown size")
            cluster_end, used = _unknown_cluster_end(src, element.start, end, budget)
            budget -= used
            element = ebml.Element(element.id, element.offset, element.header, cluster_end - element.start)
        if budget <= 0:
            raise UnsafeInput(f"more than {MAX_ELEMENTS} Matroska elements; refusing to walk further")
        out.append(element)
        pos = element.end


def _header(src: BinaryIO, pos: int, end: int, *, unknown_ok: bool = False) -> ebml.Element:
    element = ebml.header_at(src, pos, end)
    if element.size is None and not unknown_ok:
        raise CorruptFile(f"element 0x{element.id:X} at byte {pos} has an unknown size")
    return element


def _unknown_cluster_end(src: BinaryIO, pos: int, end: int, budget: int) -> tuple[int, int]:
    """End of a cluster of unknown size: the first top-level element ID, or ``end`` (RFC 8794 6.2)."""
    used = 0
    while pos < end and end - pos >= 2:
        element = _header(src, pos, end)
        if element.id in _LEVEL1:
            break
        used += 1
        if used > budget:
            raise UnsafeInput(f"more than {MAX_ELEMENTS} Matroska elements; refusing to walk further")
        pos = element.end
    return pos, used


def _load(src: BinaryIO, element: ebml.Element) -> bytes:
    assert element.size is not None
    if element.size > MAX_TAGS:
        raise UnsafeInput(f"a Matroska element of {element.size} bytes is over the {MAX_TAGS}-byte limit")
    src.seek(element.start)
    data = src.read(element.size)
    if len(data) != element.size:
        raise CorruptFile("file is truncated inside a Tags element")
    return data


# -- reading --------------------------------------------------------------------------------------------


def _is_global(tag: list[tuple[ebml.Element, bytes]]) -> bool:
    for child, data in tag:
        if child.id == TARGETS:
            for target, value in ebml.parse_children(data, 4, limits.MAX_BOX_DEPTH):
                if target.id in TARGET_UIDS and ebml.read_uint(value) != 0:
                    return False
    return True


def _simple_tag(data: bytes) -> tuple[str, bytes | None]:
    """(TagName, TagString bytes or None) of a SimpleTag's data."""
    name, value = "", None
    for child, content in ebml.parse_children(data, 4, limits.MAX_BOX_DEPTH):
        if child.id == TAG_NAME:
            name = content.decode("utf-8", "replace").rstrip("\x00")
        elif child.id == TAG_STRING:
            value = content
    return name, value


def _labels_in(tags_data: bytes) -> list[FoundLabel]:
    found: list[FoundLabel] = []
    for tag, tag_data in ebml.parse_children(tags_data, 2, limits.MAX_BOX_DEPTH):
        if tag.id != TAG:
            continue
        children = ebml.parse_children(tag_data, 3, limits.MAX_BOX_DEPTH)
        whole = _is_global(children)
        for child, data in children:
            if child.id != SIMPLE_TAG:
                continue
            name, value = _simple_tag(data)
            if value is None:
                continue
            where = "Segment/Tags/Tag/SimpleTag" if whole else "Segment/Tags/Tag/SimpleTag of a track"
            if name.upper() != "AIGC":
                # COMMENT, DESCRIPTION...: a label there is a non-standard declaration
                misplaced = misplaced_label("mkv-tag", name, value.rstrip(b"\x00"), f"{where} {name}")
                found += [misplaced] if misplaced is not None else []
                continue
            if len(value) > limits.MAX_TEXT_VALUE:
                raise UnsafeInput(f"an AIGC tag of {len(value)} bytes is over {limits.MAX_TEXT_VALUE} bytes")
            raw = value.rstrip(b"\x00").decode("utf-8", "replace")
            standard = whole and name == "AIGC"
            found.append(FoundLabel(CARRIER, raw, f"{where} {name}", standard))
    return found


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every ``AIGC`` SimpleTag of the file, segment-wide (standard) first.

    Raises
    ------
    CorruptFile
        A damaged file in which no label was found before the damage.
    UnsafeInput
        Past :data:`MAX_ELEMENTS`, :data:`MAX_TAGS` or the nesting limit.
    """
    top = layout(src, strict=False)
    found: list[FoundLabel] = []
    for element in top.children:
        if element.id == TAGS:
            found.extend(_labels_in(_load(src, element)))
    if top.damaged and not found:
        raise CorruptFile(f"damaged Matroska file: {top.damaged}")
    return sorted(found, key=lambda f: not f.standard)


# -- writing --------------------------------------------------------------------------------------------


def _aigc_tag(value: str) -> bytes:
    targets = ebml.element(TARGETS, ebml.uint_element(TARGET_TYPE_VALUE, 50))
    # No TagLanguage: RFC 9559 gives it the default "und" when absent, ffmpeg writes none for a plain key,
    # and exiftool names a SimpleTag with an explicit language "Aigc-und", so `exiftool -Aigc` missed it.
    simple = ebml.element(SIMPLE_TAG, ebml.element(TAG_NAME, b"AIGC")
                          + ebml.element(TAG_STRING, value.encode("utf-8")))
    return ebml.element(TAG, targets + simple)


def _without_label(tags_data: bytes) -> tuple[bytes, bool]:
    """The Tags data with every segment-wide AIGC SimpleTag removed (CRC-32 dropped), and whether any was."""
    kept, removed = [], False
    for tag, tag_data in ebml.parse_children(tags_data, 2, limits.MAX_BOX_DEPTH):
        if tag.id == ebml.CRC32:
            continue
        if tag.id != TAG:
            kept.append(tags_data[tag.offset : tag.end])
            continue
        children = ebml.parse_children(tag_data, 3, limits.MAX_BOX_DEPTH)
        if not _is_global(children):
            kept.append(tags_data[tag.offset : tag.end])
            continue
        rest = [(c, d) for c, d in children
                if not (c.id == SIMPLE_TAG and _simple_tag(d)[0].upper() == "AIGC")]
        if len(rest) == len(children):
            kept.append(tags_data[tag.offset : tag.end])
            continue
        removed = True
        if any(c.id == SIMPLE_TAG for c, _ in rest):
            kept.append(ebml.element(TAG, b"".join(tag_data[c.offset : c.end] for c, _ in rest)))
    return b"".join(kept), removed


def _with_crc(data: bytes, had_crc: bool) -> bytes:
    if not had_crc:
        return data
    return ebml.element(ebml.CRC32, zlib.crc32(data).to_bytes(4, "little")) + data


def _had_crc(data: bytes) -> bool:
    return bool(data) and data[0] == ebml.CRC32


def _room_after(top: Layout, index: int) -> int:
    """Bytes of the element at ``index`` plus a Void right after it."""
    element = top.children[index]
    room = element.length
    if index + 1 < len(top.children) and top.children[index + 1].id == ebml.VOID:
        room += top.children[index + 1].length
    return room


def _plan(src: BinaryIO, top: Layout, value: str) -> tuple[dict[int, tuple[int, bytes]], bytes]:
    """Edits ``{offset: (old length, new bytes)}`` inside the Segment, and the bytes to append to it."""
    edits: dict[int, tuple[int, bytes]] = {}
    new_tag = _aigc_tag(value)
    tag_indexes = [i for i, c in enumerate(top.children) if c.id == TAGS]
    for i in tag_indexes[1:]:
        element = top.children[i]
        old = _load(src, element)
        data, removed = _without_label(old)
        if removed:
            # A Tags element that only lost bytes always fits its own place (Void or a longer size).
            fitted = (ebml.fit(TAGS, _with_crc(data, _had_crc(old)), element.length)
                      or ebml.void(element.length))
            edits[element.offset] = (element.length, fitted)
    if tag_indexes:
        first = top.children[tag_indexes[0]]
        old = _load(src, first)
        data = _with_crc(_without_label(old)[0] + new_tag, _had_crc(old))
        room = _room_after(top, tag_indexes[0])
        fitted = ebml.fit(TAGS, data, room)
        if fitted is not None:
            edits[first.offset] = (room, fitted)
            return edits, b""
        edits[first.offset] = (first.length, ebml.void(first.length))
    else:
        data = new_tag
    appended = ebml.element(TAGS, data)
    _enter_in_seekhead(src, top, edits, top.data_end - top.segment.start)
    return edits, appended


def _enter_in_seekhead(src: BinaryIO, top: Layout, edits: dict[int, tuple[int, bytes]],
                       position: int) -> None:
    """Point the first SeekHead's Tags entry at ``position`` (relative to the Segment's data), in place."""
    heads = [i for i, c in enumerate(top.children) if c.id == SEEKHEAD]
    if not heads:
        return
    head = top.children[heads[0]]
    old = _load(src, head)
    entries = []
    for seek, seek_data in ebml.parse_children(old, 2, limits.MAX_BOX_DEPTH):
        if seek.id == ebml.CRC32:
            continue
        if seek.id == SEEK and any(c.id == SEEK_ID and d == ebml.encode_id(TAGS)
                                   for c, d in ebml.parse_children(seek_data, 3, limits.MAX_BOX_DEPTH)):
            continue  # replaced below
        entries.append(old[seek.offset : seek.end])
    entries.append(ebml.element(SEEK, ebml.element(SEEK_ID, ebml.encode_id(TAGS))
                                + ebml.uint_element(SEEK_POSITION, position, 8)))
    room = _room_after(top, heads[0])
    if any(head.offset < at + length and at < head.offset + room for at, (length, _) in edits.items()):
        return  # never overlap another edit (a Tags right after the SeekHead's Void)
    fitted = ebml.fit(SEEKHEAD, _with_crc(b"".join(entries), _had_crc(old)), room)
    if fitted is not None:
        edits[head.offset] = (room, fitted)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy ``src`` to ``dst`` with ``value`` in the segment-wide ``AIGC`` SimpleTag (see the module notes).

    Raises
    ------
    UnsupportedFormat
        Not Matroska or WebM.
    CorruptFile
        A damaged or truncated file.
    UnsafeInput
        Past the element, size or nesting limits.
    """
    top = layout(src, strict=True)
    edits, appended = _plan(src, top, value)
    seg = top.segment
    src.seek(0)
    copy_stream(src, dst, seg.offset)
    if seg.size is None:
        dst.write(ebml.encode_id(SEGMENT) + ebml.UNKNOWN_SIZE)
    else:
        new_size = seg.size + len(appended)
        old_len = seg.header - len(ebml.encode_id(SEGMENT))
        try:
            size_field = ebml.encode_size(new_size, old_len)
        except ValueError:
            size_field = ebml.encode_size(new_size)
        dst.write(ebml.encode_id(SEGMENT) + size_field)
    pos = seg.start
    for at in sorted(edits):
        length, data = edits[at]
        src.seek(pos)
        copy_stream(src, dst, at - pos)
        dst.write(data)
        pos = at + length
    src.seek(pos)
    copy_stream(src, dst, top.data_end - pos)
    dst.write(appended)
    src.seek(top.data_end)
    copy_stream(src, dst, top.file_size - top.data_end)


__all__ = ["CARRIER", "Layout", "doctype_of", "layout", "read", "require_complete", "write"]
