"""FLV carrier: key ``AIGC`` of the ``onMetaData`` script tag, the JSON as its string (``flv-onmetadata``).

The digest (``/work/shared/spec/labeling-spec.md`` section 4) names ``onMetaData`` key ``AIGC`` for FLV,
which is what ``ffmpeg -metadata AIGC=<JSON> -c copy out.flv`` writes and what ffprobe shows as a format
tag. Layout: Adobe's FLV file format (Video File Format Specification v10.1, Annex E: the 9-byte
header, tags of an 11-byte header plus data, each followed by its 4-byte PreviousTagSize; script tags
(type 18) hold AMF0 values: the name ``onMetaData`` and an ECMA array or object of properties). AMF0
type markers from Adobe's AMF0 specification (2007).

Reading looks at the script tags among the first :data:`_FIRST_TAGS` tags (muxers write ``onMetaData``
first), parses the AMF0 properties with a nesting limit (16) and a size limit (the tag's, at most 16
MiB), and reports ``AIGC`` (standard) and other keys containing ``aigc`` (non-standard), and a label in
another string key (``comment``...: ``flv-onmetadata-comment``, :func:`labeler.metadata.misplaced_label`).

Writing rebuilds only the ``onMetaData`` tag: every ``AIGC`` property is dropped and one string property
``AIGC`` is appended (a long string past 65,535 bytes); every other property keeps its bytes. A file
without ``onMetaData`` gets one as its first tag. The tags after it move by the size change, so the
absolute offsets ``onMetaData`` itself holds are moved with them: ``keyframes.filepositions`` (what
ffmpeg's ``add_keyframe_index``, yamdi and flvtool2 write for seeking) and ``filesize``. Nothing else in
FLV points into the file, so the media tags are copied byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from labeler.errors import CorruptFile, UnsafeInput
from labeler.metadata import FoundLabel, copy_stream, misplaced_label

CARRIER = "flv-onmetadata"
KEY = "AIGC"
_SCRIPT = 18
_FIRST_TAGS = 16
_MAX_DEPTH = 16
_NUMBER, _BOOL, _STRING, _OBJECT, _NULL, _UNDEFINED, _REF, _ECMA, _END, _STRICT, _DATE, _LONG = (
    0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12)


@dataclass(frozen=True)
class _Tag:
    offset: int  # of the 11-byte tag header
    kind: int
    size: int  # data bytes

    @property
    def end(self) -> int:
        """Just past the tag's PreviousTagSize."""
        return self.offset + 11 + self.size + 4


@dataclass(frozen=True)
class _Prop:
    key: str
    start: int  # of the key's length field
    value: int  # of the value's type marker
    end: int


def _file_start(src: BinaryIO) -> tuple[int, int]:
    """(offset of the first tag, file size); raises for a file that is not FLV."""
    size = src.seek(0, 2)
    src.seek(0)
    head = src.read(13)
    if len(head) < 13 or head[:3] != b"FLV":
        raise CorruptFile("not an FLV file (no FLV header)")
    first = struct.unpack(">I", head[5:9])[0] + 4
    if first < 13 or first > size:
        raise CorruptFile("flv header size is invalid")
    return first, size


def _tags(src: BinaryIO, first: int, size: int) -> list[_Tag]:
    """The first :data:`_FIRST_TAGS` tags (fewer when the file ends or is cut short)."""
    tags, pos = [], first
    while len(tags) < _FIRST_TAGS and size - pos >= 15:
        src.seek(pos)
        head = src.read(11)
        tag = _Tag(pos, head[0] & 0x1F, int.from_bytes(head[1:4], "big"))
        if tag.end > size:
            break
        tags.append(tag)
        pos = tag.end
    return tags


