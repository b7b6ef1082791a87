"""The audio watermark detector's key-free band map of a window: what the pilot and the cells are read from.

A window's power spectrogram on the embedder's frames (zero-padded, so any frequency factor of the
speed / pitch search reads its bins from one transform), the energy at the mark's bin centres, and the
map :func:`band_map` makes of it: log energies, a 2-D high-pass, the pitch-adaptive harmonic
predictor, a soft clip, a depth weight and the time whitening. Every step reads the audio only, never
the key, so the null law of the pilot statistic (:mod:`detectors.watermark_audio`) holds whatever they do.
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
#: Pitch-adaptive harmonic predictor (per frame, on the detrended log energies, before the soft clip):
#: the frame's harmonic spacing P (bins) is the peak of its normalised autocorrelation across the bands
#: at lags PITCH_LAGS (F0 ~110-345 Hz; parabolic sub-bin peak); where that peak reaches PITCH_VOICED the
#: frame counts as voiced and every bin loses the mean of the bins P below and above it (linearly
#: interpolated). A voice's harmonics 3-7 bins apart leave the bins between them leakage that moves with
#: the pitch: host noise the 5-bin high-pass keeps, which the bins one period away predict; the mark's
#: chips there are independent of this bin's, so the step stays. Key-free: the null law holds. It
#: replaced the comb removal of 2026-12-06 (a frame's outstanding components of the real DFT across the
#: bands zeroed, the map's last step; removed from the code): 3 s nominal presence on 8 espeak-ng
#: tuning voices x 2 keys (320 excerpts) 245 -> 301 (comb removal kept after it: 292); tuning piano /
#: speech / synthesized music median z -0.4 / +0.2 / -0.3. Lags from 3.5 lost the 120 Hz comb of
#: ``test_harmonic_comb_is_removed_before_the_pilot_is_read``; lags up to 12 or a threshold of 0.3 cost
#: the tuning piano 0.4-1.2 of its z; a weight of 0.75 or 0.5 on the prediction gained less.
PITCH_LAGS, PITCH_VOICED = (2.5, 8.0), 0.4
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
    d = _harmonic_predict(d)
    # matched filter, half way: the embedder's modulation depth differs up to 20x between cells (its
    # masking rule), and the detector can re-estimate it from the received energies (key-independent,
    # so the null law is unchanged). Weighting by its square root measured best: z on speech +8-12 %,
    # on music -2-6 % (full weight: speech +10-15 %, music -4-11 %).
    d = _soft_clip(d) * _sqrt_depth(log, energy, hop_s)
    return _time_whiten(d, hop_s)


def _harmonic_predict(d: np.ndarray) -> np.ndarray:
    """``d`` (frames, N_BANDS) minus, in voiced frames, the mean of the bins one harmonic spacing away
    (see :data:`PITCH_LAGS`); vectorised over frames (a few lags and two gathers, no loop over frames).
    """
    rows, n = d.shape
    lo, hi = PITCH_LAGS
    k0, k1 = int(math.floor(lo)), int(math.ceil(hi))
    x = d - d.mean(axis=1, keepdims=True)
    # unbiased autocorrelation at lags k0 - 1 .. k1 + 1 (the neighbours for the parabolic peak), over lag 0
    lags = np.arange(k0 - 1, k1 + 2)
    r = np.empty((rows, lags.size), np.float32)
    for i, k in enumerate(lags):
        r[:, i] = np.einsum("ij,ij->i", x[:, : n - k], x[:, k:]) / np.float32(n - k)
    r /= np.maximum(np.einsum("ij,ij->i", x, x) / np.float32(n), np.float32(1e-12))[:, None]
    j = np.argmax(r[:, 1:-1], axis=1) + 1
    a, b, c = (np.take_along_axis(r, (j + o)[:, None], 1)[:, 0] for o in (-1, 0, 1))
    curv = a - 2 * b + c
    shift = np.clip(np.where(curv < 0, 0.5 * (a - c) / np.where(curv < 0, curv, -1), 0), -0.5, 0.5)
    period = lags[j] + shift
    voiced = (b >= PITCH_VOICED) & (period >= lo) & (period <= hi)
    if not voiced.any():
        return d
    dv, pv = d[voiced], period[voiced, None].astype(np.float32)
    bins = np.arange(n, dtype=np.float32)[None]
    pred = np.zeros_like(dv)
    count = np.zeros_like(dv)
    for pos in (bins - pv, bins + pv):
        inside = (pos >= 0) & (pos <= n - 1)
        pos = np.clip(pos, 0, n - 1)
        i0 = np.minimum(pos.astype(np.int64), n - 2)
        frac = pos - i0
        val = np.take_along_axis(dv, i0, 1) * (1 - frac) + np.take_along_axis(dv, i0 + 1, 1) * frac
        pred += np.where(inside, val, 0)
        count += inside
    d[voiced] = dv - pred / np.maximum(count, 1)
    return d


def _soft_clip(d: np.ndarray) -> np.ndarray:
    """``CLIP * d / (CLIP + |d|)`` in place (np.tanh measured 20x slower for the same z)."""
    mag = np.abs(d)
    mag += np.float32(CLIP)
    d *= np.float32(CLIP)
    d /= mag
    return d


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
