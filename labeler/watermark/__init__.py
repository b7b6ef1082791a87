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

import numpy as np

from labeler.watermark.audio import embed_audio
from labeler.watermark.dct import DCT
from labeler.watermark.dwt import DWT
from labeler.watermark.payload import (
    PAYLOAD_BYTES,
    WatermarkError,
    check_key,
    check_payload,
    conv_encode,
    info_bits,
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
    strip_activity,
)

__all__ = [
    "embed",
    "embed_audio",
    "payload_from_produce_id",
    "watermark_delta",
    "METHODS",
    "DEFAULT_STRENGTH",
    "PAYLOAD_BYTES",
    "MIN_SIDE",
    "WatermarkError",
]

#: The methods by name.
METHODS: dict[str, Scheme] = {"dct": DCT, "dwt": DWT}
#: Default strength: RMS luma change (8-bit levels) in a block of reference texture (activity 8 levels).
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


def watermark_delta(y: np.ndarray, payload: bytes, key: bytes, method: str = "dct",
                    strength: float = DEFAULT_STRENGTH) -> np.ndarray:
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
    strength : float
        Amplitude in 8-bit luma levels (RMS of the change in a block of reference texture); 0 < s <= 20.
    """
    scheme, pattern = _pattern(payload, key, method, strength)
    bs = 8 * scheme.subsample  # one mask value per pattern block
    h, w = y.shape
    mask = texture_mask(y, bs) * np.float32(strength)
    wide = _wide(pattern, w)
    t = scheme.tile_px
    return np.concatenate([_masked_pattern(wide, mask, bs, r0, min(h, r0 + t), w) for r0 in range(0, h, t)])


def _pattern(payload: bytes, key: bytes, method: str, strength: float) -> tuple[Scheme, np.ndarray]:
    scheme = _scheme(method)
    if not (0.0 < float(strength) <= 20.0):
        raise WatermarkError(f"watermark strength must be in (0, 20], not {strength}")
    return scheme, scheme.pixel_pattern(check_key(key), conv_encode(info_bits(check_payload(payload))))


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
          strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Return a copy of ``image`` carrying an invisible watermark of ``payload`` under ``key``.

    Parameters
    ----------
    image : ndarray, uint8 or uint16, shape (H, W), (H, W, 1|2|3|4)
        Gray, gray+alpha, RGB or RGBA pixels, at least 128 x 128. Alpha is copied unchanged; 16-bit
        images are marked at the same relative amplitude as 8-bit ones.
    payload : bytes
        Exactly 8 bytes (64 bits); :func:`payload_from_produce_id` derives them from a label.
    key : bytes
        Secret key; the same key is needed to detect.
    method : {"dct", "dwt"}
        Embedding domain (see :mod:`labeler.watermark.dct`, :mod:`labeler.watermark.dwt`).
    strength : float
        Amplitude in 8-bit luma levels at reference texture (default 2.0: PSNR ~ 42 dB on photos).

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Raises
    ------
    WatermarkError
        Bad payload, key, method, strength, dtype, shape, or an image smaller than 128 x 128.
    """
    h, w, _ = _check_image(image)
    scheme, pattern = _pattern(payload, key, method, strength)
    bs = 8 * scheme.subsample
    activity = strip_activity(lambda r0, r1: _luma_fast(image[r0:r1]), h, w, bs)
    mask = _mask_from_activity(activity) * np.float32(strength)
    wide = _wide(pattern, w)
    out = np.empty_like(image, order="C")
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        add_luma(image[r0:r1], _masked_pattern(wide, mask, bs, r0, r1, w), out=out[r0:r1])
    return out


def _scheme(method: str) -> Scheme:
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise WatermarkError(f"unknown watermark method {method!r} (use 'dct' or 'dwt')") from None
