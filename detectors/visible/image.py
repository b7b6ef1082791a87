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
# Flat best windows dropped one by one before masking every flat window of the region (see _match_region).
_FLAT_TRIES = 4
#: Coarse pass: the copy is reduced so the smallest ink height searched is this tall (px). 7 px (0.32x at
#: 480 px) rather than 10 px: the same 540 positive scores on benchmarks/visible_detection.py (none lower;
#: 5, 6 and 7 px all tested), the best coarse score of a labeled image >= 0.545 there (0.491 at 10 px),
#: ~2x fewer FFT points, and the exhaustive search kept only for images under ~210 px (issue #17).
COARSE_INK_PX = 7.0
#: Coarse pass: ratio between neighbouring ink heights (the confirmation covers CONFIRM_STEPS either side).
COARSE_STEP = 1.18
#: Coarse pass: ink heights from this many times COARSE_INK_PX up are looked for on the coarse copy halved
#: again (their ink still >= COARSE_INK_PX there; FFT size and windows 4x smaller for 3 of 8 heights).
COARSE_HALF_FROM = 2.0
#: Coarse pass: places scoring below this are not confirmed. On benchmarks/visible_detection.py the place
#: where a labeled image's label is found scores >= 0.481 (a long wording's own template; its short one
#: scores >= 0.533 there), an unlabeled image's best place <= 0.443 (99th percentile 0.378, median 0.284).
#: 0.35 keeps a 0.13 margin below every label and confirms no place on 93 % of the unlabeled images
#: (0.3: 64 %), each place costing ~0.3-0.7 ms of matchTemplate at 1080p (issue #17).
COARSE_FLOOR = 0.35
#: Coarse pass: at most this many distinct places are confirmed at working size.
COARSE_CANDIDATES = 4
#: Confirmation: the window searched around a coarse place reaches this fraction of the template height
#: (plus one coarse pixel) beyond the place's own box. The label found is at most 0.078 template heights
#: from its coarse place on benchmarks/visible_detection.py; 0.15, 0.2 and the former 0.3 give the same
#: 540 positive scores there.
CONFIRM_PAD = 0.2
#: Confirmation: the fine heights tried at a coarse place are within this many coarse steps of its height
#: (the label found is at most 0.47 steps from it on benchmarks/visible_detection.py with the band-only
#: coarse copy, 0.55 with the former whole-copy one; 0.8, 1 and the former 1.3 give the same 540 positive
#: scores there; 0.8 tries ~26 % fewer heights than 1).
CONFIRM_STEPS = 0.8
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
#: Working copy: a reduction left after the exact integer step that is at least this mild (1080p: 0.89) is
#: bilinear, not area: on benchmarks/visible_detection.py still 540/540 found (lowest 0.638) and 0/345 false
#: alarms (highest 0.516), as with area; ~2 ms less at 1080p.
LINEAR_RESIDUAL = 0.75


def _check_dtype(arr: np.ndarray) -> None:
    if arr.dtype not in (np.uint8, np.uint16):
        raise InvalidArgument(f"image must be uint8 or uint16, got {arr.dtype}")


def _luma(image: np.ndarray) -> np.ndarray:
    """Full-resolution float32 luminance (BT.709 weights, 0..255)."""
    arr = np.asarray(image)
    _check_dtype(arr)
    scale = np.float32(255.0 / np.iinfo(arr.dtype).max)
    if arr.ndim == 2:
        return arr.astype(np.float32) * scale
    channels = arr.shape[2]
    if channels in (1, 2):
        return arr[..., 0].astype(np.float32) * scale
    return (arr[..., :3].astype(np.float32) @ _LUMA) * scale


