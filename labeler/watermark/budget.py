"""The per-image strength budget of the image watermark (``strength=None``, :func:`labeler.watermark.embed`'s
default): per-block amplitudes from the image's own texture, scaled to a predicted SSIM and PSNR.

Design and measurements: ``docs/watermark.md`` ("Strength").
"""

from __future__ import annotations

import cv2
import numpy as np

from labeler.watermark.patterns import DWT_TILT, _dwt_band, _seen_share

__all__ = ["budget_mask", "BUDGET_SSIM", "BUDGET_PSNR", "BUDGET_SHAPE", "SINGLE_DCT_SHARE"]

# The per-image budget (``strength=None``). SSIM's contrast-structure term for a block of host standard
# deviation s with an added, uncorrelated change of RMS a is (2 s^2 + C2) / (2 s^2 + a^2 + C2), C2 =
# (0.03 * 255)^2 (Wang et al., IEEE TIP 13(4) 2004). Giving every block a = g sqrt((2 s^2 + C2) / C2)
# (BUDGET_SHAPE 0.5) makes that term the same everywhere: the same SSIM cost in flat and textured areas,
# g levels RMS of dither-like change where flat, more where texture masks it, at most _BUDGET_HI. The
# image-wide g is the largest that keeps the predicted SSIM at BUDGET_SSIM and the PSNR at BUDGET_PSNR:
# photos come out bound by either, flat images by SSIM, each image on its own (no corpus mean).
#
# Where the host is smooth, a `dct` mark does not survive a lossy codec: its energy is spread over 12
# coefficients of 1/8-3/16 cycle/px, each below half of JPEG q50's quantisation step (10-24 levels), and
# a smooth block has no texture to dither the quantiser, so the codec rounds the mark to 0 (measured on
# 6 gradient images: 0 decode after JPEG q50 or WebP q75, at strength 2 or at this budget). The `dwt`
# pattern, an octave lower, lands largely in the block means and first AC coefficients of the codec's
# blocks, which survive (6 of 6 after JPEG q50). So with method "dct" the budget carries the smooth
# blocks' share as a `dwt` mark (same key and payload, its own independent signs) and the textured
# blocks' as `dct`; the detector tries both methods anyway and its p-value counts both. The budget's
# `dwt` pattern is tilted to its lower coefficients (DWT_TILT), which SSIM sees least and codecs keep best.
#
# Activity for the budget is the smallest standard deviation of the 4 x 4 sub-blocks of a block: a block
# that holds one edge of flat vector art has a large standard deviation but flat quarters, where a mark
# scaled to the edge's contrast would show as a halo; real texture fills every quarter.
#: Predicted SSIM of the marked image (rounding included; the floor promised is 0.98; 0.9815 until the
#: `dwt` band limit, whose lower-frequency tile the prediction rates ~0.0005 optimistic).
BUDGET_SSIM = 0.982
#: PSNR (dB, 8-bit peak) the mark's RMS may reach on an image (the floor promised is 40 dB). 43, not 42:
#: on small textured photos, which are PSNR-bound, the SSIM prediction is optimistic (the 512 px
#: astronaut measured 0.9773 at 42 dB, 0.9798 at 42.5, 0.9821 at 43).
BUDGET_PSNR = 43.0
#: Exponent of the amplitude's growth with (2 s^2 + C2): 0.5 gives every block the same SSIM loss; more
#: puts the energy where SSIM (and the eye) charge least for it, the texture (the optimum of
#: sum(a) under sum(a^2 / (2 s^2 + C2)) fixed is 1).
BUDGET_SHAPE = 0.5
#: Largest RMS change of one block (8-bit levels).
_BUDGET_HI = 5.0
_SSIM_C2 = (0.03 * 255.0) ** 2
_SSIM_C1 = (0.01 * 255.0) ** 2
#: Sub-block side (pixels) of the budget's activity.
_SUB = 4
#: 8 x 8 block activity (levels) below which a block's budget goes to the `dwt` mark entirely, and above
#: which entirely to `dct` (linear share of the energy in between).
_SMOOTH_LO, _SMOOTH_HI = 1.5, 4.0
#: Share of textured 8 x 8 blocks (activity above _SMOOTH_HI, partly between) from which the whole
#: budget goes to one `dct` mark instead of the split: the detector reads each method on its own, so two
#: marks of part of the energy each read worse than one, and with this much texture to dither the
#: codecs' quantisers the `dct` mark survives them (the small corpus photos, 0.22-0.62 textured, after
#: a 2 degree rotation: 9 of 13 -> 12 of 13 found; flat, gradient and text / UI renders are 0-0.05).
SINGLE_DCT_SHARE = 0.15


