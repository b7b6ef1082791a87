"""QA: what the two video passes (visible label, watermark) keep of a source's codec, pixel format, track
dispositions and container tags, with the system ffmpeg and with the imageio-ffmpeg wheel's.

Each source is a 1 s 320 x 240 testsrc2 clip made with the ffmpeg under test; a codec that ffmpeg cannot
encode is skipped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import mov_keys

from detectors.visible import detect_video_label
from detectors.watermark_video import detect_video
from labeler.media import ffmpeg as ff
from labeler.media.video_encoders import choose_encoder, nearest_pix_fmt
from labeler.visible import add_video_label
from labeler.watermark import payload_from_produce_id
from labeler.watermark.soundtrack import mark_soundtrack
from labeler.watermark.video import watermark_video

KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("qa-video-codecs")
VIDEO = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1"]
SOUND = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"]


def _make(path: Path, *args: str) -> Path:
    subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(path)],
                   check=True)
    return path


def _need(encoder: str) -> None:
    if ff.encoder_pix_fmts(encoder) is None:
        pytest.skip(f"this ffmpeg has no {encoder} encoder")


def _banner(path: Path) -> str:
    return subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True).stderr


def _frames(path: Path) -> int:
    args = [ff.ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
    out = subprocess.run(args, capture_output=True, text=True).stderr
    return int(out.rsplit("frame=", 1)[1].split()[0])


# name, encoder, its options, pixel format, container
SOURCES = [
    ("prores", "prores_ks", ["-profile:v", "2"], "yuv422p10le", ".mov"),
    ("ffv1", "ffv1", [], "yuv422p10le", ".mkv"),
    ("vp9", "libvpx-vp9", ["-b:v", "0", "-crf", "30", "-deadline", "realtime", "-cpu-used", "8"],
     "yuv420p10le", ".webm"),
    ("hevc", "libx265", ["-x265-params", "log-level=error", "-tag:v", "hvc1"], "yuv420p10le", ".mp4"),
]


@pytest.mark.parametrize("codec, encoder, options, pix_fmt, suffix", SOURCES, ids=[s[0] for s in SOURCES])
def test_visible_pass_keeps_codec_and_pixel_format(tmp_path: Path, which_ffmpeg: str, codec: str,
                                                   encoder: str, options: list[str], pix_fmt: str,
                                                   suffix: str) -> None:
    """A ProRes / FFV1 / 10-bit VP9 / 10-bit HEVC source came out of the visible pass as 8-bit H.264 (VP9
    for WebM), whatever its codec: a studio's master became a delivery file."""
    _need(encoder)
    src = _make(tmp_path / f"src{suffix}", *VIDEO, "-c:v", encoder, *options, "-pix_fmt", pix_fmt)
    out = tmp_path / f"out{suffix}"
    done = add_video_label(src, out, seconds=None)
    (video,) = ff.probe(out).video
    assert (video.codec, video.pix_fmt) == (codec, pix_fmt)
    assert done["encoder"] == encoder and done["pix_fmt"] == pix_fmt and "converted_from" not in done
    assert _frames(out) == _frames(src) == 25
    assert ff.probe(out).duration == pytest.approx(ff.probe(src).duration, abs=0.05)
    if codec == "hevc":
        assert "(hvc1 / 0x" in _banner(out)
    assert detect_video_label(out).present


@pytest.mark.parametrize("codec, encoder, options, pix_fmt, suffix", SOURCES[:2], ids=["prores", "ffv1"])
def test_watermark_pass_keeps_prores_and_ffv1(tmp_path: Path, which_ffmpeg: str, codec: str, encoder: str,
                                              options: list[str], pix_fmt: str, suffix: str) -> None:
    """The watermark pass wrote ProRes and FFV1 (no entry in its encoder table) as 8-bit H.264."""
    _need(encoder)
    src = _make(tmp_path / f"src{suffix}", *VIDEO, "-c:v", encoder, *options, "-pix_fmt", pix_fmt)
    out = tmp_path / f"out{suffix}"
    done = watermark_video(src, out, PAYLOAD, key=KEY, visible={"seconds": None})["watermark"]
    (video,) = ff.probe(out).video
    assert (video.codec, video.pix_fmt) == (codec, pix_fmt)
    assert done["encoder"] == encoder and done["output_pix_fmt"] == pix_fmt and "codec_from" not in done
    assert _frames(out) == 25
    assert detect_video(out, key=KEY).payload == PAYLOAD
    assert detect_video_label(out).present


