"""Visible label on anamorphic video (pixels that are not square: a sample aspect ratio, SAR, not 1:1).

A player shows a 270x360 frame at SAR 4:3 as 360x360: the label must be sized on that picture (ink
>= 5 % of 360, not of 270), drawn there with upright glyphs (so squeezed by 3/4 in the stored pixels),
and the detector must read it in the same geometry. Until 2026-12-07 the SAR was not read: the label
was sized and drawn in stored pixels (3.75 % of the displayed shorter side, glyphs 33 % too wide).
Clips are 1 s, made in tmp_path with the ffmpeg under test (``-vf setsar=4/3``).
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES, ffmpeg_exe

from detectors.visible import detect_video_label
from labeler.media import probe, read_video_frames
from labeler.media.banner import parse_banner
from labeler.media.ffmpeg import ffmpeg_version
from labeler.media.video import displayed_size, video_info
from labeler.visible import add_video_label, place_label
from labeler.visible.video import label_rgba, video_plate

SAR = Fraction(4, 3)


def _clip(path: Path, width: int, height: int, *, sar: str = "4/3", source: str = "testsrc2=",
          rotate: int = 0) -> Path:
    """A 1 s, 25 fps H.264 clip of ``width`` x ``height`` stored pixels at sample aspect ratio ``sar``."""
    made = path.with_name("plain-" + path.name) if rotate else path
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"{source}s={width}x{height}:r=25:d=1", "-vf", f"setsar={sar}", "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", str(made)], check=True)
    if rotate:
        tag = (["-display_rotation", str(rotate), "-i", str(made)] if ffmpeg_version() >= (6, 0)
               else ["-i", str(made), "-metadata:s:v:0", f"rotate={rotate}"])
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *tag, "-c", "copy",
                        str(path)], check=True)
    return path


def _plate(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` in stored pixels of where ``after`` differs from ``before`` (the drawn plate)."""
    changed = np.abs(after.astype(int) - before.astype(int)) > 12
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def test_banner_reads_the_sample_aspect_ratio() -> None:
    head = "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.mp4':\n  Duration: 00:00:01.00, start: 0.000000\n"
    line = ("  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), {}, "
            "4147 kb/s, 25 fps, 25 tbr, 12800 tbn (default)\n")
    cases = {"1440x1080 [SAR 4:3 DAR 16:9]": Fraction(4, 3), "720x576 [SAR 64:45 DAR 16:9]": Fraction(64, 45),
             "320x240 [SAR 1:1 DAR 4:3]": None, "320x240": None, "320x240 [SAR 0:1 DAR 0:1]": None,
             # the container's SAR (Matroska display size, MP4 pasp) wins over the codec's, as in ffmpeg
             "360x270 [SAR 4:3 DAR 16:9], SAR 3:2 DAR 2:1": Fraction(3, 2),
             "720x576, SAR 64:45 DAR 16:9": Fraction(64, 45)}
    for size, sar in cases.items():
        (stream,) = parse_banner(head + line.format(size)).streams
        assert stream.sample_aspect_ratio == sar, size
        assert (stream.width, stream.fps, stream.bitrate) == (int(size.split("x")[0]), 25.0, 4147000)


def test_video_info_carries_the_sar_and_the_displayed_size(tmp_path: Path, which_ffmpeg: str) -> None:
    info = video_info(_clip(tmp_path / "wide.mp4", 360, 270))
    assert info.sample_aspect_ratio == SAR and (info.width, info.height) == (360, 270)
    assert displayed_size(info) == (270, 480)
    # A quarter turn: upright 480 wide, 640 high, pixels 3:4 (ffmpeg's autorotation inverts the SAR).
    turned = video_info(_clip(tmp_path / "turned.mp4", 640, 480, rotate=90))
    assert turned.sample_aspect_ratio == SAR and abs(turned.rotation) == 90
    assert displayed_size(turned) == (640, 360)
    assert video_info(SAMPLES / "clip.mp4").sample_aspect_ratio is None  # square: as before
    # VP9 has no SAR of its own: WebM carries it in the container (a part of its own in the banner).
    webm = tmp_path / "wide.webm"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=360x270:r=25:d=0.2", "-vf", "setsar=4/3", "-c:v", "libvpx-vp9", "-deadline",
                    "realtime", "-cpu-used", "8", str(webm)], check=True)
    assert displayed_size(video_info(webm)) == (270, 480)
    # A tag far beyond any real format is damage, not a geometry to draw on.
    assert video_info(_clip(tmp_path / "odd.mp4", 320, 240, sar="100/1")).sample_aspect_ratio is None


def test_square_pixels_keep_their_plate() -> None:
    info = video_info(SAMPLES / "clip.mp4")
    placement, rgba, box = video_plate(info, None, "AI生成")
    assert box == placement.box == place_label(240, 320, "AI生成").box
    assert np.array_equal(rgba, label_rgba(place_label(240, 320, "AI生成"), "light"))


