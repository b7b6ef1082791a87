"""PNG carrier: XMP in an ``iTXt`` chunk with keyword ``XML:com.adobe.xmp`` (carrier ``xmp-tc260``).

The image practice guide TC260-PG-20259A (digest section 4) puts the label of a
PNG file in its XMP packet, stored as XMP Specification Part 3 (2016) 1.1.4 says:
an ``iTXt`` chunk, keyword ``XML:com.adobe.xmp``, uncompressed, empty language
tag and translated keyword. Its Annex B alternative, a ``tEXt``/``zTXt`` chunk
with keyword ``AIGC`` holding the JSON, is read as ``png-text``. PNG layout: PNG
Specification (Third Edition, W3C 2025; ISO/IEC 15948) 5.3 (chunk layout, CRC-32 over
type and data), 5.6 (chunk ordering), 11.3.3 (``tEXt``/``zTXt``/``iTXt``), 11.3.2.6 (``eXIf``).

The chunks are walked from the signature to ``IEND`` (bytes after ``IEND`` are
kept as they are), at most :data:`labeler.limits.MAX_BOXES` chunks; a chunk longer
than 2^31-1 bytes or running past the end of the file, or a file without ``IHDR``
first or without ``IEND`` is :class:`~labeler.errors.CorruptFile`. CRCs are
checked on the chunks whose content is read or edited (text chunks, ``eXIf``); a
bad CRC on a chunk that is only copied is kept as it is. Compressed text is
inflated at most to :data:`labeler.limits.MAX_INFLATED` bytes
(:class:`~labeler.errors.UnsafeInput` beyond).

Labels read (standard first): ``xmp-tc260`` (``TC260:AIGC`` in any
``XML:com.adobe.xmp`` iTXt, compressed or not, and in a ``tEXt`` / ``zTXt`` chunk of that keyword:
not where XMP Part 3 puts it, but what Pillow's ``PngInfo.add_text(..., zip=True)`` writes, and
exiftool reads all three as the XMP packet; until 2026-12-08 such a label was reported as a
non-standard declaration of XML text, verdict "possible"), ``png-text`` (``tEXt``,
``zTXt`` or ``iTXt`` with keyword ``AIGC``, any letter case), then the EXIF of an
``eXIf`` chunk (``exif-usercomment``; ``exif-imagedescription`` not standard). A label in a text
chunk of another keyword (``png-text-comment``...) or in another XMP property (``xmp-description``...)
is a non-standard declaration (:func:`labeler.metadata.misplaced_label`); such a chunk that cannot be
read is skipped, not an error.

Write policy
------------
* The first XMP ``iTXt`` gets the label (:func:`labeler.metadata.xmp.upsert_aigc`,
  a textual edit keeping every other property) and is rewritten in place,
  uncompressed, keeping its language tag and translated keyword. Further XMP
  ``iTXt`` chunks lose their ``TC260:AIGC`` properties.
* Without one, a new uncompressed XMP ``iTXt`` is inserted immediately before the
  first ``IDAT`` (before the first ``fcTL`` in an APNG): PNG 5.6 lets ``iTXt``
  stand anywhere between ``IHDR`` and ``IEND``; before the image data lets
  readers that stop at ``IDAT`` find it, and after the existing ancillary chunks
  (``PLTE``, ``iCCP``, ``sRGB``, ``pHYs``...) leaves the head of the file as it was.
  exiftool (12.57) puts a new XMP ``iTXt`` at the same place.
* Without an XMP ``iTXt``, the first ``tEXt`` / ``zTXt`` XMP chunk becomes an uncompressed XMP
  ``iTXt`` in its place (its other properties kept), so the label is where XMP Part 3 puts it and no
  stale copy remains; further ``tEXt`` / ``zTXt`` XMP chunks with a label lose it (type kept).
* ``tEXt``/``zTXt``/``iTXt`` chunks with keyword ``AIGC`` are removed: they
  would be a second copy of the label (GB 45438-2025 6.1 c).
* An ``eXIf`` chunk whose UserComment holds a label gets it blanked in place
  (:func:`labeler.metadata.tiff.blank_exif_label`: same length, new CRC), so one
  label remains.
* All other chunks, including other ``eXIf`` data and image data, are copied byte for byte.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, PartialFile, UnsafeInput
from labeler.metadata import FoundLabel, misplaced_label, read_all
from labeler.metadata.tiff import blank_exif_label, exif_labels
from labeler.metadata.xmp import extract_aigc, packet_labels, remove_aigc, upsert_aigc

SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"  # XMP Part 3 1.1.4
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
_MAX_CHUNK = (1 << 31) - 1  # PNG 5.3: lengths are at most 2^31 - 1


@dataclass
class _Chunk:
    ctype: bytes
    offset: int  # of the length field
    length: int  # data bytes

    @property
    def start(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        return self.offset + 12 + self.length


@dataclass
class _Text:
    keyword: bytes
    text: bytes  # decoded: inflated, still in the chunk's charset (Latin-1 or UTF-8)
    compressed: bool
    lang: bytes = b""
    translated: bytes = b""


def _chunks(data: bytes, cut_after_idat: bool = False) -> tuple[list[_Chunk], int]:
    """The chunks from IHDR to IEND (inclusive) and the offset just after IEND.

    With ``cut_after_idat`` a file that ends early once its picture data has begun (an interrupted
    download or copy) gives the complete chunks before the cut and -1; a cut before the first ``IDAT``
    is still an error. Reading only: a writer never takes a damaged file.
    """
    if not data.startswith(SIGNATURE):
        raise CorruptFile("not a png file (bad signature)")
    chunks: list[_Chunk] = []
    pos, size = len(SIGNATURE), len(data)
    while True:
        if len(chunks) >= limits.MAX_BOXES:
            raise UnsafeInput(f"png has more than {limits.MAX_BOXES} chunks")
        if pos + 12 > size:
            if cut_after_idat and any(c.ctype == b"IDAT" for c in chunks):
                return chunks, -1
            raise CorruptFile("png is truncated (no IEND chunk)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if length > _MAX_CHUNK:
            raise CorruptFile(f"png chunk at offset {pos} has an invalid length {length}")
        if not ctype.isalpha():
            raise CorruptFile(f"png chunk at offset {pos} has an invalid type {ctype!r}")
        chunk = _Chunk(ctype, pos, length)
        if chunk.end > size:
            if cut_after_idat and (ctype == b"IDAT" or any(c.ctype == b"IDAT" for c in chunks)):
                return chunks, -1
            raise CorruptFile(f"png is truncated: chunk {ctype.decode()} at offset {pos} runs past the end")
        if not chunks and ctype != b"IHDR":
            raise CorruptFile("png does not start with an IHDR chunk")
        chunks.append(chunk)
        pos = chunk.end
        if ctype == b"IEND":
            return chunks, pos


def _data(data: bytes, chunk: _Chunk) -> bytes:
    """A chunk's data after checking its CRC (PNG 5.3: CRC-32 over type and data)."""
    body = data[chunk.offset + 4:chunk.start + chunk.length]
    stored = struct.unpack_from(">I", data, chunk.start + chunk.length)[0]
    if zlib.crc32(body) != stored:
        raise CorruptFile(f"png {chunk.ctype.decode()} chunk at offset {chunk.offset} fails its crc check")
    return body[4:]


