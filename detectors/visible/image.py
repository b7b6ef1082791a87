"""Find the visible label of :mod:`labeler.visible` in an image: normalized cross-correlation, multi-scale.

::

    >>> from detectors.visible import detect_image_label
    >>> from labeler.visible import add_image_label
    >>> r = detect_image_label(add_image_label(pixels))
    >>> r.present, r.position
    (True, 'bottom-right')

How. The image is turned to luminance and reduced so its shorter side is at most
:data:`WORK_SIDE` px (labels are sized relative to that side, so this fixes their expected size).
For each wording in ``texts`` and each ink height on a geometric ladder covering the sizes
:func:`labeler.visible.place_label` produces (5 % .. :data:`MAX_RATIO` of the shorter side, and the
12 px floor of small images, also after a 0.5x resize), the label is rendered exactly as the labeler
draws it (composited on mid-grey, then area-resampled to the ladder size, as a downscaled copy would
be) and matched with OpenCV's ``TM_CCOEFF_NORMED`` against the top and bottom bands of the image, where
the labeler puts it. The labeler draws light-on-dark or dark-on-light depending on the background;
the two are negatives of each other around mid-grey, so ``|r|`` is the score. ``present`` is
``score >= threshold`` (default :data:`DEFAULT_THRESHOLD`, chosen from the corpus measurements in
``docs/visible.md``).

Limits: the label must still be near the top or bottom edge (a crop that cuts it off, or one that
moves it far from the edge, loses it); wordings not in ``texts`` are not looked for; the score is a
correlation, not a calibrated probability.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from detectors.visible.common import VisibleResult
from labeler.errors import InvalidArgument
from labeler.visible.image import DEFAULT_STYLE, MIN_HEIGHT_RATIO, MIN_INK_PX, LabelStyle, render_label

__all__ = ["DEFAULT_TEXTS", "DEFAULT_THRESHOLD", "MAX_RATIO", "SCALE_STEP", "WORK_SIDE", "detect_image_label"]

#: Wordings looked for by default (the labeler's default first).
DEFAULT_TEXTS: tuple[str, ...] = ("AI生成", "人工智能生成", "AI合成", "人工智能合成")
#: Correlation from which a label counts as present.
DEFAULT_THRESHOLD = 0.58
#: The image is reduced to at most this shorter side (px) before matching.
WORK_SIDE = 480
#: Largest ink height looked for, as a fraction of the shorter side.
MAX_RATIO = 0.12
#: Ratio between neighbouring ink heights on the search ladder (matching tolerates ~5 % misscale).
SCALE_STEP = 1.08
# Smallest ink height (working px) worth matching: below it hanzi are blobs.
_MIN_MATCH_PX = 5.0
# Rendered ink height the templates are resampled from (px).
_RENDER_PX = 40
_MIN_STD = 8.0
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _luma(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16):
        raise InvalidArgument(f"image must be uint8 or uint16, got {arr.dtype}")
    scale = np.float32(255.0 / np.iinfo(arr.dtype).max)
    if arr.ndim == 2:
        return arr.astype(np.float32) * scale
    channels = arr.shape[2]
    if channels in (1, 2):
        return arr[..., 0].astype(np.float32) * scale
    return (arr[..., :3].astype(np.float32) @ _LUMA) * scale


def _template(text: str, ink: float, style: LabelStyle) -> tuple[np.ndarray, float]:
    """Grey rendering of the light-scheme label with ink height ``ink`` px, and its exact ink height."""
    return _template_cached(text, round(ink * 4), style)


@functools.lru_cache(maxsize=512)
def _template_cached(text: str, ink4: int, style: LabelStyle) -> tuple[np.ndarray, float]:
    # ink4: the ink height in quarter pixels, so near-equal ladder heights share an entry.
    rendered = render_label(text, _RENDER_PX, style)
    grey = 128 * (1 - rendered.text_alpha - rendered.back_alpha) + 255 * rendered.text_alpha
    factor = (ink4 / 4) / rendered.ink_height
    size = (max(3, round(rendered.width * factor)), max(3, round(rendered.height * factor)))
    small = cv2.resize(grey.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    # Unmasked on purpose: a mask of the opaque text/outline (ignoring the plate, through which the
    # background shows) was tried; at the 5-8 px ink sizes of small resized images it scored lower and
    # matched 3x slower.
    small.setflags(write=False)
    return small, rendered.ink_height * size[1] / rendered.height


def _ladder(work_short: int, factor: float) -> list[float]:
    """Ink heights (working px) to try."""
    low = max(_MIN_MATCH_PX, 0.9 * MIN_HEIGHT_RATIO * work_short)
    # The 12 px floor of small images is a larger ratio; halve it for a 0.5x resized copy.
    high = max(MAX_RATIO * work_short, 1.1 * MIN_INK_PX * factor)
    high = min(high, 0.3 * work_short)
    count = max(1, math.ceil(math.log(high / low) / math.log(SCALE_STEP)) + 1)
    return [low * SCALE_STEP**i for i in range(count)]


def _flat(region: np.ndarray, th: int, tw: int) -> np.ndarray:
    """Boolean map (matchTemplate's result shape) of windows whose grey level barely varies."""
    mean = cv2.boxFilter(region, -1, (tw, th), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)
    sq = cv2.boxFilter(region * region, -1, (tw, th), anchor=(0, 0), normalize=True,
                       borderType=cv2.BORDER_CONSTANT)
    rows, cols = region.shape[0] - th + 1, region.shape[1] - tw + 1
    var = sq[:rows, :cols] - mean[:rows, :cols] ** 2
    # Our label spans black outline to white text (std ~100); below 8 grey levels nothing is drawn.
    return var < _MIN_STD**2


def _position(cx: float, top: bool, width: int) -> str:
    third = cx / width
    horizontal = "left" if third < 1 / 3 else "right" if third > 2 / 3 else "center"
    return f"{'top' if top else 'bottom'}-{horizontal}"


def detect_image_label(
    image: np.ndarray,
    *,
    texts: tuple[str, ...] = DEFAULT_TEXTS,
    threshold: float = DEFAULT_THRESHOLD,
    style: LabelStyle = DEFAULT_STYLE,
) -> VisibleResult:
    """Look for a visible label drawn by :func:`labeler.visible.add_image_label`.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)``, ``(H, W, 2|3|4)``, uint8 or uint16 (alpha ignored).
    texts : tuple of str
        Wordings to look for.
    threshold : float
        Score (``|NCC|``, 0..1) from which the label counts as present.
    style : LabelStyle
        The style it was drawn with (the default unless you changed it).

    Returns
    -------
    VisibleResult
    """
    grey = _luma(image)
    height, width = grey.shape
    short = min(height, width)
    factor = min(1.0, WORK_SIDE / short)
    if factor < 1:
        grey = cv2.resize(grey, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)
    wh, ww = grey.shape
    work_short = min(wh, ww)
    best = (0.0, None, 0.0, "", (0, 0, 0, 0))  # score, top?, ink, text, box
    for text in texts:
        for ink in _ladder(work_short, factor):
            tpl, tpl_ink = _template(text, ink, style)
            th, tw = tpl.shape
            if th >= wh or tw >= ww:
                continue
            # The labeler's margin is <= 25 % of the shorter side (2 % by default): search a band that deep.
            band = min(wh, th + math.ceil(0.1 * work_short) + 2)
            for top in (True, False):
                y0 = 0 if top else wh - band
                region = grey[y0:y0 + band]
                result = cv2.matchTemplate(region, tpl, cv2.TM_CCOEFF_NORMED)
                # Flat areas give 0/0: OpenCV returns inf, nan or a spurious 1 there.
                result[~np.isfinite(result)] = 0
                result[_flat(region, th, tw)] = 0
                np.abs(result, out=result)
                _, score, _, (mx, my) = cv2.minMaxLoc(result)
                if score > best[0] and np.isfinite(score):
                    best = (float(score), top, tpl_ink, text, (mx, y0 + my, tw, th))
    score, top, ink, text, (bx, by, bw, bh) = best
    if score < threshold or top is None:
        return VisibleResult(False, score=score)
    inv = 1 / factor
    box = (round(bx * inv), round(by * inv), round(bw * inv), round(bh * inv))
    return VisibleResult(
        True,
        position=_position(bx + bw / 2, top, ww),
        height_ratio=ink / work_short,
        score=score,
        text=text,
        box=box,
    )
