"""QA of the video watermark on unusual input (session 39): a 4:4:4 video that starts after its sound.

4:4:4 sources go through the constant-rate raw pipe (the timed Matroska pipe takes 4:2:0 and 4:2:2 only),
whose frames start at 0, and ffmpeg moves the source to start at 0 too: a 4:4:4 video placed 0.3 s
into its soundtrack (or starting ~21 ms in after AAC priming in Matroska, or 24 ms after an MP4 edit
list) came out of :func:`labeler.watermark.video.watermark_video` that much early against the copied
sound. Clips are made with ffmpeg inside the test (320 x 240, 1 s); packet times are read with
ffmpeg's ``framecrc`` muxer, as in ``tests/test_qa_video_timing_s38.py``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from labeler.watermark import payload_from_produce_id
from labeler.watermark.video import watermark_video
from tests.conftest import run_ffmpeg
from tests.test_qa_video_timing_s38 import _first_times

KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("qa-s39-sync")


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_late_444_video_stays_in_time_with_its_sound(tmp_path: Path, suffix: str) -> None:
    video, sound = tmp_path / "v.mkv", tmp_path / "a.m4a"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(video))
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.5", "-c:a", "aac",
               str(sound))
    src = tmp_path / f"late{suffix}"
    run_ffmpeg("-itsoffset", "0.3", "-i", str(video), "-i", str(sound), "-map", "0", "-map", "1",
               "-c", "copy", str(src))
    before = _first_times(src)
    assert before[0] - before[1] >= Fraction(290, 1000), before  # the video starts after the sound
    out = tmp_path / f"wm{suffix}"
    done = watermark_video(src, out, PAYLOAD, key=KEY)
    assert done["watermark"]["output_pix_fmt"] == "yuv444p"  # the raw pipe's case
    after = _first_times(out)
    ms = Fraction(1, 1000)
    assert abs((after[0] - after[1]) - (before[0] - before[1])) <= ms, (before, after)
    assert abs(after[1] - before[1]) <= ms  # the copied sound did not move either
