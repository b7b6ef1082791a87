"""QA of the video pixel passes' leftovers (session 39): cut AVI / FLV, chroma layouts, extra streams.

* The visible-only pass labeled an AVI or FLV cut short with exit 0 (``stages._require_complete``
  checked MP4 and Matroska only); a cut AVI was taken for one holding a C2PA manifest (c2pa-rs refuses
  a RIFF form that runs past the end), so ``aigc label`` warned the manifest would no longer match.
* 4:4:0 frames were marked as 4:2:2 (half their horizontal chroma lost even in lossless FFV1, with a
  "marked at 8 bits" warning for an 8-bit source); 4:1:1 (DV) went to 4:2:0, where 4:2:2 keeps it all.
* A second video stream was copied unmarked without a word; a frame size change mid-stream was scaled
  to the first size; a 45-degree display rotation was dropped; all without a word.
* ``watermark_video`` / ``add_video_label`` wrote a PNG named ``.mp4`` as a one-frame H.264 MP4.
* A verify read that stopped on a cut ended quietly (``frames_read`` 22 of 25, nothing said).

Clips are made with ffmpeg inside the tests (at most 256 x 192, under 1 s).
"""

from __future__ import annotations

import math
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from labeler import AIGCLabel, label_file
from labeler.errors import CorruptFile, InvalidArgument, UnsupportedFormat
from labeler.media.video_encoders import loses, nearest_pix_fmt, overlay_format
from labeler.watermark import payload_from_produce_id
from labeler.watermark.video import watermark_video
from labeler.watermark.video_commands import marked_pix_fmt
from tests.conftest import ffmpeg_exe, run_ffmpeg

KEY = bytes(range(32))
LABEL = AIGCLabel(content_producer="qa-s39", produce_id="qa-s39-leftovers")
PAYLOAD = payload_from_produce_id("qa-s39-leftovers")
X264 = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "yuv420p10le",
        "yuv422p10le", "yuv444p10le", "gray")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qa_s39_leftovers")


def _clip(path: Path, size: str = "160x120", seconds: str = "0.4", *extra: str) -> Path:
    return run_ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}", *extra, path)