def _script(src: BinaryIO, tags: list[_Tag]) -> tuple[_Tag, bytes] | None:
    """The ``onMetaData`` script tag and its data, if one is among ``tags``."""
    for tag in tags:
        if tag.kind != _SCRIPT:
            continue
        src.seek(tag.offset + 11)
        data = src.read(tag.size)
        if data[:1] == bytes([_STRING]) and _string(data, 1)[0] == "onMetaData":
            return tag, data
    return None


def _string(data: bytes, pos: int, wide: bool = False) -> tuple[str, int]:
    """An AMF0 UTF-8 string body at ``pos`` (16-bit length, 32-bit when ``wide``); (text, end)."""
    n = 4 if wide else 2
    if pos + n > len(data):
        raise CorruptFile("flv AMF0 string is truncated")
    length = int.from_bytes(data[pos:pos + n], "big")
    end = pos + n + length
    if end > len(data):
        raise CorruptFile("flv AMF0 string runs past its tag")
    return data[pos + n:end].decode("utf-8", "replace"), end


def _skip(data: bytes, pos: int, depth: int) -> int:
    """End of the AMF0 value whose type marker is at ``pos``."""
    if depth > _MAX_DEPTH:
        raise UnsafeInput(f"flv AMF0 values nested deeper than {_MAX_DEPTH}")
    if pos >= len(data):
        raise CorruptFile("flv AMF0 value is truncated")
    kind, pos = data[pos], pos + 1
    fixed = {_NUMBER: 8, _BOOL: 1, _NULL: 0, _UNDEFINED: 0, _REF: 2, _DATE: 10}
    if kind in fixed:
        end = pos + fixed[kind]
    elif kind in (_STRING, _LONG, 0x0F):  # 0x0F: XML document, a long string
        end = _string(data, pos, kind != _STRING)[1]
    elif kind in (_OBJECT, _ECMA):
        end = _props(data, pos + (4 if kind == _ECMA else 0), depth)[1]
    elif kind == _STRICT:
        if pos + 4 > len(data):
            raise CorruptFile("flv AMF0 array is truncated")
        end = pos + 4
        for _ in range(int.from_bytes(data[pos:pos + 4], "big")):
            end = _skip(data, end, depth + 1)
    else:
        raise CorruptFile(f"flv AMF0 value of type {kind} is not supported here")
    if end > len(data):
        raise CorruptFile("flv AMF0 value runs past its tag")
    return end


def _props(data: bytes, pos: int, depth: int) -> tuple[list[_Prop], int]:
    """The properties of an object / ECMA array body at ``pos`` and the end of its end marker. A body
    that stops at the tag's end without its marker (some muxers) ends there."""
    props = []
    while pos < len(data):
        if data[pos:pos + 3] == b"\x00\x00\x09":
            return props, pos + 3
        key, value = _string(data, pos)
        end = _skip(data, value, depth + 1)
        props.append(_Prop(key, pos, value, end))
        pos = end
    return props, pos


def _metadata(data: bytes) -> tuple[int, int, list[_Prop], int]:
    """(offset of the object's type marker, start of its properties, properties, end) of an
    ``onMetaData`` tag's data."""
    marker = _string(data, 1)[1]
    if marker >= len(data) or data[marker] not in (_ECMA, _OBJECT):
        raise CorruptFile("flv onMetaData holds no object")
    body = marker + (5 if data[marker] == _ECMA else 1)
    props, end = _props(data, body, 0)
    return marker, body, props, end


