"""Rewrite an audio file's samples in its own container: tags, chunks and sample positions kept.

The one read/write path of the audio layers that change samples (the watermark, the rhythm cue, the
voice prompt; :mod:`labeler.stages`). A transform returns the new samples, or an :class:`AudioEdit`
that also says how many samples it inserted before the programme, so cue points, loops and cue sheets
are moved to stay on the same programme sample.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from labeler.atomic import atomic_output, check_input, check_output, staging_folder
from labeler.errors import CorruptFile, LabelerError
from labeler.media.audio import audio_format_for, read_audio
from labeler.media.audio_sndfile import kept_wav_subtype
from labeler.media.audio_stream import AudioSource, AudioStreamEdit, streamable, write_blocks
from labeler.media.audio_write import as_float_samples, bitrate_at_least, encode_blocks, write_audio
from labeler.media.mp4_itunes import add_itunes_items, itunes_items
from labeler.metadata import id3


@dataclass(frozen=True)
class AudioEdit:
    """What an audio explicit label did to a programme: the new samples and how far the programme moved.

    Returned by :func:`labeler.visible.audio.audio_cue_edit` and
    :func:`labeler.visible.voice_prompt.audio_label_edit`, and
    accepted from a transform by :func:`rewrite_audio_file`, which shifts the file's cue points, loops
    and cue sheet by ``delay`` so they still point at the same programme sample.

    Attributes
    ----------
    samples : numpy.ndarray
        float32, the labeled programme (the transform's input dimensions and channels).
    delay : int
        Samples inserted before the programme's first sample (``"start"``: label + gap); 0 when the
        label is only mixed in (``"middle"``) or appended (``"end"``).
    """

    samples: np.ndarray
    delay: int = 0


def rewrite_audio_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    transform: Callable[[np.ndarray, int], np.ndarray | AudioEdit],
    stream: Callable[[AudioSource], AudioStreamEdit] | None = None,
) -> list[str]:
    """Decode ``src``, pass its samples through ``transform``, write ``dst`` atomically, tags kept.

    The one read/write path of the audio explicit labels. WAV, FLAC and OGG keep their soundfile
    subtype (``PCM_16``, ``PCM_24``, ``FLOAT``, ``VORBIS``, ``OPUS``...); OGG is re-encoded once at a bit
    rate at least the source's (the larger of its nominal and measured rate, from ffprobe; see
    :func:`labeler.media.audio_write.write_audio`), libsndfile's default when ffprobe cannot tell. MP3,
    M4A and audio-only Matroska / WebM are decoded and re-encoded (lossy, one extra generation) at the
    input's bit rate rounded up to the next of 64..320 kbit/s when ffprobe reports it, else 192 kbit/s;
    Matroska / WebM keep their codec (Opus, Vorbis; AAC, MP3 and FLAC in Matroska; other codecs become
    FLAC in Matroska, Opus in WebM). ``dst``'s extension picks the format when it names one; otherwise
    the source's format is kept.

    Tags survive the re-encode when the format stays the same. MP3: the source's ID3v2 tag(s) byte for
    byte (``CHAP`` times moved by the delay) and a trailing ID3v1 tag. M4A: ffmpeg copies the global tags
    (Matroska / WebM: the segment-wide ones); ALAC stays ALAC.
    FLAC: every metadata block of the source but ``STREAMINFO``
    and ``SEEKTABLE`` (Vorbis comments, pictures, application blocks, padding; a leading ID3v2 tag too) is
    copied byte for byte after the new ``STREAMINFO``; a ``CUESHEET`` gets its track offsets moved by the
    delay and its lead-out set to the new length. WAV: every chunk of the source but ``fmt``, ``fact``,
    ``data``, ``ds64`` and ``PEAK`` is copied byte for byte (``LIST``/``INFO``, ``id3``, ``bext``,
    ``iXML``, ``AIGC``, ``plst``, ``LIST``/``adtl``...), before or after ``data`` as in the source, except
    that the sample positions of ``cue`` points and ``smpl`` loops are moved by the delay, and the BWF
    timecode (``bext`` TimeReference, iXML's ``TIMESTAMP_SAMPLES_SINCE_MIDNIGHT`` and
    ``BWF_TIME_REFERENCE``) is moved earlier by it, so the programme keeps its time of day. OGG: the
    Vorbis comments, through mutagen.

    The delay is what the transform says: an :class:`AudioEdit`'s ``delay`` (samples inserted before
    the programme). A transform that returns bare samples of the input's length moved nothing (delay
    0); one that returns bare samples of another length cannot say where the programme went, so the
    chunks and blocks that hold sample positions are then left out rather than left wrong.

    Parameters
    ----------
    src, dst : path-like
        Input and output files (may be the same path).
    transform : callable
        ``(samples (frames, channels) float32, sample_rate) -> samples`` or :class:`AudioEdit`.
    stream : callable, optional
        The same transform in streaming form, ``(AudioSource) -> AudioStreamEdit``
        (:mod:`labeler.media.audio_stream`), used instead where the file can be read and written in
        blocks: WAV (RIFF, WAVE_FORMAT_EXTENSIBLE, RF64), FLAC and Ogg kept in their format (libsndfile),
        MP3, M4A and Matroska / WebM audio (ffmpeg pipes). Memory is then a few blocks whatever the
        file's length; the output is the one ``transform`` would give.

    Returns
    -------
    list of str
        Notes for the user: what could not be kept exactly (a timecode earlier than the inserted
        label, clamped at midnight). Empty as a rule.

    Raises
    ------
    InvalidArgument
        ``src`` or ``dst`` is not a str or path-like.
    LabelerError
        A missing or non-regular ``src``, a folder as ``dst``, undecodable input, an output format that
        cannot be written, or the transform's own errors.
    """
    # One-line errors for a missing or non-regular source, a path that is not a str (bytes would be read
    # as an encoded file by read_audio) and a folder as the output, before anything is decoded.
    src, dst = check_input(src), check_output(dst)
    if audio_format_for(src) == "ogg":
        from labeler.metadata import ogg

        with open(src, "rb") as handle:  # libsndfile reads the first logical stream only
            ogg.check_single_stream(handle)
    source = None if stream is None else streamable(src, dst)
    if source is not None:
        return _rewrite_stream(src, dst, source, stream)  # type: ignore[arg-type]
    kept = kept_wav_subtype(src, dst)  # before decoding: a WAV that cannot be written back is refused
    data = read_audio(src)
    if len(data.samples) == 0:  # the transforms' own shape checks would say "(0, 1)", not why
        raise CorruptFile("no audio samples could be decoded: the file holds no sound, or its container "
                          "could not be read")
    edited = transform(data.samples, data.sample_rate)
    if isinstance(edited, AudioEdit):
        out, delay = edited.samples, int(edited.delay)
    else:
        out = edited
        delay = 0 if len(out) == len(data.samples) else None
    shift = _Shift(delay, len(out), data.sample_rate)
    # libsndfile names a WAVE_FORMAT_EXTENSIBLE file "WAVEX" and an RF64 one "RF64": the same chunks
    # (an RF64 source under 4 GiB comes out as plain RIFF, its ds64 sizes being then unneeded).
    source_format = (data.format or "").lower()
    source_format = {"wavex": "wav", "rf64": "wav"}.get(source_format, source_format)
    fmt = audio_format_for(dst) or source_format
    if fmt in _FFMPEG_OUT:
        return _encoded_with_tags(src, dst, fmt, shift, lambda path: write_audio(
            path, out, data.sample_rate, format=fmt, bitrate=_bitrate_of(src, fmt), metadata_from=src,
            source_codec=data.subtype))
    if fmt not in _TAG_COPIERS:
        raise LabelerError(f"cannot write the labeled audio as {fmt or os.fspath(dst)!r}")
    same = audio_format_for(src) == fmt and data.subtype and data.subtype.isupper()
    subtype = kept or (data.subtype if same else None)
    # Lossy OGG (Vorbis, Opus) is re-encoded once at a rate at least the source's.
    rate = _ogg_bitrate(src) if fmt == "ogg" and same else None
    if source_format != fmt:
        write_audio(dst, out, data.sample_rate, format=fmt, subtype=subtype, clip=False)  # no tags
        return shift.notes
    with _staged(dst) as scratch:
        encoded = os.path.join(scratch, "encoded." + fmt)
        # clip=False: a float WAV keeps samples beyond full scale (its headroom), as the streamed path
        write_audio(encoded, out, data.sample_rate, format=fmt, subtype=subtype, bitrate=rate, clip=False)
        with open(src, "rb") as source, open(encoded, "r+b") as fresh, atomic_output(dst) as handle:
            _TAG_COPIERS[fmt](source, fresh, handle, shift)
    return shift.notes


def _encoded_with_tags(src: str | os.PathLike[str], dst: str | os.PathLike[str], fmt: str, shift: _Shift,
                       encode: Callable[[str | os.PathLike[str]], None]) -> list[str]:
    """MP3, M4A, MKA, WebM: ``encode(path)`` writes the new audio (ffmpeg), then the source's tags go in."""
    tags = itunes_items(src) if fmt == "m4a" else []
    if not tags and fmt != "mp3":
        encode(dst)
        return shift.notes
    with _staged(dst) as scratch:
        encoded = os.path.join(scratch, "encoded." + fmt)
        encode(encoded)
        with open(encoded, "rb") as fresh, atomic_output(dst) as handle:
            if fmt == "mp3":
                with open(src, "rb") as source:
                    moved_ms = None if shift.delay is None else round(shift.delay * 1000 / max(shift.rate, 1))
                    id3.with_source_tags(source, fresh, handle, moved_ms)
            else:
                add_itunes_items(fresh, handle, tags)
    return shift.notes


