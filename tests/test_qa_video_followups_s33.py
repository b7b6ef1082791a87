"""QA follow-ups to the shared video encoder choice (labeler/media/video_encoders.py): the soundtrack pass's
dispositions and MP4 keys, the label stage's warnings about what was written, iTunes items read once,
and ``aigc doctor``'s list of video encoders.

Sources are 1 s 320 x 240 testsrc2 clips made with a real ffmpeg (the system's, or the imageio-ffmpeg
wheel's where a test needs ffmpeg 9); a test that needs an ffmpeg without one encoder runs a stand-in
program that hides that encoder from the real one.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import mov_keys

from labeler import AIGCLabel, label_file
from labeler.media import ffmpeg as ff
from labeler.watermark import payload_from_produce_id
from labeler.watermark.soundtrack import mark_soundtrack
from labeler.watermark.video import watermark_video

KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("qa-video-followups")
RECORD = AIGCLabel("001191110102MACQD9K64010000", "qa-video-followups")
VIDEO = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=1"]
SOUND = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"]
DERIVED = {b"major_brand", b"minor_version", b"compatible_brands", b"creation_time"}


def _bundled() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def _make(path: Path, *args: str, exe: str | None = None) -> Path:
    subprocess.run([exe or ff.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args, str(path)],
                   check=True)
    return path


def _tags_by(exe: str, path: Path) -> dict[str, str]:
    """The global tags ``exe -i`` prints (ffmpeg 9 joins a tag read twice with ';')."""
    env = {**os.environ, ff.FFMPEG_ENV: exe}
    code = ("import json, sys; from labeler.media import ffmpeg as ff; "
            "print(json.dumps(ff.probe(sys.argv[1]).metadata))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         env=env).stdout
    return json.loads(out)


# ---------------------------------------------------------------------------------------- 1: soundtrack


@pytest.mark.parametrize("suffix, codecs", [
    (".mkv", ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]),
    (".webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"])])
@pytest.mark.parametrize("default", [True, False])
def test_soundtrack_pass_keeps_the_audio_default_flag(tmp_path: Path, suffix: str, codecs: list[str],
                                                      default: bool) -> None:
    """The soundtrack pass wrote the marked Matroska / WebM audio track with FlagDefault 0 (a track from a
    pipe has no disposition): ``aigc label clip.mkv --layers watermark`` left no default audio track."""
    src = _make(tmp_path / f"src{suffix}", *VIDEO, *SOUND, *codecs, "-disposition:v:0", "default",
                "-disposition:a:0", "default" if default else "0")
    assert [s.default for s in ff.probe(src).streams] == [True, default]
    out = tmp_path / f"out{suffix}"
    shutil.copyfile(src, out)
    assert mark_soundtrack(out, PAYLOAD, key=KEY)["audio"] == "marked"
    assert [s.default for s in ff.probe(out).streams] == [True, default]


def test_labeled_sample_clips_keep_the_audio_default_flag(tmp_path: Path) -> None:
    """``aigc label samples/clip.mkv|webm --layers watermark``: the audio track stays the default one."""
    samples = Path(__file__).parents[1] / "samples"
    for name in ("clip.mkv", "clip.webm"):
        out = tmp_path / name
        label_file(samples / name, out, RECORD, layers="watermark", key=KEY)
        before = [s.default for s in ff.probe(samples / name).streams]
        assert [s.default for s in ff.probe(out).streams] == before and before[-1] is True


def test_soundtrack_pass_writes_no_derived_mp4_keys(tmp_path: Path, which_ffmpeg: str) -> None:
    """The soundtrack pass wrote ``major_brand``, ``minor_version``, ``compatible_brands`` and
    ``creation_time`` as keys again (``use_metadata_tags``), which ffmpeg 9 reads doubled ("isom;isom")
    and a later pass writes back doubled; the frames' pass no longer did."""
    when = "2024-05-01T10:20:30.000000Z"
    src = _make(tmp_path / "src.mp4", *VIDEO, *SOUND, "-c:v", "libx264", "-preset", "ultrafast",
                "-c:a", "aac", "-metadata", f"creation_time={when}", "-metadata", "com.example.custom=kept",
                "-movflags", "use_metadata_tags")
    out = tmp_path / "out.mp4"
    watermark_video(src, out, PAYLOAD, key=KEY)
    assert mark_soundtrack(out, PAYLOAD, key=KEY)["audio"] == "marked"
    keys = mov_keys(out)
    assert not DERIVED & set(keys) and b"com.example.custom" in keys, keys
    tags = ff.probe(out).metadata
    assert tags["creation_time"] == when and tags["major_brand"] == "isom", tags
    assert not [v for v in tags.values() if ";" in v], tags


def test_m4a_re_encode_writes_no_derived_keys(tmp_path: Path, which_ffmpeg: str) -> None:
    """The M4A writer (a watermark or cue re-encodes the sound) wrote the brands and creation time as
    keys too, which ffmpeg 9 read doubled ("M4A ;M4A ")."""
    src = _make(tmp_path / "src.m4a", *SOUND, "-c:a", "aac", "-metadata", "title=kept")
    out = tmp_path / "out.m4a"
    label_file(src, out, RECORD, layers="watermark,metadata", key=KEY)
    keys = mov_keys(out)
    assert not DERIVED & set(keys) and b"AIGC" in keys, keys
    tags = ff.probe(out).metadata
    assert not [v for v in tags.values() if ";" in v] and tags.get("title") == "kept", tags


