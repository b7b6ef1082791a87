"""Video visible-label detection as ``verify`` uses it (issue #17): the one-run path of a video whose
start lacks the label, and ``stop_at_start`` with the windows it did not read named in the report.

Media are built from ``samples/clip.mp4`` (4 s, 320x240, 25 fps): a 12 s loop labelled at the start,
middle and end, and a 16 s video made of the plain clip followed by that loop (so its start is clean
and its end carries the label).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES, run_ffmpeg

import detectors.visible.video as video
from detectors.visible import detect_video_label
from labeler.visible import add_video_label

CLIP = SAMPLES / "clip.mp4"
SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "report.schema.json"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("verify-video")
    loop = run_ffmpeg("-stream_loop", "2", "-i", CLIP, "-map", "0", "-c", "copy", folder / "loop.mp4")
    labelled = folder / "sme.mp4"
    add_video_label(loop, labelled, seconds=2.0, at=("start", "middle", "end"), preset="ultrafast")
    # Plain clip, then the labelled loop: start clean, middle (8 s: the loop's 4 s) clean, end labelled.
    tail = run_ffmpeg("-i", CLIP, "-i", labelled, "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]",
                      "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt",
                      "yuv420p", folder / "end-only.mp4")
    plain = run_ffmpeg("-i", loop, "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
                       "-pix_fmt", "yuv420p", folder / "plain.mp4")
    return {"labelled": labelled, "end-only": tail, "plain": plain}


@pytest.fixture
def decoding_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the ffmpeg decoding runs of :mod:`detectors.visible.video` (each call of _video_frames)."""
    runs: list[int] = []
    real = video._video_frames

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(video, "_video_frames", counted)
    return runs


def test_unlabeled_start_is_one_decoding_run(media: dict[str, Path], decoding_runs: list[int]) -> None:
    # A clean video: the start samples and both windows come from one ffmpeg run (was two).
    plain = detect_video_label(media["plain"])
    assert not plain.present and plain.intervals == () and plain.not_read == ()
    assert len(decoding_runs) == 1
    # Start clean, end labelled: found by that same single run, nothing reported at the start.
    decoding_runs.clear()
    tail = detect_video_label(media["end-only"], stop_at_start=True)
    assert tail.present and tail.intervals == ("end",) and tail.seconds is None and tail.not_read == ()
    assert tail.position == "bottom-right" and tail.height_ratio is not None
    assert len(decoding_runs) == 1


def test_labelled_start_takes_the_exact_path(media: dict[str, Path], decoding_runs: list[int]) -> None:
    # The one-run path stops judging at its first hit (the window frames read on into memory); the
    # exact scan fixes seconds from every frame, then the kept window frames are judged.
    found = detect_video_label(media["labelled"])
    assert found.intervals == ("start", "middle", "end") and found.seconds == 2.0
    assert len(decoding_runs) == 2  # the one-run path (windows kept), the exact start scan
    decoding_runs.clear()
    early = detect_video_label(media["labelled"], stop_at_start=True)
    assert early.intervals == ("start",) and early.seconds == 2.0 and early.not_read == ("middle", "end")
    assert len(decoding_runs) == 2  # the one-run path abandoned at once, the exact start scan
    assert (early.position, early.box, early.text) == (found.position, found.box, found.text)


def test_not_read_in_the_report_schema(media: dict[str, Path]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    visible = schema["$defs"]["visible"]
    early = detect_video_label(media["labelled"], stop_at_start=True).to_dict()
    assert early["not_read"] == ["middle", "end"] and early["intervals"] == ["start"]
    jsonschema.validate(early, visible)
    whole = detect_video_label(media["labelled"]).to_dict()
    assert "not_read" not in whole  # every window read: the key is left out
    jsonschema.validate(whole, visible)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**early, "not_read": ["start"]}, visible)  # the start is always read
