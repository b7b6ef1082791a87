"""Invisible image watermark: a keyed 64-bit payload hidden in luma, read back by ``detectors.watermark``.

::

    >>> import numpy as np
    >>> from labeler.watermark import embed, payload_from_produce_id
    >>> marked = embed(pixels, payload_from_produce_id("img-0001"), key=key)
    >>> from detectors.watermark import detect
    >>> detect(marked, key=key).payload == payload_from_produce_id("img-0001")
    True

Two methods share one payload layer (:mod:`labeler.watermark.payload`): ``"dct"`` (8 x 8 block DCT of
luma) and ``"dwt"`` (block DCT inside the Haar LL subband). The mark is a key-dependent pattern of
+-1 chips on chosen DCT coefficients (additive spread spectrum), repeated in 128 x 128 pixel tiles, with
an amplitude that follows the local texture. Design, measurements and the false-positive theory are in
``docs/watermark.md``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from labeler.watermark.audio import embed_audio
from labeler.watermark.budget import _SUB, budget_mask
from labeler.watermark.dct import DCT
from labeler.watermark.dwt import DWT
from labeler.watermark.patterns import DWT_TILT, METHODS, _budget_pattern, _dwt_band, _pixel_pattern
from labeler.watermark.payload import (
    PAYLOAD_BYTES,
    TooSmallForWatermark,
    WatermarkError,
    check_embed_key,
    check_payload,
    payload_from_produce_id,
)
from labeler.watermark.scheme import Scheme
from labeler.watermark.transforms import (
    MIN_SIDE,
    STRIP_ROWS,
    _check_image,
    _luma_fast,
    add_luma,
    block_activity,
    native_order,
    strip_activity,
)

__all__ = [
    "embed",
    "embed_audio",
    "payload_from_produce_id",
    "watermark_delta",
    "METHODS",
    "DEFAULT_STRENGTH",
    "budget_mask",
    "PAYLOAD_BYTES",
    "MIN_SIDE",
    "WatermarkError",
    "TooSmallForWatermark",
]

#: The fixed strength of the texture-mask model (``strength=<number>``): RMS luma change (8-bit levels)
#: in a block of reference texture (activity 8 levels). ``strength=None``, the default of :func:`embed`,
#: is the per-image budget instead (:func:`budget_mask`). Kept for explicit calls and the video mark.
DEFAULT_STRENGTH = 2.0

# Texture masking: a block's amplitude is strength * clip((activity / REF) ** GAMMA, LO, HI). Contrast
# masking grows sub-linearly with the masker's contrast (exponent ~0.6-0.7 in Watson, "DCT quantization
# matrices visually optimized for individual images", SPIE 1913, 1993); LO keeps some mark in flat
# areas (faint enough to stay invisible there), HI bounds the change in strong texture.
_MASK_REF, _MASK_GAMMA, _MASK_LO, _MASK_HI = 8.0, 0.6, 0.3, 2.0


def texture_mask(y: np.ndarray, block: int) -> np.ndarray:
    """Per-block amplitude factor (dimensionless, 0.3..2.0) from luma activity.

    Shape (ceil(H/block), ceil(W/block)); ``y`` is luma in 8-bit units.
    """
    return _mask_from_activity(block_activity(y, block))


def _mask_from_activity(act: np.ndarray) -> np.ndarray:
    return np.clip((act / _MASK_REF) ** _MASK_GAMMA, _MASK_LO, _MASK_HI).astype(np.float32)


def _parts(stats: Callable[[int, bool], np.ndarray | tuple[np.ndarray, np.ndarray]], h: int, w: int,
           method: str, strength: float | None) -> list[tuple[Scheme, np.ndarray]]:
    """The (scheme, per-block amplitude) pairs to add: one for a fixed strength, one or two for the budget.

    ``stats(n, means)`` gives the luma activity of every n x n block (levels), and their means with
    ``means`` (:func:`strip_activity`).
    """
    scheme = _scheme(method)
    if strength is not None:
        return [(scheme, _mask_from_activity(stats(8 * scheme.subsample, False)) * np.float32(strength))]
    act, means = stats(_SUB, True)
    dct, dwt = budget_mask(act, h, w, method, means)
    out = []
    if dct is not None:
        out.append((DCT, dct))
    if dwt is not None:
        out.append((DWT, dwt))
    return out


def watermark_delta(y: np.ndarray, payload: bytes, key: bytes, method: str = "dct",
                    strength: float | None = DEFAULT_STRENGTH) -> np.ndarray:
    """The luma change (float32, 8-bit units, same shape as ``y``) that :func:`embed` adds.

    Parameters
    ----------
    y : ndarray (H, W), float32
        Luma in 8-bit units (0..255).
    payload : bytes
        Exactly 8 bytes.
    key : bytes
        Secret key, any non-empty byte string (32 random bytes recommended).
    method : {"dct", "dwt"}
    strength : float or None
        Amplitude in 8-bit luma levels (RMS of the change in a block of reference texture); 0 < s <= 20.
        None: the per-image budget (:func:`budget_mask`), :func:`embed`'s default.
    """
    _check_strength(strength)
    h, w = y.shape
    out = np.zeros((h, w), np.float32)

    def stats(n: int, means: bool) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        return strip_activity(lambda r0, r1: y[r0:r1], h, w, n, means)

    for scheme, mask in _parts(stats, h, w, method, strength):
        pattern = _tile_for(payload, key, scheme.name, strength, method)
        bs = 8 * scheme.subsample
        wide = _wide(pattern, w)
        t = scheme.tile_px
        out += np.concatenate([_masked_pattern(wide, mask, bs, r0, min(h, r0 + t), w)
                               for r0 in range(0, h, t)])
    return out


def _tile_for(payload: bytes, key: bytes, method: str, strength: float | None,
              requested: str = "dct") -> np.ndarray:
    """The pattern tile a mark of ``method`` uses: the budget's (tilted `dwt`) or the fixed model's.

    ``requested`` is the method the caller asked for (:func:`_dwt_band`).
    """
    payload, key = check_payload(payload), check_embed_key(key)
    if strength is None:
        return _budget_pattern(payload, key, method, DWT_TILT, _dwt_band(requested))
    return _pixel_pattern(payload, key, method)


def _check_strength(strength: float | None) -> None:
    # a str ("2") or a bool used to pass float() and a list to raise TypeError from inside it: the
    # documented type is a number (numpy numbers are numbers.Real too)
    if strength is not None and (isinstance(strength, bool) or not isinstance(strength, numbers.Real)):
        raise WatermarkError(f"watermark strength must be a number or None, not {strength!r}")
    if strength is not None and not (0.0 < float(strength) <= 20.0):
        raise WatermarkError(f"watermark strength must be in (0, 20], not {strength}")


def _pattern(payload: bytes, key: bytes, method: str, strength: float | None) -> tuple[Scheme, np.ndarray]:
    scheme = _scheme(method)
    _check_strength(strength)
    return scheme, _pixel_pattern(check_payload(payload), check_embed_key(key), scheme.name)


def _masked_pattern(pattern: np.ndarray, mask: np.ndarray, bs: int, r0: int, r1: int, w: int) -> np.ndarray:
    """Rows ``r0:r1`` (pixels) of the tiled pattern times the block mask, float32 (r1 - r0, w).

    ``r0`` is a multiple of ``bs`` and the rows stay inside one tile row. ``pattern`` is the tile
    repeated across the image width (``_wide``); each block row of the mask is repeated over its
    ``bs`` columns and broadcast down its ``bs`` rows, so the product runs over contiguous rows.
    """
    b0, b1 = r0 // bs, -(-r1 // bs)
    rows = mask[b0:b1]  # the mask has ceil(H / bs) rows, so this is never short
    nb = b1 - b0
    p0 = r0 % pattern.shape[0]
    delta = np.empty((nb, bs, w), np.float32)
    np.multiply(pattern[p0 : p0 + nb * bs, :w].reshape(nb, bs, w),
                np.repeat(rows, bs, axis=1)[:, None, :w], out=delta)
    return delta.reshape(nb * bs, w)[: r1 - r0]


def _wide(pattern: np.ndarray, w: int) -> np.ndarray:
    """The pattern tile repeated across ``w`` pixels (tile rows x >= w)."""
    return np.tile(pattern, (1, -(-w // pattern.shape[1])))


def embed(image: np.ndarray, payload: bytes, *, key: bytes, method: str = "dct",
          strength: float | None = None) -> np.ndarray:
    """Return a copy of ``image`` carrying an invisible watermark of ``payload`` under ``key``.

    Parameters
    ----------
    image : ndarray, uint8 or uint16 (either byte order), shape (H, W), (H, W, 1|2|3|4)
        Gray, gray+alpha, RGB or RGBA pixels, at least 128 x 128. Alpha is copied unchanged; 16-bit
        images are marked at the same relative amplitude as 8-bit ones.
    payload : bytes
        Exactly 8 bytes (64 bits); :func:`payload_from_produce_id` derives them from a label.
    key : bytes
        Secret key; the same key is needed to detect.
    method : {"dct", "dwt"}
        Embedding domain (see :mod:`labeler.watermark.dct`, :mod:`labeler.watermark.dwt`).
    strength : float or None
        None (default): the per-image budget (:func:`budget_mask`): every block loses the same share of
        SSIM (about a level RMS where flat, more in texture), scaled so the image's predicted SSIM is
        0.9815 and its PSNR at least 43 dB; with ``method="dct"`` smooth areas carry their share as a
        ``dwt`` mark (read it with ``detect(method=None)``). A number: the fixed texture-mask model of
        earlier versions, one method, amplitude in 8-bit luma levels at reference texture (2.0 was the
        default: PSNR ~ 42 dB on photos, but 50 dB on flat art, too faint to survive one lossy
        re-encode, and 38 dB on dense texture).

    Returns
    -------
    ndarray
        Same shape and dtype (byte order included) as ``image``.

    Raises
    ------
    WatermarkError
        Bad payload, key, method, strength, dtype, shape, or an image smaller than 128 x 128.
    """
    given = getattr(image, "dtype", None)
    image = native_order(image)  # a big-endian uint16 array: marked as uint16, returned in its order
    h, w, _ = _check_image(image)
    _check_strength(strength)
    parts = []

    def stats(n: int, means: bool) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        return strip_activity(lambda r0, r1: _luma_fast(image[r0:r1]), h, w, n, means)

    for scheme, mask in _parts(stats, h, w, method, strength):
        pattern = _tile_for(payload, key, scheme.name, strength, method)
        parts.append((_wide(pattern, w), mask, 8 * scheme.subsample))
    out = np.empty_like(image, order="C")
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        delta = _masked_pattern(*parts[0][:2], parts[0][2], r0, r1, w)
        for wide, mask, bs in parts[1:]:  # the budget's second mark (smooth areas), same strip
            delta += _masked_pattern(wide, mask, bs, r0, r1, w)
        add_luma(image[r0:r1], delta, out=out[r0:r1])
    return out if out.dtype == given else out.astype(given)


def _scheme(method: str) -> Scheme:
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise WatermarkError(f"unknown watermark method {method!r} (use 'dct' or 'dwt')") from None
