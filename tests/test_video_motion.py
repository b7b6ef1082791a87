"""The video mark moves with the picture's global motion: the tracker (labeler.watermark.motion), the
moving pattern (labeler.watermark.video) and the detector's motion-aligned frame sum
(detectors.watermark_video). Frames are cut from samples/photo.jpg; one test labels a real clip."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import detectors.watermark_video as dv
from labeler.media.ffmpeg import ffmpeg_exe
from labeler.media.video import video_info
from labeler.watermark import _scheme
from labeler.watermark.motion import MotionTracker
from labeler.watermark.video import VideoPattern, watermark_video

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "samples" / "photo.jpg"
KEY = bytes(range(32))
PAYLOAD = bytes.fromhex("5ae1c0ffee0a1b2c")
H, W = 360, 640


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A large grey picture to cut moving frames from (the sample photo, enlarged)."""
    grey = cv2.imread(str(PHOTO), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(grey, (1600, 1000), interpolation=cv2.INTER_CUBIC)


def _pan(picture: np.ndarray, step: tuple[int, int], n: int, noise: float = 1.0,
         seed: int = 0) -> list[np.ndarray]:
    """``n`` frames of H x W whose picture moves by ``step`` (dy, dx) whole pixels a frame, with sensor
    noise (independent per frame)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        y0, x0 = 300 - step[0] * k, 400 - step[1] * k
        fr = picture[y0 : y0 + H, x0 : x0 + W].astype(np.float32)
        out.append(np.clip(fr + rng.normal(0, noise, fr.shape), 0, 255).astype(np.uint8))
    return out


def test_tracker_follows_a_pan_and_an_excerpt_gives_the_same_motion(picture: np.ndarray) -> None:
    frames = _pan(picture, (2, 9), 12)
    t = MotionTracker()
    track = np.array([t.push(f) for f in frames])
    truth = np.array([(2 * k, 9 * k) for k in range(12)], dtype=float)
    assert np.abs(track - truth).max() < 0.5
    # a reader that starts at frame 4 and sees every other frame measures the same relative motion
    t2 = MotionTracker()
    later = np.array([t2.push(f) for f in frames[4::2]])
    np.testing.assert_allclose(later, track[4::2] - track[4], atol=0.5)


def test_tracker_ignores_noise_slow_drift_and_a_moving_object(picture: np.ndarray) -> None:
    # a still picture with sensor noise, and a drift of 0.4 px a frame (under MIN_STEP, 1 px here)
    drift = [cv2.warpAffine(picture, np.float32([[1, 0, -400 + 0.4 * k], [0, 1, -300]]), (W, H))
             for k in range(8)]
    for frames in (_pan(picture, (0, 0), 8, noise=3.0), drift):
        t = MotionTracker()
        assert [t.push(f) for f in frames][-1] == (0.0, 0.0)
    # a detailed object crossing a plain still scene (testsrc2's moving bar over its colour bars) is the
    # strongest peak of the correlation, but not the picture's motion
    ramp = (np.linspace(60, 190, W, dtype=np.float32)[None, :]
            + np.linspace(0, 40, H, dtype=np.float32)[:, None])
    patch = picture[200:400, 300:500]
    t = MotionTracker()
    for k in range(8):
        fr = ramp.copy()
        fr[80:280, 20 + 25 * k : 220 + 25 * k] = patch
        assert t.push(fr.astype(np.uint8)) == (0.0, 0.0)
    # a cut (unrelated pictures) is no motion either
    t = MotionTracker()
    t.push(picture[0:360, 0:640])
    assert t.push(picture[600:960, 900:1540]) == (0.0, 0.0)


def test_pattern_moves_by_the_offset_modulo_its_period() -> None:
    marker = VideoPattern.build(H, W, PAYLOAD, KEY, method="dwt", strength=2.0, zoom=1)
    t = marker.period
    grey = np.full((H, W), 128, np.uint8)
    still = marker.mark(grey.copy()).astype(int) - 128
    moved = marker.mark(grey.copy(), (7, -20)).astype(int) - 128
    # the moved change is the still one moved (the pattern continues past the frame's edges)
    np.testing.assert_array_equal(moved[7:, : W - 20], still[: H - 7, 20:])
    # a whole period is no move at all
    np.testing.assert_array_equal(marker.mark(grey.copy(), (t, -2 * t)).astype(int) - 128, still)


class _Known:
    """A tracker stand-in that reports given displacements (to test the frame sum alone)."""

    def __init__(self, offsets: list[tuple[float, float]]) -> None:
        self.offsets = iter(offsets)

    def push(self, y: np.ndarray) -> tuple[float, float]:
        return next(self.offsets)


@pytest.mark.parametrize("aligned", [True, False])
def test_frame_sum_adds_a_moving_mark_back_in_phase(monkeypatch: pytest.MonkeyPatch, aligned: bool) -> None:
    """A weak mark moving 1.5 px down and 6.5 px right a frame (half pixels: the marks are moved by whole
    pixels, the sums by fractions) over changing content: one frame does not decode; the sum moved back by
    the motion does within a few frames; the same frames summed where they lie never do."""
    marker = VideoPattern.build(H, W, PAYLOAD, KEY, method="dwt", strength=0.4, zoom=1)
    rng = np.random.default_rng(11)
    motion = [(1.5 * k, 6.5 * k) for k in range(32)]
    frames = []
    for dy, dx in motion:
        host = cv2.GaussianBlur(rng.normal(128, 25, (H, W)).astype(np.float32), (0, 0), 1.5)
        fr = marker.mark(np.clip(host, 0, 255).astype(np.uint8), (round(dy), round(dx)))
        frames.append(np.clip(fr + rng.normal(0, 4, fr.shape), 0, 255).astype(np.uint8))
    monkeypatch.setattr(dv, "MotionTracker", lambda: _Known(motion if aligned else [(0.0, 0.0)] * 32))
    search = dv._Search([_scheme("dwt")], KEY, 10**8, 1e-6, 0, dv.checkpoints(32))
    r = search.run(iter(frames))
    if aligned:
        assert r.found and r.payload == PAYLOAD and 1 < r.frames_read <= 8
    else:
        assert not r.found


def test_labeled_pan_carries_a_mark_that_moves_with_it(tmp_path: Path) -> None:
    """A real clip panning 10 px a frame, labeled: each labeled frame minus its source frame is the
    pattern moved by the picture's motion (not the still pattern), and the detector reads it."""
    src, dst = tmp_path / "pan.mp4", tmp_path / "pan.wm.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-loop", "1", "-framerate", "25",
                    "-t", "0.6", "-i", str(PHOTO), "-vf",
                    "scale=2000:-2,crop=1280:720:x='n*10':y=40,format=yuv420p",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "10", str(src)], check=True)
    done = watermark_video(src, dst, PAYLOAD, key=KEY, strength=2.0)
    marker = VideoPattern.build(720, 1280, PAYLOAD, KEY, strength=2.0)

    def luma(path: Path) -> list[np.ndarray]:
        info = video_info(path)
        return [f.astype(np.float32) for f in dv._frames(str(path), info.height, info.width, info.stream)]

    source, labeled = luma(src), luma(dst)
    assert len(source) == len(labeled) == done["watermark"]["frames"] == 15
    t = MotionTracker()
    grey = np.full((720, 1280), 128, np.uint8)
    still = (marker.mark(grey.copy()).astype(np.float32) - 128).ravel()
    for k, (a, b) in enumerate(zip(source, labeled, strict=True)):
        dy, dx = t.push(a.astype(np.uint8))
        diff = (b - a).ravel()
        moved = (marker.mark(grey.copy(), (round(dy), round(dx))).astype(np.float32) - 128).ravel()
        assert np.corrcoef(diff, moved)[0, 1] > 0.3
        if k >= 3:  # 30 px and more: the still pattern no longer lines up
            assert abs(np.corrcoef(diff, still)[0, 1]) < 0.15
    r = dv.detect_video(dst, key=KEY)
    assert r.found and r.payload == PAYLOAD
