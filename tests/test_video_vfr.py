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
from conftest import ffmpeg_exe, run_ffmpeg

from labeler.media.video_index import stream_time_base
from labeler.visible import add_video_label


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
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30,select='not(eq(mod(n\\,4)\\,1))',"
               "settb=1/90000,setpts='PTS+270*N*N'", "-f", "lavfi", "-i", "sine=f=440:d=6", "-t", "6",
               "-fps_mode", "passthrough", "-enc_time_base", "1/90000", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
               "-video_track_timescale", "90000", "-shortest", out)
    pts = video_pts(out)
    gaps = {b - a for a, b in zip(pts, pts[1:], strict=False)}
    assert len(pts) > 30 and len(gaps) > 20  # really variable: no constant rate would fit
    return out


def test_time_base_is_read_from_the_stream(vfr: Path) -> None:
    assert stream_time_base(vfr, 0) == Fraction(1, 90000)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_visible_mark_keeps_every_timestamp(vfr: Path, tmp_path: Path, suffix: str) -> None:
    src = vfr if suffix == ".mp4" else run_ffmpeg("-i", str(vfr), "-map", "0", "-c", "copy",
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


@pytest.mark.parametrize("suffix, pix_fmt", [(".mp4", "yuv420p"), (".mkv", "yuv422p")])
def test_timed_raw_pipe_keeps_every_timestamp(vfr: Path, tmp_path: Path, suffix: str, pix_fmt: str) -> None:
    """Decode -> raw frames with their times -> encode (what a frame-marking pass does): times kept."""
    from labeler.media import timed

    src = vfr if suffix == ".mp4" else run_ffmpeg("-i", str(vfr), "-map", "0", "-c", "copy",
                                                  tmp_path / "vfr.mkv")
    out = tmp_path / f"out{suffix}"
    exact = timed.ExactTimes(src, 0)
    width, height = 320, 240
    frame_bytes = width * height * (2 if pix_fmt == "yuv422p" else 1) + (0 if pix_fmt == "yuv422p" else
                                                                        width * height // 2)
    dec = subprocess.Popen(timed.decoder_args(src, 0, pix_fmt, exact.time_base), stdout=subprocess.PIPE)
    enc = subprocess.Popen([ffmpeg_exe(), "-v", "error", "-y", "-copyts", "-f", "matroska", "-i", "pipe:0",
                            "-c:v", "libx264", "-preset", "ultrafast", "-fps_mode", "passthrough",
                            "-enc_time_base", str(exact.time_base), "-pix_fmt", pix_fmt,
                            *(["-video_track_timescale", "90000"] if suffix == ".mp4" else []), str(out)],
                           stdin=subprocess.PIPE)
    assert dec.stdout is not None and enc.stdin is not None
    writer = timed.TimedWriter(enc.stdin, width, height, pix_fmt)
    frames = 0
    for frame, ns in timed.read_frames(dec.stdout, frame_bytes):
        writer.write(frame, exact.snap(ns))
        frames += 1
    enc.stdin.close()
    assert enc.wait() == 0 and dec.wait() == 0
    before, after = video_pts(src), video_pts(out)
    assert frames == len(before) == len(after)
    if suffix == ".mp4":
        assert after == before
    else:  # milliseconds; ffmpeg 5.1 starts a video-only MKV at 0 even with -copyts: one uniform shift
        assert all(a - b == after[0] - before[0] for a, b in zip(after, before, strict=True))


def test_timed_reader_refuses_a_stream_that_is_not_frames() -> None:
    import io

    from labeler.errors import LabelerError
    from labeler.media import timed

    block = bytes([0xA3, 0x88, 0x81, 0, 0, 0x80]) + b"abcd"  # a 4-byte frame where 6 are expected
    with pytest.raises(LabelerError):
        list(timed.read_frames(io.BytesIO(block), 6))
    with pytest.raises(LabelerError):
        list(timed.read_frames(io.BytesIO(b"\x00\x00\x00"), 6))


def test_timed_pipe_keeps_full_range_levels(tmp_path: Path) -> None:
    """A yuvj420p source (samples/clip.mp4) goes through without a levels conversion."""

    from conftest import SAMPLES

    from labeler.media import timed
    from labeler.media.video import read_video_frames

    src, out = SAMPLES / "clip.mp4", tmp_path / "out.mp4"
    enc = subprocess.Popen([ffmpeg_exe(), "-v", "error", "-y", "-f", "matroska", "-i", "pipe:0",
                            "-c:v", "libx264",
                            "-crf", "12", "-preset", "ultrafast", "-pix_fmt", "yuvj420p", str(out)],
                           stdin=subprocess.PIPE)
    assert enc.stdin is not None
    writer = timed.TimedWriter(enc.stdin, 320, 240, "yuvj420p")
    for frame, pts in timed.timed_frames(src, 0, "yuvj420p", 320 * 240 * 3 // 2):
        writer.write(frame, pts)
    enc.stdin.close()
    assert enc.wait() == 0
    before = next(iter(read_video_frames(src, pix_fmt="gray"))).astype(float)
    after = next(iter(read_video_frames(out, pix_fmt="gray"))).astype(float)
    assert abs(after.mean() - before.mean()) < 1 and abs(after.std() - before.std()) < 1


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_watermark_keeps_every_timestamp_and_is_read_back(vfr: Path, tmp_path: Path, suffix: str) -> None:
    from detectors.watermark_video import detect_video
    from labeler.watermark.video import watermark_video

    src = vfr if suffix == ".mp4" else run_ffmpeg("-i", str(vfr), "-map", "0", "-c", "copy",
                                                  tmp_path / "vfr.mkv")
    key, payload = b"k" * 32, bytes(range(8))
    out = tmp_path / f"marked{suffix}"
    watermark_video(src, out, payload, key=key)
    before, after = video_pts(src), video_pts(out)
    assert len(after) == len(before)
    if suffix == ".mp4":
        assert after == before  # the raw frames travel with their times (labeler.media.timed)
    else:
        shift = after[0] - before[0]
        assert all(a - b == shift for a, b in zip(after, before, strict=True))
        assert abs(shift) < Fraction(1, 10)
    found = detect_video(out, key=key)
    assert found.found and found.payload == payload


def test_timed_reader_reads_blocks_of_any_track_number_length() -> None:
    """Each block's head (track vint of 1 or 2 bytes, signed relative time, flags) is parsed apart from
    the frame, which comes back whole, writable, with its cluster + relative time."""
    import io

    from labeler.media import timed

    cluster = bytes([0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])  # unknown size
    stamp = bytes([0xE7, 0x81, 40])  # cluster time 40 ms
    one = bytes([0xA3, 0x8A, 0x81, 0x00, 0x05, 0x80]) + b"abcdef"  # track 1 (1-byte vint), +5
    two = bytes([0xA3, 0x8B, 0x40, 0x01, 0xFF, 0xFE, 0x80]) + b"ghijkl"  # track 1 (2-byte vint), -2
    frames = list(timed.read_frames(io.BytesIO(cluster + stamp + one + two), 6))
    assert [(bytes(f), ns) for f, ns in frames] == [(b"abcdef", 45_000_000), (b"ghijkl", 38_000_000)]
    frames[0][0][0] = 0  # writable: a pass marks frames in place
