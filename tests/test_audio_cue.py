"""Audio rhythm cue: Morse "AI" tones (labeler.visible.audio) and their detection (detectors.visible)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLES, corpus_path

from detectors.visible import detect_audio_cue
from labeler.errors import LabelerError
from labeler.media.audio import read_audio
from labeler.media.audio_write import write_audio
from labeler.visible.audio import (
    CUE_UNITS,
    add_audio_cue,
    add_audio_cue_file,
    cue_length,
    loudness,
    morse_ai_cue,
)

SR = 44100


def _tones(cue: np.ndarray, hole: int) -> list[tuple[int, int]]:
    """(start, length) of each stretch of non-zero samples, bridging the sine's zero crossings."""
    nz = np.flatnonzero(cue)
    breaks = np.flatnonzero(np.diff(nz) > hole)
    firsts = np.concatenate([[nz[0]], nz[breaks + 1]])
    lasts = np.concatenate([nz[breaks], [nz[-1]]])
    return list(zip(firsts.tolist(), (lasts - firsts + 1).tolist(), strict=True))


def _mp3_round_trip(samples: np.ndarray, rate: int, tmp_path) -> np.ndarray:
    path = tmp_path / "cue.mp3"
    write_audio(path, samples, rate, bitrate="128k")
    return read_audio(path).samples