# ------------------------------------------------------------------------------------- 3: iTunes items


def _itunes_source(path: Path) -> Path:
    """An MP4 whose title, comment, artist, track and a freeform item are iTunes items (ffmpeg writes
    them so without ``use_metadata_tags``; the freeform one added with mutagen, as taggers write it)."""
    from mutagen.mp4 import MP4, MP4FreeForm

    _make(path, *VIDEO, *SOUND, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
          "-metadata", "title=My Title", "-metadata", "comment=A comment", "-metadata", "artist=Someone",
          "-metadata", "track=3/12")
    tags = MP4(path)
    tags["----:com.apple.iTunes:replaygain_track_gain"] = [MP4FreeForm(b"-3.20 dB")]
    tags.save()
    assert not mov_keys(path)
    return path


WANTED = {"title": "My Title", "comment": "A comment", "artist": "Someone", "track": "3/12",
          "replaygain_track_gain": "-3.20 dB"}


@pytest.mark.parametrize("layers", ["visible", "watermark"])
def test_itunes_tags_read_once_after_labeling(tmp_path: Path, which_ffmpeg: str, layers: str) -> None:
    """A labeled MP4 held its title, comment... twice: as the iTunes items put back after the pass and as
    the keys ffmpeg wrote with ``use_metadata_tags``. ffmpeg 9 read "My Title;My Title", exiftool listed
    each tag twice. The keys of the items put back are removed; other keys stay."""
    src = _itunes_source(tmp_path / "src.mp4")
    out = tmp_path / "out.mp4"
    label_file(src, out, RECORD, layers=f"{layers},metadata", key=KEY)
    keys = mov_keys(out)
    assert b"AIGC" in keys and not {k.encode() for k in WANTED} & set(keys), keys
    # the system's ffmpeg (5.1 here) where there is one, and the wheel's (9)
    for exe in [e for e in (shutil.which("ffmpeg"), _bundled()) if e]:
        tags = _tags_by(exe, out)
        assert {k: tags.get(k) for k in WANTED} == WANTED, (exe, tags)
        assert not [v for v in tags.values() if ";" in v], (exe, tags)
    if shutil.which("exiftool"):
        found = json.loads(subprocess.run(["exiftool", "-j", "-a", "-G1", "-Title", "-Comment", "-Artist",
                                           str(out)], capture_output=True, text=True, check=True).stdout)[0]
        named = sorted(k for k in found if k != "SourceFile")
        assert named == ["ItemList:Artist", "ItemList:Comment", "ItemList:Title"], found
        assert found["ItemList:Title"] == "My Title"


# ------------------------------------------------------------------------------------------ 2: warnings


def _label(src: Path, layers: str) -> tuple[dict, list[str]]:
    out = src.with_name(f"out-{layers.replace(',', '-')}{src.suffix}")
    result = label_file(src, out, RECORD, layers=layers, key=KEY)
    return result.layers, result.warnings


def test_watermark_warning_names_the_format_written(tmp_path: Path) -> None:
    """A 10-bit source is marked at 8 bits and written at 10 bits again, but the warning said the frames
    "were written as 8-bit yuv420p"."""
    src = _make(tmp_path / "ten.mkv", *VIDEO, "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p10le")
    layers, warnings = _label(src, "watermark")
    assert layers["watermark"]["output_pix_fmt"] == "yuv420p10le"
    assert ff.probe(src.with_name("out-watermark.mkv")).video[0].pix_fmt == "yuv420p10le"
    (note,) = [w for w in warnings if "yuv420p10le frames" in w]
    assert "marked at 8 bits (yuv420p) and written as yuv420p10le" in note and "8-bit yuv420p" not in note


@pytest.mark.parametrize("make, written, says", [
    (["-c:v", "libx264rgb", "-preset", "ultrafast", "-pix_fmt", "rgb24"], "yuv444p",
     "the video's gbrp frames were written as yuv444p by libx264"),
    (["-c:v", "ffv1", "-pix_fmt", "yuv420p12le"], "yuv420p12le",
     "the video's yuv420p12le frames were blended with the label as yuv420p10le and written as yuv420p12le "
     "by ffv1"),
], ids=["rgb-h264", "ffv1-12bit"])
def test_visible_warning_names_the_format_and_encoder(tmp_path: Path, make: list[str], written: str,
                                                      says: str) -> None:
    """The visible pass's warning still said "written as 8-bit yuv420p (the visible label's pass encodes
    4:2:0 H.264 or VP9 ...)" after it began to keep the source's codec and nearest pixel format."""
    src = _make(tmp_path / "src.mkv", *VIDEO, *make)
    layers, warnings = _label(src, "visible")
    assert layers["visible"]["pix_fmt"] == written
    (note,) = [w for w in warnings if "frames" in w]
    assert note.startswith(says) and "yuv420p (" not in note and "4:2:0 H.264" not in note, note


