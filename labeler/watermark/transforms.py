"""Vectorized transforms: colour <-> luma, 8x8 block DCT by matrix products, DWT, detector prefilter, fold.

Everything works in 8-bit luma units (0..255, whatever the input bit depth), float32 (the detector
keeps 8-bit luma as uint8 until its first product), and has no Python loop over pixels or blocks:
blocks are a reshape, the block DCT is two matrix products with the orthonormal DCT-II matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pywt

from labeler.watermark.payload import TooSmallForWatermark, WatermarkError

#: BT.601 luma weights (ITU-R BT.601-7, section 2.5.1), the ones JPEG/JFIF uses for Y'CbCr.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Smallest side accepted by embed and detect (pixels): one 128 x 128 tile must fit.
MIN_SIDE = 128
#: Pixels from which the payload of a fresh mark reads back reliably. Below it the pilot still shows but
#: the 258 coded bits get few chips each and the CRC fails on some pictures: measured (2026-12-06, random
#: crops of 8 corpus photos, 4 random keys each, read as embedded / after JPEG q85) 4 / 5 of 32 lost at
#: 128 x 128, 4 / 6 at 160 x 160, 1 / 1 at 192 x 192, 4 / 4 at 256 x 128, none of 32 at 224 x 224 and
#: 256 x 256 (1 of 20 at 512 x 128); a QA pass lost 24 of 40 on flat 128 x 128 crops. Smaller pictures
#: are still marked (the mark costs nothing) with a warning.
RELIABLE_PIXELS = 256 * 256


def dct_matrix(n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II matrix ``D`` (n x n, float32): ``D @ x`` is the DCT of a length-n column."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


_D8 = dct_matrix(8)


def block_dct(x: np.ndarray, n: int = 8, keep: int | None = None) -> np.ndarray:
    """2-D DCT of every n x n block of ``x`` (H, W both multiples of n) -> array (H/n, W/n, k, k).

    Computed as ``D @ B @ D.T`` for all blocks at once: the row transform is one batched product over
    block rows with a long inner dimension, the column transform one (N x n) @ (n x k) product. With
    ``keep`` = k only the frequencies u, v < k are computed (k = n by default): the detector reads
    coefficients up to 3 or 4, so it does a half to a quarter of the work.
    """
    d = _D8 if n == 8 else dct_matrix(n)
    k = n if keep is None else int(keep)
    d = d[:k]
    h, w = x.shape
    nby, nbx = h // n, w // n
    rows = np.matmul(d, x.reshape(nby, n, w))  # (nby, k, w): transform along y inside each block row
    coef = rows.reshape(nby, k, nbx, n) @ d.T  # transform along x inside each block
    return coef.transpose(0, 2, 1, 3)  # (nby, nbx, u, v)


def block_idct(coef: np.ndarray) -> np.ndarray:
    """Inverse of :func:`block_dct`: (nby, nbx, n, n) coefficients -> (nby*n, nbx*n) samples."""
    nby, nbx, n, _ = coef.shape
    d = _D8 if n == 8 else dct_matrix(n)
    x = d.T @ coef @ d
    return x.transpose(0, 2, 1, 3).reshape(nby * n, nbx * n)


def haar_ll_synthesis(ll: np.ndarray) -> np.ndarray:
    """Pixel-domain image of an LL-subband array (detail subbands zero), by ``pywt.idwt2`` ('haar')."""
    zeros = np.zeros_like(ll)
    return pywt.idwt2((ll, (zeros, zeros, zeros)), "haar").astype(np.float32)


def haar_ll(x: np.ndarray) -> np.ndarray:
    """LL subband of a one-level 'haar' DWT, float32, half size (odd sides padded).

    Equal to ``pywt.dwt2(x, "haar", mode="periodization")[0]`` (pywavelets extends an odd side by its
    last sample; tested): the Haar LL sample is twice the mean of a 2 x 2 block, which cv2's area resize
    computes ~40x faster than the generic ``dwtn``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    h, w = x.shape
    if h % 2 or w % 2:
        x = cv2.copyMakeBorder(x, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return cv2.resize(x, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA) * np.float32(2.0)


def _check_image(image: np.ndarray) -> tuple[int, int, int]:
    if not isinstance(image, np.ndarray):
        raise WatermarkError("image must be a numpy array")
    if image.dtype not in (np.uint8, np.uint16):
        raise WatermarkError(f"image dtype must be uint8 or uint16, not {image.dtype}")
    if image.ndim == 2:
        channels = 1
    elif image.ndim == 3 and image.shape[2] in (1, 2, 3, 4):
        channels = image.shape[2]
    else:
        raise WatermarkError(f"image shape {image.shape} is not (H, W) or (H, W, 1|2|3|4)")
    h, w = image.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise TooSmallForWatermark(f"image is {w}x{h}; the watermark needs at least {MIN_SIDE}x{MIN_SIDE} "
                                   "pixels")
    return h, w, channels


def native_order(image: np.ndarray) -> np.ndarray:
    """``image`` with 16-bit samples in the machine's byte order: a big-endian ``>u2`` array (read with
    ``np.frombuffer`` from a PNG, FITS or raw file) is the same uint16 picture, which
    :func:`labeler.label` accepts in either order; other arrays are returned as they are."""
    dtype = getattr(image, "dtype", None)
    if isinstance(image, np.ndarray) and dtype.kind == "u" and dtype.itemsize == 2 and not dtype.isnative:
        return image.astype(np.uint16)
    return image


def _scale(image: np.ndarray) -> float:
    return 257.0 if image.dtype == np.uint16 else 1.0  # 65535 / 255: work in 8-bit units for all depths


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8/uint16 gray, gray+alpha, RGB or RGBA image, float32 in 8-bit units."""
    image = native_order(image)
    _check_image(image)
    return _luma(image)


def _luma(image: np.ndarray) -> np.ndarray:
    """:func:`luma` of an already validated image (any number of rows: embed works in strips)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels <= 2:
        y = image if image.ndim == 2 else image[:, :, 0]
        y = y.astype(np.float32)
    elif image.dtype == np.uint8:
        # cv2's fixed-point RGB->gray uses the same BT.601 weights and is ~5x faster than a float dot
        y = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    else:
        y = image[:, :, :3].astype(np.float32) @ LUMA_WEIGHTS
    s = _scale(image)
    return y if s == 1.0 else y * np.float32(1.0 / s)


def luma_fast(image: np.ndarray) -> np.ndarray:
    """:func:`luma`, but uint8 (rounded, no float pass) for 8-bit images; float32 for 16-bit ones.

    For the detector, whose prefilter takes either, and the embedder's texture mask (exact integer
    block sums for 8-bit images).
    """
    image = native_order(image)
    _check_image(image)
    return _luma_fast(image)


def _luma_fast(image: np.ndarray) -> np.ndarray:
    """:func:`luma_fast` of an already validated image (any number of rows: embed works in strips)."""
    if image.dtype != np.uint8:
        return _luma(image)
    if image.ndim == 2 or image.shape[2] <= 2:
        return image if image.ndim == 2 else image[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)


def add_luma(image: np.ndarray, delta: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Add a luma change ``delta`` (float32, 8-bit units, shape (H, W)) to the colour channels.

    The same value goes to R, G and B: BT.601 luma weights sum to 1, so luma changes by exactly
    ``delta`` while Cb and Cr (differences B-Y and R-Y) do not change at all, so no colour shift
    (before rounding and clipping). Alpha is copied unchanged. Returns a new array of the input dtype.

    ``delta`` is rounded once to integers of the image's depth and added with saturation (cv2's
    mixed-depth add), which equals rounding and clipping the float sum per channel up to ties. With
    ``out`` (C-contiguous, the image's shape and dtype) the result is written there and returned.
    """
    scale = _scale(image)
    dtype = image.dtype
    if image.ndim == 2 or image.shape[2] == 1:
        colour, c = 1, 1
    else:
        c = image.shape[2]
        colour = 3 if c >= 3 else 1
    src = np.ascontiguousarray(image).reshape(image.shape[0], image.shape[1], c)
    if out is None:
        out = np.empty_like(src)
    if dtype == np.uint8 and c == 3:
        # The rounded change split into its positive and negative parts, each saturated to uint8 and
        # replicated to R, G and B, then a saturating add and subtract: the same result as clipping
        # the int16 sum (one part is 0 at every pixel), in uint8 SIMD passes, ~25 % faster.
        dst = out.reshape(src.shape)
        pos = cv2.cvtColor(cv2.add(delta, 0.0, dtype=cv2.CV_8U), cv2.COLOR_GRAY2RGB)
        neg = cv2.cvtColor(cv2.subtract(0.0, delta, dtype=cv2.CV_8U), cv2.COLOR_GRAY2RGB)
        cv2.add(src, pos, dst=dst)
        cv2.subtract(dst, neg, dst=dst)
        return out.reshape(image.shape)
    if dtype == np.uint8:
        # one rounding pass to int16, then cv2's saturating mixed-depth add (uint8 + int16 -> uint8)
        d = np.rint(delta).astype(np.int16)
        cv_depth = cv2.CV_8U
    else:
        d = np.rint(delta * np.float32(scale)).astype(np.int32)
        cv_depth = cv2.CV_16U
    dst = out.reshape(src.shape)
    if c == 1:
        cv2.add(src[:, :, 0], d, dst=dst[:, :, 0], dtype=cv_depth)
    else:
        planes = [d] * colour + [np.zeros_like(d)] * (c - colour)  # alpha (last plane) gets no change
        cv2.add(src, cv2.merge(planes), dst=dst, dtype=cv_depth)
    return out.reshape(image.shape)


#: Rows of pixels the embedder (and :func:`block_activity`) processes at a time: the luma, block sums
#: and delta of a strip stay in the CPU cache, so the image itself is read twice and written once. A
#: multiple of 16 (the largest mask block) that divides the 128 px tile.
STRIP_ROWS = 64


def block_activity(y: np.ndarray, n: int = 8) -> np.ndarray:
    """Standard deviation of luma in every n x n block (8-bit units), shape (ceil(H/n), ceil(W/n)).

    By Parseval this is the RMS of the block's AC DCT coefficients / n, the texture energy that masks
    an added pattern. Partial edge blocks reuse the nearest full block's value.
    """
    h, w = y.shape
    return strip_activity(lambda r0, r1: y[r0:r1], h, w, n)


def strip_activity(rows: Callable[[int, int], np.ndarray], h: int, w: int, n: int,
                   means: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """:func:`block_activity` of an h x w luma image delivered in strips by ``rows(r0, r1)``.

    ``rows`` returns luma rows r0..r1-1 (uint8, or float32 in 8-bit units). Block sums of y and y^2
    come from cv2's integral images in float64, exact for 8-bit luma; strips of :data:`STRIP_ROWS`
    rows keep the work in the cache, and the same strips are used whatever the caller, so the
    embedder's strip-wise mask equals the one computed from a whole luma array bit for bit. With
    ``means`` the block means (8-bit levels, same shape) are returned too: ``(activity, means)``.
    """
    nby, nbx = h // n, w // n
    m1 = np.empty((nby, nbx), np.float64)
    m2 = np.empty((nby, nbx), np.float64)
    step = STRIP_ROWS - STRIP_ROWS % n
    inv = 1.0 / (n * n)
    for r0 in range(0, nby * n, step):
        r1 = min(nby * n, r0 + step)
        y = rows(r0, r1)[:, : nbx * n]
        depth = cv2.CV_32S if y.dtype == np.uint8 else cv2.CV_64F
        s, q = cv2.integral2(y, sdepth=depth, sqdepth=cv2.CV_64F)
        s, q = s[::n, ::n].astype(np.float64), q[::n, ::n]  # the integral at block corners
        b0, b1 = r0 // n, r1 // n
        m1[b0:b1] = (s[1:, 1:] - s[:-1, 1:] - s[1:, :-1] + s[:-1, :-1]) * inv
        m2[b0:b1] = (q[1:, 1:] - q[:-1, 1:] - q[1:, :-1] + q[:-1, :-1]) * inv
    act = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    py, px = -(-h // n) - nby, -(-w // n) - nbx
    if py or px:
        act = np.pad(act, ((0, py), (0, px)), mode="edge")
        m1 = np.pad(m1, ((0, py), (0, px)), mode="edge")
    if means:  # also the block means (levels), from the same sums
        return act.astype(np.float32), m1.astype(np.float32)
    return act.astype(np.float32)


class Prefiltered:
    """The detector's prefiltered luma ``z = W * (y - U(low))``, kept in parts so folding is cheap.

    ``low`` (a wide low-pass of the luma) and ``W_h`` (a local-energy weight) are half-resolution
    arrays; ``U`` repeats each half-resolution sample over its 2 x 2 pixel block and ``W = U(W_h)``.
    Then ``W * U(low) = U(W_h * low)``, and ``U`` commutes exactly with folding (the tile side is even
    and both grids start at the image's corner), so ``fold(z) = fold(W * y) - U(fold(W_h * low))``:
    the low-pass term is folded at a quarter of the cost, and ``W * y`` is formed and folded strip by
    strip (64 rows at a time, in the cache), never as a full-size array.

    Attributes
    ----------
    y : ndarray (H2, W2), uint8 or float32
        Luma cropped to even sides (8-bit units).
    weight : ndarray (H2 / 2, W2 / 2), float32
        ``W_h``, the half-resolution weight.
    low : ndarray (H2 / 2, W2 / 2), float32
        The low-pass at half resolution (``lw = W_h * low`` is formed when a full fold needs it).
    half : ndarray (H2 / 2, W2 / 2), float32
        ``W_h * (pyrDown(y) - low)``: the prefiltered image at half resolution (:meth:`fold_half`).
    """

    def __init__(self, y: np.ndarray, weight: np.ndarray, low: np.ndarray, half: np.ndarray) -> None:
        self.y, self.weight, self.low, self.half = y, weight, low, half
        self._lw: np.ndarray | None = None
        self._folds: dict[int, np.ndarray] = {}
        self._half_folds: dict[int, np.ndarray] = {}

    @property
    def lw(self) -> np.ndarray:
        """``W_h * low`` at half resolution (float32), computed once."""
        if self._lw is None:
            self._lw = cv2.multiply(self.low, self.weight)
        return self._lw

    @property
    def shape(self) -> tuple[int, int]:
        """(H2, W2): the even-sided size of the prefiltered image (pixels)."""
        h, w = self.y.shape
        return h, w

    def _weight_rows(self, r0: int, r1: int) -> np.ndarray:
        """``W`` for pixel rows r0..r1-1 (both even): the weight's rows repeated 2 x 2, exactly."""
        w = self.y.shape[1]
        return cv2.resize(self.weight[r0 // 2 : r1 // 2], (w, r1 - r0), interpolation=cv2.INTER_NEAREST_EXACT)

    def image(self) -> np.ndarray:
        """The prefiltered image ``z`` itself (float32, H2 x W2)."""
        h, w = self.y.shape
        wy = cv2.multiply(self.y, self._weight_rows(0, h), dtype=cv2.CV_32F)
        up = cv2.resize(self.lw, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)  # exact 2 x 2 repetition
        return cv2.subtract(wy, up)

    def fold(self, tile: int) -> np.ndarray:
        """``fold(z, tile)`` for an even ``tile`` (pixels), computed from the parts; cached."""
        out = self._folds.get(tile)
        if out is None:
            low = fold(self.lw, tile // 2)
            out = self._fold_wy(tile) - np.repeat(np.repeat(low, 2, axis=0), 2, axis=1)
            self._folds[tile] = out
        return out

    def row_bands(self, tile: int, step: int) -> Prefiltered:
        """The parts over every ``step``-th band of ``tile`` pixel rows (bands 0, step, 2 step, ...).

        The bands are stacked in order; each starts at a multiple of ``tile`` in the image and in the
        stack, so a fold of the result is the fold of those tiles alone (phase kept): about ``1 / step``
        of the pixels and of a full fold's cost. An image with fewer than ``step + 1`` whole bands gives
        its first band only.
        """
        half = tile // 2
        bands = range(0, max(1, self.y.shape[0] // tile), step)

        def take(a: np.ndarray, rows: int) -> np.ndarray:
            return np.concatenate([a[b * rows : (b + 1) * rows] for b in bands])

        return Prefiltered(take(self.y, tile), take(self.weight, half), take(self.low, half),
                           take(self.half, half))

    def fold_half(self, tile: int) -> np.ndarray:
        """A band-limited ``fold(z, tile)`` from the half-resolution image; cached.

        The half-resolution prefiltered image is folded with period ``tile / 2`` and the folded tile
        brought back to ``tile`` x ``tile`` by zero-padding its spectrum: folding commutes with the
        (shift-invariant) pyramid filter and the 2x decimation, so this is the full-resolution fold
        low-passed below 1/4 cycle per pixel, where both methods' coefficients live (at most 3/16),
        for a quarter of the pixels. Frequencies above 1/4 cycle per pixel are zero: the shift search
        must ignore them (``band=2`` of :func:`labeler.watermark.sync.shift_search`).
        """
        out = self._half_folds.get(tile)
        if out is None:
            k = tile // 2
            spec = np.fft.rfft2(fold(self.half, k))
            padded = np.zeros((tile, tile // 2 + 1), dtype=spec.dtype)
            padded[: k // 2, : k // 2 + 1] = spec[: k // 2]
            padded[tile - k // 2 :, : k // 2 + 1] = spec[k // 2 :]
            out = (np.fft.irfft2(padded, s=(tile, tile)) * 4.0).astype(np.float32)
            self._half_folds[tile] = out
        return out

    def _fold_wy(self, tile: int) -> np.ndarray:
        """``fold(W * y, tile)``: each strip's product is added into its rows of a (tile, W2) sum.

        ``W`` is never expanded to full size: the half-resolution weight's rows are repeated along the
        columns only and broadcast over each pair of pixel rows.
        """
        h, w = self.y.shape
        rows = np.zeros((tile, w), dtype=np.float32)
        step = tile if tile <= STRIP_ROWS else STRIP_ROWS - STRIP_ROWS % 2
        prod = np.empty((step // 2, 2, w), dtype=np.float32)
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            p0 = r0 % tile
            half = (r1 - r0) // 2
            wcols = cv2.resize(self.weight[r0 // 2 : r1 // 2], (w, half),
                               interpolation=cv2.INTER_NEAREST_EXACT)  # each column twice
            np.multiply(self.y[r0:r1].reshape(half, 2, w), wcols[:, None, :], out=prod[:half])
            strip = prod[:half].reshape(r1 - r0, w)
            n = min(r1 - r0, tile - p0)  # a strip that crosses a tile boundary is added in two parts
            rows[p0 : p0 + n] += strip[:n]
            if n < r1 - r0:
                rows[: r1 - r0 - n] += strip[n:]
        return fold_columns(rows, tile)


def prefilter_parts(y: np.ndarray, floor: float = 1.0) -> Prefiltered:
    """Detector prefilter: remove the image's low frequencies, then normalise local energy.

    Parameters
    ----------
    y : ndarray (H, W), uint8 or float32
        Luma in 8-bit units (uint8 saves a conversion pass); H, W >= 16.
    floor : float
        Energy floor (8-bit levels RMS) that keeps flat areas from being amplified without bound.

    Returns
    -------
    Prefiltered
        ``z = W * (y - U(low))`` on the image cropped to even sides (at most one row and column less).

    ``low``: two steps down a Gaussian pyramid (cv2.pyrDown), a Gaussian of sigma 1 sample at quarter
    resolution, bilinear back up to half resolution; a low-pass whose response is 1/2 near 1/25 cycle
    per pixel, below the band the marks live in (1/16 to 3/16 cycle per pixel). ``W``: the inverse local
    RMS of the half-resolution residual ``pyrDown(y) - low`` in 8 x 8 pixel blocks, smoothed over
    neighbouring blocks and interpolated (bilinear to half resolution, then constant on 2 x 2 blocks).
    Dividing by the local RMS keeps a few strongly textured regions from drowning the folded sum; a
    mark whose amplitude follows texture is then weighted about evenly. Measuring the energy at half
    resolution misses the top octave (mostly noise and JPEG error) and costs a quarter. Both steps are
    (nearly) shift-invariant, so they commute with cropping. The whole prefilter costs about four
    full-resolution passes; the earlier one (Gaussian pyramids down and up at full resolution, twice)
    cost about ten, half of the detector's time.
    """
    h, w = y.shape
    h2, w2 = h // 2 * 2, w // 2 * 2
    y = y[:h2, :w2]
    if y.dtype != np.uint8:
        y = np.ascontiguousarray(y, dtype=np.float32)
    half = cv2.pyrDown(y)  # uint8 stays uint8: its rounding is far below any texture that matters
    low, weight, z = half_band(half, floor)
    return Prefiltered(y, weight, low, z)


def half_band(half: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The half-resolution core of :func:`prefilter_parts` (the detector's screening read uses it too).

    Parameters
    ----------
    half : ndarray
        Luma at half resolution (uint8 or float32, levels 0..255).
    floor : float
        RMS floor of the weight (levels).

    Returns
    -------
    low, weight, z : ndarray (float32, the shape of ``half``)
        The low-pass, the inverse local RMS weight and ``weight * (half - low)``.
    """
    hh, hw = half.shape
    quarter = cv2.GaussianBlur(cv2.pyrDown(half).astype(np.float32), (0, 0), 1.0)
    low = cv2.resize(quarter, (hw, hh), interpolation=cv2.INTER_LINEAR)
    resid = cv2.subtract(half, low, dtype=cv2.CV_32F)
    # energy per 8 x 8 pixel block = 4 x 4 half-resolution samples (area mean of the square)
    nby, nbx = hh // 4, hw // 4
    core = resid[: nby * 4, : nbx * 4]
    energy = cv2.resize(cv2.multiply(core, core), (nbx, nby), interpolation=cv2.INTER_AREA)
    energy = cv2.GaussianBlur(energy, (0, 0), 1.0)
    energy += np.float32(floor * floor)
    weight = cv2.resize(cv2.pow(energy, -0.5), (nbx * 4, nby * 4), interpolation=cv2.INTER_LINEAR)
    if (nby * 4, nbx * 4) != (hh, hw):
        weight = cv2.copyMakeBorder(weight, 0, hh - nby * 4, 0, hw - nbx * 4, cv2.BORDER_REPLICATE)
    return low, weight, cv2.multiply(resid, weight)


def _smooth(x: np.ndarray, levels: int = 3, out: np.ndarray | None = None) -> np.ndarray:
    """Wide low-pass: ``levels`` steps down a Gaussian pyramid and back up (cv2.pyrDown / pyrUp); the last
    step up is written into ``out`` (x's shape and type) when given."""
    sizes, cur = [], x
    for _ in range(levels):
        if min(cur.shape) < 4:
            break
        sizes.append((cur.shape[1], cur.shape[0]))
        cur = cv2.pyrDown(cur)
    if not sizes:  # too small to filter: x itself, as before (copied where ``out`` is asked for)
        if out is None:
            return cur
        out[...] = cur
        return out
    for size in reversed(sizes[1:]):
        cur = cv2.pyrUp(cur, dstsize=size)
    res = cv2.pyrUp(cur, dst=out, dstsize=sizes[0])
    if out is not None and not np.shares_memory(res, out):  # a cv2 that would not write into it
        out[...] = res
        return out
    return res


def geometry_image(y: np.ndarray, max_side: int = 1088, floor: float = 1.0) -> np.ndarray:
    """Prefiltered luma of a centred window (at most ``max_side`` per side) for the lattice estimate.

    ``y - lowpass(y)`` and division by the local RMS, both with full-resolution Gaussian pyramids
    (3 levels, cutoff ~1/16 cycle per pixel; the pyramid's sampling grid has period 8 px, whose
    harmonics the estimators tolerate). Smoother than :func:`prefilter_parts`, whose 2 x 2 block
    structure is harmless to the folded correlation but blurs the autocorrelation peaks that
    :func:`labeler.watermark.lattice.scale_candidates` ranks: on small rotated photos the true lattice came
    4 to 11 places further down the list. Only the centred window the estimators read (<= 1024 px along
    an axis) is filtered, so the cost is bounded whatever the image size.
    """
    h, w = y.shape
    ch, cw = min(h, max_side), min(w, max_side)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    win = np.ascontiguousarray(y[y0 : y0 + ch, x0 : x0 + cw], dtype=np.float32)
    # in place where the window is our own copy; the same numbers (not cv2.pow in place, whose in-place
    # path rounds differently on some widths)
    hp = win if not np.shares_memory(win, y) else win.copy()
    low = np.empty(hp.shape, np.float32)
    np.subtract(hp, _smooth(hp, out=low), out=hp)
    sq = np.empty(hp.shape, np.float32)
    energy = _smooth(np.multiply(hp, hp, out=sq), out=low)
    energy += np.float32(floor * floor)
    return np.multiply(hp, cv2.pow(energy, -0.5, dst=sq), out=hp)


def prefilter(y: np.ndarray, floor: float = 1.0) -> np.ndarray:
    """The prefiltered image of :func:`prefilter_parts` as an array (float32, sides cropped to even)."""
    return prefilter_parts(y, floor).image()


def fold(z: np.ndarray, tile: int) -> np.ndarray:
    """Sum all ``tile`` x ``tile`` tiles of ``z`` (zero-padded at the far edges) into one tile.

    A periodic mark adds up coherently while the image adds up like noise; the result is the original
    tile cyclically shifted by the (unknown) crop offset modulo ``tile``. Rows of tiles are summed first
    (one cv2 reduction over a reshape), then the tiles of the remaining row; partial tiles at the far
    edges are added into their corner of the tile instead of zero-padding a copy of the image.
    """
    z = np.ascontiguousarray(z, dtype=np.float32)
    h, w = z.shape
    fh = h // tile
    rows = np.zeros((tile, w), dtype=np.float32)
    if fh:
        rows[:] = cv2.reduce(z[: fh * tile].reshape(fh, tile * w), 0, cv2.REDUCE_SUM).reshape(tile, w)
    if h > fh * tile:
        rows[: h - fh * tile] += z[fh * tile :]
    return fold_columns(rows, tile)


def fold_columns(rows: np.ndarray, tile: int) -> np.ndarray:
    """Sum the ``tile``-wide column blocks of a (tile, W) array into one tile (the far edge's partial
    block added into its corner)."""
    w = rows.shape[1]
    fw = w // tile
    if fw:
        out = rows[:, : fw * tile].reshape(tile, fw, tile).sum(axis=1, dtype=np.float32)
    else:
        out = np.zeros((tile, tile), dtype=np.float32)
    if w > fw * tile:
        out[:, : w - fw * tile] += rows[:, fw * tile :]
    return out