def _inflate(blob: bytes, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(blob, limits.MAX_INFLATED + 1)
    except zlib.error:
        raise CorruptFile(f"png {what} holds corrupt compressed data") from None
    if len(out) > limits.MAX_INFLATED or inflater.unconsumed_tail:
        raise UnsafeInput(f"png {what} inflates to more than {limits.MAX_INFLATED} bytes")
    return out


def _keyword(data: bytes, chunk: _Chunk) -> bytes:
    """The keyword of a text chunk (PNG 11.3.3: 1-79 bytes then NUL), read without a CRC check."""
    head = data[chunk.start:chunk.start + min(chunk.length, 80)]
    return head.split(b"\x00", 1)[0] if b"\x00" in head else b""


def _itxt_compressed(data: bytes, chunk: _Chunk) -> bool:
    """The compression flag of an iTXt chunk (the byte after its keyword's NUL), read without a CRC check."""
    at = data.find(b"\x00", chunk.start, chunk.start + min(chunk.length, 80))
    return at >= 0 and at + 1 < chunk.start + chunk.length and data[at + 1] != 0


def _text(data: bytes, chunk: _Chunk, *, inflate: bool = True) -> _Text:
    body = _data(data, chunk)
    what = f"{chunk.ctype.decode()} chunk at offset {chunk.offset}"
    keyword, sep, rest = body.partition(b"\x00")
    if not sep:
        raise CorruptFile(f"png {what} has no keyword separator")
    if chunk.ctype == b"tEXt":
        return _Text(keyword, rest, False)
    if chunk.ctype == b"zTXt":
        if not rest or rest[0] != 0:
            raise CorruptFile(f"png {what} uses an unknown compression method")
        return _Text(keyword, _inflate(rest[1:], what) if inflate else b"", True)
    # iTXt: compression flag, method, language tag NUL, translated keyword NUL, text.
    if len(rest) < 2:
        raise CorruptFile(f"png {what} is truncated")
    flag, method = rest[0], rest[1]
    lang, sep1, rest = rest[2:].partition(b"\x00")
    translated, sep2, text = rest.partition(b"\x00")
    if not (sep1 and sep2) or flag not in (0, 1) or (flag and method != 0):
        raise CorruptFile(f"png {what} has a malformed header")
    if flag and inflate:
        text = _inflate(text, what)
    return _Text(keyword, text, bool(flag), lang, translated)


def _is_aigc(keyword: bytes) -> bool:
    return keyword.strip().upper() == b"AIGC"


def _xmp_text(data: bytes, chunk: _Chunk) -> bytes | None:
    """The XMP packet of a ``tEXt`` / ``zTXt`` chunk with keyword ``XML:com.adobe.xmp`` as UTF-8, or None
    if it cannot be read (bad CRC, corrupt or oversized, not XML): that chunk is not the standard carrier,
    so it is then left to :func:`_misplaced` rather than made fatal to the file."""
    if chunk.length > limits.MAX_XMP_PACKET + 200:
        return None
    try:
        text = _text(data, chunk).text
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            text = text.decode("latin-1").encode("utf-8")  # PNG 11.3.3.2: tEXt/zTXt text is Latin-1
        extract_aigc(text)  # well-formed and DTD-free, or None
    except LabelerError:
        return None
    return text


def _text_chunk(ctype: bytes, keyword: bytes, text: bytes) -> bytes:
    """A ``tEXt`` or ``zTXt`` chunk (PNG 11.3.3.2, 11.3.3.3: compression method 0, zlib)."""
    if ctype == b"zTXt":
        return chunk_bytes(b"zTXt", keyword + b"\x00\x00" + zlib.compress(text))
    return chunk_bytes(b"tEXt", keyword + b"\x00" + text)


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label value in a PNG file: XMP first, then AIGC text chunks, then EXIF.

    Raises
    ------
    PartialFile
        The file is cut short within or after its picture data: the labels of the chunks before the cut
        are in its ``found`` (verify reports them, as it reads a JPEG cut in its scan; a label in a chunk
        past the cut is lost).
    CorruptFile, UnsafeInput
        Otherwise broken, or over a bound.
    """
    data = read_all(src, limits.MAX_IMAGE_FILE)
    chunks, end = _chunks(data, cut_after_idat=True)
    xmp_found: list[FoundLabel] = []
    text_found: list[FoundLabel] = []
    exif_found: list[FoundLabel] = []
    budget = [limits.MAX_INFLATED]
    for chunk in chunks:
        where = f"{chunk.ctype.decode()} chunk at offset {chunk.offset}"
        if chunk.ctype in _TEXT_TYPES:
            keyword = _keyword(data, chunk)
            if chunk.ctype == b"iTXt" and keyword == XMP_KEYWORD:
                if chunk.length > limits.MAX_XMP_PACKET + 200:
                    raise UnsafeInput(f"png xmp {where} is {chunk.length} bytes, over the xmp packet limit")
                packet = _text(data, chunk).text
                xmp_found += packet_labels(packet, f"XMP {where}")
            elif keyword == XMP_KEYWORD and (packet := _xmp_text(data, chunk)) is not None:
                xmp_found += packet_labels(packet, f"XMP {where}")
            elif _is_aigc(keyword):
                if chunk.length > limits.MAX_TEXT_VALUE + 100:
                    raise UnsafeInput(f"png {where} is {chunk.length} bytes, over the text value limit")
                item = _text(data, chunk)
                charset = "utf-8" if chunk.ctype == b"iTXt" else "latin-1"  # PNG 11.3.3.2 / 11.3.3.4
                text = item.text.decode(charset, "replace")
                where += f" (keyword {keyword.decode('latin-1')})"
                text_found.append(FoundLabel("png-text", text, where))
            elif (misplaced := _misplaced(data, chunk, keyword, where, budget)) is not None:
                exif_found.append(misplaced)
        elif chunk.ctype == b"eXIf":
            exif_found += exif_labels(_data(data, chunk), "eXIf")
    found = sorted(xmp_found + text_found + exif_found, key=lambda f: not f.standard)
    if end < 0:
        raise PartialFile(f"png is truncated: it ends within its picture data, at {len(data)} bytes", found)
    return found


def _misplaced(
    data: bytes, chunk: _Chunk, keyword: bytes, where: str, budget: list[int]
) -> FoundLabel | None:
    """A label in another text chunk (``Comment``, ``Description``...) as a non-standard declaration.

    Such a chunk is not the label's carrier, so one that cannot be read (bad CRC, corrupt or oversized
    compressed text) is skipped rather than made fatal to the whole file. ``budget`` is what is left of
    :data:`labeler.limits.MAX_INFLATED` for inflating such chunks, all together: many small
    compression bombs must not cost more than one.
    """
    compressed = chunk.ctype == b"zTXt" or (chunk.ctype == b"iTXt" and _itxt_compressed(data, chunk))
    if chunk.length > limits.MAX_TEXT_VALUE + 100 or (compressed and budget[0] <= 0):
        return None
    try:
        item = _text(data, chunk)
    except LabelerError:
        budget[0] -= limits.MAX_INFLATED if compressed else 0
        return None
    budget[0] -= len(item.text) if compressed else 0
    name = keyword.decode("latin-1")
    text = item.text.decode("utf-8" if chunk.ctype == b"iTXt" else "latin-1", "replace")
    return misplaced_label("png-text", name, text, f"{where} (keyword {name})")


#: Samples per pixel of each PNG colour type (PNG 11.2.1, IHDR).
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def completed_truncated(data: bytes, max_pixels: int) -> tuple[bytes, float]:
    """A PNG cut short within or after its picture data, completed for a decoder (verification only).

    The complete chunks before the cut are kept (``IHDR``, ``PLTE``, ...); the picture data that is there
    (the complete ``IDAT`` chunks and the part of the cut one) is inflated as far as it goes, and the
    scanlines it gives are recompressed, followed by rows of mid-grey (filter type None, every byte
    0x80) up to the image's height, into one ``IDAT`` and an ``IEND``. The decoder then unfilters the
    rows that were there exactly, as libpng shows a partial download, without Pillow's process-wide
    ``LOAD_TRUNCATED_IMAGES`` switch.

    Returns
    -------
    (bytes, float)
        The completed file, and the share (0..1) of the rows that came from the file.

    Raises
    ------
    CorruptFile
        Not cut within or after its picture data, interlaced (Adam7 passes do not map to rows), an
        unknown colour type, or no complete row.
    UnsafeInput
        More than ``max_pixels`` pixels (checked before inflating).
    """
    chunks, end = _chunks(data, cut_after_idat=True)
    if end != -1:
        raise CorruptFile("png is not cut short")
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, chunks[0].start)
    if width * height > max_pixels:
        raise UnsafeInput(f"image is {width}x{height} pixels, over the limit of {max_pixels} pixels")
    if interlace or colour not in _CHANNELS:
        raise CorruptFile("an interlaced png cut short cannot be read in part" if interlace
                          else f"png has an unknown colour type {colour}")
    stride = (width * _CHANNELS[colour] * depth + 7) // 8 + 1  # + the filter-type byte
    parts = [data[c.start : c.start + c.length] for c in chunks if c.ctype == b"IDAT"]
    cut = chunks[-1].end
    if cut + 8 <= len(data) and data[cut + 4 : cut + 8] == b"IDAT":
        parts.append(data[cut + 8 :])  # the part of the cut chunk that is there (its CRC is not)
    raw = _inflate_prefix(b"".join(parts), stride * height)
    rows = len(raw) // stride
    if rows == 0:
        raise CorruptFile("png is cut short before its first row of pixels")
    grey = (b"\x00" + b"\x80" * (stride - 1)) * (height - rows)
    body = zlib.compress(raw[: rows * stride] + grey, 1)
    head = b"".join(data[c.offset : c.end] for c in chunks if c.ctype not in (b"IDAT", b"IEND"))
    return SIGNATURE + head + chunk_bytes(b"IDAT", body) + chunk_bytes(b"IEND", b""), rows / height


def _inflate_prefix(blob: bytes, limit: int, piece: int = 1 << 16) -> bytes:
    """What a zlib stream cut short (or damaged part way) inflates to, at most ``limit`` bytes."""
    inflater, out, size = zlib.decompressobj(), [], 0
    for at in range(0, len(blob), piece):
        try:
            got = inflater.decompress(blob[at : at + piece], limit - size)
        except zlib.error:  # damaged from here on: keep what came before
            break
        out.append(got)
        size += len(got)
        if size >= limit or inflater.eof:
            break
    return b"".join(out)


def chunks_of_types(data: bytes, types: tuple[bytes, ...]) -> list[tuple[bytes, bytes, bytes]]:
    """``(type, keyword, data)`` of every chunk of one of ``types`` in a PNG, in file order, CRC-checked;
    ``keyword`` is a text chunk's keyword, empty for other types (what a re-encode of the pixels may copy;
    :mod:`labeler.media.image_extras`).

    Raises
    ------
    CorruptFile, UnsafeInput
        Malformed chunk structure or a failed CRC, too many chunks.
    """
    chunks, _ = _chunks(data)
    return [(c.ctype, _keyword(data, c) if c.ctype in _TEXT_TYPES else b"", _data(data, c))
            for c in chunks if c.ctype in types]


def chunk_bytes(ctype: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 over type and data (PNG spec 5.3)."""
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _itxt(packet: bytes, lang: bytes = b"", translated: bytes = b"") -> bytes:
    # XMP Part 3 1.1.4: uncompressed (flag 0, method 0), so the packet can be found and edited in place.
    header = XMP_KEYWORD + b"\x00\x00\x00" + lang + b"\x00" + translated + b"\x00"
    return chunk_bytes(b"iTXt", header + packet)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a PNG file to ``dst`` with ``value`` as ``TC260:AIGC`` in its XMP ``iTXt`` chunk (module doc)."""
    data = read_all(src, limits.MAX_IMAGE_FILE)
    chunks, iend_end = _chunks(data)
    out: list[bytes] = [SIGNATURE]
    # An XMP chunk anywhere (even after IDAT) is edited where it is, never joined by a new one.
    done = False
    has_xmp = any(c.ctype == b"iTXt" and _keyword(data, c) == XMP_KEYWORD for c in chunks)
    texts = {c.offset: t for c in chunks if c.ctype in (b"tEXt", b"zTXt") and _keyword(data, c) == XMP_KEYWORD
             and (t := _xmp_text(data, c)) is not None}
    for chunk in chunks:
        raw = data[chunk.offset:chunk.end]
        if chunk.ctype in _TEXT_TYPES:
            keyword = _keyword(data, chunk)
            if chunk.ctype == b"iTXt" and keyword == XMP_KEYWORD:
                if chunk.length > limits.MAX_XMP_PACKET + 200:
                    raise UnsafeInput(f"png xmp chunk at offset {chunk.offset} is over the xmp packet limit")
                item = _text(data, chunk)
                if not done:
                    raw = _itxt(upsert_aigc(item.text, value), item.lang, item.translated)
                    done = True
                elif extract_aigc(item.text):
                    raw = _itxt(remove_aigc(item.text), item.lang, item.translated)
            elif chunk.offset in texts:
                packet = texts[chunk.offset]
                if not has_xmp and not done:
                    raw = _itxt(upsert_aigc(packet, value))
                    done = True
                elif extract_aigc(packet):
                    raw = _text_chunk(chunk.ctype, keyword, remove_aigc(packet))
            elif _is_aigc(keyword):
                continue  # a second label copy (Annex B alternative): removed
        elif chunk.ctype in (b"IDAT", b"fcTL") and not has_xmp and not texts and not done:
            out.append(_itxt(upsert_aigc(None, value)))
            done = True
        elif chunk.ctype == b"IEND" and not done:
            raise CorruptFile("png has no IDAT chunk")
        elif chunk.ctype == b"eXIf":
            blanked = blank_exif_label(_data(data, chunk))
            raw = raw if blanked is None else chunk_bytes(b"eXIf", blanked)
        out.append(raw)
    out.append(data[iend_end:])
    for part in out:
        dst.write(part)


__all__ = ["SIGNATURE", "XMP_KEYWORD", "read", "write", "chunks_of_types"]