def _block_min(sub: np.ndarray, k: int, hb: int, wb: int, op: str = "min") -> np.ndarray:
    """Minimum (or mean) over the k x k sub-blocks (k = 2 or 4) of every block -> (hb, wb).

    ``sub`` is edge-padded to (hb * k, wb * k). Pairwise ``np.minimum`` / ``+`` of strided views: a
    multi-axis ``min`` over a reshape is ~10x slower in numpy.
    """
    ph, pw = hb * k - sub.shape[0], wb * k - sub.shape[1]
    if ph > 0 or pw > 0:  # cv2's border copy: np.pad is ~20x slower on these small arrays
        sub = cv2.copyMakeBorder(np.ascontiguousarray(sub, np.float32), 0, max(ph, 0), 0, max(pw, 0),
                                 cv2.BORDER_REPLICATE)
    x = sub[: hb * k, : wb * k]
    while k > 1:
        if op == "min":
            x = np.minimum(np.minimum(x[0::2, 0::2], x[1::2, 0::2]), np.minimum(x[0::2, 1::2], x[1::2, 1::2]))
        else:
            x = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) * np.float32(0.25)
        k //= 2
    return np.ascontiguousarray(x)


def budget_mask(sub_activity: np.ndarray, h: int, w: int, method: str = "dct",
                sub_means: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-block amplitudes (RMS luma change, 8-bit levels, float32) of the per-image budget.

    Parameters
    ----------
    sub_activity : ndarray, float32, shape (ceil(H/4), ceil(W/4))
        Luma standard deviation of every 4 x 4 pixel block (8-bit levels), :func:`block_activity`.
    h, w : int
        Image size (pixels).
    method : {"dct", "dwt"}
        ``"dct"``: textured blocks carry a ``dct`` mark, smooth ones a ``dwt`` mark (module comment), or
        the whole budget goes to ``dct`` when textured blocks hold most of it (:data:`SINGLE_DCT_SHARE`);
        ``"dwt"``: a ``dwt`` mark everywhere.
    sub_means : ndarray, float32, optional
        Luma mean of every 4 x 4 block (levels). With it, blocks that sit wholly at 255 get
        :data:`CLIPPED_BOOST` x the amplitude and those wholly at 0 :data:`BLACK_FACTOR` x, and the fit
        charges what they really change (:func:`_pinned_factors`).

    Returns
    -------
    dct_mask, dwt_mask : ndarray or None
        Amplitude per 8 x 8 block (``dct``, shape (ceil(H/8), ceil(W/8))) and per 16 x 16 block
        (``dwt``); None where that mark gets no energy. A block of activity ``s`` (its smallest 4 x 4
        standard deviation) gets ``g * min(((2 s^2 + C2) / C2) ** BUDGET_SHAPE, 5 / g)``: ``g`` levels
        RMS where flat, growing with the texture that masks it; the energy is split between the two
        marks by smoothness. ``g`` is the largest factor that keeps both the predicted SSIM
        (:func:`_budget_scale`) at :data:`BUDGET_SSIM` and the RMS change (rounding included) at that
        of a :data:`BUDGET_PSNR` dB change, both with the per-block cap applied.
    """
    hb8, wb8, hb16, wb16 = -(-h // 8), -(-w // 8), -(-h // 16), -(-w // 16)
    act = sub_activity.astype(np.float32)
    dct, dwt = _budget_shapes(act, method, hb8, wb8, hb16, wb16)
    m8 = None if sub_means is None else _block_min(sub_means, 8 // _SUB, hb8, wb8, op="mean")
    if sub_means is not None and DARK_WEBER:
        f8 = cv2.LUT(cv2.convertScaleAbs(m8), _WEBER)  # rounded, saturated level -> factor
        dct = None if dct is None else dct * f8
        dwt = None if dwt is None else dwt * _block_min(f8, 2, hb16, wb16, op="mean")
    # SSIM's host variance per block, from within its quarters only: an edge's variance sits on a line
    # while the mark covers the whole block, so counting it predicts too little loss
    var8 = _block_min(act * act, 8 // _SUB, hb8, wb8, op="mean")
    lum = pinned = None
    if m8 is not None:  # SSIM's luminance term: 2 mu^2 + C1 per block (it charges dark blocks)
        lum = (2.0 * m8 * m8 + np.float32(_SSIM_C1)).astype(np.float32)
        pinned = _pinned_factors(sub_means, hb8, wb8, hb16, wb16)
        if pinned[0] is not None:  # a withheld mark moves no mean (see BLACK_FACTOR)
            lum[pinned[0] == np.float32(0.0)] = np.inf
    g = _budget_scale(dct, dwt, (2.0 * var8 + np.float32(_SSIM_C2)).astype(np.float32), hb8, wb8, lum,
                      _dwt_band(method))
    hi = np.float32(_BUDGET_HI)
    out = [None if m is None else np.minimum(m * g, hi) for m in (dct, dwt)]
    if pinned is not None:
        out = [None if m is None else (m if f is None else m * f) for m, f in zip(out, pinned, strict=True)]
    return out[0], out[1]


def _weber_table() -> np.ndarray:
    """Amplitude factor per 8-bit luma level (0..1): the same CIELAB lightness change as at mid-grey.

    dL*/dlevel of sRGB-coded grey (IEC 61966-2-1 decoding, CIE 1976 L*) peaks at 0.51 near level 25
    and is 0.41 at 128 and 0.34 at 245: a level of change is more visible on dark fills. Levels where
    it is larger than at 128 get the amplitude that gives the mid-grey lightness change; none gets more.
    """
    c = np.arange(257, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lstar = np.where(lin > 216 / 24389, 116.0 * np.cbrt(lin) - 16.0, lin * 24389 / 27)
    slope = np.diff(lstar)
    return np.minimum(slope[128] / slope, 1.0).astype(np.float32)


_WEBER = _weber_table()
#: Weight blocks by :data:`_WEBER` before the scale is fitted. It moves budget off dark fills onto the
#: rest of an image; an image that is dark all over is bound by SSIM as before and keeps its amplitude
#: (taking it away after the fit lost 2 of 2 dark UI renders after WebP q75).
DARK_WEBER = True


def _budget_shapes(act: np.ndarray, method: str, hb8: int, wb8: int, hb16: int,
                   wb16: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Relative amplitudes (1 in a flat block) of the `dct` (8 x 8 blocks) and `dwt` (16 x 16) marks."""
    c2 = np.float32(_SSIM_C2)

    def shape(s: np.ndarray) -> np.ndarray:
        return ((2.0 * s * s + c2) / c2) ** np.float32(BUDGET_SHAPE)

    a8 = _block_min(act, 8 // _SUB, hb8, wb8)
    a16 = _block_min(a8, 2, hb16, wb16, op="mean")  # a 16 x 16 block: the mean of its four 8 x 8 ones
    if method == "dwt":
        return None, shape(a16)

    def smooth(a: np.ndarray) -> np.ndarray:  # share of the energy that goes to `dwt`, 0..1
        return np.clip((np.float32(_SMOOTH_HI) - a) / np.float32(_SMOOTH_HI - _SMOOTH_LO), 0.0, 1.0)

    textured = 1.0 - smooth(a8)
    if float(textured.mean()) >= SINGLE_DCT_SHARE:  # one mark reads better than two halves
        return shape(a8), None
    dct = shape(a8) * np.sqrt(textured)
    dwt = shape(a16) * np.sqrt(smooth(a16))
    return (dct if np.any(dct > 0) else None), (dwt if np.any(dwt > 0) else None)


def _budget_scale(dct: np.ndarray | None, dwt: np.ndarray | None, c: np.ndarray, hb8: int,
                  wb8: int, lum: np.ndarray | None = None, band: float = 0.5) -> np.float32:
    """The largest ``g`` whose predicted SSIM and RMS change meet the budget (bisection to 1 %).

    ``c`` is ``2 v + C2`` per 8 x 8 block. Predicted SSIM: the mean over blocks of
    ``c / (c + seen energy + 1/12)`` ("seen": the share of each pattern's energy SSIM's window sees,
    :func:`_seen_share`; 1/12: the rounding), with the per-block cap applied (it binds on strong edges),
    times SSIM's luminance term ``1 - unseen energy / lum`` where ``lum`` (``2 mu^2 + C1`` per block) is
    given: the share of the change too slow for the window's variance moves its mean, which SSIM charges
    only near black (a dark photo, mean level 19, measured 0.9805 against 0.982 predicted without it).
    Each block of either pattern has the same energy and the two patterns' signs are independent, so
    the RMS is exact before clipping at 0 and 255; blocks pinned there are charged as unclipped, which
    their amplitude factors make true of what SSIM sees (:func:`_pinned_factors`). ``band``: the `dwt`
    tile's (:func:`_dwt_band`).
    """
    hi = np.float32(_BUDGET_HI)
    target = 255.0 * 10.0 ** (-BUDGET_PSNR / 20.0)
    target2 = max(target * target - 1.0 / 12.0, 0.0)  # rounding to integers adds ~1/12 level^2
    parts = []  # both marks on the 8 x 8 grid (a `dwt` block value repeated over its four 8 x 8 blocks)
    if dct is not None:
        parts.append((np.ascontiguousarray(dct, np.float32), np.float32(_seen_share("dct", 0.0, 0.5))))
    if dwt is not None:
        up = np.repeat(np.repeat(dwt, 2, axis=0), 2, axis=1)[:hb8, :wb8]
        parts.append((np.ascontiguousarray(up, np.float32),
                      np.float32(_seen_share("dwt", DWT_TILT, band))))
    # bracket around the uncapped small-change estimate (the cap only lowers the cost, so g >= it)
    e1 = sum(float(np.mean(np.square(m, dtype=np.float64))) for m, _ in parts)
    r1 = float(np.mean(sum(share * m * m for m, share in parts) / c, dtype=np.float64))
    g0 = min(np.sqrt(target2 / e1) if e1 > 0 else 64.0,
             np.sqrt((1.0 / BUDGET_SSIM - 1.0) / r1) if r1 > 0 else 64.0)
    # the bisection reads every other block row and column: the predictions are means, a quarter of
    # the blocks estimates them to well within the bisection's step
    c = np.ascontiguousarray(c[::2, ::2])
    inv_lum = None if lum is None else np.ascontiguousarray(np.float32(1.0) / lum[::2, ::2])
    parts = [(np.ascontiguousarray(m[::2, ::2]), share) for m, share in parts]
    seen = np.empty(c.shape, np.float32)
    unseen = np.zeros(c.shape, np.float32)
    tmp = np.empty(c.shape, np.float32)

    def fits(g: float) -> bool:
        seen.fill(0.0)
        unseen.fill(0.0)
        energy = 0.0
        for m, share in parts:
            np.multiply(m, np.float32(g), out=tmp)
            np.minimum(tmp, hi, out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            energy += float(tmp.mean(dtype=np.float64))
            if inv_lum is not None:
                np.add(unseen, tmp * (np.float32(1.0) - share), out=unseen)
            np.multiply(tmp, share, out=tmp)
            np.add(seen, tmp, out=seen)
        if energy > target2:
            return False
        np.add(seen, np.float32(1.0 / 12.0), out=seen)
        np.add(seen, c, out=seen)
        np.divide(c, seen, out=seen)
        if inv_lum is not None:
            np.multiply(seen, np.float32(1.0) - unseen * inv_lum, out=seen)
        return float(seen.mean(dtype=np.float64)) >= BUDGET_SSIM

    lo, hi_g = (0.5 * g0, 4.0 * g0) if fits(0.5 * g0) else (0.0, 0.5 * g0)
    for _ in range(9):  # to 1 % of g
        mid = 0.5 * (lo + hi_g)
        lo, hi_g = (mid, hi_g) if fits(mid) else (lo, mid)
    return np.float32(lo)


#: Amplitude factor of blocks that sit wholly at 255 (white UI panels and page backgrounds), where the
#: half of the change that points up is clipped away. What is left, a half-rectified pattern, has only
#: ``b^2 (1/2 - 1/(2 pi))`` of the unclipped change's variance: the rest shifts the block's mean, which
#: SSIM's luminance term hardly charges near 255 and the detector's prefilter removes. ``b = 1 / sqrt(1/2
#: - 1/(2 pi)) ~ 1.71`` makes that variance, what SSIM charges, equal to the unclipped change the fit
#: counts; the energy, what PSNR counts, is ``b^2 / 2 ~ 1.46`` x, the excess being the mean shift (white
#: pages come out at 43.0-43.2 dB against the 43 the fit aims at, the floor being 40). sqrt(2) until
#: 2026-12-06 matched the energy only: white pages came out at SSIM 0.985-0.987 against 0.982 (budget
#: unspent), and WebP q75 lost the mark on a white icon sheet of the held-out real-art class.
CLIPPED_BOOST = float(1.0 / np.sqrt(0.5 - 0.5 / np.pi))
#: Amplitude factor of blocks that sit wholly at 0 (black bars, pure black backgrounds): no mark. What
#: the clip leaves there moves the block's mean off 0, which SSIM's luminance term charges in full near
#: black, and charging it starved the rest of the image (a letterboxed wallpaper came out at PSNR 50.7
#: dB and lost WebP q75) or, where the prediction missed it, broke the floor (a photo on a black canvas:
#: SSIM 0.9716). The fit still counts these blocks as ordinary flat ones (without the luminance term),
#: so the rest of the image gets what it would get if they were marked, not their share on top.
BLACK_FACTOR = 0.0
#: Share of 8 x 8 blocks at 0 from which they are marked anyway, at sqrt(2) as before 2026-12-06: a
#: picture that is (almost) all black would otherwise carry nothing.
BLACK_MARK_SHARE = 0.95


def _pinned_factors(sub_means: np.ndarray, hb8: int, wb8: int, hb16: int,
                    wb16: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Amplitude factors of the 8 x 8 (``dct``) and 16 x 16 (``dwt``) blocks that sit wholly at 255
    (:data:`CLIPPED_BOOST`) or at 0 (:data:`BLACK_FACTOR`, or sqrt(2) from :data:`BLACK_MARK_SHARE`):
    every 4 x 4 block mean within half a level of that end; 1 elsewhere. None for a grid with none."""
    out: list[np.ndarray | None] = []
    for k, hb, wb in ((8 // _SUB, hb8, wb8), (16 // _SUB, hb16, wb16)):
        white = _block_min(sub_means, k, hb, wb) >= np.float32(254.5)
        black = -_block_min(-sub_means, k, hb, wb) <= np.float32(0.5)
        if not (white.any() or black.any()):
            out.append(None)
            continue
        dark = BLACK_FACTOR if float(black.mean()) < BLACK_MARK_SHARE else float(np.sqrt(2.0))
        f = np.where(white, np.float32(CLIPPED_BOOST), np.float32(1.0))
        out.append(np.where(black, np.float32(dark), f).astype(np.float32))
    return out[0], out[1]
