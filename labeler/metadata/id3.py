"""MP3 carrier: an ID3v2 ``TXXX`` frame whose description is ``AIGC`` (carrier ``id3-txxx``).

The audio practice guide TC260-PG-202510A puts the label of an MP3 file in a
user-defined text frame (ID3v2.4.0 frames 4.2.6 / ID3v2.3.0 4.2.2 ``TXXX``):
description ``AIGC``, value the JSON text.

The tag is parsed here rather than with mutagen: mutagen inflates every
compressed frame with an unbounded ``zlib.decompress`` and rewrites (and
reorders) every frame on save. This parser decodes only ``TXXX`` frames, with a
bounded inflate, and copies the bytes of every other frame unchanged, so the
rest of the tag (TIT2, APIC, COMM, PRIV...) survives byte for byte.

Write policy
------------
* The existing tag version is kept (v2.2 stays v2.2 with a ``TXX`` frame, v2.3
  stays v2.3, v2.4 stays v2.4). A file without an ID3v2 tag gets a v2.3 tag:
  v2.3 is read by more players and operating systems than v2.4, and a text
  frame is laid out identically in both.
* Text encoding follows what ``ffmpeg -metadata AIGC=...`` writes: UTF-8 in
  v2.4; ISO-8859-1 in v2.2/v2.3 when the value is ASCII, else UTF-16 with BOM
  (v2.3 has no UTF-8).
* An existing ``TXXX`` frame with description ``AIGC`` (any case) is replaced in
  place; further such frames, also in ID3v2 tags stacked after the first, are
  removed, so exactly one label remains.
* The tag keeps its old size when the new frames fit in it (padding absorbs the
  change); otherwise it grows by what is needed plus :data:`GROW_PADDING` bytes of
  padding (as mutagen and id3lib leave; exiftool warns about a v2.4 tag with none).
  An extended header (its CRC would no longer match) and a v2.4 footer (only
  needed for appended tags) are dropped; v2.2/v2.3 tag-level unsynchronisation
  is undone.
* Everything after the ID3v2 tag(s) -- MPEG audio frames, APEv2, ID3v1 -- is
  copied unchanged with a streaming copy.

:func:`with_source_tags` serves the audio layers, which re-encode an MP3 with ffmpeg: it puts the
source's tags back in front of the new audio, byte for byte (``CHAP`` times moved by an inserted cue).

A label put in a free-text frame (``COMM``, ``USLT``, a text frame such as ``TIT3``, ``TXXX`` with
another description) is reported as a non-standard declaration (carrier ``id3-<frame id>``, see
:func:`labeler.metadata.misplaced_label`).

Not read: an APEv2 item or an ID3v1 comment named AIGC (ID3v1 comments hold 28
bytes, too small for a label; no tool is known to put the label in APEv2), and
ID3v2 tags appended at the end of the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, PartialFile, UnsafeInput
from labeler.metadata import FoundLabel, copy_stream, misplaced_label

#: Largest ID3v2 tag parsed (bytes, header included). Cover art makes tags of a
#: few MiB; 64 MiB bounds memory on hostile headers (the size field allows 256 MiB).
MAX_ID3_TAG = 64 << 20
#: Most ID3v2 tags read back to back at the start of a file (some taggers stack them).
_MAX_STACKED_TAGS = 16

_HEADER = 10
# ID3v2.3.0 3.1 / ID3v2.4.0 3.1 header flags.
_F_UNSYNC = 0x80
_F_EXTENDED = 0x40
_F_FOOTER = 0x10
# ID3v2.3.0 3.3.1 frame format flags (second flag byte).
_F23_COMPRESS, _F23_ENCRYPT, _F23_GROUP = 0x80, 0x40, 0x20
# ID3v2.4.0 4.1.2 frame format flags (second flag byte).
_F24_GROUP, _F24_COMPRESS, _F24_ENCRYPT, _F24_UNSYNC, _F24_DLI = 0x40, 0x08, 0x04, 0x02, 0x01
# Text encodings, ID3v2.4.0 4.2 (0 and 1 also in v2.2/v2.3).
_CODECS = {0: "latin-1", 1: "utf-16", 2: "utf-16-be", 3: "utf-8"}
_ID_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Comment and lyrics frames (v2.3/v2.4 and v2.2 ids): free text where a label is sometimes put.
_COMMENT_FRAMES = (b"COMM", b"COM", b"USLT", b"ULT")


@dataclass
class _Frame:
    fid: bytes
    flags: bytes  # two bytes (v2.3/v2.4), empty for v2.2
    payload: bytes  # frame body as stored (after tag-level unsynchronisation was undone for v2.2/v2.3)
    desc: str | None = None  # TXXX description, when the frame could be decoded
    value: str | None = None  # TXXX value


@dataclass
class _Tag:
    major: int
    revision: int
    flags: int
    frames: list[_Frame]
    room: int  # bytes the original tag offered for frames and padding


def _syncsafe(raw: bytes) -> int:
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
    return value


def _to_syncsafe(value: int) -> bytes:
    if value >= 1 << 28:
        raise UnsafeInput("id3v2 tag or frame would exceed 256 MiB")
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def tag_length(header: bytes) -> int | None:
    """Total length of the ID3v2 tag that starts with ``header``, or None when it is no ID3v2 header.

    Parameters
    ----------
    header : bytes
        The first bytes at the tag position (10 are needed).

    Returns
    -------
    int or None
        Bytes from the tag start to its end: header, extended header, frames,
        padding and (ID3v2.4.0 3.4) footer.
    """
    if header[:3] != b"ID3":
        return None
    if len(header) < _HEADER:
        raise CorruptFile("id3v2 tag header is truncated")
    major, flags, size_raw = header[3], header[5], header[6:10]
    if major not in (2, 3, 4) or header[4] == 0xFF:
        raise CorruptFile(f"unsupported id3v2 version 2.{major}")
    if any(b & 0x80 for b in size_raw):
        raise CorruptFile("id3v2 tag size is not synchsafe")
    total = _HEADER + _syncsafe(size_raw) + (_HEADER if major == 4 and flags & _F_FOOTER else 0)
    if total > MAX_ID3_TAG:
        raise UnsafeInput(f"id3v2 tag is {total} bytes, over the {MAX_ID3_TAG}-byte limit")
    return total


def _unsync_decode(data: bytes) -> bytes:
    # ID3v2.4.0 6.1: unsynchronisation inserts 0x00 after every 0xFF.
    return data.replace(b"\xff\x00", b"\xff")


def _valid_id(fid: bytes) -> bool:
    return bool(fid) and all(b in _ID_CHARS for b in fid)


def _walk(body: bytes, major: int, syncsafe: bool) -> tuple[list[_Frame], int]:
    # Frames until padding, junk or a frame that would overrun the tag; like most readers,
    # whatever follows is treated as padding.
    id_len, head_len = (3, 6) if major == 2 else (4, 10)
    frames: list[_Frame] = []
    pos = 0
    while pos + head_len <= len(body):
        fid = body[pos : pos + id_len]
        if not _valid_id(fid):
            break
        if major == 2:
            size, flags = int.from_bytes(body[pos + 3 : pos + 6], "big"), b""
        else:
            raw = body[pos + 4 : pos + 8]
            if syncsafe and any(b & 0x80 for b in raw):
                break
            size = _syncsafe(raw) if syncsafe else struct.unpack(">I", raw)[0]
            flags = body[pos + 8 : pos + 10]
        end = pos + head_len + size
        if end > len(body):
            break
        frames.append(_Frame(fid, flags, body[pos + head_len : end]))
        if len(frames) > limits.MAX_BOXES:
            raise UnsafeInput(f"id3v2 tag has more than {limits.MAX_BOXES} frames")
        pos = end
    return frames, pos


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limits.MAX_INFLATED + 1)
    except zlib.error:
        return None
    if len(out) > limits.MAX_INFLATED:
        raise UnsafeInput(f"compressed id3 frame inflates past {limits.MAX_INFLATED} bytes")
    return out if inflater.eof else None


def _frame_data(frame: _Frame, major: int, tag_unsync: bool) -> bytes | None:
    """The decoded body of a v2.3/v2.4 frame, or None when it is encrypted or broken."""
    data = frame.payload
    if major == 2:
        return data
    fmt = frame.flags[1]
    if major == 3:
        # ID3v2.3.0 3.3.1: extra header bytes in flag order: decompressed size, encryption method, group.
        compressed = bool(fmt & _F23_COMPRESS)
        if compressed:
            data = data[4:]
        if fmt & _F23_ENCRYPT:
            return None
        if fmt & _F23_GROUP:
            data = data[1:]
    else:
        # ID3v2.4.0 4.1.2: group id, encryption method, data length indicator; unsync applies last.
        compressed = bool(fmt & _F24_COMPRESS)
        if fmt & _F24_GROUP:
            data = data[1:]
        if fmt & _F24_ENCRYPT:
            return None
        if fmt & _F24_DLI:
            data = data[4:]
        if fmt & _F24_UNSYNC or tag_unsync:
            data = _unsync_decode(data)
    return _inflate(data) if compressed else data


def _split_text(data: bytes, codec: str, wide: bool) -> list[str]:
    term = b"\x00\x00" if wide else b"\x00"
    parts: list[bytes] = []
    start = pos = 0
    step = 2 if wide else 1
    while pos + len(term) <= len(data):
        if data[pos : pos + len(term)] == term:
            parts.append(data[start:pos])
            start = pos = pos + len(term)
        else:
            pos += step
    parts.append(data[start:])
    return [p.decode(codec, "replace") for p in parts]


def _decode_txxx(data: bytes) -> tuple[str, str] | None:
    # ID3v2.4.0 4.2.6: encoding byte, description, terminator, value (several values in v2.4 are
    # separated by the terminator; they are kept, joined by NUL, so a judge sees the oddity).
    if not data or data[0] not in _CODECS:
        return None
    enc = data[0]
    parts = _split_text(data[1:], _CODECS[enc], enc in (1, 2))
    desc, values = parts[0], parts[1:]
    while values and values[-1] == "":
        values.pop()
    return desc, "\x00".join(values)


def _parse(data: bytes) -> _Tag:
    """Parse one whole ID3v2 tag (``tag_length(data)`` bytes)."""
    total = tag_length(data)
    if total is None or len(data) < total:
        raise CorruptFile("id3v2 tag is truncated")
    major, revision, flags = data[3], data[4], data[5]
    body = data[_HEADER : _HEADER + _syncsafe(data[6:10])]
    if major < 4 and flags & _F_UNSYNC:
        body = _unsync_decode(body)
    if major == 2 and flags & 0x40:
        # ID3v2.2 3.1: the compression scheme was never defined; such tags are unreadable.
        raise CorruptFile("id3v2.2 tag is compressed (undefined scheme)")
    start = 0
    if major >= 3 and flags & _F_EXTENDED and not _valid_id(body[:4]):
        # A tag whose frames start right after the header despite the flag is common; then the
        # flag is ignored (the frame-id test above), as mutagen does.
        if len(body) < 4:
            raise CorruptFile("id3v2 extended header is truncated")
        start = 4 + struct.unpack(">I", body[:4])[0] if major == 3 else _syncsafe(body[:4])
        if start > len(body) or start < 4:
            raise CorruptFile("id3v2 extended header size is invalid")
    frames_area = body[start:]
    frames, used = _walk(frames_area, major, syncsafe=major == 4)
    if major == 4:
        # iTunes once wrote v2.4 frames with plain 32-bit sizes; take the reading that parses further.
        plain, plain_used = _walk(frames_area, major, syncsafe=False)
        if plain_used > used:
            frames = plain
    tag_unsync = major == 4 and bool(flags & _F_UNSYNC)
    for frame in frames:
        if frame.fid in (b"TXXX", b"TXX"):
            decoded = _frame_data(frame, major, tag_unsync)
            fields = _decode_txxx(decoded) if decoded is not None else None
            if fields is not None:
                frame.desc, frame.value = fields
    return _Tag(major, revision, flags, frames, len(frames_area))


def _is_label(frame: _Frame) -> bool:
    return frame.desc is not None and frame.desc.strip("\x00 ").lower() == "aigc"


def tag_labels(data: bytes, where: str) -> list[FoundLabel]:
    """Labels in one ID3v2 tag: ``TXXX:AIGC`` (any case) as ``id3-txxx``, other *aigc* TXXX as ``vendor-key``,
    a label in another free-text frame as ``id3-<frame id>`` (both non-standard).

    Parameters
    ----------
    data : bytes
        The whole tag, as measured by :func:`tag_length`.
    where : str
        Where the tag is, for the location text (e.g. ``"at offset 0"``).
    """
    tag = _parse(data)
    found: list[FoundLabel] = []
    for frame in tag.frames:
        if frame.desc is None or frame.value is None or "aigc" not in frame.desc.lower():
            misplaced = _misplaced(frame, tag, where)
            if misplaced is not None:
                found.append(misplaced)
            continue
        location = f"ID3v2.{tag.major} {frame.fid.decode()} frame '{frame.desc}' (tag {where})"
        if _is_label(frame):
            if len(frame.value) > limits.MAX_TEXT_VALUE:
                raise UnsafeInput(f"id3 AIGC value is over the {limits.MAX_TEXT_VALUE}-byte limit")
            found.append(FoundLabel("id3-txxx", frame.value, location))
        else:
            found.append(FoundLabel("vendor-key", frame.value[:limits.MAX_TEXT_VALUE], location, False))
    return found


def _misplaced(frame: _Frame, tag: _Tag, where: str) -> FoundLabel | None:
    """A label in a free-text frame (``COMM``, ``USLT``, a text frame such as ``TIT3``, ``TXXX`` with
    another description) as a non-standard declaration (:func:`labeler.metadata.misplaced_label`)."""
    fid = frame.fid
    text_frame = fid[:1] == b"T" and fid not in (b"TXXX", b"TXX")
    if not (text_frame or fid in _COMMENT_FRAMES or frame.value is not None):
        return None
    if len(frame.payload) > limits.MAX_TEXT_VALUE:
        return None  # no label is that long; such frames are skipped, never inflated
    if frame.value is not None:
        text = frame.value
    else:
        try:
            data = _frame_data(frame, tag.major, tag.major == 4 and bool(tag.flags & _F_UNSYNC))
        except UnsafeInput:
            return None  # a bomb in a frame that is not the label's carrier is skipped, not fatal
        if not data or data[0] not in _CODECS:
            return None
        if text_frame:
            text = data[1:].decode(_CODECS[data[0]], "replace")
        else:
            # ID3v2.4.0 4.10 / 4.8: encoding, 3-byte language, content descriptor, terminator, text.
            text = "\x00".join(_split_text(data[4:], _CODECS[data[0]], data[0] in (1, 2))[1:])
    name = fid.decode("latin-1")
    desc = f" '{frame.desc}'" if frame.desc is not None else ""
    return misplaced_label("id3", name, text, f"ID3v2.{tag.major} {name} frame{desc} (tag {where})")


def _render_frame(frame: _Frame, major: int) -> bytes:
    size = len(frame.payload)
    if major == 2:
        if size >= 1 << 24:
            raise UnsafeInput("id3v2.2 frame would exceed 16 MiB")
        return frame.fid + size.to_bytes(3, "big") + frame.payload
    size_raw = _to_syncsafe(size) if major == 4 else struct.pack(">I", size)
    return frame.fid + size_raw + frame.flags + frame.payload


def _label_frame(major: int, value: str) -> _Frame:
    if major == 4:
        payload = b"\x03AIGC\x00" + value.encode("utf-8")
    elif value.isascii():
        payload = b"\x00AIGC\x00" + value.encode("ascii")
    else:
        payload = b"\x01" + "AIGC".encode("utf-16") + b"\x00\x00" + value.encode("utf-16")
    return _Frame(b"TXX" if major == 2 else b"TXXX", b"" if major == 2 else b"\x00\x00", payload)


#: Padding (bytes) after the frames of a tag that had to grow.
GROW_PADDING = 1024


def rewrite_tag(data: bytes | None, value: str | None) -> bytes | None:
    """Return ``data`` (one whole ID3v2 tag, or None for no tag) with its AIGC label set to ``value``.

    Parameters
    ----------
    data : bytes or None
        The tag as stored; None when the file has none (a v2.3 tag is made).
    value : str or None
        The label JSON to store; None removes every ``TXXX:AIGC`` frame and adds nothing.

    Returns
    -------
    bytes or None
        The new tag; ``b""`` when removing left no frame at all; None when
        ``value`` is None and the tag held no label (nothing to change).
    """
    tag = _parse(data) if data else _Tag(3, 0, 0, [], 0)
    if value is None and not any(_is_label(f) for f in tag.frames):
        return None
    frames: list[_Frame] = []
    placed = False
    for frame in tag.frames:
        if _is_label(frame):
            if value is not None and not placed:
                frames.append(_label_frame(tag.major, value))
                placed = True
            continue
        frames.append(frame)
    if value is not None and not placed:
        frames.append(_label_frame(tag.major, value))
    if not frames:
        return b""
    return _render_tag(tag, frames)


def _render_tag(tag: _Tag, frames: list[_Frame]) -> bytes:
    """``tag`` written again with ``frames``, in its version, in its old size when they fit."""
    body = b"".join(_render_frame(f, tag.major) for f in frames)
    # a tag that must grow gets GROW_PADDING of padding (a later relabel then fits in place); exiftool
    # 12.57 warns "Invalid ID3 frame size" on a v2.4 tag whose last frame ends the tag exactly
    body += b"\x00" * (tag.room - len(body) if len(body) <= tag.room else GROW_PADDING)
    # Frames are now stored without tag-level unsynchronisation (v2.2/v2.3), extended header or footer.
    # A v2.4 tag-level unsync flag is kept: copied frames may rely on it, and the new frame has no 0xFF.
    flags = tag.flags & ~(_F_EXTENDED | _F_FOOTER)
    if tag.major < 4:
        flags &= ~_F_UNSYNC
    return b"ID3" + bytes((tag.major, tag.revision, flags)) + _to_syncsafe(len(body)) + body


def _front_tags(src: BinaryIO, size: int) -> list[tuple[int, bytes]]:
    """The ID3v2 tags at the start of the file, back to back: ``[(offset, tag bytes), ...]``."""
    tags: list[tuple[int, bytes]] = []
    pos = 0
    while len(tags) < _MAX_STACKED_TAGS:
        src.seek(pos)
        length = tag_length(src.read(_HEADER))
        if length is None:
            break
        if pos + length > size:
            raise CorruptFile(f"id3v2 tag at offset {pos} runs past the end of the file")
        src.seek(pos)
        tags.append((pos, src.read(length)))
        pos += length
    return tags


def _size(src: BinaryIO) -> int:
    size = src.seek(0, os.SEEK_END)
    if size == 0:
        raise CorruptFile("empty file (0 bytes)")
    return size


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label in the ID3v2 tag(s) at the start of an MP3 file, ``id3-txxx`` first."""
    found: list[FoundLabel] = []
    for offset, data in _front_tags(src, _size(src)):
        found.extend(tag_labels(data, f"at offset {offset}"))
    return sorted(found, key=lambda f: not f.standard)


