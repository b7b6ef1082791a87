"""TIFF carrier: XMP in IFD0 tag 700 (carrier ``xmp-tc260``); and the bounded TIFF/EXIF IFD reader.

The image practice guide TC260-PG-20259A (digest section 4) puts the label of a
TIFF file in the XMP packet of IFD0 tag 0x02BC (700), field type 7 UNDEFINED
(XMP Specification Part 3 (2016) 1.1.5 "TIFF": tag 700 in the 0th IFD, type
BYTE or UNDEFINED). TIFF layout: TIFF 6.0 (Adobe, 1992) section 2 (header, IFD
entries of 12 bytes sorted by tag, offsets on word boundaries).

The IFD reader here is shared with the EXIF blocks of JPEG (APP1), PNG (``eXIf``)
and WebP (``EXIF``), whose payload is a TIFF structure (CIPA DC-008 Exif 2.32
4.5.2): it checks every offset against the data, bounds the entries per IFD by
the bytes present, follows the IFD chain with loop detection and at most
:data:`labeler.limits.MAX_BOXES` IFDs, and follows only one pointer level (IFD0
-> Exif IFD, tag 0x8769), never SubIFD trees, so hostile files (e.g. a SubIFD
fan-out bomb) cost bounded time. BigTIFF (version 43) is refused with
:class:`~labeler.errors.UnsupportedFormat`.

Labels read (standard first):

* ``xmp-tc260``: ``TC260:AIGC`` in the IFD0 tag 700 XMP packet (type BYTE,
  UNDEFINED, or ASCII as a few writers use);
* ``exif-usercomment``: EXIF UserComment (tag 0x9286 in the Exif IFD, CIPA
  DC-008 4.6.5 Table 9: an 8-byte character code, ``ASCII\\0\\0\\0`` or
  ``UNICODE\\0``, then the text) holding label JSON (the image guide's Annex B
  alternative; bare or wrapped object); JSON with other AI-declaration keys there is
  reported with ``standard=False``;
* ``exif-imagedescription`` (``standard=False``): ImageDescription (0x010E)
  holding JSON that declares AI generation (``ServiceProvider``/``ContentId``,
  ``AIGC``, ``aigc_label_type``... digest section 5), a cloud vendor's variant.

Write policy
------------
* If IFD0 already has an XMP packet, its ``TC260:AIGC`` property is set (see
  :func:`labeler.metadata.xmp.upsert_aigc`, other properties kept). When the
  edited packet fits the old one's bytes (the packet padding absorbs the
  change) it is written in place and nothing else moves.
* Otherwise the new packet is appended at the end of the file, followed by a
  copy of IFD0 with the tag 700 entry (type 7) added or pointed at it, and the
  header's IFD0 offset is patched. All other entries keep their 12 bytes, so
  every value offset, strip and tile offset and the next-IFD link stay valid;
  pixel data does not move. The old IFD0 stays in the file unreferenced; the
  old XMP packet (which held the previous label) is overwritten with NUL bytes
  so no stale label copy remains.
* An EXIF UserComment that holds a label is blanked in place
  (:func:`blank_exif_label`), so one label remains; ImageDescription and other
  UserComments are left as they are; :func:`labeler.metadata.write_label` reports
  a label copy that remains elsewhere.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, read_all
from labeler.metadata.xmp import packet_labels, upsert_aigc
from labeler.record import is_label_json

# TIFF 6.0 section 2 field types and their sizes in bytes; 13 IFD from Adobe TIFF Tech Note 1.
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
TAG_IMAGE_DESCRIPTION = 0x010E  # TIFF 6.0 section 8
TAG_XMP = 0x02BC  # XMP Part 3 1.1.5
TAG_EXIF_IFD = 0x8769  # CIPA DC-008 4.6.3
TAG_USER_COMMENT = 0x9286  # CIPA DC-008 4.6.5
_BYTE, _ASCII, _UNDEFINED = 1, 2, 7
# Keys of AI declarations that are not the Appendix E label (digest section 5).
_DECLARATION_KEYS = {
    "aigc", "serviceprovider", "serviceuser", "contentid", "contentproducer", "produceid",
    "contentpropagator", "propagateid", "aigc_label_type",
}
_AIGC_PREFIX = re.compile(r"^\s*AIGC\s*[:=]?\s*[{\"]", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One 12-byte IFD entry (TIFF 6.0 section 2)."""

    tag: int
    type: int
    count: int
    pos: int  # offset of the entry in the data

    def raw(self, data: bytes) -> bytes:
        return data[self.pos:self.pos + 12]


@dataclass(frozen=True)
class Ifd:
    offset: int
    entries: tuple[Entry, ...]
    next_offset: int

    def get(self, tag: int) -> Entry | None:
        return next((e for e in self.entries if e.tag == tag), None)


