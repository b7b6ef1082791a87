"""FLAC carrier: a Vorbis comment ``AIGC=<JSON>`` in the ``VORBIS_COMMENT`` block (``vorbis-comment``).

The audio practice guide TC260-PG-202510A (as quoted in the digest) puts the
label of FLAC, Ogg and Opus files in a Vorbis comment named ``AIGC``. FLAC
layout: RFC 9639 (FLAC) 8 (metadata blocks) and 8.6 (Vorbis comment, whose
format is the Vorbis I specification 5.2.1: LE32 lengths, UTF-8
``NAME=value`` fields, names compared case-insensitively).

The metadata blocks are walked by seeking (at most
:data:`labeler.limits.MAX_BOXES`); only ``VORBIS_COMMENT`` blocks are loaded
(a block holds at most 16 MiB). An ID3v2 tag in front of ``fLaC`` (written by
some taggers, tolerated by most decoders) is skipped and read too: a
``TXXX:AIGC`` frame there is reported as ``id3-txxx``.

Write policy
------------
* Every ``AIGC`` comment (any case) is removed; ``AIGC=<value>`` takes the
  place of the first one, or is appended after the other comments. The vendor
  string and all other comments are kept byte for byte. A file without a
  ``VORBIS_COMMENT`` block gets one after ``STREAMINFO``, with an empty vendor
  string (the vendor names the encoder, which we are not).
* All other blocks (STREAMINFO, SEEKTABLE, PICTURE, APPLICATION, CUESHEET...)
  keep their bytes and order; only the last-block flag is recomputed.
* A ``PADDING`` block absorbs the size change when it can (the last one is
  shrunk or grown), so the audio frames stay at the same offset, as ``metaflac``
  does; without padding the audio moves. The audio frames are copied unchanged
  with a streaming copy.
* A ``TXXX:AIGC`` frame in a leading ID3v2 tag is removed (the tag is dropped
  when nothing else is left in it), so exactly one label remains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, UnsafeInput
from labeler.metadata import FoundLabel, copy_stream, vorbis_comment
from labeler.metadata import id3 as _id3

# RFC 9639 8.1 block types.
_STREAMINFO, _PADDING, _VORBIS_COMMENT = 0, 1, 4
_INVALID = 127
_MAX_BLOCK = (1 << 24) - 1
_NEW_COMMENT, _NEW_PADDING = -1, -2
_NEW_KINDS = {_NEW_COMMENT: _VORBIS_COMMENT, _NEW_PADDING: _PADDING}


@dataclass
class _Block:
    kind: int
    offset: int  # of the 4-byte block header
    length: int  # payload bytes

    @property
    def start(self) -> int:
        return self.offset + 4


@dataclass
class _Layout:
    id3: bytes | None  # a leading ID3v2 tag, whole
    blocks: list[_Block]
    audio: int  # offset of the first audio frame
    file_size: int


def _layout(src: BinaryIO) -> _Layout:
    file_size = src.seek(0, os.SEEK_END)
    if file_size == 0:
        raise CorruptFile("empty file (0 bytes)")
    src.seek(0)
    tag = None
    pos = 0
    length = _id3.tag_length(src.read(10))
    if length is not None:
        if length > file_size:
            raise CorruptFile("id3v2 tag in front of the flac stream runs past the end of the file")
        src.seek(0)
        tag = src.read(length)
        pos = length
    src.seek(pos)
    if src.read(4) != b"fLaC":
        raise CorruptFile("not a flac stream (no fLaC marker)")
    pos += 4
    blocks: list[_Block] = []
    while True:
        if len(blocks) >= limits.MAX_BOXES:
            raise UnsafeInput(f"flac file has more than {limits.MAX_BOXES} metadata blocks")
        src.seek(pos)
        head = src.read(4)
        if len(head) < 4:
            raise CorruptFile("flac metadata is truncated (no last-block flag)")
        kind, length = head[0] & 0x7F, int.from_bytes(head[1:4], "big")
        if kind == _INVALID:
            raise CorruptFile(f"invalid flac metadata block type 127 at offset {pos}")
        if pos + 4 + length > file_size:
            raise CorruptFile(f"flac metadata block at offset {pos} runs past the end of the file")
        blocks.append(_Block(kind, pos, length))
        pos += 4 + length
        if head[0] & 0x80:
            break
    if blocks[0].kind != _STREAMINFO:
        raise CorruptFile("flac stream does not start with a STREAMINFO block")
    return _Layout(tag, blocks, pos, file_size)


def _comments(src: BinaryIO, block: _Block) -> tuple[bytes, list[bytes]]:
    """``(vendor, [raw 'NAME=value' fields])`` of a VORBIS_COMMENT block (Vorbis I 5.2.1)."""
    src.seek(block.start)
    vendor, fields, _ = vorbis_comment.split(src.read(block.length), 0, "flac vorbis comment")
    return vendor, fields


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label of a FLAC file: ``vorbis-comment`` first, then a leading ID3v2 tag's frames."""
    layout = _layout(src)
    found: list[FoundLabel] = []
    others: list[FoundLabel] = []
    for block in layout.blocks:
        if block.kind != _VORBIS_COMMENT:
            continue
        standard, other = vorbis_comment.labels(
            _comments(src, block)[1],
            lambda index, key, at=block.offset: (
                f"VORBIS_COMMENT field {index} ({key}) in the block at offset {at}"),
            "flac")
        found += standard
        others += other
    if layout.id3 is not None:
        others.extend(_id3.tag_labels(layout.id3, "in front of the flac stream"))
    return found + sorted(others, key=lambda f: not f.standard)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a FLAC file from ``src`` to ``dst`` with ``AIGC=value`` in its Vorbis comment (module notes)."""
    layout = _layout(src)
    label = b"AIGC=" + value.encode("utf-8")
    # New payloads by block index (or _NEW_COMMENT / _NEW_PADDING); other blocks are copied as they are.
    payloads: dict[int, bytes] = {}
    placed = False
    for index, block in enumerate(layout.blocks):
        if block.kind != _VORBIS_COMMENT:
            continue
        vendor, fields = _comments(src, block)
        if not placed:
            kept = vorbis_comment.with_label(fields, value)  # the label takes the first one's place
            placed = True
        else:
            kept = [field for field in fields if vorbis_comment.name(field) != "aigc"]
            if len(kept) == len(fields):
                continue
        payloads[index] = vorbis_comment.build(vendor, kept)
    order = list(range(len(layout.blocks)))
    if not placed:
        # No VORBIS_COMMENT block: one goes right after STREAMINFO, which must come first (RFC 9639 8).
        order.insert(1, _NEW_COMMENT)
        payloads[_NEW_COMMENT] = vorbis_comment.build(b"", [label])
    delta = sum(4 + len(new) for new in payloads.values()) - sum(
        4 + layout.blocks[key].length for key in payloads if key >= 0
    )
    pads = [i for i, b in enumerate(layout.blocks) if b.kind == _PADDING and i not in payloads]
    if delta and pads:
        new_length = layout.blocks[pads[-1]].length - delta
        if 0 <= new_length <= _MAX_BLOCK:
            payloads[pads[-1]] = bytes(new_length)
    elif delta < -4:
        # No padding block: the room freed by a shorter comment becomes one, so the audio stays put.
        order.append(_NEW_PADDING)
        payloads[_NEW_PADDING] = bytes(-delta - 4)
    if any(len(new) > _MAX_BLOCK for new in payloads.values()):
        raise UnsafeInput("flac metadata block would exceed 16 MiB")

    tag = layout.id3
    if tag is not None:
        stripped = _id3.rewrite_tag(tag, None)
        tag = tag if stripped is None else stripped
        dst.write(tag)
    dst.write(b"fLaC")
    for position, key in enumerate(order):
        last = 0x80 if position == len(order) - 1 else 0
        new = payloads.get(key)
        if new is None:
            block = layout.blocks[key]
            dst.write(bytes((block.kind | last,)) + block.length.to_bytes(3, "big"))
            src.seek(block.start)
            copy_stream(src, dst, block.length)
        else:
            kind = layout.blocks[key].kind if key >= 0 else _NEW_KINDS[key]
            dst.write(bytes((kind | last,)) + len(new).to_bytes(3, "big") + new)
    src.seek(layout.audio)
    copy_stream(src, dst, layout.file_size - layout.audio)
