"""Rewrite an audio file's samples in its own container: tags, chunks and sample positions kept.

The one read/write path of the audio layers that change samples (the watermark, the rhythm cue, the
voice prompt; :mod:`labeler.stages`). A transform returns the new samples, or an :class:`AudioEdit`
that also says how many samples it inserted before the programme, so cue points, loops and cue sheets
are moved to stay on the same programme sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labeler.atomic import atomic_output, check_input, check_output, staging_folder
from labeler.errors import CorruptFile, LabelerError
from labeler.media.audio import audio_format_for, check_ogg, read_audio
from labeler.media.audio_carry import TAG_COPIERS, Shift
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
    if audio_format_for(src) == "ogg":  # libsndfile skips a damaged page: the copy would lack that sound
        check_ogg(src)
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
    shift = Shift(delay, len(out), data.sample_rate)
    # libsndfile names a WAVE_FORMAT_EXTENSIBLE file "WAVEX" and an RF64 one "RF64": the same chunks
    # (an RF64 source under 4 GiB comes out as plain RIFF, its ds64 sizes being then unneeded).
    source_format = (data.format or "").lower()
    source_format = {"wavex": "wav", "rf64": "wav"}.get(source_format, source_format)
    fmt = audio_format_for(dst) or source_format
    if fmt in _FFMPEG_OUT:
        return _encoded_with_tags(src, dst, fmt, shift, lambda path: write_audio(
            path, out, data.sample_rate, format=fmt, bitrate=_bitrate_of(src, fmt), metadata_from=src,
            source_codec=data.subtype))
    if fmt not in TAG_COPIERS:
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
            TAG_COPIERS[fmt](source, fresh, handle, shift)
    return shift.notes


def _encoded_with_tags(src: str | os.PathLike[str], dst: str | os.PathLike[str], fmt: str, shift: Shift,
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
        shift = Shift(int(edit.delay), 0, source.sample_rate)
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
        shift = Shift(int(edit.delay), frames, source.sample_rate)
        with open(src, "rb") as original, open(encoded, "r+b") as fresh, atomic_output(dst) as handle:
            TAG_COPIERS[source.format](original, fresh, handle, shift)
    return shift.notes


def _staged(dst: str | os.PathLike[str]) -> Any:
    """A scratch folder beside ``dst`` (same file system) for the encoder's output before tags are added."""
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise LabelerError(f"output folder does not exist: {folder}")
    return staging_folder(Path(folder))


# Largest RIFF file the streamed path writes (its size field is 32 bits).
_RIFF_LIMIT = 0xFFFFFFFF

#: Formats ffmpeg encodes (:func:`labeler.media.audio_write.encode_blocks`).
_FFMPEG_OUT = ("mp3", "m4a", "mka", "weba")


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
