"""AVI carrier: an ``AIGC`` sub-chunk of the ``LIST``/``INFO`` chunk, the JSON its data (``riff-info``).

The digest (``/work/shared/spec/labeling-spec.md`` section 4) puts the label of an AVI file in "a custom
``AIGC`` sub-chunk in ``LIST/INFO``" that stock ffmpeg cannot write, written here as RIFF bytes. RIFF and
AVI layout: Microsoft's "Multimedia Programming Interface and Data Specifications 1.0" (1991) and the
AVI RIFF reference (``RIFF('AVI ' LIST('hdrl') [LIST('INFO')] [JUNK] LIST('movi') [idx1])``, OpenDML
files continuing in ``RIFF('AVIX')`` chunks).

An AVI's indexes hold file offsets (``idx1`` relative to ``movi`` or absolute; OpenDML's ``indx`` and
``ix##`` chunks absolute), so writing never moves the movie data:

* An ``INFO`` list before ``movi`` is rebuilt in place (every ``AIGC`` sub-chunk dropped, one new one
  added, every other entry kept byte for byte) when it fits its old bytes plus a ``JUNK`` chunk right
  after it, which shrinks by as much (ffmpeg writes ``INFO`` followed by ~1 KB of ``JUNK``).
* Otherwise a new ``INFO`` list is carved out of a ``JUNK`` chunk before ``movi`` that is large enough.
* Otherwise, in a plain AVI (no ``AVIX`` after the first ``RIFF``), the new ``INFO`` list is appended at
  the end of the ``RIFF('AVI ')`` form, after ``idx1`` (or the list a previous write appended there is
  replaced). An OpenDML file without room before its movie data is refused (one line) rather than
  rewritten with every index moved.
* One label: an ``AIGC`` entry in any other ``INFO`` list is blanked in place (its sub-chunk becomes a
  ``JUNK`` sub-chunk of the same size).

Reading walks the first form's top-level chunks by seeking (``movi`` is never loaded) and reads
``AIGC`` entries of every ``INFO`` list in it; a label in another entry (``ICMT``...) is a non-standard
declaration (``riff-info-icmt``, :func:`labeler.metadata.riff.info_misplaced`).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, copy_stream
from labeler.metadata.riff import (
    _Chunk,
    _chunk_bytes,
    _copy_chunk,
    _list_type,
    _subchunks,
    _text,
    info_misplaced,
)

CARRIER = "riff-info"
_KEY = b"AIGC"


def _form(src: BinaryIO) -> tuple[int, int, list[_Chunk]]:
    """(file size, end of the first RIFF form, its top-level chunks)."""
    size = src.seek(0, os.SEEK_END)
    src.seek(0)
    head = src.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        raise CorruptFile("not an AVI file (no RIFF 'AVI ' header)")
    end = min(size, 8 + struct.unpack("<I", head[4:8])[0])
    chunks, pos = [], 12
    while end - pos >= 8:
        if len(chunks) >= limits.MAX_BOXES:
            raise UnsafeInput(f"avi file has more than {limits.MAX_BOXES} chunks")
        src.seek(pos)
        cid, length = struct.unpack("<4sI", src.read(8))
        if pos + 8 + length > end:
            raise CorruptFile(f"avi chunk {cid!r} at offset {pos} runs past its RIFF form")
        chunks.append(_Chunk(cid, pos, length, length))
        pos += 8 + length + (length & 1)
    return size, end, chunks


def _is_list(src: BinaryIO, chunk: _Chunk, kind: bytes) -> bool:
    return chunk.cid == b"LIST" and _list_type(src, chunk) == kind


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every ``AIGC`` entry of the ``LIST``/``INFO`` chunks of an AVI file's first RIFF form."""
    _, _, chunks = _form(src)
    found, others, budget = [], [], [len(chunks)]
    for chunk in chunks:
        if not _is_list(src, chunk, b"INFO"):
            continue
        for sub in _subchunks(src, chunk, budget):
            if sub.cid.upper() == _KEY:
                where = f"LIST/INFO entry {sub.cid.decode('latin-1')!r} at offset {sub.offset}"
                found.append(FoundLabel(CARRIER, _text(src, sub, "avi INFO AIGC entry"), where))
            elif (misplaced := info_misplaced(src, sub)) is not None:
                others.append(misplaced)
    return found + others


