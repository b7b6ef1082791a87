"""Read and write audio as NumPy arrays: float32 samples in [-1, 1], shape ``(frames, channels)``.

Decoding: WAV, FLAC, OGG (Vorbis/Opus), AIFF and the other formats of libsndfile go
through :mod:`soundfile`; MP3, M4A/AAC and anything soundfile refuses go through
``ffmpeg``, which decodes the first audio stream to 32-bit float at the stream's own
sample rate and channel count (no resampling, no down-mix). Integer PCM is scaled by
``1 / 2**(bits-1)`` (so 16-bit -32768..32767 becomes -1.0..0.99997), which float32 holds
exactly for up to 24 bits; 32-bit integer PCM loses its lowest 8 bits. Values are not
clipped on reading: float files and lossy decoders (MP3/AAC overshoot) may go slightly
beyond [-1, 1].

Encoding: WAV, FLAC, OGG through soundfile (default subtypes ``PCM_16``, ``PCM_16``,
``VORBIS``), MP3 (libmp3lame) and M4A (AAC-LC, ``aac``) through ffmpeg. Samples are
clipped to [-1, 1] first; writing 16-bit PCM samples read by :func:`read_audio` gives
the same integers back. Every writer goes through a temporary file renamed into place.

:func:`iter_audio_blocks` streams long files block by block with bounded memory;
:func:`read_audio` refuses to hold more than :data:`MAX_DECODED_BYTES` of samples.
All functions are thread-safe.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from labeler.atomic import atomic_output
from labeler.errors import CorruptFile, InvalidArgument, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.formats import sniff_bytes, sniff_file
from labeler.media import ffmpeg as ff
from labeler.media.audio_sndfile import UNKNOWN_FRAMES, sndfile_subtype, steady_peak_chunk

#: Most decoded sample bytes (float32) :func:`read_audio` holds: 2 GiB, about 3 h of 44.1 kHz stereo.
MAX_DECODED_BYTES = 1 << 31

#: Output formats and how they are written.
_SOUNDFILE_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
_FFMPEG_FORMATS = {"mp3": ("libmp3lame", "192k"), "m4a": ("aac", "192k"), "mka": ("flac", None),
                   "weba": ("libopus", "128k")}
#: Matroska and WebM audio keep the source's codec (WebM holds Opus or Vorbis only); other sources go to
#: the format's default: FLAC in Matroska (lossless, so no generation is lost), Opus in WebM.
_KEPT_CODECS = {
    "mka": {"opus": "libopus", "vorbis": "libvorbis", "aac": "aac", "mp3": "libmp3lame", "flac": "flac"},
    "weba": {"opus": "libopus", "vorbis": "libvorbis"},
    "m4a": {"alac": "alac"},  # Apple Lossless stays lossless (AAC would be a lossy generation)
}
#: ffmpeg's muxer for the formats whose extensions it may not know (``.weba``).
_MUXERS = {"mka": "matroska", "weba": "webm"}
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
    stream = streams[0]
    if not stream.sample_rate or not stream.channels:
        raise CorruptFile(f"cannot tell the sample rate and channels of the {stream.codec} stream")
    return AudioInfo(
        sample_rate=stream.sample_rate,
        channels=stream.channels,
        frames=None,
        duration=info.duration,
        format=kind or info.container.split(",")[0],
        subtype=(sndfile_subtype(path) if kind == "flac" else None) or stream.codec,
        decoder="ffmpeg",
        stream=stream.index,
    )


def read_audio(path: str | os.PathLike[str] | bytes) -> AudioData:
    """Decode a whole audio file.

    Parameters
    ----------
    path : path-like or bytes
        The file, or a whole encoded file in memory (WAV, FLAC and OGG through libsndfile, MP3 and
        M4A through ffmpeg's standard input; no temporary file either way).

    Returns
    -------
    AudioData
        float32 samples ``(frames, channels)`` in [-1, 1] at the file's own rate.

    Raises
    ------
    CorruptFile
        Empty, truncated beyond use or undecodable.
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
    info = audio_info(path)
    if info.frames is not None and info.frames * info.channels * 4 > MAX_DECODED_BYTES:
        raise UnsafeInput(f"{info.frames} frames x {info.channels} channels is too long to decode at once")
    if info.decoder == "soundfile" and info.subtype in _INTEGER_READS:
        try:
            with sf.SoundFile(path) as snd:
                samples = _read_integer_pcm(snd)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise CorruptFile(f"cannot decode audio: {' '.join(str(exc).split())[:200]}") from None
        return AudioData(samples, info.sample_rate, info.format, info.subtype)
    blocks: list[np.ndarray] = []
    total = 0
    for block in _blocks(path, info, 1 << 16):
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
                    if snd.subtype in _INTEGER_READS:
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
_INTEGER_READS = {"PCM_16": ("int16", 2.0**-15), "PCM_24": ("int32", 2.0**-31)}


def _read_integer_pcm(snd: sf.SoundFile) -> np.ndarray:
    """The rest of ``snd`` (a 16/24-bit PCM file) as float32 ``(frames, channels)``, in one read."""
    dtype, scale = _INTEGER_READS[snd.subtype]
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
    return _blocks(path, audio_info(path), block_frames)


def _blocks(path: str | os.PathLike[str], info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    if info.decoder == "soundfile":
        return _soundfile_blocks(path, block_frames)
    return _ffmpeg_blocks(path, info, block_frames)


def _soundfile_blocks(path: str | os.PathLike[str], block_frames: int) -> Iterator[np.ndarray]:
    try:
        with sf.SoundFile(path) as snd:
            while True:
                block = snd.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptFile(f"cannot decode audio: {' '.join(str(exc).split())[:200]}") from None


def _ffmpeg_blocks(path: str | os.PathLike[str], info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    url = ff.input_url(path)
    args = [
        ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-protocol_whitelist", ff.PROTOCOLS, "-i", url,
        "-map", f"0:{info.stream}", "-vn", "-sn", "-dn",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(info.channels), "-ar", str(info.sample_rate),
        "pipe:1",
    ]
    frame_bytes = 4 * info.channels
    for buf in ff.pipe_chunks(args, url, block_frames * frame_bytes):
        usable = len(buf) - len(buf) % frame_bytes
        if usable:
            yield np.frombuffer(buf, "<f4", count=usable // 4).reshape(-1, info.channels).astype(
                np.float32, copy=False
            )


# --------------------------------------------------------------------------- writing


def audio_format_for(path: str | os.PathLike[str]) -> str | None:
    """Return the audio format a file name's extension asks for (``"x.MP3"`` -> ``"mp3"``), or None."""
    return _EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower())


def as_float_samples(samples: np.ndarray) -> np.ndarray:
    """Return ``samples`` as C-contiguous float32 ``(frames, channels)`` clipped to [-1, 1].

    1-D input is one channel. int16 and int32 are scaled by ``1 / 2**15`` and ``1 / 2**31``;
    NaN becomes 0.

    Raises
    ------
    ValueError
        For other dtypes or shapes, or no channels.
    """
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InvalidArgument(f"samples must be (frames,) or (frames, channels), got shape {arr.shape}")
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / 32768.0
    elif arr.dtype == np.int32:
        arr = (arr.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise InvalidArgument(f"samples must be float, int16 or int32, got {arr.dtype}")
    out = np.nan_to_num(arr.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(np.clip(out, -1.0, 1.0))


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    format: str | None = None,  # noqa: A002 - the name soundfile uses
    subtype: str | None = None,
    bitrate: str | int | None = None,
    metadata_from: str | os.PathLike[str] | None = None,
    source_codec: str | None = None,
) -> None:
    """Encode samples and write them to ``path`` atomically.

    Parameters
    ----------
    path : path-like
        Output file; replaced only when encoding succeeded.
    samples : numpy.ndarray
        ``(frames,)`` or ``(frames, channels)``; float in [-1, 1] (clipped), or int16/int32.
    sample_rate : int
        Samples per second per channel, in Hz. For MP3 and M4A, ffmpeg resamples a rate the
        encoder cannot take to the nearest one it can (MP3: at most 48 kHz).
    format : str, optional
        ``"wav"``, ``"flac"``, ``"ogg"``, ``"mp3"``, ``"m4a"``, ``"mka"`` (Matroska audio) or ``"weba"``
        (WebM audio); by default from the extension.
    subtype : str, optional
        soundfile subtype for WAV/FLAC/OGG (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``...);
        default ``PCM_16`` for WAV and FLAC, ``VORBIS`` for OGG. Not used for MP3/M4A.
    bitrate : str or int, optional
        MP3/M4A bit rate, ``"192k"`` or bit/s (default 192 kbit/s). OGG: the lowest encoder setting
        that aims at least this rate (Opus: that target; Vorbis: the VBR quality whose nominal rate at
        this layout reaches it), with a margin because VBR averages land under their target; by
        default libsndfile's (Vorbis quality 0.4, Opus libopus's automatic rate). Not used for WAV/FLAC.
    metadata_from : path-like, optional
        MP3/M4A: copy the global tags (title, artist, an AIGC tag...) of this file into the output, so
        re-encoding a file does not drop its metadata; MP3: its cover pictures (APIC) too, image bytes
        as they are (M4A cover art: :func:`labeler.media.audio_rewrite.rewrite_audio_file`). Not used
        for WAV/FLAC/OGG.
        MKA/WebM: the same (Matroska's segment-wide tags).
    source_codec : str, optional
        M4A: ``"alac"`` keeps Apple Lossless (at the source's 16 or 24 bits), any other codec becomes AAC.
        MKA/WebM: the codec of the audio being replaced (ffmpeg's name: ``"opus"``, ``"vorbis"``,
        ``"aac"``...), kept when the container holds it; otherwise FLAC (MKA) or Opus (WebM). A FLAC
        output takes no ``bitrate``.

    Raises
    ------
    UnsupportedFormat
        Unknown format, or a subtype the format cannot hold.
    LabelerError
        The encoder failed (its reason in the message).
    ValueError
        Bad samples, sample rate or an option that does not apply to the format.
    """
    fmt = (format or audio_format_for(path) or "").lower()
    if fmt not in _SOUNDFILE_FORMATS and fmt not in _FFMPEG_FORMATS:
        wanted = fmt or os.fspath(path)
        raise UnsupportedFormat(f"cannot write audio as {wanted!r} (wav, flac, ogg, mp3, m4a, mka, weba)")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InvalidArgument(f"sample_rate must be a positive integer, got {sample_rate!r}")
    data = as_float_samples(samples)
    if fmt in _SOUNDFILE_FORMATS:
        if bitrate is not None and fmt != "ogg":
            raise InvalidArgument(f"bitrate applies to mp3, m4a and ogg, not {fmt}")
        container, default = _SOUNDFILE_FORMATS[fmt]
        kind = (subtype or default).upper()
        if not sf.check_format(container, kind):
            raise UnsupportedFormat(f"{fmt} cannot hold subtype {kind}")
        channels = data.shape[1] if data.ndim == 2 else 1
        bps = None if bitrate is None else _bits_per_second(bitrate)
        with atomic_output(path) as handle:
            sink = _Sink(handle)
            try:
                level = None if bps is None else _ogg_compression(kind, bps, channels, int(sample_rate))
                sf.write(sink, data, int(sample_rate), format=container, subtype=kind,
                         compression_level=level)
                if sink.error is not None:  # libsndfile's Ogg writer does not check what write returned
                    raise sink.error
                steady_peak_chunk(handle, container)
            except (sf.LibsndfileError, RuntimeError, AssertionError) as exc:
                if sink.error is not None:  # the disk, not the encoder: say so, as for any other output
                    raise sink.error from None
                raise LabelerError(f"cannot encode {fmt}: {' '.join(str(exc).split())[:200]}") from None
        return
    if subtype is not None:
        raise InvalidArgument(f"subtype applies to wav, flac and ogg, not {fmt}")
    encode_blocks(path, [data], int(sample_rate), data.shape[1], format=fmt, bitrate=bitrate,
                  metadata_from=metadata_from, source_codec=source_codec)


def encode_blocks(
    path: str | os.PathLike[str],
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    channels: int,
    *,
    format: str,  # noqa: A002 - as write_audio
    bitrate: str | int | None = None,
    metadata_from: str | os.PathLike[str] | None = None,
    source_codec: str | None = None,
) -> None:
    """:func:`write_audio` for MP3, M4A, MKA and WebM audio from float32 ``(n, channels)`` blocks.

    The blocks go to ffmpeg's standard input as they come (the caller clips them, as
    :func:`as_float_samples` does), so the file is the one a whole array of the same samples gives.
    Options as :func:`write_audio`; an exception raised by ``blocks`` stops ffmpeg and is raised.
    """
    codec, default_rate = _FFMPEG_FORMATS[format]
    codec = _KEPT_CODECS.get(format, {}).get(source_codec or "", codec)
    rate = None if codec in ("flac", "alac") else str(bitrate or default_rate or "192k")
    pictures = _attached_pictures(metadata_from) if metadata_from is not None and format == "mp3" else ()
    sample_fmt = _lossless_sample_format(codec, metadata_from)
    _ffmpeg_encode(path, blocks, channels, int(sample_rate), codec, rate, metadata_from, _MUXERS.get(format),
                   pictures, sample_fmt)


def _lossless_sample_format(codec: str, source: str | os.PathLike[str] | None) -> str | None:
    """ALAC's sample format for the source's bit depth: ``s16p`` for 16-bit, else None (ffmpeg's choice
    from float input, ``s32p`` holding 24 bits), so a 16-bit ALAC file does not come out as 24-bit."""
    if codec != "alac" or source is None:
        return None
    try:
        streams = ff.probe(source).audio
    except (LabelerError, OSError):
        return None
    return "s16p" if streams and (streams[0].sample_fmt or "").startswith("s16") else None


def _attached_pictures(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """Indices of the cover pictures (ID3 APIC, MP4 covr: ffmpeg's attached pictures) in ``path``."""
    try:
        return tuple(s.index for s in ff.probe(path).streams if s.attached_pic)
    except (LabelerError, OSError):
        return ()  # unreadable here means the tags cannot be copied either: ffmpeg says so below


class _Sink:
    """A file for soundfile's virtual I/O whose write errors are kept, not raised: an exception raised
    inside soundfile's C callback is only printed ("Exception ignored from cffi callback", a traceback)
    and soundfile then fails an assertion; :func:`write_audio` raises the kept error instead (a full
    disk: ``OSError`` ENOSPC, one line like any other output error)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return 0
        try:
            return self._handle.write(data)
        except OSError as exc:
            self.error = exc
            return 0

    def __getattr__(self, name: str) -> Any:  # seek, tell, read, flush: the handle's own
        return getattr(self._handle, name)


def _bits_per_second(bitrate: str | int) -> int:
    text = str(bitrate).strip().lower()
    try:
        return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)
    except ValueError:
        raise InvalidArgument(f"bitrate must be bit/s or like '128k', got {bitrate!r}") from None


def _ogg_compression(subtype: str, bps: int, channels: int, rate: int) -> float:
    """libsndfile's compression level (0 best .. 1 smallest) that aims at ``bps`` bit/s or more.

    libsndfile 1.2 maps the level ``c`` to an Opus target of ``((1 - c) * 250000 + 6000)`` bit/s per
    channel and to a Vorbis VBR quality of ``1 - c``. libsndfile has no constant-rate Opus mode and VBR
    averages land under their target (libopus: 25.1 kbit/s for 28.2 kbit/s on speech), so the aim is
    25 % (Opus) or 10 % (Vorbis) above ``bps``. A Vorbis quality's nominal rate depends on the sample
    rate and channels, so it is read from the identification header of a tiny silent encode per step.
    """
    if subtype == "OPUS":
        per_channel = 1.25 * bps / max(channels, 1)
        return float(min(1.0, max(0.0, 1.0 - (per_channel - 6000) / 250000)))
    for step in range(11):
        if _vorbis_nominal(step / 10, channels, rate) >= 1.1 * bps:
            return 1.0 - step / 10
    return 0.0


@functools.lru_cache(maxsize=64)
def _vorbis_nominal(quality: float, channels: int, rate: int) -> int:
    """libvorbis's nominal bit rate (bit/s) at VBR ``quality`` for this layout (id header bytes 20-24)."""
    out = io.BytesIO()
    sf.write(out, np.zeros((256, channels), np.float32), rate, format="OGG", subtype="VORBIS",
             compression_level=1.0 - quality)
    data = out.getvalue()
    start = 27 + data[26]  # the identification packet, alone on the first page
    return int.from_bytes(data[start + 20:start + 24], "little", signed=True)


def _ffmpeg_encode(
    path: str | os.PathLike[str],
    blocks: Iterable[np.ndarray],
    channels: int,
    rate: int,
    codec: str,
    bitrate: str | None,
    metadata_from: str | os.PathLike[str] | None = None,
    muxer: str | None = None,
    pictures: tuple[int, ...] = (),
    sample_fmt: str | None = None,
) -> None:
    with ff.output_path(path) as tmp:
        args = [
            ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0",
        ]
        if metadata_from is not None:
            # The source's tags only (-map 0:a keeps its streams out); use_metadata_tags keeps an
            # mdta AIGC key in M4A, which ffmpeg otherwise drops without a word.
            args += ["-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(metadata_from),
                     "-map", "0:a", "-map_metadata", "1"]
            if codec == "aac":
                args += ["-movflags", "use_metadata_tags"]
            # The sound's stream tags (language, handler, title) go on the new sound: naming them turns
            # ffmpeg's copying of stream tags off, so a picture's are named too.
            args += ["-map_metadata:s:a:0", "1:s:a:0"]
            # Cover pictures are streams to ffmpeg: copied as they are (no second JPEG generation).
            for number, index in enumerate(pictures):
                args += ["-map", f"1:{index}", f"-map_metadata:s:v:{number}", f"1:s:{index}"]
            args += ["-c:v", "copy"] if pictures else []
        args += ["-c:a", codec] + (["-b:a", bitrate] if bitrate else []) + (["-f", muxer] if muxer else [])
        args += ["-sample_fmt", sample_fmt] if sample_fmt else []
        args += ff.reproducible(path)
        args.append("file:" + os.path.abspath(tmp))
        with ff.stderr_file() as err:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                                    **ff.CHILD)
            finished = broken = False
            try:
                assert proc.stdin is not None
                step = 1 << 20
                for data in blocks:
                    raw = memoryview(data.astype("<f4", copy=False).reshape(-1)).cast("B")
                    for start in range(0, len(raw), step):
                        proc.stdin.write(raw[start:start + step])
                proc.stdin.close()
                finished = True
            except BrokenPipeError:
                broken = True  # ffmpeg stopped reading: it is exiting and its stderr says why
            finally:
                # Any other exception (KeyboardInterrupt...) abandons the job: kill, then reap.
                status = ff.stop(proc, kill=not (finished or broken))
            if status != 0 or not finished:
                reason = ff.error_line(ff.read_tail(err), [tmp]) or f"exit status {status}"
                raise LabelerError(f"cannot encode {codec}: ffmpeg: {reason}")
        if metadata_from is not None and codec == "aac":
            from labeler.media.video_streams import drop_derived_keys

            # use_metadata_tags also writes the brands and creation time as keys, which ffmpeg 9 then
            # reads twice ("M4A ;M4A "); their values stay in ftyp and mvhd
            drop_derived_keys(tmp)
