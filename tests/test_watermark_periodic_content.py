"""Pictures that repeat with the watermark tile's period (docs/watermark.md, "Content that repeats with
the tile's period"): the fold cannot average such a host away, the mark is not read back, and `label`
says so instead of reporting a mark nobody can find. A grid whose period is not commensurate with the
128 px tile is the control: same drawing, read back. A format that cancels a repeated host (docs) would
turn the first test around: it pins today's limit and the warning that covers it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import PRODUCER, seeded_key
from PIL import Image, ImageDraw

from detectors.read_back import UNREAD_WATERMARK_NOTE, unread_watermark
from detectors.watermark import detect
from labeler import AIGCLabel, label
from labeler.watermark import embed


@pytest.fixture(scope="module")
def key() -> bytes:
    return seeded_key("test_watermark_periodic_content")


def icon_grid(tile: int, w: int = 1280, h: int = 768) -> np.ndarray:
    """One flat rounded icon with a hole, repeated every ``tile`` px on a light page."""
    im = Image.new("RGB", (tile, tile), (245, 245, 248))
    d = ImageDraw.Draw(im)
    box = [tile * 0.2, tile * 0.2, tile * 0.8, tile * 0.8]
    d.rounded_rectangle(box, radius=tile // 8, fill=(40, 110, 190))
    d.ellipse([tile * 0.35, tile * 0.35, tile * 0.65, tile * 0.65], fill=(255, 255, 255))
    return np.tile(np.asarray(im), (h // tile + 1, w // tile + 1, 1))[:h, :w].copy()


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("tile", [64, 128])
def test_a_grid_with_the_tiles_period_hides_the_mark_and_label_warns(key, tile):
    pixels = icon_grid(tile)
    payload = bytes(range(8))
    assert not detect(embed(pixels, payload, key=key), key=key).found
    rec = AIGCLabel(PRODUCER, f"grid-{tile}")
    out = label(png(pixels), rec, layers="watermark", key=key)
    assert unread_watermark(out, rec, key) == UNREAD_WATERMARK_NOTE
    assert "repeats every 64 or 128 px" in UNREAD_WATERMARK_NOTE


def test_a_grid_of_another_period_carries_the_mark(key):
    pixels = icon_grid(200)
    payload = bytes(range(8))
    r = detect(embed(pixels, payload, key=key), key=key)
    assert r.found and r.payload == payload
    rec = AIGCLabel(PRODUCER, "grid-200")
    assert unread_watermark(label(png(pixels), rec, layers="watermark", key=key), rec, key) is None