def _info(src: BinaryIO, old: _Chunk | None, value: str) -> bytes:
    """A ``LIST``/``INFO`` chunk: ``old``'s entries but ``AIGC`` ones, then the label (NUL-terminated, as
    INFO strings are)."""
    body = b"INFO"
    if old is not None:
        for sub in _subchunks(src, old, [0]):
            if sub.cid.upper() != _KEY:
                src.seek(sub.offset)
                body += src.read(8 + sub.size + (sub.size & 1))
    return _chunk_bytes(b"LIST", body + _chunk_bytes(_KEY, value.encode("utf-8") + b"\x00"))


def _span(chunk: _Chunk) -> int:
    return 8 + chunk.size + (chunk.size & 1)


def _fill(new: bytes, room: int) -> bytes | None:
    """``new`` followed by a ``JUNK`` chunk that fills ``room`` bytes, or None when it cannot."""
    left = room - len(new)
    if left == 0:
        return new
    return new + _chunk_bytes(b"JUNK", bytes(left - 8)) if left >= 8 else None


def _plan(src: BinaryIO, chunks: list[_Chunk], value: str) -> tuple[dict[int, bytes], bytes]:
    """Replacement bytes per chunk index and what to append to the form. Only an appended list or the
    form's last chunk change size; every other replacement keeps its chunk's bytes count."""
    movi = next((i for i, c in enumerate(chunks) if _is_list(src, c, b"movi")), None)
    if movi is None:
        raise CorruptFile("avi file has no LIST 'movi' chunk")
    infos = [i for i, c in enumerate(chunks) if _is_list(src, c, b"INFO")]
    replaced: dict[int, bytes] = {}
    appended = b""
    before = next((i for i in infos if i < movi), None)
    junk = before is not None and before + 1 < movi and chunks[before + 1].cid == b"JUNK"
    if before is not None:
        fitted = _fill(_info(src, chunks[before], value), _span(chunks[before]) + (
            _span(chunks[before + 1]) if junk else 0))
        if fitted is not None:
            replaced = {before: fitted, before + 1: b""} if junk else {before: fitted}
    if not replaced:
        for i in range(movi):
            fitted = _fill(_info(src, None, value), _span(chunks[i])) if chunks[i].cid == b"JUNK" else None
            if fitted is not None:
                replaced = {i: fitted}
                break
    if not replaced and infos and infos[-1] == len(chunks) - 1 and infos[-1] > movi:
        replaced = {infos[-1]: _info(src, chunks[infos[-1]], value)}  # the list an earlier write appended
    elif not replaced:
        appended = _info(src, None, value)
    for i in infos:  # one label: any other copy is blanked where it is
        if i not in replaced:
            replaced[i] = _blanked(src, chunks[i])
    return replaced, appended


def _blanked(src: BinaryIO, chunk: _Chunk) -> bytes:
    """``chunk`` (an ``INFO`` list) with every ``AIGC`` sub-chunk turned into ``JUNK`` of the same size."""
    src.seek(chunk.offset)
    data = bytearray(src.read(_span(chunk)))
    for sub in _subchunks(src, chunk, [0]):
        if sub.cid.upper() == _KEY:
            at = sub.offset - chunk.offset
            data[at:at + 4] = b"JUNK"
            data[at + 8:at + 8 + sub.size] = bytes(sub.size)
    return bytes(data)


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy an AVI file to ``dst`` with ``value`` as its ``LIST``/``INFO`` ``AIGC`` entry (see module doc)."""
    size, end, chunks = _form(src)
    replaced, appended = _plan(src, chunks, value)
    grows = len(appended) + sum(len(data) - _span(chunks[i]) for i, data in replaced.items())
    if grows and end < size:
        raise UnsupportedFormat("this OpenDML AVI has no room before its movie data for the label "
                                "(no JUNK chunk to use), and growing it would move its AVIX parts")
    form_end = chunks[-1].offset + _span(chunks[-1]) if chunks else 12
    dst.write(b"RIFF" + struct.pack("<I", form_end - 8 + grows) + b"AVI ")
    for i, chunk in enumerate(chunks):
        if i in replaced:
            dst.write(replaced[i])
        else:
            _copy_chunk(src, dst, chunk)
    dst.write(appended)
    src.seek(form_end)
    copy_stream(src, dst, size - form_end)