def _work_luma(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Luminance (float32, 0..255) reduced so the shorter side is at most :data:`WORK_SIDE`, and the factor.

    Speed matters here (this runs on every verified image): the grey conversion is OpenCV's integer
    one (BT.601 weights; the template is grey, so the weights only shift the background a little) on
    the full image, then the reduction in two steps, an exact integer area one (a fast path) and the
    remaining fraction (bilinear in float32 when it is at least :data:`LINEAR_RESIDUAL`, else area). About
    1 ms for a 1920x1080 RGB image instead of 15 ms for float BT.709 luma then one fractional area
    resize; correlation scores move by about 0.001.
    """
    arr = np.asarray(image)
    _check_dtype(arr)
    height, width = arr.shape[:2]
    factor = min(1.0, WORK_SIDE / min(height, width))
    scale = np.float32(255.0 / np.iinfo(arr.dtype).max)
    if arr.ndim == 3:
        if arr.shape[2] in (1, 2):
            arr = arr[..., 0]
        else:
            code = cv2.COLOR_RGB2GRAY if arr.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
            arr = cv2.cvtColor(np.ascontiguousarray(arr), code)
    if factor < 1:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        step = int(1 / factor)
        if step >= 2:
            # Whole multiples of the step only (at most step - 1 edge rows/columns dropped), so OpenCV
            # takes its exact-integer area path.
            rows, cols = height // step * step, width // step * step
            arr = np.ascontiguousarray(arr[:rows, :cols])
            if step == 3:
                # OpenCV's integer area path is vectorised for 2x only: for 3x (2560x1440) a box filter
                # sampled every third pixel gives the same bytes (checked on the corpus) in half the time.
                arr = cv2.boxFilter(arr, -1, (3, 3), normalize=True, anchor=(0, 0))[::3, ::3]
            else:
                arr = cv2.resize(arr, (cols // step, rows // step), interpolation=cv2.INTER_AREA)
        if arr.shape[::-1] != size:
            # What is left after the integer step is a reduction by (1/2, 1]; OpenCV's fractional area
            # path costs ~2 ms at 1080p (most of this function), bilinear ~0.3 ms and aliases little
            # while the reduction stays mild.
            mild = min(size[1] / arr.shape[0], size[0] / arr.shape[1]) >= LINEAR_RESIDUAL
            if mild:
                # OpenCV's bilinear runs ~2x faster on float32 than on 8 bits (0.12 vs 0.23 ms at 1080p,
                # the conversion included it is still 0.1 ms less), and keeps the fractions.
                arr = arr.astype(np.float32)
            arr = cv2.resize(np.ascontiguousarray(arr), size,
                             interpolation=cv2.INTER_LINEAR if mild else cv2.INTER_AREA)
    return arr.astype(np.float32, copy=False) * scale, factor


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
    floor_ink = 1.1 * MIN_INK_PX * factor
    high = max(MAX_RATIO * work_short, floor_ink)
    # Templates over 30 % of the shorter side are not worth matching, except the 12 px floor itself: on a
    # picture under ~44 px high (a 100x30 button, a 200x20 strip) the labeler's ink is 12 px or whatever
    # fits, 30-60 % of it, and capping the ladder at 30 % left verify blind to it.
    high = min(high, max(0.3 * work_short, floor_ink))
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


def _position(box: tuple[int, int, int, int], top: bool, size: tuple[int, int]) -> str:
    """Position name of a label ``box`` ``(x, y, w, h)`` found in the ``top`` band of a ``size`` picture.

    Judged by where the box sits within the room it has (``width - w``, ``height - h``), not by which
    third its centre falls in: a label as wide as most of a small picture has its centre in the middle
    third wherever it is drawn (46 px "AI生成" at the right of 64 px: centre at 63 %), and on a picture
    hardly taller than the label (200x20) both bands hold it, so the band alone does not say which edge.
    """
    x, y, w, h = box
    height, width = size
    room = width - w
    # -1: against the left edge, +1: against the right one, 0: centred (or no room to tell).
    offset = (2 * x - room) / room if room > 0 else 0.0
    horizontal = "left" if offset < -1 / 3 else "right" if offset > 1 / 3 else "center"
    below = height - h - 2 * y  # > 0: nearer the top edge; 0: no room to tell, the band says
    vertical = "top" if below > 0 or (below == 0 and top) else "bottom"
    return f"{vertical}-{horizontal}"


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
    grey, factor = _work_luma(image)
    wh, ww = grey.shape
    work_short = min(wh, ww)
    ladder = _ladder(work_short, factor)
    if COARSE_INK_PX / ladder[0] >= 0.75:
        # Small image: the whole search is already cheap, and a coarser copy would blur its labels away.
        best = _exhaustive(grey, texts, ladder, style)
    else:
        best = _coarse_then_confirm(grey, texts, ladder, style)
    score, top, ink, text, (bx, by, bw, bh) = best
    if score < threshold or top is None:
        return VisibleResult(False, score=score)
    inv = 1 / factor
    box = (round(bx * inv), round(by * inv), round(bw * inv), round(bh * inv))
    return VisibleResult(
        True,
        position=_position((bx, by, bw, bh), top, (wh, ww)),
        height_ratio=ink / work_short,
        score=score,
        text=text,
        box=box,
    )


# A match: score, top band?, ink height (working px), wording, box (x, y, w, h) in working px.
_Match = tuple[float, "bool | None", float, str, tuple[int, int, int, int]]
_NO_MATCH: _Match = (0.0, None, 0.0, "", (0, 0, 0, 0))


def _band_rows(th: int, work_short: int, wh: int) -> int:
    # The labeler's margin is 2 % of the shorter side by default (at most 25 %, then the label would sit
    # far inside): search a band the template's height plus 10 % of the shorter side deep.
    return min(wh, th + math.ceil(0.1 * work_short) + 2)


def _match_region(grey: np.ndarray, y0: int, y1: int, x0: int, x1: int, tpl: np.ndarray,
                  best: float) -> tuple[float, int, int]:
    """Best ``|TM_CCOEFF_NORMED|`` of ``tpl`` inside ``grey[y0:y1, x0:x1]`` (flat windows excluded).

    Returns ``(score, x, y)`` in ``grey``'s pixels, or ``(best, -1, -1)`` when the region is smaller
    than the template or scores no higher than ``best``.
    """
    th, tw = tpl.shape
    region = grey[y0:y1, x0:x1]
    if region.shape[0] < th or region.shape[1] < tw:
        return best, -1, -1
    result = cv2.matchTemplate(region, tpl, cv2.TM_CCOEFF_NORMED)
    # Flat areas give 0/0: OpenCV returns inf, nan or a spurious 1 there.
    result[~np.isfinite(result)] = 0
    np.abs(result, out=result)
    # Only the best window matters: check it for flatness, and drop it and look again while it is flat
    # (a few tries, then the whole flat map) - the same answer as masking every flat window first, for
    # one window's statistics instead of two box filters over the region.
    for _ in range(_FLAT_TRIES):
        _, score, _, (mx, my) = cv2.minMaxLoc(result)
        if score <= best or not np.isfinite(score):
            return best, -1, -1
        if float(region[my:my + th, mx:mx + tw].var()) >= _MIN_STD**2:
            return float(score), x0 + mx, y0 + my
        result[my, mx] = 0
    result[_flat(region, th, tw)] = 0
    _, score, _, (mx, my) = cv2.minMaxLoc(result)
    if score > best and np.isfinite(score):
        return float(score), x0 + mx, y0 + my
    return best, -1, -1


def _exhaustive(grey: np.ndarray, texts: tuple[str, ...], ladder: list[float], style: LabelStyle) -> _Match:
    """Every wording at every ladder height over the whole top and bottom bands (the reference search)."""
    wh, ww = grey.shape
    work_short = min(wh, ww)
    best = _NO_MATCH
    for text in texts:
        for ink in ladder:
            tpl, tpl_ink = _template(text, ink, style)
            th, tw = tpl.shape
            if th >= wh or tw >= ww:
                continue
            band = _band_rows(th, work_short, wh)
            for top in (True, False):
                y0 = 0 if top else wh - band
                score, mx, my = _match_region(grey, y0, y0 + band, 0, ww, tpl, best[0])
                if mx >= 0:
                    best = (score, top, tpl_ink, text, (mx, my, tw, th))
    return best


def _coarse_ladder(ladder: list[float], scale: float) -> list[float]:
    """Ink heights (coarse px) spanning the fine ladder at :data:`COARSE_STEP`, both ends included."""
    low, high = ladder[0] * scale, ladder[-1] * scale
    count = max(2, math.ceil(math.log(high / low) / math.log(COARSE_STEP)) + 1)
    return [low * (high / low) ** (i / (count - 1)) for i in range(count)]


# A coarse find: score, top band?, centre (x, y) and ink height (working px), wording, width (working px).
_Place = tuple[float, bool, tuple[float, float], float, str, float]


def _distinct_places(candidates: list[_Place]) -> list[_Place]:
    """The best :data:`COARSE_CANDIDATES` coarse finds scoring at least :data:`COARSE_FLOOR`, one per place.

    A place is confirmed once per wording length (with every height and wording of that length near
    it), whichever height found it; the other length gets its own look (a long wording's prefix or
    suffix can outscore it there in the coarse pass).
    """
    chosen: list[_Place] = []
    for cand in sorted(candidates, key=lambda c: -c[0]):
        if cand[0] < COARSE_FLOOR or len(chosen) >= COARSE_CANDIDATES:
            break
        if any(c[1] == cand[1] and c[4] == cand[4] and abs(c[2][0] - cand[2][0]) < 0.5 * max(c[5], cand[5])
               and abs(c[2][1] - cand[2][1]) < 0.5 * cand[3] for c in chosen):
            continue
        chosen.append(cand)
    return chosen


@functools.lru_cache(maxsize=64)
def _spectra(keys: tuple[tuple[str, int], ...], style: LabelStyle, rows: int, cols: int) -> np.ndarray:
    """Conjugate spectra (``2 x len(keys) x rows x (cols // 2 + 1)``) of the zero-mean, unit-norm templates.

    Row 0 for the top band, row 1 for the bottom band, which :func:`_coarse_bands` hands over upside
    down: its templates are flipped the same way. Cached per key list (one per image size).
    """
    out = np.empty((2, len(keys), rows, cols // 2 + 1), np.complex64)
    for i, (text, ink4) in enumerate(keys):
        tpl, _ = _template_cached(text, ink4, style)
        centred = tpl - tpl.mean()
        centred /= max(float(np.linalg.norm(centred)), 1e-6)
        out[0, i] = np.conj(np.fft.rfft2(centred, s=(rows, cols)))
        out[1, i] = np.conj(np.fft.rfft2(centred[::-1], s=(rows, cols)))
    out.setflags(write=False)
    return out


def _ncc_best(bands: np.ndarray, keys: tuple[tuple[str, int], ...], style: LabelStyle,
              limits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best ``|normalized cross-correlation|`` of every template ``keys`` (text, ink4) in both bands, by FFT.

    ``bands`` is ``(2, rows, cols)``: the top band and the bottom band upside down, so that in both the
    windows a label of template ``i`` may start at are the first ``limits[i]`` rows (clipped to the
    windows inside the band). Returns the best score, its window's row and column, each ``(2, len(keys))``
    (score 0 where no window is usable).

    One forward transform of both bands and one batched inverse for all templates (the second pass,
    back to real along each row, on the rows a window may start at only); window sums from an integral
    image. The bands are circularly correlated at the transform size, exact for the windows that lie
    wholly inside them (the only ones kept). Windows whose grey level varies by less than
    :data:`_MIN_STD` score 0, as in :func:`_flat`. Scores are compared squared (no square root per
    window), as ``corr^2 / (n x variance)``.
    """
    _, rows, cols = bands.shape
    # Transform sizes with only factors 2, 3, 5 (a prime width would make the FFT many times slower);
    # the zero padding only touches windows that leave the band, which are dropped.
    size = (cv2.getOptimalDFTSize(rows), cv2.getOptimalDFTSize(cols))
    # Zero-padded to the transform size; centred for a smaller float32 rounding (NCC ignores the offset).
    padded = np.zeros((2, *size), np.float32)
    centred = padded[:, :rows, :cols]
    np.subtract(bands, bands.mean(axis=(1, 2), keepdims=True), out=centred)
    shapes = [_template_cached(text, ink4, style)[0].shape for text, ink4 in keys]
    stops = [max(0, min(limit, rows - th + 1)) for limit, (th, _) in zip(limits, shapes, strict=True)]
    depth = max(stops)
    score = np.zeros((2, len(keys), max(depth, 1), cols), np.float32)
    if depth:
        # OpenCV's forward transform of a small real array is ~2x faster than numpy's (same numbers to
        # ~1e-7); its first size[1] // 2 + 1 columns are rfft2's.
        forward = np.stack([cv2.dft(b, flags=cv2.DFT_COMPLEX_OUTPUT)[:, :size[1] // 2 + 1] for b in padded])
        spectrum = _spectra(keys, style, *size) * forward.view(np.complex64)[..., 0][:, None]
        corr = np.fft.irfft(np.fft.ifft(spectrum, axis=2)[:, :, :depth], n=size[1], axis=3)
        np.square(corr, out=corr)
        # Window sums of the values and their squares as (band, sum | squares, row, column): the integral
        # image in float64 (differences of large entries), the sums over a template's rows in float32
        # (a coarse score moves by < 1e-3; it only picks the places to confirm).
        sums = np.stack([np.stack(cv2.integral2(c, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)) for c in centred])
        strips: dict[tuple[int, int], np.ndarray] = {}
        for i, ((th, tw), stop) in enumerate(zip(shapes, stops, strict=True)):
            if not stop:
                continue
            if (th, stop) not in strips:  # shared by the wordings of a height
                strips[th, stop] = np.subtract(sums[:, :, th:th + stop], sums[:, :, :stop], dtype=np.float32)
            strip, w, n = strips[th, stop], cols - tw + 1, th * tw
            window = strip[..., tw:tw + w] - strip[..., :w]
            spread = window[:, 1] - window[:, 0] * window[:, 0] * np.float32(1 / n)  # n x the variance
            np.divide(corr[:, i, :stop, :w], spread, out=score[:, i, :stop, :w],
                      where=spread >= np.float32(n * _MIN_STD**2))
    flat = score.reshape(2, len(keys), -1)
    at = flat.argmax(axis=2)
    best = np.sqrt(np.take_along_axis(flat, at[..., None], axis=2)[..., 0])
    return best, at // score.shape[3], at % score.shape[3]


def _coarse_bands(grey: np.ndarray, scale: float, depth: int) -> np.ndarray:
    """The top and bottom ``depth`` rows of ``grey`` reduced by ``scale``, the bottom upside down.

    Returns ``(2, rows, cols)`` float32 (``rows <= depth`` when the image is shorter); coarse pixel edge
    ``u`` is working pixel edge ``u / scale`` (counted from the bottom edge in the second band). Only the
    two bands are reduced, each anchored at its own edge: an exact integer box step (a box filter
    sampled every ``step`` pixels), then the remaining fraction, bilinear when it is at least
    :data:`LINEAR_RESIDUAL`, else area; ~4x cheaper than one fractional area resize of the whole copy.
    The coarse pass only picks the places to confirm, so its copy need not be the reference's.
    """
    wh, ww = grey.shape
    step = max(1, int(1 / scale))
    rest = scale * step
    # Source rows (a whole number of steps) for depth coarse rows plus one for the interpolation.
    need = min(wh // step * step, math.ceil((depth + 1) / scale / step) * step)
    cols = ww // step * step
    out = []
    for slab in (grey[:need, :cols], grey[wh - need:, :cols][::-1]):
        slab = np.ascontiguousarray(slab)
        if step > 1:
            slab = cv2.boxFilter(slab, -1, (step, step), anchor=(0, 0), normalize=True)[::step, ::step]
        out.append(cv2.resize(np.ascontiguousarray(slab), None, fx=rest, fy=rest,
                              interpolation=cv2.INTER_LINEAR if rest >= LINEAR_RESIDUAL else cv2.INTER_AREA))
    return np.stack(out)[:, :depth]


def _halved(bands: np.ndarray, depth: int) -> np.ndarray:
    """The first ``depth`` rows of ``bands`` (``2 x rows x cols``) halved by an exact 2x area reduction."""
    rows, cols = min(bands.shape[1], 2 * depth) // 2, bands.shape[2] // 2
    view = bands[:, :2 * rows, :2 * cols]  # OpenCV's fast path needs whole multiples of 2
    return np.stack([cv2.resize(b, (cols, rows), interpolation=cv2.INTER_AREA) for b in view])


# What the coarse pass looks for at one reduction: factor (coarse px per working px), band depth (coarse
# rows), templates (text, ink4) and, for each, the rows from the band's edge its windows may start at.
_Level = tuple[float, int, tuple[tuple[str, int], ...], tuple[int, ...]]


@functools.lru_cache(maxsize=64)
def _coarse_plan(texts: tuple[str, ...], ladder: tuple[float, ...], style: LabelStyle, wh: int,
                 ww: int) -> tuple[_Level, ...]:
    """What the coarse pass of a ``wh x ww`` working copy looks for (the same for every image that size).

    Level 0 is the copy where the smallest ladder height is :data:`COARSE_INK_PX`; heights of at least
    :data:`COARSE_HALF_FROM` times that are looked for at level 1, the same copy halved again, where
    their ink is still at least :data:`COARSE_INK_PX`.
    """
    work_short = min(wh, ww)
    scale = COARSE_INK_PX / ladder[0]
    step = max(1, int(1 / scale))
    sh, sw = round(wh // step * (scale * step)), round(ww // step * (scale * step))
    # Wordings of one length (AI生成 / AI合成) differ by a glyph: the coarse pass looks for the first of
    # each length, the confirmation tries them all.
    widths: dict[int, str] = {}
    for text in texts:
        widths.setdefault(round(10 * _template(text, 20.0, style)[0].shape[1] / 20.0), text)
    levels = []
    for level in (0, 1):
        at, fit = scale / 2**level, (sh >> level, sw >> level)
        keys, limits = [], []
        for text in widths.values():
            for ink in _coarse_ladder(list(ladder), scale):
                if (ink >= COARSE_HALF_FROM * COARSE_INK_PX) != bool(level):
                    continue
                ink4 = round(ink / 2**level * 4)
                th, tw = _template_cached(text, ink4, style)[0].shape
                if th < fit[0] and tw < fit[1]:
                    keys.append((text, ink4))
                    # Rows a fine template of this size may start at: the reference search's band.
                    fine_th = round(th / at)
                    limits.append(math.ceil((_band_rows(fine_th, work_short, wh) - fine_th) * at) + 1)
        depth = min(fit[0], max((_template_cached(t, k, style)[0].shape[0] for t, k in keys), default=0)
                    + math.ceil(0.1 * work_short * at) + 3)
        levels.append((at, depth, tuple(keys), tuple(limits)))
    return tuple(levels)


def _coarse_places(grey: np.ndarray, texts: tuple[str, ...], ladder: list[float],
                   style: LabelStyle) -> tuple[list[_Place], float]:
    """Each coarse template's best place in each band (scoring at least :data:`COARSE_FLOOR`); the factor."""
    wh, _ = grey.shape
    levels = _coarse_plan(texts, tuple(ladder), style, *grey.shape)
    scale = levels[0][0]
    bands = _coarse_bands(grey, scale, max(levels[0][1], 2 * levels[1][1]))
    places: list[_Place] = []
    for level, (at, depth, keys, limits) in enumerate(levels):
        if not keys:
            continue
        if level:
            bands = _halved(bands, depth)
        best, rows_at, cols_at = _ncc_best(bands[:, :depth], keys, style, limits)
        for band, i in zip(*np.nonzero(best >= COARSE_FLOOR), strict=True):
            text, ink4 = keys[i]
            th, tw = _template_cached(text, ink4, style)[0].shape
            cy = (int(rows_at[band, i]) + th / 2) / at  # from the bottom edge in the bottom band
            centre = ((int(cols_at[band, i]) + tw / 2) / at, cy if band == 0 else wh - cy)
            places.append((float(best[band, i]), bool(band == 0), centre, ink4 / 4 / at, text, tw / at))
    return places, scale


def _coarse_then_confirm(grey: np.ndarray, texts: tuple[str, ...], ladder: list[float],
                         style: LabelStyle) -> _Match:
    """Coarse FFT search over both bands, then :func:`_match_region` at working size around the best places.

    The coarse pass runs on a copy reduced so the smallest ladder height is :data:`COARSE_INK_PX`, at
    every wording and :data:`COARSE_STEP`-spaced heights, as one FFT correlation of both bands. Its
    :data:`COARSE_CANDIDATES` best places (distinct, scoring at least :data:`COARSE_FLOOR`) are searched
    exactly as :func:`_exhaustive` would (same templates, same scores), restricted to the fine heights
    within :data:`CONFIRM_STEPS` coarse steps and to a window around the place. All of them: a shorter
    wording matching part of a longer one can pass the threshold at a lower score than the longer one
    scores there. So a reported score is always one the reference search computes too, and an unlabeled
    image can only score lower than there, never higher (0 when no place reaches the floor).
    """
    wh, ww = grey.shape
    work_short = min(wh, ww)
    places, scale = _coarse_places(grey, texts, ladder, style)
    best = _NO_MATCH
    for _, top, (cx, cy), ink_c, text_c, _ in _distinct_places(places):
        width_c = _template(text_c, ink_c, style)[0].shape[1] / ink_c
        for text in texts:
            if abs(_template(text, ink_c, style)[0].shape[1] / ink_c - width_c) > 0.15 * width_c:
                continue  # another wording's length: a different place, found by its own candidate
            for ink in ladder:
                if abs(math.log(ink / ink_c)) > CONFIRM_STEPS * math.log(COARSE_STEP):
                    continue
                tpl, tpl_ink = _template(text, ink, style)
                th, tw = tpl.shape
                if th >= wh or tw >= ww:
                    continue
                band = _band_rows(th, work_short, wh)
                b0 = 0 if top else wh - band
                pad = max(3, math.ceil(CONFIRM_PAD * th)) + math.ceil(1 / scale)
                x0, x1 = max(0, math.floor(cx - tw / 2) - pad), min(ww, math.ceil(cx + tw / 2) + pad)
                y0, y1 = max(b0, math.floor(cy - th / 2) - pad), min(b0 + band, math.ceil(cy + th / 2) + pad)
                score, mx, my = _match_region(grey, y0, y1, x0, x1, tpl, best[0])
                if mx >= 0:
                    best = (score, top, tpl_ink, text, (mx, my, tw, th))
    return best
