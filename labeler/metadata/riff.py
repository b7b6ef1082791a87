"""WAV carrier: a top-level RIFF chunk with id ``AIGC`` holding the label JSON (carrier ``riff-aigc``).

The audio practice guide TC260-PG-202510A puts the label of a WAV file in a
RIFF sub-chunk of the ``WAVE`` form with id ``AIGC`` and the JSON text as data;
some tools also add an ``AIGC`` entry to the ``LIST``/``INFO`` chunk (read here
as ``riff-info``). A label in another ``INFO`` entry (``ICMT``...) or ID3 frame is a
non-standard declaration (``riff-info-icmt``, ``id3-comm``...). RIFF layout:
Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0" (1991),
chapter 2; RF64: EBU Tech 3306; BW64: ITU-R BS.2088.

Reading walks the chunks by seeking (the ``data`` chunk is never loaded),
visits at most :data:`labeler.limits.MAX_BOXES` chunks and follows ``LIST``
chunks at most :data:`labeler.limits.MAX_BOX_DEPTH` levels deep. Tolerated
quirks, all common in real files:

* a RIFF size field that disagrees with the file size (streaming writers leave
  0 or 0xFFFFFFFF): the chunks are walked to the end of the file;
* a ``data`` chunk whose size runs past the end of the file (an interrupted
  recording, or a WAV streamed through a pipe with size 0xFFFFFFFF), and a
  ``data`` chunk of size 0 that is followed by no valid chunk (same cause): the
  samples run to the end of the file. Any other chunk that runs past the end is
  a :class:`~labeler.errors.CorruptFile`. A ``data`` chunk that gives a real
  size (not 0 or a streaming writer's "unknown", :data:`_UNKNOWN_SIZES`) and runs
  past the end is a file cut short (``head -c``, an interrupted download):
  :func:`read` raises :class:`~labeler.errors.PartialFile` with the labels before
  the cut (verify reports them and the cut), :func:`cut_note` words it for a
  label call;
* a missing pad byte after an odd-sized last chunk, and bytes after the last
  chunk that do not form a chunk (kept, unparsed);
* a ``LIST`` sub-chunk that does not fit in its list ends the walk of that list
  (the list is copied unchanged).

Write policy
------------
* The new ``AIGC`` chunk (UTF-8 JSON, a pad byte when the length is odd, no
  terminator) goes immediately before the ``data`` chunk; an existing top-level
  ``AIGC`` chunk is replaced where it is.
  Before ``data`` because: readers that stop at ``data`` (ffmpeg and libsndfile
  on non-seekable input, stream parsers, Python's ``wave``) and platforms that
  read only a file's head then still see it; a chunk after ``data`` is lost
  behind a ``data`` chunk whose size is unknown (0 / 0xFFFFFFFF, as written by
  streaming TTS services); and it is where writers put metadata (ffmpeg's
  ``LIST``/``INFO``, BWF ``bext``). exiftool (``-u``) and libsndfile find the
  chunk in either place; the only readers that break are those that assume a
  44-byte header, which ffmpeg's own ``LIST`` already breaks.
* ``AIGC`` entries in top-level ``LIST``/``INFO`` chunks and ``TXXX:AIGC``
  frames in an ``id3 `` chunk are removed (a ``LIST``/``INFO`` or ``id3 `` chunk
  left empty is dropped), so exactly one label remains (GB 45438-2025 6.1 c).
* All other chunks are copied byte for byte, the samples with a streaming copy.
  The RIFF size is set to the real size; a ``data`` size that ran past the end
  is set to the bytes present, less a sample frame the cut left incomplete
  (``fmt `` block align), so the output's sizes all hold; RF64/BW64 files keep
  their form and get the ``ds64`` sizes updated.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, PartialFile, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, copy_stream, misplaced_label
from labeler.metadata import id3 as _id3

_RF64_FORMS = (b"RF64", b"BW64")
_ID3_CHUNKS = (b"id3 ", b"ID3 ")
_UNKNOWN_SIZE = 0xFFFFFFFF
#: ``data`` sizes that say "unknown" rather than a length: a writer to a pipe (0xFFFFFFFF; RF64's 64-bit
#: -1), SoX's unspecified length (0x7FFFF000), 0x7FFFFFFF. A file shorter than one of these is no cut.
_UNKNOWN_SIZES = (_UNKNOWN_SIZE, 0x7FFFF000, 0x7FFFFFFF, (1 << 64) - 1)


@dataclass
class _Chunk:
    cid: bytes
    offset: int  # of the 8-byte header
    size: int  # payload bytes, resolved through ds64 for RF64
    stored: int  # payload bytes present in the file (< size only for a cut-off data chunk)

    @property
    def start(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        # RIFF 1.0 chapter 2: a chunk with an odd size is followed by one pad byte.
        return self.start + self.stored + (self.stored & 1)


@dataclass
class _Layout:
    form: bytes  # RIFF, RF64 or BW64
    size_field: int  # the header's size field as stored
    chunks: list[_Chunk]
    file_size: int
    tail: int  # offset of unparsed trailing bytes (== file_size when none)


def _printable(cid: bytes) -> bool:
    return len(cid) == 4 and all(0x20 <= b <= 0x7E for b in cid)


def _ds64(src: BinaryIO, chunk: _Chunk) -> tuple[int, int, dict[bytes, int]]:
    # EBU Tech 3306 (RF64) 3: riffSize, dataSize, sampleCount (64-bit), then a table of 64-bit chunk sizes.
    if chunk.size < 28:
        raise CorruptFile("rf64 ds64 chunk is too short")
    src.seek(chunk.start)
    head = src.read(28)
    if len(head) < 28:
        raise CorruptFile("rf64 ds64 chunk is truncated")
    riff_size, data_size, _, count = struct.unpack("<QQQI", head)
    count = min(count, (chunk.size - 28) // 12, limits.MAX_BOXES)
    table = src.read(12 * count)
    sizes = {}
    for i in range(len(table) // 12):
        cid, size = struct.unpack_from("<4sQ", table, 12 * i)
        sizes.setdefault(cid, size)
    return riff_size, data_size, sizes


def _plausible_chunk(src: BinaryIO, pos: int, file_size: int) -> bool:
    src.seek(pos)
    head = src.read(8)
    if len(head) < 8:
        return False
    cid, size = struct.unpack("<4sI", head)
    return _printable(cid) and pos + 8 + size <= file_size


def _layout(src: BinaryIO) -> _Layout:
    file_size = src.seek(0, os.SEEK_END)
    if file_size == 0:
        raise CorruptFile("empty file (0 bytes)")
    src.seek(0)
    head = src.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", *_RF64_FORMS) or head[8:12] != b"WAVE":
        raise CorruptFile("not a RIFF WAVE file (bad header)")
    form = head[:4]
    size_field = struct.unpack("<I", head[4:8])[0]
    declared_end = 8 + size_field
    ds64: tuple[int, int, dict[bytes, int]] | None = None
    chunks: list[_Chunk] = []
    pos = 12
    while pos + 8 <= file_size:
        if len(chunks) >= limits.MAX_BOXES:
            raise UnsafeInput(f"wav file has more than {limits.MAX_BOXES} chunks")
        src.seek(pos)
        cid, size = struct.unpack("<4sI", src.read(8))
        if form in _RF64_FORMS and not chunks:
            if cid != b"ds64":
                raise CorruptFile(f"{form.decode()} file does not start with a ds64 chunk")
        elif ds64 is not None and size == _UNKNOWN_SIZE:
            size = ds64[1] if cid == b"data" else ds64[2].get(cid, size)
        available = file_size - pos - 8
        if cid == b"data" and (
            size > available or (size == 0 and available and not _plausible_chunk(src, pos + 8, file_size))
        ):
            chunks.append(_Chunk(cid, pos, size, available))
            pos = file_size
            break
        if size > available:
            if chunks and pos >= declared_end:
                break  # bytes after the RIFF form that are no chunk: kept as they are
            raise CorruptFile(f"riff chunk {cid!r} at offset {pos} runs past the end of the file")
        chunk = _Chunk(cid, pos, size, size)
        chunks.append(chunk)
        if cid == b"ds64" and len(chunks) == 1 and form in _RF64_FORMS:
            ds64 = _ds64(src, chunk)
            declared_end = 8 + ds64[0]
        pos = min(chunk.end, file_size)
    return _Layout(form, size_field, chunks, file_size, pos)


def _subchunks(src: BinaryIO, parent: _Chunk, budget: list[int]) -> list[_Chunk]:
    """Sub-chunks of a LIST chunk (after its 4-byte list type), by seeking."""
    out: list[_Chunk] = []
    pos, end = parent.start + 4, parent.start + parent.stored
    while pos + 8 <= end:
        budget[0] += 1
        if budget[0] > limits.MAX_BOXES:
            raise UnsafeInput(f"wav file has more than {limits.MAX_BOXES} chunks")
        src.seek(pos)
        cid, size = struct.unpack("<4sI", src.read(8))
        if pos + 8 + size > end or not _printable(cid):
            # Not a sub-chunk: the rest of the list is padding (a LIST of 2 MB of zeros, which some
            # editors reserve, read as 262,144 empty chunks and was refused as over MAX_BOXES) or junk
            break
        out.append(_Chunk(cid, pos, size, size))
        pos += 8 + size + (size & 1)
    return out


def _list_type(src: BinaryIO, chunk: _Chunk) -> bytes:
    if chunk.stored < 4:
        return b""
    src.seek(chunk.start)
    return src.read(4)


def _text(src: BinaryIO, chunk: _Chunk, what: str) -> str:
    if chunk.size > limits.MAX_TEXT_VALUE:
        raise UnsafeInput(f"{what} is {chunk.size} bytes, over the {limits.MAX_TEXT_VALUE}-byte limit")
    src.seek(chunk.start)
    # Writers differ on a NUL terminator (INFO strings carry one, RIFF 1.0 ZSTR); it is no part of the value.
    return src.read(chunk.size).rstrip(b"\x00").decode("utf-8", "replace")


def _info_labels(src: BinaryIO, chunk: _Chunk, depth: int, budget: list[int]) -> list[FoundLabel]:
    """AIGC entries of LIST/INFO chunks at or below ``chunk`` (a LIST)."""
    if depth > limits.MAX_BOX_DEPTH:
        raise UnsafeInput(f"riff LIST chunks nested deeper than {limits.MAX_BOX_DEPTH} levels")
    kind = _list_type(src, chunk)
    found: list[FoundLabel] = []
    for sub in _subchunks(src, chunk, budget):
        if sub.cid == b"LIST":
            found.extend(_info_labels(src, sub, depth + 1, budget))
        elif kind == b"INFO" and sub.cid.upper() == b"AIGC":
            where = f"LIST/INFO entry {sub.cid.decode('latin-1')!r} at offset {sub.offset}"
            found.append(FoundLabel("riff-info", _text(src, sub, "riff INFO AIGC entry"), where))
        elif kind == b"INFO":
            misplaced = info_misplaced(src, sub)
            if misplaced is not None:
                found.append(misplaced)
    return found


def info_misplaced(src: BinaryIO, sub: _Chunk) -> FoundLabel | None:
    """A label in another ``LIST/INFO`` entry (``ICMT``, ``ISBJ``...) as a non-standard declaration.

    Only the entry's first :data:`labeler.limits.MAX_TEXT_VALUE` bytes are read: a long comment is no
    reason to refuse the file, as it is for the ``AIGC`` entry itself.
    """
    src.seek(sub.start)
    raw = src.read(min(sub.size, limits.MAX_TEXT_VALUE)).rstrip(b"\x00")
    name = sub.cid.decode("latin-1")
    return misplaced_label("riff-info", name.strip(), raw, f"LIST/INFO entry {name!r} at offset {sub.offset}")


def _id3_tag(src: BinaryIO, chunk: _Chunk) -> bytes | None:
    """The ID3v2 tag in an ``id3 `` chunk (as mutagen and others write it), or None when it is unreadable."""
    if chunk.size > _id3.MAX_ID3_TAG:
        raise UnsafeInput(f"wav id3 chunk is {chunk.size} bytes, over the {_id3.MAX_ID3_TAG}-byte limit")
    src.seek(chunk.start)
    tag = src.read(chunk.size)
    try:
        length = _id3.tag_length(tag)
        if length is None or length > len(tag):
            return None
        _id3.rewrite_tag(tag[:length], None)  # parses it: a broken tag is left alone, not fatal to the WAV
    except CorruptFile:
        return None
    return tag[:length]


def _cut_data(layout: _Layout) -> _Chunk | None:
    """The ``data`` chunk when the file is cut within it: its size is a real one and runs past the end."""
    for chunk in layout.chunks:
        if chunk.cid == b"data" and chunk.stored < chunk.size and chunk.size not in _UNKNOWN_SIZES:
            return chunk
    return None


def _frame_sizes(src: BinaryIO, layout: _Layout) -> tuple[int, int] | None:
    """``(block align, average bytes per second)`` of the ``fmt `` chunk, or None without a usable one."""
    for chunk in layout.chunks:
        if chunk.cid == b"fmt " and chunk.stored >= 14:
            src.seek(chunk.start + 8)
            rate, align = struct.unpack("<IH", src.read(6))
            return (align, rate) if align and rate else None
    return None


def _truncated(src: BinaryIO, layout: _Layout, data: _Chunk) -> str:
    """Why ``data`` (:func:`_cut_data`) is cut, with the seconds of sound before the cut when known."""
    sizes = _frame_sizes(src, layout)
    seconds = f" ({data.stored / sizes[1]:.2f} s of sound)" if sizes else ""
    return (f"wav is truncated: its data chunk holds {data.stored} of the {data.size} bytes its header "
            f"gives{seconds}")


def cut_note(src: str | os.PathLike[str] | bytes) -> str | None:
    """A warning for a label call when the WAV ``src`` (a path, or the file's bytes) is cut within its
    samples (:func:`_cut_data`), worded as :func:`labeler.media.mp3_cut.mp3_cut_note` words an MP3's;
    None otherwise, and for a file that cannot be read (the layers say what is wrong then)."""
    try:
        if isinstance(src, bytes):
            return _cut_detail(io.BytesIO(src))
        with open(src, "rb") as handle:
            return _cut_detail(handle)
    except (OSError, LabelerError):
        return None


def _cut_detail(src: BinaryIO) -> str | None:
    layout = _layout(src)
    data = _cut_data(layout)
    if data is None:
        return None
    sizes = _frame_sizes(src, layout)
    kept = f"the {data.stored / sizes[1]:.2f} s of sound" if sizes else "the sound"
    return (f"damaged wav file: it is truncated (its data chunk holds {data.stored} of the {data.size} bytes "
            f"its header gives): labeled as it is, {kept} before the cut, with the chunk sizes set to what "
            "is there")


def read(src: BinaryIO) -> list[FoundLabel]:
    """Every AIGC label of a WAV file: ``riff-aigc`` chunks, ``riff-info`` entries, ``id3 `` chunk frames.

    Raises
    ------
    PartialFile
        The file is cut within its samples (:func:`_cut_data`): ``found`` holds the labels before the cut
        (all chunks up to the samples; a label after them is lost with the cut).
    CorruptFile, UnsafeInput
        A file too damaged, or too large in its chunk counts, to read.
    """
    layout = _layout(src)
    found = _read(src, layout)
    data = _cut_data(layout)
    if data is not None:
        raise PartialFile(_truncated(src, layout, data), found)
    return found


def _read(src: BinaryIO, layout: _Layout) -> list[FoundLabel]:
    if not layout.chunks:
        # Only the 12-byte RIFF header (maybe plus a torn chunk header): a cut file, not a label-less WAV.
        raise CorruptFile("wav file is truncated: no complete chunk after the RIFF header")
    chunks, infos, others = [], [], []
    budget = [len(layout.chunks)]
    for chunk in layout.chunks:
        if chunk.cid.upper() == b"AIGC":
            where = f"RIFF chunk {chunk.cid.decode('latin-1')!r} at offset {chunk.offset}"
            chunks.append(FoundLabel("riff-aigc", _text(src, chunk, "riff AIGC chunk"), where))
        elif chunk.cid == b"LIST":
            infos.extend(_info_labels(src, chunk, 1, budget))
        elif chunk.cid in _ID3_CHUNKS:
            tag = _id3_tag(src, chunk)
            if tag is not None:
                where = f"in the WAV {chunk.cid.decode()!r} chunk at {chunk.offset}"
                others.extend(_id3.tag_labels(tag, where))
    return chunks + sorted(infos + others, key=lambda f: not f.standard)


def _chunk_bytes(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def _copy_chunk(src: BinaryIO, dst: BinaryIO, chunk: _Chunk) -> None:
    src.seek(chunk.offset)
    copy_stream(src, dst, 8 + chunk.stored)
    if chunk.stored & 1:
        src.seek(chunk.start + chunk.stored)
        dst.write(src.read(1)[:1] or b"\x00")  # a pad byte missing at the end of the file is added


def _stripped_info(src: BinaryIO, chunk: _Chunk) -> bytes | None:
    """A top-level LIST/INFO chunk without its AIGC entries; None if it has none, b"" if nothing is left."""
    if _list_type(src, chunk) != b"INFO":
        return None
    subs = _subchunks(src, chunk, [0])
    if not any(sub.cid.upper() == b"AIGC" for sub in subs):
        return None
    kept = [sub for sub in subs if sub.cid.upper() != b"AIGC"]
    if not kept:
        return b""
    parts = [b"INFO"]
    for sub in kept:
        if sub.size > limits.MAX_XMP_PACKET:
            limit = limits.MAX_XMP_PACKET
            raise UnsafeInput(f"riff INFO entry is {sub.size} bytes, over the {limit}-byte limit")
        src.seek(sub.offset)
        parts.append(src.read(8 + sub.size) + (b"\x00" if sub.size & 1 else b""))
    return _chunk_bytes(b"LIST", b"".join(parts))


def _stripped(src: BinaryIO, chunk: _Chunk) -> bytes | None:
    """``chunk`` without label copies (LIST/INFO entries, id3 frames); None when it holds none."""
    if chunk.cid == b"LIST":
        return _stripped_info(src, chunk)
    if chunk.cid in _ID3_CHUNKS:
        tag = _id3_tag(src, chunk)
        stripped = _id3.rewrite_tag(tag, None) if tag is not None else None
        if stripped is not None:
            return _chunk_bytes(chunk.cid, stripped) if stripped else b""
    return None


def write(src: BinaryIO, dst: BinaryIO, value: str) -> None:
    """Copy a WAV file from ``src`` to ``dst`` with ``value`` in an ``AIGC`` chunk (see the module notes)."""
    layout = _layout(src)
    _read(src, layout)  # validates nesting, sizes and bounds before anything is written (a cut is too: below)
    if not any(c.cid == b"data" for c in layout.chunks):
        raise CorruptFile("wav file has no data chunk")
    rf64 = layout.form in _RF64_FORMS
    payload = value.encode("utf-8")
    if rf64 and len(payload) & 1:
        # libsndfile's RF64 reader (1.2) ignores pad bytes and then misses the data chunk; an even size
        # avoids the pad: a NUL terminator, as RIFF INFO strings carry (ZSTR), which readers strip.
        payload += b"\x00"
    label = _chunk_bytes(b"AIGC", payload)
    dst.write(layout.form + b"\x00\x00\x00\x00WAVE")
    ds64_at = data_size = None
    # An existing AIGC chunk is replaced where it is; otherwise the label goes right before 'data'.
    placed = False
    existing = any(c.cid.upper() == b"AIGC" for c in layout.chunks)
    for chunk in layout.chunks:
        if chunk.cid.upper() == b"AIGC":
            if not placed:
                dst.write(label)
                placed = True
            continue
        if chunk.cid == b"data" and not placed and not existing:
            dst.write(label)
            placed = True
        if chunk.cid == b"ds64" and rf64:
            ds64_at = dst.tell() + 8
        replacement = _stripped(src, chunk)
        if replacement is not None:
            dst.write(replacement)
        elif chunk.cid == b"data" and chunk.stored != chunk.size:
            # Cut-off or unknown-size data: the header states the bytes really present, in whole sample
            # frames (a cut within one left a part that readers drop or read as noise).
            sizes = _frame_sizes(src, layout)
            data_size = chunk.stored - (chunk.stored % sizes[0] if sizes else 0)
            header = _UNKNOWN_SIZE if rf64 or data_size > _UNKNOWN_SIZE else data_size
            dst.write(b"data" + struct.pack("<I", header))
            src.seek(chunk.start)
            copy_stream(src, dst, data_size)
            if data_size & 1:
                dst.write(b"\x00")
        else:
            _copy_chunk(src, dst, chunk)
    riff_end = dst.tell()
    src.seek(layout.tail)
    copy_stream(src, dst, layout.file_size - layout.tail)
    _fix_sizes(dst, layout, riff_end - 8, ds64_at, data_size)


def _fix_sizes(
    dst: BinaryIO, layout: _Layout, riff_size: int, ds64_at: int | None, data_size: int | None
) -> None:
    if layout.form in _RF64_FORMS:
        if ds64_at is None:
            raise CorruptFile("rf64 file has no ds64 chunk")
        dst.seek(4)
        # EBU Tech 3306: the 32-bit RIFF size of an RF64 file is -1; keep a real one where a writer put it.
        fits = layout.size_field != _UNKNOWN_SIZE and riff_size < _UNKNOWN_SIZE
        dst.write(struct.pack("<I", riff_size if fits else _UNKNOWN_SIZE))
        dst.seek(ds64_at)
        dst.write(struct.pack("<Q", riff_size))
        if data_size is not None:
            dst.write(struct.pack("<Q", data_size))
    else:
        if riff_size > _UNKNOWN_SIZE:
            raise UnsupportedFormat("labeled wav would exceed the 4 GiB RIFF limit (convert it to RF64)")
        dst.seek(4)
        dst.write(struct.pack("<I", riff_size))
    dst.seek(0, os.SEEK_END)
