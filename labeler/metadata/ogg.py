"""Ogg carrier (Vorbis, Opus): a Vorbis comment ``AIGC=<JSON>`` in the comment header (``vorbis-comment``).

The audio practice guide (as quoted in the digest) puts the label of Ogg and Opus files in a Vorbis
comment named ``AIGC``, as for FLAC. Layout: RFC 3533 (Ogg pages: ``OggS``, version 0, header type,
granule position, serial, sequence number, CRC-32, segment table), the Vorbis I specification 4.2 and
5.2.1 (packet 2 is ``"\\x03vorbis"`` + the comment list + a framing bit) and RFC 7845 5.2 (``OpusTags`` +
the same list, optionally followed by binary data that editors keep when its first byte's LSB is set).

Scope
-----
* The **first logical stream of the first link** carries the label, and it must be Vorbis or Opus
  (:func:`codec_of`; FLAC-in-Ogg, Speex, Theora, Skeleton... are refused as ``UnsupportedFormat``).
* A **multiplexed** link (a second beginning-of-stream page, or a page of another serial among the
  header pages; RFC 3533 puts all BOS pages of a link first) is refused: audio-only Vorbis/Opus files
  are single-stream, and relabeling one stream of a grouped file would need the other streams kept
  interleaved. **Chained** links after the first stream's end-of-stream page are copied byte for byte
  and not read: the label describes the file, which starts with the first link.
* Bounds: at most :data:`labeler.limits.MAX_BOXES` pages walked to collect the header packets, each
  header packet at most :data:`labeler.limits.MAX_OGG_PACKET` bytes; every page read is CRC-checked.

Write policy
------------
* Every ``AIGC`` comment (any case) is removed; ``AIGC=<value>`` takes the place of the first one, or is
  appended after the other comments. The vendor string, the other comments and the bytes after the list
  (Vorbis framing bit; Opus binary data with its LSB set) are kept byte for byte. Opus padding (LSB 0,
  "may be discarded" per RFC 7845) shrinks by what the comment list grew, as FLAC padding does.
* The identification page is copied as it is. The comment header (and the Vorbis setup header, kept
  byte for byte) are laid out again on pages of up to 255 segments starting at the second page, ending
  on a page boundary before the audio (Vorbis I A.2, RFC 7845 3). Header pages where a packet ends get
  granule position 0; Vorbis pages where none ends get -1 (no packet completes there, RFC 3533 6).
* When the header pages are as many as before (the usual case: a label is a few hundred bytes), the
  audio pages are copied byte for byte. Otherwise the first stream's following pages get their
  sequence numbers shifted and their CRCs recomputed, one page at a time (bounded memory), until its
  end-of-stream page; chained links after it are copied as they are.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, copy_stream, vorbis_comment

# RFC 3533 6: capture pattern, version, header type, granule position, serial, sequence, CRC, segments.
_PAGE = struct.Struct("<4sBBQIIIB")
_CONTINUED, _BOS, _EOS = 0x01, 0x02, 0x04
_NO_GRANULE = 0xFFFFFFFFFFFFFFFF  # -1: no packet completes on the page
_MAX_SEGMENTS = 255
# First packet of a logical stream -> codec; the comment header's prefix and the header packet count.
_CODECS = {b"\x01vorbis": ("vorbis", b"\x03vorbis", 3), b"OpusHead": ("opus", b"OpusTags", 2)}
_OTHER_CODECS = {b"\x7fFLAC": "FLAC", b"Speex   ": "Speex", b"\x80theora": "Theora",
                 b"fishead\x00": "Skeleton (multiplexed)", b"\x80daala": "Daala", b"CELT    ": "CELT",
                 b"PCM     ": "PCM", b"\x80kate": "Kate", b"BBCD\x00": "Dirac", b"\x01video": "OGM video"}

# Byte bit-reversal table: Ogg's CRC is MSB-first, zlib's is LSB-first (see _crc).
_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


@functools.lru_cache(maxsize=256)
def _zeros_crc(length: int) -> int:
    return zlib.crc32(bytes(length))


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 of ``data`` (RFC 3533 6: poly 0x04C11DB7, init 0, MSB first, no final xor).

    zlib computes the bit-reflected CRC with init and final xor 0xFFFFFFFF; XOR-ing the CRC of as many
    zero bytes cancels both (the CRC is affine in its input), which leaves the reflected CRC with init 0.
    A MSB-first CRC is the bit reversal of the reflected CRC of the bit-reversed bytes, so the whole
    page goes through C code (no per-byte Python loop).
    """
    raw = zlib.crc32(data.translate(_REVERSED)) ^ _zeros_crc(len(data))
    return int(f"{raw:032b}"[::-1], 2)


@dataclass
class _Page:
    offset: int
    flags: int
    granule: int
    serial: int
    seq: int
    lacing: bytes

    @property
    def size(self) -> int:
        return _PAGE.size + len(self.lacing) + sum(self.lacing)


