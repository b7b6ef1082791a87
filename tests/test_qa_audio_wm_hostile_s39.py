"""QA: the audio watermark on hostile and unusual input (December 2026, s39).

Found by a QA pass over real files made with ffmpeg / sox (float / 8-, 24-, 32-bit WAV, 8 and 64
channels, 8-192 kHz, FLAC, MP3, M4A, Opus, Vorbis, 0.2 s, silence, DC, square waves at 0 dBFS, a huge
header and no samples) and over arrays of every dtype and shape:

* a 32-bit float WAV whose samples are finite but huge (1e20: a float file written in the wrong scale)
  was "labeled" with exit 0 and a payload reported, and the output was all zeros: the float32 band
  energies overflowed, the mark was NaN everywhere and the writer turned NaN into silence. The
  detector read it with RuntimeWarnings on stderr and p = 1 without saying why. Now both refuse it as
  they refuse NaN / inf (``UnreadableSamples``): a one-line error, no output; verify's note says why;
* a video whose soundtrack is at a rate the audio mark cannot use (AAC at 7350 Hz, PCM at 384 kHz)
  failed to label at all ("sample rate must be an integer from 8000 to 192000 Hz"), although its
  frames had been marked: the soundtrack is now copied unmarked, with the reason in the result, as a
  silent one is;
* a stereo file with one channel in inverted polarity (the channels cancel in the mono mix the mark is
  computed from) was correctly left unmarked but the warning called it "digital silence".
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, run_ffmpeg, seeded_key, seeded_key_file

from detectors.watermark import detect_audio
from detectors.watermark_audio import AudioDetector
from labeler.watermark import embed_audio
from labeler.watermark.payload import WatermarkError

KEY = seeded_key("qa-audio-wm-hostile-s39")
PAYLOAD = bytes(range(8))


def _noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated noise (float32 (n, channels), peak ~0.5): sound in every marked band."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = np.random.default_rng(seed).standard_normal((n, channels)) * 0.1
    return (x * (1.0 + 0.8 * np.sin(2 * np.pi * 3 * t))[:, None]).astype(np.float32)


def _raw(path: Path, samples: np.ndarray) -> Path:
    path.write_bytes(np.ascontiguousarray(samples, "<f4").tobytes())
    return path


def _one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


# --- huge finite float samples --------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e18, 1e20])
def test_huge_float_samples_are_refused_not_marked_as_nan(scale: float) -> None:
    x = _noise(3.0, 16000) * np.float32(scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow used to warn, then give NaN
        with pytest.raises(WatermarkError, match="cannot exceed"):
            embed_audio(x, 16000, PAYLOAD, key=KEY)
        r = detect_audio(x, 16000, key=KEY)
        assert not r.found and r.p_value == 1.0 and "cannot exceed" in (r.reason or "")
        with pytest.raises(WatermarkError, match="cannot exceed"):
            AudioDetector(16000, key=KEY).push(x)
        # float64 far beyond float32 is named by its own value, not as the inf of its conversion
        with pytest.raises(WatermarkError, match="1e\\+300"):
            embed_audio(x.astype(np.float64) / np.abs(x).max() * 1e300, 16000, PAYLOAD, key=KEY)


def test_integer_scaled_float_samples_still_carry_the_mark() -> None:
    # float arrays holding int32-range values (+-2**31) are a plausible mistake that worked: the mark is
    # relative to the sound, so they must keep working
    x = _noise(8.0, 16000, 2) * np.float32(2.0**31)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        marked = embed_audio(x, 16000, PAYLOAD, key=KEY)
        assert np.isfinite(marked).all()
        r = detect_audio(marked, 16000, key=KEY)
    assert r.found and r.payload == PAYLOAD


def test_float_wav_of_huge_samples_fails_cleanly_and_verify_says_why(tmp_path: Path) -> None:
    src = run_ffmpeg("-f", "f32le", "-ar", "44100", "-ac", "1", "-i",
                     _raw(tmp_path / "x.f32", _noise(4.0, 44100) * np.float32(1e20)),
                     "-c:a", "pcm_f32le", tmp_path / "huge.wav")
    before = src.read_bytes()
    key = seeded_key_file(tmp_path / "key")
    out = tmp_path / "out.wav"
    proc = run_cli("label", str(src), str(out), "--producer", "acme", "--produce-id", "qa-s39",
                   "--layers", "watermark", "--key-file", str(key))
    # was: exit 0, "watermark audio payload ...", and an all-zero out.wav
    assert proc.returncode != 0, proc.stdout
    _one_line_error(proc.stderr)
    assert "cannot exceed" in proc.stderr
    assert not out.exists() and src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.wav", "key", "x.f32"]  # nothing left over
    proc = run_cli("verify", str(src), "--key-file", str(key), "--json")
    assert proc.returncode == 0 and "Warning" not in proc.stderr, proc.stderr
    mark = json.loads(proc.stdout)["layers"]["watermark"]
    assert mark["present"] is False and mark["checked"] is False and "cannot exceed" in mark["note"], mark


# --- a video's soundtrack at a rate the mark cannot use ---------------------------------------------------


def test_video_with_a_7350_hz_soundtrack_is_labeled_and_the_track_copied(tmp_path: Path) -> None:
    src = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=256x192:r=25:d=2", "-f", "lavfi", "-i",
                     "anoisesrc=d=2:c=pink:a=0.2:r=7350", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                     "-c:a", "aac", "-shortest", tmp_path / "v.mp4")
    key = seeded_key_file(tmp_path / "key")
    out = tmp_path / "out.mp4"
    proc = run_cli("label", str(src), str(out), "--producer", "acme", "--produce-id", "qa-s39",
                   "--layers", "watermark", "--key-file", str(key), "--json")
    # was: exit 2, "sample rate must be an integer from 8000 to 192000 Hz, not 7350", no output
    assert proc.returncode == 0, proc.stderr
    mark = json.loads(proc.stdout)["layers"]["watermark"]
    assert mark["audio"].startswith("copied (sample rate 7350 Hz"), mark
    from labeler.media import ffmpeg as ff

    audio = ff.probe(out).audio
    assert [(a.codec, a.sample_rate) for a in audio] == [("aac", 7350)]
    proc = run_cli("verify", str(out), "--key-file", str(key), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["layers"]["watermark"]["present"] is True


# --- channels that cancel ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_inverted_channel_is_not_called_digital_silence(tmp_path: Path, suffix: str) -> None:
    x = _noise(3.0, 16000)
    src = run_ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "2", "-i",
                     _raw(tmp_path / "x.f32", np.concatenate([x, -x], axis=1)),
                     "-c:a", "pcm_s16le" if suffix == ".wav" else "flac", "-sample_fmt", "s16",
                     tmp_path / f"anti{suffix}")
    key = seeded_key_file(tmp_path / "key")
    out = tmp_path / f"out{suffix}"
    proc = run_cli("label", str(src), str(out), "--producer", "acme", "--produce-id", "qa-s39",
                   "--layers", "watermark", "--key-file", str(key), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["layers"]["watermark"]["embedded"] is False
    assert "no watermark was embedded" in proc.stderr and "cancel" in proc.stderr, proc.stderr
    assert "digital silence" not in proc.stderr  # it is audible: each channel is the full noise
    proc = run_cli("verify", str(out), "--key-file", str(key), "--json")
    assert json.loads(proc.stdout)["layers"]["watermark"]["present"] is False


def test_whole_file_step_notes_cancelled_and_silent_audio_apart() -> None:
    # the whole-file form (Ogg, a video's audio-only remux...) of the same step, without a file
    from types import SimpleNamespace

    from labeler.stages_audio import CANCELLED_AUDIO_NOTE, SILENT_AUDIO_NOTE, _audio_watermark_step

    x = _noise(2.0, 16000)
    for samples, note in [(np.concatenate([x, -x], axis=1), CANCELLED_AUDIO_NOTE),
                          (np.zeros((32000, 2), np.float32), SILENT_AUDIO_NOTE)]:
        call = SimpleNamespace(options=SimpleNamespace(watermark=SimpleNamespace(key=KEY, strength=None)),
                               record=SimpleNamespace(produce_id="qa-s39"), warnings=[])
        done: dict = {}
        marked = _audio_watermark_step(call, done)(samples, 16000)
        assert np.array_equal(marked, samples)
        assert done["watermark"]["embedded"] is False and call.warnings == [note]


# --- hostile arrays: a clear result, never a false detection ------------------------------------------------


@pytest.mark.parametrize("name", ["silence", "dc", "square0dBFS", "clipped", "uint8", "int32", "8ch", "tiny"])
def test_hostile_arrays_with_another_key_are_never_found(name: str) -> None:
    rate = 8000
    x = _noise(4.0, rate, seed=3)[:, 0]
    t = np.arange(x.size) / rate
    arrays = {
        "silence": np.zeros(x.size, np.float32),
        "dc": np.full(x.size, 0.5, np.float32),
        "square0dBFS": np.where(np.sin(2 * np.pi * 440 * t) >= 0, 1.0, -1.0).astype(np.float32),
        "clipped": np.clip(x * 20, -1, 1),
        "uint8": (x * 100 + 128).astype(np.uint8),
        "int32": (x * 2e9).astype(np.int32),
        "8ch": np.tile(x[:, None], (1, 8)),
        "tiny": x * np.float32(1e-30),
    }
    samples = arrays[name]
    before = samples.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        marked = embed_audio(samples, rate, PAYLOAD, key=KEY)
        assert marked.shape == samples.shape and marked.dtype == np.float32 and np.isfinite(marked).all()
        if samples.dtype.kind in "iu":
            assert np.abs(marked).max() <= 1.0  # written back to the same integer format
        r = detect_audio(marked, rate, key=seeded_key("another key"))
    assert np.array_equal(samples, before)
    assert not r.found and r.payload is None
    assert 0.0 <= r.p_value <= 1.0 and 0.0 <= r.zero_bit_p_value <= 1.0


# --- the streaming embedder on integer PCM ------------------------------------------------------------------


def test_streamed_integer_blocks_come_back_clipped_as_from_embed_audio() -> None:
    # a full-scale int16 square wave: the mark's overshoot came back at 1.115 from the blocks (0 from
    # the whole-file call), which wraps around when scaled back to int16
    from labeler.watermark.audio import embed_audio_blocks

    rate = 16000
    t = np.arange(4 * rate) / rate
    square = np.where(np.sin(2 * np.pi * 440 * t) >= 0, 32767, -32768).astype(np.int16)
    whole = embed_audio(square, rate, PAYLOAD, key=KEY)
    blocks = [square[i:i + 5000] for i in range(0, square.size, 5000)]
    streamed = np.concatenate(list(embed_audio_blocks(blocks, rate, 1, PAYLOAD, key=KEY)))[:, 0]
    assert np.abs(streamed).max() <= 1.0
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


# --- lengths in messages: rounded down, never showing the limit they fall short of --------------------------


def test_streamed_label_of_a_file_just_under_one_second_does_not_say_one_second(tmp_path: Path) -> None:
    src = run_ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "1", "-i",
                     _raw(tmp_path / "x.f32", _noise(1.0, 16000)[:15999]), "-c:a", "pcm_s16le",
                     tmp_path / "short.wav")
    key = seeded_key_file(tmp_path / "key")
    proc = run_cli("label", str(src), str(tmp_path / "out.wav"), "--producer", "acme",
                   "--produce-id", "qa-s39", "--layers", "watermark", "--key-file", str(key))
    assert proc.returncode != 0
    _one_line_error(proc.stderr)
    assert "(0.99 s < 1 s)" in proc.stderr, proc.stderr  # was "(1.00 s < 1 s)" (the streamed path rounded)
    assert not (tmp_path / "out.wav").exists()


def test_label_warning_and_verify_note_give_the_same_length_just_under_the_read_limit(tmp_path: Path) -> None:
    src = run_ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "1", "-i",
                     _raw(tmp_path / "x.f32", _noise(1.5, 16000)[:23999]), "-c:a", "pcm_s16le",
                     tmp_path / "short.wav")
    key = seeded_key_file(tmp_path / "key")
    out = tmp_path / "out.wav"
    proc = run_cli("label", str(src), str(out), "--producer", "acme", "--produce-id", "qa-s39",
                   "--layers", "watermark", "--key-file", str(key))
    assert proc.returncode == 0, proc.stderr
    # was "the audio is 1.50 s long and the detector reads 1.5 s or more", while verify said 1.49 s
    assert "the audio is 1.49 s long" in proc.stderr, proc.stderr
    proc = run_cli("verify", str(out), "--key-file", str(key), "--json")
    assert json.loads(proc.stdout)["layers"]["watermark"]["note"] == "too short to carry a watermark (1.49 s)"


@pytest.mark.parametrize(("frames", "rate", "shown"), [(16240, 8000, "2.03"), (4640, 16000, "0.29")])
def test_too_short_lengths_are_exact_hundredths(frames: int, rate: int, shown: str) -> None:
    # floor(frames / rate * 100) fell just below the hundredth: 2.03 s read "2.02 s", 0.29 s "0.28 s"
    x = _noise(frames / rate + 0.01, rate)[:frames, 0]
    if frames < rate:
        with pytest.raises(WatermarkError, match=f"\\({shown} s < 1 s\\)"):
            embed_audio(x, rate, PAYLOAD, key=KEY)
    if frames < 1.5 * rate:
        assert detect_audio(x, rate, key=KEY).reason == f"too short to carry a watermark ({shown} s)"
    from labeler.stages_audio import short_audio_note

    assert f"the audio is {shown} s long" in short_audio_note(frames / rate)

