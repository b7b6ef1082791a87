"""QA: the video watermark pass keeps the marked video in time with the streams it copies.

A source whose video starts after the file's start (ffmpeg's Matroska muxer moves every stream by the
AAC encoder's priming, so the video starts ~21 ms in; Opus pre-skip does the same in WebM) came out of
:func:`labeler.watermark.video.watermark_video` with the video moved to 0 and the copied sound and
subtitles left where they were: a 21 ms lip-sync error and subtitles late by as much, on every such file.

Clips are made with the ffmpeg the project uses; packet times are read with ffmpeg's ``framecrc``
muxer (a stream copy: no decoding, no ffprobe needed).
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from labeler.media import ffmpeg as ff
from labeler.watermark import payload_from_produce_id
from labeler.watermark.video import watermark_video

KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("qa-video-timing-s38")
SRT = "1\n00:00:00,200 --> 00:00:00,700\nHello\n\n2\n00:00:00,800 --> 00:00:01,100\nWorld\n"


def _need(*encoders: str) -> None:
    listed = subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True,
                            text=True).stdout
    for name in encoders:
        if f" {name} " not in listed:
            pytest.skip(f"this ffmpeg has no {name} encoder")


def _first_times(path: Path) -> dict[int, Fraction]:
    """Each stream's earliest packet time (s), as ffmpeg reads the file (one shift for all streams)."""
    proc = subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path),
                           "-map", "0", "-c", "copy", "-f", "framecrc", "-"],
                          capture_output=True, text=True, check=True)
    bases: dict[int, Fraction] = {}
    first: dict[int, Fraction] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("#tb "):
            index, _, base = line[4:].partition(":")
            bases[int(index)] = Fraction(base.strip())
        elif line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            index, pts = int(fields[0]), int(fields[2])
            at = pts * bases[index]
            first[index] = min(first.get(index, at), at)
    return first


def test_late_video_stays_in_time_with_copied_sound_and_subtitles(tmp_path: Path) -> None:
    _need("libx264", "aac")
    srt = tmp_path / "s.srt"
    srt.write_text(SRT)
    src = tmp_path / "late.mkv"
    subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=1.2",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.2",
                    "-i", str(srt), "-map", "0", "-map", "1", "-map", "2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "srt", str(src)],
                   check=True)
    before = _first_times(src)
    # the case this is about: the muxer started the video after the sound (AAC priming)
    assert before[0] - before[1] > Fraction(10, 1000)
    out = tmp_path / "wm.mkv"
    watermark_video(src, out, PAYLOAD, key=KEY)
    after = _first_times(out)
    ms = Fraction(1, 1000)
    for other in (1, 2):  # the sound, the subtitles: each as far from the video as in the source
        assert abs((after[0] - after[other]) - (before[0] - before[other])) <= ms, (other, before, after)
