"""Read audio as NumPy arrays: float32 samples in [-1, 1], shape ``(frames, channels)``.

Decoding: WAV, FLAC, OGG (Vorbis/Opus), AIFF and the other formats of libsndfile go
through :mod:`soundfile`; MP3, M4A/AAC and anything soundfile refuses go through
``ffmpeg``, which decodes the first audio stream to 32-bit float at the stream's own
sample rate and channel count (no resampling, no down-mix). Integer PCM is scaled by
``1 / 2**(bits-1)`` (so 16-bit -32768..32767 becomes -1.0..0.99997), which float32 holds
exactly for up to 24 bits; 32-bit integer PCM loses its lowest 8 bits. Values are not
clipped on reading: float files and lossy decoders (MP3/AAC overshoot) may go slightly
beyond [-1, 1]. Writing is :mod:`labeler.media.audio_write`.

:func:`iter_audio_blocks` streams long files block by block with bounded memory;
:func:`read_audio` refuses to hold more than :data:`MAX_DECODED_BYTES` of samples.
All functions are thread-safe.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import soundfile as sf

from labeler.errors import CorruptFile, InvalidArgument, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.formats import sniff_bytes, sniff_file
from labeler.media import ffmpeg as ff
from labeler.media.audio_sndfile import UNKNOWN_FRAMES, ogg_damage, sndfile_subtype

#: Most decoded sample bytes (float32) :func:`read_audio` holds: 2 GiB, about 3 h of 44.1 kHz stereo.
MAX_DECODED_BYTES = 1 << 31

_EXTENSIONS = {
    ".wav": "wav", ".wave": "wav", ".flac": "flac", ".ogg": "ogg", ".oga": "ogg", ".opus": "ogg",
    ".mp3": "mp3", ".m4a": "m4a", ".m4b": "m4a", ".mp4": "m4a", ".mka": "mka", ".weba": "weba",
}
# Containers sniffed as these go straight to ffmpeg (libsndfile's MP3 support is optional; it reads no
# Matroska).
_FFMPEG_FIRST = {"mp3", "m4a", "mp4", "mov", "mka", "weba", "mkv", "webm"}


@dataclass(frozen=True)
class AudioInfo:
    """Facts about an audio file, known without decoding it.

    Attributes
    ----------
    sample_rate : int
        Samples per second per channel, in Hz.
    channels : int
        Channel count.
    frames : int or None
        Samples per channel, when the container says (soundfile formats).
    duration : float or None
        Length in seconds.
    format : str
        Container: ``"wav"``, ``"flac"``, ``"ogg"``, ``"mp3"``, ``"m4a"``...
    subtype : str or None
        soundfile's subtype (``"PCM_16"``, ``"VORBIS"``) or ffmpeg's codec name (``"mp3"``, ``"aac"``).
    decoder : str
        ``"soundfile"`` or ``"ffmpeg"``: which one decodes this file.
    stream : int or None
        Index of the decoded stream in the file (ffmpeg only).
    """

    sample_rate: int
    channels: int
    frames: int | None
    duration: float | None
    format: str
    subtype: str | None
    decoder: str
    stream: int | None = None


@dataclass(eq=False)
class AudioData:
    """Decoded audio.

    Attributes
    ----------
    samples : numpy.ndarray
        float32, shape ``(frames, channels)``, values in [-1, 1].
    sample_rate : int
        Samples per second per channel, in Hz.
    format : str or None
        Container it came from (``"wav"``, ``"flac"``, ``"mp3"``...).
    subtype : str or None
        soundfile's subtype or ffmpeg's codec name, as in :class:`AudioInfo`.
    """

    samples: np.ndarray
    sample_rate: int
    format: str | None = None
    subtype: str | None = None

    @property
    def frames(self) -> int:
        """Samples per channel."""
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        """Channel count."""
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


# --------------------------------------------------------------------------- reading


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Describe an audio file (rate, channels, length, codec) without decoding it.

    Raises
    ------
    CorruptFile
        Empty or unreadable file.
    UnsupportedFormat
        A media file with no audio stream.
    OSError
        When ``path`` cannot be opened.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise CorruptFile("empty file (0 bytes)")
    try:
        kind: str | None = sniff_file(path)
    except LabelerError:
        kind = None
    if kind not in _FFMPEG_FIRST:
        try:
            with sf.SoundFile(path) as snd:
                if snd.format != "MPEG" and snd.frames < UNKNOWN_FRAMES:  # else ffmpeg (a piped FLAC too)
                    return AudioInfo(
                        sample_rate=int(snd.samplerate),
                        channels=int(snd.channels),
                        frames=int(snd.frames),
                        duration=snd.frames / snd.samplerate if snd.samplerate else None,
                        format=snd.format.lower(),
                        subtype=snd.subtype,
                        decoder="soundfile",
                    )
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
            pass  # not for libsndfile, or broken: ffmpeg has the last word below
    info = ff.probe(path)
    streams = info.audio
    if not streams:
        raise UnsupportedFormat("no audio stream in this file")
    audio = stream_audio_info(info, streams[0], kind)
    if kind == "flac":
        audio = replace(audio, subtype=sndfile_subtype(path) or audio.subtype)
    return audio


def stream_audio_info(info: ff.MediaInfo, stream: ff.StreamInfo, kind: str | None = None) -> AudioInfo:
    """:class:`AudioInfo` of one audio stream of a file already probed (``info``), decoded by ffmpeg:
    what :func:`audio_info` says of a file's first stream, without probing it again (a video's
    soundtrack, whose file the caller has probed).

    Raises
    ------
    CorruptFile
        The stream's sample rate or channel count is unknown.
    """
    if not stream.sample_rate or not stream.channels:
        raise CorruptFile(f"cannot tell the sample rate and channels of the {stream.codec} stream")
    return AudioInfo(
        sample_rate=stream.sample_rate,
        channels=stream.channels,
        frames=None,
        duration=info.duration,
        format=kind or info.container.split(",")[0],
        subtype=stream.codec,
        decoder="ffmpeg",
        stream=stream.index,
    )


def read_audio(path: str | os.PathLike[str] | bytes, *, info: AudioInfo | None = None) -> AudioData:
    """Decode a whole audio file.

    Parameters
    ----------
    path : path-like or bytes
        The file, or a whole encoded file in memory (WAV, FLAC and OGG through libsndfile, MP3 and
        M4A through ffmpeg's standard input; no temporary file either way).
    info : AudioInfo, optional
        The file's :func:`audio_info` when the caller has it (saves a second probe; paths only).

    Returns
    -------
    AudioData
        float32 samples ``(frames, channels)`` in [-1, 1] at the file's own rate.

    Raises
    ------
    CorruptFile
        Empty, truncated beyond use or undecodable. An Ogg file with a damaged page reads as libsndfile
        decodes it (a page short, or concealed): readers examine what is there; labeling refuses it
        first (:func:`check_ogg`).
    UnsupportedFormat
        No audio stream.
    UnsafeInput
        More than :data:`MAX_DECODED_BYTES` of decoded samples (use :func:`iter_audio_blocks`).
    InvalidArgument
        ``path`` is neither a path nor bytes (``None``...).
    OSError
        When a path cannot be opened (missing, a folder), as :func:`labeler.media.image.read_image`.
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        return _read_audio_bytes(bytes(path))
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgument(f"audio is a path or bytes, not {type(path).__name__}")
    info = info or audio_info(path)
    if info.frames is not None and info.frames * info.channels * 4 > MAX_DECODED_BYTES:
        raise UnsafeInput(f"{info.frames} frames x {info.channels} channels is too long to decode at once")
    if info.decoder == "soundfile" and info.subtype in INTEGER_READS:
        try:
            with sf.SoundFile(path) as snd:
                samples = _read_integer_pcm(snd)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise CorruptFile(f"cannot decode audio: {' '.join(str(exc).split())[:200]}") from None
        return AudioData(samples, info.sample_rate, info.format, info.subtype)
    blocks: list[np.ndarray] = []
    total = 0
    for block in decoded_blocks(path, info, 1 << 16):
        total += block.nbytes
        if total > MAX_DECODED_BYTES:
            raise UnsafeInput(f"decoded audio is over {MAX_DECODED_BYTES} bytes; read it in blocks")
        blocks.append(block)
    samples = np.concatenate(blocks) if blocks else np.zeros((0, info.channels), np.float32)
    return AudioData(samples, info.sample_rate, info.format, info.subtype)


def _read_audio_bytes(data: bytes) -> AudioData:
    if not data:
        raise CorruptFile("empty file (0 bytes)")
    try:
        kind: str | None = sniff_bytes(data)
    except LabelerError:
        kind = None
    if kind not in _FFMPEG_FIRST:
        try:
            with sf.SoundFile(io.BytesIO(data)) as snd:
                if snd.format != "MPEG" and snd.frames < UNKNOWN_FRAMES:  # else ffmpeg, as audio_info
                    if snd.frames * snd.channels * 4 > MAX_DECODED_BYTES:
                        raise UnsafeInput(f"{snd.frames} frames x {snd.channels} channels is too long to "
                                          "decode at once")
                    if snd.subtype in INTEGER_READS:
                        samples = _read_integer_pcm(snd)
                    else:
                        samples = snd.read(dtype="float32", always_2d=True)
                    return AudioData(samples, int(snd.samplerate), snd.format.lower(), snd.subtype)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
            pass  # not for libsndfile, or broken: ffmpeg has the last word below
    return _ffmpeg_decode_bytes(data, kind)


# 16- and 24-bit PCM: libsndfile hands out integers (24-bit ones shifted into int32) an order of magnitude
# faster than it converts them to float, and one NumPy pass scales them by 2^-15 / 2^-31 to the very
# floats libsndfile's own conversion gives (exact powers of two on values float32 holds exactly).
INTEGER_READS = {"PCM_16": ("int16", 2.0**-15), "PCM_24": ("int32", 2.0**-31)}


def _read_integer_pcm(snd: sf.SoundFile) -> np.ndarray:
    """The rest of ``snd`` (a 16/24-bit PCM file) as float32 ``(frames, channels)``, in one read."""
    dtype, scale = INTEGER_READS[snd.subtype]
    raw = snd.read(dtype=dtype, always_2d=True)
    return np.multiply(raw, np.float32(scale), dtype=np.float32)


def _ffmpeg_decode_bytes(data: bytes, kind: str | None) -> AudioData:
    # One ffmpeg run: the banner (stderr, info level) gives rate and channels, stdout the samples at
    # the stream's own rate and channel count. communicate() feeds stdin and drains both pipes.
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", ff.PROTOCOLS,
            "-i", "pipe:0", "-map", "0:a:0", "-vn", "-sn", "-dn", "-f", "f32le", "-acodec", "pcm_f32le",
            "pipe:1"]
    # Bounded by the input: no audio codec expands by more than ~100x into f32 samples.
    if len(data) * 100 > MAX_DECODED_BYTES * 4:
        raise UnsafeInput(f"{len(data)} bytes of compressed audio is too much to decode in memory")
    proc = subprocess.run(args, input=data, capture_output=True, timeout=600, **ff.CHILD)
    stderr = proc.stderr.decode("utf-8", "replace")
    info = ff.parse_banner(stderr)
    streams = info.audio if info else ()
    if proc.returncode != 0 or not streams:
        if info is not None and not streams:
            raise UnsupportedFormat("no audio stream in this file")
        raise CorruptFile(f"ffmpeg: {ff.error_line(stderr, ['pipe:0']) or f'exit status {proc.returncode}'}")
    stream = streams[0]
    if not stream.sample_rate or not stream.channels:
        raise CorruptFile(f"cannot tell the sample rate and channels of the {stream.codec} stream")
    if len(proc.stdout) > MAX_DECODED_BYTES:
        raise UnsafeInput(f"decoded audio is over {MAX_DECODED_BYTES} bytes; read it in blocks")
    usable = len(proc.stdout) - len(proc.stdout) % (4 * stream.channels)
    samples = np.frombuffer(proc.stdout, "<f4", count=usable // 4).reshape(-1, stream.channels)
    return AudioData(samples.astype(np.float32), stream.sample_rate,
                     kind or info.container.split(",")[0], stream.codec)


def iter_audio_blocks(path: str | os.PathLike[str], block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
    """Decode an audio file block by block, holding one block in memory at a time.

    The file is checked at once (errors as :func:`read_audio`); decoding starts on the
    first ``next()``. Closing the iterator early stops the decoder (ffmpeg is killed
    and reaped).

    Parameters
    ----------
    path : path-like
        The file. :func:`audio_info` gives its sample rate.
    block_frames : int
        Samples per channel in each block; the last block may be shorter.

    Yields
    ------
    numpy.ndarray
        float32, shape ``(n, channels)``, values in [-1, 1]; writable, owned by the caller.
    """
    if block_frames <= 0:
        raise InvalidArgument(f"block_frames must be positive, got {block_frames}")
    return decoded_blocks(path, audio_info(path), block_frames)


def decoded_blocks(path: str | os.PathLike[str], info: AudioInfo, block_frames: int, *,
                   refuse_cut_short: bool = False) -> Iterator[np.ndarray]:
    """:func:`iter_audio_blocks` for a file already described (``info``).

    ``refuse_cut_short`` is for labeling: ffmpeg exits 0 on a file that ends before its sizes say (a
    live Matroska / WebM recording cut part way), so the decoder's stderr is checked after the last
    block and such a file raises :class:`CorruptFile` ("the file is cut short (ffmpeg: ...)"), as the
    video path does. Readers (verify) leave it off and read what is there. libsndfile reads report
    their own errors either way, except an Ogg page that fails its CRC check, which libsndfile skips
    (labeling checks with :func:`check_ogg` first; verify warns).
    """
    if info.decoder == "soundfile":
        return _soundfile_blocks(path, block_frames)
    return _ffmpeg_blocks(path, info, block_frames, refuse_cut_short=refuse_cut_short)


def check_ogg(src: str | os.PathLike[str] | io.BytesIO) -> None:
    """Before labeling: raise :class:`CorruptFile` when the Ogg file ``src`` has a damaged page
    (:func:`labeler.media.audio_sndfile.ogg_damage`).

    libsndfile reads past such a page without an error: a Vorbis stream comes out short (the page's
    second of sound gone from the middle, the rest moved up), an Opus one with the gap concealed. A
    label then wrote back a copy silently lacking part of someone's audio. For labeling this is an
    error, as when libsndfile does report the damage (:func:`ogg_rest_by_ffmpeg`); readers (verify)
    examine what decodes and say the file is damaged (``detectors.sources.Samples.damage``).
    """
    damage = ogg_damage(src)
    if damage is not None:
        raise CorruptFile(f"damaged ogg file: {damage}; the audio there cannot be decoded, so a re-encoded "
                          "copy would lose it (--layers metadata keeps the pages as they are)")


def _soundfile_blocks(path: str | os.PathLike[str], block_frames: int) -> Iterator[np.ndarray]:
    done = 0
    ogg: tuple[int, int, int] | None = None  # an Ogg stream's frames, channels and rate
    try:
        with sf.SoundFile(path) as snd:
            dtype, scale = INTEGER_READS.get(snd.subtype, ("float32", None))
            if snd.format == "OGG":
                ogg = (int(snd.frames), int(snd.channels), int(snd.samplerate))
            while True:
                block = snd.read(block_frames, dtype=dtype, always_2d=True)
                if not len(block):
                    return
                done += len(block)
                # 16/24-bit PCM as integers, scaled: read_audio's floats, several times faster
                yield block if scale is None else np.multiply(block, np.float32(scale), dtype=np.float32)
    except (sf.LibsndfileError, RuntimeError) as exc:
        error = CorruptFile(f"cannot decode audio: {' '.join(str(exc).split())[:200]}")
        if ogg is None:
            raise error from None
        # libsndfile failed part way through an Ogg: ffmpeg decodes the rest (or confirms the damage)
        yield from ogg_rest_by_ffmpeg(path, done, *ogg, block_frames, error)


def ogg_rest_by_ffmpeg(path: str | os.PathLike[str], done: int, frames: int, channels: int, rate: int,
                       block_frames: int, error: CorruptFile) -> Iterator[np.ndarray]:
    """Samples ``done:frames`` of the Ogg file at ``path`` decoded by ffmpeg, after libsndfile failed there.

    libsndfile 1.2 fails part way through a valid Ogg Opus whose packets span pages ("Supported file
    format but file is malformed": a stereo Opus at 510k or a 7.1 one ffmpeg wrote with its one-second
    pages), so such a file could not be labeled or verified. ffmpeg's decoder gives the same samples
    (within float rounding), so the blocks go on from where libsndfile stopped.

    Parameters
    ----------
    path : path-like
        The Ogg file.
    done : int
        Samples per channel libsndfile gave before it failed.
    frames : int
        libsndfile's length of the stream (from the last granule position).
    channels, rate : int
        The stream's channels and sample rate, as libsndfile read them.
    block_frames : int
        Samples per channel in each block.
    error : CorruptFile
        libsndfile's error, raised when ffmpeg cannot decode the file either or gives fewer samples
        than the stream holds (a file damaged indeed).

    Yields
    ------
    numpy.ndarray
        float32 ``(n, channels)`` blocks.
    """
    url = ff.input_url(path)
    # -xerror: a damaged packet stops ffmpeg (non-zero exit) instead of being skipped in silence
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-xerror",
            "-protocol_whitelist", ff.PROTOCOLS, "-i", url, "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(rate), "pipe:1"]
    frame_bytes = 4 * channels
    at = 0
    try:
        for buf in ff.pipe_chunks(args, url, block_frames * frame_bytes):
            usable = len(buf) - len(buf) % frame_bytes
            block = np.frombuffer(buf, "<f4", count=usable // 4).reshape(-1, channels)
            lo, hi = max(done - at, 0), max(min(frames - at, len(block)), 0)
            at += len(block)
            if lo < hi:
                yield block[lo:hi].copy()  # writable and owned, as libsndfile's blocks
    except CorruptFile:
        raise error from None
    if at < frames:  # fewer samples than the granule positions say: damaged, not libsndfile's bug
        raise error


def _ffmpeg_blocks(path: str | os.PathLike[str], info: AudioInfo, block_frames: int, *,
                   refuse_cut_short: bool = False) -> Iterator[np.ndarray]:
    url = ff.input_url(path)
    args = [
        ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-protocol_whitelist", ff.PROTOCOLS, "-i", url,
        "-map", f"0:{info.stream}", "-vn", "-sn", "-dn",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(info.channels), "-ar", str(info.sample_rate),
        "pipe:1",
    ]
    frame_bytes = 4 * info.channels
    for buf in ff.pipe_chunks(args, url, block_frames * frame_bytes, refuse_cut_short=refuse_cut_short):
        usable = len(buf) - len(buf) % frame_bytes
        if usable:
            yield np.frombuffer(buf, "<f4", count=usable // 4).reshape(-1, info.channels).astype(
                np.float32, copy=False
            )


def audio_format_for(path: str | os.PathLike[str]) -> str | None:
    """Return the audio format a file name's extension asks for (``"x.MP3"`` -> ``"mp3"``), or None."""
    return _EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower())
