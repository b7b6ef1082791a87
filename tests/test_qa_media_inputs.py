"""QA of bad and unusual video and audio input to the labeling passes.

A: a video whose data ends before its index says (an MP4/MOV whose cut leaves video samples absent, so ffmpeg
prints "partial file" and exits 0; a Matroska file cut short) was labeled by ``--layers watermark`` with its
last frames missing although the video watermark pass promises ``-xerror`` refusal: now refused with a
one-line reason and no output. Verify still reads what is there.

B: an odd-sized 4:2:0 video refused by the encoder said, with ffmpeg 7+ (the imageio-ffmpeg wheel's),
"[enc:libx264 @ 0x55...] could not open encoder before EOF" instead of x264's reason ("width not
divisible by 2"): :func:`labeler.media.ffmpeg.error_line` stripped only the first of ffmpeg's nested
``[context @ 0x...]`` prefixes, so the boilerplate line was not recognised.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PRODUCER, run_cli, run_ffmpeg, seeded_key, seeded_key_file

from labeler import AIGCLabel, label_file
from labeler.errors import CorruptFile
from labeler.media.ffmpeg import cut_short, error_line, ffmpeg_exe


def _mov_cut_in_its_sound(tmp_path: Path) -> Path:
    """A faststart MOV cut at half its size: nearly all of its bytes are PCM sound, so the cut lands in a
    sound chunk and the video samples after it are simply absent (ffmpeg: "partial file", exit 0, for
    the video stream alone), not damaged (a damaged packet was refused before, through -xerror)."""
    whole = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x128:r=24:d=1", "-f", "lavfi", "-i",
                       "sine=d=1:sample_rate=48000", "-c:v", "libx264", "-crf", "40", "-pix_fmt", "yuv420p",
                       "-c:a", "pcm_s24le", "-ac", "2", "-movflags", "+faststart", tmp_path / "whole.mov")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mov"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def _mkv_cut(tmp_path: Path) -> Path:
    whole = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x128:r=24:d=1", "-c:v", "libx264",
                       "-pix_fmt", "yuv420p", tmp_path / "whole.mkv")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    return cut


def test_cut_short_recognises_the_demuxers_messages() -> None:
    assert cut_short("[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d2] stream 0, offset 0x15ce9: partial file\n") == (
        "the file is cut short (ffmpeg: stream 0, offset 0x15ce9: partial file)")
    assert cut_short(b"[in#0/matroska,webm @ 0x55a1] File ended prematurely\n") == (
        "the file is cut short (ffmpeg: file ended prematurely)")
    assert cut_short("") is None
    assert cut_short("[h264 @ 0x1] non-existing PPS 0 referenced\n") is None


@pytest.mark.parametrize("make", [_mov_cut_in_its_sound, _mkv_cut], ids=["mov", "mkv"])
def test_video_watermark_refuses_a_file_cut_short(tmp_path: Path, make) -> None:
    src = make(tmp_path)
    before = src.read_bytes()
    dst = tmp_path / f"out{src.suffix}"
    with pytest.raises(CorruptFile, match="cut short|corrupt"):
        label_file(src, dst, AIGCLabel(PRODUCER, "qa-cut"), layers="watermark", key=seeded_key("qa-cut"))
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["whole" + src.suffix, src.name])
    assert src.read_bytes() == before


def test_cli_watermark_on_a_mov_cut_short_is_one_line_and_verify_still_reads_it(tmp_path: Path) -> None:
    src = _mov_cut_in_its_sound(tmp_path)
    keyfile = seeded_key_file(tmp_path / "wm.key", "qa-cut-cli")
    dst = tmp_path / "out.mov"
    proc = run_cli("label", "--layers", "watermark", "--key-file", str(keyfile), "--producer", PRODUCER,
                   "--produce-id", "qa-cut", str(src), str(dst))
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut short" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not dst.exists()
    # verify is a reader: it reads the frames that are there, and the (damaged) metadata is a warning
    ver = run_cli("verify", "--json", "--key-file", str(keyfile), str(src))
    assert ver.returncode in (0, 2) and "Traceback" not in ver.stderr


# -- B: the encoder's reason, with ffmpeg 9's nested log prefixes ---------------------------------------

FFMPEG9_ODD_SIZE = """\
[libx264 @ 0x55be081eb380] width not divisible by 2 (1919x1079)
[vost#0:0/libx264 @ 0x55be081ea780] [enc:libx264 @ 0x55be081eb2c0] Error while opening encoder - maybe \
incorrect parameters such as bit_rate, rate, width or height.
[vf#0:0 @ 0x55be081ed580] Error sending frames to consumers: Generic error in an external library
[vf#0:0 @ 0x55be081ed580] Task finished with error code: -542398533 (Generic error in an external library)
[vost#0:0/libx264 @ 0x55be081ea780] [enc:libx264 @ 0x55be081eb2c0] Could not open encoder before EOF
[vost#0:0/libx264 @ 0x55be081ea780] Task finished with error code: -22 (Invalid argument)
[out#0/mp4 @ 0x55be081e9a40] Nothing was written into output file, because at least one of its streams \
received no packets.
"""


def test_error_line_strips_nested_prefixes_and_finds_the_encoders_reason() -> None:
    assert error_line(FFMPEG9_ODD_SIZE) == "width not divisible by 2 (1919x1079)"
    assert error_line("[vost#0:0/libx264 @ 0x1] [enc:libx264 @ 0x2] some reason\n") == "some reason"


def test_video_watermark_on_odd_sized_420_is_written_at_full_chroma(tmp_path: Path) -> None:
    # refused with libx264's reason ("width not divisible by 2", one clean line) until 2026-12-07; now
    # written in 4:4:4 at its own size (labeler.media.video_encoders.plan_encoding, odd_sides)
    from labeler.media.video import video_info

    src = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=322x242:r=24:d=0.25,format=yuv444p,crop=321:241:0:0,"
                     "format=yuv420p", "-c:v", "mpeg4", tmp_path / "odd.mkv")  # re-encoded as H.264
    dst = tmp_path / "out.mkv"
    label_file(src, dst, AIGCLabel(PRODUCER, "qa-odd"), layers="watermark", key=seeded_key("qa-odd"))
    info = video_info(dst)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (321, 241, "h264", "yuv444p")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mkv", "out.mkv"]


# -- C: an ISO-BMFF file whose mdat runs past its end, before any decoding pass -------------------------


def _bmff_cut(tmp_path: Path, kind: str) -> Path:
    """A faststart M4A (AAC) or video-only MP4 cut at 60 %: the index lists samples that are not there.
    The audio decoder (no -xerror) reads what is there and exits 0, and ffmpeg 7+ says nothing when the
    cut falls between two video samples, so only the box sizes tell."""
    if kind == "m4a":
        whole = run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:d=4:sample_rate=44100", "-c:a", "aac",
                           "-b:a", "96k", "-movflags", "+faststart", tmp_path / "whole.m4a")
    else:
        whole = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=192x144:r=24:d=2", "-c:v", "libx264",
                           "-crf", "30", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                           tmp_path / "whole.mp4")
    data = whole.read_bytes()
    cut = tmp_path / f"cut{whole.suffix}"
    cut.write_bytes(data[: len(data) * 3 // 5])
    return cut


@pytest.mark.parametrize(("kind", "layers"), [("m4a", "watermark"), ("m4a", "visible"),
                                              ("mp4", "watermark"), ("mp4", "visible")])
def test_a_bmff_file_cut_short_is_refused_before_the_decoding_pass(tmp_path: Path, kind: str,
                                                                   layers: str) -> None:
    src = _bmff_cut(tmp_path, kind)
    before = src.read_bytes()
    dst = tmp_path / f"out{src.suffix}"
    with pytest.raises(CorruptFile, match=r"the file is cut short: mp4 box 'mdat' .* runs past the end"):
        label_file(src, dst, AIGCLabel(PRODUCER, "qa-bmff-cut"), layers=layers, key=seeded_key("qa-bmff"))
    assert not dst.exists() and src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"whole{src.suffix}", src.name])


# -- D: audio that decodes to no samples -----------------------------------------------------------------


@pytest.mark.parametrize("layers", ["watermark", "visible"])
def test_audio_with_no_samples_says_so(tmp_path: Path, layers: str) -> None:
    """A WAV whose data chunk is empty (or whose container ffmpeg cannot walk: the corpus' nested-LIST
    bomb) decodes to (0, 1): the watermark said "audio must be shaped (n,) or (n, channels), not (0, 1)"."""
    import struct

    src = tmp_path / "empty.wav"
    fmt = struct.pack("<HHIIHH", 1, 1, 44100, 88200, 2, 16)
    src.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8) + b"WAVE" + b"fmt " +
                    struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0))
    dst = tmp_path / "out.wav"
    with pytest.raises(CorruptFile, match="no audio samples could be decoded"):
        label_file(src, dst, AIGCLabel(PRODUCER, "qa-empty"), layers=layers, key=seeded_key("qa-empty"))
    assert not dst.exists()


# -- E: ffmpeg children out of the terminal's process group ----------------------------------------------


def test_ffmpeg_children_run_in_a_session_of_their_own() -> None:
    """A Ctrl-C (SIGINT to the foreground process group) made the ffmpeg of a running batch file quit:
    ffmpeg sets its own handler, the workers' SIG_IGN did not shield it, and a verify was journaled as
    done with "the visible layer could not be examined: ffmpeg: exit status 255" (reproduced with a
    batch whose driver ignored SIGINT, 2 of 4 runs). Every ffmpeg child now has its own session."""
    import os

    psutil = pytest.importorskip("psutil")
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
            "testsrc2=s=64x64:r=25:d=20", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:"]
    from labeler.media.ffmpeg import pipe_chunks

    chunks = pipe_chunks(args, "lavfi", 64 * 64)
    next(chunks)
    try:
        kids = [p for p in psutil.Process().children() if "ffmpeg" in p.name()]
        assert kids, "no ffmpeg child seen"
        assert all(os.getsid(k.pid) != os.getsid(0) for k in kids)
    finally:
        chunks.close()


def test_every_ffmpeg_spawn_site_uses_its_own_session() -> None:
    """Every subprocess call of the product (ffmpeg and its probes) passes ``CHILD`` (see above); the
    voice-prompt maker is a development tool run by hand."""
    import re

    root = Path(__file__).resolve().parents[1]
    missing = []
    for path in [*(root / "labeler").rglob("*.py"), *(root / "detectors").rglob("*.py")]:
        if path.name == "make_voice.py":
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"subprocess\.(run|Popen)\(", text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            if "CHILD" not in text[match.start():end]:
                missing.append(f"{path.relative_to(root)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert not missing, missing
