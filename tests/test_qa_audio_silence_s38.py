"""Digital silence is not searched for the audio watermark (QA, December 2026): a 1.7 MB FLAC of three
hours of silence held a server worker for over two minutes after its request had timed out, the
detector running its full STFT and every speed / pitch hypothesis on windows that cannot carry a mark.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, seeded_key

import detectors.watermark_audio as wa
from detectors.watermark import detect_audio
from labeler.watermark import embed_audio


@pytest.fixture(scope="module")
def key() -> bytes:
    return seeded_key("test_qa_audio_silence_s38")


def test_silent_windows_are_not_searched(key, monkeypatch):
    searched = []
    real = wa._window_reads
    monkeypatch.setattr(wa, "_window_reads", lambda seg, *a: searched.append(len(seg)) or real(seg, *a))
    r = detect_audio(np.zeros((150 * 8000, 2), np.float32), 8000, key=key)
    assert (r.found, r.p_value, r.zero_bit_p_value, r.z) == (False, 1.0, 1.0, 0.0)
    assert r.blocks_read == 3 and searched == []


def test_a_mark_after_a_silent_window_is_still_found(key, monkeypatch):
    speech, fs = sf.read(SAMPLES / "speech.wav", dtype="float32", always_2d=True)
    payload = bytes(range(8))
    marked = embed_audio(np.tile(speech, (4, 1)), fs, payload, key=key)
    audio = np.concatenate([np.zeros((70 * fs, marked.shape[1]), np.float32), marked])
    searched = []
    real = wa._window_reads
    monkeypatch.setattr(wa, "_window_reads", lambda seg, *a: searched.append(len(seg)) or real(seg, *a))
    r = detect_audio(audio, fs, key=key)
    assert r.found and r.payload == payload and r.p_value <= 1e-6
    assert len(searched) == 1  # the silent first window was skipped, the second read and decoded
