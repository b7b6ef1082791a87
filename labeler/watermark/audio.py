"""Invisible audio watermark: keyed band-energy modulation in the STFT domain, shared by embed and detect.

The mark multiplies the short-time spectrum of the audio, in 80 bands of one FFT bin (43.07 Hz) between
301 and 3704 Hz, by ``1 + a * c`` for time-frequency *cells* of 32 ms x one bin: ``c = +-1`` a key-derived
chip, ``a`` the perceptual depth (relative to the bin's own energy, more in bins and frames below their
frame's / block's mean, nothing in digital silence), with every ~3 s block's mark kept ``snr_db`` below
the block's energy. A *period* of 96 cells (3.07 s) x 80 bins holds the pilot (40 % of the cells,
payload-independent) and the 258 coded bits of the 64-bit payload (:mod:`labeler.watermark.payload`);
it repeats for the whole file, so any excerpt can be read. The detector (``detectors.watermark_audio``)
measures log bin energies, folds the periods, finds the period's phase with one FFT cross-correlation
and searches replay speed, tempo and pitch factors. Design, measurements and the false-positive
theory: ``docs/watermark-audio.md``.

Everything here is a pure function of its arguments (no global state), vectorised over frames and
bins; the only Python loop is over chunks of frames, which bounds memory (``CHUNK_BLOCKS``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from labeler.watermark.payload import (
    CODED_BITS,
    Layout,
    TooSmallForWatermark,
    WatermarkError,
    check_embed_key,
    check_key,
    check_payload,
    conv_encode,
    info_bits,
    make_layout,
)

__all__ = [
    "embed_audio",
    "embed_audio_blocks",
    "AudioEmbedder",
    "DEFAULT_SNR_DB",
    "DEFAULT_AUDIO_STRENGTH",
    "MIN_SECONDS",
    "MIN_DETECT_SECONDS",
    "MAX_FLOAT_SAMPLE",
    "UnreadableSamples",
    "as_float_pcm",
    "seconds_down",
    "band_matrix",
    "frame_length",
]

#: Marked band (Hz): inside what an 8 kHz resample, a 4 kHz low-pass and speech codecs keep.
#: Every band is one FFT bin of BIN_HZ (the bin of 1024 samples at 44.1 kHz); all rates use frames of
#: about fs / BIN_HZ samples, so a mark read at another rate (resampled, or embedded at 48 kHz and read
#: at 44.1 kHz) falls on the same bins. Reading on another bin grid mixes neighbouring bands' chips:
#: measured on speech, frames of 30 ms instead of 23.2 ms halved the pilot z (11.5 -> 5.2).
BIN_HZ = 44100.0 / 1024.0
#: Bands: bins 7 .. 86 (301-3704 Hz); the band edges are half-way between bins.
FIRST_BIN, N_BANDS = 7, 80
BAND_LO, BAND_HI = (FIRST_BIN - 0.5) * BIN_HZ, (FIRST_BIN + N_BANDS - 0.5) * BIN_HZ
#: Time grid of the detector (s) and cell length in ticks: a cell is 32 ms.
TICK = 0.016
CELL_TICKS = 2
CELL = TICK * CELL_TICKS
#: Cells per period (time) and period length (s): 96 x 32 ms = 3.072 s.
PERIOD_CELLS = 96
PERIOD = PERIOD_CELLS * CELL
#: Fraction of the period's cells that carry the pilot (zero-bit presence and synchronisation). Presence
#: z grows with sqrt(PILOT_FRACTION), the payload's margin with sqrt(1 - PILOT_FRACTION): 0.4 (was 0.25,
#: format v1) took presence on random 3 s of speech from about half to ~all (mean z 6.1 -> 8.1) and
#: kept the 10 s payload (the per-bit margin -11 %, more than made up by the depth rule below).
PILOT_FRACTION = 0.4
#: Default strength: relative amplitude change of a band at the frame's mean band energy (the cap;
#: the SNR limit below usually sets the level on speech).
DEFAULT_AUDIO_STRENGTH = 0.5
#: Default SNR floor (dB): each block of ~3 s gets its mark scaled down until marked-minus-original is
#: at least this far below the original, so the whole file is too (the limit is measured on the
#: overlap-added mark, so the file's SNR comes out at this value: 30.5 measured on every benchmark file).
DEFAULT_SNR_DB = 30.5
#: Largest relative change of one band in one cell (keeps the gain 1 + a*c positive, within +4.6 / -40
#: dB with RISE; only bands well below the frame's mean, in frames below the block's mean, get it). The
#: cap bound often: 0.7 -> 0.95 (with MASK_BOOST 4 -> 8, MASK_SLOPE 0.45 -> 0.7) raised z on 3 s of
#: speech by 25 % at the same SNR, a deep notch in a quiet bin being the cheapest large change of its log
#: energy; 0.95 -> 0.99 (2026-12-07, with MASK_LO and RISE below) a little more (tuning voices +0.1-0.2).
ALPHA_MAX = 0.99
#: A chip +1 raises its band by ``RISE`` times the depth a chip -1 lowers it by. A raise costs as much
#: energy as a cut of the same depth but moves the band's log energy far less (log 1.7 against log
#: 0.01), so the energy goes where the detector's log-domain sum sees it; the SNR limit gives back what a
#: smaller raise saves. Measured 2026-12-07 with MASK_LO 0.1 and ALPHA_MAX 0.99, median 3 s pilot z on
#: the tuning set (5 espeak-ng voices other than the benchmark's, the corpus speech and piano): RISE 1
#: -> 0.7 +0.1-0.2 on speech, +0.7 on piano; 0.5 lost speech again.
RISE = 0.7
#: Seconds per SNR block (rounded to whole frames).
SNR_BLOCK_SECONDS = 3.0
#: A band's amplitude factor is ``clip((E / E_mean) ** -MASK_SLOPE, MASK_LO, MASK_BOOST)``, E_mean the
#: frame's mean band energy: bands below the frame's mean get more (they cost little energy and sit
#: under the louder bands' masking), the loudest bands less (they dominate the SNR). The detector's
#: z per unit of mark energy went up 2.5-3x against a flat factor (30 dB SNR: music 12 -> 34,
#: speech 3.7 -> 11). The energy-optimal slope for the detector's log-domain sum is 1 (depth ~ 1/E);
#: 0.7 with the larger boost measured as well as 1 and keeps the loud bins' share. MASK_LO 0.2 -> 0.1
#: (2026-12-07): the loudest bands and frames (over ~10 dB above the mean) give up part of their share,
#: which the SNR limit hands to the bands their loudness masks: median 3 s pilot z on the tuning set
#: +0.4 on the female voices, +0.6 on the corpus speech, +0.4 on piano (0.05 and 0.02 measured the same:
#: the floor then hardly binds).
MASK_LO, MASK_BOOST, MASK_SLOPE = 0.1, 8.0, 0.7
#: The same across frames, against the SNR block's mean frame energy (0.5 -> 0.8: speech z +4 %, the
#: mark in the quietest 10 % of frames 2 dB louder, still 46-53 dB below the file's mean power).
TIME_SLOPE = 0.8
#: Shortest input (s) that embedding accepts: one cell is the least that carries anything.
MIN_SECONDS = 1.0
#: Shortest excerpt (s) the detector (``detectors.watermark_audio``) reads: below this nothing is decided
#: ("too short"), so a mark embedded in shorter audio cannot be verified. Here so that the labeler can
#: warn without importing the detectors.
MIN_DETECT_SECONDS = 1.5
#: Sample rates accepted (Hz).
MIN_RATE, MAX_RATE = 8000, 192000
#: An (a, b) array with b > a and more than this many "channels" is taken for (channels, n) given by
#: mistake and refused (no audio format carries that many channels; ffmpeg's layouts stop at 64).
_TRANSPOSED_CHANNELS = 64
#: Largest float sample magnitude accepted. Float PCM is nominally [-1, 1]; integer-scaled floats (+-2**31)
#: still work (the mark is relative), but from ~1e18 the float32 band energies overflow and the mark is
#: NaN. 1e12 leaves a factor 1e4 in energy (measured: 1e14 square waves at 192 kHz, 8 channels, mark fine).
MAX_FLOAT_SAMPLE = 1e12
#: SNR blocks per processing chunk (bounds the temporary arrays to a few MB whatever the file length).
CHUNK_BLOCKS = 1

#: Layout label (v2: PILOT_FRACTION 0.4; v1 marks are not read by this version).
_LABEL = "audio-bandenergy-v2"


#: Band edges (Hz), one bin each. Many small cells beat fewer large ones: the host's log-energy spread
#: per cell is about the same for both, so the pilot's z grows with the square root of the number of
#: cells (measured: 80 linear bands x 32 ms gave z 7-10 on 24-32 s of speech / music where 24 mel bands
#: x 64 ms gave 2-3).
BAND_EDGES = BAND_LO + BIN_HZ * np.arange(N_BANDS + 1)


class UnreadableSamples(WatermarkError):
    """Float samples the mark cannot be computed on: NaN, inf, or beyond +-:data:`MAX_FLOAT_SAMPLE`.

    The detector reports these as "not decided" (``found=False`` with the message as ``reason``) rather
    than raising, as it does for silence and short input; the embedder refuses them.
    """


@lru_cache(maxsize=64)
def frame_length(sample_rate: int) -> int:
    """STFT frame (samples, even, ~23.2 ms): ``sample_rate / BIN_HZ`` within 0.15 %, the length with the
    smallest largest prime factor there (FFT speed); hop is half. 48 kHz: 1116 (bins 43.01 Hz)."""
    ideal = sample_rate / BIN_HZ
    lo, hi = int(math.floor(ideal * 0.9985)), int(math.ceil(ideal * 1.0015))
    cands = [n for n in range(lo, hi + 1) if n % 2 == 0] or [2 * int(round(ideal / 2))]
    return min(cands, key=lambda n: (_largest_prime(n), abs(n - ideal)))


def _largest_prime(n: int) -> int:
    best, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            best, n = p, n // p
        p += 1
    return max(best, n) if n > 1 else best


@lru_cache(maxsize=64)
def _window(n: int) -> np.ndarray:
    # sqrt of the periodic Hann window: analysis x synthesis = Hann, which sums to 1 at 50 % overlap
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def band_of_bins(sample_rate: int, n: int, freq_scale: float = 1.0) -> np.ndarray:
    """Band index (0..N_BANDS-1) of each rfft bin, -1 outside the marked band.

    ``freq_scale`` is received / embedded frequency (a pitch or replay-speed change moves a band's
    content to ``freq_scale`` times its frequency).
    """
    f = np.arange(n // 2 + 1) * (sample_rate / n) / freq_scale
    idx = np.searchsorted(BAND_EDGES, f, side="right") - 1
    return np.where((f >= BAND_EDGES[0]) & (f < BAND_EDGES[-1]), idx, -1)


def band_matrix(sample_rate: int, n: int, freq_scale: float = 1.0) -> tuple[int, int, np.ndarray]:
    """(lo, hi, B): bins ``lo:hi`` cover the band; ``P[:, lo:hi] @ B`` gives band energies (float32)."""
    idx = band_of_bins(sample_rate, n, freq_scale)
    inside = np.flatnonzero(idx >= 0)
    if inside.size == 0:
        raise WatermarkError(f"sample rate {sample_rate} Hz has no room for the 300-3800 Hz band")
    lo, hi = int(inside[0]), int(inside[-1]) + 1
    mat = np.zeros((hi - lo, N_BANDS), dtype=np.float32)
    mat[np.arange(hi - lo), idx[lo:hi]] = 1.0
    return lo, hi, mat


@dataclass(frozen=True)
class Pattern:
    """One key's chips for one period: ``chips[cell, band]`` in {-1, 0, +1}.

    ``pilot_chips`` has only the pilot cells (data cells 0); ``layout`` maps cells (row-major
    ``cell * N_BANDS + band``) to pilot / coded bits.
    """

    chips: np.ndarray
    pilot_chips: np.ndarray
    layout: Layout


def make_pattern(key: bytes, payload: bytes | None) -> Pattern:
    """The period's chips for ``key``; with ``payload`` None only the pilot (for the detector)."""
    key = check_key(key) if payload is None else check_embed_key(key)
    layout = make_layout(key, _LABEL, PERIOD_CELLS * N_BANDS, PILOT_FRACTION)
    code = None if payload is None else conv_encode(info_bits(check_payload(payload)))
    chips = layout.chips(code).reshape(PERIOD_CELLS, N_BANDS)
    return Pattern(chips, layout.chips(None).reshape(PERIOD_CELLS, N_BANDS), layout)