def _page_bytes(flags: int, granule: int, serial: int, seq: int, lacing: bytes, body: bytes) -> bytes:
    head = _PAGE.pack(b"OggS", 0, flags, granule, serial, seq & 0xFFFFFFFF, 0, len(lacing))
    page = head + lacing + body
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def _read_page(src: BinaryIO, offset: int, file_size: int) -> tuple[_Page, bytes]:
    """The page at ``offset`` and its body, CRC-checked."""
    src.seek(offset)
    head = src.read(_PAGE.size)
    if len(head) < _PAGE.size:
        raise CorruptFile(f"ogg page at offset {offset} is truncated")
    capture, version, flags, granule, serial, seq, crc, count = _PAGE.unpack(head)
    if capture != b"OggS":
        raise CorruptFile(f"no ogg page at offset {offset} (capture pattern missing)")
    if version != 0:
        raise CorruptFile(f"ogg page at offset {offset} has version {version} (only 0 exists)")
    lacing = src.read(count)
    size = _PAGE.size + count + sum(lacing)
    if len(lacing) < count or offset + size > file_size:
        raise CorruptFile(f"ogg page at offset {offset} runs past the end of the file")
    body = src.read(size - _PAGE.size - count)
    if ogg_crc(head[:22] + b"\x00\x00\x00\x00" + head[26:] + lacing + body) != crc:
        raise CorruptFile(f"ogg page at offset {offset} fails its CRC check")
    return _Page(offset, flags, granule, serial, seq, lacing), body


def codec_of(packet: bytes) -> tuple[str, bytes, int]:
    """``(codec, comment header prefix, header packet count)`` of a stream's first packet.

    Raises
    ------
    UnsupportedFormat
        For any codec but Vorbis and Opus.
    """
    for magic, codec in _CODECS.items():
        if packet.startswith(magic):
            return codec
    name = next((n for magic, n in _OTHER_CODECS.items() if packet.startswith(magic)), "unknown")
    raise UnsupportedFormat(f"ogg file with a {name} stream (only Vorbis and Opus are supported)")


def check_single_stream(src: BinaryIO) -> None:
    """Refuse an Ogg file that holds more than one logical stream (chained or multiplexed).

    libsndfile decodes the first stream only: a chained file's later links, or a second multiplexed
    stream, were left out of the labeled file without a word. Page headers are read, not bodies; a
    damaged tail stops the walk (the decoder says what it can of it).

    Raises
    ------
    UnsupportedFormat
        A page of another stream than the first.
    """
    size = src.seek(0, os.SEEK_END)
    pos, serial = 0, None
    while pos + _PAGE.size <= size:
        src.seek(pos)
        head = src.read(_PAGE.size)
        if head[:4] != b"OggS":
            return
        page_serial, count = _PAGE.unpack(head)[4], head[-1]
        if serial is None:
            serial = page_serial
        elif page_serial != serial:
            raise UnsupportedFormat("ogg file with several logical streams (chained or multiplexed): only "
                                    "the first could be labeled, the others would be dropped")
        lacing = src.read(count)
        pos += _PAGE.size + count + sum(lacing)


def check_head(head: bytes) -> None:
    """Refuse a file whose first Ogg page (in ``head``) starts a known codec other than Vorbis or Opus.

    An unknown or unreadable first packet passes here (the signature alone makes a file Ogg); the
    carrier refuses it when it reads the stream.
    """
    if len(head) > _PAGE.size:
        start = _PAGE.size + head[_PAGE.size - 1]
        packet = head[start:start + 8]
        if any(packet.startswith(magic) for magic in _OTHER_CODECS):
            codec_of(packet)


@dataclass
class _Headers:
    serial: int
    codec: str
    prefix: bytes  # of the comment header
    pages: list[_Page]  # the pages that hold the header packets, the identification page first
    packets: list[bytes]
    end: int  # offset of the first page after the headers
    file_size: int


def _headers(src: BinaryIO) -> _Headers:
    """Walk the pages of the first logical stream until its header packets are complete (bounded)."""
    file_size = src.seek(0, os.SEEK_END)
    if file_size == 0:
        raise CorruptFile("empty file (0 bytes)")
    pages: list[_Page] = []
    packets: list[bytes] = []
    partial = bytearray()
    needed, codec, prefix, pos = 1, "", b"", 0
    while len(packets) < needed:
        if len(pages) >= limits.MAX_BOXES:
            raise UnsafeInput(f"ogg header packets span more than {limits.MAX_BOXES} pages")
        if pos >= file_size:
            raise CorruptFile("ogg file ends before its header packets are complete")
        page, body = _read_page(src, pos, file_size)
        _check_page(page, pages, bool(partial))
        at = 0
        for lace in page.lacing:  # <= 255 per page, header pages only
            partial += body[at:at + lace]
            at += lace
            if len(partial) > limits.MAX_OGG_PACKET:
                raise UnsafeInput(f"ogg header packet is over the {limits.MAX_OGG_PACKET}-byte limit")
            if lace < 255:
                if pages and len(packets) == needed:
                    raise CorruptFile("ogg audio data starts on the last header page (it must start a page)")
                packets.append(bytes(partial))
                partial.clear()
        if not pages:
            codec, prefix, needed = codec_of(packets[0] if packets else bytes(partial))
            if len(packets) != 1 or partial:
                raise CorruptFile("the ogg identification header is not alone on the first page")
        if len(packets) == needed and partial:
            raise CorruptFile("ogg audio data starts on the last header page (it must start a page)")
        pages.append(page)
        pos += page.size
    return _Headers(pages[0].serial, codec, prefix, pages, packets, pos, file_size)