def _text(data: bytes, prop: _Prop) -> str | None:
    if data[prop.value] in (_STRING, _LONG):
        return _string(data, prop.value + 1, data[prop.value] == _LONG)[0]
    return None


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label value in the ``onMetaData`` tag of an FLV file, standard first."""
    first, size = _file_start(src)
    found = _script(src, _tags(src, first, size))
    if found is None:
        return []
    tag, data = found
    props = _metadata(data)[2]
    where = f"onMetaData tag at offset {tag.offset}"
    texts = [(p.key, t) for p in props if (t := _text(data, p)) is not None]
    standard = [FoundLabel(CARRIER, t, where) for key, t in texts if key == KEY]
    other = [FoundLabel(CARRIER, t, f"{where}, key {key!r}", False)
             for key, t in texts if key != KEY and "aigc" in key.lower()]
    # comment, description...: a label there is a non-standard declaration
    misplaced = [misplaced_label(CARRIER, key, t, f"{where}, key {key!r}")
                 for key, t in texts if "aigc" not in key.lower()]
    return standard + other + [m for m in misplaced if m is not None]


def _amf_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) <= 0xFFFF:
        return bytes([_STRING]) + struct.pack(">H", len(raw)) + raw
    return bytes([_LONG]) + struct.pack(">I", len(raw)) + raw


def _moved(data: bytearray, props: list[_Prop], delta: int, after: int) -> None:
    """Add ``delta`` to the file offsets ``onMetaData`` holds: ``filesize`` and ``keyframes.filepositions``
    (each at or past ``after``, the old end of the edited tag)."""
    snap = bytes(data)  # moving numbers changes no value's size: walk the snapshot, patch ``data``
    for p in props:
        if p.key == "filesize" and data[p.value] == _NUMBER:
            struct.pack_into(">d", data, p.value + 1, struct.unpack_from(">d", data, p.value + 1)[0] + delta)
        if p.key != "keyframes" or data[p.value] not in (_OBJECT, _ECMA):
            continue
        inner = _props(snap, p.value + 1 + (4 if data[p.value] == _ECMA else 0), 1)[0]
        for q in inner:
            if q.key != "filepositions" or data[q.value] != _STRICT:
                continue
            at = q.value + 5
            for _ in range(int.from_bytes(data[q.value + 1:q.value + 5], "big")):
                if data[at] == _NUMBER:
                    old = struct.unpack_from(">d", data, at + 1)[0]
                    if old >= after:
                        struct.pack_into(">d", data, at + 1, old + delta)
                at = _skip(snap, at, 2)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy an FLV file to ``dst`` with ``value`` as the ``onMetaData`` key ``AIGC`` (see module doc)."""
    first, size = _file_start(src)
    found = _script(src, _tags(src, first, size))
    if found is None:  # a new onMetaData tag, first, at time 0
        data = _amf_string("onMetaData") + bytes([_ECMA]) + struct.pack(">I", 1)
        data += struct.pack(">H", len(KEY)) + KEY.encode() + _amf_string(value) + b"\x00\x00\x09"
        src.seek(0)
        dst.write(src.read(first))
        dst.write(bytes([_SCRIPT]) + len(data).to_bytes(3, "big") + bytes(7) + data)
        dst.write(struct.pack(">I", 11 + len(data)))
        copy_stream(src, dst, size - first)
        return
    tag, old = found
    marker, body, props, end = _metadata(old)
    kept = [old[p.start:p.end] for p in props if p.key != KEY]
    entry = struct.pack(">H", len(KEY)) + KEY.encode() + _amf_string(value)
    data = bytearray(old[:body] + b"".join(kept) + entry + b"\x00\x00\x09" + old[end:])
    if old[marker] == _ECMA:  # the array's count: a hint only, kept right
        struct.pack_into(">I", data, marker + 1, len(kept) + 1)
    if len(data) > 0xFFFFFF:
        raise UnsafeInput("flv onMetaData would exceed the 16 MiB tag size")
    delta = len(data) - len(old)
    _moved(data, _metadata(bytes(data))[2], delta, tag.end)
    src.seek(tag.offset)
    head = bytearray(src.read(11))
    head[1:4] = len(data).to_bytes(3, "big")
    src.seek(0)
    dst.write(src.read(tag.offset))
    dst.write(bytes(head) + bytes(data) + struct.pack(">I", 11 + len(data)))
    src.seek(tag.end)
    copy_stream(src, dst, size - tag.end)
