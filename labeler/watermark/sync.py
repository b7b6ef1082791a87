"""Synchronisation: find the crop offset (cyclic shift of the folded tile) and the rescale factor.

Shift
    The folded tile is the embedded tile cyclically shifted by the crop offset modulo the tile size,
    whatever the offset (all 64 positions of the 8 x 8 grid and all block phases at once). One
    phase-only correlation with the key's pilot tile, computed by FFT, scores every shift; the
    statistic at each shift has a known null distribution (see :func:`shift_search`).

Scale
    A periodic mark makes the autocorrelation of the prefiltered image peak at the tile period. A
    rescaled image has period ``scale * tile``; :func:`scale_candidates` reads it from the
    autocorrelation along each axis (FFT of the power spectrum, cv2 float32 DFT) at the first few
    multiples of the period and returns the best few candidates for the detector to try.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Empirical widening of the null standard deviation. The phase model gives exactly unit variance (and
#: the surface's variance over all shifts is 1 by Parseval), but on large unmarked JPEG photos the
#: peak of the ``dct`` surface exceeds the Gaussian-max bound ~3-7x more often than it should at the
#: 1 %-10 % levels (kurtosis 3.0-3.3; cause not yet pinned down, see docs/watermark.md). Dividing z by
#: 1.1 makes the tail bound 10-15x more conservative there, which restores P(p <= a) <= a on the
#: 2,000-trial calibration run of benchmarks/watermark_false_positives.py.
NULL_SCALE = 1.1


@dataclass(frozen=True)
class ShiftResult:
    """Best cyclic shift of a folded tile.

    Attributes
    ----------
    dy, dx : int
        Shift (analysis samples) that aligns the folded tile: ``np.roll(folded, (-dy, -dx))``.
    z : float
        Peak score in units of its null standard deviation (a standard normal under no mark).
    shifts : int
        Number of shifts scored (the multiplicity the p-value must account for).
    """

    dy: int
    dx: int
    z: float
    shifts: int


def _weighted_pilot_spectrum(pilot: np.ndarray, grid: int = 16) -> np.ndarray:
    """rfft2 of the pilot with the DC row/column and the harmonics of a ``grid``-sample lattice removed.

    JPEG blocking (8 px luma, 16 px chroma MCUs with 4:2:0), the rounding of a block-based mark and the
    detector's own pyramid filter add energy that is periodic in both axes with period 8 or 16 px; in
    the folded tile it lands on bins whose indices are multiples of ``tile / 16`` in both axes, it adds
    up coherently over tiles and its phases are not random. Zeroing those bins (and DC) keeps the null
    distribution as modelled (measured: ``benchmarks/watermark_false_positives.py``).
    """
    n = pilot.shape[0]
    spec = np.fft.rfft2(pilot)
    step = max(1, n // grid)
    ky = np.arange(n)[:, None]
    kx = np.arange(spec.shape[1])[None, :]
    grid = (ky % step == 0) & (kx % step == 0)
    spec[grid] = 0.0
    spec[0, :] = 0.0
    spec[:, 0] = 0.0
    return spec


def shift_search(folded: np.ndarray, pilot: np.ndarray, grid: int = 16) -> ShiftResult:
    """Score every cyclic shift of ``folded`` against ``pilot`` by weighted phase-only correlation.

    With ``F`` the spectrum of the folded tile and ``P`` that of the pilot (grid bins removed), the
    score is ``s(t) = irfft2(conj(P) * F / |F|)(t)``. If no mark is present the phases of ``F`` are
    independent and uniform, and then ``s(t)`` has mean 0 and variance ``sum_k |P_k|^2 / N^2`` exactly
    (``N`` = samples per tile; derivation in ``docs/watermark.md``), and is close to normal by the
    central limit theorem. The returned ``z`` is the peak divided by that standard deviation.
    ``grid`` is the lattice period (analysis samples) whose harmonics are ignored.
    """
    n = folded.shape[0]
    spec_p = _weighted_pilot_spectrum(pilot, grid)
    spec_f = np.fft.rfft2(folded)
    unit = spec_f / np.maximum(np.abs(spec_f), 1e-12)
    surface = np.fft.irfft2(np.conj(spec_p) * unit, s=folded.shape)
    # sum over the full (Hermitian) spectrum of |P|^2 from the half spectrum rfft2 returns
    full = np.abs(spec_p) ** 2
    weight = np.full(spec_p.shape[1], 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    sigma = math.sqrt(float((full * weight).sum())) / (n * n)
    idx = int(np.argmax(surface))
    dy, dx = divmod(idx, n)
    return ShiftResult(dy=dy, dx=dx, z=float(surface.flat[idx]) / (sigma * NULL_SCALE), shifts=n * n)


def gaussian_tail(z: float) -> float:
    """P(N(0,1) > z), accurate far into the tail (asymptotic series where erfc underflows)."""
    if z < 35.0:
        return 0.5 * math.erfc(z / math.sqrt(2.0))
    return math.exp(-0.5 * z * z - math.log(z * math.sqrt(2.0 * math.pi)))


def _axis_acf(z: np.ndarray, axis: int, max_len: int) -> np.ndarray:
    """Autocorrelation of ``z`` along one axis, summed over the other (lags 0..n-1), float32.

    Only lags along the axes are needed, so one batch of 1-D DFTs (cv2, float32, zero-padded to twice
    the length so the correlation is linear) replaces a 2-D one. At most ``max_len`` samples along the
    axis and 512 lines across it are used (a centred window) to bound the cost on large images.
    """
    a = z if axis == 1 else z.T
    n, m = a.shape[1], a.shape[0]
    ln, lm = min(n, max_len), min(m, 512)
    x0, y0 = (n - ln) // 2, (m - lm) // 2
    win = a[y0 : y0 + lm, x0 : x0 + ln]
    size = cv2.getOptimalDFTSize(2 * ln)
    buf = np.zeros((lm, size), dtype=np.float32)
    buf[:, :ln] = win - win.mean(axis=1, keepdims=True)
    spec = cv2.dft(buf, flags=cv2.DFT_ROWS | cv2.DFT_COMPLEX_OUTPUT)
    power = (spec[..., 0] ** 2 + spec[..., 1] ** 2).sum(axis=0, dtype=np.float32)
    # the power spectrum of a real signal is real and even: its inverse DFT is the autocorrelation
    acf = np.fft.irfft(power[: size // 2 + 1], n=size)[:ln]
    return (acf / (ln - np.arange(ln))).astype(np.float32)  # per-overlap mean: unbiased at long lags


def _peaks(acf: np.ndarray) -> np.ndarray:
    """Autocorrelation minus its local mean (13 lags), in units of its robust spread."""
    base = np.convolve(acf, np.ones(13, dtype=np.float32) / 13.0, mode="same")
    pk = acf - base
    pk[:8] = 0.0  # the prefilter's own correlation length
    spread = 1.4826 * float(np.median(np.abs(pk[8:] - np.median(pk[8:])))) + 1e-12
    return pk / spread


def _harmonic_score(pk: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Evidence for each candidate period: sum of the peaks at its multiples / sqrt(their number).

    Dividing by sqrt(count) makes the score a z-like sum: a multiple 2p of the true period sees half the
    peaks and a submultiple p/2 adds as many empty lags as peaks, so both score ~1/sqrt(2) of p.
    """
    n = pk.size
    kmax = int((n - 2) // periods.min())
    k = np.arange(1, kmax + 1, dtype=np.float32)[:, None]
    lags = k * periods[None, :]
    ok = lags < n - 2
    lo = np.minimum(np.floor(lags).astype(np.int64), n - 2)
    vals = np.maximum(pk[lo], pk[lo + 1])  # a fractional lag: the higher of its two integer neighbours
    count = ok.sum(axis=0)
    return (np.where(ok, vals, 0.0).sum(axis=0) / np.sqrt(np.maximum(count, 1))).astype(np.float32)


def _refine(pk: np.ndarray, period: float) -> float:
    """Sub-sample period: follow the peak through multiples 1, 2, 4, ... of the period.

    At each step the expected lag ``k * period`` is known to about a lag, so the search window stays
    +-1 lag and cannot jump to a neighbouring JPEG-grid peak (every 8 lags); a parabola through the
    peak gives its position, and dividing by ``k`` shrinks the error by ``k``.
    """
    n = pk.size
    k = 1
    while k * period < n - 3:
        centre = int(round(k * period))
        lo_i, hi_i = max(1, centre - 1), min(n - 2, centre + 1)
        j = lo_i + int(np.argmax(pk[lo_i : hi_i + 1]))
        a, b, c = float(pk[j - 1]), float(pk[j]), float(pk[j + 1])
        denom = a - 2.0 * b + c
        off = 0.5 * (a - c) / denom if denom < 0 else 0.0
        period = (j + float(np.clip(off, -0.5, 0.5))) / k
        k *= 2
    return period


def scale_candidates(z: np.ndarray, tile: int, lo: float = 0.45, hi: float = 2.2, count: int = 3,
                     max_len: int = 1024) -> list[tuple[float, float]]:
    """Candidate (scale_y, scale_x) factors by which the marked image was resized, best first.

    Parameters
    ----------
    z : ndarray (H, W), float32
        Prefiltered luma of the image under test (pixels).
    tile : int
        Tile period of the method in pixels at scale 1.
    lo, hi : float
        Range of scale factors searched (0.45 to 2.2 covers the 0.5x-2x requirement).
    count : int
        Number of candidates returned.
    max_len : int
        Longest stretch of each axis used for the autocorrelation (pixels).
    """
    pk_y = _peaks(_axis_acf(z, 0, max_len))
    pk_x = _peaks(_axis_acf(z, 1, max_len))
    top = min(hi * tile, min(pk_y.size, pk_x.size) - 3)
    if top <= lo * tile:
        return []
    periods = np.arange(lo * tile, top, 0.25, dtype=np.float32)
    # isotropic resizes are the common case: add the evidence of both axes at the same period
    score = _harmonic_score(pk_y, periods) + _harmonic_score(pk_x, periods)
    out: list[tuple[float, float]] = []
    for i in np.argsort(score)[::-1]:
        p = float(periods[i])
        if any(abs(p - q * tile) < 0.03 * p for q, _ in out):
            continue
        out.append((_refine(pk_y, p) / tile, _refine(pk_x, p) / tile))
        if len(out) == count:
            break
    return out
