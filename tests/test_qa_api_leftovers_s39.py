"""Library API leftovers of QA round s39: strict bool options, sniff_file's errors, AIGCLabel field types,
a WAV cut short, a folder as the manifest store, hints for library callers, and an audio file too short to
hold any sound. Every input is a copy of samples/ under tmp_path (samples/ is never written)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import PRODUCER, SAMPLES, ffmpeg_exe, seeded_key

from detectors import verify
from labeler import AIGCLabel, label, label_file, sniff_file
from labeler.errors import InvalidArgument, LabelerError
from labeler.options import LabelOptions, OutputOptions
from labeler.provenance.store import open_store

KEY = seeded_key("qa-api-leftovers-s39")
RECORD = AIGCLabel(PRODUCER, "s39-leftovers")


def _copy(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copy(SAMPLES / name, tmp_path / name))


# --- 1. boolean options are bools ------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["no", "false", 1, None])
def test_overwrite_that_is_not_a_bool_is_refused_and_leaves_the_output(tmp_path: Path, value: object) -> None:
    src = _copy(tmp_path, "photo.jpg")
    dst = tmp_path / "out.jpg"
    dst.write_bytes(b"keep me")
    with pytest.raises(InvalidArgument, match="overwrite must be True or False"):
        label_file(src, dst, RECORD, overwrite=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="overwrite must be True or False"):
        label(src, RECORD, dst=dst, overwrite=value)
    with pytest.raises(InvalidArgument, match="overwrite must be True or False"):
        label_file(src, dst, RECORD, options=LabelOptions(output=OutputOptions(overwrite=value)))  # type: ignore[arg-type]
    assert dst.read_bytes() == b"keep me"


def test_other_flags_are_bools_too_and_numpy_bools_are_taken(tmp_path: Path) -> None:
    src = _copy(tmp_path, "photo.png")
    with pytest.raises(InvalidArgument, match="c2pa_thumbnail must be True or False"):
        label(src.read_bytes(), RECORD, c2pa_thumbnail="yes")
    dst = tmp_path / "out.png"
    dst.write_bytes(b"old")
    result = label_file(src, dst, RECORD, overwrite=np.bool_(True))  # a NumPy bool is a bool
    assert result.layers["metadata"]["carrier"] and dst.stat().st_size > 3
    with pytest.raises(LabelerError, match="exists"):
        label_file(src, dst, RECORD, overwrite=np.bool_(False))


# --- 2. sniff_file -----------------------------------------------------------------------------------------
def test_sniff_file_of_a_folder_or_bytes_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LabelerError, match="is a folder") as folder:
        sniff_file(tmp_path)
    assert not isinstance(folder.value, OSError)
    with pytest.raises(InvalidArgument, match="sniff_bytes"):
        sniff_file(_copy(tmp_path, "photo.jpg").read_bytes())  # type: ignore[arg-type]
    assert sniff_file(tmp_path / "photo.jpg") == "jpeg"


# --- 3. AIGCLabel field types ------------------------------------------------------------------------------
def test_label_fields_must_be_str_but_label_may_be_the_int(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="content_producer must be a str"):
        AIGCLabel(1, 2)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="produce_id must be a str, not bytes"):
        AIGCLabel(PRODUCER, b"id")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="label must be a str"):
        AIGCLabel(PRODUCER, "id", label=True)  # type: ignore[arg-type]
    assert AIGCLabel(PRODUCER, "id", label=2).label == "2"  # type: ignore[arg-type]  # documented coercion
    assert AIGCLabel(PRODUCER, "id").propagate_id == "id"  # None still means "the producer's"


# --- 4. a WAV cut short ------------------------------------------------------------------------------------
def _cut(src: Path, dst: Path) -> Path:
    # cut with head -c, as an interrupted copy does; an odd length cuts a 16-bit sample in two
    size = src.stat().st_size // 2 | 1
    with open(dst, "wb") as out:
        subprocess.run(["head", "-c", str(size), str(src)], stdout=out, check=True)
    return dst


def _sizes(path: Path) -> tuple[int, int, int, int]:
    """RIFF size + 8, the file size, the data chunk's size field and the bytes after its header."""
    data = path.read_bytes()
    at = data.find(b"data")
    return struct.unpack("<I", data[4:8])[0] + 8, len(data), struct.unpack("<I", data[at + 4 : at + 8])[0], (
        len(data) - at - 8)


