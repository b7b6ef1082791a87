"""The audio watermark detector's key-free band map of a window: what the pilot and the cells are read from.

A window's power spectrogram on the embedder's frames (zero-padded, so any frequency factor of the
speed / pitch search reads its bins from one transform), the energy at the mark's bin centres, and the
map :func:`band_map` makes of it: log energies, a 2-D high-pass, a soft clip, a depth weight, the
time whitening and the harmonic comb removal. Every step reads the audio only, never the key, so the
null law of the pilot statistic (:mod:`detectors.watermark_audio`) holds whatever they do.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from labeler.watermark.audio import (
    ALPHA_MAX,
    BAND_HI,
    BIN_HZ,
    CELL,
    DEFAULT_AUDIO_STRENGTH,
    FIRST_BIN,
    MASK_BOOST,
    MASK_LO,
    MASK_SLOPE,
    N_BANDS,
    SNR_BLOCK_SECONDS,
    TIME_SLOPE,
    frame_length,
)

__all__ = ["spectrogram", "band_energy", "band_map"]

#: High-pass: the log bin energy minus its mean over this many frames x bins: across frequency only
#: (smoothing over time too subtracted part of the cell's own step; per-cell SNR 0.089 against 0.046).
DETREND = (1, 5)
#: Detrended values pass a soft clip ``CLIP * d / (CLIP + |d|)`` (log units): a transient or a gap
#: cannot dominate a sum, and large values count less than small ones (the host's log energy has heavy
#: tails, the mark's step is bounded). Against the hard clip at 1.5 of before, with SMOOTH_FRAMES:
#: mean nominal z on random 3 s of the tuning speech 7.97 -> 8.33, piano 14.98 -> 15.80.
CLIP = 1.0
#: Harmonic comb removal (per frame, across the bands, last step of the map): every component of the
#: band axis's real DFT from index COMB_FROM on whose magnitude exceeds COMB_FLOOR x the frame's median
#: is zeroed. A voiced frame's harmonics make its log spectrum a comb of period F0 / 43 Hz bins (5-7 bins
#: for voices at 200-300 Hz), which the 5-bin high-pass leaves whole and which, moving with the pitch,
#: the time whitening cannot predict: host noise many times the mark's step. The mark is white across
#: the bands, so zeroing a few components takes little of it. Key-free, so the null law holds.
COMB_FROM, COMB_FLOOR = 4, 4.0
#: Band energies are averaged over this many frames (hop 11.6 ms) before the log: the log of an average
#: of noise-like energies spreads less; a cell spans ~2.75 hops (3 frames measured worse: z 7.38).
SMOOTH_FRAMES = 2
#: Energies below this fraction of the window's mean band energy count as silence (read as 0).
FLOOR = 1e-5
#: Zero-padding factor of the detector's FFT: the mark's bins are read within 1/4 bin of their centre
#: under any frequency factor.
OVERSAMPLE = 2

# Frames per FFT call of the detector's spectrogram (bounded memory on long windows).
_SPECTRUM_BATCH = 256


def spectrogram(mono: np.ndarray, fs: int, max_factor: float) -> tuple[np.ndarray, float, float]:
    """Zero-padded power spectrogram of ``mono``: (frames, bins up to ~4 kHz), frame hop (s), bin (Hz).

    ``max_factor`` is the largest frequency factor the search reads (bins are kept up to the band's top
    times it). Frames and hop are the embedder's; the FFT is OVERSAMPLE times longer, so the energy at any
    frequency (the mark's bins after a speed or pitch change moved them by a factor) is read within
    1/(2 OVERSAMPLE) of a bin of its centre, from one transform for all frequency factors. Reading on a
    grid that misses the mark's bins mixes neighbouring cells' chips (half a bin off cost ~half of z).
    """
    n = frame_length(fs)
    hop = n // 2
    if mono.shape[0] < n:
        mono = np.pad(mono, (0, n - mono.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(mono, n)[::hop]
    win = np.hanning(n).astype(np.float32)
    nfft = OVERSAMPLE * n
    keep = min(nfft // 2 + 1, int(math.ceil(BAND_HI * max_factor * nfft / fs)) + 2)
    power = np.empty((len(frames), keep), np.float32)
    # In batches of frames: the whole window's complex spectrum, all nfft / 2 bins in float64, would be
    # ~190 MB for a 60 s window at 44.1 kHz, of which ~4 MB (the bins up to ~4 kHz) are kept.
    for a in range(0, len(frames), _SPECTRUM_BATCH):
        spec = np.fft.rfft(frames[a:a + _SPECTRUM_BATCH] * win, n=nfft, axis=1)[:, :keep]
        power[a:a + len(spec)] = spec.real ** 2 + spec.imag ** 2
    return power, hop / fs, fs / nfft


def band_energy(power: np.ndarray, bin_hz: float, freq: float) -> np.ndarray:
    """Energy at the mark's bin centres (frames, N_BANDS) under frequency factor ``freq``."""
    centres = (FIRST_BIN + np.arange(N_BANDS)) * BIN_HZ * freq / bin_hz
    idx = np.minimum(np.round(centres).astype(np.int64), power.shape[1] - 1)
    return power[:, idx]


def band_map(power: np.ndarray, bin_hz: float, freq: float, hop_s: float) -> np.ndarray:
    """Detrended, clipped, depth-weighted log band energies (frames, N_BANDS) at frequency factor ``freq``.
    """
    energy = band_energy(power, bin_hz, freq)
    floor = np.float32(FLOOR) * max(float(energy.mean()), 1e-20)
    log = np.log(energy + floor)
    d = np.log(cv2.blur(energy, (1, SMOOTH_FRAMES), borderType=cv2.BORDER_REFLECT) + floor)
    d -= cv2.blur(d, (DETREND[1], DETREND[0]), borderType=cv2.BORDER_REFLECT)
    # matched filter, half way: the embedder's modulation depth differs up to 20x between cells (its
    # masking rule), and the detector can re-estimate it from the received energies (key-independent,
    # so the null law is unchanged). Weighting by its square root measured best: z on speech +8-12 %,
    # on music -2-6 % (full weight: speech +10-15 %, music -4-11 %).
    d = _soft_clip(d) * _sqrt_depth(log, energy, hop_s)
    # last, what neither the whitening (a comb held from cell to cell) nor the high-pass removed: a comb
    # that moves with the pitch (removed first, it also cost held music 0.8-2 of its z)
    return _decomb(_time_whiten(d, hop_s))


def _soft_clip(d: np.ndarray) -> np.ndarray:
    """``CLIP * d / (CLIP + |d|)`` in place (np.tanh measured 20x slower for the same z)."""
    mag = np.abs(d)
    mag += np.float32(CLIP)
    d *= np.float32(CLIP)
    d /= mag
    return d


def _decomb(d: np.ndarray) -> np.ndarray:
    """``d`` (frames, N_BANDS) with each frame's outstanding components across the bands removed (see
    :data:`COMB_FLOOR`): the harmonic comb of voiced speech and of held notes.

    One batch of real DFTs along the bands (cv2, packed layout Re0, Re1, Im1, ..., Re(n/2): ~6x numpy's
    rfft + median here), the median of each frame's power from COMB_FROM on by partition.
    """
    rows, n = d.shape
    spec = cv2.dft(np.ascontiguousarray(d, dtype=np.float32), flags=cv2.DFT_ROWS)
    power = np.empty((rows, n // 2 + 1), dtype=np.float32)
    power[:, 0] = spec[:, 0] * spec[:, 0]
    power[:, 1:-1] = spec[:, 1:-1:2] * spec[:, 1:-1:2] + spec[:, 2:-1:2] * spec[:, 2:-1:2]
    power[:, -1] = spec[:, -1] * spec[:, -1]
    k = (power.shape[1] - COMB_FROM) // 2
    median = np.partition(power[:, COMB_FROM:], k, axis=1)[:, k : k + 1]
    drop = power > np.float32(COMB_FLOOR * COMB_FLOOR) * median
    drop[:, :COMB_FROM] = False  # the high-pass already took the lowest; the envelope is not a comb
    if not drop.any():
        return d
    spec[:, 1:-1][np.repeat(drop[:, 1:-1], 2, axis=1)] = 0.0
    spec[:, -1][drop[:, -1]] = 0.0
    return cv2.idft(spec, flags=cv2.DFT_ROWS | cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)


def _time_whiten(d: np.ndarray, hop_s: float) -> np.ndarray:
    """Subtract from every frame the least-squares share of its neighbours one cell before and after.

    Sustained content (a held piano chord, a drone) keeps its across-frequency pattern from cell to cell,
    and that pattern is host noise to the detector. The frames one cell away lie in the neighbouring
    cells, whose chips are independent of this cell's, so the prediction removes host, not mark. The
    weight ``beta`` (0-1) is fitted on the window's own map without the key, so the null law of the
    pilot statistic is unchanged. Measured on 3 s excerpts: piano z 7.9 -> 11.0; speech, whose
    spectrum changes within 32 ms, gets beta ~0.2 and is hardly changed.
    """
    lag = int(math.ceil(CELL / hop_s))
    if d.shape[0] <= 2 * lag:
        return d
    s = np.empty_like(d)
    s[lag:-lag] = d[: -2 * lag] + d[2 * lag:]
    s[lag:-lag] *= np.float32(0.5)
    s[:lag] = d[lag: 2 * lag]
    s[-lag:] = d[-2 * lag: -lag]
    den = float(np.einsum("ij,ij->", s, s))
    beta = min(1.0, max(0.0, float(np.einsum("ij,ij->", d, s)) / den)) if den > 0 else 0.0
    if beta > 0:
        s *= np.float32(beta)
        d -= s
    return d


def _sqrt_depth(log: np.ndarray, energy: np.ndarray, hop_s: float) -> np.ndarray:
    """Square root of the embedder's modulation depth per (frame, band), re-estimated from the received
    energies: the rule of :func:`labeler.watermark.audio._mark_frames` at the default strength, in the
    log domain (one ``exp``), with the SNR blocks counted from the window's start (the embedder's start
    at the file's: close enough for a weight)."""
    ref = energy.mean(axis=1)
    block = max(1, int(round(SNR_BLOCK_SECONDS / hop_s)))
    nb = -(-ref.shape[0] // block)
    pad = nb * block - ref.shape[0]
    bmean = np.repeat(np.pad(ref, (0, pad)).reshape(nb, block).mean(axis=1), block)[: ref.shape[0]]
    lref = np.log(np.maximum(ref, 1e-30)).astype(np.float32)
    lo, hi = np.float32(math.log(MASK_LO)), np.float32(math.log(MASK_BOOST))
    tboost = np.clip(-TIME_SLOPE * (lref - np.log(np.maximum(bmean, 1e-30))), lo, hi).astype(np.float32)
    lb = np.float32(-MASK_SLOPE) * (log - lref[:, None])
    np.minimum(lb, hi, out=lb)
    np.maximum(lb, lo, out=lb)
    lb += tboost[:, None] + np.float32(math.log(DEFAULT_AUDIO_STRENGTH))
    np.minimum(lb, np.float32(math.log(ALPHA_MAX)), out=lb)
    lb *= np.float32(0.5)
    return np.exp(lb)
