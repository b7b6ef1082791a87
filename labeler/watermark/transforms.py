"""Vectorized transforms: colour <-> luma, 8x8 block DCT by matrix products, DWT, detector prefilter, fold.

Everything works on float32 arrays in 8-bit luma units (0..255, whatever the input bit depth) and has
no Python loop over pixels or blocks: blocks are a reshape, the block DCT is two matrix products with the
orthonormal DCT-II matrix.
"""

from __future__ import annotations

import cv2
import numpy as np
import pywt

from labeler.watermark.payload import WatermarkError

#: BT.601 luma weights (ITU-R BT.601-7, section 2.5.1), the ones JPEG/JFIF uses for Y'CbCr.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Smallest side accepted by embed and detect (pixels): one 128 x 128 tile must fit.
MIN_SIDE = 128


def dct_matrix(n: int = 8) -> np.ndarray:
    """Orthonormal DCT-II matrix ``D`` (n x n, float32): ``D @ x`` is the DCT of a length-n column."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


_D8 = dct_matrix(8)


def block_dct(x: np.ndarray, n: int = 8) -> np.ndarray:
    """2-D DCT of every n x n block of ``x`` (H, W both multiples of n) -> array (H/n, W/n, n, n).

    Computed as ``D @ B @ D.T`` for all blocks at once: the row transform is one batched product over
    block rows with a long inner dimension, the column transform one (N x n) @ (n x n) product.
    """
    d = _D8 if n == 8 else dct_matrix(n)
    h, w = x.shape
    nby, nbx = h // n, w // n
    rows = np.matmul(d, x.reshape(nby, n, w))  # (nby, n, w): transform along y inside each block row
    coef = rows.reshape(nby, n, nbx, n) @ d.T  # transform along x inside each block
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
        raise WatermarkError(f"image is {w}x{h}; the watermark needs at least {MIN_SIDE}x{MIN_SIDE} pixels")
    return h, w, channels


def _scale(image: np.ndarray) -> float:
    return 257.0 if image.dtype == np.uint16 else 1.0  # 65535 / 255: work in 8-bit units for all depths


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8/uint16 gray, gray+alpha, RGB or RGBA image, float32 in 8-bit units."""
    _, _, channels = _check_image(image)
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


def add_luma(image: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Add a luma change ``delta`` (float32, 8-bit units, shape (H, W)) to the colour channels.

    The same value goes to R, G and B: BT.601 luma weights sum to 1, so luma changes by exactly
    ``delta`` while Cb and Cr (differences B-Y and R-Y) do not change at all, so no colour shift
    (before rounding and clipping). Alpha is copied unchanged. Returns a new array of the input dtype.

    ``delta`` is rounded once to integers of the image's depth and added with saturation (cv2's
    mixed-depth add), which equals rounding and clipping the float sum per channel up to ties.
    """
    scale = _scale(image)
    dtype = image.dtype
    if image.ndim == 2 or image.shape[2] == 1:
        colour, c = 1, 1
    else:
        c = image.shape[2]
        colour = 3 if c >= 3 else 1
    if dtype == np.uint8:
        # one rounding pass to int16, then cv2's saturating mixed-depth add (uint8 + int16 -> uint8)
        d = np.rint(delta).astype(np.int16)
        cv_depth = cv2.CV_8U
    else:
        d = np.rint(delta * np.float32(scale)).astype(np.int32)
        cv_depth = cv2.CV_16U
    src = np.ascontiguousarray(image).reshape(image.shape[0], image.shape[1], c)
    if c == 1:
        return cv2.add(src[:, :, 0], d, dtype=cv_depth).reshape(image.shape)
    planes = [d] * colour + [np.zeros_like(d)] * (c - colour)  # alpha (last plane) gets no change
    return cv2.add(src, cv2.merge(planes), dtype=cv_depth)


def block_activity(y: np.ndarray, n: int = 8) -> np.ndarray:
    """Standard deviation of luma in every n x n block (8-bit units), shape (ceil(H/n), ceil(W/n)).

    By Parseval this is the RMS of the block's AC DCT coefficients / n, the texture energy that masks
    an added pattern. Block means of y and y^2 come from cv2's area resize (an exact block average for
    an integer factor, SIMD); partial edge blocks reuse the nearest full block's value.
    """
    h, w = y.shape
    nby, nbx = h // n, w // n
    core = np.ascontiguousarray(y[: nby * n, : nbx * n])
    m1 = cv2.resize(core, (nbx, nby), interpolation=cv2.INTER_AREA)
    m2 = cv2.resize(core * core, (nbx, nby), interpolation=cv2.INTER_AREA)
    act = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    py, px = -(-h // n) - nby, -(-w // n) - nbx
    if py or px:
        act = np.pad(act, ((0, py), (0, px)), mode="edge")
    return act.astype(np.float32)


def _smooth(x: np.ndarray, levels: int = 3) -> np.ndarray:
    """Wide low-pass: ``levels`` steps down a Gaussian pyramid and back up (cv2.pyrDown / pyrUp).

    Three levels cut off near 1/16 cycle per pixel at ~2 ms per megapixel (a Gaussian of similar width
    costs ~10). The pyramid's 5-tap binomial kernels keep the result smooth; what is left of its
    sampling grid has period 2**levels = 8 px, whose harmonics the synchroniser ignores. (Area means
    with bilinear interpolation were as fast but left a 16-px periodic ripple right on the ``dct``
    pilot's frequencies, which made the null distribution heavy-tailed.)
    """
    sizes, cur = [], x
    for _ in range(levels):
        if min(cur.shape) < 4:
            break
        sizes.append((cur.shape[1], cur.shape[0]))
        cur = cv2.pyrDown(cur)
    for size in reversed(sizes):
        cur = cv2.pyrUp(cur, dstsize=size)
    return cur


def prefilter(y: np.ndarray, floor: float = 1.0) -> np.ndarray:
    """Detector prefilter: remove the image's low frequencies, then normalise local energy.

    ``y - lowpass(y)`` (3-level Gaussian pyramid: cutoff ~1/16 cycle per pixel) keeps the band the marks
    live in and drops the smooth image content that dominates a photo's spectrum. Dividing by the local
    RMS (same low-pass of the squared residual, ``floor`` in 8-bit units) keeps a few strongly textured
    regions from drowning the folded sum; a mark whose amplitude follows texture is then weighted
    about evenly.
    Both steps are (nearly) shift-invariant, so they commute with cropping.
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    hp = y - _smooth(y)
    energy = _smooth(hp * hp)
    energy += np.float32(floor * floor)
    return hp * cv2.pow(energy, -0.5)


def fold(z: np.ndarray, tile: int) -> np.ndarray:
    """Sum all ``tile`` x ``tile`` tiles of ``z`` (zero-padded at the far edges) into one tile.

    A periodic mark adds up coherently while the image adds up like noise; the result is the original
    tile cyclically shifted by the (unknown) crop offset modulo ``tile``.
    """
    h, w = z.shape
    ty, tx = -(-h // tile), -(-w // tile)
    if ty * tile != h or tx * tile != w:
        pad = np.zeros((ty * tile, tx * tile), dtype=np.float32)
        pad[:h, :w] = z
        z = pad
    return z.reshape(ty, tile, tx, tile).sum(axis=(0, 2), dtype=np.float32)
