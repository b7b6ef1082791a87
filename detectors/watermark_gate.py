"""The image detector's gate: whether the rescale / rotation search is worth running on an image.

:func:`detectors.watermark.detect` reads the image as given first; where that finds nothing, the lattice
estimate and its keyed reads (``detectors.watermark._Search.geometry``, ~30-60 ms on a large image) run
only where :func:`lattice_shows` says a mark's lattice may be there. The gate reads the image only, never
the key, and skipping the search removes reads whose hypotheses the p-value still counts, so it stays a
valid bound. Design and measurements: ``docs/watermark.md``, "Gate" (issue #17).
"""

from __future__ import annotations

import cv2
import numpy as np

from labeler.watermark.lattice_evidence import EVIDENCE_SIDE, lattice_scores
from labeler.watermark.transforms import Prefiltered

__all__ = ["lattice_shows", "flat_share", "dense_share", "SCALE_RANGE", "LATTICE_MIN", "LATTICE_RING_MIN",
           "GATE_FLAT_RMS", "GATE_FLAT_SHARE", "GATE_DENSE_STD", "GATE_DENSE_SHARE"]

#: Range of rescale factors the lattice estimate searches. Down to 0.38: a social-media upload of a
#: 2560 px wide image resized to 1080 px is 0.42x (outside the earlier 0.45, where every such image
#: was missed: 5 of 5 read at 0.38). The estimate reads the image only, never the key, so the range
#: does not enter the p-value; the number of candidates tried (which does) is unchanged.
SCALE_RANGE = (0.38, 2.2)
#: The rescale / rotation search of an image of >= 1024 px a side runs only where a lattice of the
#: searched periods and rotations shows (:func:`lattice_shows`): a lattice evidence score
#: (:attr:`labeler.watermark.lattice_evidence.LatticeScores.total`, ~N(0, 1) per lattice without one)
#: of at least this, read at half resolution. Measured (2026-12-05, images >= 1024 px a side): unmarked
#: photos 6.2 median, 10.6 at the 99th percentile, 14.1 at most (84 crops, rescales, rotations, JPEG
#: q40-95 of the 8 large corpus photos); every marked photo the search decodes 23.7 or more (245 cases:
#: rescales 0.38-2.2, rotations to 3 degrees, with JPEG q40-90 and WebP), most of them over 100. Flat
#: art and text renders often reach it (a third of 75): LATTICE_RING_MIN tells most of them apart.
#: Re-measure with ``benchmarks/watermark_lattice_gate.py`` (marks enlarged first to stay >= 1024 px:
#: 0.38x resizes score >= 130, the lowest decoded 20.0 after 0.5x + WebP q75). The score reads the
#: image only, never the key, so skipping the search removes reads and the p-value (which counts them
#: all) stays a valid bound.
LATTICE_MIN = 12.0
#: ... and its score with every lag standardised by the lags at the same radius (the mean and spread of
#: its ring, :attr:`labeler.watermark.lattice_evidence.LatticeScores.ring_total`) of at least this. The
#: edges and outlines of flat art and the lines of text lift the autocorrelation of whole rings near the
#: origin, so the small periods' lattices pass LATTICE_MIN without a mark (19-42 on clean art, where the
#: search then cost ~4-8x the image's decode); a mark's lattice is isolated peaks, which stand out of
#: their rings too. Measured 2026-12-07 (``benchmarks/watermark_lattice_gate.py --content 5 --texture
#: 8``, 620 marked cases, 462 decoded by the forced search; docs/watermark.md, "Gate"): the decoded
#: marks where the evidence decides (not dense texture) score 12.9 or more (photos after
#: 0.5x + WebP q75; flat art >= 29.8, gradients >= 31.6, text >= 23.2); unmarked photo variants 8.6 at
#: most, unmarked flat art 12.5, gradients 7.7, text 11.3 (most art under 8).
LATTICE_RING_MIN = 9.0
#: The lattice evidence is trusted only where its window is mostly flat and not dense texture; elsewhere
#: the search runs as if the lattice showed. The key-free autocorrelation grows with the square of the
#: mark's share of the local residual, the keyed read with its first power, so where the host leaves the
#: mark a small share (grain, foliage, gravel; the hard block edges of nearest-neighbour upscaled pixel
#: art) a mark the search decodes leaves almost no lattice. Two rules, either sends the image to the
#: search: a flat share (:data:`GATE_FLAT_SHARE`) of the window's samples whose local residual RMS (the
#: prefilter's 8 x 8 pixel blocks, half-resolution band, floor included) is at most
#: :data:`GATE_FLAT_RMS` levels under 0.75 (2026-12-06: 87 decoded marks on synthetic texture, all under
#: 0.65; pixel art upscaled 6-16x: 0.08-0.34, whose marks after a 1.3-1.7x rescale or a small rotation
#: score 4.9-10.6); and a dense-texture share of at least :data:`GATE_DENSE_SHARE`: 8 x 8 blocks with a
#: luma standard deviation over :data:`GATE_DENSE_STD` levels in each of their four 4 x 4 quarters (the
#: embedder's own texture measure; from 15 % of such blocks on it gives an image one texture-masked mark
#: whose flat areas carry little, :data:`labeler.watermark.budget.SINGLE_DCT_SHARE`). The second catches
#: what the first misses: pictures with 15-25 % of grain over smooth shading keep a flat share of
#: 0.81-0.84, and their marks shrunk to 0.38x scored 5.3-7.7 (2 of 89 decoded marks in a study lost
#: until 2026-12-07; dense share 0.12 and 0.20). Every corpus photo variant has a dense share of 0.085
#: at most, text renders 0.02-0.13, vector art under 0.04 (docs/watermark.md, "Gate"). For a few hours
#: on 2026-12-07 the dense share replaced the flat share; an adversarial check found pixel art it lost
#: (11 of 59 decoded marks), whose blocks are edges on flat ground, not texture.
GATE_FLAT_RMS = 6.0
GATE_FLAT_SHARE = 0.75
GATE_DENSE_STD = 4.0
GATE_DENSE_SHARE = 0.10


