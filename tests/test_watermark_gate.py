"""The image detector's lattice gate: the rescale / rotation search runs where a lattice shows (issue #17)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_watermark import KEY, PAYLOAD, photo_like

import detectors.watermark as wm
from labeler.watermark import embed
from labeler.watermark.lattice import lattice_evidence
from labeler.watermark.transforms import luma_fast, prefilter_parts


def _evidence(img: np.ndarray) -> tuple[float, float]:
    z = prefilter_parts(luma_fast(img))
    return (lattice_evidence(z.half, 0.38 * 64, 2.2 * 64),
            lattice_evidence(wm._full_window(z, 512), 0.38 * 128, 2.2 * 128))


def _rotated(img: np.ndarray, deg: float) -> np.ndarray:
    r = np.asarray(Image.fromarray(img).rotate(deg, Image.BICUBIC))
    m = int(np.ceil(np.sin(np.radians(abs(deg))) * max(img.shape[:2]))) + 2
    return r[m:-m, m:-m]


def _resized(img: np.ndarray, f: float) -> np.ndarray:
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((round(w * f), round(h * f)), Image.BICUBIC))


@pytest.mark.parametrize(("method", "attack"), [("dct", "rot2"), ("dwt", "x1.4"), ("dct", "x0.85")])
def test_marked_and_resampled_image_passes_the_gate_and_is_read(method: str, attack: str) -> None:
    """A mark rescaled or rotated on a >= 1024 px image scores far above LATTICE_MIN and is decoded."""
    img = photo_like(1300, 1500, seed=5)
    marked = embed(img, PAYLOAD, key=KEY, method=method)
    out = _rotated(marked, 2.0) if attack == "rot2" else _resized(marked, float(attack[1:]))
    assert min(out.shape[:2]) >= 1024
    assert max(_evidence(out)) >= 2 * wm.LATTICE_MIN
    r = wm.detect(out, key=KEY)
    assert r.found and r.payload == PAYLOAD


def test_unmarked_large_image_skips_the_search_with_the_same_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unmarked 1080p photo-like image shows no lattice: no geometry search, and the p-value still
    counts every read the search could have made."""
    img = photo_like(1080, 1920, seed=3)
    assert max(_evidence(img)) < wm.LATTICE_MIN

    def no_search(*args: object, **kw: object) -> None:
        raise AssertionError("the geometry search ran")

    monkeypatch.setattr(wm._Search, "geometry", no_search)
    r = wm.detect(img, key=KEY)
    assert not r.found and r.trials == 2 * 128 * 128 * (2 + wm.scale_tries(1080, 1920))


def test_small_images_are_always_searched() -> None:
    """Below 1024 px a side the evidence cannot tell: the gate lets the search run."""
    z = prefilter_parts(luma_fast(photo_like(700, 1500, seed=4)))
    assert wm._lattice_shows(z, 128)


def test_degenerate_lattice_is_not_resampled() -> None:
    """A singular lattice fit (collinear peaks) is skipped, not divided by (it raised ZeroDivisionError on
    a 306 x 128 crop of the false-positive benchmark)."""
    y = np.full((200, 300), 100, np.float32)
    assert wm._resample(y, np.array([[0.5, 0.5], [0.5, 0.5]])) is None
    assert wm._resample(y, np.zeros((2, 2))) is None
