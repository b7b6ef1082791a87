"""Sources the watermark pass converts or passes through: RGB frames, VP9 alpha, and detect_video's
argument checks. Every input is made here with encoders both the system ffmpeg and the imageio-ffmpeg
wheel's build have (libx264rgb, libvpx-vp9, ffv1, libopus)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from detectors import verify
from detectors.watermark_video import detect_video
from labeler import AIGCLabel, label_file
from labeler.media.ffmpeg import ffmpeg_exe, probe
from labeler.watermark.payload import WatermarkError

KEY = bytes(range(32))
RECORD = AIGCLabel("001191110102MACQD9K64010000", "vid-formats-0001")


def ff(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def alpha_mode(path: Path) -> str | None:
    """The stream's alpha_mode tag (Matroska tag names keep the case they were written in)."""
    return {k.lower(): v for k, v in probe(path).video[0].metadata.items()}.get("alpha_mode")


def alpha_planes(path: Path) -> np.ndarray:
    """Every frame's alpha plane, read with libvpx's decoder (ffmpeg's own VP9 decoder ignores it)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-c:v", "libvpx-vp9", "-i", str(path), "-map", "0:v",
                          "-vf", "alphaextract", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt",
                          "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, 240, 320).astype(np.int16)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vwm-formats")


@pytest.fixture(scope="module")
def alpha_webm(folder: Path) -> Path:
    """VP9 + alpha (alpha_mode=1) with Opus sound; the alpha is uniform per frame and steps by 10 levels
    a frame, so an alpha plane put on the wrong frame shows."""
    src = folder / "alpha.webm"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1.2", "-f", "lavfi",
       "-i", "color=c=black:s=320x240:r=25:d=1.2,format=gray,geq=lum='40+mod(N*10\\,200)'",
       "-f", "lavfi", "-i", "sine=d=1.2", "-filter_complex", "[0:v][1:v]alphamerge,format=yuva420p[v]",
       "-map", "[v]", "-map", "2:a", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
       "-c:a", "libopus", str(src))
    assert alpha_mode(src) == "1"
    return src


def test_rgb_h264_is_converted_tagged_and_verifies(folder: Path) -> None:
    """An RGB H.264 source (libx264rgb, colorspace gbr) was refused by the encoder ("error setting
    option colorspace to value gbr"): now converted to yuv420p, tagged with the matrix the conversion
    used (BT.601, limited range), with a warning; watermark and visible label in one pass."""
    src = folder / "rgb.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-c:v", "libx264rgb", "-preset", "veryfast",
       "-pix_fmt", "rgb24", str(src))
    assert probe(src).video[0].color_space == "gbr"
    dst = folder / "rgb.labeled.mkv"
    result = label_file(src, dst, RECORD, layers="watermark,visible,metadata", key=KEY)
    assert result.layers["watermark"]["converted_from"] == "gbrp"
    assert any("gbrp frames were written as 8-bit yuv420p" in w for w in result.warnings)
    video = probe(dst).video[0]
    assert (video.pix_fmt, video.color_space, video.color_range) == ("yuv420p", "smpte170m", "tv")
    report = verify(dst, key=KEY).to_dict()
    assert report["verdict"] == "confirmed"
    assert report["layers"]["watermark"]["matches_metadata"] is True
    assert report["layers"]["visible"]["present"] is True


def test_vp9_alpha_is_kept_frame_for_frame(alpha_webm: Path, folder: Path) -> None:
    """VP9 alpha came out without its alpha plane (alpha_mode gone), silently. Now the plane of each
    source frame goes with the same marked frame."""
    dst = folder / "alpha.labeled.webm"
    result = label_file(alpha_webm, dst, RECORD, layers="watermark,metadata", key=KEY)
    assert result.layers["watermark"]["alpha"] == "kept"
    assert "converted_from" not in result.layers["watermark"] and result.warnings == []
    assert alpha_mode(dst) == "1"
    before, after = alpha_planes(alpha_webm), alpha_planes(dst)
    assert before.shape == after.shape
    # lossy, but a frame's alpha is within a level or two; one frame off would be 10 levels
    assert float(np.abs(before - after).mean()) < 2.0
    report = verify(dst, key=KEY).to_dict()
    assert report["verdict"] == "confirmed" and report["layers"]["watermark"]["matches_metadata"] is True


def test_visible_label_over_a_transparent_video_stays_visible(folder: Path) -> None:
    """With the alpha kept, the label's plate is drawn after the alpha merge: over a fully transparent
    frame its box is opaque where the plate is, not as transparent as the source."""
    src = folder / "transparent.webm"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=0.6", "-f", "lavfi",
       "-i", "color=c=black:s=320x240:r=25:d=0.6,format=gray", "-filter_complex",
       "[0:v][1:v]alphamerge,format=yuva420p[v]", "-map", "[v]", "-c:v", "libvpx-vp9",
       "-deadline", "realtime", "-cpu-used", "8", str(src))
    dst = folder / "transparent.labeled.webm"
    result = label_file(src, dst, RECORD, layers="watermark,visible,metadata", key=KEY)
    assert result.layers["watermark"]["alpha"] == "kept"
    x, y, w, h = result.layers["visible"]["box"]
    first = alpha_planes(dst)[0]
    assert float(first.mean()) < 40 and float(first[y:y + h, x:x + w].mean()) > 120


def test_alpha_that_cannot_be_kept_is_reported(folder: Path) -> None:
    """An alpha channel the pass cannot write back (FFV1 yuva420p, re-encoded with x264) is dropped:
    the result says so and the warning names the format it came from."""
    src = folder / "alpha-ffv1.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=0.6", "-vf", "format=yuva420p", "-c:v", "ffv1",
       str(src))
    result = label_file(src, folder / "alpha-ffv1.labeled.mkv", RECORD, layers="watermark", key=KEY)
    assert result.layers["watermark"]["alpha"] == "dropped"
    assert any("yuva420p frames were written as 8-bit yuv420p" in w for w in result.warnings)


def test_visible_only_label_keeps_vp9_alpha(alpha_webm: Path, folder: Path) -> None:
    """The visible layer alone (its own ffmpeg overlay pass) wrote VP9 alpha as opaque H.264-style
    yuv420p VP9 with no alpha_mode, silently; now the plane goes with each frame, as in the watermark
    pass, and a source whose alpha cannot be kept is reported."""
    dst = folder / "alpha.visible.webm"
    result = label_file(alpha_webm, dst, RECORD, layers="visible,metadata")
    assert result.layers["visible"]["alpha"] == "kept" and result.warnings == []
    assert alpha_mode(dst) == "1"
    before, after = alpha_planes(alpha_webm), alpha_planes(dst)
    x, y, w, h = result.layers["visible"]["box"]
    outside = np.ones(before.shape[1:], bool)
    outside[y:y + h, x:x + w] = False
    assert before.shape == after.shape and float(np.abs(before - after)[:, outside].mean()) < 2.0
    assert float(after[0, y:y + h, x:x + w].mean()) > float(before[0, y:y + h, x:x + w].mean()) + 40
    ffv1 = folder / "alpha-ffv1-visible.mkv"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=0.6", "-vf", "format=yuva420p", "-c:v", "ffv1",
       str(ffv1))
    dropped = label_file(ffv1, folder / "alpha-ffv1.visible.mkv", RECORD, layers="visible")
    assert dropped.layers["visible"]["alpha"] == "dropped"
    assert any("alpha channel was dropped" in w for w in dropped.warnings)


def _streams(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Each stream's kind and tags (language, title, handler name), in file order."""
    return [(s.kind, {"language": s.language, **{k.lower(): v for k, v in s.metadata.items()
                                                 if k.lower() in ("title", "handler_name")}})
            for s in probe(path).streams]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("layers", ["watermark,metadata", "visible"])
def test_stream_tags_and_order_kept(folder: Path, suffix: str, layers: str) -> None:
    """The marked frames (from a pipe) and the marked soundtrack came out with no tags of their own: the
    video's and the sound's language and title were lost, and the soundtrack moved after a cover picture.
    Now every stream keeps its place and its tags, in either pass."""
    src = folder / f"tagged{suffix}"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3", "-f", "lavfi", "-i", "sine=f=440:d=3",
       "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-metadata:s:v:0", "language=jpn",
       "-metadata:s:a:0", "language=fra", "-metadata:s:a:0", "title=Narration",
       "-metadata:s:a:0", "handler_name=Narration", str(src))
    before = _streams(src)
    assert before[1][1]["language"] == "fra" and before[0][1]["language"] == "jpn"
    dst = folder / f"tagged.{layers.replace(',', '-')}{suffix}"
    result = label_file(src, dst, RECORD, layers=layers, key=KEY)
    if "watermark" in layers:
        assert result.layers["watermark"]["audio"] == "marked"
    assert _streams(dst) == before


