"""Key-free evidence of a mark's lattice (the image detector's gate before its rescale / rotation search).

:func:`lattice_scores` reads the whitened autocorrelation of a centred window on the square lattices of
a range of periods and rotations: a cheap first stage (~2 ms) that tells whether the ~20 ms lattice
estimate of :func:`labeler.watermark.lattice.scale_candidates` and its keyed reads are worth making.
Design and measurements: ``docs/watermark.md``, "Gate".
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from labeler.watermark.acf import whitened_acf
from labeler.watermark.lattice import half_plane

__all__ = ["EVIDENCE_SIDE", "LatticeScores", "lattice_scores", "lattice_evidence"]

#: Side (samples) of the centred square window :func:`lattice_evidence` reads: fixed, so its lattice
#: index is built once per period range.
EVIDENCE_SIDE = 512
#: Rotations :func:`lattice_evidence` covers, radians: -5 .. 5 degrees in 0.25 degree steps (the detector
#: reads marks rotated by up to ~4 degrees; at the farthest point used, 0.45 * 512 samples away, a step
#: moves a lattice point by at most half a sample, inside the 3 x 3 dilation).
_EVIDENCE_ANGLES = np.radians(np.arange(-5.0, 5.001, 0.25))
#: Far lattice points are those 0.45 window sides away at most: a cyclic autocorrelation wraps at 0.5.
_EVIDENCE_REACH = 0.45


@lru_cache(maxsize=8)
def _evidence_index(side: int, lo: float, hi: float) -> tuple[tuple[int, np.ndarray], ...]:
    """Flat indices into a side x side cyclic autocorrelation of the square lattices ``P R(t) (m, n)``,
    |m|, |n| <= 2 (one of each +-pair), for every period P in [lo, hi) (0.25 sample steps) and angle t of
    :data:`_EVIDENCE_ANGLES`, only their points within reach: grouped by that count k (>= 2), each group
    ``(k, indices)`` with indices (k, lattices) intp. Lattices whose rounded points coincide (small
    periods at neighbouring angles, ~15-30 %) are kept once and points out of reach are not listed (most
    lattices of the larger periods keep 4 of 12): 40 % fewer samples to gather. Cached, read-only."""
    periods = np.arange(lo, hi, 0.25)
    m, n = (g.astype(np.float64) for g in half_plane(2))
    c, s = np.cos(_EVIDENCE_ANGLES), np.sin(_EVIDENCE_ANGLES)
    p = periods[None, :, None]
    dy = p * (c[None, None, :] * m[:, None, None] - s[None, None, :] * n[:, None, None])
    dx = p * (s[None, None, :] * m[:, None, None] + c[None, None, :] * n[:, None, None])
    ok = ((np.abs(dy) <= _EVIDENCE_REACH * side) & (np.abs(dx) <= _EVIDENCE_REACH * side)).reshape(m.size, -1)
    flat = (np.rint(dy).astype(np.int64) % side) * side + np.rint(dx).astype(np.int64) % side
    flat = np.where(ok, flat.reshape(m.size, -1), -1)  # -1: out of reach, sorted first below
    count = ok.sum(axis=0)
    groups = []
    for k in np.unique(count[count >= 2]):
        pts = np.sort(flat[:, count == k], axis=0)[m.size - k :]
        first = np.sort(np.unique(pts, axis=1, return_index=True)[1])  # in period order: nearby lags
        pts = np.ascontiguousarray(pts[:, first], dtype=np.intp)  # take() would convert int32 every call
        pts.flags.writeable = False
        groups.append((int(k), pts))
    return tuple(groups)


@lru_cache(maxsize=4)
def _evidence_sample(side: int) -> np.ndarray:
    """Flat indices of every 13th lag with |dy|, dx <= the reach (rows dy >= 0 first): the sample whose
    median and MAD standardise :func:`lattice_evidence`. Cached, read-only."""
    r = int(_EVIDENCE_REACH * side)
    rows = np.concatenate([np.arange(r + 1), np.arange(side - r, side)])
    out = (rows[:, None] * side + np.arange(r + 1)[None, :]).ravel()[::13].astype(np.intp)
    out.flags.writeable = False
    return out


def _median(x: np.ndarray) -> float:
    """``np.median`` of a 1-D float32 array: one partition at a single index (numpy's SIMD selection,
    ~8 us for 8192 samples against ~80 us for np.median's two-index introselect) and, for an even size,
    the largest sample below it."""
    k = x.size // 2
    part = np.partition(x, k)
    if x.size % 2:
        return float(part[k])
    return float((part[:k].max() + part[k]) / np.float32(2.0))


@lru_cache(maxsize=4)
def _ring_map(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Radius (samples, rounded) of every lag of a side x side cyclic autocorrelation, flat, and of every
    other row and column of it (the sample the ring statistics are taken from). Cached, read-only."""
    d = np.arange(side)
    d = np.minimum(d, side - d)
    r = np.rint(np.hypot(d[:, None], d[None, :])).astype(np.intp)
    out = (r.ravel(), np.ascontiguousarray(r[::2, ::2]).ravel())
    for a in out:
        a.flags.writeable = False
    return out


def _ring_stats(acf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``acf`` (side x side, float32) per ring of lags at the same radius,
    from every other row and column, smoothed over 5 neighbouring radii (float32 tables by radius)."""
    side = acf.shape[0]
    _, rings = _ring_map(side)
    sub = acf[::2, ::2].ravel().astype(np.float64)
    size = int(rings.max()) + 1
    n = np.maximum(np.bincount(rings, minlength=size), 1).astype(np.float64)
    mean = np.bincount(rings, sub, minlength=size) / n
    var = np.maximum(np.bincount(rings, sub * sub, minlength=size) / n - mean * mean, 0.0)
    box = np.full(5, 0.2)
    mean, sd = np.convolve(mean, box, "same"), np.convolve(np.sqrt(var), box, "same")
    return mean.astype(np.float32), np.maximum(sd, 1e-12).astype(np.float32)


class LatticeScores(NamedTuple):
    """The two scores of :func:`lattice_scores` (robust z units: about N(0, 1) per lattice on content
    with nothing periodic)."""

    #: Best lattice's points standardised by the whole window: sum / sqrt(points).
    total: float
    #: Best lattice's points standardised by the lags at their own radius: sum / sqrt(points).
    ring_total: float


def lattice_scores(z: np.ndarray, lo: float, hi: float, ring_above: float = -np.inf) -> LatticeScores:
    """How strongly a square lattice of period ``lo`` .. ``hi`` (samples) shows in a prefiltered image.

    Parameters
    ----------
    z : ndarray (H, W), float32, H and W >= :data:`EVIDENCE_SIDE`
        Prefiltered luma (any resolution: the periods are in its samples).
    lo, hi : float
        Range of lattice periods (samples).
    ring_above : float
        ``ring_total`` is worked out only where ``total`` reaches this (NaN otherwise): a caller that
        needs both to pass skips its cost (~0.5 ms) where ``total`` already fails.

    Returns
    -------
    LatticeScores
        From the whitened cyclic autocorrelation of the centred :data:`EVIDENCE_SIDE` square window,
        dilated 3 x 3, read at the points ``P R(t) (m, n)`` (|m|, |n| <= 2, within reach) of every period
        ``P`` and rotation ``t`` (-5 .. 5 degrees), the best lattice's sum / sqrt(points) with the lags
        standardised two ways. ``total``: by the median and MAD of the whole window (like
        :class:`~labeler.watermark.lattice._LatticeFit`). ``ring_total``: by the mean and standard
        deviation of the lags at the same radius. A mark's lattice is isolated peaks, which stand out
        of their ring either way; the edges and outlines of flat art and the lines of text raise the
        autocorrelation of whole rings near the origin, which lifts ``total`` on the small periods'
        lattices (19-42 on clean art) but not ``ring_total`` (mostly under 8).

    A cheap first stage for the rescale / rotation search: one 512 x 512 DFT each way (no padding) and
    gathers of 160-180k samples, ~2 ms, against ~20 ms for
    :func:`labeler.watermark.lattice.scale_candidates`. It reads the image only, never a key, and its
    windows are fixed, so its cost does not grow with the image.
    """
    side = EVIDENCE_SIDE
    h, w = z.shape
    if min(h, w) < side:
        raise ValueError(f"lattice_evidence needs at least {side} x {side} samples, not {w} x {h}")
    y0, x0 = (h - side) // 2, (w - side) // 2
    win = np.asarray(z[y0 : y0 + side, x0 : x0 + side], dtype=np.float32)  # a view: cv2 reads its rows
    acf = cv2.dilate(whitened_acf(win), np.ones((3, 3), np.uint8))
    flat = acf.ravel()
    region = flat.take(_evidence_sample(side))
    med = _median(region)
    mad = 1.4826 * _median(np.abs(region - np.float32(med))) + 1e-12
    best = -np.inf
    groups = _evidence_index(side, float(lo), float(min(hi, _EVIDENCE_REACH * side)))
    # one gather per point count k; within a group the best sum is the best score
    for k, pts in groups:
        best = max(best, (float(flat.take(pts).sum(axis=0).max()) - k * med) / (mad * np.sqrt(k)))
    if best < ring_above:
        return LatticeScores(float(best), float("nan"))
    mean, sd = _ring_stats(acf)
    radius = _ring_map(side)[0]
    ring_best = -np.inf
    for k, pts in groups:
        r = radius.take(pts)
        u = (flat.take(pts) - mean.take(r)) / sd.take(r)
        ring_best = max(ring_best, float(u.sum(axis=0).max()) / np.sqrt(k))
    return LatticeScores(float(best), float(ring_best))


def lattice_evidence(z: np.ndarray, lo: float, hi: float) -> float:
    """:attr:`LatticeScores.total` of :func:`lattice_scores` (see there; ``ring_total`` is not worked out)."""
    return lattice_scores(z, lo, hi, ring_above=np.inf).total