def check_cut(found: list[FoundLabel], src: str | os.PathLike[str] | bytes) -> list[FoundLabel]:
    """``found`` (what :func:`read` gave for the MP3 ``src``, a path or the file's bytes), unless its audio
    is cut short (:func:`labeler.media.mp3_cut.mp3_cut`: a last frame that runs past the end, or fewer
    frames than its Xing / VBRI header gives).

    Verification's reader: the tags were read whole and the cut is in the audio after them, so the labels
    stand and the cut must still be said, as a WAV cut in its samples is (:func:`labeler.metadata.riff.read`).
    Not part of :func:`read`: a label call writes a cut MP3 as it is and reads its output back.

    Raises
    ------
    PartialFile
        The audio is cut; ``found`` is carried in it.
    """
    from labeler.media.mp3_cut import mp3_cut  # imports this module: here, not at the top

    cut = mp3_cut(src)
    if cut is None:
        return found
    detail, seconds = cut
    raise PartialFile(f"mp3 is truncated: {detail} ({seconds:.2f} s of sound)", found)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy an MP3 file from ``src`` to ``dst`` with ``value`` in a ``TXXX:AIGC`` frame (see module notes)."""
    size = _size(src)
    tags = _front_tags(src, size)
    first = rewrite_tag(tags[0][1] if tags else None, value)
    assert first is not None
    dst.write(first)
    for _, data in tags[1:]:
        stripped = rewrite_tag(data, None)
        dst.write(data if stripped is None else stripped)
    audio = tags[-1][0] + len(tags[-1][1]) if tags else 0
    src.seek(audio)
    copy_stream(src, dst, size - audio)


def with_source_tags(src: BinaryIO, fresh: BinaryIO, out: BinaryIO, moved_ms: int | None) -> None:
    """``fresh`` (an MP3 ffmpeg just wrote) with ``src``'s ID3v2 tag(s) instead of ffmpeg's, to ``out``.

    ffmpeg re-renders the tag it copies: v2.3 becomes v2.4, ``COMM`` a ``TXXX:comment``, ``USLT``,
    ``POPM``, ``PRIV``, ``GEOB`` and the like are dropped, and chapter times move by the encoder
    delay. The source's tags are copied byte for byte instead, in front of ffmpeg's audio frames (its
    Xing/LAME header with the new gapless values included); ``CHAP`` times move ``moved_ms``
    milliseconds later (the sound a label inserted before the programme; None: unknown, ``CHAP`` and
    ``CTOC`` left out). A trailing ID3v1 tag is copied too. A source without an ID3v2 tag keeps
    ffmpeg's (what it read from an ID3v1 or APE tag).
    """
    tags = _front_tags(src, src.seek(0, os.SEEK_END))
    size = fresh.seek(0, os.SEEK_END)
    own = _front_tags(fresh, size)
    if not tags:
        fresh.seek(0)
        copy_stream(fresh, out)
        return
    for _, data in tags:
        out.write(_moved_chapters(data, moved_ms))
    audio = own[-1][0] + len(own[-1][1]) if own else 0
    fresh.seek(audio)
    copy_stream(fresh, out, size - audio)
    end = src.seek(0, os.SEEK_END)
    if end >= 128 + sum(len(t) for _, t in tags):
        src.seek(end - 128)
        tail = src.read(128)
        fresh.seek(max(size - 128, 0))
        if tail[:3] == b"TAG" and fresh.read(3) != b"TAG":
            out.write(tail)


def _moved_chapters(data: bytes, moved_ms: int | None) -> bytes:
    """One ID3v2 tag with its ``CHAP`` frames' times moved ``moved_ms`` later (ID3v2 Chapter Frame
    Addendum 1.0: start and end in ms, then byte offsets, 0xFFFFFFFF = unused, which they become: the
    frames moved). None: ``CHAP`` / ``CTOC`` dropped, as is a ``CHAP`` stored compressed or encrypted,
    whose times cannot be edited."""
    if moved_ms == 0 or b"CHAP" not in data:
        return data
    tag = _parse(data)
    if tag.major < 3:
        return data
    frames = []
    for frame in tag.frames:
        if frame.fid in (b"CHAP", b"CTOC") and moved_ms is None:
            continue
        if frame.fid == b"CHAP":
            body = bytearray(frame.payload)
            at = body.find(b"\x00") + 1
            stored_plain = not frame.flags[1] and not (tag.major == 4 and tag.flags & _F_UNSYNC)
            if not stored_plain or not 0 < at <= len(body) - 16:
                continue
            for field_at in (at, at + 4):
                old = struct.unpack_from(">I", body, field_at)[0]
                struct.pack_into(">I", body, field_at, min(old + int(moved_ms or 0), 0xFFFFFFFF))
            body[at + 8:at + 16] = b"\xff" * 8
            frame = _Frame(frame.fid, frame.flags, bytes(body))
        frames.append(frame)
    return _render_tag(tag, frames)