def test_a_wav_cut_short_warns_and_is_labeled_consistently(tmp_path: Path) -> None:
    cut = _cut(_copy(tmp_path, "speech.wav"), tmp_path / "cut.wav")
    before = cut.read_bytes()
    report = verify(cut)
    assert report.errors == [] and any("wav is truncated" in w for w in report.warnings), report.warnings
    out = tmp_path / "labeled.wav"
    result = label_file(cut, out, RECORD)
    assert any("damaged wav file: it is truncated" in w for w in result.warnings), result.warnings
    assert cut.read_bytes() == before
    riff_end, size, data_size, present = _sizes(out)
    # every size field holds, and the sample cut in two is dropped (16-bit mono: 2-byte frames)
    assert riff_end == size and data_size == present and data_size % 2 == 0
    assert sf.info(out).frames == data_size // 2
    done = verify(out)
    assert done.verdict == "confirmed" and done.warnings == []


def test_a_labeled_wav_cut_short_verifies_with_the_cut_said(tmp_path: Path) -> None:
    labeled = tmp_path / "labeled.wav"
    label_file(_copy(tmp_path, "speech.wav"), labeled, RECORD)
    report = verify(_cut(labeled, tmp_path / "cut.wav"))
    assert report.verdict == "confirmed"
    assert any("wav is truncated" in w and "labels before the cut were read" in w for w in report.warnings)


def test_a_streamed_wav_of_unknown_size_is_no_cut(tmp_path: Path) -> None:
    piped = tmp_path / "piped.wav"
    with open(piped, "wb") as out:  # ffmpeg writing to a pipe leaves the sizes 0xFFFFFFFF
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(_copy(tmp_path, "speech.wav")), "-f", "wav",
                        "-"], stdout=out, check=True)
    assert _sizes(piped)[2] == 0xFFFFFFFF
    assert verify(piped).warnings == []
    assert label_file(piped, tmp_path / "out.wav", RECORD).warnings == []


# --- 5. a folder as the manifest store ---------------------------------------------------------------------
def test_a_folder_as_manifest_store_is_said_to_be_a_folder(tmp_path: Path) -> None:
    marked = tmp_path / "marked.jpg"
    label_file(_copy(tmp_path, "photo.jpg"), marked, RECORD, layers="watermark,metadata", key=KEY)
    report = verify(marked, key=KEY, manifest_store=str(tmp_path))
    assert any("is a folder, not a store file" in w for w in report.warnings), report.warnings
    with pytest.raises(LabelerError, match="is a folder"):
        open_store(str(tmp_path))


# --- 6. hints for library callers --------------------------------------------------------------------------
def test_missing_key_and_signer_name_the_python_argument(tmp_path: Path) -> None:
    data = _copy(tmp_path, "photo.jpg").read_bytes()
    with pytest.raises(LabelerError, match="needs a key") as key:
        label(data, RECORD, layers="watermark")
    assert "key=" in str(key.value) and "--key-file" in str(key.value)
    with pytest.raises(LabelerError, match="needs a signer") as signer:
        label(data, RECORD, layers="c2pa")
    assert "signer=" in str(signer.value) and "--sign-cert" in str(signer.value)


# --- 7. an MP3 or WAV too short to hold sound --------------------------------------------------------------
@pytest.mark.parametrize("name, kind", [("speech.mp3", "MP3"), ("speech.wav", "WAV")])
@pytest.mark.parametrize("layers", ["watermark", "visible"])
def test_a_12_byte_audio_file_is_said_to_be_unreadable(tmp_path: Path, name: str, kind: str,
                                                       layers: str) -> None:
    tiny = tmp_path / f"tiny{Path(name).suffix}"
    tiny.write_bytes(_copy(tmp_path, name).read_bytes()[:12])
    with pytest.raises(LabelerError, match=f"not a readable {kind} file") as exc:
        label_file(tiny, tmp_path / f"out{tiny.suffix}", RECORD, layers=layers, key=KEY)
    assert "invalid" not in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / f"out{tiny.suffix}").exists()
