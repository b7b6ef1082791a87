"""QA: what the video passes (visible label, watermark) keep of what a source's coded frames carry and its
stream header does not: HDR10 static metadata (mastering display, content light level) and interlacing.

Sources are 1 s 320 x 240 testsrc2 clips made with the ffmpeg under test (the system's and the wheel's,
:func:`conftest.which_ffmpeg`); an encoder that ffmpeg lacks is skipped. What the output carries is read
with ffmpeg's ``showinfo`` filter on its first frame (the wheel ships no ffprobe).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from detectors.watermark_video import detect_video
from labeler.media import ffmpeg as ff
from labeler.media.video_encoders import Encoding, choose_encoder, keep_frame_facts
from labeler.media.video_streams import FrameFacts
from labeler.visible import add_video_label
from labeler.watermark import payload_from_produce_id
from labeler.watermark.video import watermark_video

KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("qa-video-breadth")
VIDEO = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1"]
PQ = ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
      "-pix_fmt", "yuv420p10le"]
# source: encoder, its options carrying HDR10 metadata (1000 cd/m² peak, MaxCLL 1000, MaxFALL 400), container
HDR10 = {
    "hevc": ("libx265", ["-preset", "ultrafast", "-x265-params",
                         "log-level=error:hdr10=1:max-cll=1000,400:master-display="
                         "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)",
                         "-tag:v", "hvc1"], ".mp4"),
    "av1": ("libsvtav1", ["-preset", "12", "-svtav1-params",
                          "content-light=1000,400:mastering-display="
                          "G(0.265,0.69)B(0.15,0.06)R(0.68,0.32)WP(0.3127,0.329)L(1000,0.0001)"], ".mkv"),
}


def _make(path: Path, *args: str) -> Path:
    subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(path)],
                   check=True, capture_output=True)
    return path


def _need(encoder: str) -> None:
    if ff.encoder_pix_fmts(encoder) is None:
        pytest.skip(f"this ffmpeg has no {encoder} encoder")


def _first_frame_info(path: Path) -> str:
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-frames:v", "1",
            "-vf", "showinfo", "-f", "null", "-"]
    return subprocess.run(args, capture_output=True, text=True).stderr


def _label(src: Path, out: Path, layer: str) -> None:
    if layer == "watermark":
        watermark_video(src, out, PAYLOAD, key=KEY)
    else:
        add_video_label(src, out, seconds=None)


@pytest.mark.parametrize("layer", ["watermark", "visible"])
@pytest.mark.parametrize("codec", sorted(HDR10))
def test_hdr10_static_metadata_is_kept(tmp_path: Path, which_ffmpeg: str, codec: str, layer: str) -> None:
    """An HDR10 source came out of the watermark pass (both ffmpegs) and of the visible pass (ffmpeg 5.1)
    with its BT.2020 / PQ tags but without its mastering display and content light level, which HDR10
    displays tone-map from: nothing said so for the visible pass."""
    encoder, options, suffix = HDR10[codec]
    _need(encoder)
    src = _make(tmp_path / f"src{suffix}", *VIDEO, "-c:v", encoder, *PQ, *options)
    assert "MaxCLL=1000, MaxFALL=400" in _first_frame_info(src)  # the source carries them
    out = tmp_path / f"out{suffix}"
    _label(src, out, layer)
    info = _first_frame_info(out)
    assert "MaxCLL=1000, MaxFALL=400" in info
    assert "max_luminance=1000.000000" in info and "r(0.6800,0.3200)" in info
    # (the wheel's ffmpeg gives SVT-AV1 no transfer tag for the source: compared with the source's own)
    ((before,), (after,)) = ff.probe(src).video, ff.probe(out).video
    assert (after.codec, after.pix_fmt, after.color_primaries, after.color_trc) == (
        codec, "yuv420p10le", before.color_primaries, before.color_trc)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("layer", ["watermark", "visible"])
def test_interlaced_source_stays_interlaced(tmp_path: Path, which_ffmpeg: str, layer: str,
                                            suffix: str) -> None:
    """An interlaced (top field first) H.264 source came out of both passes coded as progressive frames:
    the fields combed together and flagged progressive, so players no longer deinterlaced it."""
    _need("libx264")
    src = _make(tmp_path / f"src{suffix}", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=50:d=2",
                "-vf", "tinterlace=4,setfield=tff", "-c:v", "libx264", "-flags", "+ilme+ildct",
                "-pix_fmt", "yuv420p")
    assert " i:T " in _first_frame_info(src)
    out = tmp_path / f"out{suffix}"
    _label(src, out, layer)
    assert " i:T " in _first_frame_info(out)
    if layer == "watermark":
        assert detect_video(out, key=KEY).payload == PAYLOAD


def test_hdr_parameters_join_the_encoders_own() -> None:
    """x265 takes one ``-x265-params``: the HDR10 values join the table's ``log-level=error``, never a
    second option that would replace it."""
    choice = choose_encoder("hevc", ".mkv")
    if choice.encoder != "libx265":
        pytest.skip("this ffmpeg has no libx265")
    encoding = Encoding(choice, "yuv420p10le", choice.options)
    mastering = (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329, 0.0001, 1000.0)
    quality = keep_frame_facts(encoding, FrameFacts(None, mastering, (1000, 400))).quality
    assert quality.count("-x265-params") == 1
    params = quality[quality.index("-x265-params") + 1]
    assert params == ("log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
                      "WP(15635,16450)L(10000000,1):max-cll=1000,400")
    assert keep_frame_facts(encoding, FrameFacts()).quality == choice.options


@pytest.mark.parametrize("layer", ["watermark", "visible"])
def test_mp4_chapter_track_is_not_doubled(tmp_path: Path, which_ffmpeg: str, layer: str) -> None:
    """An MP4 with chapters (and two audio tracks, a subtitle track) came out of both passes with its
    chapter track twice: once written again from the chapters, once copied as a data track the muxer tags
    ``gpmd`` (GoPro telemetry)."""
    _need("libx264")
    chapters = tmp_path / "chapters.txt"
    chapters.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=One\n"
                        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2000\ntitle=Two\n")
    subs = tmp_path / "subs.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:01,500\nHello\n")
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    src = _make(tmp_path / "src.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", *sine, *sine,
                "-i", str(subs), "-i", str(chapters), "-map", "0", "-map", "1", "-map", "2", "-map", "3",
                "-map_chapters", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                "-c:s", "mov_text", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=chi")
    out = tmp_path / "out.mp4"
    _label(src, out, layer)
    before, after = ff.probe(src), ff.probe(out)
    assert [(s.kind, s.codec, s.language) for s in after.streams] == [
        (s.kind, s.codec, s.language) for s in before.streams]
    banner = subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True,
                            text=True).stderr
    assert "gpmd" not in banner
    assert banner.count("Chapter #0:") == 2 and "One" in banner and "Two" in banner


def test_hdr_warning_says_what_the_encoder_keeps(tmp_path: Path, which_ffmpeg: str) -> None:
    """The label call's warning for an HDR10 source marked at 8 bits said its mastering-display / light-level
    metadata was lost; libx265 writes it again now, so the warning keeps the banding caveat only."""
    from labeler import AIGCLabel, label

    _need("libx265")
    encoder, options, suffix = HDR10["hevc"]
    src = _make(tmp_path / f"src{suffix}", *VIDEO, "-c:v", encoder, *PQ, *options)
    if ff.probe(src).video[0].color_trc != "smpte2084":  # the wheel's ffmpeg 9 leaves x265's VUI untagged
        src = _make(tmp_path / f"tagged{suffix}", "-i", str(src), "-c", "copy", "-bsf:v",
                    "hevc_metadata=colour_primaries=9:transfer_characteristics=16:matrix_coefficients=9")
    assert ff.probe(src).video[0].color_trc == "smpte2084"
    result = label(src, AIGCLabel("001191110102MACQD9K64010000", "qa-hdr"), dst=tmp_path / f"out{suffix}",
                   layers="watermark,metadata", key=KEY)
    hdr = [w for w in result.warnings if "this is HDR (PQ)" in w]
    assert hdr and "may band" in hdr[0], result.warnings
    assert "metadata is not kept" not in hdr[0]


def test_chapter_track_not_doubled_by_the_soundtrack_pass(tmp_path: Path, which_ffmpeg: str) -> None:
    """With one audio track, ``label --layers watermark`` also marks the soundtrack, in a pass over the
    frames pass's output: that pass copied the chapter track again (a second, ``gpmd``-tagged track)."""
    from labeler import AIGCLabel, label

    _need("libx264")
    chapters = tmp_path / "chapters.txt"
    chapters.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=3000\ntitle=One\n"
                        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=3000\nEND=6000\ntitle=Two\n")
    src = _make(tmp_path / "src.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=6", "-f", "lavfi",
                "-i", "anoisesrc=d=6:a=0.1:c=pink", "-i", str(chapters), "-map", "0", "-map", "1",
                "-map_chapters", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac")
    out = tmp_path / "out.mp4"
    result = label(src, AIGCLabel("001191110102MACQD9K64010000", "qa-chapters"), dst=out,
                   layers="watermark,metadata", key=KEY)
    assert result.layers["watermark"].get("audio") == "marked", result.layers["watermark"]
    before, after = ff.probe(src), ff.probe(out)
    assert [(s.kind, s.codec) for s in after.streams] == [(s.kind, s.codec) for s in before.streams]
    banner = subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True,
                            text=True).stderr
    assert "gpmd" not in banner and banner.count("Chapter #0:") == 2