def as_float_pcm(samples: np.ndarray, allow_empty: bool = False) -> tuple[np.ndarray, bool]:
    """``samples`` as float32 (n, channels) in [-1, 1] units, and whether the input was integer PCM.

    Raises :class:`WatermarkError` for a non-array, an empty array (unless ``allow_empty``: a stream's
    empty block), a shape other than (n,) or (n, channels), (channels, n) given by mistake (more than 64
    "channels", more than samples), 64-bit integers (int64 / uint64: no PCM range to scale by), or
    :class:`UnreadableSamples` for float input with NaN / inf or beyond +-:data:`MAX_FLOAT_SAMPLE`.
    """
    a = np.asarray(samples)
    if a.ndim not in (1, 2) or (a.size == 0 and not allow_empty) or (a.ndim == 2 and a.shape[1] < 1):
        raise WatermarkError(f"audio must be shaped (n,) or (n, channels), not {a.shape}")
    if a.ndim == 2 and a.shape[1] > max(a.shape[0], _TRANSPOSED_CHANNELS):
        # (8, n) read as n channels of 8 samples was "too short" (0.00 s) or, in a stream, a silent mix
        raise WatermarkError(f"audio shaped {a.shape} would have {a.shape[1]} channels: samples must be "
                             "(n,) or (n, channels); transpose it (samples.T)")
    is_int = a.dtype.kind in "iu"
    if is_int and a.dtype.itemsize > 4:
        # No PCM format has 64-bit integers: scaled by their range, 16-bit values held in int64 become
        # ~1e-15, i.e. silence, and no mark. Refuse rather than guess which range was meant.
        raise WatermarkError(f"{a.dtype} audio samples are not supported: convert them to int16 or int32 "
                             "(their PCM range) or to float in [-1, 1]")
    if is_int:
        info = np.iinfo(a.dtype)
        scale = np.float32(2.0 / (float(info.max) - float(info.min) + 1.0))
        mid = (float(info.max) + float(info.min) + 1.0) / 2.0  # 0 for signed, 2**(bits-1) for unsigned
        x = (a.astype(np.float32) - np.float32(mid)) * scale
    elif a.dtype.kind == "f":
        # max / min propagate NaN and keep inf: one check for all three, without a temporary array; on
        # the input, so that 1e300 in float64 is named as such, not as the inf of its float32
        peak = max(float(a.max()), -float(a.min())) if a.size else 0.0
        if not math.isfinite(peak):
            raise UnreadableSamples("audio contains NaN or infinite samples")
        if peak > MAX_FLOAT_SAMPLE:
            # finite but absurd (a float WAV of 1e20s): the band energies overflow float32, the mark came
            # out all NaN, which the writer turned into a silent file reported as labeled
            raise UnreadableSamples(f"audio samples reach {peak:.3g}: float PCM is nominally in [-1, 1] "
                                    f"and cannot exceed {MAX_FLOAT_SAMPLE:g}")
        x = a.astype(np.float32, copy=False)
    else:
        raise WatermarkError(f"audio samples must be integer or float, not {a.dtype}")
    return (x[:, None] if x.ndim == 1 else x), is_int