@pytest.mark.parametrize("unit_s", [0.1, 0.12])
def test_cue_pattern(unit_s: float) -> None:
    cue = morse_ai_cue(SR, unit_s=unit_s, ramp_ms=5.0)
    unit = round(unit_s * SR)
    assert cue.dtype == np.float32 and cue.shape == (CUE_UNITS * unit,) == (cue_length(SR, unit_s),)
    runs = _tones(cue, hole=SR // 880)
    # Tones start at 0, 2, 8, 10 units and last 1, 3, 1, 1 units; gaps 1 (in a letter), 3 (between).
    assert len(runs) == 4
    starts = [s for s, _ in runs]
    lengths = [n for _, n in runs]
    assert starts == pytest.approx([0, 2 * unit, 8 * unit, 10 * unit], abs=2)
    assert lengths == pytest.approx([unit, 3 * unit, unit, unit], abs=2)


def test_cue_frequency_level_and_no_clicks() -> None:
    cue = morse_ai_cue(SR, freq_hz=880.0, level_dbfs=-18.0, ramp_ms=5.0).astype(np.float64)
    unit = round(0.1 * SR)
    dash = cue[2 * unit:5 * unit]
    spectrum = np.abs(np.fft.rfft(dash * np.hanning(len(dash)), 1 << 18))
    peak = np.fft.rfftfreq(1 << 18, 1 / SR)[np.argmax(spectrum)]
    assert peak == pytest.approx(880.0, abs=1.0)
    core = dash[round(0.01 * SR):-round(0.01 * SR)]
    assert 20 * np.log10(np.sqrt(np.mean(core**2))) == pytest.approx(-18.0, abs=0.1)
    # A click is a jump larger than the sine itself ever makes: |d/dt A sin| <= A * 2 pi f / rate.
    amplitude = np.abs(cue).max()
    assert np.abs(np.diff(cue)).max() <= amplitude * 2 * np.pi * 880 / SR * 1.05
    assert abs(cue[0]) < 1e-3 * amplitude and abs(cue[-1]) < 0.05 * amplitude
    # Every tone edge fades: the first and last ramp samples are tiny.
    for start, length in _tones(cue, hole=SR // 880):
        assert np.abs(cue[start:start + 10]).max() < 0.05 * amplitude
        assert np.abs(cue[start + length - 10:start + length]).max() < 0.05 * amplitude


def test_prepend_shift_and_stereo() -> None:
    rng = np.random.default_rng(0)
    programme = (0.1 * rng.standard_normal((SR, 2))).astype(np.float32)
    out = add_audio_cue(programme, SR, where=("start",), gap_s=0.3, level=-20.0)
    shift = cue_length(SR) + round(0.3 * SR)
    assert out.dtype == np.float32 and out.shape == (SR + shift, 2)
    np.testing.assert_array_equal(out[shift:], programme)
    np.testing.assert_array_equal(out[: cue_length(SR), 0], out[: cue_length(SR), 1])
    np.testing.assert_array_equal(out[:cue_length(SR), 0], morse_ai_cue(SR, level_dbfs=-20.0))
    assert not out[cue_length(SR):shift].any()
    longer = np.tile(programme[:, 0], 2)  # a 'middle' cue must fit in the programme whole
    both = add_audio_cue(longer, SR, where=("start", "end", "middle"), level=-20.0)
    assert both.ndim == 1 and len(both) == 2 * SR + 2 * shift


def test_match_level_follows_programme() -> None:
    rng = np.random.default_rng(1)
    quiet = (0.01 * rng.standard_normal(2 * SR)).astype(np.float32)
    loud = (0.2 * rng.standard_normal(2 * SR)).astype(np.float32)
    n = cue_length(SR)
    quiet_cue = add_audio_cue(quiet, SR)[:n]
    loud_cue = add_audio_cue(loud, SR)[:n]
    assert np.abs(loud_cue).max() > np.abs(quiet_cue).max()
    # Clipped to -30 .. -12 dBFS RMS while sounding (peak 3 dB higher).
    assert 20 * np.log10(np.abs(quiet_cue).max()) >= -30 + 3 - 0.1
    assert 20 * np.log10(np.abs(loud_cue).max()) <= -12 + 3 + 0.1
    # BS.1770 reference: a 997 Hz sine of peak 0.1 (-20 dBFS) in one channel reads -23.0 LKFS.
    sine = 0.1 * np.sin(2 * np.pi * 997 / 48000 * np.arange(48000 * 3))
    assert loudness(sine, 48000) == pytest.approx(-23.01, abs=0.1)


@pytest.mark.parametrize("where", ["start", "middle"])
def test_detect_after_mp3(where: str, tmp_path) -> None:
    speech = read_audio(SAMPLES / "speech.wav")
    labeled = add_audio_cue(speech.samples, speech.sample_rate, where=(where,))
    decoded = _mp3_round_trip(labeled, speech.sample_rate, tmp_path)
    result = detect_audio_cue(decoded, speech.sample_rate)
    assert result.present and result.kind == "audio-rhythm"
    assert result.position == where and len(result.cues) == 1
    expected = 0.0 if where == "start" else (len(speech.samples) - cue_length(speech.sample_rate)) // 2
    assert result.seconds == pytest.approx(expected / speech.sample_rate, abs=0.03)
    assert result.freq_hz == pytest.approx(880.0, abs=5.0)
    assert result.to_dict()["seconds"] == pytest.approx(result.seconds, abs=1e-3)


def test_no_detection_on_unlabeled_speech_and_music() -> None:
    speech = read_audio(SAMPLES / "speech.wav")
    assert not detect_audio_cue(speech.samples, speech.sample_rate).present
    # Synthetic "music": decaying 880 Hz notes and chords in an irregular rhythm, the hardest kind for
    # a tone detector; the corpus piano is checked below when present.
    rng = np.random.default_rng(2)
    t = np.arange(SR // 2) / SR
    notes = []
    for _ in range(12):
        f = rng.choice([440.0, 660.0, 880.0, 990.0])
        notes.append(np.sin(2 * np.pi * f * t) * np.exp(-t * rng.uniform(3, 9)) * 0.3)
        notes.append(np.zeros(int(rng.integers(SR // 20, SR // 5))))
    music = np.concatenate(notes).astype(np.float32)
    assert not detect_audio_cue(music, SR).present


def test_no_detection_on_corpus_music() -> None:
    piano = read_audio(corpus_path("audio", "music-piano.wav"))
    assert not detect_audio_cue(piano.samples, piano.sample_rate).present


def test_file_level_keeps_format(tmp_path) -> None:
    src = tmp_path / "in.wav"
    rng = np.random.default_rng(3)
    write_audio(src, (0.1 * rng.standard_normal((SR // 2, 2))).astype(np.float32), SR, subtype="PCM_24")
    dst = tmp_path / "out.wav"
    add_audio_cue_file(src, dst, where=("end",))
    out = read_audio(dst)
    assert out.subtype == "PCM_24" and out.channels == 2
    assert out.frames == SR // 2 + round(0.3 * SR) + cue_length(SR)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(0, np.float32), np.zeros((0, 2), np.float32), np.array([0.0, np.nan, 0.1], np.float32),
     np.array([np.inf] * 10, np.float32), np.zeros(100, np.int16)],
)
def test_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(LabelerError):
        add_audio_cue(bad, SR)
    with pytest.raises(LabelerError):
        detect_audio_cue(bad, SR)


def test_bad_options() -> None:
    x = np.zeros(100, np.float32)
    for kwargs in ({"where": ("front",)}, {"level": "loud"}, {"freq_hz": 30000.0}, {"gap_s": -1.0}):
        with pytest.raises(LabelerError):
            add_audio_cue(x, SR, **kwargs)


def _exhaustive_cues(samples: np.ndarray, rate: int) -> list[tuple[float, str]]:
    """The cue search at full resolution over every frame (no coarse pass): onsets and positions."""
    from detectors.visible import audio_cue as ac
    from detectors.visible.common import _analysis_frames, _analysis_geometry, _decimated, _mono_samples

    mono = _mono_samples(samples, rate)
    work, low_rate = _decimated(mono, float(rate))
    _, hop, nfft = _analysis_geometry(low_rate)
    low, high = ac.AUDIO_CUE_SEARCH_HZ
    power = ac._stft_power(work, low_rate, 0, _analysis_frames(len(work), low_rate), 1,
                           ac._cue_bins(low_rate / nfft, nfft, low, high))
    _, ratio, level = ac._ratio_level(power, low_rate, low, high)
    best, unit = ac._best_per_frame(ratio, level, hop / low_rate, ac.AUDIO_CUE_UNITS_S)
    cues = ac._pick_cues(best, unit, hop / low_rate, ac.AUDIO_CUE_THRESHOLD, work, low_rate, low, high)
    return [(c[0], c[1]) for c in ac.cue_result(cues, len(mono) / rate, 0.0).cues]


@pytest.mark.parametrize(("rate", "unit_s", "freq_hz"), [(44100, 0.1, 880.0), (16000, 0.13, 640.0),
                                                         (48000, 0.08, 1150.0)])
def test_coarse_pass_keeps_every_cue_of_the_full_search(rate: int, unit_s: float, freq_hz: float) -> None:
    # The coarse pass (15 ms frames, every other tone frequency) only chooses where to score exactly:
    # over speech, with cues at the start, in the middle and at the end (units and tones off the
    # defaults), it must find what scoring every frame finds, at the same onsets.
    speech = read_audio(SAMPLES / "speech.wav")
    from labeler.visible.voice_prompt import resample

    programme = np.tile(resample(speech.samples, speech.sample_rate, rate), (2, 2))
    cue = morse_ai_cue(rate, freq_hz=freq_hz, unit_s=unit_s, level_dbfs=-20.0)
    labeled = add_audio_cue(programme, rate, where=("start", "end"), freq_hz=freq_hz, unit_s=unit_s)
    at = len(labeled) // 2
    labeled[at:at + len(cue)] += cue[:, None]
    result = detect_audio_cue(labeled, rate)
    assert [c[1] for c in result.cues] == ["start", "middle", "end"]
    assert [(c[0], c[1]) for c in result.cues] == _exhaustive_cues(labeled, rate)
    assert abs(result.cues[1][0] - at / rate) < 0.01 and abs(result.freq_hz - freq_hz) < 5


def test_both_labels_from_one_analysis_equal_the_separate_searches() -> None:
    from detectors.visible import detect_voice_prompt
    from detectors.visible.audio_labels import detect_audio_labels
    from labeler.visible import add_audio_label

    speech = read_audio(SAMPLES / "speech.wav")
    labeled = add_audio_label(speech.samples, speech.sample_rate, kind="both", language="en",
                              where=("start", "end"))
    cue, voice = detect_audio_labels(labeled, speech.sample_rate)
    assert cue == detect_audio_cue(labeled, speech.sample_rate)
    assert voice == detect_voice_prompt(labeled, speech.sample_rate)
    assert [c[1] for c in cue.cues] == ["start", "end"] and [p[1] for p in voice.prompts] == ["start", "end"]


def test_voice_coarse_pass_keeps_the_prompts_of_the_full_search() -> None:
    # The voice prompt's coarse pass (band energies every 15 ms) only chooses where the 8 kHz matched
    # filter runs: over speech, prompts at the start, mixed in the middle and at the end must come out
    # where scoring every onset of the whole file puts them.
    from detectors.visible import detect_voice_prompt
    from detectors.visible.voice import _voice_scores
    from labeler.visible.voice_prompt import add_voice_prompt, resample, voice_clip

    speech = read_audio(SAMPLES / "speech.wav")
    rate = speech.sample_rate
    programme = np.tile(speech.samples, (3, 1))
    n = len(voice_clip("zh", rate))
    at = len(programme) // 2
    programme[at:at + n] = add_voice_prompt(programme[at:at + n], rate, language="zh", where=("middle",))
    labeled = add_voice_prompt(programme, rate, language="en", where=("start", "end"))
    result = detect_voice_prompt(labeled, rate)
    assert [(p[1], p[2]) for p in result.prompts] == [("start", "en"), ("middle", "zh"), ("end", "en")]
    full = _voice_scores(resample(labeled.mean(axis=1), rate, 8000))
    for onset, _, language, score in result.prompts:  # onsets rounded to 1 ms
        first = max(0, round(onset * 8000) - 400)
        near = full[language][first:first + 800]
        assert abs((first + int(np.argmax(near))) / 8000 - onset) <= 0.0006 and abs(near.max() - score) < 0.01
