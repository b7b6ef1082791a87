"""What a re-encoded audio file takes back from its source: WAV chunks, FLAC blocks, Ogg comments.

:func:`labeler.media.audio_rewrite.rewrite_audio_file` encodes new samples with libsndfile, which writes
only the audio; :data:`TAG_COPIERS` then carries the source's metadata into the new file, moving every
sample position (cue points, loops, BWF time references, cue sheets) by the samples the edit inserted
before the programme (:class:`Shift`).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from labeler.errors import LabelerError


@dataclass(frozen=True)
class Shift:
    """How sample positions move from the source to the labeled file.

    ``delay``: samples inserted before the programme (None: unknown, positions cannot be kept);
    ``frames``: length of the labeled audio in samples per channel; ``rate``: its sample rate (Hz,
    the source's); ``notes``: what the copiers could not keep exactly, for the caller to report.
    """

    delay: int | None
    frames: int
    rate: int = 0
    notes: list[str] = field(default_factory=list)


# WAV chunks the encoder writes itself; chunks whose contents are sample positions, and the lists that
# only make sense beside them (a playlist and the cue points' labels refer to cue point IDs).
_WAV_OWN = {b"fmt ", b"fact", b"data", b"ds64", b"PEAK"}
_WAV_POSITIONAL = {b"cue ", b"smpl", b"plst"}
# Chunks libsndfile adds on its own (float files get both; WAVEX files a fact).
_WAV_ENCODER_EXTRAS = {b"PEAK", b"fact"}
# Chunks holding the time of day of the first sample (BWF): moved earlier by the inserted samples.
_WAV_TIMECODE = (b"bext", b"iXML")
_U32_MAX = 0xFFFFFFFF


def _wav_with_tags(src: BinaryIO, fresh: BinaryIO, out: BinaryIO, shift: Shift) -> None:
    """``fresh`` (a RIFF WAVE just encoded) with ``src``'s other chunks, written to ``out``."""
    from labeler.metadata import copy_stream, riff

    old, new = riff._layout(src), riff._layout(fresh)
    before: list = []
    after: list = []
    moved: dict[int, bytes] = {}  # chunk offset in src -> the whole chunk with its positions moved
    seen_data = False
    for chunk in old.chunks:
        if chunk.cid == b"data":
            seen_data = True
            continue
        if chunk.cid in _WAV_OWN:
            continue
        positional = chunk.cid in _WAV_POSITIONAL or (
            chunk.cid == b"LIST" and riff._list_type(src, chunk) == b"adtl")
        if positional and shift.delay is None:
            continue  # where the programme went is unknown: no cue point rather than a wrong one
        if chunk.cid in (b"cue ", b"smpl"):
            payload = _moved_wav_positions(src, chunk, shift.delay or 0)
            if payload is None:
                continue  # malformed: its positions cannot be moved
            moved[chunk.offset] = riff._chunk_bytes(chunk.cid, payload)
        elif chunk.cid in _WAV_TIMECODE and shift.delay:
            payload = _moved_timecode(src, chunk, shift)
            if payload is not None:  # None: no timecode in it, copied as it is
                moved[chunk.offset] = riff._chunk_bytes(chunk.cid, payload)
        (after if seen_data else before).append(chunk)
    if new.form != b"RIFF":
        fresh.seek(0)
        copy_stream(fresh, out)
        return
    carried = {c.cid for c in before + after}
    # The encoder's own extras (libsndfile's PEAK and fact) only where the source had them too.
    unwanted = _WAV_ENCODER_EXTRAS - {c.cid for c in old.chunks}
    layout = _source_wav_format(src, old, fresh, new)

    def carry(chunk: Any) -> None:
        if chunk.offset in moved:
            out.write(moved[chunk.offset])
        else:
            riff._copy_chunk(src, out, chunk)

    out.write(b"RIFF\x00\x00\x00\x00WAVE")
    for chunk in new.chunks:
        if chunk.cid == b"data":
            for extra in before:
                carry(extra)
        elif chunk.cid in carried or chunk.cid in unwanted:
            continue  # the source's copy (its LIST/INFO, say) wins over the encoder's
        elif chunk.cid == b"fmt " and layout is not None:
            out.write(riff._chunk_bytes(b"fmt ", layout))
            continue
        riff._copy_chunk(fresh, out, chunk)
    for extra in after:
        carry(extra)
    size = out.tell() - 8
    if size > 0xFFFFFFFF:
        raise LabelerError("labeled wav would exceed the 4 GiB RIFF limit")
    out.seek(4)
    out.write(struct.pack("<I", size))
    out.seek(0, os.SEEK_END)


def _source_wav_format(src: BinaryIO, old: Any, fresh: BinaryIO, new: Any) -> bytes | None:
    """The source's ``fmt `` payload when it is WAVE_FORMAT_EXTENSIBLE and describes ``fresh``'s samples.

    libsndfile writes a plain ``fmt `` (format 1 or 3, no channel mask): a 5.1 file would come out
    with its speaker positions unknown. The source's header is kept when only its form differs: the
    same channels, rate, block size and bits, and a sub-format GUID whose first two bytes are the
    format tag libsndfile wrote (KSDATAFORMAT_SUBTYPE_PCM / IEEE_FLOAT). None: use the encoder's.
    """
    def payload(handle: BinaryIO, layout: Any) -> bytes:
        chunk = next((c for c in layout.chunks if c.cid == b"fmt "), None)
        if chunk is None or chunk.stored != chunk.size or chunk.size > 1024:
            return b""
        handle.seek(chunk.start)
        return handle.read(chunk.size)

    source, encoded = payload(src, old), payload(fresh, new)
    if len(source) < 40 or len(encoded) < 16 or source[:2] != b"\xfe\xff":
        return None
    same_layout = source[2:16] == encoded[2:16] and source[24:26] == encoded[:2]
    return source if same_layout else None


def _moved_wav_positions(src: BinaryIO, chunk: Any, delay: int) -> bytes | None:
    """The payload of a ``cue `` or ``smpl`` chunk with its sample positions moved ``delay`` later.

    ``cue ``: a count, then 24-byte points (ID, position, chunk ID, chunk start, block start, sample
    offset); the position (in play order) and the sample offset move. ``smpl``: a 36-byte header whose
    eighth field counts the loops, then 24-byte loops (ID, type, start, end, fraction, play count);
    start and end move. None when the chunk is malformed or too large to hold in memory.
    """
    from labeler import limits

    if chunk.stored != chunk.size or chunk.size > limits.MAX_XMP_PACKET:
        return None
    src.seek(chunk.start)
    payload = bytearray(src.read(chunk.size))
    if chunk.cid == b"cue ":
        head, count_at, fields = 4, 0, (4, 20)
    else:
        head, count_at, fields = 36, 28, (8, 12)
    if len(payload) < head:
        return None
    count = struct.unpack_from("<I", payload, count_at)[0]
    if head + 24 * count > len(payload):
        return None
    for i in range(count):
        for field_at in fields:
            at = head + 24 * i + field_at
            # Saturate rather than wrap: a position past 4 Gi samples cannot exist in a RIFF file anyway.
            moved = min(struct.unpack_from("<I", payload, at)[0] + delay, _U32_MAX)
            struct.pack_into("<I", payload, at, moved)
    return bytes(payload)


# EBU Tech 3285 (BWF) bext: Description 256, Originator 32, OriginatorReference 32, OriginationDate 10,
# OriginationTime 8 bytes, then TimeReference as a little-endian uint64 (low dword first).
_BEXT_TIME_AT = 338
# iXML 2.x: a 64-bit sample count split in two decimal 32-bit halves, and the rate it counts at.
_IXML_PAIRS = ((b"TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI", b"TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO", True),
               (b"BWF_TIME_REFERENCE_HIGH", b"BWF_TIME_REFERENCE_LOW", False))


def _moved_timecode(src: BinaryIO, chunk: Any, shift: Shift) -> bytes | None:
    """The payload of a ``bext`` or ``iXML`` chunk with its time reference moved ``shift.delay`` earlier.

    The label's samples now come first, so the first sample's time of day is earlier by their
    duration and the programme keeps its own. A reference smaller than that is set to 0 (midnight)
    and a note says so. None when the chunk holds no time reference (or is too large to edit).
    """
    from labeler import limits

    if chunk.stored != chunk.size or chunk.size > limits.MAX_XMP_PACKET:
        return None
    src.seek(chunk.start)
    payload = bytearray(src.read(chunk.size))
    what = "BWF bext TimeReference" if chunk.cid == b"bext" else "iXML timestamp"
    if chunk.cid == b"bext":
        if len(payload) < _BEXT_TIME_AT + 8:
            return None
        old = struct.unpack_from("<Q", payload, _BEXT_TIME_AT)[0]
        struct.pack_into("<Q", payload, _BEXT_TIME_AT, _earlier(old, shift.delay or 0, what, shift))
        return bytes(payload)
    text, changed = bytes(payload), False
    for hi_tag, lo_tag, own_rate in _IXML_PAIRS:
        hi, lo = _ixml_number(text, hi_tag), _ixml_number(text, lo_tag)
        if hi is None or lo is None:
            continue
        delay = shift.delay or 0
        rate = _ixml_number(text, b"TIMESTAMP_SAMPLE_RATE") if own_rate else None
        if rate and shift.rate and rate != shift.rate:
            delay = round(delay * rate / shift.rate)  # the timestamp counts at its own rate
        new = _earlier((hi << 32) + lo, delay, what, shift)
        text = _ixml_set(_ixml_set(text, hi_tag, new >> 32), lo_tag, new & _U32_MAX)
        changed = True
    return text if changed else None


def _earlier(reference: int, delay: int, what: str, shift: Shift) -> int:
    if reference >= delay:
        return reference - delay
    shift.notes.append(f"{what} ({reference} samples since midnight) is earlier than the {delay} samples "
                       "the audio label put before it: set to 0, so the programme's timecode is off by "
                       f"{delay - reference} samples")
    return 0


def _ixml_element(tag: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"(<" + tag + rb">\s*)(\d{1,20})(\s*</" + tag + rb">)")


def _ixml_number(text: bytes, tag: bytes) -> int | None:
    """The single decimal value of ``<TAG>`` in iXML; None when absent, repeated or not a number."""
    found = _ixml_element(tag).findall(text)
    return int(found[0][1]) if len(found) == 1 else None


def _ixml_set(text: bytes, tag: bytes, value: int) -> bytes:
    return _ixml_element(tag).sub(lambda m: m.group(1) + str(value).encode() + m.group(3), text, count=1)


# FLAC metadata block types (RFC 9639 8.1) that describe the old audio frames, and the cue sheet.
_FLAC_STREAMINFO, _FLAC_SEEKTABLE, _FLAC_CUESHEET = 0, 3, 5
# RFC 9639 8.7: a CD-DA cue sheet's offsets are whole CD sectors of 588 samples.
_CD_SECTOR = 588


def _flac_with_tags(src: BinaryIO, fresh: BinaryIO, out: BinaryIO, shift: Shift) -> None:
    """``fresh``'s STREAMINFO, SEEKTABLE and frames with ``src``'s other metadata blocks, to ``out``."""
    from labeler.metadata import copy_stream, flac

    old, new = flac._layout(src), flac._layout(fresh)
    kept: list[tuple[BinaryIO, Any, bytes | None]] = []
    for block in old.blocks:
        if block.kind in (_FLAC_STREAMINFO, _FLAC_SEEKTABLE):
            continue
        payload = None
        if block.kind == _FLAC_CUESHEET:
            payload = None if shift.delay is None else _moved_cuesheet(src, block, shift)
            if payload is None:
                continue  # unknown delay or a malformed sheet: none rather than a wrong one
        kept.append((src, block, payload))
    kinds = {b.kind for _, b, _ in kept}
    # STREAMINFO (first, RFC 9639 8) and SEEKTABLE describe the new frames; the encoder's other blocks
    # (its Vorbis comment with its vendor string, padding) stay only where the source has none.
    framing = (_FLAC_STREAMINFO, _FLAC_SEEKTABLE)
    own = [(fresh, b, None) for b in new.blocks if b.kind in framing or b.kind not in kinds]
    blocks = own + kept
    if old.id3 is not None:
        out.write(old.id3)
    out.write(b"fLaC")
    for i, (handle, block, payload) in enumerate(blocks):
        last = 0x80 if i == len(blocks) - 1 else 0
        length = block.length if payload is None else len(payload)
        out.write(bytes((block.kind | last,)) + length.to_bytes(3, "big"))
        if payload is None:
            handle.seek(block.start)
            copy_stream(handle, out, block.length)
        else:
            out.write(payload)
    fresh.seek(new.audio)
    copy_stream(fresh, out, new.file_size - new.audio)


def _moved_cuesheet(src: BinaryIO, block: Any, shift: Shift) -> bytes | None:
    """A FLAC CUESHEET payload (RFC 9639 8.7) with its tracks moved ``shift.delay`` samples later.

    Track offsets count from the start of the stream and move; index points count from their track
    and stay. The lead-out (the last track) marks the end of the audio, so it becomes the new length.
    A CD-DA sheet whose offsets no longer fall on 588-sample sectors is marked as not CD-DA (lead-in
    0, lead-out track number 255), as RFC 9639 requires of such a sheet. None when malformed.
    """
    assert shift.delay is not None
    src.seek(block.start)
    sheet = bytearray(src.read(block.length))
    head = 128 + 8 + 259 + 1  # catalog number, lead-in samples, CD flag and reserved, track count
    if len(sheet) < head:
        return None
    count = sheet[head - 1]
    tracks: list[int] = []
    pos = head
    for _ in range(count):
        if pos + 36 > len(sheet):
            return None
        tracks.append(pos)
        pos += 36 + 12 * sheet[pos + 35]  # offset, number, ISRC, flags and reserved, index count
    if not tracks or pos != len(sheet):
        return None
    for at in tracks[:-1]:
        offset = int.from_bytes(sheet[at:at + 8], "big") + shift.delay
        sheet[at:at + 8] = offset.to_bytes(8, "big")
    sheet[tracks[-1]:tracks[-1] + 8] = shift.frames.to_bytes(8, "big")
    is_cd = bool(sheet[136] & 0x80)
    if is_cd and (shift.delay % _CD_SECTOR or shift.frames % _CD_SECTOR):
        sheet[136] &= 0x7F
        sheet[128:136] = bytes(8)
        sheet[tracks[-1] + 8] = 255
    return bytes(sheet)


def _ogg_with_tags(src: BinaryIO, fresh: BinaryIO, out: BinaryIO, shift: Shift) -> None:
    """``fresh`` with ``src``'s Vorbis comments (mutagen rewrites the comment packet), to ``out``."""
    import mutagen
    from mutagen import MutagenError


    try:
        old = mutagen.File(src)
        new = mutagen.File(fresh)
        if old is not None and old.tags is not None and new is not None and new.tags is not None:
            del new.tags[:]
            new.tags.extend(list(old.tags))
            fresh.seek(0)
            new.save(fresh)
    except (MutagenError, ValueError) as exc:
        raise LabelerError(f"cannot carry the ogg comments over: {exc}") from None
    _source_serial(src, fresh, out)


def _source_serial(src: BinaryIO, fresh: BinaryIO, out: BinaryIO) -> None:
    """``fresh`` to ``out`` with every page's stream serial set to the source's first one.

    libsndfile draws a random serial for the stream it writes, so the same input labeled twice gave
    different bytes (QA: caches, de-duplication); the source's serial is as good an identity and makes
    the output a function of the input. mutagen rewrites each page's CRC. A source with more than one
    logical stream (not written here) keeps the fresh file as it is.
    """
    from mutagen import MutagenError
    from mutagen.ogg import OggPage

    from labeler.metadata import copy_stream

    try:
        src.seek(0)
        serial = OggPage(src).serial
        fresh.seek(0)
        pages = []
        while fresh.read(4) == b"OggS":  # OggPage raises at the end; peek for the capture pattern
            fresh.seek(-4, 1)
            pages.append(OggPage(fresh))
    except (MutagenError, OSError, ValueError, EOFError):
        pages = []
    if not pages or len({page.serial for page in pages}) != 1:
        fresh.seek(0)
        copy_stream(fresh, out)
        return
    for page in pages:
        page.serial = serial
        out.write(page.write())


#: Per format libsndfile writes: copy ``fresh`` to ``out`` with ``src``'s metadata, moved by a
#: :class:`Shift`.
TAG_COPIERS: dict[str, Callable[[BinaryIO, BinaryIO, BinaryIO, Shift], None]] = {
    "wav": _wav_with_tags,
    "flac": _flac_with_tags,
    "ogg": _ogg_with_tags,
}