def test_watermark_overlay_keeps_chroma(tmp_path: Path, which_ffmpeg: str) -> None:
    """With the visible label, the watermark pass blended every frame in RGBA (``overlay=format=auto``
    picks rgba): chroma went YUV -> RGB -> YUV on the whole picture. In a lossless FFV1 4:4:4 file the
    chroma planes outside the label's plate must come out bit for bit."""
    _need("ffv1")
    src = _make(tmp_path / "src.mkv", *VIDEO, "-c:v", "ffv1", "-pix_fmt", "yuv444p")
    out = tmp_path / "out.mkv"
    done = watermark_video(src, out, PAYLOAD, key=KEY, visible={"seconds": None})
    x, y, w, h = done["visible"]["box"]

    def planes(path: Path) -> np.ndarray:
        args = [ff.ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                "-pix_fmt", "yuv444p", "-"]
        raw = subprocess.run(args, capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).reshape(3, 240, 320)

    before, after = planes(src), planes(out)
    keep = np.ones((240, 320), bool)
    keep[y:y + h, x:x + w] = False
    assert np.array_equal(before[1:, keep], after[1:, keep])
    assert not np.array_equal(before[0], after[0])  # the mark is in the luma


def test_encoder_choice_falls_back_where_the_container_or_ffmpeg_cannot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ProRes / FFV1 into MP4 (no muxer tag for them) or WebM, and a family whose encoder this ffmpeg
    lacks, fall back to H.264 (VP9 for WebM) and say so."""
    prores_mp4 = choose_encoder("prores", ".mp4")
    assert (prores_mp4.encoder, prores_mp4.fallback) == ("libx264", True)
    assert choose_encoder("ffv1", ".webm").encoder == "libvpx-vp9"
    monkeypatch.setattr(ff, "encoder_pix_fmts",
                        lambda name, exe=None: None if name == "libx265" else ("yuv420p",))
    choice = choose_encoder("hevc", ".mkv")
    assert (choice.encoder, choice.fallback) == ("libx264", True)
    assert nearest_pix_fmt("yuv422p10le", ("yuv420p", "yuv420p10le", "yuv422p")) == "yuv420p10le"
    assert nearest_pix_fmt("gbrp", ("yuv420p", "yuv444p")) == "yuv444p"
    assert nearest_pix_fmt("yuva420p", ("yuv420p", "yuva420p"), alpha=False) == "yuv420p"


@pytest.mark.parametrize("default", [True, False])
def test_visible_pass_keeps_matroska_video_default_flag(tmp_path: Path, which_ffmpeg: str,
                                                        default: bool) -> None:
    """The visible pass wrote the re-encoded Matroska video track with FlagDefault 0 (a filter output has no
    disposition), so a source's default video track stopped being the default; copied tracks kept theirs."""
    src = _make(tmp_path / "src.mkv", *VIDEO, *SOUND, "-f", "lavfi", "-i", "sine=frequency=880:duration=1",
                "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-c:a", "aac",
                "-disposition:v:0", "default" if default else "0", "-disposition:a:0", "0",
                "-disposition:a:1", "default")
    assert [s.default for s in ff.probe(src).streams] == [default, False, True]
    out = tmp_path / "out.mkv"
    add_video_label(src, out, seconds=None, preset="ultrafast")
    assert [s.default for s in ff.probe(out).streams] == [default, False, True]


def _mvhd_time(path: Path) -> str:
    """The movie header's creation time (UTC, ISO 8601 to the second)."""
    import datetime

    data = path.read_bytes()
    at = data.find(b"mvhd") + 4
    wide = data[at] == 1
    seconds = int.from_bytes(data[at + 4:at + (12 if wide else 8)], "big")
    when = datetime.datetime(1904, 1, 1) + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize("layer", ["visible", "watermark"])
def test_mp4_container_tags_are_not_doubled(tmp_path: Path, which_ffmpeg: str, layer: str) -> None:
    """ffmpeg's ``use_metadata_tags`` wrote ``major_brand``, ``minor_version``, ``compatible_brands`` and
    ``creation_time`` (which ffmpeg reads from ftyp and mvhd) as keys too. ffmpeg 9 reads both copies and
    joins them ("isom;isom"), so the soundtrack pass of the watermark layer (or any pass over a source
    that has those keys, such as a file labeled before) wrote the joined strings back, and "X;X" is no
    time: the movie's and tracks' creation dates became 0."""
    when = "2024-05-01T10:20:30.000000Z"
    src = _make(tmp_path / "src.mp4", *VIDEO, *SOUND, "-c:v", "libx264", "-c:a", "aac",
                "-metadata", f"creation_time={when}", "-metadata", "title=My Title",
                "-metadata", "com.example.custom=kept", "-movflags", "use_metadata_tags")
    assert b"creation_time" in mov_keys(src)  # as ffmpeg writes a custom key: the source has them too
    out = tmp_path / "out.mp4"
    if layer == "visible":
        add_video_label(src, out, seconds=None, preset="ultrafast")
    else:
        watermark_video(src, out, PAYLOAD, key=KEY)
    tags = ff.probe(out).metadata
    assert tags["creation_time"] == when and tags["major_brand"] == "isom", tags
    assert not [v for v in tags.values() if ";" in v], tags
    keys = mov_keys(out)
    assert b"creation_time" not in keys and b"major_brand" not in keys and b"com.example.custom" in keys
    assert ff.probe(out).video[0].metadata.get("creation_time") == when
    if layer == "watermark":  # the soundtrack pass reads the marked file again: the date must survive it
        mark_soundtrack(out, PAYLOAD, key=KEY)
    assert _mvhd_time(out) == when[:19]