class TiffData:
    """A bounded reader over a classic TIFF structure held in memory.

    Parameters
    ----------
    data : bytes
        The TIFF structure: a whole TIFF file, or the payload of an EXIF block
        (offsets are relative to its first byte, CIPA DC-008 4.5.2).
    what : str
        Name used in error messages (``"tiff"``, ``"exif"``).
    """

    def __init__(self, data: bytes, what: str = "tiff") -> None:
        self.data = data
        self.what = what
        if len(data) < 8:
            raise CorruptFile(f"{what} header is truncated")
        order = data[:2]
        if order == b"II":
            self.endian = "<"
        elif order == b"MM":
            self.endian = ">"
        else:
            raise CorruptFile(f"{what} header has no byte order mark (II/MM)")
        version = self.u16(2)
        if version == 43:
            raise UnsupportedFormat(f"bigtiff is not supported ({what})")
        if version != 42:
            raise CorruptFile(f"{what} header has version {version}, not 42")
        self.ifd0 = self.u32(4)

    def u16(self, pos: int) -> int:
        try:
            return struct.unpack_from(self.endian + "H", self.data, pos)[0]
        except struct.error:
            raise CorruptFile(f"{self.what} structure is truncated at offset {pos}") from None

    def u32(self, pos: int) -> int:
        try:
            return struct.unpack_from(self.endian + "I", self.data, pos)[0]
        except struct.error:
            raise CorruptFile(f"{self.what} structure is truncated at offset {pos}") from None

    def ifd(self, offset: int) -> Ifd:
        """The IFD at ``offset``, its entries checked to lie inside the data."""
        data = self.data
        if offset < 8 or offset + 2 > len(data):
            raise CorruptFile(f"{self.what} is truncated or corrupt: ifd offset {offset} is outside the data")
        count = self.u16(offset)
        end = offset + 2 + 12 * count
        if end + 4 > len(data):
            # Exif blocks written by some cameras omit the final next-IFD link of the last IFD.
            if end > len(data):
                raise CorruptFile(f"{self.what} is truncated: ifd at {offset} has more entries than it holds")
            next_offset = 0
        else:
            next_offset = self.u32(end)
        entries = tuple(
            Entry(*struct.unpack_from(self.endian + "HHI", data, offset + 2 + 12 * i), offset + 2 + 12 * i)
            for i in range(count)
        )
        return Ifd(offset, entries, next_offset)

    def chain(self) -> list[Ifd]:
        """IFD0 and the IFDs linked after it; a loop is :class:`CorruptFile`."""
        seen: set[int] = set()
        out: list[Ifd] = []
        offset = self.ifd0
        while offset:
            if offset in seen:
                raise CorruptFile(f"{self.what} ifd chain loops back to offset {offset}")
            if len(out) >= limits.MAX_BOXES:
                raise UnsafeInput(f"{self.what} has more than {limits.MAX_BOXES} ifds")
            seen.add(offset)
            ifd = self.ifd(offset)
            out.append(ifd)
            offset = ifd.next_offset
        return out

    def value_span(self, entry: Entry) -> tuple[int, int]:
        """(start, end) of an entry's value bytes; inline values (4 bytes or less) sit in the entry."""
        size = _TYPE_SIZES.get(entry.type)
        if size is None:
            raise CorruptFile(f"{self.what} tag {entry.tag} has unknown field type {entry.type}")
        length = size * entry.count
        if length <= 4:
            return entry.pos + 8, entry.pos + 8 + length
        start = self.u32(entry.pos + 8)
        if start + length > len(self.data):
            raise CorruptFile(f"{self.what} is truncated: tag {entry.tag} value runs past the end")
        return start, start + length

    def value(self, entry: Entry, limit: int) -> bytes:
        """An entry's value bytes, refusing more than ``limit`` bytes."""
        length = _TYPE_SIZES.get(entry.type, 1) * entry.count
        if length > limit:
            raise UnsafeInput(f"{self.what} tag {entry.tag} is {length} bytes, over the {limit}-byte limit")
        start, end = self.value_span(entry)
        return self.data[start:end]

    def head(self, entry: Entry, limit: int) -> bytes:
        """An entry's first ``limit`` value bytes at most: for text that is only examined, never rewritten.

        A long ImageDescription (ImageJ and OME-TIFF keep megabytes of XML there) or UserComment is
        no label (a label is at most :data:`labeler.limits.MAX_TEXT_VALUE` bytes), so its head is all a
        reader needs; refusing it (:meth:`value`) made the whole file unreadable and hid its XMP label.
        """
        start, end = self.value_span(entry)
        return self.data[start:min(end, start + limit)]

    def pointer(self, entry: Entry) -> int:
        """The offset held by a LONG/IFD pointer entry such as the Exif IFD pointer."""
        if entry.type not in (4, 13) or entry.count < 1:
            raise CorruptFile(f"{self.what} tag {entry.tag} is not an ifd pointer")
        return self.u32(entry.pos + 8)