def lattice_shows(z_img: Prefiltered, tile: int) -> bool:
    """Whether a mark's lattice of the searched rescales (:data:`SCALE_RANGE`) and rotations may be in the
    image (see :data:`LATTICE_MIN` and :data:`LATTICE_RING_MIN`); always True below 1024 px a side, where
    the evidence is too weak to tell (a 512 px marked photo halved scores as low as unmarked art), and
    where the window is less than :data:`GATE_FLAT_SHARE` flat or dense texture (:data:`GATE_DENSE_SHARE`):
    there the host hides the lattice of a mark the search decodes.

    One read of the centred :data:`~labeler.watermark.lattice_evidence.EVIDENCE_SIDE` window of the
    half-resolution prefiltered image (twice the field of view: enlarged marks, whose periods reach
    282 px). A second read of the full-resolution window (for marks shrunk below ~0.6x, whose band moves
    above 1/4 cycle per pixel) was dropped on 2026-12-05: on every decoded mark of the gate benchmark
    (photos and flat / gradient / text art, 0.38x resizes included) the half-resolution read scored
    higher, never below 20 against a cut of 12 (docs/watermark.md, "Gate").
    """
    if min(z_img.half.shape) < EVIDENCE_SIDE or flat_share(z_img.weight) < GATE_FLAT_SHARE:
        return True
    if dense_share(z_img.y) >= GATE_DENSE_SHARE:
        return True
    lo, hi = SCALE_RANGE
    scores = lattice_scores(z_img.half, lo * tile / 2, hi * tile / 2, ring_above=LATTICE_MIN)
    return scores.total >= LATTICE_MIN and scores.ring_total >= LATTICE_RING_MIN


def flat_share(weight: np.ndarray) -> float:
    """Share (0..1) of the centred :data:`~labeler.watermark.lattice_evidence.EVIDENCE_SIDE` window of the
    prefilter's half-resolution weight (the inverse local residual RMS) whose RMS is at most
    :data:`GATE_FLAT_RMS` levels."""
    side = EVIDENCE_SIDE
    y0, x0 = (weight.shape[0] - side) // 2, (weight.shape[1] - side) // 2
    win = weight[y0 : y0 + side, x0 : x0 + side]
    return float(np.count_nonzero(win >= np.float32(1.0 / GATE_FLAT_RMS))) / win.size


def dense_share(y: np.ndarray) -> float:
    """Share (0..1) of the 8 x 8 pixel blocks of the luma ``y`` (levels) whose four 4 x 4 quarters all have
    a standard deviation over :data:`GATE_DENSE_STD`: texture, not an edge on flat ground.

    Read in the gate's field of view (the centred window of ``2 * EVIDENCE_SIDE`` px a side), on every
    other row of blocks: the same share within a few thousandths, at half the cost (~0.6 ms a 1024 px
    window, two area resamplings to the quarters' means and mean squares).
    """
    side = 2 * EVIDENCE_SIDE
    h, w = y.shape
    ch, cw = min(h, side) // 16 * 16, min(w, side) // 8 * 8
    if ch == 0 or cw == 0:
        return 0.0  # not one row of blocks (the gate never asks below 1024 px a side)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    bands = y[y0 : y0 + ch, x0 : x0 + cw].reshape(ch // 16, 16, cw)[:, :8, :]  # alternate block rows
    win = bands.reshape(-1, cw).astype(np.float32)
    size = (cw // 4, win.shape[0] // 4)
    mean = cv2.resize(win, size, interpolation=cv2.INTER_AREA)
    var = cv2.subtract(cv2.resize(cv2.multiply(win, win), size, interpolation=cv2.INTER_AREA),
                       cv2.multiply(mean, mean))
    least = np.minimum(np.minimum(var[0::2, 0::2], var[1::2, 0::2]),
                       np.minimum(var[0::2, 1::2], var[1::2, 1::2]))
    return float(np.count_nonzero(least > np.float32(GATE_DENSE_STD**2))) / max(least.size, 1)