def _check_page(page: _Page, before: list[_Page], continuing: bool) -> None:
    if not before:
        if not page.flags & _BOS:
            raise CorruptFile("the first ogg page does not begin a logical stream")
        return
    if page.serial != before[0].serial or page.flags & _BOS:
        raise UnsupportedFormat("multiplexed ogg file (several logical streams at once); only single-stream "
                                "Vorbis or Opus files are supported")
    if bool(page.flags & _CONTINUED) != continuing:
        raise CorruptFile(f"ogg page at offset {page.offset} breaks a header packet's continuation")
    if page.flags & _EOS:
        raise CorruptFile("ogg stream ends before its header packets are complete")


def _split(packet: bytes, prefix: bytes) -> tuple[bytes, list[bytes], bytes]:
    """``(vendor, [raw 'NAME=value' fields], bytes after the list)`` of a comment header packet."""
    if not packet.startswith(prefix):
        raise CorruptFile("the second ogg packet is not a comment header")
    vendor, fields, end = vorbis_comment.split(packet, len(prefix), "ogg comment header")
    return vendor, fields, packet[end:]


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label of an Ogg Vorbis/Opus file (its first stream's comment header), standard first."""
    headers = _headers(src)
    codec = "Vorbis" if headers.codec == "vorbis" else "Opus"
    found, others = vorbis_comment.labels(
        _split(headers.packets[1], headers.prefix)[1],
        lambda index, key: f"{codec} comment header field {index} ({key})", "ogg")
    return found + others


def _new_comment(headers: _Headers, value: str) -> bytes:
    vendor, fields, tail = _split(headers.packets[1], headers.prefix)
    body = vorbis_comment.build(vendor, vorbis_comment.with_label(fields, value))
    if headers.codec == "vorbis":
        tail = tail or b"\x01"  # the framing bit a decoder checks (Vorbis I 5.2.1)
    elif tail and not tail[0] & 1:
        # Opus padding (RFC 7845 5.2): give up what the list grew, keep the rest for later edits.
        grown = len(body) - (len(headers.packets[1]) - len(headers.prefix) - len(tail))
        tail = tail[:max(0, len(tail) - grown)]
    packet = headers.prefix + body + tail
    if len(packet) > limits.MAX_OGG_PACKET:
        raise UnsafeInput(f"ogg comment header would exceed {limits.MAX_OGG_PACKET} bytes")
    return packet


def _paginate(packets: list[bytes], headers: _Headers) -> list[bytes]:
    """The header packets after the identification header, laid out on pages ending with the last one."""
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes((len(packet) % 255,))
    data = b"".join(packets)
    pages, at, seq = [], 0, headers.pages[0].seq + 1
    for start in range(0, len(lacing), _MAX_SEGMENTS):
        part = bytes(lacing[start:start + _MAX_SEGMENTS])
        continued = _CONTINUED if start and lacing[start - 1] == 255 else 0
        ends = any(v < 255 for v in part)
        granule = 0 if ends or headers.codec == "opus" else _NO_GRANULE
        size = sum(part)
        pages.append(_page_bytes(continued, granule, headers.serial, seq, part, data[at:at + size]))
        at += size
        seq += 1
    return pages


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy an Ogg Vorbis/Opus file from ``src`` to ``dst`` with ``AIGC=value`` in its comment header."""
    headers = _headers(src)
    pages = _paginate([_new_comment(headers, value), *headers.packets[2:]], headers)
    src.seek(0)
    copy_stream(src, dst, headers.pages[0].size)
    for page in pages:
        dst.write(page)
    shift = len(pages) - (len(headers.pages) - 1)
    src.seek(headers.end)
    if shift:
        _renumber(src, dst, headers, shift)
    copy_stream(src, dst, headers.file_size - src.tell())


def _renumber(src: BinaryIO, dst: BinaryIO, headers: _Headers, shift: int) -> None:
    """Copy the first stream's pages after its headers with sequence numbers moved by ``shift``.

    Stops after the stream's end-of-stream page (or at the end of the file), leaving ``src`` there.
    """
    pos = headers.end
    while pos < headers.file_size:
        page, body = _read_page(src, pos, headers.file_size)
        if page.serial != headers.serial:
            raise UnsupportedFormat("multiplexed ogg file (another logical stream inside the first one)")
        dst.write(_page_bytes(page.flags, page.granule, page.serial, page.seq + shift, page.lacing, body))
        pos += page.size
        if page.flags & _EOS:
            break
    src.seek(pos)