# -- EXIF labels -----------------------------------------------------------------------------------
def exif_labels(data: bytes, where: str, *, strict: bool = False) -> list[FoundLabel]:
    """Label values in a TIFF/EXIF structure: UserComment, then ImageDescription.

    Parameters
    ----------
    data : bytes
        TIFF structure (an EXIF block without its ``Exif\\0\\0`` header, or a TIFF file).
    where : str
        Location prefix for the found labels (e.g. ``"APP1 Exif"``).
    strict : bool
        Raise on a broken structure (for TIFF files). Otherwise a broken EXIF block is
        ignored: it is not the label's carrier, and must not hide the XMP label of the file.
    """
    try:
        tiff = TiffData(data, "exif")
        ifd0 = tiff.ifd(tiff.ifd0)
        found: list[FoundLabel] = []
        exif_ptr = ifd0.get(TAG_EXIF_IFD)
        if exif_ptr is not None:
            exif_ifd = tiff.ifd(tiff.pointer(exif_ptr))
            comment = exif_ifd.get(TAG_USER_COMMENT)
            if comment is not None:
                text = user_comment_text(tiff.head(comment, limits.MAX_TEXT_VALUE), tiff.endian)
                if _is_label(text):
                    found.append(FoundLabel("exif-usercomment", text, f"{where} UserComment"))
                elif looks_like_ai_declaration(text):
                    found.append(FoundLabel("exif-usercomment", text, f"{where} UserComment", standard=False))
        desc = ifd0.get(TAG_IMAGE_DESCRIPTION)
        if desc is not None:
            raw = tiff.head(desc, limits.MAX_TEXT_VALUE)
            text = raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
            if _is_label(text) or looks_like_ai_declaration(text):
                found.append(
                    FoundLabel("exif-imagedescription", text, f"{where} ImageDescription", standard=False)
                )
        return found
    except (CorruptFile, UnsupportedFormat, UnsafeInput, struct.error):
        if strict:
            raise
        return []


def blank_exif_label(data: bytes) -> bytes | None:
    """``data`` with an EXIF UserComment that holds a label blanked in place, or None when there is none.

    GB 45438 6.1 c) allows one label per file, so a writer that puts the label in XMP must not leave an
    older label in UserComment (the image guide's Annex B alternative) behind: readers would find two
    copies, conflicting after a relabel. The value's bytes are overwritten (its 8-byte character code
    kept, the text turned into NULs: an empty comment, CIPA DC-008 4.6.5) so that no offset of the
    EXIF block or the file moves; a UserComment that is no label (a caption, a vendor declaration) is
    left as it is. A broken EXIF block is left alone too (:func:`exif_labels` ignores it as well).

    Parameters
    ----------
    data : bytes
        A TIFF structure (an EXIF block without its ``Exif\\0\\0`` header, or a whole TIFF file).
    """
    try:
        tiff = TiffData(data, "exif")
        exif_ptr = tiff.ifd(tiff.ifd0).get(TAG_EXIF_IFD)
        comment = tiff.ifd(tiff.pointer(exif_ptr)).get(TAG_USER_COMMENT) if exif_ptr is not None else None
        if comment is None:
            return None
        start, end = tiff.value_span(comment)
        raw = tiff.value(comment, limits.MAX_TEXT_VALUE)
    except (CorruptFile, UnsupportedFormat, UnsafeInput, struct.error):
        return None
    if not _is_label(user_comment_text(raw, tiff.endian)):
        return None
    code = raw[:8] if raw[:8].rstrip(b"\x00").isalpha() or raw[:8] == bytes(8) else b""
    return data[:start] + code + bytes(end - start - len(code)) + data[end:]


def user_comment_text(raw: bytes, endian: str = "<") -> str:
    """Decode an EXIF UserComment (CIPA DC-008 4.6.5 Table 9: 8-byte character code, then text).

    ``UNICODE`` text is UCS-2 in the block's byte order unless it starts with a
    byte order mark; ``ASCII`` and undefined text is read as UTF-8 (what writers
    put there in practice). Trailing NULs and spaces are dropped.
    """
    code, body = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            text = body.decode("utf-16", "replace")
        else:
            # Writers disagree on the byte order (block order, or always little-endian): for the
            # mostly-ASCII text of a label, the high bytes are the zeros.
            zeros_even, zeros_odd = body[0::2].count(0), body[1::2].count(0)
            little = zeros_odd > zeros_even or (zeros_odd == zeros_even and endian == "<")
            text = body.decode("utf-16-le" if little else "utf-16-be", "replace")
    elif code.startswith(b"JIS"):
        text = body.decode("shift_jis", "replace")
    elif len(raw) >= 8 and (code.startswith(b"ASCII") or code == b"\x00" * 8):
        text = body.decode("utf-8", "replace")
    else:
        # No valid character code: some writers store the text directly.
        text = raw.decode("utf-8", "replace")
    return text.rstrip("\x00 ").lstrip("\x00")


