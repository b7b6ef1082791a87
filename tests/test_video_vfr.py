"""Variable frame rate: a re-encode keeps every frame's timestamp exactly (the source's time base).

The source is a real VFR file made by ffmpeg: frames of a 30 fps test pattern with every fourth one
dropped and the rest pushed later by a growing amount (``270 * n * n`` ticks of 1/90000 s), so no two
gaps are alike. Timestamps are read from the packets (stream copy to ffmpeg's ``framecrc``), sorted
into presentation order, in seconds as exact fractions.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import ffmpeg_exe

from labeler.media.video import stream_time_base
from labeler.visible import add_video_label


def _ffmpeg(*args: str | Path) -> Path:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)
    return Path(args[-1])


def video_pts(path: Path) -> list[Fraction]:
    """Presentation times (s) of the first video stream's packets, in order."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                          "-f", "framecrc", "-"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    tb = next(Fraction(line.split(":", 1)[1].strip()) for line in lines if line.startswith("#tb 0"))
    return sorted(int(line.split(",")[2]) * tb for line in lines if line and line[0] != "#")


@pytest.fixture(scope="module")
def vfr(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30,select='not(eq(mod(n\\,4)\\,1))',"
            "settb=1/90000,setpts='PTS+270*N*N'", "-f", "lavfi", "-i", "sine=f=440:d=6", "-t", "6",
            "-fps_mode", "passthrough", "-enc_time_base", "1/90000", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-video_track_timescale", "90000",
            "-shortest", out)
    pts = video_pts(out)
    gaps = {b - a for a, b in zip(pts, pts[1:], strict=False)}
    assert len(pts) > 30 and len(gaps) > 20  # really variable: no constant rate would fit
    return out


def test_time_base_is_read_from_the_stream(vfr: Path) -> None:
    assert stream_time_base(vfr, 0) == Fraction(1, 90000)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_visible_mark_keeps_every_timestamp(vfr: Path, tmp_path: Path, suffix: str) -> None:
    src = vfr if suffix == ".mp4" else _ffmpeg("-i", str(vfr), "-map", "0", "-c", "copy",
                                               tmp_path / "vfr.mkv")
    out = tmp_path / f"labeled{suffix}"
    add_video_label(src, out, seconds=2.0)
    before, after = video_pts(src), video_pts(out)
    assert len(after) == len(before)
    if suffix == ".mp4":
        assert after == before  # the same ticks of the same 1/90000 time base
    else:
        # Matroska stores milliseconds: same times, up to one uniform shift ffmpeg applies when the
        # copied AAC track starts before zero.
        shift = after[0] - before[0]
        assert all(a - b == shift for a, b in zip(after, before, strict=True))
        assert abs(shift) < Fraction(1, 10)
