"""JPEG carrier: the XMP packet of the APP1 ``http://ns.adobe.com/xap/1.0/`` segment (``xmp-tc260``).

The image practice guide TC260-PG-20259A (digest section 4) puts the label of a
JPEG file in its XMP packet, APP1 segment with the namespace header
``http://ns.adobe.com/xap/1.0/\\0`` (XMP Specification Part 3 (2016) 1.1.3).
JPEG layout: ITU-T T.81 (ISO/IEC 10918-1) B.1.1 (markers, fill bytes 0xFF, 2-byte
lengths that include themselves) and B.2.4 (segments before the first SOS).

The marker segments are walked from SOI up to the first SOS (everything from SOS
on -- entropy-coded data, later scans, EOI and trailing bytes such as MPF images --
is copied as one block), at most :data:`labeler.limits.MAX_BOXES` segments; a
segment that runs past the end of the file, bytes that are no marker, or a file
without SOS is :class:`~labeler.errors.CorruptFile`.

Labels read (standard first):

* ``xmp-tc260``: ``TC260:AIGC`` in an APP1 XMP packet, or in the Extended XMP packet
  (``http://ns.adobe.com/xmp/extension/`` APP1 segments, XMP Part 3 1.1.3.1) that the main
  packet names by ``xmpNote:HasExtendedXMP``: exiftool moves the largest properties there
  when the XMP passes one segment, so a label with a long ReservedCode1 (a signature) lands
  there. Like exiftool, only the extended packet with that GUID is read, whole (every chunk
  present), and only up to :data:`labeler.limits.MAX_XMP_PACKET` bytes (a phone's multi-MB
  depth map is skipped, as before). Until 2026-12-08 it was never read: such a label read as
  no label at all;
* ``exif-usercomment``: EXIF UserComment with label JSON (APP1 ``Exif\\0\\0``,
  see :func:`labeler.metadata.tiff.exif_labels`);
* ``exif-imagedescription`` (``standard=False``): AI-declaration JSON in EXIF ImageDescription;
* ``app-blob`` (``standard=False``): any other APPn or COM segment whose payload
  starts with ``AIGC`` followed by JSON or contains ``{"AIGC"`` (a vendor's bare blob).

Write policy
------------
* The first APP1 XMP packet gets the label (:func:`labeler.metadata.xmp.upsert_aigc`:
  a textual edit, every other property kept, the packet padding absorbing the
  size change where it can). Further standard XMP APP1 segments (invalid, but
  seen) lose their ``TC260:AIGC`` properties, so one label remains.
* Without an XMP segment a new APP1 XMP segment is inserted after the leading
  APP0 (JFIF/JFXX) and APP1 Exif segments: Exif 2.32 (CIPA DC-008 4.5.4) wants
  the Exif APP1 right after SOI (after JFIF APP0 where present), so XMP goes
  after them; exiftool (12.57) places a new XMP APP1 there too, before ICC APP2.
* Every other byte is kept: EXIF, ICC (APP2), MPF (APP2), JUMBF/C2PA (APP11),
  quantization and Huffman tables, and the whole entropy-coded data from SOS on.
  When an MPF index (CIPA DC-007) precedes a segment whose size changed, its
  offsets to the following images are moved by the same amount.
* The packet must fit one APP1 segment (65 504 bytes after the 29-byte header):
  Extended XMP is not written; a larger packet is a :class:`~labeler.errors.LabelerError`.
  A label in the Extended XMP packet is removed from it (so one label remains): its other
  properties stay, its chunks are rewritten under the new packet's MD5, and the main packet's
  ``xmpNote:HasExtendedXMP`` GUID is replaced by the new one (same length: nothing else moves).
* An EXIF UserComment that holds a label (an older one, the image guide's Annex B
  alternative) is blanked in place, the segment keeping its length
  (:func:`labeler.metadata.tiff.blank_exif_label`), so one label remains (GB 45438
  6.1 c). Other UserComments, ImageDescription and APP blobs are left as they are.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput
from labeler.metadata import FoundLabel, aigc_blob, read_all
from labeler.metadata.tiff import TiffData, blank_exif_label, exif_labels
from labeler.metadata.xmp import extended_guid, extract_aigc, packet_labels, remove_aigc, upsert_aigc

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"  # XMP Part 3 1.1.3
_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/"
_EXTENDED_XMP = b"http://ns.adobe.com/xmp/extension/\x00"
_EXIF_HEADER = b"Exif\x00"  # CIPA DC-008 4.5.4: "Exif" NUL + one pad byte
_MPF_HEADER = b"MPF\x00"  # CIPA DC-007 5.2
_SOI, _SOS, _EOI, _APP0, _APP1, _APP2, _APP15, _COM = 0xD8, 0xDA, 0xD9, 0xE0, 0xE1, 0xE2, 0xEF, 0xFE
_APP11 = 0xEB
_MAX_SEGMENT = 0xFFFF - 2  # payload bytes of one marker segment (T.81 B.1.1.4)
MAX_PACKET = _MAX_SEGMENT - len(XMP_HEADER)
_MP_ENTRY = 0xB002  # CIPA DC-007 5.2.3.3
# XMP Part 3 1.1.3.1: an Extended XMP segment is the signature, a 32-char GUID, the full length and this
# chunk's offset (big-endian 32-bit), then the chunk (exiftool writes chunks of at most 65,400 bytes).
_EXT_HEAD = len(_EXTENDED_XMP) + 32 + 8
_EXT_CHUNK = 65400


@dataclass
class _Segment:
    marker: int
    offset: int  # first 0xFF (fill bytes included)
    start: int  # first payload byte (after the length field)
    end: int  # just after the segment

    def payload(self, data: bytes) -> bytes:
        return data[self.start:self.end]


def _walk(src: BinaryIO, size: int) -> Iterator[_Segment]:
    """The marker segments of the JPEG in ``src`` (``size`` bytes) from SOI up to the first SOS, header by
    header (payloads are skipped, so the caller may read them between steps); the last one yielded is
    that SOS marker (its ``start`` = ``end``, just after the marker). Malformed structure raises
    :class:`~labeler.errors.CorruptFile`, more than :data:`labeler.limits.MAX_BOXES` segments
    :class:`~labeler.errors.UnsafeInput`."""
    src.seek(0)
    if src.read(2) != b"\xff\xd8":
        raise CorruptFile("not a jpeg file (no SOI marker)")
    pos, count = 2, 0
    while True:
        if count >= limits.MAX_BOXES:
            raise UnsafeInput(f"jpeg has more than {limits.MAX_BOXES} marker segments")
        if pos >= size:
            raise CorruptFile("jpeg is truncated: it ends before the image data (no SOS marker)")
        src.seek(pos)
        if src.read(1) != b"\xff":
            raise CorruptFile(f"jpeg has bytes that are no marker at offset {pos}")
        offset = pos
        following = src.read(1)
        while following == b"\xff":
            pos += 1  # T.81 B.1.1.2: any number of 0xFF fill bytes may precede a marker
            following = src.read(1)
        if not following:
            raise CorruptFile("jpeg is truncated inside a marker")
        marker = following[0]
        if marker == _SOS:
            yield _Segment(marker, offset, pos + 2, pos + 2)
            return
        if marker == _EOI:
            raise CorruptFile("jpeg ends (EOI) before any image data")
        count += 1
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            yield _Segment(marker, offset, pos + 2, pos + 2)  # RSTn / TEM: no length
            pos += 2
            continue
        if marker in (0x00, _SOI):
            raise CorruptFile(f"jpeg has an invalid marker 0x{marker:02x} at offset {pos}")
        raw = src.read(2)
        if len(raw) < 2:
            raise CorruptFile("jpeg is truncated inside a segment header")
        length = struct.unpack(">H", raw)[0]
        if length < 2:
            raise CorruptFile(f"jpeg segment at offset {pos} has an invalid length {length}")
        end = pos + 2 + length
        if end > size:
            raise CorruptFile(f"jpeg is truncated: segment 0x{marker:02x} at offset {pos} runs past the end")
        yield _Segment(marker, offset, pos + 4, end)
        pos = end


def _segments(data: bytes) -> tuple[list[_Segment], int]:
    """Marker segments between SOI and the first SOS, and the offset of that SOS marker."""
    *segments, sos = _walk(io.BytesIO(data), len(data))
    return segments, sos.offset


def header_segments(data: bytes) -> list[tuple[int, bytes]]:
    """``(marker, payload)`` of every marker segment of a JPEG from SOI up to its first SOS, in file order
    (what a re-encode of the pixels may copy; :mod:`labeler.media.image_extras`).

    Raises
    ------
    CorruptFile, UnsafeInput
        As :func:`read`: malformed marker structure, too many segments.
    """
    segments, _ = _segments(data)
    return [(seg.marker, seg.payload(data)) for seg in segments]


def may_hold_c2pa(src: BinaryIO) -> bool:
    """Whether a JPEG may embed a C2PA manifest store or point to a remote one.

    The C2PA Technical Specification (2.1, "Embedding manifests into JPEG") puts the store, as JUMBF,
    in APP11 segments (JPEG XT, ISO/IEC 18477-3); a remote store is referenced from the XMP packet
    (``dcterms:provenance``, "External manifests"). Both precede the image data, so a file whose
    segments before the first SOS hold no APP11 segment and no APP1 payload that mentions
    ``provenance`` holds no manifest. Reads the segment headers and the APP1 payloads only (a few
    reads, not the image data).

    Parameters
    ----------
    src : binary file
        The file, seekable, read from its start (its position is left anywhere).

    Returns
    -------
    bool
        False only when the segments up to the first SOS were walked and none can carry a manifest;
        True otherwise, also for a file that is no JPEG or whose markers cannot be walked (a C2PA
        reader then gives its own answer).
    """
    size = src.seek(0, os.SEEK_END)
    try:
        for seg in _walk(src, size):
            if seg.marker == _APP11:
                return True
            if seg.marker == _APP1:
                src.seek(seg.start)
                if b"provenance" in src.read(seg.end - seg.start):
                    return True
    except LabelerError:
        return True
    return False


def _xmp_packet(data: bytes, seg: _Segment) -> bytes | None:
    """The XMP packet of a standard XMP APP1 segment, else None (Extended XMP is not standard XMP)."""
    if seg.marker != _APP1:
        return None
    payload = seg.payload(data)
    if not payload.startswith(_XMP_PREFIX):
        return None
    body = payload[len(_XMP_PREFIX):]
    # A few writers leave out the NUL after the namespace; the packet then starts right after it.
    return body[1:] if body[:1] == b"\x00" else body


@dataclass
class _Extended:
    guid: bytes  # as in the segments and the main packet
    indices: list[int]  # of its segments, in file order
    packet: bytes


def _main_guid(data: bytes, segments: list[_Segment]) -> str | None:
    # exiftool takes the GUID of the last main packet that names one; so does this reader.
    guid = None
    for seg in segments:
        packet = _xmp_packet(data, seg)
        if packet is not None:
            guid = extended_guid(packet) or guid
    return guid


def _extended_xmp(data: bytes, segments: list[_Segment], guid: str | None) -> _Extended | None:
    """The Extended XMP packet whose GUID the main packet names, assembled; None if there is none, a chunk
    is missing, or it is over :data:`labeler.limits.MAX_XMP_PACKET` bytes (left as it is, unread)."""
    if not guid or len(guid) != 32 or not guid.isascii():
        return None
    want = guid.encode("ascii")
    chunks: dict[int, bytes] = {}
    indices: list[int] = []
    total: int | None = None
    for i, seg in enumerate(segments):
        payload = seg.payload(data)
        if seg.marker != _APP1 or not payload.startswith(_EXTENDED_XMP) or len(payload) < _EXT_HEAD:
            continue
        if payload[len(_EXTENDED_XMP):len(_EXTENDED_XMP) + 32] != want:
            continue
        size, offset = struct.unpack(">II", payload[_EXT_HEAD - 8:_EXT_HEAD])
        if total is not None and size != total:
            return None  # inconsistent lengths: exiftool warns and so cannot be relied on
        total = size
        chunks[offset] = payload[_EXT_HEAD:]
        indices.append(i)
    if total is None or total > limits.MAX_XMP_PACKET:
        return None
    parts, at = [], 0
    while at < total and chunks.get(at):
        parts.append(chunks[at])
        at += len(chunks[at])
    if at != total:
        return None  # incomplete (exiftool: "Incomplete extended XMP")
    return _Extended(want, indices, b"".join(parts))


def _extended_segments(packet: bytes) -> tuple[bytes, bytes]:
    """(GUID, the APP1 segments) of ``packet`` stored as Extended XMP."""
    guid = hashlib.md5(packet).hexdigest().upper().encode("ascii")  # XMP Part 3: the GUID is its MD5
    head = _EXTENDED_XMP + guid + struct.pack(">I", len(packet))
    segs = b"".join(_app1(head + struct.pack(">I", at), packet[at:at + _EXT_CHUNK])
                    for at in range(0, max(len(packet), 1), _EXT_CHUNK))
    return guid, segs


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label value in a JPEG file: XMP first, then EXIF UserComment, then non-standard ones."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    segments, _ = _segments(data)
    xmp_found: list[FoundLabel] = []
    other: list[FoundLabel] = []
    for seg in segments:
        payload = seg.payload(data)
        packet = _xmp_packet(data, seg)
        if packet is not None:
            xmp_found += packet_labels(packet, "APP1 XMP packet")
        elif seg.marker == _APP1 and payload.startswith(_EXIF_HEADER):
            other += exif_labels(payload[6:], "APP1 Exif")
        elif seg.marker == _APP1 and payload.startswith(_EXTENDED_XMP):
            continue  # Extended XMP (XMP Part 3 1.1.3.1): not where the label goes
        elif _APP0 <= seg.marker <= _APP15 or seg.marker == _COM:
            text = aigc_blob(payload)
            if text is not None:
                name = "COM" if seg.marker == _COM else f"APP{seg.marker - _APP0}"
                other.append(FoundLabel("app-blob", text, f"{name} segment at offset {seg.offset}", False))
    extended = _extended_xmp(data, segments, _main_guid(data, segments))
    if extended is not None:
        xmp_found += packet_labels(extended.packet, "APP1 Extended XMP packet")
    return sorted(xmp_found + other, key=lambda f: not f.standard)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a JPEG file to ``dst`` with ``value`` as ``TC260:AIGC`` in its APP1 XMP packet (module doc)."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    segments, sos = _segments(data)
    # Replacement bytes per segment index; index -1 - i means "insert before segment i".
    parts: list[bytes] = [data[s.offset:s.end] for s in segments]
    new_parts: dict[int, bytes] = {}
    inserted: tuple[int, bytes] | None = None
    xmp_indices = [i for i, s in enumerate(segments) if _xmp_packet(data, s) is not None]
    if xmp_indices:
        first = xmp_indices[0]
        seg = segments[first]
        old = _xmp_packet(data, seg)
        header = seg.payload(data)[:len(seg.payload(data)) - len(old)]
        packet = upsert_aigc(old, value)
        if len(header) + len(packet) > _MAX_SEGMENT:
            packet = upsert_aigc(old, value, size_hint=_MAX_SEGMENT - len(header))
        new_parts[first] = _app1(header, packet)
        for i in xmp_indices[1:]:
            extra = _xmp_packet(data, segments[i])
            if extract_aigc(extra):
                cut = segments[i].payload(data)
                new_parts[i] = _app1(cut[:len(cut) - len(extra)], remove_aigc(extra))
    else:
        packet = upsert_aigc(None, value)
        at = 0
        while at < len(segments) and (
            segments[at].marker == _APP0
            or (segments[at].marker == _APP1 and segments[at].payload(data).startswith(_EXIF_HEADER))
        ):
            at += 1
        inserted = (at, _app1(XMP_HEADER, packet))
    for i, seg in enumerate(segments):
        payload = seg.payload(data)
        if seg.marker == _APP1 and payload.startswith(_EXIF_HEADER):
            blanked = blank_exif_label(payload[6:])
            if blanked is not None:  # same length: nothing after it moves
                new_parts[i] = data[seg.offset:seg.start] + payload[:6] + blanked
    extended = _extended_xmp(data, segments, _main_guid(data, segments)) if xmp_indices else None
    if extended is not None and extract_aigc(extended.packet):
        guid, segs = _extended_segments(remove_aigc(extended.packet, size_hint=0))
        new_parts[extended.indices[0]] = segs
        for i in extended.indices[1:]:
            new_parts[i] = b""
        for i in xmp_indices:  # the GUID is 32 ASCII characters either way: no length changes
            new_parts[i] = new_parts.get(i, parts[i]).replace(extended.guid, guid)
    for i, blob in new_parts.items():
        parts[i] = blob
    _fix_mpf(data, segments, parts, inserted)
    if inserted is not None:
        parts.insert(inserted[0], inserted[1])
    dst.write(data[:2])
    for part in parts:
        dst.write(part)
    dst.write(data[sos:])


def _app1(header: bytes, packet: bytes) -> bytes:
    length = len(header) + len(packet) + 2
    if length - 2 > _MAX_SEGMENT:
        raise LabelerError(
            f"xmp packet would be {len(packet)} bytes, over the {_MAX_SEGMENT - len(header)} "
            "bytes a jpeg app1 segment holds"
        )
    return b"\xff\xe1" + struct.pack(">H", length) + header + packet


def _fix_mpf(data: bytes, segments: list[_Segment], parts: list[bytes], inserted) -> None:
    """Move the MPF image offsets (CIPA DC-007 5.2.3.3.3) by the growth of the segments after the MPF index.

    MPF offsets count from the MP header inside the APP2 segment, so a size change
    before that segment moves both ends alike and needs no fix.
    """
    for index, seg in enumerate(segments):
        payload = seg.payload(data)
        if seg.marker != _APP2 or not payload.startswith(_MPF_HEADER):
            continue
        delta = sum(len(parts[i]) - (s.end - s.offset) for i, s in enumerate(segments) if i > index)
        if inserted is not None and inserted[0] > index:
            delta += len(inserted[1])
        if delta == 0:
            return
        try:
            tiff = TiffData(payload[4:], "mpf")
            ifd = tiff.ifd(tiff.ifd0)
            entry = ifd.get(_MP_ENTRY)
            if entry is None:
                return
            start, end = tiff.value_span(entry)
            table = bytearray(tiff.data)
            for pos in range(start, end - 15, 16):
                offset = tiff.u32(pos + 8)
                if offset:
                    struct.pack_into(tiff.endian + "I", table, pos + 8, offset + delta)
        except CorruptFile:
            return  # a broken MPF index is left as it was: it was unusable before too
        parts[index] = data[seg.offset:seg.start] + payload[:4] + bytes(table)
        return


__all__ = ["XMP_HEADER", "MAX_PACKET", "read", "write", "may_hold_c2pa", "header_segments"]
