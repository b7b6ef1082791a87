"""QA (long-audio verify): a streamed verify reports what the whole-file decode reports.

The streamed path is forced on short files as in ``test_verify_long_audio.py``: every file streamed,
label chunks of 25 s overlapping by 15 s.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import SAMPLES, corpus_path, ffmpeg_exe

import detectors
import labeler.media.audio as media_audio
from detectors import audio_scan
from detectors.visible import audio_labels
from detectors.visible.audio_labels import AudioLabelScan, detect_audio_labels
from labeler.media.audio import audio_info, read_audio
from labeler.visible.audio import morse_ai_cue
from labeler.visible.voice_prompt import resample, voice_clip

RATE = 8000
# A prompt onset (8 kHz samples) in the second 25 s chunk only (it starts at 25.005 s at 8 kHz), half a
# millisecond past a whole one: t / 8000 = 41.0225 s, which the report rounds to 41.023 s, while the
# chunk's onset plus the chunk's start in seconds lands an ulp below the tie and rounds to 41.022 s.
PROMPT_AT = 328180
CUE_AT = 52 * RATE + 40


def _speech(seconds: float, rate: int) -> np.ndarray:
    speech = read_audio(SAMPLES / "speech.wav")
    x = resample(speech.samples, speech.sample_rate, rate)
    reps = int(np.ceil(seconds * rate / len(x)))
    return np.tile(x, (reps, 1))[:int(seconds * rate), :1] * np.float32(0.5)


def _labeled_programme() -> np.ndarray:
    x = _speech(70.0, RATE)
    clip = voice_clip("en", RATE)
    x[PROMPT_AT:PROMPT_AT + len(clip), 0] += clip
    cue = morse_ai_cue(RATE, level_dbfs=-20.0)
    x[CUE_AT:CUE_AT + len(cue), 0] += cue
    return x


def _small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(audio_scan, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(audio_labels, "LABEL_CHUNK_S", 25.0)
    monkeypatch.setattr(audio_labels, "LABEL_OVERLAP_S", 15.0)


def test_chunked_label_onsets_are_the_whole_search_onsets_to_the_bit() -> None:
    # Onsets were the chunk's onset plus the chunk's start in seconds: off by an ulp (52.004999999999995
    # for a cue at 52.005 s), so equal only to rounding.
    x = _labeled_programme()
    whole = detect_audio_labels(x, RATE)
    assert whole[1].seconds * RATE == PROMPT_AT and whole[0].seconds == pytest.approx(CUE_AT / RATE, abs=0.01)
    scan = AudioLabelScan(RATE, chunk_s=25.0, overlap_s=15.0)
    for a in range(0, len(x), 7001):
        scan.push(x[a:a + 7001])
    cue, voice = scan.result()
    assert (cue.seconds, voice.seconds) == (whole[0].seconds, whole[1].seconds)
    assert [c[:2] for c in cue.cues] == [c[:2] for c in whole[0].cues]
    assert [p[:3] for p in voice.prompts] == [p[:3] for p in whole[1].prompts]


def test_streamed_report_gives_a_prompt_the_whole_decode_onset(monkeypatch, tmp_path) -> None:
    # The report rounds onsets to the millisecond: a prompt at 41.0225 s read 41.023 s whole and
    # 41.022 s streamed.
    path = tmp_path / "prompt.wav"
    sf.write(path, _labeled_programme(), RATE, subtype="FLOAT")
    whole = detectors.verify(path).to_dict()["layers"]["visible"]
    _small_chunks(monkeypatch)
    streamed = detectors.verify(path).to_dict()["layers"]["visible"]
    assert [(f["kind"], f["seconds"]) for f in whole["found"]] == [("audio-voice", 41.023),
                                                                   ("audio-rhythm", 52.005)]
    assert [(f["kind"], f["position"], f["seconds"]) for f in streamed["found"]] == [
        (f["kind"], f["position"], f["seconds"]) for f in whole["found"]]
    assert streamed["seconds"] == whole["seconds"]



def _piped_flac(tmp_path, seconds: float = 75.0, rate: int = 22050):
    """A stereo FLAC as ffmpeg writes it to a pipe (no length in its header), cues at 2 s and 60 s."""
    x = np.repeat(_speech(seconds, rate), 2, axis=1)
    cue = morse_ai_cue(rate, level_dbfs=-20.0)
    for t in (2.0, 60.0):
        x[int(t * rate):int(t * rate) + len(cue)] += cue[:, None]
    wav, flac = tmp_path / "programme.wav", tmp_path / "piped.flac"
    sf.write(wav, x, rate, subtype="PCM_16")
    with open(flac, "wb") as out:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(wav), "-c:a", "flac", "-f", "flac",
                        "-"], stdout=out, check=True)
    return flac


def _count_decodes(monkeypatch) -> dict[str, int]:
    """Count the decoder runs (read_audio's and the streamed pass's) and the streamed passes."""
    counts = {"decodes": 0, "scans": 0}
    real_blocks, real_scan = media_audio.decoded_blocks, audio_scan.scan_audio

    def blocks(*a, **k):
        counts["decodes"] += 1
        return real_blocks(*a, **k)

    def scan(*a, **k):
        counts["scans"] += 1
        return real_scan(*a, **k)

    monkeypatch.setattr(media_audio, "decoded_blocks", blocks)
    monkeypatch.setattr(audio_scan, "decoded_blocks", blocks)
    monkeypatch.setattr(audio_scan, "scan_audio", scan)
    return counts


def _found(report: dict) -> list[tuple]:
    return [(f["kind"], f["position"], f["seconds"]) for f in report["layers"]["visible"]["found"]]


def test_a_long_file_of_unstated_length_streams_in_one_decode(monkeypatch, tmp_path) -> None:
    # A FLAC written to a pipe (or a WebM from a browser's recorder) states no length: it was decoded
    # whole up to MAX_DECODED_BYTES (2 GiB, ~3 h of 44.1 kHz stereo), so an hour of it took gigabytes,
    # and one longer than that was decoded twice (refused whole, then streamed).
    flac = _piped_flac(tmp_path)
    assert audio_info(flac).frames is None and audio_info(flac).duration is None
    whole = detectors.verify(flac).to_dict()
    counts = _count_decodes(monkeypatch)
    _small_chunks(monkeypatch)
    monkeypatch.setattr(audio_scan, "STREAM_ABOVE_BYTES", 1 << 20)  # 75 s of stereo: 13 MB
    streamed = detectors.verify(flac).to_dict()
    assert counts == {"decodes": 1, "scans": 1}
    assert _found(streamed) == _found(whole)
    assert [f[:2] for f in _found(whole)] == [("audio-rhythm", "start"), ("audio-rhythm", "middle")]
    assert [f[2] for f in _found(whole)] == pytest.approx([2.0, 60.0], abs=0.01)
    # Longer than read_audio holds: streamed on, not decoded again.
    monkeypatch.setattr(audio_scan, "STREAM_ABOVE_BYTES", 1 << 28)
    monkeypatch.setattr(media_audio, "MAX_DECODED_BYTES", 1 << 22)
    counts.update(decodes=0, scans=0)
    assert _found(detectors.verify(flac).to_dict()) == _found(whole)
    assert counts == {"decodes": 1, "scans": 1}
    # Under both: decoded whole, once, as before.
    monkeypatch.setattr(media_audio, "MAX_DECODED_BYTES", 1 << 31)
    counts.update(decodes=0, scans=0)
    assert _found(detectors.verify(flac).to_dict()) == _found(whole)
    assert counts == {"decodes": 1, "scans": 0}


def test_streamed_report_of_unlabeled_audio_gives_the_whole_decode_score(monkeypatch, tmp_path) -> None:
    # Nothing found, the visible layer reports the best score seen: the best exact score where the
    # coarse pass pointed anywhere in the file, else the coarse best. Chunks merged by max mix the two:
    # speech where the prompt's coarse pass points (exact 0.07), then a chunk of espeak speech where it
    # points nowhere (coarse 0.29): the whole decode says 0.07, the streamed one said 0.30.
    speech = _speech(25.0, RATE)
    en = read_audio(corpus_path("audio", "speech-en.wav"))
    other = resample(en.samples, en.sample_rate, RATE)[:, :1]
    path = tmp_path / "unlabeled.wav"
    sf.write(path, np.concatenate([speech, other]), RATE, subtype="FLOAT")
    whole = detectors.verify(path).to_dict()["layers"]["visible"]
    _small_chunks(monkeypatch)
    streamed = detectors.verify(path).to_dict()["layers"]["visible"]
    assert not whole["present"] and not streamed["present"] and whole["score"] < 0.2
    assert streamed["score"] == pytest.approx(whole["score"], abs=1e-3)