def check_rate(sample_rate: int) -> int:
    """``sample_rate`` as int, or :class:`WatermarkError` outside 8-192 kHz."""
    try:
        fs = int(sample_rate)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float("inf")
        raise WatermarkError(f"sample rate must be a number of Hz, not {sample_rate!r}") from None
    if not MIN_RATE <= fs <= MAX_RATE or fs != sample_rate:
        raise WatermarkError(f"sample rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, "
                             f"not {sample_rate!r}")
    return fs


def _chip_rows(pattern: np.ndarray, frames: np.ndarray, hop: int, fs: int) -> np.ndarray:
    """Chips (frames, N_BANDS) of the cells holding each frame's centre (frame f is centred at f*hop)."""
    cell = np.floor(frames * (hop / fs) / CELL).astype(np.int64) % PERIOD_CELLS
    return pattern[cell]


def _mark_frames(spec: np.ndarray, chips: np.ndarray, lo: int, hi: int, bmat: np.ndarray,
                 bidx: np.ndarray, strength: float, block: int) -> np.ndarray:
    """Mark spectrum ``(G - 1) X`` of frames ``spec`` (complex64, (F, bins)); zero outside bins lo:hi.

    The gain of a band is ``1 + strength * clip((E_b / E_mean) ** -MASK_SLOPE, MASK_LO, MASK_BOOST) * chip``
    (at most ALPHA_MAX away from 1; a chip +1 counts RISE): relative to the band's own energy, so it is
    as loud as the content it rides on and vanishes in silence; more in bands below the frame's mean,
    less in the loudest.
    """
    band = spec[:, lo:hi]
    energy = (band.real ** 2 + band.imag ** 2) @ bmat  # (F, N_BANDS)
    ref = energy.mean(axis=1, keepdims=True)
    rel = np.where(energy > 0, energy / np.maximum(ref, 1e-30), 1.0)
    boost = np.clip(np.maximum(rel, 1e-12) ** np.float32(-MASK_SLOPE), MASK_LO, MASK_BOOST)
    # the same rule across time: frames below their SNR block's mean band energy get more (cheap in
    # energy; the SNR is decided by the loud frames), silent frames nothing (the gain is relative)
    nb = -(-ref.shape[0] // block)
    pad = nb * block - ref.shape[0]
    bmean = np.repeat(np.pad(ref[:, 0], (0, pad)).reshape(nb, block).mean(axis=1), block)[: ref.shape[0]]
    trel = np.maximum(ref[:, 0] / np.maximum(bmean, 1e-30), 1e-12)
    boost *= np.clip(trel ** np.float32(-TIME_SLOPE), MASK_LO, MASK_BOOST)[:, None]
    coef = np.clip(np.float32(strength) * boost, 0.0, ALPHA_MAX).astype(np.float32)
    coef *= np.where(chips > 0, np.float32(RISE), chips).astype(np.float32)
    out = np.zeros_like(spec)
    out[:, lo:hi] = band * coef[:, bidx]
    return out


def _block_scale(host: np.ndarray, mark: np.ndarray, block: int, snr_db: float) -> np.ndarray:
    """Per-frame factor (<= 1) that brings every ``block`` frames' mark energy to ``snr_db`` below the host.

    ``host`` and ``mark`` are per-frame energies of the windowed frames (the squared window sums to
    1 at 50 % overlap, so they add up to the signals' energies).
    """
    nb = -(-host.shape[0] // block)
    pad = nb * block - host.shape[0]
    h = np.pad(host, (0, pad)).reshape(nb, block).sum(axis=1)
    m = np.pad(mark, (0, pad)).reshape(nb, block).sum(axis=1)
    limit = h * np.float32(10.0 ** (-snr_db / 10.0))
    scale = np.sqrt(np.minimum(1.0, limit / np.maximum(m, 1e-30))).astype(np.float32)
    return np.repeat(scale, block)[: host.shape[0]]


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Overlap-add of (F, 2 hop) windowed frames: (F + 1, hop) segments, segment i = frame i-1's second
    half + frame i's first half."""
    nf = frames.shape[0]
    ola = np.empty((nf + 1, hop), np.float32)
    ola[:nf] = frames[:, :hop]
    ola[nf] = 0.0
    ola[1:] += frames[:, hop:]
    return ola


def _number(value: float, name: str) -> float:
    """``value`` as float, or :class:`WatermarkError` for anything but a real number (a str, a bool,
    None and a list used to pass ``float()`` or raise TypeError from it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WatermarkError(f"audio watermark {name} must be a number, not {value!r}")
    return float(value)


def seconds_down(frames: int, rate: int) -> str:
    """``frames / rate`` seconds as text with two decimals, rounded down (a length just under a limit must
    not read as the limit: "1.00 s < 1 s"), in integer arithmetic: ``floor(frames / rate * 100)`` read
    16240 samples at 8 kHz (2.03 s) as 2.02 s, the float quotient falling just below 203."""
    return f"{int(frames) * 100 // int(rate) / 100:.2f}"


def _check_strength(strength: float) -> float:
    s = _number(strength, "strength")
    if not 0.0 < s <= 1.0:
        raise WatermarkError(f"audio watermark strength must be in (0, 1], not {strength}")
    return s


class AudioEmbedder:
    """Streaming embedder: feed blocks of any length, get marked blocks back (delayed by one hop).

    Memory is bounded by the block size plus one STFT frame, whatever the file length; the output
    of feeding a file in blocks equals :func:`embed_audio` on the whole file (up to float rounding).

    Parameters
    ----------
    sample_rate : int
        8000-192000 Hz.
    channels : int
        Channel count of the blocks (the same mark goes on every channel, so a downmix keeps it).
    payload : bytes
        8 bytes.
    key : bytes
        Secret key (non-empty).
    strength : float
        Relative band amplitude, (0, 1]; default :data:`DEFAULT_AUDIO_STRENGTH`.

    snr_db : float
        SNR floor per ~3 s block (dB, 10-80); default :data:`DEFAULT_SNR_DB`.

    Use ``out = emb.push(block)`` for each float32 (n, channels) block, then ``emb.flush()`` for the
    rest; the concatenated outputs have exactly as many samples as the inputs. Output lags input by
    up to one chunk (``CHUNK_BLOCKS`` SNR blocks, ~3 s): frames are marked in whole SNR blocks so that
    the result does not depend on how the input was cut into blocks.
    """

    def __init__(self, sample_rate: int, channels: int, payload: bytes, *, key: bytes,
                 strength: float = DEFAULT_AUDIO_STRENGTH, snr_db: float = DEFAULT_SNR_DB) -> None:
        self.fs = check_rate(sample_rate)
        # 2.7 became 2 and "2" was taken: a channel count is a whole number
        if isinstance(channels, bool) or not isinstance(channels, numbers.Integral):
            raise WatermarkError(f"audio channel count must be an integer, not {channels!r}")
        self.channels = int(channels)
        if self.channels < 1:
            raise WatermarkError("audio must have at least one channel")
        self.strength = _check_strength(strength)
        if not 10.0 <= _number(snr_db, "snr_db") <= 80.0:
            raise WatermarkError(f"audio watermark snr_db must be in [10, 80], not {snr_db}")
        self.snr_db = float(snr_db)
        self.pattern = make_pattern(key, payload).chips.astype(np.float32)
        self.n = frame_length(self.fs)
        self.hop = self.n // 2
        self.lo, self.hi, self.bmat = band_matrix(self.fs, self.n)
        self.bidx = band_of_bins(self.fs, self.n)[self.lo:self.hi]
        self.block = max(1, int(round(SNR_BLOCK_SECONDS * self.fs / self.hop)))  # frames per SNR block
        # the input not yet emitted starts with one hop of zeros (so that sample 0 is covered by two
        # frames) and frame f covers buffer samples f*hop .. f*hop + n; the mark's overlap-add tail
        self._buf = np.zeros((self.hop, self.channels), np.float32)
        self._tail = np.zeros(self.hop, np.float32)
        self._frame0 = 0  # index of the next frame to compute
        self._pending_head = self.hop  # leading padding still to drop from the output
        self._n_in = self._n_out = 0
        self._flushed = False
        self._clip = False  # integer blocks were pushed: the output is clipped to [-1, 1] as embed_audio's

    def push(self, block: np.ndarray) -> np.ndarray:
        """Mark a (n, channels) block; returns the marked samples that are complete so far (float32).

        ``block`` is float PCM in [-1, 1] or integer PCM (scaled as :func:`embed_audio` does, and, as
        there, the output clipped to [-1, 1] once an integer block was pushed), shaped (n, channels), or
        (n,) for a mono embedder; an empty block is allowed (nothing comes out).

        Raises
        ------
        WatermarkError
            Another channel count than the embedder's, a bad shape or dtype, NaN / inf, or a push after
            :meth:`flush` (the stream has ended: its padding would land mid-stream).
        """
        if self._flushed:
            raise WatermarkError("AudioEmbedder.push after flush(): the stream has ended; "
                                 "start a new AudioEmbedder")
        # A (n, 2) block into a mono embedder, (n,) or (n, 3) into a stereo one, (2, n) by mistake: each
        # used to be reshaped to (-1, channels), interleaving samples into a wrong signal; integer PCM
        # went in unscaled (int16 values as floats of +-32768)
        block, is_int = as_float_pcm(block, allow_empty=True)
        # integer PCM comes back clipped to [-1, 1], as from embed_audio: unclipped, a full-scale int16
        # square wave came out at 1.115 (0.115 away from the whole-file result), which wraps around
        # when scaled back to int16
        self._clip = self._clip or (is_int and block.shape[0] > 0)
        if block.shape[0] == 0:  # an empty block of any width is nothing
            block = block.reshape(-1, self.channels)  # (0, channels)
        if block.shape[1] != self.channels:
            raise WatermarkError(f"audio block has {block.shape[1]} channel(s); this AudioEmbedder was made "
                                 f"for {self.channels}")
        return self._add(block)

    def _add(self, block: np.ndarray) -> np.ndarray:
        """:meth:`push` for a block already checked and converted: float32 (n, channels)."""
        self._n_in += block.shape[0]
        self._buf = np.concatenate([self._buf, block])
        ready = (self._buf.shape[0] - self.hop) // self.hop  # frames whose samples are all in
        return self._emit(ready - ready % (self.block * CHUNK_BLOCKS))  # whole chunks only

    def flush(self) -> np.ndarray:
        """Emit the remaining samples (the stream is padded with zeros for its last frames); ends the
        stream (a second flush returns nothing, a push after it raises :class:`WatermarkError`)."""
        self._flushed = True
        pad = (-self._buf.shape[0]) % self.hop + self.hop
        self._buf = np.concatenate([self._buf, np.zeros((pad, self.channels), np.float32)])
        return self._emit((self._buf.shape[0] - self.hop) // self.hop)

    def _emit(self, nframes: int) -> np.ndarray:
        out = self._process(nframes)
        out = out[: max(0, self._n_in - self._n_out)]  # never more than was pushed (flush padding)
        if self._clip:
            np.clip(out, -1.0, 1.0, out=out)
        self._n_out += out.shape[0]
        return out

    def _process(self, nframes: int) -> np.ndarray:
        outs = []
        chunk = self.block * CHUNK_BLOCKS
        for f0 in range(0, nframes, chunk):
            outs.append(self._chunk(min(chunk, nframes - f0)))
        done = nframes * self.hop
        if done == 0:
            return np.zeros((0, self.channels), np.float32)
        out = np.concatenate(outs) if len(outs) > 1 else outs[0]
        if self._pending_head:
            drop = min(self._pending_head, out.shape[0])
            out = out[drop:]
            self._pending_head -= drop
        return out

    def _chunk(self, nf: int) -> np.ndarray:
        """Mark the next ``nf`` frames: returns the ``nf * hop`` oldest buffered samples, marked."""
        hop, n, ch = self.hop, self.n, self.channels
        seg = self._buf[: (nf + 1) * hop]
        # channel mean as a matrix-vector product: numpy's mean over a short last axis is ~10x slower
        mono = seg @ np.full(ch, 1.0 / ch, np.float32) if ch > 1 else seg[:, 0]
        frames = np.lib.stride_tricks.sliding_window_view(mono, n)[::hop]  # (nf, n) views, no copy
        win = _window(n)
        spec = np.fft.rfft(frames * win, axis=1)
        # frame f covers input samples (f - 1) * hop .. (f + 1) * hop: its centre is input sample f * hop
        chips = _chip_rows(self.pattern, np.arange(self._frame0, self._frame0 + nf), hop, self.fs)
        mspec = _mark_frames(spec, chips, self.lo, self.hi, self.bmat, self.bidx, self.strength, self.block)
        # the SNR floor holds per channel: the host's energy is the channels' mean (a wide stereo mix can
        # be much quieter than either channel). The mark's energy is measured after the overlap-add:
        # consecutive frames of one 32 ms cell carry the same gain on overlapping host, so their marks
        # add coherently and the sum of per-frame energies fell 0.2-0.5 dB short of the file's SNR
        blocks = seg.reshape(nf + 1, hop * ch)
        host_e = np.einsum("ij,ij->i", blocks[:nf], blocks[:nf]) / np.float32(ch)
        mark = np.fft.irfft(mspec, n, axis=1)
        mark *= win
        ola = _overlap_add(mark, hop)
        mark_e = np.einsum("ij,ij->i", ola[:nf], ola[:nf])
        mark_e[-1] += float(ola[nf] @ ola[nf])  # the tail segment: this chunk's last frame only
        scale = _block_scale(host_e, mark_e, self.block, self.snr_db)
        if scale[0] == scale[-1] and scale.min() == scale.max():  # one SNR block per chunk: one factor
            ola *= scale[0]
        else:
            mark *= scale[:, None]
            ola = _overlap_add(mark, hop)
        ola = ola.reshape(-1)
        ola[:hop] += self._tail
        out = seg[: nf * hop] + ola[: nf * hop, None]
        self._tail = ola[nf * hop:].copy()
        self._buf = self._buf[nf * hop:]
        self._frame0 += nf
        return out


def embed_audio(samples: np.ndarray, sample_rate: int, payload: bytes, *, key: bytes,
                strength: float = DEFAULT_AUDIO_STRENGTH, snr_db: float = DEFAULT_SNR_DB) -> np.ndarray:
    """Return ``samples`` carrying an inaudible watermark of ``payload`` under ``key``.

    Parameters
    ----------
    samples : ndarray, shape (n,) or (n, channels)
        float PCM (nominally [-1, 1]; NaN/inf and magnitudes over :data:`MAX_FLOAT_SAMPLE` refused) or
        integer PCM up to 32 bits (scaled to [-1, 1]: int16 / 32768, unsigned around its midpoint; int64 /
        uint64 refused). At least :data:`MIN_SECONDS` long; the detector reads :data:`MIN_DETECT_SECONDS`
        or more.
    sample_rate : int
        8000-192000 Hz.
    payload : bytes
        Exactly 8 bytes (e.g. :func:`labeler.watermark.payload_from_produce_id`).
    key : bytes
        Secret key; the same key is needed to detect.
    strength : float
        Largest relative amplitude change of a band at the frame's mean band energy, (0, 1]
        (default 0.5); the detection margin grows in proportion.
    snr_db : float
        SNR floor (dB) of every ~3 s block, 10-80 (default 30.5): the mark is scaled down where it would
        be louder. On speech this limit sets the level; on music with bass below 300 Hz the cap
        ``strength`` usually does (``docs/watermark-audio.md``: how to choose).

    Returns
    -------
    ndarray of float32
        Same shape as ``samples``; the same mark is added to every channel. Integer input comes back
        as float in [-1, 1] (clipped there so it can be written back to the same integer format).

    Raises
    ------
    WatermarkError
        Bad payload, key, strength, sample rate, shape, dtype (int64 / uint64 included), NaN/inf, or
        input shorter than 1 s.
    """
    x, is_int = as_float_pcm(samples, allow_empty=True)  # no samples: too short, as any length under 1 s
    fs = check_rate(sample_rate)
    if x.shape[0] < MIN_SECONDS * fs:
        # rounded down: 15999 samples at 16 kHz read "1.00 s < 1 s"
        raise TooSmallForWatermark(f"audio too short to carry a watermark "
                                   f"({seconds_down(x.shape[0], fs)} s < {MIN_SECONDS:g} s)")
    emb = AudioEmbedder(fs, x.shape[1], payload, key=key, strength=strength, snr_db=snr_db)
    out = np.concatenate([emb._add(x), emb.flush()])  # x is checked and converted above: not twice
    if is_int:
        np.clip(out, -1.0, 1.0, out=out)
    return out.reshape(np.shape(samples)).astype(np.float32, copy=False)


def embed_audio_blocks(blocks: Iterable[np.ndarray], sample_rate: int, channels: int, payload: bytes, *,
                       key: bytes, strength: float = DEFAULT_AUDIO_STRENGTH,
                       snr_db: float = DEFAULT_SNR_DB) -> Iterator[np.ndarray]:
    """Generator form of :class:`AudioEmbedder`: marked float32 (n, channels) blocks for input blocks
    (float or integer PCM, as :meth:`AudioEmbedder.push` takes them; empty blocks are skipped)."""
    emb = AudioEmbedder(sample_rate, channels, payload, key=key, strength=strength, snr_db=snr_db)
    for block in blocks:
        out = emb.push(block)  # push converts and checks the block (an empty one was refused here)
        if out.shape[0]:
            yield out
    tail = emb.flush()
    if tail.shape[0]:
        yield tail


assert CODED_BITS <= PERIOD_CELLS * N_BANDS * (1 - PILOT_FRACTION)