def test_codec_the_container_refuses_is_warned_by_both_passes(tmp_path: Path) -> None:
    """FFV1 in MP4 (ffmpeg 9 writes it; FFV1 goes to Matroska, MOV or AVI only) becomes H.264: the visible
    pass said nothing, the watermark pass blamed a missing encoder."""
    src = _make(tmp_path / "ffv1.mp4", *VIDEO, "-c:v", "ffv1", exe=_bundled())
    for layers in ("visible", "watermark"):
        done, warnings = _label(src, layers)
        assert done[layers]["codec_from"] == "ffv1" and done[layers]["encoder"] == "libx264"
        assert ("the video's ffv1 stream was re-encoded with libx264: MP4 files cannot hold ffv1 (ffmpeg "
                "writes it to Matroska, MOV or AVI)") in warnings, warnings
        assert not [w for w in warnings if "has no encoder of its family" in w]


def _without_encoder(folder: Path, hidden: str) -> Path:
    """A stand-in ffmpeg: the system's, with the encoder ``hidden`` missing from what it reports."""
    real = shutil.which("ffmpeg")
    if real is None:
        pytest.skip("no ffmpeg on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "ffmpeg"
    exe.write_text(f"""#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    encoder={hidden}) echo "Codec '{hidden}' is not recognized by FFmpeg."; exit 0 ;;
    -encoders) "{real}" "$@" | grep -v ' {hidden} '; exit 0 ;;
  esac
done
exec "{real}" "$@"
""")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_codec_without_an_encoder_in_this_ffmpeg_is_warned(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """HEVC labeled with an ffmpeg that has no libx265: the visible pass wrote H.264 without a word."""
    src = _make(tmp_path / "hevc.mkv", *VIDEO, "-c:v", "libx265", "-x265-params", "log-level=error",
                exe=shutil.which("ffmpeg"))
    monkeypatch.setenv(ff.FFMPEG_ENV, str(_without_encoder(tmp_path / "bin", "libx265")))
    done, warnings = _label(src, "visible")
    assert done["visible"]["codec_from"] == "hevc"
    note = "the video's hevc stream was re-encoded with libx264: this ffmpeg has no libx265 encoder"
    assert note in warnings, warnings


def test_codec_the_passes_do_not_encode_is_warned(tmp_path: Path) -> None:
    """MPEG-4 Part 2 (no family of its own in the video passes) becomes H.264: the visible pass said
    nothing."""
    src = _make(tmp_path / "mpeg4.mkv", *VIDEO, "-c:v", "mpeg4")
    done, warnings = _label(src, "visible")
    assert done["visible"]["codec_from"] == "mpeg4"
    (note,) = [w for w in warnings if "mpeg4 stream" in w]
    assert note.startswith("the video's mpeg4 stream was re-encoded with libx264: the video passes keep "
                           "H.264, HEVC, VP8, VP9, AV1, ProRes and FFV1 only"), note


# ---------------------------------------------------------------------------------------------- 4: doctor


def test_doctor_lists_video_encoders_and_the_families_that_fall_back(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``aigc doctor`` listed neither ProRes, FFV1 nor VP8's encoder, which the video passes now use to keep a
    source's codec, and did not say which codecs this ffmpeg turns into H.264."""
    from labeler.environment import describe_environment, summary_lines

    monkeypatch.delenv(ff.FFMPEG_ENV, raising=False)
    env = describe_environment()
    encoders = env["ffmpeg"]["encoders"]
    assert {"prores_ks", "ffv1", "libvpx", "libvpx-vp9", "libx265", "libsvtav1"} <= set(encoders)
    assert env["ffmpeg"]["video_fallbacks"] == {} and env["problems"] == []
    assert "video: every codec family kept (h264, hevc, vp9, vp8, av1, prores, ffv1)" in summary_lines(env)
    monkeypatch.setenv(ff.FFMPEG_ENV, str(_without_encoder(tmp_path / "bin", "libx265")))
    env = describe_environment()
    assert env["ffmpeg"]["encoders"]["libx265"] is False and env["problems"] == []
    assert env["ffmpeg"]["video_fallbacks"] == {"hevc": "libx265"}
    assert ("video: hevc re-encoded as H.264 (VP9 in WebM): this ffmpeg has no libx265; kept: h264, vp9, "
            "vp8, av1, prores, ffv1") in summary_lines(env)


def test_watermark_pass_says_the_alpha_channel_was_dropped(tmp_path: Path) -> None:
    """An FFV1 4:4:4 alpha source keeps its chroma through the watermark pass since it keeps the source's
    layout, so the conversion warning ("yuva444p frames were written as 8-bit yuv444p") no longer says
    that the alpha channel went: the visible pass's explicit alpha warning is given here too."""
    src = _make(tmp_path / "alpha.mkv", *VIDEO, "-vf", "format=yuva444p", "-c:v", "ffv1")
    done, warnings = _label(src, "watermark")
    assert done["watermark"]["alpha"] == "dropped"
    assert any(w.startswith("the video's alpha channel was dropped") for w in warnings), warnings