def _is_label(text: str) -> bool:
    if "{" not in text:
        return False
    try:
        return is_label_json(text)
    except (RecursionError, ValueError):
        return False


def looks_like_ai_declaration(text: str) -> bool:
    """True if ``text`` holds JSON with AI-declaration keys (``AIGC``, ``ContentId``, ``aigc_label_type``)."""
    if _AIGC_PREFIX.match(text):
        return True
    start = text.find("{")
    if start < 0:
        return False
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except (ValueError, RecursionError):
        return False
    if not isinstance(obj, dict):
        return False
    layers = [obj, *(v for v in obj.values() if isinstance(v, dict))]
    keys = {str(k).strip().lower() for layer in layers for k in layer}
    return bool(keys & _DECLARATION_KEYS) or any("aigc" in k for k in keys)


# -- the TIFF carrier -----------------------------------------------------------------------------
def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label value in a TIFF file: IFD0 XMP first, then EXIF UserComment, then ImageDescription."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    tiff = TiffData(data)
    ifd0 = tiff.chain()[0] if tiff.ifd0 else None
    if ifd0 is None:
        raise CorruptFile("tiff has no ifd0")
    found: list[FoundLabel] = []
    entry = ifd0.get(TAG_XMP)
    if entry is not None:
        packet = tiff.value(entry, limits.MAX_XMP_PACKET)
        found += packet_labels(packet, "IFD0 tag 700 XMP packet")
    found += exif_labels(data, "EXIF", strict=False)
    return sorted(found, key=lambda f: not f.standard)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a TIFF file to ``dst`` with ``value`` as ``TC260:AIGC`` in the IFD0 XMP packet (module doc)."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    tiff = TiffData(data)
    if not tiff.ifd0:
        raise CorruptFile("tiff has no ifd0")
    ifd0 = tiff.chain()[0]
    old = ifd0.get(TAG_XMP)
    out = bytearray(blank_exif_label(data) or data)
    if old is not None:
        span = tiff.value_span(old)
        packet = upsert_aigc(tiff.value(old, limits.MAX_XMP_PACKET), value, size_hint=span[1] - span[0])
        if len(packet) == span[1] - span[0] and old.type in (_BYTE, _UNDEFINED) and span[1] - span[0] > 4:
            out[span[0]:span[1]] = packet
            dst.write(out)
            return
        out[span[0]:span[1]] = bytes(span[1] - span[0]) if span[1] - span[0] > 4 else out[span[0]:span[1]]
    else:
        packet = upsert_aigc(None, value)
    if len(out) % 2:
        out += b"\x00"  # TIFF 6.0 section 2: values and IFDs start on a word boundary
    xmp_offset = len(out)
    out += packet
    if len(out) % 2:
        out += b"\x00"
    ifd_offset = len(out)
    entries = [e.raw(data) for e in ifd0.entries if e.tag != TAG_XMP]
    tags = [e.tag for e in ifd0.entries if e.tag != TAG_XMP]
    # Type 7 as the image guide says (XMP Part 3 allows BYTE too); an existing BYTE entry stays BYTE.
    xmp_type = old.type if old is not None and old.type in (_BYTE, _UNDEFINED) else _UNDEFINED
    new_entry = struct.pack(tiff.endian + "HHII", TAG_XMP, xmp_type, len(packet), xmp_offset)
    if len(entries) >= 0xFFFF:
        raise CorruptFile("tiff ifd0 has no room for another entry")
    at = next((i for i, tag in enumerate(tags) if tag > TAG_XMP), len(tags))
    entries.insert(at, new_entry)
    out += struct.pack(tiff.endian + "H", len(entries)) + b"".join(entries)
    out += struct.pack(tiff.endian + "I", ifd0.next_offset)
    if len(out) > 0xFFFFFFFF:
        raise LabelerError("labeled tiff would exceed the 4 GiB classic tiff limit")
    struct.pack_into(tiff.endian + "I", out, 4, ifd_offset)
    dst.write(out)


__all__ = [
    "TiffData",
    "Ifd",
    "Entry",
    "exif_labels",
    "blank_exif_label",
    "user_comment_text",
    "looks_like_ai_declaration",
    "read",
    "write",
]
