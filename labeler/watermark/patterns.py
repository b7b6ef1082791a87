"""The pattern tiles of the image watermark: the methods by name, each mark's cached tile, and the
budget's tilted, band-limited `dwt` tile with the share of its energy SSIM sees.

Shared by the embedder (:mod:`labeler.watermark`, :mod:`labeler.watermark.budget`) and the video mark.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from labeler.watermark.dct import DCT
from labeler.watermark.dwt import DWT
from labeler.watermark.payload import conv_encode, info_bits
from labeler.watermark.scheme import Scheme
from labeler.watermark.transforms import haar_ll_synthesis

__all__ = ["METHODS", "DWT_TILT", "DWT_BAND"]

#: The methods by name.
METHODS: dict[str, Scheme] = {"dct": DCT, "dwt": DWT}


def _dwt_band(requested: str) -> float:
    """The budget's `dwt` band (cycles/px): :data:`DWT_BAND` for the split of ``method="dct"``, 0.5 (no
    limit) for ``method="dwt"``, whose mark covers texture too: there the budget is bound by PSNR, which
    charges the staircase no more than the rest, and the band-limited tile's 0.8x response per unit RMS
    lost reads (13 photos: crop 50 % 13 -> 10, rotation 2 degrees 10 -> 7, resize 1.5 13 -> 10)."""
    return DWT_BAND if requested == "dct" else 0.5


#: Exponent of the budget's `dwt` coefficient weights ``seen_c ** -DWT_TILT`` (0: the flat spectrum of
#: the fixed model). SSIM sees the mark's lowest coefficients least, and codecs keep them best.
DWT_TILT = 0.5
#: Highest frequency (cycles/px, per axis) of the budget's `dwt` tile. The Haar synthesis repeats each LL
#: sample over 2 x 2 pixels; the staircase puts part of the energy near 1/2 cycle/px, which SSIM charges
#: in full while the detector (Haar LL, coefficients up to 1/8 cycle/px) and the codecs barely see it.
#: Removing it frees that share of the SSIM budget for the band that survives (per unit RMS the slot
#: response is 0.80x, but the budget affords more RMS): tuning images after WebP
#: q75 17 -> 26 of 27 (1/4: 20, 3/16: 23, 0.15: 25), JPEG q50 still 27 of 27 (z 8-10 instead of 9-11).
DWT_BAND = 0.125


def _seen(scheme: Scheme) -> np.ndarray:
    """Per coefficient of ``scheme``: the share of a unit change there that SSIM's window sees as variance."""
    u, v = (np.array(c, np.float64) for c in zip(*scheme.coefficients, strict=True))
    f = np.hypot(u, v) / (16.0 * scheme.subsample)  # cycles per pixel: DCT index k of an 8-sample block
    return 1.0 - np.exp(-4.0 * np.pi**2 * 1.5**2 * f * f)


@lru_cache(maxsize=16)
def _budget_pattern(payload: bytes, key: bytes, method: str, tilt: float, band: float = 0.5) -> np.ndarray:
    """The budget's pattern tile (RMS 1, read-only): `dct` as the fixed model's, `dwt` tilted to its low
    coefficients (weights ``seen ** -DWT_TILT``) and band-limited to ``band`` cycles/px (:data:`DWT_BAND`).

    The detector's despreading weights follow the tilt; the band limit changes what is embedded, not what
    the detector computes. Per unit RMS the band-limited tile gives 0.80x the staircase's slot response
    (measured), but SSIM charges it so much less that the budget affords more of it, and what it drops
    is what codecs drop too.
    """
    scheme = METHODS[method]
    if method != "dwt" or tilt == 0:
        return _pixel_pattern(payload, key, method)
    wc = _seen(scheme) ** -tilt
    chips = scheme.layout(key).chips(conv_encode(info_bits(payload)))
    tile = scheme.slots_to_tile(chips * np.tile(wc, scheme.blocks * scheme.blocks).astype(np.float32))
    tile = haar_ll_synthesis(tile) if scheme.subsample == 2 else tile
    if band < 0.5:
        tile = _band_limit(tile, band)
    tile = (tile / np.sqrt(np.mean(tile * tile))).astype(np.float32)
    tile.setflags(write=False)
    return tile


def _band_limit(tile: np.ndarray, band: float) -> np.ndarray:
    """The periodic tile with every frequency above ``band`` cycles/px (per axis) removed."""
    n = tile.shape[0]
    spec = np.fft.rfft2(tile.astype(np.float64))
    fy = np.abs(np.fft.fftfreq(n))[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    spec[(fy > band) | (fx > band)] = 0.0
    return np.fft.irfft2(spec, s=tile.shape)


@lru_cache(maxsize=4)
def _seen_share(method: str, tilt: float, band: float) -> float:
    """Share of a budget pattern's energy that SSIM's local variance sees (0..1), measured on the tile.

    SSIM compares local variances in a Gaussian window of sigma 1.5 px; a change slow enough to move
    the window's mean is charged only by the (tolerant) luminance term. Measured rather than derived:
    the 2 x 2 pixel blocks of the `dwt` synthesis put part of its energy near Nyquist, where all of it is
    seen. The share hardly depends on the key or payload, so a fixed one is used (``tilt`` is the
    :data:`DWT_TILT` it was measured for: the cache follows changes to it).
    """
    tile = _budget_pattern(bytes(8), b"ssim-share", method, tilt, band).astype(np.float64)
    pad = np.pad(tile, 8, mode="wrap")  # the tile repeats: a periodic window
    mean = cv2.GaussianBlur(pad, (11, 11), 1.5)[8:-8, 8:-8]
    square = cv2.GaussianBlur(pad * pad, (11, 11), 1.5)[8:-8, 8:-8]
    return float(np.mean(square - mean * mean) / np.mean(tile * tile))


@lru_cache(maxsize=16)
def _pixel_pattern(payload: bytes, key: bytes, method: str) -> np.ndarray:
    """The pattern tile of one mark (read-only; cached: a video marks every frame with the same one)."""
    scheme = METHODS[method]
    tile = scheme.pixel_pattern(key, conv_encode(info_bits(payload)))
    tile.setflags(write=False)
    return tile
