"""QA (session 34): the audio explicit label's detector on steady programmes, and the prompt's level."""

from __future__ import annotations

import subprocess

import pytest
from conftest import SAMPLES

from detectors import verify
from detectors.visible import detect_audio_cue
from labeler.media.audio import read_audio
from labeler.media.ffmpeg import ffmpeg_exe
from labeler.visible.voice_prompt import add_audio_label_file


def _lavfi(path, source: str, volume: float, rate: int = 44100, channels: int = 1) -> None:
    """Render an ffmpeg lavfi source (``sine=...``) to ``path`` at ``volume`` (linear)."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", source, "-af", f"volume={volume}",
                    "-ar", str(rate), "-ac", str(channels), str(path)], check=True, timeout=60)


@pytest.mark.parametrize(("freq", "language"), [(1000, "zh"), (1000, "en"), (880, "en"), (1200, "zh")])
def test_voice_prompt_over_a_steady_tone_is_no_rhythm_cue(tmp_path, freq: int, language: str) -> None:
    """A voice prompt mixed over a steady tone was also reported as a rhythm cue (score 0.68-0.73).

    Under the ducked prompt the tone's ratio to its neighbourhood dips wherever a syllable sounds and
    comes back in the pauses: an on/off envelope in which, at some unit and onset, the Morse template
    fits. The tone itself never stops there (its band is no quieter in the "gaps"), which a real cue's
    gaps always are.
    """
    src, dst = tmp_path / "tone.wav", tmp_path / "labeled.wav"
    _lavfi(src, f"sine=frequency={freq}:duration=15", 0.05)
    add_audio_label_file(src, dst, kind="voice", language=language, where=("middle",))
    layer = verify(dst).visible
    assert layer["kind"] == "audio-voice"
    assert [f["kind"] for f in layer["found"]] == ["audio-voice"], layer["found"]


def test_real_cue_over_a_steady_tone_and_speech_still_found(tmp_path) -> None:
    """The fix keeps a real cue mixed over the same tone (other frequency) and over speech."""
    src, dst = tmp_path / "tone.wav", tmp_path / "both.wav"
    _lavfi(src, "sine=frequency=440:duration=12", 0.05)
    add_audio_label_file(src, dst, kind="both", where=("middle",))
    found = [f["kind"] for f in verify(dst).visible["found"]]
    assert found == ["audio-rhythm", "audio-voice"]
    speech = tmp_path / "speech.wav"
    add_audio_label_file(SAMPLES / "speech.wav", speech, kind="rhythm", where=("middle",))
    audio = read_audio(speech)
    result = detect_audio_cue(audio.samples, audio.sample_rate)
    assert result.present and result.position == "middle" and len(result.cues) == 1
