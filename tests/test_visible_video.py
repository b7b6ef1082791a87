"""Visible label on video (:func:`labeler.visible.add_video_label`) and its detection.

The sample clip (4 s, 320x240 H.264 + AAC, 25 fps) is labelled once for the module with the
standard's minimum of 2 s; frames are compared with the input decoded by the same ffmpeg.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, ffmpeg_exe

from detectors.visible import detect_image_label, detect_video_label
from labeler.errors import LabelerError
from labeler.media import probe, read_video_frames
from labeler.metadata import read_labels, write_label
from labeler.record import AIGCLabel
from labeler.visible import add_video_label, place_label

CLIP = SAMPLES / "clip.mp4"
SECONDS = 2.0
FPS = 25


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _audio_md5(path: Path) -> str:
    """md5 of the audio packets, as ffmpeg's md5 muxer computes it over a stream copy."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a",
                           "-c", "copy", "-f", "md5", "-"], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("video") / "labelled.mp4"
    before = _md5(CLIP)
    result = add_video_label(CLIP, out, seconds=SECONDS)
    assert _md5(CLIP) == before  # src only read
    return out, result


@pytest.fixture(scope="module")
def frames(labelled: tuple[Path, dict]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return list(read_video_frames(CLIP)), list(read_video_frames(labelled[0]))


def test_result_and_streams(labelled: tuple[Path, dict]) -> None:
    out, result = labelled
    placement = place_label(240, 320, "AI生成", position="bottom-right")
    assert result == {"kind": "video-text", "text": "AI生成", "position": "bottom-right",
                      "height_ratio": round(placement.height_ratio, 4), "seconds": SECONDS,
                      "box": placement.box}
    src, dst = probe(CLIP), probe(out)
    assert [s.kind for s in dst.streams] == [s.kind for s in src.streams]
    assert dst.video[0].codec == "h264" and dst.video[0].frame_rate == src.video[0].frame_rate
    assert dst.video[0].pix_fmt == src.video[0].pix_fmt
    assert dst.audio[0].codec == src.audio[0].codec
    assert _audio_md5(out) == _audio_md5(CLIP)
    assert abs(dst.duration - src.duration) < 0.05
    assert not [p for p in out.parent.iterdir() if ".part" in p.name]


def test_frames_carry_the_mark_then_not(frames: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    before, after = frames
    assert len(after) == len(before) == 4 * FPS
    placement = place_label(240, 320, "AI生成", position="bottom-right")
    x, y, w, h = placement.box
    assert placement.ink_box[3] >= 0.05 * 240
    for t in (0.5, 1.5):
        frame = after[round(t * FPS)]
        found = detect_image_label(frame)
        assert found.present and found.position == "bottom-right"
        assert found.height_ratio >= 0.045
        fx, fy, fw, fh = found.box
        assert abs(fx - x) <= 3 and abs(fy - y) <= 3 and abs(fh - h) <= 3
        diff = np.abs(frame.astype(int) - before[round(t * FPS)].astype(int))
        inside = diff[y:y + h, x:x + w].mean()
        outside = np.delete(diff, np.s_[y:y + h], axis=0).mean()
        assert inside > 20 and outside < 3  # the label is drawn there and nowhere else
    late = round(3.5 * FPS)
    assert not detect_image_label(after[late]).present
    assert np.abs(after[late].astype(int) - before[late].astype(int)).mean() < 3


def test_detect_video_label(labelled: tuple[Path, dict]) -> None:
    found = detect_video_label(labelled[0])
    assert found.present and found.kind == "video-text" and found.position == "bottom-right"
    assert abs(found.seconds - SECONDS) <= 0.5
    assert found.to_dict()["seconds"] == found.seconds
    absent = detect_video_label(CLIP)
    assert not absent.present and absent.kind == "video-text" and absent.seconds is None


def test_whole_and_metadata_label_survives(tmp_path: Path) -> None:
    value = AIGCLabel(PRODUCER, "vid-visible-1").to_json()
    tagged = tmp_path / "tagged.mp4"
    write_label(CLIP, tagged, value)
    out = tmp_path / "out.mp4"
    result = add_video_label(tagged, out, whole=True, position="top-left")
    assert result["seconds"] is None and result["position"] == "top-left"
    _, labels = read_labels(out)
    assert [label.raw for label in labels] == [value]
    assert probe(out).metadata.get("title") == "aigc-labeler sample clip"
    last = list(read_video_frames(out))[-1]
    assert detect_image_label(last).position == "top-left"


def test_bad_inputs_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(LabelerError, match="not a video"):
        add_video_label(SAMPLES / "speech.wav", out)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(CLIP.read_bytes()[: os.path.getsize(CLIP) // 2])
    with pytest.raises(LabelerError) as err:
        add_video_label(truncated, out)
    assert "\n" not in str(err.value)
    with pytest.raises(LabelerError, match="at least 2 s"):
        add_video_label(CLIP, out, seconds=1.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated.mp4"]
    shutil.copy(CLIP, out)
    with pytest.raises(LabelerError, match="exists"):
        add_video_label(CLIP, out)
    assert _md5(out) == _md5(CLIP)
