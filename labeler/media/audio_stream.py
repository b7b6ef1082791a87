"""Read and write WAV, FLAC and Ogg block by block: a label's memory does not grow with the programme.

:func:`labeler.media.audio_rewrite.rewrite_audio_file` takes a streaming form of its transform: it
gets an :class:`AudioSource` (the file, read in blocks, as many passes as it needs) and returns an
:class:`AudioStreamEdit` (the labeled blocks and how far the programme moved); :func:`write_blocks`
encodes them in the source's own sample format. The blocks hold the very floats
:func:`labeler.media.audio.read_audio` gives, and :func:`write_blocks` writes them as
:func:`labeler.media.audio_write.write_audio` does, so a streamed label is bit for bit the whole-file one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from labeler.atomic import atomic_output
from labeler.errors import CorruptFile, LabelerError
from labeler.media.audio import (
    INTEGER_READS,
    AudioInfo,
    audio_format_for,
    audio_info,
    check_ogg,
    decoded_blocks,
    ogg_rest_by_ffmpeg,
)
from labeler.media.audio_sndfile import UNKNOWN_FRAMES, can_write, steady_peak_chunk
from labeler.media.audio_write import (
    FFMPEG_FORMATS,
    FLOAT_SUBTYPES,
    Sink,
    as_float_samples,
    ogg_compression,
    sndfile_writes,
)

#: Samples per channel in each block read (256 KiB of float32 per channel).
BLOCK_FRAMES = 1 << 16
#: The containers streamed, by soundfile's format name; the other formats are decoded whole.
_STREAMED = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav", "FLAC": "flac", "OGG": "ogg"}


@dataclass(frozen=True)
class AudioStreamEdit:
    """The streaming form of :class:`labeler.media.audio_rewrite.AudioEdit`.

    Attributes
    ----------
    blocks : iterable of numpy.ndarray
        float32 ``(n, channels)`` blocks of the labeled programme, in order; consumed once.
    delay : int
        Samples inserted before the programme's first sample.
    """

    blocks: Iterable[np.ndarray]
    delay: int = 0


class AudioSource:
    """An audio file read in float32 blocks, as many passes as needed.

    WAV (RIFF, WAVE_FORMAT_EXTENSIBLE, RF64), FLAC and Ogg (Vorbis, Opus) through libsndfile; MP3, M4A
    and Matroska / WebM
    audio through an ffmpeg pipe (:func:`labeler.media.audio.iter_audio_blocks`), decoded again for each
    pass.

    Parameters
    ----------
    path : path-like
        The file.
    info : soundfile.SoundFile or labeler.media.audio.AudioInfo
        The file opened once by :func:`streamable` (libsndfile), or ffprobe's facts (ffmpeg).
    """

    def __init__(self, path: str | os.PathLike[str], info: sf.SoundFile | AudioInfo) -> None:
        self.path = path
        self.sample_rate = int(info.sample_rate if isinstance(info, AudioInfo) else info.samplerate)
        self.channels = int(info.channels)
        self.subtype = info.subtype
        self._ffmpeg = info if isinstance(info, AudioInfo) else None
        # format: the container as labeler.media.audio names it; container: libsndfile's, for the writer
        self.format = info.format if isinstance(info, AudioInfo) else _STREAMED[info.format]
        self.container = "WAV" if self.format == "wav" else self.format.upper()
        self._ogg_checked = False

    def blocks(self, start: int = 0, stop: int | None = None,
               block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """float32 ``(n, channels)`` blocks of samples ``start:stop`` (to the end when None), owned by
        the caller: the values :func:`labeler.media.audio.read_audio` gives (16- and 24-bit PCM scaled
        as it scales them)."""
        if self._ffmpeg is not None:
            # Labeling only (this class feeds the label path): a cut live Matroska / WebM decodes to its cut
            # and ffmpeg exits 0, so its stderr is checked, as the video path does.
            return _part(decoded_blocks(self.path, self._ffmpeg, block_frames, refuse_cut_short=True),
                         start, stop)
        if start and self.container == "OGG":
            # libsndfile's Ogg seek is not sample-exact: Opus pre-rolls too little to settle the decoder
            # (~3,000 samples after a page boundary differ), Vorbis lands 151 samples off in the last
            # page; a --cue middle's duck then differed from the whole-file label's. Decoded from the
            # start, as read_audio does.
            return _part(self._soundfile_blocks(0, stop, block_frames), start, stop)
        return self._soundfile_blocks(start, stop, block_frames)

    def _soundfile_blocks(self, start: int, stop: int | None, block_frames: int) -> Iterator[np.ndarray]:
        integer = INTEGER_READS.get(self.subtype)
        left = None if stop is None else max(0, stop - start)
        done, frames = 0, 0
        if self.container == "OGG" and not self._ogg_checked:
            # Labeling only: libsndfile skips (Vorbis) or conceals (Opus) a page that fails its CRC
            # check without an error, and the labeled file lost that part of the sound. Checked on the
            # first pass, before a block is written.
            check_ogg(self.path)
            self._ogg_checked = True
        try:
            with sf.SoundFile(self.path) as snd:
                frames = int(snd.frames)
                if start:
                    snd.seek(start)
                while left is None or left > 0:
                    want = block_frames if left is None else min(block_frames, left)
                    if integer is None:
                        block = snd.read(want, dtype="float32", always_2d=True)
                    else:
                        raw = snd.read(want, dtype=integer[0], always_2d=True)
                        block = np.multiply(raw, np.float32(integer[1]), dtype=np.float32)
                    if not len(block):
                        return
                    if left is not None:
                        left -= len(block)
                    done += len(block)
                    yield block
        except (sf.LibsndfileError, RuntimeError) as exc:
            error = CorruptFile(f"cannot decode audio: {' '.join(str(exc).split())[:200]}")
            if self.container != "OGG" or start or not frames:
                raise error from None
            # libsndfile fails part way through some valid Ogg Opus files (packets spanning pages): ffmpeg
            # decodes the rest, as read_audio does (an Ogg is always read here from its start)
            rest = ogg_rest_by_ffmpeg(self.path, done, frames, self.channels, self.sample_rate, block_frames,
                                      error)
            yield from _part(rest, 0, left)


def _part(blocks: Iterator[np.ndarray], start: int, stop: int | None) -> Iterator[np.ndarray]:
    """Samples ``start:stop`` of a stream of blocks (a pipe cannot seek: the blocks before are skipped)."""
    at = 0
    try:
        for block in blocks:
            lo, hi = max(start - at, 0), len(block) if stop is None else min(stop - at, len(block))
            at += len(block)
            if lo < hi:
                yield block[lo:hi]
            if stop is not None and at >= stop:
                return
    finally:
        blocks.close()  # type: ignore[attr-defined]  # stops the decoder


def streamable(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> AudioSource | None:
    """An :class:`AudioSource` for ``src`` when labeling it into ``dst`` can stream, else None.

    It can when libsndfile reads ``src`` as WAV, FLAC or Ogg, ``src`` and ``dst`` are named as that format,
    and the sample format can be written back: the cases where the whole-file path keeps the
    container, the subtype and the chunks; and when ffmpeg decodes ``src`` and ``dst`` is an MP3, M4A,
    Matroska or WebM audio file (re-encoded by ffmpeg either way); a FLAC of unknown length (written to
    a pipe) is decoded by ffmpeg and written by libsndfile. Anything else (another extension...) is
    decoded whole.
    """
    if audio_format_for(dst) in FFMPEG_FORMATS:
        try:
            info = audio_info(src)
        except (LabelerError, OSError):
            return None  # the whole-file path says why, as before
        return AudioSource(src, info) if info.decoder == "ffmpeg" else None
    try:
        with sf.SoundFile(src) as snd:
            fmt = _STREAMED.get(snd.format)
            if fmt is None or audio_format_for(src) != fmt or audio_format_for(dst) != fmt:
                return None
            # A FLAC written to a pipe has no total, and libsndfile cannot read its end: ffmpeg decodes
            # it (to the same floats), libsndfile writes it at its own depth.
            source = AudioSource(src, snd) if snd.frames < UNKNOWN_FRAMES else None
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None  # not for libsndfile: the whole-file path says why, as before
    if source is None:
        try:
            source = AudioSource(src, audio_info(src))
        except (LabelerError, OSError):
            return None
    if not (source.subtype or "").isupper() or not can_write(source.container, source.subtype):
        return None
    return source


def write_blocks(path: str | os.PathLike[str], blocks: Iterable[np.ndarray], source: AudioSource,
                 bitrate: int | None = None) -> int:
    """Encode ``blocks`` into ``path`` (atomically) in ``source``'s container and subtype.

    Each block is clipped to [-1, 1] as :func:`labeler.media.audio_write.write_audio` clips (a float
    subtype is not: its headroom is kept, ``clip=False``), and libsndfile converts sample by sample (Ogg:
    handed over in the parts ``write_audio`` uses, :func:`~labeler.media.audio_write.sndfile_writes`), so
    the file equals a whole-array ``write_audio`` of the same samples. ``bitrate`` (bit/s, Ogg only) is
    ``write_audio``'s: the lowest encoder setting that aims at least this rate.

    Returns
    -------
    int
        Samples per channel written.

    Raises
    ------
    LabelerError
        The encoder failed; ``OSError`` when the disk did (a full disk), in one line.
    """
    frames = 0
    clip = source.subtype not in FLOAT_SUBTYPES
    level = None if bitrate is None else ogg_compression(source.subtype, bitrate, source.channels,
                                                         source.sample_rate)
    with atomic_output(path) as handle:
        sink = Sink(handle)
        try:
            with sf.SoundFile(sink, "w", source.sample_rate, source.channels, source.subtype,
                              format=source.container, compression_level=level) as snd:
                parts = (as_float_samples(b, clip=clip) for b in blocks)
                for block in sndfile_writes(source.container, parts):
                    snd.write(block)
                    frames += len(block)
                    if sink.error is not None:
                        raise sink.error
        except (sf.LibsndfileError, RuntimeError, AssertionError) as exc:
            if sink.error is not None:  # the disk, not the encoder: say so, as for any other output
                raise sink.error from None
            raise LabelerError(f"cannot encode {source.format}: {' '.join(str(exc).split())[:200]}") from None
        if sink.error is not None:
            raise sink.error
        steady_peak_chunk(handle, source.container)  # as write_audio: the same bytes on every run
    return frames