def _rewrite_stream(src: str | os.PathLike[str], dst: str | os.PathLike[str], source: AudioSource,
                    stream: Callable[[AudioSource], AudioStreamEdit]) -> list[str]:
    """:func:`rewrite_audio_file` block by block: ``stream``'s blocks encoded, then the source's tags."""
    if next(source.blocks(0, 1), None) is None:
        raise CorruptFile("no audio samples could be decoded: the file holds no sound, or its container "
                          "could not be read")
    fmt = audio_format_for(dst)
    if fmt in _FFMPEG_OUT:  # an ffmpeg pipe in, another out; shift.frames is only for FLAC's cue sheet
        edit = stream(source)
        shift = _Shift(int(edit.delay), 0, source.sample_rate)
        return _encoded_with_tags(src, dst, fmt, shift, lambda path: encode_blocks(
            path, (as_float_samples(b) for b in edit.blocks), source.sample_rate, source.channels,
            format=fmt, bitrate=_bitrate_of(src, fmt), metadata_from=src, source_codec=source.subtype))
    with _staged(dst) as scratch:
        encoded = os.path.join(scratch, "encoded." + source.format)
        edit = stream(source)
        # Lossy Ogg is re-encoded once at a rate at least the source's, as on the whole-file path.
        rate = _ogg_bitrate(src) if source.format == "ogg" else None
        frames = write_blocks(encoded, edit.blocks, source, rate)
        if source.format == "wav" and os.path.getsize(encoded) > _RIFF_LIMIT:
            # libsndfile writes such a WAV with its sizes wrapped; an RF64 source over 4 GiB lands here
            raise LabelerError("labeled wav would exceed the 4 GiB RIFF limit")
        shift = _Shift(int(edit.delay), frames, source.sample_rate)
        with open(src, "rb") as original, open(encoded, "r+b") as fresh, atomic_output(dst) as handle:
            _TAG_COPIERS[source.format](original, fresh, handle, shift)
    return shift.notes


