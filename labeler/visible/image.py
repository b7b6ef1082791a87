"""Visible "AI生成" labels on still images (GB 45438-2025 section 5, explicit label for images).

::

    >>> from labeler.visible import add_image_label, place_label
    >>> out = add_image_label(pixels)                       # "AI生成", bottom-right
    >>> place_label(*pixels.shape[:2], "AI生成").box          # (x, y, w, h) of the plate
    (393, 373, 79, 38)

Size rule. The standard asks for text at least 5 % of the image's shorter side tall. Font size is not
glyph height (the em box of Noto Sans CJK is ~1.2x the ink height of "AI生成"), so the label is sized by
its **ink**: the rows of the rendered text mask with at least 50 % coverage. The target ink height is
``max(ceil(height_ratio * shorter side), MIN_INK_PX)``; when that label would not fit inside the image
(tiny or very narrow images), it shrinks to fit, but never below ``ceil(height_ratio * shorter side)``
(an image too small even for that raises :class:`~labeler.errors.LabelerError`).

Look. White text on a translucent dark plate with a dark outline, or black text on a light plate with
a light outline, whichever contrasts more with the mean luminance under the label box: the outline
keeps each stroke legible on busy backgrounds, the plate keeps the block readable on flat ones.

Wording. :func:`check_wording` requires "AI" or "人工智能" and "生成" or "合成" (GB 45438 section 5);
English wordings ("AI-generated", "AI synthesized") pass too, for content also shown outside
mainland China. ``check_wording=False`` turns the check off for wording a legal team has chosen.
Characters missing from the shipped font raise :class:`~labeler.errors.LabelerError` (see
``fonts/README.md`` to add some).

Everything is deterministic: the same (text, size, style) renders the same mask on every call and
machine with the same FreeType, which the detector (:mod:`detectors.visible`) relies on. Rendered
masks are kept in a bounded LRU cache (the only state this module has); compositing is a vectorized
alpha blend over the label box only, so a 1920x1080 call costs about a copy of the image.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from labeler.errors import InvalidArgument, LabelerError

__all__ = [
    "DEFAULT_TEXT",
    "FONT_FILE",
    "MIN_HEIGHT_RATIO",
    "MIN_INK_PX",
    "POSITIONS",
    "LabelStyle",
    "Placement",
    "RenderedLabel",
    "add_image_label",
    "check_wording",
    "font_path",
    "place_label",
    "render_label",
]

DEFAULT_TEXT = "AI生成"
#: Smallest ink height ratio the standard allows: 5 % of the shorter side.
MIN_HEIGHT_RATIO = 0.05
#: Smallest ink height (pixels) aimed for, whatever 5 % gives: 12 px is about the smallest at which
#: dense hanzi such as 能 and 智 stay readable in a bold face. Images too small for it get less, but
#: never under the 5 % rule.
MIN_INK_PX = 12
#: Default margin between the label plate and the image edge, as a fraction of the shorter side.
DEFAULT_MARGIN_RATIO = 0.02
#: Where a label may go; "center" may also be spelt "centre".
POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "bottom-center", "top-center")
FONT_FILE = "NotoSansCJKsc-Subset.otf"
# Coverage (0..255) from which a mask pixel counts as ink when measuring the ink height.
_INK_LEVEL = 128
# Largest ink height rendered (pixels): an 8K image's 5 % is 216 px; beyond this is a mistake.
_MAX_INK_PX = 2048


@dataclass(frozen=True)
class LabelStyle:
    """How the label looks (hashable: it is part of the render cache key).

    Attributes
    ----------
    scheme : str
        ``"auto"`` (default): light text on a dark plate when the background under the label is
        darker than mid-grey, else dark text on a light plate. ``"light"`` or ``"dark"`` force one.
    outline_ratio : float
        Outline width as a fraction of the ink height (0..0.3); at least 1 px when > 0.
    plate_opacity : float
        Opacity of the plate behind the text, 0 (no plate) .. 1 (solid).
    padding_ratio : float
        Plate padding around the ink, as a fraction of the ink height (0..2).
    corner_ratio : float
        Plate corner radius as a fraction of the plate height (0..0.5).
    """

    scheme: str = "auto"
    outline_ratio: float = 0.08
    plate_opacity: float = 0.45
    padding_ratio: float = 0.3
    corner_ratio: float = 0.25

    def __post_init__(self) -> None:
        if self.scheme not in ("auto", "light", "dark"):
            raise InvalidArgument(f"scheme must be 'auto', 'light' or 'dark', got {self.scheme!r}")
        for name, low, high in (("outline_ratio", 0, 0.3), ("plate_opacity", 0, 1),
                                ("padding_ratio", 0, 2), ("corner_ratio", 0, 0.5)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise InvalidArgument(f"{name} must be in [{low}, {high}], got {value!r}")


DEFAULT_STYLE = LabelStyle()


@dataclass(frozen=True)
class RenderedLabel:
    """A rendered label, independent of the image it goes on (cached; arrays are read-only).

    Attributes
    ----------
    text_alpha : numpy.ndarray
        ``(h, w)`` float32 in [0, 1]: coverage of the text colour.
    back_alpha : numpy.ndarray
        ``(h, w)`` float32 in [0, 1]: coverage of the contrasting colour (plate and outline), after
        the text has been put on top (``text_alpha + back_alpha <= 1``).
    ink_box : tuple of int
        ``(x, y, w, h)`` of the ink (rows/columns with >= 50 % text coverage) inside the label.
    font_size : int
        Font size in pixels (em size) that gave this ink height.
    """

    text_alpha: np.ndarray
    back_alpha: np.ndarray
    ink_box: tuple[int, int, int, int]
    font_size: int

    @property
    def height(self) -> int:
        """Label (plate) height in pixels."""
        return int(self.text_alpha.shape[0])

    @property
    def width(self) -> int:
        """Label (plate) width in pixels."""
        return int(self.text_alpha.shape[1])

    @property
    def ink_height(self) -> int:
        """Height of the ink in pixels."""
        return self.ink_box[3]


@dataclass(frozen=True)
class Placement:
    """Where :func:`add_image_label` puts a label on an image.

    Attributes
    ----------
    box : tuple of int
        ``(x, y, w, h)`` of the whole label (plate) in image pixels; inside the image.
    ink_box : tuple of int
        ``(x, y, w, h)`` of the text ink in image pixels.
    position : str
        Canonical position name (one of :data:`POSITIONS`).
    height_ratio : float
        Ink height divided by the image's shorter side.
    rendered : RenderedLabel
        The mask drawn there.
    """

    box: tuple[int, int, int, int]
    ink_box: tuple[int, int, int, int]
    position: str
    height_ratio: float
    rendered: RenderedLabel


# --------------------------------------------------------------------------- wording and font

_AI_RE = re.compile(r"AI|人工智能")
_MADE_RE = re.compile(r"生成|合成|generated|synthesi[sz]ed|synthetic", re.IGNORECASE)


def check_wording(text: str) -> None:
    """Raise :class:`LabelerError` unless ``text`` is a wording GB 45438 section 5 accepts.

    It must contain "AI" (upper case) or "人工智能", and "生成" or "合成" (or, for English wordings,
    "generated", "synthesized"/"synthesised" or "synthetic").
    """
    if not text or not text.strip():
        raise LabelerError("label text is empty")
    if not _AI_RE.search(text) or not _MADE_RE.search(text):
        raise LabelerError(
            f"label text {text!r} must contain 'AI' or '人工智能' and '生成' or '合成' (GB 45438 section 5)"
        )


# add_image_label's flag of the same name hides the function inside it.
_check_wording = check_wording


def font_path() -> str:
    """File system path of the shipped font subset."""
    return str(resources.files("labeler.visible").joinpath("fonts", FONT_FILE))


@functools.lru_cache(maxsize=1)
def _charset() -> frozenset[int]:
    # Pillow exposes no cmap (a missing glyph silently renders as .notdef), so read the font's own.
    return frozenset(_read_cmap(font_path()))


def _read_cmap(path: str) -> set[int]:
    """Code points of the font's Unicode cmap (format 4 or 12 subtable), read without fontTools."""
    import struct

    with open(path, "rb") as handle:
        data = handle.read()
    num_tables = struct.unpack_from(">H", data, 4)[0]
    cmap_offset = None
    for i in range(num_tables):
        tag, _, offset, _ = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if tag == b"cmap":
            cmap_offset = offset
    if cmap_offset is None:
        raise LabelerError(f"font {path} has no cmap table")
    count = struct.unpack_from(">H", data, cmap_offset + 2)[0]
    subtables = [struct.unpack_from(">HHI", data, cmap_offset + 4 + 8 * i) for i in range(count)]
    points: set[int] = set()
    for platform, encoding, offset in subtables:
        if (platform, encoding) not in ((3, 1), (3, 10), (0, 3), (0, 4)):
            continue
        at = cmap_offset + offset
        fmt = struct.unpack_from(">H", data, at)[0]
        if fmt == 4:
            segs = struct.unpack_from(">H", data, at + 6)[0] // 2
            ends = struct.unpack_from(f">{segs}H", data, at + 14)
            starts = struct.unpack_from(f">{segs}H", data, at + 16 + 2 * segs)
            for start, end in zip(starts, ends, strict=True):
                if start != 0xFFFF:
                    points.update(range(start, end + 1))
        elif fmt == 12:
            groups = struct.unpack_from(">I", data, at + 12)[0]
            for g in range(groups):
                start, end, _ = struct.unpack_from(">III", data, at + 16 + 12 * g)
                points.update(range(start, end + 1))
    return points


