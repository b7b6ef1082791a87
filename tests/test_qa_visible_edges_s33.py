"""QA of the explicit labels at the edges of what users send (session 33): tiny and narrow pictures."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.visible import detect_image_label
from labeler.visible import POSITIONS, add_image_label, place_label


def _background(height: int, width: int) -> np.ndarray:
    # mild texture, so no window is flat; mid-grey so either colour scheme could be picked
    rng = np.random.default_rng(7)
    return (rng.random((height, width, 3)) * 60 + 100).astype(np.uint8)


@pytest.mark.parametrize("size", [(30, 100), (20, 200), (40, 300)])
@pytest.mark.parametrize("text", ["AI生成", "人工智能生成"])
def test_label_on_a_short_banner_is_found(size: tuple[int, int], text: str) -> None:
    # A 100x30 button or a 200x20 strip gets the 12 px floor (or what fits), 30-40 % of its height:
    # verify used to search at most 30 % of the shorter side and reported no label.
    height, width = size
    placement = place_label(height, width, text)
    assert placement.height_ratio >= 0.3  # the case this test is about
    found = detect_image_label(add_image_label(_background(height, width), text))
    assert found.present, found
    assert found.position == "bottom-right"


@pytest.mark.parametrize(("size", "text"), [((64, 64), "AI生成"), ((48, 48), "人工智能生成"),
                                           ((4000, 200), "本图片由人工智能生成"), ((30, 100), "AI生成")])
@pytest.mark.parametrize("position", POSITIONS)
def test_position_reported_is_the_one_drawn_on_small_pictures(size: tuple[int, int], text: str,
                                                                position: str) -> None:
    # On a 64x64 picture "AI生成" is 46 px wide: drawn bottom-right, its centre is at 63 % of the width,
    # which verify read as bottom-center (thirds of the width); a long wording drawn at the left of a
    # 200 px wide strip read as bottom-center too; on a 100x30 button both bands hold the label.
    height, width = size
    assert width - place_label(height, width, text, position=position).box[2] > 4  # room to tell
    labeled = add_image_label(_background(height, width), text, position=position)
    found = detect_image_label(labeled, texts=(text, "AI生成", "人工智能生成"))
    assert found.present, found
    assert found.position == position


def test_loudness_memory_does_not_grow_with_the_programme() -> None:
    # The rhythm cue and the voice prompt match the programme's loudness; its 400 ms blocks overlap by
    # 75 %, and their spectra were all computed at once: 4x the programme in complex numbers, 12 GB of
    # memory to label an hour of 44.1 kHz stereo. A minute here: the peak must stay a fixed size.
    import tracemalloc

    from labeler.visible import loudness

    rate = 48000
    rng = np.random.default_rng(3)
    programme = (rng.standard_normal((60 * rate, 2)) * 0.1).astype(np.float32)  # 23 MB
    tracemalloc.start()
    try:
        level = loudness(programme, rate)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert -14.5 < level < -13.0  # white noise at RMS 0.1 (-20 dBFS) on two channels, K-weighted
    assert peak < 48 * 2**20, f"{peak / 2**20:.0f} MB"


@pytest.mark.parametrize("kind", ["rhythm", "voice"])
def test_label_mixed_over_a_full_scale_programme_does_not_clip(kind: str) -> None:
    # A master at 0 dBFS (here a full-scale square wave, as loud as it gets): the cue mixed over its middle
    # was hard-clipped, the sum flattened at +-1 in thousands of samples, and the voice prompt over it
    # (the programme ducked 10 dB) in a few hundred.
    from detectors.visible import detect_audio_cue, detect_voice_prompt
    from labeler.visible import add_audio_cue, add_voice_prompt

    rate = 16000
    t = np.arange(8 * rate) / rate
    programme = np.stack([np.sign(np.sin(2 * np.pi * 220 * t))] * 2, axis=1).astype(np.float32)
    if kind == "rhythm":
        out, found = add_audio_cue(programme, rate, where=("middle",)), detect_audio_cue
    else:
        out, found = add_voice_prompt(programme, rate, where=("middle",)), detect_voice_prompt
    assert out.shape == programme.shape
    changed = np.flatnonzero(np.abs(out - programme).max(axis=1) > 1e-6)
    assert changed[0] > 0.5 * rate and changed[-1] < len(out) - 0.5 * rate  # only around the middle
    ramp = round(0.06 * rate)  # the programme's gain ramps down over 50 ms on either side
    under = np.abs(out[changed[0] + ramp:changed[-1] - ramp])
    assert int((under >= 0.9999).sum()) == 0, f"{int((under >= 0.9999).sum())} samples clipped"
    assert found(out, rate).present
