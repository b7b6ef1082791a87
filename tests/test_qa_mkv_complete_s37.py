"""QA of Matroska / WebM files cut short before the pixel passes, and of an empty watermark key.

A: an MKV or WebM cut to a third or a half of its size (an interrupted download) was labeled by
``--layers visible`` with its end missing and no warning (ffmpeg decodes it to the cut and exits 0),
while ``--layers watermark`` refused it from ffmpeg's log and MP4 / MOV / M4A inputs were refused by
every pixel layer from their box sizes. Now the Segment-size check of
:mod:`labeler.metadata.matroska` refuses a Matroska file (video, or audio: an MKA was labeled the same
way by the audio layers) before any decoding pass, in
the MP4's words ("the file is cut short: ... runs past the end of the file (N bytes declared, M
present)"); a live recording whose Segment size is unknown is labeled as before.

B: ``label`` with an empty key (``b""``, ``bytearray()``, ``memoryview(b"")``) raised
``WatermarkError`` from inside the embed step, after the input was probed; now ``InvalidArgument``
(the type ``label`` promises for a caller's mistake) from the option checks, before the input is read.
A key under 16 bytes with the watermark layer, refused the same late way, is refused there too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key

from labeler import AIGCLabel, label, label_file
from labeler.errors import CorruptFile, InvalidArgument, LabelerError
from labeler.media.ffmpeg import ffmpeg_exe
from labeler.metadata import matroska

CUT = (r"^the file is cut short: Matroska Segment at offset \d+ runs past the end of the file "
       r"\(\d+ bytes declared, \d+ present\)$")


def _cut(tmp_path: Path, name: str, share: float) -> Path:
    data = (SAMPLES / name).read_bytes()
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(data[: int(len(data) * share)])
    return cut


def _live(tmp_path: Path, name: str) -> Path:
    """``name`` remuxed as ffmpeg writes Matroska to a pipe: Segment (and clusters) of unknown size."""
    muxer = "webm" if name.endswith(".webm") else "matroska"
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(SAMPLES / name),
                           "-map", "0", "-c", "copy", "-f", muxer, "pipe:1"], capture_output=True, check=True)
    live = tmp_path / f"live-{name}"
    live.write_bytes(proc.stdout)
    return live


# -- A: Matroska cut short ------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [1 / 3, 1 / 2], ids=["third", "half"])
@pytest.mark.parametrize("name", ["clip.mkv", "clip.webm"])
def test_visible_refuses_a_matroska_file_cut_short(tmp_path: Path, name: str, share: float) -> None:
    src = _cut(tmp_path, name, share)
    before = src.read_bytes()
    dst = tmp_path / f"out-{name}"
    with pytest.raises(CorruptFile, match=CUT):
        label_file(src, dst, AIGCLabel(PRODUCER, "qa-mkv-cut"), layers="visible")
    assert not dst.exists() and src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_watermark_refuses_it_in_the_same_words_before_decoding(tmp_path: Path) -> None:
    # before: "the file is cut short (ffmpeg: file ended prematurely)", after a decoding pass
    src = _cut(tmp_path, "clip.webm", 1 / 2)
    with pytest.raises(CorruptFile, match=CUT):
        label_file(src, tmp_path / "out.webm", AIGCLabel(PRODUCER, "qa-mkv-cut"), layers="visible,watermark",
                   key=seeded_key("qa-mkv-cut"))
    assert not (tmp_path / "out.webm").exists()


def test_the_metadata_layer_names_the_segment_as_an_mp4_names_its_box(tmp_path: Path) -> None:
    src = _cut(tmp_path, "clip.mkv", 1 / 2)
    with pytest.raises(CorruptFile, match=r"^Matroska Segment at offset \d+ runs past the end of the file"):
        label_file(src, tmp_path / "out.mkv", AIGCLabel(PRODUCER, "qa-mkv-cut"), layers="metadata")


@pytest.mark.parametrize("layers", ["visible", "watermark"])
def test_audio_in_matroska_cut_short_is_refused_too(tmp_path: Path, layers: str) -> None:
    # before: a 3 s MKA cut to half was labeled by both audio layers, its end missing, without a word
    whole = tmp_path / "whole.mka"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:d=3:sample_rate=44100", "-c:a", "pcm_s16le", str(whole)], check=True)
    src = tmp_path / "cut.mka"
    src.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CorruptFile, match=CUT):
        label_file(src, tmp_path / "out.mka", AIGCLabel(PRODUCER, "qa-mka-cut"), layers=layers,
                   key=seeded_key("qa-mka-cut"))
    assert not (tmp_path / "out.mka").exists()


def test_cli_is_one_line_and_exit_2(tmp_path: Path) -> None:
    src = _cut(tmp_path, "clip.mkv", 1 / 3)
    dst = tmp_path / "out.mkv"
    proc = run_cli("label", "--layers", "visible", "--producer", PRODUCER, "--produce-id", "x1", str(src),
                   str(dst))
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the file is cut short: Matroska Segment" in lines[0], proc.stderr
    assert not dst.exists()


def test_complete_and_live_files_pass_the_check(tmp_path: Path) -> None:
    for name in ("clip.mkv", "clip.webm"):
        matroska.require_complete(SAMPLES / name)
        live = _live(tmp_path, name)
        with live.open("rb") as handle:
            assert matroska.layout(handle).segment.size is None  # the EBML unknown-size marker
        matroska.require_complete(live)  # no end declared: nothing to refuse


def test_a_live_recording_is_still_labeled(tmp_path: Path) -> None:
    live = _live(tmp_path, "clip.mkv")
    result = label_file(live, tmp_path / "out.mkv", AIGCLabel(PRODUCER, "qa-mkv-live"), layers="visible")
    assert "visible" in result.layers and (tmp_path / "out.mkv").stat().st_size > 0


def test_a_complete_webm_is_still_labeled(tmp_path: Path) -> None:
    result = label_file(SAMPLES / "clip.webm", tmp_path / "out.webm", AIGCLabel(PRODUCER, "qa-mkv-ok"),
                        layers="visible")
    assert "visible" in result.layers


# -- B: an empty or short key, refused up front ------------------------------------------------------------


@pytest.mark.parametrize("key", [b"", bytearray(), memoryview(b"")], ids=["bytes", "bytearray", "memoryview"])
def test_an_empty_key_is_an_invalid_argument_before_the_input_is_read(tmp_path: Path, key: object) -> None:
    # a path that does not exist: the key is refused first, so the input is never probed
    with pytest.raises(InvalidArgument, match=r"^key is empty: it must be non-empty bytes") as caught:
        label_file(tmp_path / "absent.mkv", tmp_path / "out.mkv", AIGCLabel(PRODUCER, "k"),
                   layers="watermark", key=key)
    assert isinstance(caught.value, LabelerError) and "\n" not in str(caught.value)
    with pytest.raises(InvalidArgument, match="key is empty"):
        label(np.zeros((64, 64, 3), np.uint8), AIGCLabel(PRODUCER, "k"), layers="watermark", key=key)


def test_a_short_key_with_the_watermark_layer_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"^a watermark key must have at least 16 bytes, not 5 "):
        label_file(tmp_path / "absent.mkv", tmp_path / "out.mkv", AIGCLabel(PRODUCER, "k"),
                   layers="watermark", key=b"short")
