"""The geometry search's cheaper code paths (issue #17) give the numbers of the plain ones they replaced.

The lattice estimate of :mod:`labeler.watermark.lattice` now dilates only the lags a lattice can reach,
keeps the score's lattice index per window size, takes medians by one partition and writes its
autocorrelations and ``geometry_image`` into work arrays it fills in place. Each is
checked here against the straightforward computation, on a real photo (``samples/photo.jpg``), marked
and resized like the images the search runs on.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from labeler.watermark import embed
from labeler.watermark.acf import whitened_acf
from labeler.watermark.lattice import (
    _acf2d,
    _lattice,
    _lattice_score,
    _LatticeFit,
    _median,
    scale_candidates,
)
from labeler.watermark.transforms import geometry_image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(scope="module")
def luma() -> np.ndarray:
    """The sample photo, marked, resized by 0.8 (a lattice of period ~102 px), as 8-bit luma."""
    img = np.asarray(Image.open(SAMPLES / "photo.jpg").convert("RGB"))
    marked = embed(img, bytes(8), key=b"s" * 32)
    h, w = marked.shape[:2]
    small = cv2.resize(marked, (round(0.8 * w), round(0.8 * h)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def _plain_fit(acf: np.ndarray, lh: int, lw: int, reach: float = 0.8) -> tuple[np.ndarray, float, float]:
    """The whole-array dilation, median and MAD as _LatticeFit computed them before."""
    sh, _ = acf.shape
    dil = cv2.dilate(acf, np.ones((3, 3), np.uint8))
    ry, rx = int(reach * lh), int(reach * lw)
    region = np.concatenate([dil[: ry + 1, : rx + 1].ravel(), dil[sh - ry :, : rx + 1].ravel()])[::7]
    med = float(np.median(region))
    return dil, med, 1.4826 * float(np.median(np.abs(region - med))) + 1e-12


def test_lattice_fit_reads_the_dilation_of_the_whole_array(luma: np.ndarray) -> None:
    acf, lh, lw = _acf2d(geometry_image(luma), 512)
    cases = [(acf, lh, lw), (np.random.default_rng(3).normal(size=(8, 8)).astype(np.float32), 5, 5)]
    for a, h, w in cases:  # the second: a window too small for four quadrants (the gathered fallback)
        fit = _LatticeFit(a, h, w)
        dil, med, mad = _plain_fit(a, h, w)
        sh, sw = a.shape
        dy, dx = np.arange(-fit.ry, fit.ry + 1), np.arange(-fit.rx, fit.rx + 1)
        assert np.array_equal(fit.dil, dil[dy[:, None] % sh, dx[None, :] % sw])
        assert (fit.med, fit.mad) == (med, mad)
    fit = _LatticeFit(acf, lh, lw)
    mats = [s * 128 * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
            for s in (0.5, 0.8, 1.6) for t in np.radians([-2.0, 0.0, 1.0])]
    scores = fit.many(mats)
    dil, med, mad = _plain_fit(acf, lh, lw)
    sh, sw = acf.shape
    for mat, got in zip(mats, scores, strict=True):  # one lattice alone, read from the whole dilation
        r = int(max(lh, lw) / max(abs(float(np.linalg.det(mat))) ** 0.5, 1.0)) + 1
        m, n = np.meshgrid(np.arange(-r, r + 1), np.arange(0, r + 1), indexing="ij")
        keep = (n > 0) | ((n == 0) & (m > 0))
        pos = mat @ np.stack([m[keep], n[keep]]).astype(np.float64)
        ok = (np.abs(pos[0]) <= fit.ry) & (np.abs(pos[1]) <= fit.rx)
        cy, cx = np.rint(pos[0, ok]).astype(np.int64) % sh, np.rint(pos[1, ok]).astype(np.int64) % sw
        assert got == float(((dil[cy, cx] - med) / mad).sum() / np.sqrt(ok.sum()))


@pytest.mark.parametrize(("reach", "dilate"), [(0.8, 1), (0.5, 9)])
def test_lattice_score_with_its_cached_index_equals_the_direct_gather(luma: np.ndarray, reach: float,
                                                                      dilate: int) -> None:
    acf, lh, lw = _acf2d(geometry_image(luma), 512)
    periods = np.arange(0.38 * 128, 256, 0.25, dtype=np.float32)
    got = _lattice_score(acf, lh, lw, periods, reach, dilate)
    sh, _ = acf.shape
    m, n, ok = _lattice(periods, lh, lw, reach)
    ry, rx = int(np.ceil(reach * lh)) + 1, int(np.ceil(reach * lw)) + 1
    y0 = np.clip(np.floor(m[None] * periods[:, None]).astype(np.int64), -ry, ry)
    x0 = np.clip(np.floor(n[None] * periods[:, None]).astype(np.int64), 0, rx)
    h = dilate // 2
    kernel = np.ones((dilate, dilate), np.uint8)
    upper = cv2.dilate(acf[: ry + 2 + h, : rx + 2 + h], kernel)[: ry + 2, : rx + 2]
    lower = cv2.dilate(acf[sh - ry - 1 - h :, : rx + 2 + h], kernel)[h:, : rx + 2]
    region = np.concatenate([lower, upper])
    rows = np.maximum(region[:-1], region[1:])
    top = np.maximum(rows[:, :-1], rows[:, 1:])
    want = np.where(ok, top[y0 + ry + 1, x0], 0.0).sum(axis=1) / np.sqrt(np.maximum(ok.sum(axis=1), 1))
    assert np.array_equal(got, want)
    assert _lattice_score(acf, lh, lw, periods, reach, dilate) is not got  # a new array every call


def test_median_is_numpys() -> None:
    rng = np.random.default_rng(5)
    for size in (1, 2, 7, 8, 4097, 8192):
        for x in (rng.normal(size=size).astype(np.float32), rng.integers(0, 4, size).astype(np.float32)):
            assert _median(x) == float(np.median(x))


def test_reused_work_arrays_leave_no_trace(luma: np.ndarray) -> None:
    """Interleaved sizes, repeated calls and two threads at once give the numbers of a first call, and
    what a call returned is not overwritten by the next one."""
    z = geometry_image(luma)
    first = scale_candidates(z, 128, 0.38, 2.2, count=4)
    acf_big, _, _ = _acf2d(z, 512)
    keep = acf_big.copy()
    small = np.ascontiguousarray(z[:300, :420])
    acf_small, _, _ = _acf2d(small, 512)
    win = np.ascontiguousarray(z[:512, :512])
    cyclic = whitened_acf(win)
    assert np.array_equal(acf_big, keep)  # not a work array
    assert np.array_equal(_acf2d(z, 512)[0], keep)
    assert np.array_equal(whitened_acf(win), cyclic)
    assert np.array_equal(_acf2d(small, 512)[0], acf_small)
    luma_f = luma.astype(np.float32)
    before = luma_f.copy()
    g1 = geometry_image(luma_f)
    g1_copy = g1.copy()
    g2 = geometry_image(luma)
    assert np.array_equal(luma_f, before)  # the input is never written
    assert np.array_equal(g1, g1_copy) and np.array_equal(g1, g2)  # a returned image is not reused
    out: dict[int, list[np.ndarray]] = {}

    def run(i: int) -> None:
        res = []
        for _ in range(3):
            res += scale_candidates(geometry_image(luma if i else luma_f), 128, 0.38, 2.2, count=4)
            res.append(_acf2d(small, 512)[0])
        out[i] = res

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = (first + [acf_small]) * 3
    for i in range(2):
        assert len(out[i]) == len(want)
        assert all(np.array_equal(a, b) for a, b in zip(out[i], want, strict=True))
