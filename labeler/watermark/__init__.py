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

from collections.abc import Callable
from functools import lru_cache

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
    "budget_mask",
    "PAYLOAD_BYTES",
    "MIN_SIDE",
    "WatermarkError",
]

#: The methods by name.
METHODS: dict[str, Scheme] = {"dct": DCT, "dwt": DWT}
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


# The per-image budget (``strength=None``). SSIM's contrast-structure term for a block of host standard
# deviation s with an added, uncorrelated change of RMS a is (2 s^2 + C2) / (2 s^2 + a^2 + C2), C2 =
# (0.03 * 255)^2 (Wang et al., IEEE TIP 13(4) 2004). Giving every block a = K sqrt(2 s^2 + C2) makes that
# term 1 / (1 + K^2) everywhere: the same SSIM cost in flat and textured areas. In a flat block this is
# K sqrt(C2) ~ 0.94 levels RMS, dither-like energy that is invisible there (the fixed model gave 0.6 at
# strength 2), and in texture it grows linearly with the masker up to _BUDGET_HI. The whole image is then
# scaled down (never up) so the change's RMS stays within the PSNR budget: photos are limited by PSNR,
# flat images by SSIM, and neither by a mean over a corpus.
#
# Where the host is smooth, a `dct` mark of that amplitude does not survive a lossy codec: its energy is
# spread over 12 coefficients of 1/8-3/16 cycle/px, each below half of JPEG q50's quantisation step
# (10-24 levels), and a smooth block has no texture to dither the quantiser, so the codec rounds the whole
# mark to 0 (measured: 0 of 6 gradient images decode after JPEG q50 or WebP q75 at strength 2 or at this
# budget). The `dwt` pattern, an octave lower, lands largely in the block mean and the first AC
# coefficients of the codec's blocks, which survive: on the same images 3/3 after JPEG q50. So with
# method "dct" the budget carries the smooth blocks' share as a `dwt` mark (same key and payload) and the
# textured blocks' as `dct`; the detector already tries both and its p-value counts both.
#
# Activity for the budget is the smallest standard deviation of the 4 x 4 sub-blocks of a block: a block
# that holds one edge of flat vector art has a large standard deviation but flat quarters, where a mark
# scaled to the edge's contrast shows as a halo; real texture fills every quarter.
#: SSIM contrast-structure term each block keeps (0.985: the worst image measured stays >= 0.98).
BUDGET_SSIM = 0.985
#: PSNR (dB, 8-bit peak) the mark's RMS may reach on an image (the floor promised is 40 dB).
BUDGET_PSNR = 42.0
#: Exponent of the amplitude's growth with (2 s^2 + C2): 0.5 gives every block the same SSIM loss; more
#: puts the energy where SSIM (and the eye) charge least for it, the texture (the optimum of
#: sum(a) under sum(a^2 / (2 s^2 + C2)) fixed is 1).
BUDGET_SHAPE = 0.5
#: Largest RMS change of one block (8-bit levels).
_BUDGET_HI = 5.0
_SSIM_C2 = (0.03 * 255.0) ** 2
#: Sub-block side (pixels) of the budget's activity.
_SUB = 4
#: 8 x 8 block activity (levels) below which a block's budget goes to the `dwt` mark entirely, and above
#: which entirely to `dct` (linear share of the energy in between).
_SMOOTH_LO, _SMOOTH_HI = 1.5, 4.0
#: Share of a `dwt` change that SSIM's 11 x 11 Gaussian window (sigma 1.5 px) sees as local variance: a
#: sinusoid of f cycles/px keeps exp(-2 pi^2 1.5^2 f^2) of its amplitude in the local mean, so 1/16 to
#: 5/32 cycle/px (the `dwt` band) is 29-70 % variance; the rest moves the local mean, which SSIM's
#: luminance term barely charges (measured: the budget's dwt-only marks kept 0.988 SSIM for a 0.985 aim).
_DWT_SEEN = 0.6


def _block_min(sub: np.ndarray, k: int, hb: int, wb: int, op: str = "min") -> np.ndarray:
    """Minimum (or mean) over the k x k sub-blocks (k = 2 or 4) of every block -> (hb, wb).

    ``sub`` is edge-padded to (hb * k, wb * k). Pairwise ``np.minimum`` / ``+`` of strided views: a
    multi-axis ``min`` over a reshape is ~10x slower in numpy.
    """
    ph, pw = hb * k - sub.shape[0], wb * k - sub.shape[1]
    if ph > 0 or pw > 0:
        sub = np.pad(sub, ((0, max(ph, 0)), (0, max(pw, 0))), mode="edge")
    x = sub[: hb * k, : wb * k]
    while k > 1:
        if op == "min":
            x = np.minimum(np.minimum(x[0::2, 0::2], x[1::2, 0::2]), np.minimum(x[0::2, 1::2], x[1::2, 1::2]))
        else:
            x = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) * np.float32(0.25)
        k //= 2
    return np.ascontiguousarray(x)


