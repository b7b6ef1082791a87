"""Visible labels (labeler.visible, detectors.visible): size and position rules, layouts, detection."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.visible import detect_image_label
from labeler.errors import LabelerError
from labeler.media import read_image
from labeler.visible import POSITIONS, LabelStyle, add_image_label, font_path, place_label
from tests.conftest import CORPUS, SAMPLES

LUMA = np.array([0.2126, 0.7152, 0.0722])


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return read_image(SAMPLES / "photo.jpg").pixels


def luminance(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    if a.ndim == 2:
        return a
    return a[..., :3] @ LUMA if a.shape[2] >= 3 else a[..., 0]


def measured_ink_rows(original: np.ndarray, labeled: np.ndarray, box: tuple[int, int, int, int]) -> int:
    """Rows of the label box holding text pixels, read from the pixels alone.

    The plate lets at most 55 % of the background through, so plate-only pixels stay below 0.55 of
    full scale (light text) or above 0.45 (dark text); pixels beyond 0.63 / under 0.37 are text of at
    least ~63 % coverage: a conservative (smaller) ink height than the 50 % the labeler aims at.
    """
    x, y, w, h = box
    full = float(np.iinfo(original.dtype).max)
    under = luminance(original[y:y + h, x:x + w]) / full
    over = luminance(labeled[y:y + h, x:x + w]) / full
    text = over >= 0.63 if under.mean() <= 0.5 else over <= 0.37
    rows = np.flatnonzero(text.any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def resized(photo: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (872, 1000), (300, 4000), (4000, 300)])
@pytest.mark.parametrize("text", ["AI生成", "人工智能生成"])
def test_ink_height_at_least_5_percent(photo: np.ndarray, height: int, width: int, text: str) -> None:
    image = resized(photo, height, width)
    labeled = add_image_label(image, text)
    placement = place_label(height, width, text)
    short = min(height, width)
    ink = measured_ink_rows(image, labeled, placement.box)
    assert ink >= math.ceil(0.05 * short)
    assert placement.ink_box[3] >= max(math.ceil(0.05 * short), 12) or placement.box[2] > 0.8 * width
    x, y, w, h = placement.box
    assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
    # Nothing outside the label box changes.
    outside = np.ones((height, width), bool)
    outside[y:y + h, x:x + w] = False
    assert np.array_equal(labeled[outside], image[outside])


def test_tiny_image_keeps_the_12px_floor(photo: np.ndarray) -> None:
    image = resized(photo, 64, 64)
    placement = place_label(64, 64)
    assert placement.ink_box[3] >= 12
    assert measured_ink_rows(image, add_image_label(image), placement.box) >= 11  # 63 % vs 50 % coverage


@pytest.mark.parametrize("position", POSITIONS)
def test_positions(photo: np.ndarray, position: str) -> None:
    height, width = photo.shape[:2]
    placement = place_label(height, width, position=position)
    x, y, w, h = placement.box
    cx, cy = x + w / 2, y + h / 2
    vertical, horizontal = position.split("-")
    assert (cy < height / 4) if vertical == "top" else (cy > 3 * height / 4)
    if horizontal == "left":
        assert cx < width / 3
    elif horizontal == "right":
        assert cx > 2 * width / 3
    else:
        assert abs(cx - width / 2) <= 1
    margin = round(0.02 * min(height, width))
    assert min(x, y, width - x - w, height - y - h) == margin
    assert placement.position == position
    assert place_label(height, width, position=position.replace("center", "centre")).box == placement.box


def test_rgba_alpha_kept_and_raised_under_label(photo: np.ndarray) -> None:
    image = resized(photo, 400, 600)
    alpha = np.zeros((400, 600), np.uint8)
    alpha[:, :300] = 255
    rgba = np.dstack([image, alpha])
    labeled = add_image_label(rgba)
    assert labeled.shape == rgba.shape and labeled.dtype == np.uint8
    x, y, w, h = place_label(400, 600).box
    assert np.array_equal(labeled[:, :x, 3], alpha[:, :x])
    assert labeled[y:y + h, x:x + w, 3].max() == 255  # the label shows on a transparent area
    assert rgba[..., 3].sum() == alpha.sum()  # input untouched


def test_uint16_and_grey(photo: np.ndarray) -> None:
    deep = resized(photo, 500, 700).astype(np.uint16) * 257
    out = add_image_label(deep, position="top-left")
    assert out.dtype == np.uint16 and out.shape == deep.shape
    placement = place_label(500, 700, position="top-left")
    assert measured_ink_rows(deep, out, placement.box) >= 25
    grey = luminance(resized(photo, 300, 300)).astype(np.uint8)
    out = add_image_label(grey)
    assert out.shape == grey.shape and not np.array_equal(out, grey)


def test_contrast_adapts_to_background() -> None:
    for level, want_text in ((20, 255), (235, 0)):
        image = np.full((400, 400, 3), level, np.uint8)
        out = add_image_label(image)
        x, y, w, h = place_label(400, 400).box
        values = luminance(out[y:y + h, x:x + w])
        # Fully covered text pixels carry the text colour exactly.
        assert np.isclose(values, want_text, atol=0.5).sum() > 20


def test_wording_and_glyph_errors(photo: np.ndarray) -> None:
    image = resized(photo, 200, 200)
    with pytest.raises(LabelerError, match="生成"):
        add_image_label(image, "Hello")
    with pytest.raises(LabelerError, match="no glyph"):
        add_image_label(image, "AI生成😀")
    with pytest.raises(LabelerError, match="no glyph"):
        add_image_label(image, "AI繪圖生成")
    assert add_image_label(image, "AI图像", check_wording=False).shape == image.shape
    assert add_image_label(image, "AI-generated").shape == image.shape
    with pytest.raises(ValueError, match="height_ratio"):
        add_image_label(image, height_ratio=0.03)
    with pytest.raises(ValueError, match="position"):
        add_image_label(image, position="middle")
    with pytest.raises(LabelerError, match="too small"):
        add_image_label(np.zeros((8, 8, 3), np.uint8), "本内容由人工智能生成")
    with pytest.raises(ValueError, match="scheme"):
        LabelStyle(scheme="red")


def test_font_is_shipped_small() -> None:
    path = Path(font_path())
    assert path.is_file() and path.stat().st_size < 100_000
    assert (path.parent / "OFL.txt").read_text(encoding="utf-8").count("SIL OPEN FONT LICENSE") == 1


def jpeg70(a: np.ndarray) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(a[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 70])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def half(a: np.ndarray) -> np.ndarray:
    return cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("position", ["bottom-right", "top-left", "bottom-center"])
def test_detected_after_jpeg_and_resize(photo: np.ndarray, position: str) -> None:
    labeled = add_image_label(photo, position=position)
    for probe in (jpeg70(labeled), half(labeled), jpeg70(half(labeled))):
        result = detect_image_label(probe)
        assert result.present and result.position == position
        assert 0.045 <= result.height_ratio <= 0.065
    assert result.to_dict()["seconds"] is None
    assert set(result.to_dict()) >= {"present", "kind", "position", "height_ratio", "seconds"}


def test_not_detected_on_unlabeled(photo: np.ndarray) -> None:
    for probe in (photo, jpeg70(photo), half(photo)):
        result = detect_image_label(probe)
        assert not result.present and result.position is None
        assert result.to_dict()["present"] is False


@pytest.mark.corpus
def test_corpus_photos() -> None:
    paths = sorted((CORPUS / "images").glob("*"))
    if not paths:
        pytest.skip("corpus images not available")
    for path in paths[::4]:  # a sample: the full sweep is benchmarks/visible_detection.py
        image = read_image(path).pixels
        rgb = image if image.ndim == 3 else np.dstack([image] * 3)
        assert not detect_image_label(rgb).present, path.name
        found = detect_image_label(jpeg70(half(add_image_label(rgb, "人工智能生成", position="top-right"))))
        assert found.present and found.position == "top-right" and found.text == "人工智能生成", path.name