def _cover(path: Path) -> bytes:
    """The attached picture's bytes as stored (stream copy)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:1", "-c", "copy",
                          "-frames:v", "1", "-f", "image2", "-"], capture_output=True, check=True).stdout
    return out


@pytest.mark.parametrize("layers", ["watermark,metadata", "visible"])
def test_mp4_cover_picture_kept(folder: Path, layers: str) -> None:
    """An MP4 video's cover picture (iTunes covr) was dropped by both passes: ffmpeg writes no covr once it
    keeps custom tag keys (use_metadata_tags). The source's cover item is put back byte for byte."""
    from labeler.media.mp4_itunes import itunes_items

    plain = folder / "cover-plain.mp4"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-f", "lavfi", "-i", "sine=d=2", "-c:v", "libx264",
       "-preset", "veryfast", "-c:a", "aac", str(plain))
    src = folder / "cover.mp4"
    photo = Path(__file__).parents[1] / "samples" / "photo.jpg"
    ff("-i", str(plain), "-i", str(photo), "-map", "0", "-map", "1", "-c", "copy",
       "-disposition:2", "attached_pic", str(src))
    assert len(itunes_items(src)) == 1
    dst = folder / f"cover.{layers.replace(',', '-')}.mp4"
    label_file(src, dst, RECORD, layers=layers, key=KEY)
    assert itunes_items(dst) == itunes_items(src) and _cover(dst) == _cover(src)
    assert [s.attached_pic for s in probe(dst).streams] == [False, False, True]
    if "watermark" in layers:
        report = verify(dst, key=KEY).to_dict()
        assert report["verdict"] == "confirmed" and report["layers"]["watermark"]["matches_metadata"] is True


