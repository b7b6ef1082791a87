"""Invisible video watermark: real round trips (labeler.watermark.video, detectors.watermark_video).

Files are made with ffmpeg; the whole module runs in about a minute on 2 cores."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from detectors import verify
from detectors.watermark import _z_min
from detectors.watermark_video import (
    FUTILE_FROM,
    FUTILE_MARGIN,
    MAX_FRAMES,
    _frames,
    _Search,
    _shrink,
    checkpoints,
    detect_video,
    rescale_candidates,
    snap_scale,
)
from labeler import AIGCLabel, label_file
from labeler.errors import LabelerError, UnsupportedFormat
from labeler.media.ffmpeg import ffmpeg_exe, probe
from labeler.media.video import video_info
from labeler.watermark import _scheme, payload_from_produce_id
from labeler.watermark.video import (
    NOISE_REF,
    SMALL_FRAME_STRENGTH,
    VIDEO_STRENGTH,
    VideoPattern,
    budget_strength,
    noise_sigma,
    watermark_video,
)

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "samples" / "clip.mp4"
PAN = ROOT.parent / "shared" / "corpus" / "video" / "pan-720p.mp4"
KEY = bytes(range(32))
RECORD = AIGCLabel("001191110102MACQD9K64010000", "vid-test-0001")
PAYLOAD = payload_from_produce_id(RECORD.produce_id)


def ff(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def packets_md5(path: Path, what: str = "a") -> str:
    """MD5 of a file's stream packets (``-c copy``), so two files' audio can be compared bit for bit."""
    args = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", f"0:{what}", "-c", "copy", "-f", "md5", "-"]
    out = subprocess.run(args, capture_output=True, check=True).stdout
    return out.decode().strip()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vwm")


@pytest.fixture(scope="module")
def labeled(folder: Path) -> Path:
    """samples/clip.mp4 labeled with the watermark and the metadata label."""
    dst = folder / "clip.labeled.mp4"
    label_file(CLIP, dst, RECORD, layers="watermark,metadata", key=KEY)
    return dst


@pytest.fixture(scope="module")
def synthetic(folder: Path) -> Path:
    """A 640x360 animation-like clip (testsrc2, 3 s, 25 fps) with a tone, watermarked."""
    src = folder / "testsrc2.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=3", "-f", "lavfi", "-i", "sine=d=3", "-c:v", "libx264",
       "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(src))
    dst = folder / "testsrc2.wm.mp4"
    watermark_video(src, dst, PAYLOAD, key=KEY)
    return dst


def test_label_then_verify_matches_metadata(labeled: Path) -> None:
    report = verify(labeled, key=KEY)
    wm = report.to_dict()["layers"]["watermark"]
    assert wm["present"] and wm["matches_metadata"] is True
    assert wm["payload"] == PAYLOAD.hex()
    assert wm["p_value"] <= 1e-6
    assert 1 <= wm["frames_read"] <= 8  # stops early on an intact mark
    assert report.verdict == "confirmed"


def test_soundtrack_marked_and_stream_layout(labeled: Path) -> None:
    # The soundtrack carries the audio mark now (tests/test_video_soundtrack.py): re-encoded once, with
    # the source's codec, rate and channels.
    assert packets_md5(labeled) != packets_md5(CLIP)
    src, out = probe(CLIP), probe(labeled)
    assert [(a.codec, a.sample_rate, a.channels) for a in out.audio] == [
        (a.codec, a.sample_rate, a.channels) for a in src.audio]
    assert [s.kind for s in out.streams] == [s.kind for s in src.streams]
    v_src, v_out = src.video[0], out.video[0]
    assert (v_out.width, v_out.height, v_out.frame_rate, v_out.pix_fmt) == (
        v_src.width, v_src.height, v_src.frame_rate, v_src.pix_fmt)  # yuvj420p (full range) kept
    assert abs(out.duration - src.duration) < 0.05


def test_wrong_key_not_found(labeled: Path) -> None:
    r = detect_video(labeled, key=b"another key, not the labeler's")
    assert not r.found and r.payload is None and r.p_value > 1e-6


@pytest.mark.parametrize("name, options", [
    ("crf28", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "28"]),
    ("excerpt", ["-ss", "1.0", "-t", "1", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]),
    ("downscale", ["-vf", "scale=480:270", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]),
    ("fps", ["-r", "30", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]),
])
def test_attacks_on_synthetic_clip(synthetic: Path, folder: Path, name: str, options: list[str]) -> None:
    out = folder / f"attack-{name}.mp4"
    ff("-i", str(synthetic), "-an", *options, str(out))
    r = detect_video(out, key=KEY)
    assert r.found and r.payload == PAYLOAD, (name, r)
    assert r.p_value <= 1e-6


def test_reencode_of_sample_clip(labeled: Path, folder: Path) -> None:
    # 320x240 is ~2 x 2 tiles: CRF 23 decodes; after CRF 28 only presence is shown (zero_bit_p_value),
    # the payload needs the larger frames of test_attacks_on_synthetic_clip (docs/watermark-video.md)
    out = folder / "clip-crf23.mp4"
    ff("-i", str(labeled), "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(out))
    r = detect_video(out, key=KEY)
    assert r.found and r.payload == PAYLOAD
    ff("-i", str(labeled), "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", str(out))
    assert detect_video(out, key=KEY).zero_bit_p_value <= 1e-6


def test_unmarked_clip_not_found() -> None:
    r = detect_video(CLIP, key=KEY)
    # the whole 4 s clip, or the futility checkpoint when its strongest z is far below what a payload needs
    assert not r.found and r.frames_read in (FUTILE_FROM, 100)


def test_unmarked_frames_stop_at_the_futility_checkpoint() -> None:
    """Clean frames (shifted noise, no mark) are declared absent after FUTILE_FROM frames, not MAX_FRAMES."""
    rng = np.random.default_rng(5)
    base = rng.normal(128, 20, (400, 560)).astype(np.float32)
    clean = np.clip(base, 0, 255).astype(np.uint8)
    frames = (clean[i % 40 : i % 40 + 360, 2 * (i % 40) : 2 * (i % 40) + 480] for i in range(MAX_FRAMES))
    scheme = _scheme("dwt")
    points = checkpoints(MAX_FRAMES)
    trials = 10**8  # z_min ~6.1; a clean sum's strongest z (largest of ~16,000 shifts) is ~4-4.7
    r = _Search([scheme], KEY, trials, 1e-6, 0, points).run(frames)
    assert not r.found and r.frames_read == FUTILE_FROM and r.z < _z_min(trials, 1e-6) - FUTILE_MARGIN


@pytest.mark.parametrize(("width", "height", "view"), [(1920, 1080, 3), (1924, 1082, 3), (1282, 722, 2)])
def test_decoder_side_shrink_is_the_exact_block_mean(folder: Path, width: int, height: int,
                                                      view: int) -> None:
    """ffmpeg's shrink to the view must give the frames _shrink makes of the full luma, bit for bit
    (the calibrated reads were measured on that view); sizes that are no multiple of the view are cropped."""
    clip = folder / f"grain-{width}x{height}.mp4"
    ff("-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25,noise=alls=12:allf=t", "-frames:v", "3",
       "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", str(clip))
    full = list(_frames(str(clip), height, width, 0))
    shrunk = list(_frames(str(clip), height, width, 0, view))
    assert len(full) == len(shrunk) == 3
    for y, v in zip(full, shrunk, strict=True):
        assert v.shape == (height // view, width // view)
        np.testing.assert_array_equal(v, _shrink(y, view))


def test_watermark_and_visible_in_one_pass(folder: Path) -> None:
    dst = folder / "both.mp4"
    result = label_file(CLIP, dst, RECORD, layers="watermark,visible,metadata", key=KEY)
    assert result.layers["watermark"]["frames"] == 100 and result.layers["visible"]["kind"] == "video-text"
    report = verify(dst, key=KEY).to_dict()["layers"]
    assert report["watermark"]["present"] and report["watermark"]["matches_metadata"] is True
    assert report["visible"]["present"]


def test_no_video_stream_is_one_line_error(folder: Path) -> None:
    audio = folder / "tone.m4a"
    ff("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(audio))
    with pytest.raises(UnsupportedFormat) as info:
        watermark_video(audio, folder / "x.mp4", PAYLOAD, key=KEY)
    assert "\n" not in str(info.value)
    with pytest.raises(UnsupportedFormat):
        detect_video(audio, key=KEY)
    assert not (folder / "x.mp4").exists()


def test_truncated_input_leaves_nothing(folder: Path) -> None:
    bad = folder / "truncated.mp4"
    bad.write_bytes(CLIP.read_bytes()[: CLIP.stat().st_size // 2])
    dst = folder / "truncated.out.mp4"
    with pytest.raises(LabelerError) as info:
        watermark_video(bad, dst, PAYLOAD, key=KEY)
    assert "\n" not in str(info.value)
    assert not dst.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".truncated.out")]


def test_one_frame_video_keeps_its_rate_and_reads_back(folder: Path) -> None:
    """A 1-frame video: the output keeps the frame's duration and rate (the raw frames' Matroska track
    carries DefaultDuration; without it the MP4 came out with duration 0 and rate 1/0, which video_info
    refuses), verify reads its mark, and it can be labeled again."""
    src = folder / "one.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-frames:v", "1", "-c:v", "libx264",
       "-pix_fmt", "yuv420p", str(src))
    dst = folder / "one.labeled.mp4"
    label_file(src, dst, RECORD, layers="watermark,metadata", key=KEY)
    info = video_info(dst)
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(0.04, abs=0.005)
    wm = verify(dst, key=KEY).to_dict()["layers"]["watermark"]
    assert wm["present"] and wm["matches_metadata"] is True and wm["frames_read"] == 1
    watermark_video(dst, folder / "one.again.mp4", PAYLOAD, key=KEY)  # its output is a readable video


def test_existing_output_refused(labeled: Path) -> None:
    with pytest.raises(LabelerError):
        watermark_video(CLIP, labeled, PAYLOAD, key=KEY)


def test_pattern_is_the_image_core_tile_at_a_uniform_amplitude() -> None:
    """At zoom 1 the change is the image core's tile times the strength everywhere (no texture mask), and
    marking a frame adds it rounded to levels, saturated."""
    from labeler.watermark import _pattern

    scheme, tile = _pattern(PAYLOAD, KEY, "dwt", 1.0)
    t = scheme.tile_px
    marker = VideoPattern.build(200, 300, PAYLOAD, KEY, method="dwt", strength=1.25, zoom=1)
    expected = np.tile(tile, (-(-200 // t), -(-300 // t)))[:200, :300] * 1.25
    np.testing.assert_allclose(marker.delta(), expected, atol=1e-5)
    y = np.random.default_rng(3).integers(0, 256, (200, 300), dtype=np.uint8)
    marked = marker.mark(y.copy())
    np.testing.assert_array_equal(marked, np.clip(y + np.rint(expected), 0, 255).astype(np.uint8))
    # the same change on a flat mid-grey and a flat dark frame (the image core would scale it by texture)
    grey, dark = marker.mark(np.full_like(y, 128)), marker.mark(np.full_like(y, 16))
    np.testing.assert_array_equal(grey.astype(int) - 128, dark.astype(int) - 16)


def test_budget_follows_the_grain_of_the_source() -> None:
    """noise_sigma reads white noise on a smooth picture back; the budget is the floor on clean frames and
    grows with grain."""
    rng = np.random.default_rng(11)
    ramp = np.add.outer(np.linspace(40, 200, 720), np.linspace(0, 30, 1280)).astype(np.float32)  # 720p
    clean = np.rint(ramp).astype(np.uint8)
    assert noise_sigma(clean) < 0.35  # rounding alone is 0.29 levels RMS
    assert budget_strength(clean) == pytest.approx(VIDEO_STRENGTH, abs=0.03)
    assert budget_strength(clean[:360, :640]) == pytest.approx(SMALL_FRAME_STRENGTH, abs=0.06)  # zoom 1
    grainy = np.clip(np.rint(ramp + rng.normal(0, 3.0, ramp.shape)), 0, 255).astype(np.uint8)
    assert noise_sigma(grainy) == pytest.approx(3.0, rel=0.15)
    assert budget_strength(grainy) == pytest.approx(VIDEO_STRENGTH * np.hypot(1, 3.0 / NOISE_REF), rel=0.1)


def test_checkpoints_and_scales() -> None:
    assert checkpoints(150) == [1, 2, 4, 8, 16, 32, 64, 128, 150]
    # 480p frames (view 1): a crop of a 720p source (zoom 2), 720p or 1080p -> 480p (x4/3), 2160p -> 480p
    cands = rescale_candidates(480, 1)
    assert all(any(abs(c - x) < 1e-9 for c in cands) for x in (2.0, 4 / 3, 480 / 2160 * 3))
    # 720p frames (halved view): 1080p -> 720p is 1.5, a crop of a 1080p source too
    assert 1.5 in rescale_candidates(720, 2)
    snapped = snap_scale(np.eye(2) * 1.49, 720, 2)  # an estimate near 1080p -> 720p
    assert snapped[0, 0] == pytest.approx(1.5)


@pytest.mark.skipif(not PAN.exists(), reason="shared corpus not present")
def test_corpus_pan_720p(folder: Path) -> None:
    dst = folder / "pan.wm.mp4"
    watermark_video(PAN, dst, PAYLOAD, key=KEY)
    attacked = folder / "pan.crf28.mp4"
    ff("-i", str(dst), "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", str(attacked))
    r = detect_video(attacked, key=KEY)
    assert r.found and r.payload == PAYLOAD


def test_ten_bit_source_is_converted_and_says_so(folder: Path) -> None:
    """A 10-bit source goes through the 8-bit watermark pass: the result says what it was converted
    from, and a warning says it (QA: the conversion was visible only in --json)."""
    src = folder / "ten-bit.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-pix_fmt", "yuv420p10le", "-c:v", "libx264",
       "-preset", "veryfast", str(src))
    assert probe(src).video[0].pix_fmt == "yuv420p10le"
    result = label_file(src, folder / "ten-bit.wm.mp4", RECORD, layers="watermark", key=KEY)
    assert result.layers["watermark"]["converted_from"] == "yuv420p10le"
    assert any("yuv420p10le frames were marked at 8 bits (yuv420p) and written as yuv420p10le" in w
               for w in result.warnings)
    # marked in 8 bits, written at 10 again (H.264 High 10, as the source; 8-bit until 2026-12-07)
    assert probe(folder / "ten-bit.wm.mp4").video[0].pix_fmt == "yuv420p10le"
    assert result.layers["watermark"]["output_pix_fmt"] == "yuv420p10le"
