"""QA follow-ups (session 37).

1. :func:`labeler.media.ffmpeg.feed` gave up on a failed encoder without closing its block iterator:
   a generator that owns an ffmpeg decoder ends it only when closed, so a caller that kept the
   exception (or the iterator) kept the decoder as a live or zombie child.
2. ``verify(path, key=np.frombuffer(key32, np.uint8))`` said "not ndarray (empty)" of a 32-byte array;
   both ``verify`` and ``label`` now refuse an array with a message that names only its type.
3. A Matroska file cut before its first frame, labeled with a pixel layer, said "ffmpeg: error marking
   filters as finished" (ffmpeg 5.1) or "cannot determine format of input 0:0 after EOF" (ffmpeg 9)
   although ffmpeg had printed "File ended prematurely": now "the file is cut short (...)".
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, seeded_key

from detectors import verify
from labeler import AIGCLabel, label, label_file
from labeler.errors import CorruptFile, InvalidArgument, LabelerError
from labeler.media import ffmpeg as ff
from labeler.media.audio_write import _ffmpeg_encode

# -- 1: feed closes the blocks it stops reading ---------------------------------------------------------


def _children() -> set[int]:
    """Our child processes, zombies included (from /proc: field 4 of ``stat`` is the parent's id)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # it ended while we looked
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


def _decoded_blocks(seconds: int = 30, rate: int = 44100) -> Iterator[np.ndarray]:
    """Float32 mono blocks from a real ffmpeg decoder (more than a pipe holds, so it stays running)."""
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
            f"sine=frequency=440:sample_rate={rate}:duration={seconds}", "-f", "f32le", "-ac", "1", "pipe:1"]
    for chunk in ff.pipe_chunks(args, "lavfi", 1 << 16):
        yield np.frombuffer(chunk, "<f4")


def _failing_encoder(out: Path) -> list[str]:
    """An encoder that reads some input, then fails on an unknown codec."""
    return [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "f32le", "-ar",
            "44100", "-ac", "1", "-i", "pipe:0", "-c:a", "no_such_codec_qa", str(out)]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_feed_closes_the_blocks_when_the_encoder_fails(tmp_path: Path) -> None:
    before = _children()
    blocks = _decoded_blocks()  # kept referenced, as an exception's traceback keeps it
    reason = ff.feed(_failing_encoder(tmp_path / "out.wav"), blocks, [])
    assert reason is not None and "no_such_codec_qa" in reason
    assert _children() - before == set(), "the decoder outlived feed"
    assert blocks.gi_frame is None  # closed


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_an_encode_that_fails_leaves_no_decoder_while_its_exception_is_kept(tmp_path: Path) -> None:
    before = _children()
    blocks = _decoded_blocks()
    with pytest.raises(LabelerError, match="cannot encode no_such_codec_qa") as caught:
        _ffmpeg_encode(tmp_path / "out.wav", blocks, 1, 44100, "no_such_codec_qa", None)
    assert caught.value.__traceback__ is not None
    assert _children() - before == set(), "a kept exception kept the decoder"
    assert not (tmp_path / "out.wav").exists()


def test_feed_takes_any_iterable_and_leaves_finished_blocks_alone(tmp_path: Path) -> None:
    out = tmp_path / "ok.wav"
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "f32le", "-ar",
            "8000", "-ac", "1", "-i", "pipe:0", str(out)]
    assert ff.feed(args, [np.zeros(800, np.float32)] * 3, []) is None
    assert out.stat().st_size > 2 * 2400


# -- 2: verify's key messages, and the same refusals as label ---------------------------------------

KEY = seeded_key("qa-followups-s37")
IMAGE = np.random.default_rng(37).integers(0, 256, (128, 128, 3), dtype=np.uint8)
RECORD = AIGCLabel(PRODUCER, "qa-followups-s37")


def test_verify_names_an_array_key_by_its_type_not_as_empty() -> None:
    array_key = np.frombuffer(KEY, np.uint8)
    with pytest.raises(InvalidArgument) as verified:
        verify(IMAGE, key=array_key)
    message = str(verified.value)
    assert "ndarray" in message and "empty" not in message and "tobytes" in message
    # label refuses the array the same way, with the same exception type
    with pytest.raises(InvalidArgument, match="key must be bytes.*not ndarray"):
        label(IMAGE, RECORD, layers="watermark", key=array_key)
    with pytest.raises(InvalidArgument, match="key must be bytes.*not int$"):
        verify(IMAGE, key=5)


@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
def test_verify_says_an_empty_key_is_empty(empty: bytes) -> None:
    with pytest.raises(InvalidArgument, match="^key is empty"):
        verify(IMAGE, key=empty)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_bytes_like_keys_are_taken_by_verify(wrap) -> None:
    report = verify(IMAGE, key=wrap(KEY), layers="watermark")
    assert report.examined == ["watermark"]


# -- 3: a Matroska file cut before its first frame, with a pixel layer -------------------------------

FFMPEG51_CUT_MKV = """\
[matroska,webm @ 0x5642932288c0] File ended prematurely
Cannot determine format of input stream 0:0 after EOF
Error marking filters as finished
"""
FFMPEG9_CUT_MKV = """\
[in#0/matroska,webm @ 0x55f79f520080] File ended prematurely
[vf#0:0 @ 0x55f79f58e3c0] Cannot determine format of input 0:0 after EOF
[vf#0:0 @ 0x55f7] Task finished with error code: -1094995529 (Invalid data found when processing input)
[vost#0:0/rawvideo @ 0x55f7] [enc:rawvideo @ 0x55f7] Could not open encoder before EOF
[out#0/rawvideo @ 0x55f79f5889c0] Nothing was written into output file, because at least one of its streams \
received no packets.
"""


@pytest.mark.parametrize("stderr", [FFMPEG51_CUT_MKV, FFMPEG9_CUT_MKV], ids=["ffmpeg5.1", "ffmpeg9"])
def test_error_line_says_the_file_is_cut_short(stderr: str) -> None:
    assert ff.error_line(stderr) == "the file is cut short (file ended prematurely)"
    # a failure with no word of a cut keeps its own reason; cut_short keeps its wording
    assert ff.error_line("Error marking filters as finished\n") == ""
    assert ff.cut_short(stderr) == "the file is cut short (ffmpeg: file ended prematurely)"


@pytest.mark.parametrize("layers", ["watermark", "visible"])
def test_pixel_layers_on_a_matroska_file_cut_to_2_percent(tmp_path: Path, layers: str,
                                                          which_ffmpeg: str) -> None:
    # remuxed as a live recording (Segment of unknown size): a Segment of known size cut short is refused
    # from its size before ffmpeg runs (labeler.metadata.matroska.require_complete), and this is about
    # what ffmpeg's own log says
    live = subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i",
                           str(SAMPLES / "clip.mkv"), "-c", "copy", "-f", "matroska", "pipe:1"],
                          capture_output=True, check=True).stdout
    src = tmp_path / "cut.mkv"
    src.write_bytes(live[: len(live) // 50])
    dst = tmp_path / "out.mkv"
    with pytest.raises(CorruptFile, match=r"the file is cut short \(file ended prematurely\)") as caught:
        label_file(src, dst, RECORD, layers=layers, key=KEY)
    assert "filters" not in str(caught.value) and "after eof" not in str(caught.value).lower()
    assert not dst.exists()