@pytest.mark.parametrize("layers", ["watermark,metadata", "visible"])
def test_matroska_cover_attachment_stays_an_attachment(folder: Path, layers: str) -> None:
    """A Matroska cover attachment came out of both passes (and the soundtrack's) as a one-frame MJPEG
    video track: ffmpeg remuxes a picture attachment so. It is now attached again, bytes unchanged."""
    src = folder / "attached.mkv"
    photo = Path(__file__).parents[1] / "samples" / "photo.jpg"
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3", "-f", "lavfi", "-i", "sine=d=3", "-c:v", "libx264",
       "-preset", "veryfast", "-c:a", "aac", "-attach", str(photo), "-metadata:s:t:0", "mimetype=image/jpeg",
       "-metadata:s:t:0", "filename=cover.jpg", str(src))
    dst = folder / f"attached.{layers.replace(',', '-')}.mkv"
    result = label_file(src, dst, RECORD, layers=layers, key=KEY)
    if "watermark" in layers:
        assert result.layers["watermark"]["audio"] == "marked"
    streams = probe(dst).streams
    kinds = [(s.kind, s.attached_pic) for s in streams]
    assert kinds == [("video", False), ("audio", False), ("video", True)]
    assert {k.lower(): v for k, v in streams[2].metadata.items()}["filename"] == "cover.jpg"
    assert _cover(dst) == photo.read_bytes()


@pytest.mark.parametrize("layers", ["watermark,metadata", "visible"])
def test_hdr_colour_tags_kept_and_bit_depth_change_warned(folder: Path, layers: str) -> None:
    """The watermark pass wrote a BT.2020 / PQ source with primaries and transfer 'unknown' (players then
    show it as SDR), and the visible pass turned 10-bit into 8-bit without a word (QA). Since 2026-12-07
    both write the source's 10 bits again (FFV1 kept); the watermark pass marks at 8 bits and warns."""
    src = folder / "hdr.mkv"
    # setparams tags the frames (ffmpeg 7 takes the stream's tags from them), the options the stream (5.1)
    ff("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1", "-vf",
       "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv,format=yuv420p10le",
       "-c:v", "ffv1", "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
       "-color_range", "tv", str(src))
    before = probe(src).video[0]
    assert (before.color_primaries, before.color_trc) == ("bt2020", "smpte2084")
    dst = folder / f"hdr.{layers.replace(',', '-')}.mkv"
    result = label_file(src, dst, RECORD, layers=layers, key=KEY)
    after = probe(dst).video[0]
    assert (after.color_space, after.color_primaries, after.color_trc, after.color_range) == (
        "bt2020nc", "bt2020", "smpte2084", "tv")
    assert after.codec == "ffv1" and after.pix_fmt == "yuv420p10le"
    marked = "watermark" in layers
    note = "yuv420p10le frames were marked at 8 bits (yuv420p) and written as yuv420p10le"
    assert any(note in w for w in result.warnings) == marked


@pytest.mark.parametrize("layers", ["watermark,metadata", "visible,metadata"])
def test_matroska_output_is_reproducible(folder: Path, layers: str) -> None:
    """The same MKV labeled twice gave files 60 bytes apart (the muxer's random segment and track UIDs),
    which defeats caches and de-duplication (QA); the passes now write Matroska bit-exact."""
    clip = Path(__file__).parents[1] / "samples" / "clip.mkv"
    outs = [folder / f"again-{n}.{layers.replace(',', '-')}.mkv" for n in (1, 2)]
    for out in outs:
        label_file(clip, out, RECORD, layers=layers, key=KEY)
    assert outs[0].read_bytes() == outs[1].read_bytes()


@pytest.mark.parametrize("max_frames", [0, -1, 2.5, True])
def test_detect_video_refuses_max_frames_under_one(alpha_webm: Path, max_frames: object) -> None:
    # 0 read the whole video, -1 answered "no frame could be read"
    with pytest.raises(WatermarkError, match="max_frames must be .* at least 1"):
        detect_video(alpha_webm, key=KEY, max_frames=max_frames)  # type: ignore[arg-type]


def test_detect_video_refuses_bytes_in_one_line(alpha_webm: Path) -> None:
    data = alpha_webm.read_bytes()
    with pytest.raises(WatermarkError) as caught:
        detect_video(data, key=KEY)  # type: ignore[arg-type]
    message = str(caught.value)
    assert f"not {len(data)} bytes" in message and len(message) < 200 and "\n" not in message


def test_detect_video_max_frames_one_reads_one_frame(alpha_webm: Path) -> None:
    assert detect_video(alpha_webm, key=KEY, max_frames=1).frames_read == 1
