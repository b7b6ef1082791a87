"""The faster visible-label searches (issue #17) find what the reference searches find.

Speed itself is measured by ``benchmarks/verify_throughput.py``, never here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SAMPLES, ffmpeg_exe

from detectors.visible import audio_cue, detect_audio_cue, detect_image_label, detect_video_label, image
from detectors.visible.common import _mono_samples
from labeler.media import read_image
from labeler.visible import POSITIONS, add_image_label, add_video_label, place_label
from labeler.visible.audio import add_audio_cue


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return read_image(SAMPLES / "photo.jpg").pixels


def _reference(pixels: np.ndarray) -> float:
    grey, factor = image._work_luma(pixels)
    return image._exhaustive(grey, image.DEFAULT_TEXTS, image._ladder(min(grey.shape), factor),
                             image.DEFAULT_STYLE)[0]


@pytest.mark.parametrize("position", POSITIONS)
def test_coarse_search_scores_what_the_exhaustive_search_scores(photo: np.ndarray, position: str) -> None:
    labeled = add_image_label(photo, "人工智能生成", position=position)
    found = detect_image_label(labeled)
    assert found.present and found.position == position and found.text == "人工智能生成"
    # The confirmation is the reference search restricted to the coarse pass's places: same score.
    assert found.score == pytest.approx(_reference(labeled), abs=1e-6)


def test_coarse_search_never_scores_higher_on_unlabeled(photo: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    for _ in range(4):
        h, w = photo.shape[:2]
        ch, cw = int(rng.integers(h // 2, h)), int(rng.integers(w // 2, w))
        crop = np.ascontiguousarray(photo[:ch, :cw])
        result = detect_image_label(crop)
        assert not result.present and result.score <= _reference(crop) + 1e-6


def test_small_images_use_the_exhaustive_search(photo: np.ndarray) -> None:
    small = np.ascontiguousarray(photo[:200, :300])
    labeled = add_image_label(small, "AI生成", position="top-left")
    assert detect_image_label(labeled).score == pytest.approx(_reference(labeled), abs=1e-6)


def test_work_luma_layouts_agree(photo: np.ndarray) -> None:
    grey, factor = image._work_luma(photo)
    assert grey.dtype == np.float32 and min(grey.shape) == image.WORK_SIDE and factor < 1
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    assert np.abs(image._work_luma(rgba)[0] - grey).max() <= 1.0
    deep = photo.astype(np.uint16) * 257
    assert np.abs(image._work_luma(deep)[0] - grey).max() <= 1.0


def test_video_found_on_reduced_frames_box_in_video_pixels(tmp_path: Path) -> None:
    # 960x720 so the frames are decoded at 640x480, not at the video's size.
    src = tmp_path / "src.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=960x720:rate=25:duration=10", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(src)], check=True)
    out = tmp_path / "out.mp4"
    add_video_label(src, out, seconds=2.0, at=("start", "middle", "end"))
    result = detect_video_label(out)
    assert result.intervals == ("start", "middle", "end") and result.seconds == 2.0
    x, y, w, h = place_label(720, 960, "AI生成").box
    fx, fy, fw, fh = result.box
    assert abs(fx - x) <= 0.1 * w and abs(fy - y) <= 0.3 * h and abs(fw - w) <= 0.1 * w
    assert not detect_video_label(src).present


def test_mono_mix_is_the_channel_mean() -> None:
    rng = np.random.default_rng(0)
    stereo = rng.standard_normal((1000, 3)).astype(np.float64)
    assert np.allclose(_mono_samples(stereo, 8000), stereo.mean(axis=1), atol=1e-6)
    with pytest.raises(Exception, match="NaN or infinity"):
        _mono_samples(np.array([[0.0, np.inf], [0.0, 0.0]]), 8000)


@pytest.mark.parametrize(("rate", "expected"),
                         [(44100, 5512.5), (48000, 6000.0), (16000, 8000.0), (8000, 8000.0)])
def test_cue_analysis_rate_keeps_the_tone(rate: int, expected: float) -> None:
    t = np.arange(rate) / rate
    tone = (0.1 * np.sin(2 * np.pi * 880 * t)).astype(np.float32)
    out, new_rate = audio_cue._decimated(tone, float(rate))
    assert new_rate == expected and len(out) == -(-rate // round(rate / new_rate))
    middle = out[len(out) // 4: 3 * len(out) // 4]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.1 / np.sqrt(2), rel=0.01)


def test_cue_found_at_44k_and_48k() -> None:
    for rate in (44100, 48000):
        rng = np.random.default_rng(rate)
        programme = (0.05 * rng.standard_normal((rate * 6, 2))).astype(np.float32)
        labeled = add_audio_cue(programme, rate, where=("start", "end"))
        result = detect_audio_cue(labeled, rate)
        assert [c[1] for c in result.cues] == ["start", "end"]
        assert abs(result.freq_hz - 880) < 5 and result.seconds < 0.01


def test_coarse_ncc_matches_match_template_in_both_bands(photo: np.ndarray) -> None:
    # The coarse pass scores both bands in one FFT, the bottom one upside down with flipped templates:
    # its best windows and scores are matchTemplate's on those bands (flat windows masked).
    labeled = add_image_label(photo, "AI生成", position="bottom-left")
    grey, factor = image._work_luma(labeled)
    ladder = image._ladder(min(grey.shape), factor)
    levels = image._coarse_plan(image.DEFAULT_TEXTS, tuple(ladder), image.DEFAULT_STYLE, *grey.shape)
    scale, depth, keys, limits = levels[0]
    assert levels[1][2], "the larger heights are looked for on the halved copy"
    level0 = image._coarse_bands(grey, scale, max(depth, 2 * levels[1][1]))
    level1 = image._halved(level0, levels[1][1])
    for bands, (_, depth, keys, limits) in zip((level0, level1), levels, strict=True):
        _check_ncc(bands[:, :depth], keys, limits)


def _check_ncc(bands: np.ndarray, keys: tuple[tuple[str, int], ...], limits: tuple[int, ...]) -> None:
    best, rows, cols = image._ncc_best(bands, keys, image.DEFAULT_STYLE, limits)
    for band in range(2):
        for i, (text, ink4) in enumerate(keys):
            tpl = image._template_cached(text, ink4, image.DEFAULT_STYLE)[0]
            tpl = np.ascontiguousarray(tpl[::-1] if band else tpl)
            ref = np.abs(cv2.matchTemplate(bands[band], tpl, cv2.TM_CCOEFF_NORMED))
            ref[~np.isfinite(ref) | image._flat(bands[band], *tpl.shape)] = 0
            ref = ref[:limits[i]]
            assert best[band, i] == pytest.approx(ref.max(), abs=1e-4)
            assert ref[rows[band, i], cols[band, i]] == pytest.approx(ref.max(), abs=1e-4)
