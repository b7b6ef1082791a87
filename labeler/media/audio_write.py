"""Write audio from NumPy arrays (float32 samples in [-1, 1], shape ``(frames, channels)``).

Encoding: WAV, FLAC, OGG through soundfile (default subtypes ``PCM_16``, ``PCM_16``,
``VORBIS``), MP3 (libmp3lame), M4A (AAC-LC, ``aac``), Matroska and WebM audio through ffmpeg.
Samples are clipped to [-1, 1] first (for a float WAV, ``FLOAT`` or ``DOUBLE``, labeling keeps its
headroom: ``clip=False``); writing 16-bit PCM samples read by :func:`labeler.media.audio.read_audio`
gives the same integers back. Every writer goes through a temporary file renamed into place. All
functions are thread-safe.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import soundfile as sf

from labeler.atomic import atomic_output
from labeler.errors import InvalidArgument, LabelerError, UnsupportedFormat
from labeler.media import ffmpeg as ff
from labeler.media.audio import audio_format_for
from labeler.media.audio_sndfile import can_write, steady_peak_chunk

__all__ = ["as_float_samples", "encode_blocks", "write_audio"]

#: Output formats and how they are written.
_SOUNDFILE_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
FFMPEG_FORMATS = {"mp3": ("libmp3lame", "192k"), "m4a": ("aac", "192k"), "mka": ("flac", None),
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

#: soundfile subtypes that hold samples beyond [-1, 1] (a float file's headroom), so they are not clipped.
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


def as_float_samples(samples: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """Return ``samples`` as C-contiguous float32 ``(frames, channels)`` clipped to [-1, 1].

    1-D input is one channel. int16 and int32 are scaled by ``1 / 2**15`` and ``1 / 2**31``;
    NaN becomes 0. ``clip=False`` keeps values beyond [-1, 1], for a float file (:data:`FLOAT_SUBTYPES`):
    until 2026-12-07 a float WAV peaking above full scale came back flattened at +-1.0.

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
    return np.ascontiguousarray(np.clip(out, -1.0, 1.0) if clip else out)


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
    clip: bool = True,
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
    clip : bool
        False keeps samples beyond [-1, 1] in a float subtype (:data:`FLOAT_SUBTYPES`: a float file's
        headroom, which labeling keeps); every other output is clipped whatever this says.

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
    if fmt not in _SOUNDFILE_FORMATS and fmt not in FFMPEG_FORMATS:
        wanted = fmt or os.fspath(path)
        raise UnsupportedFormat(f"cannot write audio as {wanted!r} (wav, flac, ogg, mp3, m4a, mka, weba)")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InvalidArgument(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if fmt in _SOUNDFILE_FORMATS:
        if bitrate is not None and fmt != "ogg":
            raise InvalidArgument(f"bitrate applies to mp3, m4a and ogg, not {fmt}")
        container, default = _SOUNDFILE_FORMATS[fmt]
        kind = (subtype or default).upper()
        data = as_float_samples(samples, clip=clip or kind not in FLOAT_SUBTYPES)
        if not can_write(container, kind):  # sf.check_format says yes to MP3 in a WAV
            raise UnsupportedFormat(f"{fmt} cannot hold subtype {kind}")
        channels = data.shape[1] if data.ndim == 2 else 1
        bps = None if bitrate is None else _bits_per_second(bitrate)
        with atomic_output(path) as handle:
            sink = Sink(handle)
            try:
                level = None if bps is None else ogg_compression(kind, bps, channels, int(sample_rate))
                with sf.SoundFile(sink, "w", int(sample_rate), channels, kind, format=container,
                                  compression_level=level) as snd:
                    for part in sndfile_writes(container, [data]):
                        snd.write(part)
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
    data = as_float_samples(samples)
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
    codec, default_rate = FFMPEG_FORMATS[format]
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


class Sink:
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


#: Frames per write call of an Ogg file (libvorbis and libopus through libsndfile encode differently
#: for different call sizes): every Ogg writer hands its samples over in these, so a file labeled block
#: by block (:func:`labeler.media.audio_stream.write_blocks`) is the very file written from one array.
OGG_WRITE_FRAMES = 1 << 16


def sndfile_writes(container: str, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """``blocks`` as libsndfile should be handed them: as they come, or for Ogg (``container`` "OGG")
    regrouped into :data:`OGG_WRITE_FRAMES`-frame parts (the last one shorter)."""
    if container != "OGG":
        yield from blocks
        return
    held: list[np.ndarray] = []
    count = 0
    for block in blocks:
        while len(block):
            take = block[:OGG_WRITE_FRAMES - count]
            held.append(take)
            count += len(take)
            block = block[len(take):]
            if count == OGG_WRITE_FRAMES:
                yield np.concatenate(held) if len(held) > 1 else held[0]
                held, count = [], 0
    if held:
        yield np.concatenate(held) if len(held) > 1 else held[0]


#: Bit rates (kbit/s) a lossy re-encode is given: the source's, rounded up to one of these (never below it).
BITRATES = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def bitrate_at_least(bps: int | None, codec: str | None, channels: int | None, default: str) -> str:
    """The encoder setting for re-encoding a lossy stream of ``bps`` bit/s without lowering its rate.

    Parameters
    ----------
    bps : int or None
        The source stream's bit rate (bit/s); None or 0: unknown, ``default`` is returned.
    codec : str or None
        The codec the stream is written with (``"aac"``, ``"opus"``, ``"mp3"``, ``"vorbis"``...).
    channels : int or None
        Its channels (Opus's limit is per channel).
    default : str
        The setting when the rate is unknown, e.g. ``"192k"``.

    Returns
    -------
    str
        The lowest of :data:`BITRATES` at least the source's (a VBR V2 MP3 at 171 kbit/s: 192k, not
        160k), e.g. ``"128k"``. MP3 stops at 320k, the most MPEG-1 Layer III has; AAC, Opus and Vorbis
        (encoded at the VBR quality that reaches the rate: :func:`rate_args`) go above it in 32k steps,
        so a 384k stereo or 470k 7.1 AAC is not re-encoded at 320k. Opus stays within libopus's 256k a
        channel (a container's overhead can lift a mono 256k file's measured rate over it).
    """
    if not bps:
        return default
    if bps <= BITRATES[-1] * 1000 or codec not in ("aac", "opus", "vorbis"):
        kbps = next((b for b in BITRATES if b * 1000 >= bps), BITRATES[-1])
    else:
        kbps = -(-int(bps) // 32_000) * 32
    if codec == "opus" and channels:
        kbps = min(kbps, 256 * channels)
    return f"{kbps}k"


def _bits_per_second(bitrate: str | int) -> int:
    text = str(bitrate).strip().lower()
    try:
        return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)
    except ValueError:
        raise InvalidArgument(f"bitrate must be bit/s or like '128k', got {bitrate!r}") from None


def ogg_compression(subtype: str, bps: int, channels: int, rate: int) -> float:
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


def rate_args(codec: str, bitrate: str | None, channels: int, rate: int) -> list[str]:
    """ffmpeg's rate option for ``codec`` aiming at ``bitrate`` (None: the encoder's default).

    libvorbis takes a bit rate only within its mode's range for the layout (128k was refused for mono at
    16-22.05 kHz, over 320k for stereo: "encoder setup failed"), so it gets the VBR quality whose nominal
    rate reaches the bit rate (:func:`ogg_compression`), as the Ogg writer and the soundtrack pass do.
    """
    if not bitrate:
        return []
    if codec == "libvorbis":
        quality = 1.0 - ogg_compression("VORBIS", _bits_per_second(bitrate), channels, rate)
        return ["-q:a", f"{10 * quality:g}"]
    return ["-b:a", bitrate]


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
        args += ["-c:a", codec, *rate_args(codec, bitrate, channels, rate)]
        args += ["-f", muxer] if muxer else []
        args += ["-sample_fmt", sample_fmt] if sample_fmt else []
        args += ff.reproducible(path)
        args.append("file:" + os.path.abspath(tmp))
        reason = ff.feed(args, blocks, [tmp])
        if reason is not None:
            raise LabelerError(f"cannot encode {codec}: ffmpeg: {reason}")
        if metadata_from is not None and codec == "aac":
            from labeler.media.video_streams import drop_derived_keys

            # use_metadata_tags also writes the brands and creation time as keys, which ffmpeg 9 then
            # reads twice ("M4A ;M4A "); their values stay in ftyp and mvhd
            drop_derived_keys(tmp)
