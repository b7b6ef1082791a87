"""Invisible image watermark: a keyed 64-bit payload hidden in luma, read back by ``detectors.watermark``.

::

    >>> import numpy as np
    >>> from labeler.watermark import embed, payload_from_produce_id
    >>> marked = embed(pixels, payload_from_produce_id("img-0001"), key=key)   # doctest: +SKIP
    >>> from detectors.watermark import detect
    >>> detect(marked, key=key).payload                                          # doctest: +SKIP

Two methods share one payload layer (:mod:`labeler.watermark.payload`): ``"dct"`` (8 x 8 block DCT of
luma) and ``"dwt"`` (block DCT inside the Haar LL subband). The mark is a key-dependent pattern of
+-1 chips on chosen DCT coefficients (additive spread spectrum), repeated in 128 x 128 pixel tiles, with
an amplitude that follows the local texture. Design, measurements and the false-positive theory are in
``docs/watermark.md``.
"""

from __future__ import annotations

import numpy as np

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
from labeler.watermark.transforms import MIN_SIDE, add_luma, block_activity, luma

__all__ = [
    "embed",
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
    act = block_activity(y, block)
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
    scheme = _scheme(method)
    if not (0.0 < float(strength) <= 20.0):
        raise WatermarkError(f"watermark strength must be in (0, 20], not {strength}")
    pattern = scheme.pixel_pattern(check_key(key), conv_encode(info_bits(check_payload(payload))))
    h, w = y.shape
    bs = 8 * scheme.subsample  # one mask value per pattern block
    mask = texture_mask(y, bs) * np.float32(strength)
    nby, nbx = mask.shape
    t = scheme.tile_px
    k = t // bs  # mask blocks per tile side
    ry, rx = -(-nby // k), -(-nbx // k)
    mask = np.pad(mask, ((0, ry * k - nby), (0, rx * k - nbx)))
    # One broadcast product writes the tiled, masked pattern in a single pass (no np.tile copy).
    delta = np.empty((ry, k, bs, rx, k, bs), np.float32)
    np.multiply(pattern.reshape(1, k, bs, 1, k, bs), mask.reshape(ry, k, 1, rx, k, 1), out=delta)
    return delta.reshape(ry * t, rx * t)[:h, :w]


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
    y = luma(image)  # validates dtype, shape and size
    return add_luma(image, watermark_delta(y, payload, key, method, strength))


def _scheme(method: str) -> Scheme:
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise WatermarkError(f"unknown watermark method {method!r} (use 'dct' or 'dwt')") from None
