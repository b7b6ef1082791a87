"""QA (session 34): partial and odd input files that ``aigc label`` handled silently or misreported.

Found by a QA pass over cut and unusual inputs (December 2026):

* a JPEG cut in its scan, labeled with the metadata layer, was written without a word (verify called
  it ``damaged jpeg file``, and the pixel layers refuse it);
* an MP3 cut short was labeled silently by every layer (ffmpeg decodes it to the cut without an error);
* a FLAC whose STREAMINFO gives no total sample count (``ffmpeg ... -f flac -``, legal) was refused by
  the sample layers and verify's watermark read as "9223372036854775807 frames ... too long";
* a float WAV's PEAK chunk carried libsndfile's time of writing, so labeling one file twice gave two
  different files.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import PRODUCER, SAMPLES, ffmpeg_exe, run_cli, run_ffmpeg, seeded_key_file

LABEL = ("label", "--producer", PRODUCER, "--produce-id", "qa-s34")


def _label(src: Path, dst: Path, layers: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*LABEL, "--layers", layers, *extra, str(src), str(dst))


# --------------------------------------------------------------------------- JPEG cut in its scan


def test_jpeg_cut_in_scan_labeled_with_metadata_says_it_is_damaged(tmp_path):
    data = (SAMPLES / "photo.jpg").read_bytes()
    src = tmp_path / "cut.jpg"
    src.write_bytes(data[: len(data) // 2])
    proc = _label(src, tmp_path / "out.jpg", "metadata")
    assert proc.returncode == 0, proc.stderr
    assert "damaged jpeg file: it is truncated (it ends within its image data" in proc.stderr
    assert (tmp_path / "out.jpg").exists()
    assert src.read_bytes() == data[: len(data) // 2]  # the input is only read


@pytest.mark.parametrize(("name", "fmt"), [("photo.jpg", "jpeg"), ("speech.mp3", "mp3")])
def test_label_on_bytes_warns_of_a_cut_file_too(name, fmt):
    """label(bytes) gives the same damage warning as a path: it is one of the input's notes."""
    from labeler import LabelWarning, label
    from labeler.record import AIGCLabel

    data = (SAMPLES / name).read_bytes()
    record = AIGCLabel(content_producer=PRODUCER, produce_id="qa-s34")
    with pytest.warns(LabelWarning, match=f"damaged {fmt} file: it is truncated"):
        out = label(data[: len(data) // 2 + 37], record, layers="metadata")
    assert isinstance(out, bytes) and len(out) > len(data) // 2


def test_complete_jpeg_gives_no_damage_warning(tmp_path):
    proc = _label(SAMPLES / "photo.jpg", tmp_path / "out.jpg", "metadata")
    assert proc.returncode == 0, proc.stderr
    assert "damaged" not in proc.stderr


# --------------------------------------------------------------------------- MP3 cut short


def _frame_boundaries(data: bytes) -> list[int]:
    """Offsets of the MPEG audio frames of ``data`` (after its ID3v2 tag), as the warning walks them."""
    from labeler.media.mp3_cut import _frame
    from labeler.metadata.id3 import tag_length

    pos, bounds = tag_length(data[:10]) or 0, []
    pos = data.index(b"\xff", pos)
    while (info := _frame(data[pos : pos + 4])) is not None:
        bounds.append(pos)
        pos += info[0]
    return bounds


@pytest.mark.parametrize("layers", ["metadata", "visible", "watermark", "metadata,watermark"])
def test_mp3_cut_mid_frame_is_labeled_with_a_warning(tmp_path, layers):
    data = (SAMPLES / "speech.mp3").read_bytes()
    src = tmp_path / "cut.mp3"
    src.write_bytes(data[: len(data) // 2 + 37])
    key = seeded_key_file(tmp_path / "k.key")
    proc = _label(src, tmp_path / "out.mp3", layers, "--key-file", str(key))
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "damaged mp3 file: it is truncated" in line]
    assert len(warned) == 1, proc.stderr  # once, however many layers read the source
    assert "lacks" in warned[0] and "s of sound before the cut" in warned[0]


def test_mp3_cut_on_a_frame_boundary_is_told_by_its_xing_header(tmp_path):
    if b"Info" not in (SAMPLES / "speech.mp3").read_bytes()[:2048]:
        pytest.skip("samples/speech.mp3 has no Xing/Info header")
    data = (SAMPLES / "speech.mp3").read_bytes()
    bounds = _frame_boundaries(data)
    src = tmp_path / "cut.mp3"
    src.write_bytes(data[: bounds[len(bounds) // 2]])
    proc = _label(src, tmp_path / "out.mp3", "metadata")
    assert proc.returncode == 0, proc.stderr
    assert "damaged mp3 file: it is truncated (it holds" in proc.stderr


def test_whole_mp3s_give_no_damage_warning(tmp_path):
    from labeler.media.mp3_cut import mp3_cut_note

    plain = tmp_path / "noxing.mp3"  # no Xing header: only the frames tell
    run_ffmpeg("-i", str(SAMPLES / "speech.wav"), "-c:a", "libmp3lame", "-b:a", "96k", "-write_xing", "0",
               str(plain))
    for path in (SAMPLES / "speech.mp3", plain):
        assert mp3_cut_note(path) is None
        proc = _label(path, tmp_path / f"out-{path.name}", "metadata")
        assert proc.returncode == 0 and "damaged" not in proc.stderr, proc.stderr
    data = plain.read_bytes()
    assert mp3_cut_note(data[:-7]) is not None  # and the same file cut short is told


def test_mp3_cut_note_survives_garbage():
    from labeler.media.mp3_cut import mp3_cut_note

    data = (SAMPLES / "speech.mp3").read_bytes()
    rng = np.random.default_rng(34)
    for _ in range(300):
        junk = bytearray(data[: int(rng.integers(0, 4000))])
        for at in rng.integers(0, max(len(junk), 1), 8):
            if junk:
                junk[int(at)] = int(rng.integers(0, 256))
        mp3_cut_note(bytes(junk))  # None or a note, never an exception
    assert mp3_cut_note(b"") is None


# --------------------------------------------------------------------------- FLAC without a length


def _piped_flac(tmp_path: Path, bits: int) -> tuple[Path, Path]:
    """speech.wav at ``bits`` bits, and the FLAC ffmpeg writes of it to a pipe (STREAMINFO total 0)."""
    pcm = tmp_path / f"s{bits}.wav"
    samples, rate = sf.read(SAMPLES / "speech.wav", dtype="int16")
    sf.write(pcm, samples, rate, subtype=f"PCM_{bits}")
    flac = tmp_path / f"piped{bits}.flac"
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(pcm),
                           "-c:a", "flac", "-f", "flac", "-"], capture_output=True, check=True, timeout=120)
    flac.write_bytes(proc.stdout)
    with sf.SoundFile(flac) as snd:
        assert snd.frames >= 1 << 62  # what the finding is about: libsndfile sees no length
    return pcm, flac


@pytest.mark.parametrize("bits", [16, 24])
def test_flac_without_a_length_is_labeled_at_its_bit_depth(tmp_path, bits):
    pcm, flac = _piped_flac(tmp_path, bits)
    out = tmp_path / "out.flac"
    proc = _label(flac, out, "visible")
    assert proc.returncode == 0, proc.stderr
    assert "too long" not in proc.stderr
    with sf.SoundFile(out) as snd:
        assert snd.subtype == f"PCM_{bits}"
        assert snd.frames > sf.info(pcm).frames  # the cue went before the whole programme
    # ffmpeg decodes it to the very floats libsndfile gives for the same samples
    from labeler.media.audio import read_audio

    assert np.array_equal(read_audio(flac).samples, read_audio(pcm).samples)


def test_flac_without_a_length_verifies_its_watermark(tmp_path):
    _, flac = _piped_flac(tmp_path, 16)
    key = seeded_key_file(tmp_path / "k.key")
    marked = tmp_path / "marked.flac"
    proc = _label(flac, marked, "watermark", "--key-file", str(key))
    assert proc.returncode == 0, proc.stderr
    piped = tmp_path / "marked-piped.flac"
    piped.write_bytes(subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
                                      "-i", str(marked), "-c:a", "flac", "-f", "flac", "-"],
                                     capture_output=True, check=True, timeout=120).stdout)
    proc = run_cli("verify", "--key-file", str(key), "--layers", "watermark", str(piped))
    assert "too long" not in proc.stdout + proc.stderr
    assert "watermark audio payload=" in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- float WAV PEAK chunk


def _peak_time(path: Path) -> int:
    data = path.read_bytes()
    at = data.index(b"PEAK")
    return struct.unpack_from("<I", data, at + 12)[0]  # after the header (8) and the version (4)


def _float_wav(tmp_path: Path) -> Path:
    samples, rate = sf.read(SAMPLES / "speech.wav", dtype="float32")
    src = tmp_path / "float.wav"
    sf.write(src, samples, rate, subtype="FLOAT")  # libsndfile adds a PEAK chunk
    assert b"PEAK" in src.read_bytes()
    return src


def test_float_wav_with_peak_chunk_labels_repeatably(tmp_path):
    src = _float_wav(tmp_path)
    key = seeded_key_file(tmp_path / "k.key")
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    for out in (first, second):
        proc = _label(src, out, "visible,watermark", "--key-file", str(key))
        assert proc.returncode == 0, proc.stderr
    # libsndfile stamped the time of writing: equal bytes only within one second, a stamp of 0 always
    assert _peak_time(first) == 0
    assert first.read_bytes() == second.read_bytes()


def test_whole_file_audio_path_writes_a_steady_peak_chunk(tmp_path):
    from labeler.media.audio_rewrite import rewrite_audio_file
    from labeler.media.audio_write import write_audio

    src = _float_wav(tmp_path)
    out = tmp_path / "out.wav"
    rewrite_audio_file(src, out, lambda x, rate: x * np.float32(0.5))  # no streaming form: decoded whole
    assert _peak_time(out) == 0
    peak = out.read_bytes()[out.read_bytes().index(b"PEAK") + 16 :][:4]
    assert struct.unpack("<f", peak)[0] == pytest.approx(np.abs(sf.read(out)[0]).max(), rel=1e-6)
    direct = tmp_path / "direct.wav"
    write_audio(direct, np.full((100, 1), 0.25, np.float32), 8000, subtype="FLOAT")
    assert _peak_time(direct) == 0
