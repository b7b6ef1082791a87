"""Synchronisation: find the crop offset (cyclic shift of the folded tile); the geometry is in lattice.

Shift
    The folded tile is the embedded tile cyclically shifted by the crop offset modulo the tile size,
    whatever the offset (all 64 positions of the 8 x 8 grid and all block phases at once). One
    phase-only correlation with the key's pilot tile, computed by FFT, scores every shift; the best
    few are scored with a self-normalised statistic whose null tail is bounded for any image, because
    its randomness is the key's (see :func:`shift_search`).

Geometry
    The rescale and rotation estimate (:func:`scale_candidates`) lives in
    :mod:`labeler.watermark.lattice` and is re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from labeler.watermark.lattice import scale_candidates

#: Bentkus & Dzindzalieta (Bernoulli 21(2), 2015): for a weighted sum of independent random signs with
#: sum of squared weights <= 1, P(S >= x) <= C * P(N(0,1) >= x) for every x, with the optimal constant
#: C = 1 / (4 P(N(0,1) >= sqrt(2))) ~ 3.178.
RADEMACHER_C = 1.0 / (4.0 * 0.5 * math.erfc(1.0))
#: Shifts (best pilot correlation first) at which the self-normalised statistic is evaluated.
TOP_SHIFTS = 8


@dataclass(frozen=True)
class ShiftResult:
    """Best cyclic shift of a folded tile.

    Attributes
    ----------
    dy, dx : int
        Shift (pixels) that aligns the folded tile: ``np.roll(folded, (-dy, -dx))``.
    z : float
        Self-normalised correlation ``s(t) / sqrt(V(t))`` at the chosen shift; without this key's mark,
        ``P(z >= x) <= null_tail(x)`` per shift, for any image.
    shifts : int
        Number of shifts scored (the multiplicity the p-value must account for).
    """

    dy: int
    dx: int
    z: float
    shifts: int


@lru_cache(maxsize=8)
def _keep_mask(n: int, grid: int, band: int = 1) -> np.ndarray:
    """Real 0/1 weights on the rfft2 bins of an n x n tile: DC row/column and ``grid`` harmonics off.

    With ``band`` = b > 1, only frequencies below 1 / (2 b) cycle per sample along both axes are kept
    (a tile upsampled from a b-times decimated fold has nothing above; phase-only whitening would turn
    its empty bins into noise).

    JPEG blocking (8 px luma, 16 px chroma MCUs with 4:2:0), the rounding of a block-based mark and the
    detector's own pyramid filter put energy that is periodic in both axes with period 8 or 16 px on
    bins whose indices are multiples of ``n / grid`` in both axes; it adds up coherently over tiles.
    It cannot fake a mark (the statistic's null distribution does not depend on the image, see
    :func:`shift_search`), but it is noise to the correlation, so those bins are dropped.
    """
    step = max(1, n // grid)
    ky = np.arange(n)[:, None]
    kx = np.arange(n // 2 + 1)[None, :]
    drop = ((ky % step == 0) & (kx % step == 0)) | (ky == 0) | (kx == 0)
    if band > 1:
        limit = n // (2 * band)
        drop |= (np.minimum(ky, n - ky) >= limit) | (kx >= limit)
    return (~drop).astype(np.float32)


_SPECTRA: dict[tuple[int, bytes], np.ndarray] = {}


def _conj_spectrum(pilot: np.ndarray) -> np.ndarray:
    """``conj(rfft2(pilot))``, cached by content (a pilot tile is fixed per key and method)."""
    key = (pilot.shape[0], pilot.tobytes())
    spec = _SPECTRA.get(key)
    if spec is None:
        if len(_SPECTRA) >= 32:
            _SPECTRA.clear()
        spec = _SPECTRA[key] = np.conj(np.fft.rfft2(pilot))
    return spec


#: The last tile :func:`_whitened` transformed and its result: the detector reads the same folded tile
#: with both methods (their tiles are both 128 px), so the second read reuses the first one's FFTs.
_WHITE: list[tuple[np.ndarray, int, int, np.ndarray, np.ndarray]] = []


def _whitened(folded: np.ndarray, grid: int, band: int) -> tuple[np.ndarray, np.ndarray]:
    """Phase-only spectrum ``keep * F / |F|`` of ``folded`` and its inverse (float32), see
    :func:`shift_search`; cached for the last array (by identity: a folded tile is never modified)."""
    for arr, g, b, unit, w in list(_WHITE):
        if arr is folded and (g, b) == (grid, band):
            return unit, w
    n = folded.shape[0]
    spec_f = np.fft.rfft2(folded)
    unit = spec_f * (_keep_mask(n, grid, band) / np.maximum(np.abs(spec_f), 1e-12))
    w = np.fft.irfft2(unit, s=folded.shape).astype(np.float32)
    _WHITE[:] = [(folded, grid, band, unit, w)]
    return unit, w


def shift_search(folded: np.ndarray, pilot: np.ndarray, pilot_terms: Callable[[np.ndarray], np.ndarray],
                 grid: int = 16, top: int = TOP_SHIFTS, band: int = 1) -> ShiftResult:
    """Find the cyclic shift of ``folded`` that best matches ``pilot``; score it with a key-only null.

    Parameters
    ----------
    folded : ndarray (n, n)
        Folded analysis-domain tile of the image under test.
    pilot : ndarray (n, n)
        The key's pilot tile: ``sum_j e_j b_j`` over the pilot slots ``j``, with ``b_j`` the slot's
        block-DCT basis function and ``e_j = +-1`` the key's sign.
    pilot_terms : callable
        Maps a stack of aligned tiles (k, n, n) to the signed pilot-slot responses (k, J):
        ``e_j * <b_j, tile>`` (the scheme's block DCT read at the pilot slots, times the signs).
    grid : int
        Lattice period (samples) whose harmonics are ignored (see :func:`_keep_mask`).
    top : int
        Number of best-correlating shifts at which the statistic is evaluated.
    band : int
        2 for a tile upsampled from a half-resolution fold: only frequencies below 1/4 cycle per
        sample are used (:func:`_keep_mask`).

    The image is whitened by a phase-only transform, ``w = irfft2(keep * F / |F|)``, and each shift
    ``t`` gets the correlation ``s(t) = <pilot, roll(w, -t)> = sum_j e_j a_j(t)`` with
    ``a_j(t) = <b_j, roll(w, -t)>`` (one FFT scores all shifts). Under the null hypothesis (no mark of
    this key) the signs ``e_j`` are independent fair coin flips drawn from the key, independent of the
    image, so *conditionally on the image* ``s(t)`` is a weighted Rademacher sum with
    ``sum_j a_j(t)^2 =: V(t)`` known. The statistic ``z(t) = s(t) / sqrt(V(t))`` therefore satisfies
    ``P(z(t) >= x) <= min(C Q(x), exp(-x^2 / 2))`` for every image (Bentkus-Dzindzalieta, Hoeffding),
    with no model of the image at all. ``z`` is evaluated at the ``top`` best shifts by ``s`` and the
    largest is returned; it is at most ``max_t z(t)``, so a union bound over all ``n * n`` shifts
    (``shifts``) stays valid however the shift was chosen.
    """
    n = folded.shape[0]
    unit, w = _whitened(folded, grid, band)
    surface = np.fft.irfft2(_conj_spectrum(pilot) * unit, s=folded.shape)
    k = min(top, surface.size)
    cand = np.argpartition(surface.ravel(), -k)[-k:]
    ty, tx = np.divmod(cand, n)
    # aligned tiles roll(w, -t): windows of w tiled 2 x 2
    w2 = np.tile(w, (2, 2))
    tiles = np.stack([w2[a : a + n, b : b + n] for a, b in zip(ty.tolist(), tx.tolist(), strict=True)])
    terms = pilot_terms(tiles).astype(np.float64)
    s = terms.sum(axis=1)
    v = (terms * terms).sum(axis=1)
    z = np.where(v > 0, s / np.sqrt(np.maximum(v, 1e-30)), 0.0)
    i = int(np.argmax(z))
    return ShiftResult(dy=int(ty[i]), dx=int(tx[i]), z=float(z[i]), shifts=n * n)


def null_tail(z: float) -> float:
    """Upper bound on P(z(t) >= z) for one shift under the null (weighted sum of random signs).

    ``min(C * Q(z), exp(-z^2 / 2))``: the optimal Gaussian comparison constant C ~ 3.18 of Bentkus and
    Dzindzalieta (2015), and Hoeffding's bound, which is the smaller one for z < ~1.3.
    """
    if z <= 0.0:
        return 1.0
    return min(1.0, RADEMACHER_C * gaussian_tail(z), math.exp(-0.5 * z * z))


def gaussian_tail(z: float) -> float:
    """P(N(0,1) > z), accurate far into the tail (asymptotic series where erfc underflows)."""
    if z < 35.0:
        return 0.5 * math.erfc(z / math.sqrt(2.0))
    return math.exp(-0.5 * z * z - math.log(z * math.sqrt(2.0 * math.pi)))


__all__ = ["RADEMACHER_C", "TOP_SHIFTS", "ShiftResult", "gaussian_tail", "null_tail", "scale_candidates",
           "shift_search"]