@pytest.mark.parametrize(("width", "height", "shown"), [(270, 360, (360, 360)), (360, 270, (270, 480))])
def test_label_is_placed_on_the_displayed_picture(tmp_path: Path, which_ffmpeg: str, width: int, height: int,
                                                  shown: tuple[int, int]) -> None:
    src = _clip(tmp_path / "src.mp4", width, height, source="color=c=gray:")
    out = tmp_path / "out.mp4"
    result = add_video_label(src, out, seconds=2.0)
    expected = place_label(*shown, "AI生成")
    assert result["box"] == expected.box and result["sample_aspect_ratio"] == "4:3"
    assert result["height_ratio"] >= 0.05 and expected.ink_box[3] >= 0.05 * min(shown)
    # Drawn squeezed by 3/4 in the stored pixels, at x / SAR: a player stretches it back to `expected`.
    x, y, w, h = expected.box
    before, after = next(read_video_frames(src, pix_fmt="gray")), next(read_video_frames(out, pix_fmt="gray"))
    px, py, pw, ph = _plate(before, after)
    assert abs(px - x / SAR) <= 2 and abs(pw - w / SAR) <= 2, (px, pw, x, w)
    assert abs(py - y) <= 2 and abs(ph - h) <= 2
    stream = probe(out).video[0]
    assert (stream.width, stream.height, stream.sample_aspect_ratio) == (width, height, SAR)  # SAR kept


def test_labels_are_found_in_displayed_geometry(tmp_path: Path) -> None:
    src = _clip(tmp_path / "src.mp4", 270, 360)
    out = tmp_path / "out.mp4"
    made = add_video_label(src, out, seconds=2.0)
    found = detect_video_label(out, intervals=False)
    assert found.present and found.position == "bottom-right" and found.score >= 0.7
    assert abs(found.height_ratio - made["height_ratio"]) <= 0.006
    assert all(abs(a - b) <= 4 for a, b in zip(found.box, made["box"], strict=True)), (found.box, made["box"])
    # The same picture labelled with square pixels, then stored squeezed (as a broadcaster would): the
    # detector reports the label as shown, not its squeezed stored size (ink / 270 = 6.7 % before).
    square = _clip(tmp_path / "square.mp4", 360, 360, sar="1")
    labelled, squeezed = tmp_path / "square-labelled.mp4", tmp_path / "squeezed.mp4"
    add_video_label(square, labelled, seconds=2.0)
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(labelled), "-vf",
                    "scale=270:360,setsar=4/3", "-c:v", "libx264", "-crf", "18", str(squeezed)], check=True)
    seen = detect_video_label(squeezed, intervals=False)
    assert seen.present and abs(seen.height_ratio - 0.05) <= 0.006
    assert all(abs(a - b) <= 4 for a, b in zip(seen.box, place_label(360, 360, "AI生成").box, strict=True))


def test_turned_anamorphic_video(tmp_path: Path, which_ffmpeg: str) -> None:
    src = _clip(tmp_path / "turned.mp4", 640, 480, rotate=90)  # upright 480x640 at 3:4: shown 360x640
    out = tmp_path / "out.mp4"
    made = add_video_label(src, out, seconds=2.0)
    assert made["box"] == place_label(640, 360, "AI生成").box
    stream = probe(out).video[0]
    assert (stream.width, stream.height, stream.sample_aspect_ratio) == (480, 640, 1 / SAR)
    found = detect_video_label(out, intervals=False)
    assert found.present and abs(found.height_ratio - made["height_ratio"]) <= 0.006


def test_watermark_pass_still_marks_an_anamorphic_clip(tmp_path: Path) -> None:
    from detectors.watermark_video import detect_video
    from labeler.watermark.video import watermark_video

    key, payload = b"anamorphic-test-key-0123456789ab", b"SAR-4:3!"
    src = _clip(tmp_path / "src.mp4", 360, 270)
    watermark_video(src, tmp_path / "marked.mp4", payload, key=key)
    found = detect_video(tmp_path / "marked.mp4", key=key)
    assert found.found and found.payload == payload
    # the pass pipes raw frames, which carry no SAR: the output was 1:1, shown at the wrong shape
    assert video_info(tmp_path / "marked.mp4").sample_aspect_ratio == SAR


def test_watermark_pass_draws_the_visible_label_on_the_displayed_picture(tmp_path: Path) -> None:
    """``--layers visible,watermark``: the label drawn by the watermark pass is placed as the visible
    pass places it (>= 5 % of the displayed shorter side, glyphs squeezed into stored pixels)."""
    from labeler.watermark.video import watermark_video

    src = _clip(tmp_path / "tall.mp4", 270, 360)  # shown 360 x 360
    done = watermark_video(src, tmp_path / "both.mp4", b"SAR-4:3!", key=b"anamorphic-test-key-0123456789ab",
                           visible={"seconds": None})
    plain = add_video_label(src, tmp_path / "visible.mp4", whole=True)
    assert done["visible"]["box"] == plain["box"] and done["visible"]["sample_aspect_ratio"] == "4:3"
    assert done["visible"]["height_ratio"] >= 0.05
    assert video_info(tmp_path / "both.mp4").sample_aspect_ratio == SAR


def test_the_server_page_box_is_found_on_the_displayed_first_frame(tmp_path: Path) -> None:
    """The page's box search ran on the stored-pixel first frame, where the un-squeezed template of an
    anamorphic label does not match: no box was drawn."""
    from labeler.server.jobs import _visible_box

    src = _clip(tmp_path / "wide.mp4", 360, 270)  # shown 480 x 270
    labeled = tmp_path / "labeled.mp4"
    add_video_label(src, labeled, whole=True)
    report = {"medium": "video", "layers": {"visible": {"present": True, "text": "AI生成"}}}
    box = _visible_box(str(labeled), report)
    assert box is not None and (box["width"], box["height"]) == (480, 270)
    assert box["x"] > 240 and box["y"] > 135  # bottom-right of the picture as shown