def _staged(dst: str | os.PathLike[str]) -> Any:
    """A scratch folder beside ``dst`` (same file system) for the encoder's output before tags are added."""
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise LabelerError(f"output folder does not exist: {folder}")
    return staging_folder(Path(folder))


@dataclass(frozen=True)
class _Shift:
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
# Largest RIFF file the streamed path writes (its size field is 32 bits).
_RIFF_LIMIT = _U32_MAX


def _wav_with_tags(src: BinaryIO, fresh: BinaryIO, out: BinaryIO, shift: _Shift) -> None:
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


def _moved_timecode(src: BinaryIO, chunk: Any, shift: _Shift) -> bytes | None:
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


def _earlier(reference: int, delay: int, what: str, shift: _Shift) -> int:
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


def _flac_with_tags(src: BinaryIO, fresh: BinaryIO, out: BinaryIO, shift: _Shift) -> None:
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


def _moved_cuesheet(src: BinaryIO, block: Any, shift: _Shift) -> bytes | None:
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


def _ogg_with_tags(src: BinaryIO, fresh: BinaryIO, out: BinaryIO, shift: _Shift) -> None:
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


#: Formats ffmpeg encodes (:func:`labeler.media.audio_write.encode_blocks`).
_FFMPEG_OUT = ("mp3", "m4a", "mka", "weba")

_TAG_COPIERS: dict[str, Callable[[BinaryIO, BinaryIO, BinaryIO, _Shift], None]] = {
    "wav": _wav_with_tags,
    "flac": _flac_with_tags,
    "ogg": _ogg_with_tags,
}




def _ogg_bitrate(path: str | os.PathLike[str]) -> int | None:
    """An Ogg file's bit rate (bit/s): the larger of the Vorbis nominal rate and the measured average."""
    from labeler.media import ffmpeg as ff

    try:
        info = ff.probe(path)
    except (LabelerError, OSError):
        return None
    rates = [r for r in [s.bitrate for s in info.audio[:1]] + [info.bitrate] if r]
    return max(rates) if rates else None


def _bitrate_of(path: str | os.PathLike[str], fmt: str = "mp3") -> str:
    """The file's audio bit rate as the setting to re-encode it as ``fmt`` with, e.g. ``"128k"``
    (:func:`labeler.media.audio_write.bitrate_at_least`); 192k if unknown."""
    from labeler.media import ffmpeg as ff

    try:
        info = ff.probe(path)
    except (LabelerError, OSError):
        return "192k"
    rates = [s.bitrate for s in info.audio[:1]] + [info.bitrate]
    bps = next((r for r in rates if r), None)
    stream = info.audio[0] if info.audio else None
    codec = "mp3" if fmt == "mp3" else getattr(stream, "codec", None)
    return bitrate_at_least(bps, codec, getattr(stream, "channels", None), "192k")
