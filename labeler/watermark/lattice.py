"""Geometry of a periodic mark: estimate the rescale / rotation lattice from the image's autocorrelation.

A periodic mark makes the autocorrelation of the prefiltered image peak on the lattice of the tile. A
rescaled or rotated image has the lattice ``L @ (m, n) * tile``; :func:`scale_candidates` fits ``L``
from the whitened 2-D autocorrelation (and, for the period alone, from the autocorrelation along each
axis) and returns the best few candidates for the detector to undo. The crop offset is found afterwards
by :func:`labeler.watermark.sync.shift_search`.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from labeler.watermark.acf import whitened_acf

#: Lattice proposals per estimator that :func:`scale_candidates` ranks (plus their doubles).
POOL = 12


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
    mean = win.mean(axis=1, keepdims=True)
    size = cv2.getOptimalDFTSize(2 * ln)
    size += size % 2  # even, for the packed layout below
    # its padding zeroed here, which leaves it in cache for the DFT
    buf = np.empty((lm, size), np.float32)
    buf[:, ln:] = 0.0
    if axis == 0:  # one cache-friendly transpose of the window into the buffer instead of strided reads
        win = buf[:, :ln]
        out = cv2.transpose(np.asarray(z[x0 : x0 + ln, y0 : y0 + lm], dtype=np.float32), dst=win)
        if not np.shares_memory(out, buf):  # a cv2 that would not write into the view
            win[:] = out
    np.subtract(win, mean, out=buf[:, :ln])
    # packed (CCS) output: Re0, Re1, Im1, Re2, Im2, ..., Re(size/2); 3-4x faster than complex output
    spec = np.empty((lm, size), np.float32)
    out = cv2.dft(buf, dst=spec, flags=cv2.DFT_ROWS)
    if not np.shares_memory(out, spec):  # a cv2 that would not write into it
        spec[:] = out
    out = cv2.multiply(spec, spec, dst=spec)  # in place: the spectrum is not read again
    if not np.shares_memory(out, spec):
        spec[:] = out
    col = cv2.reduce(spec, 0, cv2.REDUCE_SUM).ravel()
    power = np.empty(size // 2 + 1, dtype=np.float64)
    power[0], power[-1] = col[0], col[size - 1]
    power[1:-1] = col[1 : size - 1 : 2] + col[2 : size - 1 : 2]
    # the power spectrum of a real signal is real and even: its inverse DFT is the autocorrelation
    acf = np.fft.irfft(power, n=size)[:ln]
    return (acf / (ln - np.arange(ln))).astype(np.float32)  # per-overlap mean: unbiased at long lags


def _peaks(acf: np.ndarray) -> np.ndarray:
    """Autocorrelation minus its local mean (13 lags), in units of its robust spread."""
    base = np.convolve(acf, np.ones(13, dtype=np.float32) / 13.0, mode="same")
    pk = acf - base
    pk[:8] = 0.0  # the prefilter's own correlation length
    spread = 1.4826 * _median(np.abs(pk[8:] - _median(pk[8:]))) + 1e-12
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
        period = (j + min(max(off, -0.5), 0.5)) / k  # np.clip's number, without its per-call overhead
        k *= 2
    return period


def _acf2d(z: np.ndarray, max_side: int) -> tuple[np.ndarray, int, int]:
    """Whitened 2-D autocorrelation of a centred window of ``z`` (at most ``max_side`` per axis).

    The window is zero-padded to twice its size (linear correlation), its power spectrum divided by the
    radial mean power at the same spatial frequency (an isotropic whitening: the image's 1/f decay goes,
    the mark's line spectrum stays) and capped at 8x that mean (strong image lines and edges), and
    transformed back. A mark with period ``p`` leaves peaks at every lattice point ``(m p, n p)``.
    Returns the autocorrelation (float32, padded size) and the window's height and width.
    """
    h, w = z.shape
    lh, lw = min(h, max_side), min(w, max_side)
    y0, x0 = (h - lh) // 2, (w - lw) // 2
    sh, sw = cv2.getOptimalDFTSize(2 * lh), cv2.getOptimalDFTSize(2 * lw)
    # its padding zeroed here (in cache for the DFT)
    buf = np.empty((sh, sw), np.float32)
    buf[lh:] = 0.0
    buf[:lh, lw:] = 0.0
    win = z[y0 : y0 + lh, x0 : x0 + lw]
    buf[:lh, :lw] = win - win.mean()
    return whitened_acf(buf), lh, lw


def _lattice(periods: np.ndarray, lh: int, lw: int,
             reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lattice offsets (m, n) for each period with |m p| <= reach*lh, |n p| <= reach*lw, (m, n) != 0.

    Returns m, n (broadcastable integer grids) and a mask (periods, points) of the usable ones.
    """
    my, mx = int(reach * lh // periods.min()), int(reach * lw // periods.min())
    m, n = _offsets(my, mx)
    p = periods[:, None]
    ok = (np.abs(m)[None] * p <= reach * lh) & (n[None] * p <= reach * lw)
    return m, n, ok


@lru_cache(maxsize=256)
def _offsets(my: int, mx: int) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (m, n) of :func:`_lattice`, |m| <= my, 0 <= n <= mx, one of each +-(m, n) pair (the ACF
    is even), float32, row-major order. Cached, read-only: they depend on the extent only, and building
    them was most of a lattice refinement's set-up (one per proposal)."""
    m, n = np.meshgrid(np.arange(-my, my + 1), np.arange(0, mx + 1), indexing="ij")
    keep = (n > 0) | ((n == 0) & (m > 0))
    out = (m[keep].astype(np.float32), n[keep].astype(np.float32))
    for a in out:
        a.flags.writeable = False
    return out


def _lattice_score(acf: np.ndarray, lh: int, lw: int, periods: np.ndarray, reach: float = 0.8,
                   dilate: int = 1) -> np.ndarray:
    """Sum of the autocorrelation at the lattice points of each period / sqrt(their number).

    A fractional position takes the highest of its four integer neighbours. With ``dilate`` = k > 1
    the autocorrelation is first dilated by a k x k maximum filter (``cv2.dilate``, not cyclic).
    Only the lags the lattice can reach (``reach`` of the window, both signs of dy, dx >= 0) are
    filtered and read, a third of the padded array at ``reach`` 0.8: the same numbers as filtering all.
    """
    sh, sw = acf.shape
    ry, rx = int(np.ceil(reach * lh)) + 1, int(np.ceil(reach * lw)) + 1  # |dy| <= ry, 0 <= dx <= rx
    flat, ok, norm = _score_index(lh, lw, reach, np.ascontiguousarray(periods, dtype=np.float32).tobytes())
    h = dilate // 2
    if dilate > 1:  # each side of the dy = 0 seam filtered apart: cv2.dilate's border is there too
        kernel = np.ones((dilate, dilate), np.uint8)
        upper = cv2.dilate(acf[: ry + 2 + h, : rx + 2 + h], kernel)[: ry + 2, : rx + 2]
        lower = cv2.dilate(acf[sh - ry - 1 - h :, : rx + 2 + h], kernel)[h:, : rx + 2]
        region = np.concatenate([lower, upper])  # lags dy = -ry-1 .. ry+1, dx = 0 .. rx+1
    else:
        region = np.concatenate([acf[sh - ry - 1 :, : rx + 2], acf[: ry + 2, : rx + 2]])
    # the four neighbours' maximum (cyclic across dy = 0, as the whole array wraps), then one gather
    rows = np.maximum(region[:-1], region[1:])
    top = np.maximum(rows[:, :-1], rows[:, 1:])
    vals = top.ravel().take(flat)
    return np.where(ok, vals, 0.0).sum(axis=1) / norm


@lru_cache(maxsize=16)
def _score_index(lh: int, lw: int, reach: float,
                 period_bytes: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`_lattice_score` reads for the periods ``period_bytes`` (float32): the flat index of each
    lattice point's upper-left integer neighbour into the four-neighbour maximum of the lags
    dy = -ry .. ry, dx = 0 .. rx (clipped: only points outside the mask move), the mask of usable
    points (periods, points) and sqrt(their count) per period. They depend on the window and the periods
    only (the same for every image of a size), so they are built once instead of on every call."""
    periods = np.frombuffer(period_bytes, dtype=np.float32)
    m, n, ok = _lattice(periods, lh, lw, reach)
    y = m[None] * periods[:, None]
    x = n[None] * periods[:, None]
    ry, rx = int(np.ceil(reach * lh)) + 1, int(np.ceil(reach * lw)) + 1
    y0 = np.clip(np.floor(y).astype(np.int64), -ry, ry)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, rx)
    flat = (y0 + ry + 1) * (rx + 1) + x0  # ``top`` below is (2 ry + 2, rx + 1)
    out = (flat, ok, np.sqrt(np.maximum(ok.sum(axis=1), 1)))
    for a in out:
        a.flags.writeable = False
    return out


def _refine_lattice(acf: np.ndarray, lh: int, lw: int, period: float, window: int,
                    reach: float = 0.8, start: np.ndarray | None = None) -> np.ndarray:
    """Sub-pixel lattice matrix ``L`` (2 x 2, pixels): the peak near ``(m, n)`` sits at ``L @ (m, n)``.

    Starts from ``period * I``, or from ``start`` (2 x 2, pixels) when given. At each step every
    lattice point within ``radius`` lattice steps is
    moved to the highest sample within ``window`` samples of where ``L`` puts it, plus a parabolic
    sub-pixel offset per axis, and ``L`` is refitted by least squares to all of them (so rotation,
    different factors per axis and shear come out, not only the period). The radius doubles and the
    window shrinks to 1 sample, so far points, which shrink the error most, are found reliably.
    """
    return _refine_lattices(acf, lh, lw, [period], [window], reach, [start])[0]


def _vertex(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Sub-sample offset (-0.5 .. 0.5) of the parabola through three samples; 0 where it has no maximum."""
    den = a - 2.0 * b + c
    return np.where(den < 0, np.clip(0.5 * (a - c) / np.where(den < 0, den, -1.0), -0.5, 0.5), 0.0)


def _refine_lattices(acf: np.ndarray, lh: int, lw: int, periods: list[float], windows: list[int],
                     reach: float = 0.8, starts: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """:func:`_refine_lattice` of several starting periods (and ``windows``, ``starts``) at once.

    Every lattice follows its own schedule (radius, window, when to stop) as if refined alone; the
    points of all lattices still refining are moved to their peaks in one gather per step (a window as
    wide as the widest, the samples outside a point's own window masked: argmax sees the same samples
    in the same order) and the 2 x 2 normal equations of all lattices are summed and solved together.
    Twelve refinements one by one cost ~8 ms of Python overhead at 1080p.
    """
    sh, sw = acf.shape
    count = len(periods)
    if count == 0:
        return []
    starts = starts if starts is not None else [None] * count
    mats = np.stack([np.eye(2) * float(p) if s is None else np.array(s, np.float64)
                     for p, s in zip(periods, starts, strict=True)])
    grids = [_lattice(np.array([p * 0.9], dtype=np.float32), lh, lw, reach)[:2] for p in periods]
    # float64 as the products with ``mats`` promoted them; a point joins once radius >= max(|m|, n)
    m_all = np.concatenate([g[0] for g in grids]).astype(np.float64)
    n_all = np.concatenate([g[1] for g in grids]).astype(np.float64)
    ring = np.maximum(np.abs(m_all), n_all)
    owner = np.repeat(np.arange(count), [g[0].size for g in grids])
    last = np.array([max(np.abs(m).max(initial=0), n.max(initial=0)) for m, n in grids])
    wins = np.maximum(1, np.asarray(windows, dtype=np.int64))
    active = np.ones(count, dtype=bool)
    flat_acf = acf.ravel()
    radius = 1
    while active.any():
        # only the points of active lattices within the radius (the others were never selected)
        cand = np.flatnonzero(active[owner] & (ring <= radius))
        own, m, n = owner[cand], m_all[cand], n_all[cand]
        a = mats[own]
        pos0 = a[:, 0, 0] * m + a[:, 0, 1] * n
        pos1 = a[:, 1, 0] * m + a[:, 1, 1] * n
        sel = (np.abs(pos0) <= reach * lh) & (np.abs(pos1) <= reach * lw)
        enough = np.bincount(own[sel], minlength=count) >= 2
        active &= enough  # fewer than two points: that lattice stays as it is
        sel &= enough[own]
        if not sel.any():
            break
        own, m, n = own[sel], m[sel], n[sel]
        cy, cx = np.rint(pos0[sel]).astype(np.int64), np.rint(pos1[sel]).astype(np.int64)
        pw = wins[own]
        win = int(pw.max())
        d = np.arange(-win, win + 1)
        k = 2 * win + 1
        rows = ((cy[:, None] + d[None, :]) % sh) * sw  # (points, k)
        cols = (cx[:, None] + d[None, :]) % sw
        patch = flat_acf.take(rows[:, :, None] + cols[:, None, :])
        near = np.abs(d)[None, :] <= pw[:, None]  # (points, k): offsets within the point's own window
        inside = near[:, :, None] & near[:, None, :]
        # masked samples never win, and a point's own window keeps its row-major order (argmax's ties)
        np.copyto(patch, -np.inf, where=~inside)
        j = patch.reshape(len(cy), k * k).argmax(axis=1)
        ys, xs = cy + j // k - win, cx + j % k - win
        y_0, y_m, y_p = ys % sh * sw, (ys - 1) % sh * sw, (ys + 1) % sh * sw
        x_0, x_m, x_p = xs % sw, (xs - 1) % sw, (xs + 1) % sw
        b = flat_acf.take(y_0 + x_0)
        fy = ys + _vertex(flat_acf.take(y_m + x_0), b, flat_acf.take(y_p + x_0))
        fx = xs + _vertex(flat_acf.take(y_0 + x_m), b, flat_acf.take(y_0 + x_p))
        # least squares for every lattice by its 2 x 2 normal equations, solved in closed form
        s = [np.bincount(own, w, count) for w in (m * m, m * n, n * n, m * fy, n * fy, m * fx, n * fx)]
        smm, smn, snn, sym, syn, sxm, sxn = s
        det = smm * snn - smn * smn
        ok = active & (np.abs(det) > 1e-6)
        safe = np.where(ok, det, 1.0)
        mats[ok, 0, 0] = ((snn * sym - smn * syn) / safe)[ok]
        mats[ok, 0, 1] = ((smm * syn - smn * sym) / safe)[ok]
        mats[ok, 1, 0] = ((snn * sxm - smn * sxn) / safe)[ok]
        mats[ok, 1, 1] = ((smm * sxn - smn * sxm) / safe)[ok]
        for i in np.flatnonzero(active & ~ok):  # collinear points: the minimum-norm solution
            pick = own == i
            design = np.stack([m[pick], n[pick]], axis=1)
            mats[i] = np.linalg.lstsq(design, np.stack([fy[pick], fx[pick]], axis=1), rcond=None)[0].T
        active &= radius < last
        wins = np.maximum(1, wins // 2)
        radius *= 2
    return list(mats)


def _candidates_2d(acf: np.ndarray, lh: int, lw: int, tile: int, lo: float, hi: float,
                   count: int = 8) -> list[np.ndarray]:
    """Lattice matrices (2 x 2, in tiles) from the 2-D lattice score, best first, refined.

    Two rankings are interleaved: the autocorrelation as it is (sharp, best for pure rescales) and
    dilated by a 9 x 9 maximum filter over the nearer half of the lattice (tolerates the few pixels
    by which a rotation of a degree or two moves the peaks). The refinement starts with a search
    window of 6 % of the period (about 3.4 degrees) around the nearest lattice points.
    """
    top = min(hi * tile, 0.5 * max(lh, lw))
    if top <= lo * tile:
        return [_rotation_seed(acf, lh, lw, tile)]
    periods = np.arange(lo * tile, top, 0.25, dtype=np.float32)
    sharp = np.argsort(_lattice_score(acf, lh, lw, periods))[::-1][:64]
    wide = np.argsort(_lattice_score(acf, lh, lw, periods, reach=0.5, dilate=9))[::-1][:64]
    seen: list[float] = []  # the periods to refine: the two rankings interleaved, near-duplicates skipped
    for i, j in zip(sharp, wide, strict=True):
        for idx in (i, j):
            p = float(periods[idx])
            if len(seen) < count and not any(abs(p - q) < 0.03 * p for q in seen):
                seen.append(p)
    refined = _refine_lattices(acf, lh, lw, seen, [int(np.ceil(0.06 * p)) for p in seen])
    return [m / tile for m in refined] + [_rotation_seed(acf, lh, lw, tile)]


#: Angles tried by :func:`_rotation_seed`, radians (-3 .. 3 degrees in 0.25 degree steps).
_SEED_ANGLES = np.radians(np.arange(-3.0, 3.01, 0.25))


def _rotation_seed(acf: np.ndarray, lh: int, lw: int, tile: int) -> np.ndarray:
    """One more proposal (in tiles): the rotation of the unscaled tile that fits best, refined.

    The period ranking scores the axis-aligned lattice ``(m p, n p)``; after a 2 degree rotation its
    outer points sit 5-13 px off the true peaks, so the true period can rank hundreds deep and is
    never refined (measured by ``benchmarks/watermark_rotation_seed.py``: +-2 degrees on 13 photos
    and 6 text renders, 31/38 -> 38/38 ``dct`` and 29/38 -> 38/38 ``dwt``). The refinement is kept
    only if it fits at least as well, since text lines can pull it off. It depends on the image
    only, never the key, so the candidates' count in the p-value is unchanged.
    """
    fit = _lattice_fit(acf, lh, lw)
    rot = [tile * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) for t in _SEED_ANGLES]
    best = rot[int(np.argmax(fit.many(rot)))]  # the first of equal scores, as max() took
    refined = _refine_lattice(acf, lh, lw, float(tile), 2, start=best)
    return (refined if fit(refined) >= fit(best) else best) / tile


def scale_candidates(z: np.ndarray, tile: int, lo: float = 0.45, hi: float = 2.2, count: int = 3,
                     max_len: int = 1024, max_side_2d: int = 512) -> list[np.ndarray]:
    """Candidate geometric changes of the marked image, best first, as 2 x 2 lattice matrices.

    A candidate ``L`` says that a displacement ``(dy, dx)`` in the marked image as embedded is now
    ``L @ (dy, dx)``: ``diag(sy, sx)`` for a resize by ``sy`` along y and ``sx`` along x, a rotation
    matrix times the scale for a rotated image.

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
        Longest stretch of each axis used for the 1-D autocorrelations (pixels).
    max_side_2d : int
        Largest window side for the 2-D lattice estimate (:func:`_acf2d`).

    Two estimators propose a pool of ``max(count, POOL)`` lattices: a 2-D one (whitened 2-D
    autocorrelation scored on the whole lattice ``(m p, n p)``: many more peaks than the axes hold, so
    it works down to two periods per axis, e.g. a 512 px image halved) and the per-axis one (longer
    reach on large images). Each proposal's double is added (a lattice of half the true period holds
    every true peak, so it can outscore the truth on the estimators' coarse scores), and the pool is
    ranked by :func:`_lattice_fit`, the autocorrelation read on each refined lattice itself.
    """
    pool = max(count, POOL)
    acf, lh, lw = _acf2d(z, max_side_2d)
    two_d = _candidates_2d(acf, lh, lw, tile, lo, hi, pool)
    pk_y = _peaks(_axis_acf(z, 0, max_len))
    pk_x = _peaks(_axis_acf(z, 1, max_len))
    top = min(hi * tile, min(pk_y.size, pk_x.size) - 3)
    one_d: list[np.ndarray] = []
    if top > lo * tile:
        periods = np.arange(lo * tile, top, 0.25, dtype=np.float32)
        # isotropic resizes are the common case: add the evidence of both axes at the same period
        score = _harmonic_score(pk_y, periods) + _harmonic_score(pk_x, periods)
        taken: list[float] = []  # the proposals' y periods (pixels), as Python floats: the same numbers
        values = periods.tolist()
        for i in np.argsort(score)[::-1].tolist():
            p = values[i]
            if any(abs(p - q) < 0.03 * p for q in taken):
                continue
            sy = _refine(pk_y, p) / tile
            one_d.append(np.diag([sy, _refine(pk_x, p) / tile]))
            taken.append(sy * tile)
            if len(one_d) == pool:
                break
    proposals = two_d + one_d
    dets = np.linalg.det(np.stack(proposals))  # batched (float64, as each was): the same numbers
    proposals += [2.0 * c for c, d in zip(proposals, dets, strict=True) if 2.0 * abs(float(d)) ** 0.5 <= hi]
    fit = _lattice_fit(acf, lh, lw)
    scores = fit.many([c * tile for c in proposals])
    _FIT_CACHE.clear()  # the search is over: do not keep its autocorrelation alive
    out: list[np.ndarray] = []
    for i in np.argsort(scores, kind="stable")[::-1]:
        c = proposals[int(i)]
        if any(np.abs(c - q).max() < 0.003 * np.abs(c).max() for q in out):
            continue
        out.append(c)
        if len(out) == count:
            break
    return out


class _LatticeFit:
    """A scorer of how well a lattice ``mat @ (m, n)`` (pixels) sits on the peaks of ``acf``.

    The autocorrelation is dilated by 3 x 3 (a refined lattice point is within a sample of its peak),
    standardised by the median and MAD of the dilated lags within ``reach`` of the window, read at every
    lattice point within that reach and summed / sqrt(points): a robust z-score, about N(0, 1) for a
    lattice that fits nothing whatever its period, so lattices of different periods compare fairly. A
    lattice of half the true period reads the true peaks at a quarter of its points and noise at the
    others, so it scores about half as much as the truth.

    Calling it scores one lattice (2 x 2, pixels); :meth:`many` scores a list with one gather, the same
    numbers.
    """

    def __init__(self, acf: np.ndarray, lh: int, lw: int, reach: float = 0.8) -> None:
        sh, sw = acf.shape
        self.acf, self.lh, self.lw, self.reach = acf, lh, lw, reach
        self.ry, self.rx = ry, rx = int(reach * lh), int(reach * lw)
        # The 3 x 3 dilation of only the lags a lattice point within reach can round to (|dy| <= ry,
        # |dx| <= rx, ~2/3 of the padded array), as ``dil[dy + ry, dx + rx]``: each quadrant is dilated
        # apart with one more row and column of context on its inner sides, so every kept sample sees
        # what it saw in the dilation of the whole (not cyclic) array.
        kernel = np.ones((3, 3), np.uint8)
        self.dil = dil = np.empty((2 * ry + 1, 2 * rx + 1), dtype=np.float32)
        if 2 * ry + 2 <= sh and 2 * rx + 2 <= sw:
            for dst_y, src_y, keep_y in ((slice(ry, None), slice(0, ry + 2), slice(0, ry + 1)),
                                         (slice(0, ry), slice(sh - ry - 1, sh), slice(1, None))):
                for dst_x, src_x, keep_x in ((slice(rx, None), slice(0, rx + 2), slice(0, rx + 1)),
                                             (slice(0, rx), slice(sw - rx - 1, sw), slice(1, None))):
                    dil[dst_y, dst_x] = cv2.dilate(acf[src_y, src_x], kernel)[keep_y, keep_x]
        else:  # a window too small for the quadrants not to overlap: dilate it all and gather
            full = cv2.dilate(acf, kernel)
            dil[:] = full[np.arange(-ry, ry + 1)[:, None] % sh, np.arange(-rx, rx + 1)[None, :] % sw]
        # the median and MAD of every 7th lag (dy >= 0 rows first, then dy < 0; dx >= 0): robust location
        # and scale, at a seventh of the sorting
        region = dil.ravel().take(_fit_sample(ry, rx))
        self.med = _median(region)
        self.mad = 1.4826 * _median(np.abs(region - self.med)) + 1e-12

    def _points(self, mat: np.ndarray, det: float | None = None) -> np.ndarray:
        side = abs(float(np.linalg.det(mat) if det is None else det)) ** 0.5
        return mat @ half_plane(int(max(self.lh, self.lw) / max(side, 1.0)) + 1)

    def __call__(self, mat: np.ndarray) -> float:
        return float(self.many([mat])[0])

    def many(self, mats: list[np.ndarray]) -> np.ndarray:
        """Scores of the lattices ``mats`` (each 2 x 2, pixels), -inf where fewer than 2 points fit."""
        if not mats:
            return np.zeros(0)
        # one batched determinant (the same LAPACK call per matrix as np.linalg.det of each)
        same = all(getattr(m, "dtype", None) == np.float64 for m in mats)
        dets = np.linalg.det(np.stack(mats)) if same else [None] * len(mats)
        parts = [self._points(m, d) for m, d in zip(mats, dets, strict=True)]
        ends = np.cumsum([p.shape[1] for p in parts])
        pos = np.concatenate(parts, axis=1)
        ok = (np.abs(pos[0]) <= self.ry) & (np.abs(pos[1]) <= self.rx)
        cy = np.rint(pos[0, ok]).astype(np.int64) + self.ry  # |rint| <= ry: the dilated lags kept
        cx = np.rint(pos[1, ok]).astype(np.int64) + self.rx
        vals = (self.dil[cy, cx] - self.med) / self.mad
        out = np.full(len(mats), -np.inf)
        # per lattice: the sum over its own points, in their order (as one lattice scored alone)
        kept = np.concatenate([[0], np.cumsum(ok)[ends - 1]])
        for i in range(len(mats)):
            k = int(kept[i + 1] - kept[i])
            if k >= 2:
                out[i] = float(vals[kept[i] : kept[i + 1]].sum() / np.sqrt(k))
        return out


@lru_cache(maxsize=8)
def _fit_sample(ry: int, rx: int) -> np.ndarray:
    """Flat indices into :class:`_LatticeFit`'s (2 ry + 1, 2 rx + 1) dilation of every 7th lag of the rows
    dy = 0 .. ry, then dy = -ry .. -1, at dx = 0 .. rx (the sample its median and MAD are taken from, in
    the order it always had). Cached, read-only."""
    rows = np.concatenate([np.arange(ry, 2 * ry + 1), np.arange(ry)])
    out = (rows[:, None] * (2 * rx + 1) + np.arange(rx, 2 * rx + 1)[None, :]).ravel()[::7].astype(np.intp)
    out.flags.writeable = False
    return out


def _median(x: np.ndarray) -> float:
    """``np.median`` of a 1-D float32 array of finite values: one partition at a single index and, for an
    even size, the largest sample below it, averaged in float32 as np.median does (~4x faster than
    np.median's two-index selection; the same number)."""
    k = x.size // 2
    part = np.partition(x, k)
    if x.size % 2:
        return float(part[k])
    return float((part[:k].max() + part[k]) / np.float32(2.0))


#: The last :class:`_LatticeFit` built (one per geometry search: the rotation seed and the final ranking
#: of :func:`scale_candidates` share it instead of dilating and sorting the same autocorrelation twice).
_FIT_CACHE: list[_LatticeFit] = []


def _lattice_fit(acf: np.ndarray, lh: int, lw: int, reach: float = 0.8) -> _LatticeFit:
    """The :class:`_LatticeFit` of ``acf`` (the last one built when it is for the same array)."""
    for fit in list(_FIT_CACHE):
        if fit.acf is acf and (fit.lh, fit.lw, fit.reach) == (lh, lw, reach):
            return fit
    fit = _LatticeFit(acf, lh, lw, reach)
    _FIT_CACHE[:] = [fit]
    return fit


@lru_cache(maxsize=64)
def half_plane(r: int) -> np.ndarray:
    """Lattice offsets (m, n), |m| <= r, 0 <= n <= r, one of each +-(m, n) pair (the ACF is even): (2, k)."""
    m, n = np.meshgrid(np.arange(-r, r + 1), np.arange(0, r + 1), indexing="ij")
    keep = (n > 0) | ((n == 0) & (m > 0))
    out = np.stack([m[keep], n[keep]]).astype(np.float64)
    out.flags.writeable = False
    return out
