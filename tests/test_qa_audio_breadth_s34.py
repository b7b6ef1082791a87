"""QA: WAV encodings libsndfile cannot write back are refused in one line, not silently changed.

Found by a QA pass over a demanding user's audio (December 2026): a WAV holding G.726 or Yamaha ADPCM
(which libsndfile does not read, so ffmpeg decodes it) came out of ``--layers watermark`` or
``visible`` as 16-bit PCM, four times the size, without a word; a WAV holding MP3 (format 0x55, which
libsndfile reads but cannot write) failed with "Error opening <labeler.media.audio_write.Sink object at
0x7f...>: Supported file format but unsupported encoding". The metadata layer, which copies the samples
byte for byte, labels both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, ffmpeg_exe, seeded_key_file

from labeler.errors import UnsupportedFormat
from labeler.media.audio_rewrite import rewrite_audio_file

CLI = [sys.executable, "-m", "labeler.cli"]


def _wav(tmp_path: Path, codec: str, rate: int) -> Path:
    src = tmp_path / f"{codec}.wav"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", f"sine=frequency=440:duration=3:sample_rate={rate}", "-c:a", codec, str(src)],
                   check=True, capture_output=True, timeout=120)
    return src


def _quieter(samples: np.ndarray, rate: int) -> np.ndarray:
    return samples * 0.9


@pytest.mark.parametrize(("codec", "rate"), [("adpcm_g726", 8000), ("adpcm_yamaha", 22050),
                                             ("libmp3lame", 44100)])
def test_wav_codec_that_cannot_be_written_back_is_refused(tmp_path: Path, codec: str, rate: int) -> None:
    src = _wav(tmp_path, codec, rate)
    before = src.read_bytes()
    dst = tmp_path / "out.wav"
    with pytest.raises(UnsupportedFormat) as caught:
        rewrite_audio_file(src, dst, _quieter)
    message = str(caught.value)
    assert "\n" not in message and "object at" not in message, message
    assert "--layers metadata" in message, message
    assert not dst.exists() and src.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name not in (src.name,)], "a scratch file was left"


def test_wav_codec_refusal_is_one_line_from_the_cli(tmp_path: Path) -> None:
    src = _wav(tmp_path, "adpcm_g726", 8000)
    key = seeded_key_file(tmp_path / "wm.key")
    record = ["--producer", PRODUCER, "--produce-id", "s34-1"]
    run = subprocess.run([*CLI, "label", *record, "--layers", "watermark,metadata", "--key-file", str(key),
                          str(src), str(tmp_path / "marked.wav")], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    lines = run.stderr.splitlines()
    assert run.returncode != 0 and len(lines) == 1 and lines[0].startswith("aigc: error: "), run.stderr
    assert "adpcm_g726" in lines[0], lines[0]
    assert not (tmp_path / "marked.wav").exists()
    # the metadata layer copies the samples as they are: that still labels the file
    meta = subprocess.run([*CLI, "label", *record, str(src), str(tmp_path / "meta.wav")], capture_output=True,
                          text=True, timeout=120)
    assert meta.returncode == 0, meta.stderr


def test_ffmpeg_decoded_pcm_wav_keeps_its_sample_format() -> None:
    # a WAV libsndfile rejects but ffmpeg decodes keeps its PCM encoding instead of becoming 16-bit
    from labeler.media.audio_sndfile import wav_subtype

    assert wav_subtype("pcm_s24le") == "PCM_24" and wav_subtype("pcm_f64le") == "DOUBLE"
    assert wav_subtype("PCM_U8") == "PCM_U8" and wav_subtype("adpcm_ms") == "MS_ADPCM"
    with pytest.raises(UnsupportedFormat):
        wav_subtype("MPEG_LAYER_III")


def test_write_audio_refuses_an_encoding_libsndfile_cannot_write(tmp_path: Path) -> None:
    from labeler.media.audio_write import write_audio

    with pytest.raises(UnsupportedFormat, match="cannot hold subtype MPEG_LAYER_III"):
        write_audio(tmp_path / "x.wav", np.zeros((800, 1), np.float32), 8000, subtype="MPEG_LAYER_III")
    assert not list(tmp_path.iterdir())


def _hot_float_wav(tmp_path: Path, codec: str) -> Path:
    """A float WAV peaking at +6 dBFS: legal in a float file (mixes and stems carry such headroom)."""
    src = tmp_path / f"hot_{codec}.wav"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=3:sample_rate=44100", "-af", "volume=16",
                    "-c:a", codec, str(src)], check=True, capture_output=True, timeout=120)
    return src


@pytest.mark.parametrize("codec", ["pcm_f32le", "pcm_f64le"])
def test_float_wav_keeps_its_overs(tmp_path: Path, codec: str) -> None:
    # a float WAV above full scale came back hard-clipped at +-1.0 (a third of the samples flattened)
    import soundfile as sf

    src = _hot_float_wav(tmp_path, codec)
    peak = float(np.abs(sf.read(src)[0]).max())
    assert peak > 1.9
    whole = tmp_path / "whole.wav"
    rewrite_audio_file(src, whole, _quieter)
    assert float(np.abs(sf.read(whole)[0]).max()) == pytest.approx(0.9 * peak, rel=1e-3)


def test_float_wav_keeps_its_overs_through_the_watermark(tmp_path: Path) -> None:
    import soundfile as sf

    src = _hot_float_wav(tmp_path, "pcm_f32le")
    key = seeded_key_file(tmp_path / "wm.key")
    out = tmp_path / "marked.wav"
    run = subprocess.run([*CLI, "label", "--producer", PRODUCER, "--produce-id", "s34-2", "--layers",
                          "watermark,metadata", "--key-file", str(key), str(src), str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    samples = sf.read(out)[0]
    assert sf.info(out).subtype == "FLOAT" and float(np.abs(samples).max()) > 1.5
    flat = int((np.abs(np.abs(samples) - 1.0) < 1e-6).sum())  # samples flattened at full scale
    assert flat < len(samples) // 100, flat