def _cut_avi_flv(folder: Path, suffix: str) -> Path:
    """A 1 s H.264 + AAC clip as AVI / FLV, cut inside its last chunk / tag (the soundtrack's end)."""
    base = folder / "base.mp4"
    if not base.exists():
        run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", "-f", "lavfi",
                   "-i", "sine=duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                   "-shortest", str(base))
    whole = run_ffmpeg("-i", base, "-c", "copy", folder / f"whole{suffix}")
    data = whole.read_bytes()
    last = struct.unpack(">I", data[-4:])[0] + 4 if suffix == ".flv" else 400
    cut = folder / f"cut{suffix}"
    cut.write_bytes(data[:len(data) - last // 2])
    return cut


@pytest.mark.parametrize("suffix", [".avi", ".flv"])
def test_visible_pass_refuses_a_cut_avi_or_flv(folder: Path, tmp_path: Path, suffix: str) -> None:
    src = _cut_avi_flv(folder, suffix)
    dst = tmp_path / f"out{suffix}"
    with pytest.raises(CorruptFile, match="cut short") as info:
        label_file(src, dst, LABEL, layers=["visible"])
    assert "\n" not in str(info.value)
    assert not dst.exists()


def test_a_cut_avi_is_not_taken_for_one_with_a_c2pa_manifest(folder: Path, tmp_path: Path) -> None:
    from labeler.provenance.c2pa_sign import holds_manifest, local_signer, sign_file
    from labeler.provenance.pki import init_test_pki

    whole = folder / "whole.avi"
    if not whole.exists():
        _cut_avi_flv(folder, ".avi")
    data = whole.read_bytes()
    for share in (0.5, 0.97):
        assert holds_manifest(data[:int(len(data) * share)], "avi") is False
    # a signed AVI (c2pa-rs appends its C2PA chunk) cut inside that chunk still holds it, damaged
    pki = init_test_pki(tmp_path / "pki")
    signed = tmp_path / "signed.avi"
    sign_file(whole, signed, signer=local_signer(pki.chain, pki.signer_key), label=LABEL, fmt="avi")
    signed_data = signed.read_bytes()
    assert holds_manifest(signed_data, "avi") is True
    assert holds_manifest(signed_data[:-100], "avi") is True


def test_chroma_layouts_keep_each_axis() -> None:
    # 4:4:0 holds full width: 4:2:2 halves it, 4:4:4 keeps it; 4:1:1 holds full height: 4:2:2 keeps it
    assert nearest_pix_fmt("yuv440p", X264) == "yuv444p"
    assert nearest_pix_fmt("yuv411p", X264) == "yuv422p"
    assert nearest_pix_fmt("yuv440p10le", X264) == "yuv444p10le"
    assert loses("yuv440p", "yuv422p") and loses("yuv411p", "yuv420p") and loses("yuv422p", "yuv440p")
    assert not loses("yuv411p", "yuv422p") and not loses("yuv440p", "yuv444p")
    assert not loses("yuv410p", "yuv420p")
    assert overlay_format("yuv440p") == "yuv444" and overlay_format("yuv411p") == "yuv422"
    assert marked_pix_fmt("yuv440p") == "yuv440p" and marked_pix_fmt("yuv440p10le") == "yuv440p"
    assert marked_pix_fmt("yuv411p") == "yuv411p"
    # unchanged where the rank was right
    assert nearest_pix_fmt("yuv422p10le", ("yuv420p", "yuv420p10le", "yuv422p")) == "yuv420p10le"
    assert nearest_pix_fmt("gray", X264) == "gray"
    assert nearest_pix_fmt("gray10be", ("yuv420p", "yuv444p")) == "yuv420p"


def _planes(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "yuv440p", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, w * h * 2)  # luma w*h, two chroma planes w*h/2 each


def test_ffv1_440_keeps_its_chroma_through_the_watermark(folder: Path, tmp_path: Path) -> None:
    src = _clip(folder / "c440.mkv", "256x192", "0.2", "-c:v", "ffv1", "-pix_fmt", "yuv440p")
    dst = tmp_path / "marked.mkv"
    result = label_file(src, dst, LABEL, layers=["watermark"], key=KEY)
    assert not any("8 bits" in w or "yuv422p" in w for w in result.warnings), result.warnings
    before, after = _planes(src, 256, 192), _planes(dst, 256, 192)
    assert before.shape == after.shape
    # only luma is marked: the chroma planes of lossless FFV1 come out bit for bit
    assert np.array_equal(before[:, 256 * 192:], after[:, 256 * 192:])
    assert not np.array_equal(before[:, :256 * 192], after[:, :256 * 192])


def test_a_second_video_stream_is_named(folder: Path, tmp_path: Path) -> None:
    src = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi",
                     "-i", "mandelbrot=size=160x120:rate=25", "-map", "0", "-map", "1", "-t", "0.3",
                     "-c:v", "libx264", "-pix_fmt", "yuv420p", folder / "two.mkv")
    result = label_file(src, tmp_path / "out.mkv", LABEL, layers=["visible"])
    notes = [w for w in result.warnings if "other video stream" in w]
    assert len(notes) == 1 and "stream 1 (h264, 160x120)" in notes[0] and "visible" in notes[0]


def test_a_frame_size_change_mid_stream_is_refused(folder: Path, tmp_path: Path) -> None:
    parts = [_clip(folder / f"part{i}.ts", size, "0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p")
             for i, size in enumerate(("160x120", "320x240"))]
    spliced = folder / "spliced.ts"
    spliced.write_bytes(b"".join(p.read_bytes() for p in parts))
    src = run_ffmpeg("-i", spliced, "-c", "copy", folder / "spliced.mkv")
    dst = tmp_path / "out.mkv"
    wording = r"changes frame size mid-stream \(160x120, then 320x240"
    with pytest.raises(UnsupportedFormat, match=wording) as info:
        label_file(src, dst, LABEL, layers=["visible"])
    assert "\n" not in str(info.value)
    assert not dst.exists()


def test_a_45_degree_display_rotation_is_named(folder: Path, tmp_path: Path) -> None:
    plain = _clip(folder / "upright.mp4", "160x120", "0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p")
    data = bytearray(plain.read_bytes())
    at = data.find(b"tkhd") - 4
    matrix = at + (48 if data[at + 8] == 0 else 60)  # tkhd's matrix, after the version 0 / 1 fields
    c = s = round(math.cos(math.radians(45)) * 65536)
    data[matrix:matrix + 36] = struct.pack(">9i", c, s, 0, -s, c, 0, 0, 0, 1 << 30)
    src = folder / "turned.mp4"
    src.write_bytes(bytes(data))
    result = label_file(src, tmp_path / "out.mp4", LABEL, layers=["visible"])
    assert any("display rotation of -45 degrees" in w for w in result.warnings), result.warnings


def test_the_api_refuses_a_png_named_mp4(folder: Path, tmp_path: Path) -> None:
    from labeler.visible import add_video_label

    png = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=256x192", "-frames:v", "1", folder / "still.png")
    src = folder / "still.mp4"
    src.write_bytes(png.read_bytes())
    expected = ("output extension '.mp4' does not fit the input's format (png); labeling never converts "
                "formats")  # aigc label's own words
    passes = (lambda dst: watermark_video(src, dst, PAYLOAD, key=KEY), lambda dst: add_video_label(src, dst))
    for write in passes:
        dst = tmp_path / "out.mp4"
        with pytest.raises(InvalidArgument) as info:
            write(dst)
        assert str(info.value) == expected
        assert not dst.exists()


def test_a_verify_read_cut_short_says_so(folder: Path) -> None:
    from detectors import verify
    from detectors.watermark_video import READ_STOPPED, detect_video

    whole = _clip(folder / "plain.mkv", "256x192", "1", "-c:v", "ffv1")
    data = whole.read_bytes()
    cut = folder / "plain_cut.mkv"
    cut.write_bytes(data[:int(len(data) * 0.88)])
    result = detect_video(cut, key=KEY)
    assert not result.found and 0 < result.frames_read < 25
    assert result.read_error is not None and result.read_error.startswith(READ_STOPPED)
    assert "cut short" in result.read_error
    report = verify(cut, key=KEY, layers=["watermark"])
    assert any(w.startswith("the watermark layer was examined only in part") for w in report.warnings), \
        report.warnings
    # a whole file reads to its end with no such note
    assert detect_video(whole, key=KEY).read_error is None
