"""QA session 38: Morse letters that share the rhythm cue's length are not reported as the "AI" cue."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.visible import detect_audio_cue
from labeler.visible.audio import add_audio_cue

RATE = 44100


def _tone(seconds: float, freq: float = 880.0) -> np.ndarray:
    """A sine burst with 5 ms raised-cosine edges (as a Morse keyer's)."""
    t = np.arange(round(RATE * seconds)) / RATE
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    n = round(0.005 * RATE)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    x[:n] *= ramp
    x[-n:] *= ramp[::-1]
    return x


def _morse(code: str, unit: float, freq: float) -> np.ndarray:
    """Real Morse keyed from ``code`` ('.', '-', ' ' between letters), 1 s of silence around it."""
    parts = [np.zeros(RATE)]
    for ch in code:
        if ch == " ":
            parts.append(np.zeros(round(2 * unit * RATE)))  # 1 unit already follows each element
            continue
        parts += [_tone(unit if ch == "." else 3 * unit, freq), np.zeros(round(unit * RATE))]
    parts.append(np.zeros(RATE))
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize(("code", "unit", "freq"), [
    (".--.", 0.10, 880.0),             # "P": the cue's 11 units, a dash where its letter gap is
    (".--. .--.", 0.11, 1000.0),
])
def test_morse_letters_of_the_cue_length_are_not_the_cue(code: str, unit: float, freq: float) -> None:
    # Until session 38 the template's Pearson r ignored where the off frames were: one tone filling
    # 2 of its 5 gap units still correlated at 0.62, above the 0.6 threshold.
    result = detect_audio_cue(_morse(code, unit, freq), RATE)
    assert not result.present, result.to_dict()


def test_real_cue_over_noise_and_speechlike_programme_still_found() -> None:
    # The gap check compares gaps with each other: a cue over loud white noise (every gap at the noise's
    # tone ratio) and the cue alone keep their scores.
    rng = np.random.default_rng(38)
    noise = (0.5 * rng.standard_normal((5 * RATE, 2))).clip(-1, 1).astype(np.float32)
    silence = np.zeros((3 * RATE, 1), np.float32)
    for programme, where in ((noise, "middle"), (noise, "start"), (silence, "end")):
        out = add_audio_cue(programme, RATE, where=(where,))
        result = detect_audio_cue(out, RATE)
        assert result.present and result.score > 0.85, (where, result.to_dict())
