"""QA (false positives): the watermark detectors find nothing on clean content built to look like a mark.

The p-value's null law comes from the key's random signs, not from the content (docs/watermark.md,
"The p-value and why its null distribution is known"; docs/watermark-audio.md), so content that shares
the mark's structure must not fool it: a wallpaper whose tile is the mark's 128 px tile, JPEG q5 8 x 8
blocks (the `dct` mark's block grid), a picture carrying another key's mark, and a click train at the
audio mark's 3.072 s period. Each is read with a set of fixed keys (conftest.seeded_key) that marked
nothing; none may be found and no p-value may be absurdly small. A QA run of random keys on these and
~40 other contents (2026-12-07: ~22,000 image, ~3,600 audio and 180 video reads) found nothing; the
smallest p-values were 1.1e-4 (image), 2.4e-3 (audio), 0.2 (video); these 16 keys give 0.028 at least.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import SAMPLES, seeded_key
from PIL import Image

from detectors.watermark import detect, detect_audio
from labeler.watermark import embed, embed_audio

KEYS = [seeded_key(f"qa-fp-s36-{i}") for i in range(16)]
# Far below anything 16 reads of clean content give (their p-values are mostly 1), far above 1e-6.
P_FLOOR = 1e-4


def _photo(side: int = 512) -> np.ndarray:
    img = Image.open(SAMPLES / "photo.jpg").convert("RGB")
    return np.asarray(img.resize((side, side), Image.Resampling.BICUBIC))


def _wallpaper(tile: int = 128, side: int = 512) -> np.ndarray:
    """Sharp random texture repeated every ``tile`` px: the fold adds it coherently, like a mark."""
    t = np.random.default_rng(128).integers(0, 256, (tile, tile, 3), dtype=np.uint8)
    return np.tile(t, (side // tile, side // tile, 1))


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _assert_clean(results: list) -> None:
    assert not any(r.found for r in results), [r.to_dict() for r in results if r.found]
    assert all(r.payload is None for r in results)
    smallest = min(r.p_value for r in results)
    assert smallest > P_FLOOR, f"p-value {smallest:.2e} on clean content"


@pytest.mark.parametrize("content", ["wallpaper128", "jpeg_q5"])
def test_structured_images_are_not_marks(content: str) -> None:
    img = _wallpaper() if content == "wallpaper128" else _jpeg(_photo(), 5)
    _assert_clean([detect(img, key=k) for k in KEYS])


def test_another_keys_mark_is_not_this_keys() -> None:
    owner = seeded_key("qa-fp-s36-owner")
    marked = embed(_photo(), bytes(range(8)), key=owner)
    assert detect(marked, key=owner).found  # the picture does carry a mark: the owner's
    _assert_clean([detect(marked, key=k) for k in KEYS])


def test_click_train_at_the_audio_period_is_not_a_mark() -> None:
    rate, period = 44100, 3.072  # 96 cells of 32 ms: the audio mark's period
    x = np.zeros(16 * rate, np.float32)
    x[(np.arange(0.0, 16.0, period) * rate).astype(int)] = 0.9
    _assert_clean([detect_audio(x, rate, key=k) for k in KEYS[:12]])


def test_another_keys_audio_mark_is_not_this_keys() -> None:
    import soundfile as sf

    speech, rate = sf.read(SAMPLES / "speech.wav", dtype="float32")
    owner = seeded_key("qa-fp-s36-audio-owner")
    marked = embed_audio(speech, rate, bytes(range(8)), key=owner)
    assert detect_audio(marked, rate, key=owner).found
    _assert_clean([detect_audio(marked, rate, key=k) for k in KEYS[:12]])
