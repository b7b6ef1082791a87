"""Audio watermark: embed_audio / detect_audio on real speech and synthesized music, through real encoders.

Attacks run through the project's ffmpeg (``labeler.media.ffmpeg.ffmpeg_exe``). Measured rates over the
whole attack grid are in ``benchmarks/RESULTS.md`` (``benchmarks/audio_watermark.py``); these tests pin
behaviour: the payload comes back, the p-value and ``found`` are honest, bad input gives a clear answer.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, corpus_path

from detectors.audio_bandmap import _harmonic_predict, _time_whiten
from detectors.watermark import WatermarkResult, detect_audio
from detectors.watermark_audio import DECODINGS, LIST_SIZE
from labeler.media.ffmpeg import ffmpeg_exe
from labeler.watermark import WatermarkError, embed_audio
from labeler.watermark.audio import DEFAULT_SNR_DB, AudioEmbedder, embed_audio_blocks
from labeler.watermark.payload import conv_encode, info_bits, list_viterbi, split_info, viterbi_decode
from labeler.watermark.sync import null_tail

KEY = b"audio-test-key-0123456789abcdef!"
PAYLOAD = bytes.fromhex("0123456789abcdef")


def synth_music(seconds: float, fs: int = 44100, seed: int = 3) -> np.ndarray:
    """Stereo float32 music: a I-V-vi-IV progression of detuned sawtooth-like chords (12 harmonics, two
    voices 0.3 % apart, as a synth pad), a bass line, kick, snare and hi-hat, all vectorised over samples."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    bar = 2.0
    chord_of = np.array([[60, 64, 67], [55, 59, 62], [57, 60, 64], [53, 57, 60]])[(t // bar).astype(int) % 4]
    tb = t % bar
    env = 0.6 + 0.4 * np.exp(-tb / 0.8)
    pad = np.zeros((n, 2))
    for j in range(3):
        f0 = 440.0 * 2 ** ((chord_of[:, j] - 69) / 12)
        for c, detune in enumerate((0.997, 1.003)):
            phase = 2 * np.pi * np.cumsum(f0 * detune) / fs
            pad[:, c] += sum(np.sin(k * phase + k) / k for k in range(1, 13))
    bass = np.sin(2 * np.pi * np.cumsum(440.0 * 2 ** ((chord_of[:, 0] - 24 - 69) / 12)) / fs)
    tq = t % 0.5
    beat = (t // 0.5) % 2
    kick = np.exp(-tq / 0.05) * np.sin(2 * np.pi * (50 + 80 * np.exp(-tq / 0.03)) * tq) * (beat == 0)
    snare = np.exp(-tq / 0.04) * rng.normal(size=n) * (beat == 1)
    hat = np.exp(-(t % 0.25) / 0.01) * np.diff(rng.normal(size=n + 1))
    # a lead line two octaves up, a new note of the chord every 1/4 s (8 harmonics), and a reverb-like
    # noise floor 35 dB down: the spectrum is dense between the partials, as in recorded music
    note = chord_of[np.arange(n), ((t // 0.25) % 3).astype(int)] + 12
    lead_phase = 2 * np.pi * np.cumsum(440.0 * 2 ** ((note - 69) / 12)) / fs
    lead = sum(np.sin(k * lead_phase) / k for k in range(1, 9)) * np.exp(-(t % 0.25) / 0.15)
    room = np.cumsum(rng.normal(size=n)) * 0.002
    room -= np.convolve(room, np.ones(441) / 441, mode="same")
    mono = 0.15 * bass + 0.3 * kick + 0.1 * snare + 0.03 * hat + 0.03 * lead + room
    out = 0.05 * env[:, None] * pad + mono[:, None]
    return (0.9 * out / np.abs(out).max()).astype(np.float32)


def through_ffmpeg(x: np.ndarray, fs: int, tmp: Path, args: list[str], ext: str) -> tuple[np.ndarray, int]:
    """Write 16-bit WAV, run ``ffmpeg -i src ARGS dst.EXT``, decode back to float32 (n, ch) and its rate."""
    src, dst, dec = tmp / "src.wav", tmp / f"dst.{ext}", tmp / "dec.wav"
    sf.write(str(src), x, fs, subtype="PCM_16")
    run = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*run, "-i", str(src), *args, str(dst)], check=True, timeout=120)
    subprocess.run([*run, "-i", str(dst), "-c:a", "pcm_f32le", str(dec)], check=True, timeout=120)
    y, rate = sf.read(str(dec), dtype="float32", always_2d=True)
    return y, rate


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    d = (y.astype(np.float64) - x)
    return 10 * math.log10(float((x.astype(np.float64) ** 2).sum()) / float((d ** 2).sum()))


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    """samples/speech.wav (8.3 s, 22.05 kHz mono) three times: 25 s (the payload needs ~10-25 s of speech)."""
    x, fs = sf.read(str(SAMPLES / "speech.wav"), dtype="float32")
    return np.concatenate([x, x, x]), fs


@pytest.fixture(scope="module")
def music() -> tuple[np.ndarray, int]:
    return synth_music(40.0), 44100


@pytest.fixture(scope="module")
def marked_speech(speech: tuple[np.ndarray, int]) -> np.ndarray:
    return embed_audio(speech[0], speech[1], PAYLOAD, key=KEY)


@pytest.fixture(scope="module")
def marked_music(music: tuple[np.ndarray, int]) -> np.ndarray:
    return embed_audio(music[0], music[1], PAYLOAD, key=KEY)


def assert_found(r: WatermarkResult) -> None:
    assert r.found, r
    assert r.payload == PAYLOAD
    assert r.p_value <= 1e-6
    assert r.method == "audio"


# --- round trips ---------------------------------------------------------------------------------------


def test_round_trip_speech_and_music(speech, music, marked_speech, marked_music) -> None:
    for (x, fs), y in ((speech, marked_speech), (music, marked_music)):
        assert y.shape == x.shape and y.dtype == np.float32
        # the quality target is 30 dB; the block limit is measured on the overlap-added mark, so the file
        # comes out at the default floor (30.5 dB), not 0.2-0.5 dB below it as when it was estimated
        assert DEFAULT_SNR_DB - 0.05 <= snr_db(x, y) <= DEFAULT_SNR_DB + 1.0
        r = detect_audio(y, fs, key=KEY)
        assert_found(r)
        assert abs(r.speed - 1.0) < 0.01 and abs(r.pitch - 1.0) < 0.01
        expected = {"present": True, "payload": PAYLOAD.hex(), "p_value": r.p_value, "method": "audio"}
        assert r.to_dict() == expected
        unmarked = detect_audio(x, fs, key=KEY)
        assert not unmarked.found and unmarked.payload is None


def test_presence_from_3_s(speech, marked_speech, music, marked_music) -> None:
    # zero-bit presence (pilot only, p <= 1e-6) from 3 s excerpts; v1 (a quarter of the cells pilot,
    # shallower depth, no time whitening in the detector) reached z ~4 on 3 s of speech, never enough.
    # Speech: the excerpts with the most speech in the 8.3 s sample (z 7.8-8.6 with this key, margin
    # over the 6.6 needed); music: the test's synth pad, whose held chords the time whitening removes.
    fs = speech[1]
    for start in (10.0, 14.0, 19.0):
        r = detect_audio(marked_speech[int(start * fs): int((start + 3) * fs)], fs, key=KEY)
        assert r.zero_bit_p_value <= 1e-6, (start, r.z)
        clean = detect_audio(speech[0][int(start * fs): int((start + 3) * fs)], fs, key=KEY)
        assert clean.zero_bit_p_value > 1e-3 and not clean.found
    for start in (1.0, 25.0):
        r = detect_audio(marked_music[int(start * 44100): int((start + 3) * 44100)], 44100, key=KEY)
        assert r.zero_bit_p_value <= 1e-6, (start, r.z)


def test_presence_3_s_every_half_second(marked_speech, speech) -> None:
    # every 3 s excerpt of the 25 s test speech starting on a 0.5 s grid (44 excerpts): the detector's
    # 2-frame energy average before the log and the soft clip (December 2026) took this from 41/44 (the
    # hard clip at 1.5 on per-frame log energies missed 0.5, 2.5 and 20.0 s) to 43/44 (3.5 s misses,
    # z 5.9, p 3e-6; it passed before at z 6.04): a gain on average, not on every excerpt
    fs = speech[1]
    starts = np.arange(0.0, 22.0, 0.5)
    ps = [detect_audio(marked_speech[int(s * fs): int((s + 3) * fs)], fs, key=KEY).zero_bit_p_value
          for s in starts]
    misses = [(s, f"{p:.1g}") for s, p in zip(starts, ps, strict=True) if p > 1e-6]
    assert len(misses) <= 2, misses


def test_presence_nominal_speed_test(speech, marked_speech) -> None:
    # the nominal hypothesis (speed and pitch 1) gets half the false-positive budget on its own, so a 3 s
    # excerpt at the marked speed counts 2 x 192 phases instead of 59 hypotheses x 192: these two
    # excerpts (z 6.3 / 6.2) had zero-bit p 4e-6 / 1e-5 with the whole search alone
    fs = speech[1]
    for start in (3.0, 4.0):
        r = detect_audio(marked_speech[int(start * fs): int((start + 3) * fs)], fs, key=KEY)
        assert r.speed == 1.0 and r.pitch == 1.0
        assert r.zero_bit_p_value == pytest.approx(2 * 192 * null_tail(r.z), rel=1e-9)
        assert r.zero_bit_p_value <= 1e-6, (start, r.z)


def test_time_whitening_removes_held_content() -> None:
    # a map whose across-frequency pattern is held over time (a sustained chord) plus a little noise:
    # the whitening fits a weight near 1 and removes most of it; white noise alone is left as it is
    rng = np.random.default_rng(0)
    held = np.repeat(rng.normal(size=(1, 80)), 600, axis=0).astype(np.float32)
    noise = rng.normal(size=(600, 80)).astype(np.float32)
    out = _time_whiten(held + 0.1 * noise, 0.0116)
    assert float((out ** 2).mean()) < 0.05 * float(((held + 0.1 * noise) ** 2).mean())
    white = _time_whiten(noise.copy(), 0.0116)
    assert float(np.abs(white - noise).max()) < 0.2


def _vibrato_tone(f0: float, seconds: float = 3.0, fs: int = 22050, seed: int = 0) -> np.ndarray:
    """A sustained harmonic tone with vibrato under three formants, pulsing like syllables: a voiced
    sound (or a bowed note) whose resolved harmonics make its log spectrum a comb across the bands."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.06 * np.sin(2 * np.pi * 0.7 * t)
                                        + 0.01 * np.sin(2 * np.pi * 5.5 * t))) / fs
    x = np.zeros_like(t)
    for k in range(1, int(5000 // f0) + 1):
        fk = k * f0
        env = sum(a * np.exp(-0.5 * ((fk - c) / b) ** 2)
                  for c, b, a in ((700, 130, 1.0), (1200, 150, 0.5), (2600, 250, 0.25))) + 0.02
        x += env * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    x *= 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_harmonic_comb_is_removed_before_the_pilot_is_read(seed: int) -> None:
    """3 s of a voiced, harmonic sound whose pitch moves: its comb across the bands was host noise several
    times the mark's step (pilot z 3.5-3.7) until the detector removed it: each frame's outstanding
    components across the bands (2026-12-06, z 5.75 / 6.03), then the pitch-adaptive predictor
    (2026-12-08, z ~10; espeak-ng's female voices: benchmarks/RESULTS.md)."""
    x = _vibrato_tone(120.0, seed=seed)
    r = detect_audio(embed_audio(x, 22050, bytes(range(8)), key=KEY), 22050, key=KEY)
    assert r.z >= 8.0 and r.speed == 1.0 and r.pitch == 1.0, (r.z, r.speed, r.pitch)
    # the predictor is key-free, leaves an unvoiced (noise) map as it is, and takes a comb of any
    # spacing in its range away from a voiced one
    noise = np.random.default_rng(seed).normal(size=(400, 80)).astype(np.float32)
    unchanged = (_harmonic_predict(noise.copy()) == noise).all(axis=1)
    assert unchanged.mean() > 0.97, unchanged.mean()  # a frame of noise rarely looks voiced by chance
    for period in (2.8, 5.3, 7.5):
        comb = noise + 3.0 * np.sin(2 * np.pi * np.arange(80) / period).astype(np.float32)
        left = _harmonic_predict(comb.copy())
        # what is left is the noise and the prediction's share of it (mean of two bins a period away:
        # 1.5 x its energy), not the comb's 4.5
        assert float((left**2).mean()) < 1.5 * 1.2, period


def test_wrong_key_is_not_found(marked_speech, speech, marked_music) -> None:
    fs = speech[1]
    for key in (b"another key", KEY[:-1] + b"?"):
        r = detect_audio(marked_speech, fs, key=key)
        assert not r.found and r.payload is None and r.p_value > 1e-6
    assert not detect_audio(marked_music, 44100, key=b"another key").found


@pytest.mark.parametrize("codec", [
    (["-c:a", "libmp3lame", "-b:a", "128k"], "mp3"),
    (["-c:a", "aac", "-b:a", "64k"], "m4a"),
], ids=["mp3-128k", "aac-64k"])
def test_lossy_codecs_speech(codec, tmp_path, speech, marked_speech) -> None:
    decoded, rate = through_ffmpeg(marked_speech, speech[1], tmp_path, *codec)
    assert_found(detect_audio(decoded, rate, key=KEY))


def test_mp3_music(tmp_path, marked_music) -> None:
    mp3 = ["-c:a", "libmp3lame", "-b:a", "128k"]
    decoded, rate = through_ffmpeg(marked_music, 44100, tmp_path, mp3, "mp3")
    assert_found(detect_audio(decoded, rate, key=KEY))


def test_opus_32k_at_a_lower_snr(tmp_path, speech) -> None:
    # Opus re-synthesises the fine structure inside its own, wider bands, so one-bin cells lose most
    # of their modulation at the default 30.5 dB floor (benchmark: rarely decoded); at a 25 dB floor the
    # speech decodes after Opus 32k.
    x, fs = speech
    y = embed_audio(x, fs, PAYLOAD, key=KEY, snr_db=25.0)
    decoded, rate = through_ffmpeg(y, fs, tmp_path, ["-c:a", "libopus", "-b:a", "32k"], "ogg")
    assert rate == 48000  # read on a 48 kHz grid, embedded at 22.05 kHz: the bins are the same
    assert_found(detect_audio(decoded, rate, key=KEY))


def test_cut_and_excerpt(marked_music, marked_speech, speech) -> None:
    x, fs = marked_speech, speech[1]
    r = detect_audio(x[int(7.3 * fs):], fs, key=KEY)  # first 7.3 s cut
    assert_found(r)
    assert 0.0 <= r.offset_seconds < 3.08
    assert_found(detect_audio(marked_music[int(4.1 * 44100):], 44100, key=KEY))


@pytest.mark.parametrize("flt,speed", [("asetrate={r}*1.05,aresample={r}", 1.05), ("atempo=0.95", 0.95)],
                         ids=["replay+5%", "atempo0.95"])
def test_speed_changes(flt, speed, tmp_path, marked_speech, speech) -> None:
    fs = speech[1]
    args = ["-af", flt.format(r=fs), "-c:a", "pcm_f32le"]
    y, rate = through_ffmpeg(marked_speech, fs, tmp_path, args, "wav")
    r = detect_audio(y, rate, key=KEY)
    assert_found(r)
    assert abs(r.speed - speed) < 0.01
    assert r.zero_bit_p_value == pytest.approx(min(1.0, 2 * r.trials * null_tail(r.z)), rel=1e-9)


def test_resample_8k(tmp_path, marked_speech, speech) -> None:
    args = ["-af", "aresample=8000", "-c:a", "pcm_f32le"]
    y, rate = through_ffmpeg(marked_speech, speech[1], tmp_path, args, "wav")
    assert rate == 8000
    assert_found(detect_audio(y, rate, key=KEY))


def test_downmix_gain_and_noise(marked_music) -> None:
    rng = np.random.default_rng(1)
    mono = marked_music.mean(axis=1)
    # -6 dB, then white noise at 20 dB SNR
    noisy = 0.5 * mono + rng.normal(0, np.sqrt((0.25 * mono ** 2).mean() / 100), mono.shape)
    assert_found(detect_audio(noisy.astype(np.float32), 44100, key=KEY))


def test_speech_noise_20db(marked_speech, speech) -> None:
    # white noise at 20 dB SNR buries speech's quiet bins, where the depth rule puts much of the mark
    rng = np.random.default_rng(3)
    x = marked_speech
    noisy = x + rng.normal(0, np.sqrt(float((x ** 2).mean()) / 100), x.shape).astype(np.float32)
    assert_found(detect_audio(noisy, speech[1], key=KEY))


@pytest.mark.parametrize("seed", [9, 11])
def test_speech_noise_20db_list_decoding(seed, marked_speech, speech) -> None:
    # noise draws whose maximum-likelihood decodings all fail the CRC (the detector before the list
    # Viterbi and the reliability weights returned found=False, pilot z 11.1 / 11.9): a path of the list
    # passes, and the p-value pays for the list (2 x DECODINGS x LIST_SIZE CRC checks, Bonferroni)
    rng = np.random.default_rng(seed)
    x = marked_speech
    noisy = x + rng.normal(0, np.sqrt(float((x ** 2).mean()) / 100), x.shape).astype(np.float32)
    r = detect_audio(noisy, speech[1], key=KEY)
    assert_found(r)
    assert r.p_value == pytest.approx(r.zero_bit_p_value * 2 * DECODINGS * LIST_SIZE * 2.0 ** -16, rel=1e-6)


def test_list_viterbi() -> None:
    rng = np.random.default_rng(5)
    ml = listed = false_passes = 0
    for _ in range(60):
        payload = rng.bytes(8)
        code = conv_encode(info_bits(payload))
        soft = 0.75 * code + rng.normal(size=code.size).astype(np.float32)  # near the code's threshold
        paths = list_viterbi(soft, LIST_SIZE)
        assert np.array_equal(paths[0], viterbi_decode(soft))  # path 0 is the ML path
        assert len({p.tobytes() for p in paths}) == len(paths) == LIST_SIZE
        ml += split_info(paths[0]) == (payload, True)
        listed += any(split_info(p) == (payload, True) for p in paths)
        # without a codeword the list passes the CRC by chance, each path with probability 2**-16
        false_passes += sum(split_info(p)[1] for p in list_viterbi(rng.normal(size=code.size), LIST_SIZE))
    assert listed >= ml + 15, (ml, listed)
    assert false_passes <= 2  # expected 60 * 64 / 65536 = 0.06


# --- API -----------------------------------------------------------------------------------------------


def test_streaming_equals_whole_file(music) -> None:
    x, fs = music
    whole = embed_audio(x, fs, PAYLOAD, key=KEY)
    rng = np.random.default_rng(2)
    cuts = np.sort(rng.integers(0, x.shape[0], 12))
    blocks = np.split(x, cuts)
    streamed = np.concatenate(list(embed_audio_blocks(blocks, fs, 2, PAYLOAD, key=KEY)))
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    emb = AudioEmbedder(fs, 2, PAYLOAD, key=KEY)
    first = emb.push(x[:1000])
    assert first.shape[0] == 0  # output lags by up to one ~3 s block, never more


def test_streaming_detector(monkeypatch, speech, marked_speech) -> None:
    from detectors import watermark_audio

    monkeypatch.setattr(watermark_audio, "WINDOW_SECONDS", 20.0)
    x, fs = speech
    det = watermark_audio.AudioDetector(fs, key=KEY)
    found = None
    for s0 in range(0, marked_speech.shape[0], fs):  # 1 s blocks
        found = det.push(marked_speech[s0: s0 + fs])
        assert det._held < 21 * fs  # never more than one window plus one block in memory
        if found:
            break
    assert found is not None and found.blocks_read == 1 and s0 < 21 * fs  # decided after the first window
    assert_found(found)
    clean = watermark_audio.AudioDetector(fs, key=KEY)
    for s0 in range(0, x.shape[0], 4 * fs):
        assert clean.push(x[s0: s0 + 4 * fs]) is None
    r = clean.result()
    assert not r.found and r.blocks_read == 2  # a 20 s window and the 5 s rest


def test_integer_pcm_and_shapes(speech) -> None:
    x, fs = speech
    pcm = np.round(x * 32767).astype(np.int16)
    y = embed_audio(pcm, fs, PAYLOAD, key=KEY)
    assert y.shape == pcm.shape and y.dtype == np.float32 and np.abs(y).max() <= 1.0
    np.testing.assert_allclose(y, pcm / 32768.0, atol=0.05)
    assert_found(detect_audio(np.round(y * 32767).astype(np.int16), fs, key=KEY))  # int16 in to the detector
    u8 = (np.round(x * 120) + 128).astype(np.uint8)
    assert embed_audio(u8, fs, PAYLOAD, key=KEY).shape == u8.shape


def test_eight_channels_downmix(speech) -> None:
    x, fs = speech
    eight = x[:, None] * np.linspace(0.3, 1.0, 8, dtype=np.float32)
    y = embed_audio(eight, fs, PAYLOAD, key=KEY)
    assert y.shape == eight.shape
    d = y - eight
    np.testing.assert_allclose(d, np.repeat(d[:, :1], 8, axis=1), atol=1e-6)  # one mark on every channel
    assert_found(detect_audio(y, fs, key=KEY))
    assert_found(detect_audio(y.mean(axis=1), fs, key=KEY))


@pytest.mark.parametrize("rate", [8000, 192000])
def test_extreme_sample_rates(rate, tmp_path, speech) -> None:
    args = ["-af", f"aresample={rate}", "-c:a", "pcm_f32le"]
    x, rate_read = through_ffmpeg(speech[0], speech[1], tmp_path, args, "wav")
    assert rate_read == rate
    y = embed_audio(x, rate, PAYLOAD, key=KEY)
    assert snr_db(x, y) >= 30.0
    assert_found(detect_audio(y, rate, key=KEY))


# --- bad input -----------------------------------------------------------------------------------------


def test_bad_input_gives_a_clear_answer() -> None:
    fs = 44100
    silence = np.zeros((10 * fs, 2), np.float32)
    assert np.array_equal(embed_audio(silence, fs, PAYLOAD, key=KEY), silence)  # nothing added to silence
    r = detect_audio(silence, fs, key=KEY)
    assert not r.found and r.p_value == 1.0
    short = np.zeros(int(0.2 * fs), np.float32)
    with pytest.raises(WatermarkError, match="too short"):
        embed_audio(short, fs, PAYLOAD, key=KEY)
    r = detect_audio(short, fs, key=KEY)
    assert not r.found and "too short" in r.reason
    dc = np.full(5 * fs, 0.5, np.float32)
    assert not detect_audio(dc, fs, key=KEY).found
    clipped = np.clip(synth_music(8.0, seed=9) * 8, -1, 1)
    y = embed_audio(clipped, fs, PAYLOAD, key=KEY)
    assert np.isfinite(y).all()
    assert not detect_audio(clipped, fs, key=KEY).found
    for bad in (np.nan, np.inf):
        x = synth_music(3.0, seed=5)
        x[100, 0] = bad
        with pytest.raises(WatermarkError, match="NaN or infinite"):
            embed_audio(x, fs, PAYLOAD, key=KEY)
        r = detect_audio(x, fs, key=KEY)
        assert not r.found and "NaN" in r.reason
    for rate in (4000, 400000, 44100.5):
        with pytest.raises(WatermarkError, match="sample rate"):
            embed_audio(dc, rate, PAYLOAD, key=KEY)
    with pytest.raises(WatermarkError, match="shaped"):
        embed_audio(np.zeros((2, 2, 2), np.float32), fs, PAYLOAD, key=KEY)
    with pytest.raises(WatermarkError, match="8 bytes"):
        embed_audio(dc, fs, b"short", key=KEY)
    with pytest.raises(WatermarkError, match="key"):
        detect_audio(dc, fs, key=b"")


def test_label_on_silence_says_no_mark_and_declares_no_soft_binding(tmp_path, speech) -> None:
    """Digital silence gives the relative mark nothing to change: the label result says the watermark was
    not embedded (and warns) instead of reporting a payload, and C2PA declares no soft binding for it; a
    file with sound is marked and bound as before."""
    from detectors import verify
    from labeler import AIGCLabel, label_file
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki
    from labeler.stages_audio import SILENT_AUDIO_NOTE

    pki = init_test_pki(tmp_path / "pki")
    signer = local_signer(pki.chain, pki.signer_key)
    record = AIGCLabel("001191110102MACQD9K64010000", "silent-1")
    silent = tmp_path / "silence.wav"
    sf.write(str(silent), np.zeros((5 * 22050, 2), np.float32), 22050, subtype="PCM_16")
    out = tmp_path / "silence.labeled.wav"
    result = label_file(silent, out, record, layers="watermark,metadata,c2pa", key=KEY, signer=signer)
    assert result.layers["watermark"]["embedded"] is False
    assert SILENT_AUDIO_NOTE in result.warnings
    assert sf.read(str(out), dtype="int16")[0].any() == False  # noqa: E712 - still silence
    assert verify(out, trust_anchors=[pki.trust_anchor]).to_dict()["layers"]["c2pa"]["soft_binding"] is None
    x, fs = speech
    voiced = tmp_path / "speech.wav"
    sf.write(str(voiced), x, fs, subtype="PCM_16")
    result = label_file(voiced, tmp_path / "speech.labeled.wav", record, layers="watermark,c2pa", key=KEY,
                        signer=signer)
    assert result.layers["watermark"]["embedded"] is True and not result.warnings
    report = verify(tmp_path / "speech.labeled.wav", key=KEY, trust_anchors=[pki.trust_anchor]).to_dict()
    assert report["layers"]["c2pa"]["soft_binding"]["payload"] == result.layers["watermark"]["payload"]


def test_p_value_is_calibrated_over_keys(speech) -> None:
    # Under the null (no mark of this key) the zero-bit p-value must satisfy P(p <= a) <= a. 40 random
    # keys on an unmarked 4 s excerpt: the bound allows 4 below 0.1 on average; 12 or more would have
    # probability < 0.001 if the bound held.
    x, fs = speech
    clip = x[: 4 * fs]
    rng = np.random.default_rng(7)
    p = np.array([detect_audio(clip, fs, key=rng.bytes(16)).zero_bit_p_value for _ in range(40)])
    assert (p <= 0.1).sum() <= 11
    assert (p <= 1e-3).sum() == 0


# --- corpus (skipped without ../shared/corpus) ---------------------------------------------------------


@pytest.mark.parametrize("name", ["speech-en.wav", "music-piano.wav"])
def test_corpus_mp3_64k(name, tmp_path) -> None:
    x, fs = sf.read(str(corpus_path("audio", name)), dtype="float32")
    y = embed_audio(x, fs, PAYLOAD, key=KEY)
    assert snr_db(x, y) >= 30.0
    decoded, rate = through_ffmpeg(y, fs, tmp_path, ["-c:a", "libmp3lame", "-b:a", "64k"], "mp3")
    assert_found(detect_audio(decoded, rate, key=KEY))


@pytest.mark.parametrize("ext", ["wav", "mp3"])
def test_cue_at_the_start_and_watermark_on_a_held_tone(tmp_path, ext) -> None:
    """Both audio layers on tonal sound: the cue (which puts seconds of sound before the programme) goes
    first and the watermark covers the result, so verify reads the mark from the file as published and
    hears the cue. Marked first and moved by the cue, the mark on a held tone is lost (the detector's
    time alignment does not find a tone's mark moved by part of a cell)."""
    from detectors import verify
    from labeler import AIGCLabel, label_file
    from labeler.watermark import payload_from_produce_id

    fs = 44100
    t = np.arange(6 * fs) / fs
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    src = tmp_path / "tone.wav"
    sf.write(str(src), tone, fs, subtype="PCM_16")
    if ext == "mp3":
        mp3 = tmp_path / "tone.mp3"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-b:a", "192k", str(mp3)], check=True)
        src = mp3
    record = AIGCLabel("001191110102MACQD9K64010000", "tone-1")
    out = tmp_path / f"tone.labeled.{ext}"
    result = label_file(src, out, record, layers="watermark,visible", key=KEY)
    assert result.layers["watermark"]["embedded"] is True
    report = verify(out, key=KEY).to_dict()
    wm = report["layers"]["watermark"]
    assert wm["present"] and wm["payload"] == payload_from_produce_id("tone-1").hex()
    assert report["layers"]["visible"]["present"] and report["layers"]["visible"]["position"] == "start"


def _three_second_z(x: np.ndarray, fs: int, monkeypatch: pytest.MonkeyPatch | None = None,
                    **constants: float) -> tuple[np.ndarray, np.ndarray]:
    """Marked ``x`` (with the embedder's depth constants replaced by ``constants``) and the pilot z of
    eight evenly spaced 3 s excerpts, read by today's detector."""
    import labeler.watermark.audio as audio

    for name, value in constants.items():
        assert monkeypatch is not None
        monkeypatch.setattr(audio, name, value)
    y = embed_audio(x, fs, bytes(range(8)), key=KEY)
    n = 3 * fs
    zs = np.array([detect_audio(y[s0 : s0 + n], fs, key=KEY).z
                   for s0 in np.linspace(0, y.shape[0] - n, 8).astype(int)])
    return y, zs


def test_the_depth_rule_of_2026_12_07_reads_higher_and_older_marks_still_read(monkeypatch) -> None:
    # floor 0.2 -> 0.1, cap 0.95 -> 0.99, raises 0.7 of a cut: more 3 s z at the same SNR (issue #14's
    # high voices; here the sample speech), and a file marked with the constants before still decodes
    # (the detector is the same; only its depth weights follow the new constants)
    x, fs = sf.read(str(SAMPLES / "speech.wav"), dtype="float32", always_2d=True)
    _, new = _three_second_z(x, fs)
    old_y, old = _three_second_z(x, fs, monkeypatch, MASK_LO=0.2, ALPHA_MAX=0.95, RISE=1.0)
    assert new.mean() > old.mean() + 0.3, (new, old)
    monkeypatch.undo()
    r = detect_audio(old_y, fs, key=KEY)
    assert r.found and r.payload == bytes(range(8))