def _ssim_scale(c: np.ndarray, e: np.ndarray, target: float) -> float:
    """Largest g with mean(c / (c + g^2 e)) >= target (bisection; the mean falls as g grows).

    Bracketed around the small-change estimate ``g0^2 mean(e / c) = 1 / target - 1`` (the mean is at
    least ``1 - g^2 mean(e / c)``, so ``g0`` is feasible; the answer lies within 16 ``g0``).
    """
    # r = c / e: a block's SSIM loss at scale g is 1 / (1 + r / g^2)
    r = c.ravel() / np.maximum(e.ravel(), np.float32(1e-12))
    ratio = float(np.mean(1.0 / r))
    if ratio <= 0.0:
        return 64.0
    lo = float(np.sqrt(max(1.0 - target, 0.0) / ratio))
    hi = 16.0 * lo
    inv = 1.0 / r
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        g2 = np.float32(mid * mid)
        if 1.0 - float(np.mean(g2 * inv / (1.0 + g2 * inv))) >= target:
            lo = mid
        else:
            hi = mid
    return lo


def budget_mask(sub_activity: np.ndarray, h: int, w: int, method: str = "dct"
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-block amplitudes (RMS luma change, 8-bit levels, float32) of the per-image budget.

    Parameters
    ----------
    sub_activity : ndarray, float32, shape (ceil(H/4), ceil(W/4))
        Luma standard deviation of every 4 x 4 pixel block (8-bit levels), :func:`block_activity`.
    h, w : int
        Image size (pixels).
    method : {"dct", "dwt"}
        ``"dct"``: textured blocks carry a ``dct`` mark, smooth ones a ``dwt`` mark (module comment);
        ``"dwt"``: a ``dwt`` mark everywhere.

    Returns
    -------
    dct_mask, dwt_mask : ndarray or None
        Amplitude per 8 x 8 block (``dct``, shape (ceil(H/8), ceil(W/8))) and per 16 x 16 block
        (``dwt``); None where that mark gets no energy. A block of activity ``s`` (its smallest 4 x 4
        standard deviation) gets ``g * min(((2 s^2 + C2) / C2) ** BUDGET_SHAPE, 5 / g)``: ``g`` levels
        RMS where flat, growing with the texture that masks it; the energy is split between the two
        marks by smoothness. ``g`` is the largest factor that keeps both the predicted SSIM (the mean
        over 8 x 8 blocks of ``(2 v + C2) / (2 v + C2 + seen energy)``, ``v`` the block's variance within
        its 4 x 4 sub-blocks, ``seen`` 1 for ``dct`` and :data:`_DWT_SEEN` for ``dwt``) at
        :data:`BUDGET_SSIM` and the RMS change (rounding included) at that of a :data:`BUDGET_PSNR` dB
        change. Each block of either pattern has the same energy and the two patterns' signs are
        independent, so the RMS is exact before clipping at 0 and 255.
    """
    act = sub_activity.astype(np.float32)
    hb8, wb8, hb16, wb16 = -(-h // 8), -(-w // 8), -(-h // 16), -(-w // 16)
    c2 = np.float32(_SSIM_C2)

    def shape(s: np.ndarray) -> np.ndarray:  # relative amplitude, 1 in a flat block
        return ((2.0 * s * s + c2) / c2) ** np.float32(BUDGET_SHAPE)

    a8 = _block_min(act, 8 // _SUB, hb8, wb8)
    a16 = _block_min(a8, 2, hb16, wb16, op="mean")  # a 16 x 16 block: the mean of its four 8 x 8 ones
    if method == "dwt":
        dct, dwt = None, shape(a16)
    else:
        def smooth(a: np.ndarray) -> np.ndarray:  # share of the energy that goes to `dwt`, 0..1
            return np.clip((np.float32(_SMOOTH_HI) - a) / np.float32(_SMOOTH_HI - _SMOOTH_LO), 0.0, 1.0)

        dct = shape(a8) * np.sqrt(1.0 - smooth(a8))
        dwt = shape(a16) * np.sqrt(smooth(a16))
        if not np.any(dwt > 0):
            dwt = None
    var8 = _block_min(act * act, 8 // _SUB, hb8, wb8, op="mean")
    seen = np.zeros((hb8, wb8), np.float32) if dct is None else dct * dct
    energy = 0.0 if dct is None else float(np.mean(np.square(dct, dtype=np.float64)))
    if dwt is not None:
        up = np.repeat(np.repeat(dwt * dwt, 2, axis=0), 2, axis=1)[:hb8, :wb8]
        seen = seen + np.float32(_DWT_SEEN) * up
        energy += float(np.mean(np.square(dwt, dtype=np.float64)))
    g_ssim = _ssim_scale(2.0 * var8 + c2, seen, BUDGET_SSIM)
    target = 255.0 * 10.0 ** (-BUDGET_PSNR / 20.0)
    target = np.sqrt(max(target * target - 1.0 / 12.0, 0.0))  # rounding to integers adds ~1/12 level^2
    g = np.float32(min(g_ssim, target / np.sqrt(energy)) if energy > 0 else 1.0)
    # the per-block cap applied after the scale only lowers both costs
    hi = np.float32(_BUDGET_HI)
    return tuple(None if m is None else np.minimum(m * g, hi) for m in (dct, dwt))  # type: ignore[return-value]


def _parts(activity: Callable[[int], np.ndarray], h: int, w: int, method: str, strength: float | None
           ) -> list[tuple[Scheme, np.ndarray]]:
    """The (scheme, per-block amplitude) pairs to add: one for a fixed strength, one or two for the budget.

    ``activity(n)`` gives the luma activity of every n x n block (levels).
    """
    scheme = _scheme(method)
    if strength is not None:
        return [(scheme, _mask_from_activity(activity(8 * scheme.subsample)) * np.float32(strength))]
    dct, dwt = budget_mask(activity(_SUB), h, w, method)
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
    for scheme, mask in _parts(lambda n: block_activity(y, n), h, w, method, strength):
        _, pattern = _pattern(payload, key, scheme.name, 1.0)
        bs = 8 * scheme.subsample
        wide = _wide(pattern, w)
        t = scheme.tile_px
        out += np.concatenate([_masked_pattern(wide, mask, bs, r0, min(h, r0 + t), w)
                               for r0 in range(0, h, t)])
    return out


def _check_strength(strength: float | None) -> None:
    if strength is not None and not (0.0 < float(strength) <= 20.0):
        raise WatermarkError(f"watermark strength must be in (0, 20], not {strength}")


def _pattern(payload: bytes, key: bytes, method: str, strength: float | None) -> tuple[Scheme, np.ndarray]:
    scheme = _scheme(method)
    _check_strength(strength)
    return scheme, _pixel_pattern(check_payload(payload), check_key(key), scheme.name)


@lru_cache(maxsize=16)
def _pixel_pattern(payload: bytes, key: bytes, method: str) -> np.ndarray:
    """The pattern tile of one mark (read-only; cached: a video marks every frame with the same one)."""
    scheme = METHODS[method]
    tile = scheme.pixel_pattern(key, conv_encode(info_bits(payload)))
    tile.setflags(write=False)
    return tile


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
    image : ndarray, uint8 or uint16, shape (H, W), (H, W, 1|2|3|4)
        Gray, gray+alpha, RGB or RGBA pixels, at least 128 x 128. Alpha is copied unchanged; 16-bit
        images are marked at the same relative amplitude as 8-bit ones.
    payload : bytes
        Exactly 8 bytes (64 bits); :func:`payload_from_produce_id` derives them from a label.
    key : bytes
        Secret key; the same key is needed to detect.
    method : {"dct", "dwt"}
        Embedding domain (see :mod:`labeler.watermark.dct`, :mod:`labeler.watermark.dwt`).
    strength : float or None
        None (default): the per-image budget (:func:`budget_mask`): every block may lose the same share
        of SSIM (0.94 levels RMS in flat areas, more in texture), scaled down where the whole change
        would exceed 42 dB PSNR. A number: the fixed texture-mask model of earlier versions, amplitude
        in 8-bit luma levels at reference texture (2.0 was the default: PSNR ~ 42 dB on photos, but
        50 dB on flat art, too faint to survive one lossy re-encode, and 38 dB on dense texture).

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
    _check_strength(strength)
    parts = []
    for scheme, mask in _parts(lambda n: strip_activity(lambda r0, r1: _luma_fast(image[r0:r1]), h, w, n),
                               h, w, method, strength):
        _, pattern = _pattern(payload, key, scheme.name, 1.0)
        parts.append((_wide(pattern, w), mask, 8 * scheme.subsample))
    out = np.empty_like(image, order="C")
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        delta = _masked_pattern(*parts[0][:2], parts[0][2], r0, r1, w)
        for wide, mask, bs in parts[1:]:  # the budget's second mark (smooth areas), same strip
            delta += _masked_pattern(wide, mask, bs, r0, r1, w)
        add_luma(image[r0:r1], delta, out=out[r0:r1])
    return out


def _scheme(method: str) -> Scheme:
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise WatermarkError(f"unknown watermark method {method!r} (use 'dct' or 'dwt')") from None