def check_glyphs(text: str) -> None:
    """Raise :class:`LabelerError` when the shipped font has no glyph for a character of ``text``."""
    missing = sorted({c for c in text if ord(c) not in _charset()})
    if missing:
        # said to whoever chose the wording (a CLI user, an API client): what the font holds, not how
        # the package's font file is built (labeler/visible/fonts/make_subset.py, for maintainers)
        raise LabelerError(
            f"the label font has no glyph for {''.join(missing)!r}: it holds the characters of the GB "
            "45438 wordings (AI生成, 人工智能生成, AI合成, 人工智能合成...) and printable ASCII"
        )


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: no raqm dependency, identical output wherever Pillow runs (CJK needs no shaping).
    return ImageFont.truetype(font_path(), size, layout_engine=ImageFont.Layout.BASIC)


# --------------------------------------------------------------------------- rendering


def _text_mask(text: str, size: int, stroke: int) -> np.ndarray:
    """``(h, w)`` uint8 coverage of ``text`` at em ``size`` px, grown by a ``stroke`` px outline."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    canvas = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(canvas).text((1 - left, 1 - top), text, font=font, fill=255, stroke_width=stroke,
                                stroke_fill=255)
    return np.asarray(canvas)


def _ink_rows(mask: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero((mask >= _INK_LEVEL).any(axis=1))
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)


def _font_size_for(text: str, ink_px: int) -> int:
    """Smallest em size whose rendered ink of ``text`` is at least ``ink_px`` rows tall."""
    ref = 200
    top, bottom = _ink_rows(_text_mask(text, ref, 0))
    if bottom <= top:
        raise LabelerError(f"label text {text!r} renders no visible ink")
    size = max(1, math.floor(ink_px * ref / (bottom - top)) - 1)
    for _ in range(64):  # hinting makes ink height a staircase in the size: step up until it is enough
        top, bottom = _ink_rows(_text_mask(text, size, 0))
        if bottom - top >= ink_px:
            return size
        size += 1
    raise LabelerError(f"cannot render {text!r} with {ink_px} px of ink")  # pragma: no cover


def render_label(text: str, ink_px: int, style: LabelStyle = DEFAULT_STYLE) -> RenderedLabel:
    """Render ``text`` so its ink is at least ``ink_px`` pixels tall (cached; do not modify the arrays).

    Parameters
    ----------
    text : str
        The wording; every character must be in the shipped font.
    ink_px : int
        Ink height in pixels, 1..2048.
    style : LabelStyle
        Outline, plate and padding.

    Returns
    -------
    RenderedLabel
    """
    check_glyphs(text)
    if not 1 <= int(ink_px) <= _MAX_INK_PX:
        raise InvalidArgument(f"ink height must be 1..{_MAX_INK_PX} px, got {ink_px}")
    return _render(text, int(ink_px), style)


@functools.lru_cache(maxsize=128)
def _render(text: str, ink_px: int, style: LabelStyle) -> RenderedLabel:
    size = _font_size_for(text, ink_px)
    stroke = max(1, round(style.outline_ratio * ink_px)) if style.outline_ratio > 0 else 0
    fill = _text_mask(text, size, 0)
    outer = _text_mask(text, size, stroke) if stroke else fill
    # The stroked mask is `stroke` px larger on each side; centre the fill mask in it.
    fill_full = np.zeros_like(outer)
    dy, dx = (outer.shape[0] - fill.shape[0]) // 2, (outer.shape[1] - fill.shape[1]) // 2
    fill_full[dy:dy + fill.shape[0], dx:dx + fill.shape[1]] = fill
    top, bottom = _ink_rows(fill_full)
    cols = np.flatnonzero((fill_full >= _INK_LEVEL).any(axis=0))
    left, right = int(cols[0]), int(cols[-1]) + 1
    # Crop to the stroked ink, then pad: the plate's size follows the ink, not the font's line box.
    o_rows = np.flatnonzero(outer.any(axis=1))
    o_cols = np.flatnonzero(outer.any(axis=0))
    oy0, oy1, ox0, ox1 = int(o_rows[0]), int(o_rows[-1]) + 1, int(o_cols[0]), int(o_cols[-1]) + 1
    pad = max(1, round(style.padding_ratio * ink_px)) if style.padding_ratio > 0 else 0
    h, w = oy1 - oy0 + 2 * pad, ox1 - ox0 + 2 * pad
    text_a = np.zeros((h, w), np.float32)
    outline_a = np.zeros((h, w), np.float32)
    text_a[pad:pad + oy1 - oy0, pad:pad + ox1 - ox0] = fill_full[oy0:oy1, ox0:ox1] / np.float32(255)
    outline_a[pad:pad + oy1 - oy0, pad:pad + ox1 - ox0] = outer[oy0:oy1, ox0:ox1] / np.float32(255)
    if style.plate_opacity > 0:
        plate_img = Image.new("L", (w, h), 0)
        radius = round(style.corner_ratio * h)
        ImageDraw.Draw(plate_img).rounded_rectangle((0, 0, w - 1, h - 1), radius=radius, fill=255)
        plate_a = np.asarray(plate_img, dtype=np.float32) * np.float32(style.plate_opacity / 255)
    else:
        plate_a = np.zeros((h, w), np.float32)
    # Plate then outline (same contrasting colour), then text on top: see RenderedLabel.
    back_total = 1 - (1 - plate_a) * (1 - outline_a)
    back_a = back_total * (1 - text_a)
    text_a.setflags(write=False)
    back_a.setflags(write=False)
    ink_box = (left - ox0 + pad, top - oy0 + pad, right - left, bottom - top)
    return RenderedLabel(text_a, back_a, ink_box, size)


# --------------------------------------------------------------------------- placement


def _canonical_position(position: str) -> str:
    name = position.strip().lower().replace("_", "-").replace(" ", "-").replace("centre", "center")
    name = {"center-bottom": "bottom-center", "center-top": "top-center", "bottom": "bottom-center",
            "top": "top-center"}.get(name, name)
    if name not in POSITIONS:
        raise InvalidArgument(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
    return name


def place_label(
    height: int,
    width: int,
    text: str = DEFAULT_TEXT,
    *,
    position: str = "bottom-right",
    height_ratio: float = MIN_HEIGHT_RATIO,
    margin_ratio: float = DEFAULT_MARGIN_RATIO,
    style: LabelStyle = DEFAULT_STYLE,
) -> Placement:
    """Decide the label's size and box on a ``height`` x ``width`` image (see the module notes).

    Parameters
    ----------
    height, width : int
        Image size in pixels.
    text : str
        The wording (glyphs checked, wording not: see :func:`add_image_label`).
    position : str
        One of :data:`POSITIONS`.
    height_ratio : float
        Ink height as a fraction of the shorter side, 0.05..0.5.
    margin_ratio : float
        Gap between label and image edge, as a fraction of the shorter side, 0..0.25 (at least 1 px
        when > 0); reduced when the label would not fit otherwise.
    style : LabelStyle

    Returns
    -------
    Placement

    Raises
    ------
    LabelerError
        The image is too small for ``text`` at ``height_ratio``.
    ValueError
        A parameter out of range.
    """
    pos = _canonical_position(position)
    if not MIN_HEIGHT_RATIO <= height_ratio <= 0.5:
        raise InvalidArgument(f"height_ratio must be in [{MIN_HEIGHT_RATIO}, 0.5] (GB 45438: >= 5 %), "
                         f"got {height_ratio!r}")
    if not 0 <= margin_ratio <= 0.25:
        raise InvalidArgument(f"margin_ratio must be in [0, 0.25], got {margin_ratio!r}")
    if height < 1 or width < 1:
        raise InvalidArgument(f"image size must be positive, got {width}x{height}")
    short = min(height, width)
    floor_px = max(1, math.ceil(height_ratio * short - 1e-9))
    ink = min(max(floor_px, MIN_INK_PX), _MAX_INK_PX)
    margin = max(1, round(margin_ratio * short)) if margin_ratio > 0 else 0
    rendered = render_label(text, ink, style)
    for _ in range(32):
        fits_w, fits_h = rendered.width + 2 * margin <= width, rendered.height + 2 * margin <= height
        if fits_w and fits_h:
            break
        if ink > floor_px:
            # The box grows about linearly with the ink height: scale down, then re-check.
            shrink = min((width - 2 * margin) / rendered.width, (height - 2 * margin) / rendered.height)
            ink = max(floor_px, min(ink - 1, math.floor(ink * shrink)))
            rendered = render_label(text, ink, style)
        elif margin > 0:
            margin = 0
        else:
            raise LabelerError(
                f"a {width}x{height} image is too small for the label {text!r} at {height_ratio:.0%} "
                f"of its shorter side ({rendered.width}x{rendered.height} px needed)"
            )
    h, w = rendered.height, rendered.width
    if pos.endswith("left"):
        x = margin
    elif pos.endswith("right"):
        x = width - margin - w
    else:
        x = (width - w) // 2
    y = margin if pos.startswith("top") else height - margin - h
    ix, iy, iw, ih = rendered.ink_box
    return Placement((x, y, w, h), (x + ix, y + iy, iw, ih), pos, ih / short, rendered)


# --------------------------------------------------------------------------- compositing

# Rec. 709 luma weights, for choosing the colour scheme.
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _luminance(region: np.ndarray, channels: int, maxval: float) -> float:
    """Mean luminance (0..1) of an image region, weighted by its alpha when it has one."""
    colour = region if channels == 1 else region[..., : 1 if channels == 2 else 3]
    lum = colour.astype(np.float32) @ _LUMA if channels >= 3 else colour.reshape(region.shape[:2])
    lum = np.asarray(lum, np.float32) / maxval
    if channels in (2, 4):
        alpha = region[..., -1].astype(np.float32) / maxval
        total = float(alpha.sum())
        # A (nearly) transparent area shows whatever is behind it: assume a light page.
        return float((lum * alpha).sum() / total) if total > 0.05 * alpha.size else 1.0
    return float(lum.mean())


def add_image_label(
    image: np.ndarray,
    text: str = DEFAULT_TEXT,
    *,
    position: str = "bottom-right",
    height_ratio: float = MIN_HEIGHT_RATIO,
    margin_ratio: float = DEFAULT_MARGIN_RATIO,
    style: LabelStyle = DEFAULT_STYLE,
    check_wording: bool = True,
) -> np.ndarray:
    """Return a copy of ``image`` with a visible AI-content label drawn on it.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` grey, ``(H, W, 2)`` grey+alpha, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA; uint8
        (0..255) or uint16 (0..65535), as :func:`labeler.media.read_image` returns.
    text : str
        The wording (default "AI生成").
    position : str
        ``"bottom-right"`` (default), ``"bottom-left"``, ``"top-right"``, ``"top-left"``,
        ``"bottom-center"`` or ``"top-center"``.
    height_ratio : float
        Ink height as a fraction of the shorter side, 0.05 (the standard's minimum, default) .. 0.5.
    margin_ratio : float
        Gap to the image edge as a fraction of the shorter side (default 0.02).
    style : LabelStyle
        Colour scheme, outline, plate.
    check_wording : bool
        Check ``text`` with :func:`check_wording` (default). Off only for wording cleared otherwise.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; alpha, where present, is raised under the label so it shows.

    Raises
    ------
    LabelerError
        Wording not acceptable, a character missing from the font, or an image too small.
    ValueError
        Unsupported array layout or a parameter out of range.
    """
    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16):
        raise InvalidArgument(f"image must be uint8 or uint16, got {arr.dtype}")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise InvalidArgument(f"image must be (H, W) or (H, W, 1|2|3|4), got {arr.shape}")
    if check_wording:
        _check_wording(text)
    placement = place_label(arr.shape[0], arr.shape[1], text, position=position, height_ratio=height_ratio,
                            margin_ratio=margin_ratio, style=style)
    out = arr.copy()
    x, y, w, h = placement.box
    region = out[y:y + h, x:x + w]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    maxval = float(np.iinfo(arr.dtype).max)
    scheme = style.scheme
    if scheme == "auto":
        scheme = "dark" if _luminance(region, channels, maxval) > 0.5 else "light"
    text_level, back_level = (maxval, 0.0) if scheme == "light" else (0.0, maxval)
    _blend(region, placement.rendered, channels, maxval, text_level, back_level)
    return out



def _blend(region: np.ndarray, label: RenderedLabel, channels: int, maxval: float, text_level: float,
           back_level: float) -> None:
    """Composite the label over ``region`` in place ("over" operator, straight alpha)."""
    t, b = label.text_alpha, label.back_alpha
    label_colour = t * np.float32(text_level) + b * np.float32(back_level)   # premultiplied by label alpha
    label_alpha = t + b
    shaped = region if region.ndim == 3 else region[..., None]
    has_alpha = channels in (2, 4)
    colour = shaped[..., :-1] if has_alpha else shaped
    if has_alpha:
        under_a = shaped[..., -1].astype(np.float32) / np.float32(maxval)
        keep = (1 - label_alpha) * under_a
        out_a = label_alpha + keep
        safe = np.where(out_a > 0, out_a, 1)
        mixed = (label_colour[..., None] + colour.astype(np.float32) * keep[..., None]) / safe[..., None]
        shaped[..., -1] = np.rint(out_a * maxval).astype(region.dtype)
    else:
        mixed = label_colour[..., None] + colour.astype(np.float32) * (1 - label_alpha)[..., None]
    colour[...] = np.rint(np.clip(mixed, 0, maxval)).astype(region.dtype)
