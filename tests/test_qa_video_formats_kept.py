"""QA: what the video passes (watermark, visible label, soundtrack mark) keep of a source's nature.

Tiny clips made with the ffmpeg the project uses (:func:`labeler.media.ffmpeg.ffmpeg_exe`); a test whose
encoder that ffmpeg lacks is skipped.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import has_encoder

from labeler.media import ffmpeg as ff
from labeler.visible import add_video_label
from labeler.watermark import payload_from_produce_id
from labeler.watermark.soundtrack import mark_soundtrack
from labeler.watermark.video import watermark_video

KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("qa-video-formats")
VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=256x192:rate=25:duration=1.2"]
SOUND = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.2"]


def _need(*encoders: str) -> None:
    for name in encoders:
        if not has_encoder(name):
            pytest.skip(f"this ffmpeg has no {name} encoder")


def _make(path, *args: str) -> str:
    subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(path)],
                   check=True)
    return str(path)


def _banner(path) -> str:
    return subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True).stderr


def _timecode_tracks(path) -> list[ff.StreamInfo]:
    return [s for s in ff.probe(path).streams if s.kind == "data" and "timecode" in s.metadata]


def test_mp4_timecode_track_is_kept_not_refused(tmp_path):
    """A camera MP4 with a tmcd timecode track: every pass failed ("could not find tag for codec none")."""
    _need("libx264", "aac")
    src = _make(tmp_path / "tc.mp4", *VIDEO, *SOUND, "-c:v", "libx264", "-c:a", "aac",
                "-timecode", "01:00:00:00")
    assert _timecode_tracks(src), "the source should have a timecode track"
    wm = tmp_path / "wm.mp4"
    watermark_video(src, wm, PAYLOAD, key=KEY)
    assert mark_soundtrack(wm, PAYLOAD, key=KEY)["audio"] == "marked"
    vis = tmp_path / "vis.mp4"
    add_video_label(src, vis, seconds=None)
    for out in (wm, vis):
        tracks = _timecode_tracks(out)
        assert [t.metadata["timecode"] for t in tracks] == ["01:00:00:00"]
        # in file order (ffmpeg 9's banner lists a timecode track beside its video track)
        kinds = [s.kind for s in sorted(ff.probe(out).streams, key=lambda s: s.index)]
        assert kinds == ["video", "audio", "data"]


def test_start_time_is_kept(tmp_path):
    """A source starting at 10 s (a cut from a recording) came out starting at 0."""
    _need("libx264", "aac")
    src = _make(tmp_path / "late.mp4", *VIDEO, *SOUND, "-c:v", "libx264", "-c:a", "aac",
                "-output_ts_offset", "10")
    assert ff.probe(src).start == pytest.approx(10, abs=0.05)
    vis = tmp_path / "vis.mp4"
    add_video_label(src, vis, seconds=None)
    assert ff.probe(vis).start == pytest.approx(ff.probe(src).start, abs=0.001)
    wm = tmp_path / "wm.mp4"
    watermark_video(src, wm, PAYLOAD, key=KEY)
    mark_soundtrack(wm, PAYLOAD, key=KEY)
    # the re-encoded AAC's priming may move the file by one uniform ~21 ms (docs/watermark-video.md)
    assert ff.probe(wm).start == pytest.approx(ff.probe(src).start, abs=0.05)


def test_hevc_in_mp4_keeps_hvc1_tag(tmp_path):
    """HEVC tagged hvc1 (as phones write it) came out of MP4 as hev1, which Apple's players refuse."""
    _need("libx265")
    src = _make(tmp_path / "phone.mp4", *VIDEO, "-c:v", "libx265", "-x265-params", "log-level=error",
                "-tag:v", "hvc1")
    out = tmp_path / "wm.mp4"
    done = watermark_video(src, out, PAYLOAD, key=KEY)
    assert done["watermark"]["encoder"] == "libx265"
    assert "(hvc1 / 0x" in _banner(out)


def test_flac_soundtrack_stays_flac_at_its_depth(tmp_path):
    """A lossless soundtrack (FLAC in MKV, PCM in MOV) was re-encoded as AAC by the soundtrack mark."""
    _need("libx264", "flac")
    src = _make(tmp_path / "master.mkv", *VIDEO, *SOUND, "-c:v", "libx264", "-c:a", "flac")
    out = tmp_path / "wm.mkv"
    watermark_video(src, out, PAYLOAD, key=KEY)
    done = mark_soundtrack(out, PAYLOAD, key=KEY)
    assert done["audio"] == "marked" and done["codec"] == "flac"
    (audio,) = ff.probe(out).audio
    assert audio.codec == "flac" and audio.sample_fmt == ff.probe(src).audio[0].sample_fmt


def test_pcm_soundtrack_stays_pcm(tmp_path):
    _need("libx264")
    src = _make(tmp_path / "master.mov", *VIDEO, *SOUND, "-c:v", "libx264", "-c:a", "pcm_s16le")
    out = tmp_path / "wm.mov"
    watermark_video(src, out, PAYLOAD, key=KEY)
    assert mark_soundtrack(out, PAYLOAD, key=KEY)["codec"] == "pcm_s16le"
    assert ff.probe(out).audio[0].codec == "pcm_s16le"


def test_codec_without_family_encoder_is_reported(tmp_path):
    """A source whose family has no encoder here (MPEG-4 Part 2) is written as H.264: the result says so
    (the label stage warns). FFV1 and ProRes keep their family since 2026-12-07
    (tests/test_qa_video_codecs_s33.py)."""
    _need("libx264", "mpeg4")
    src = _make(tmp_path / "old.mkv", *VIDEO, "-c:v", "mpeg4")
    done = watermark_video(src, tmp_path / "wm.mkv", PAYLOAD, key=KEY)
    assert done["watermark"]["codec_from"] == "mpeg4" and done["watermark"]["encoder"] == "libx264"
