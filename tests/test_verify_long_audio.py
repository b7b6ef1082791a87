"""verify of long audio: one streamed pass, bounded memory, the same report as a whole decode.

A file over ``detectors.audio_scan.STREAM_ABOVE_BYTES`` is streamed through the watermark detector
and the chunked label search. The thresholds are lowered here so that files of a minute exercise
the streamed path (several watermark windows, several label chunks, labels across chunk edges).
"""

from __future__ import annotations

import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from conftest import PRODUCER, SAMPLES, ffmpeg_exe, run_cli, seeded_key_file

import detectors
from detectors import audio_scan, watermark_audio
from detectors.visible import audio_labels
from detectors.visible.audio_labels import AudioLabelScan, detect_audio_labels
from detectors.watermark_audio import AudioDetector, detect_audio
from labeler.errors import LabelerError
from labeler.media.audio import read_audio
from labeler.visible.audio import morse_ai_cue
from labeler.visible.voice_prompt import resample, voice_clip
from labeler.watermark import embed_audio
from labeler.watermark.keyfile import read_key_file

KEY = b"long-audio-test-key-0123456789ab"


def _programme(seconds: float, rate: int, channels: int = 2) -> np.ndarray:
    speech = read_audio(SAMPLES / "speech.wav")
    x = resample(speech.samples, speech.sample_rate, rate)
    reps = int(np.ceil(seconds * rate / len(x)))
    return np.tile(x, (reps, channels))[:int(seconds * rate)] * np.float32(0.5)


def _push_in_odd_blocks(target, x: np.ndarray, seed: int = 0):
    rng = np.random.default_rng(seed)
    pos, out = 0, None
    while pos < len(x):
        n = int(rng.integers(1, 150_000))
        out = target.push(x[pos:pos + n])
        if out is not None:
            return out
        pos += n
    return out


@pytest.mark.parametrize("marked", [True, False])
def test_detector_told_the_length_reads_what_detect_audio_reads(marked: bool, monkeypatch) -> None:
    # Windows of 20 s over 50 s: three windows, the p-value of the whole-signal search.
    monkeypatch.setattr(watermark_audio, "WINDOW_SECONDS", 20.0)
    rate = 22050
    x = _programme(50.0, rate)
    if marked:
        x = embed_audio(x, rate, bytes.fromhex("0123456789abcdef"), key=KEY)
    whole = detect_audio(x, rate, key=KEY)
    det = AudioDetector(rate, key=KEY, frames=len(x))
    streamed = _push_in_odd_blocks(det, x) or det.result()
    assert (streamed.found, streamed.payload, streamed.trials) == (whole.found, whole.payload, whole.trials)
    assert streamed.p_value == whole.p_value and streamed.zero_bit_p_value == whole.zero_bit_p_value
    assert streamed.blocks_read == whole.blocks_read == (1 if marked else 3)
    assert streamed.offset_seconds == pytest.approx(whole.offset_seconds, abs=1e-6)


@pytest.mark.parametrize("rate", [44100, 48000, 16000])
def test_label_scan_in_chunks_finds_what_one_search_finds(rate: int) -> None:
    # Chunks of 30 s overlapping by 20 s over 97 s; cues and prompts inside chunks, on their edges and
    # across them, at start, middle and end.
    x = _programme(97.3, rate)
    cue = morse_ai_cue(rate, level_dbfs=-20.0)
    for t, clip in ((0.0, cue), (29.5, cue), (31.0, voice_clip("zh", rate)), (50.2, voice_clip("en", rate)),
                    (59.4, voice_clip("zh", rate)), (60.0, cue), (95.5, cue)):
        a = int(t * rate)
        x[a:a + len(clip)] += clip[:len(x) - a, None]
    whole = detect_audio_labels(x, rate)
    scan = AudioLabelScan(rate, chunk_s=30.0, overlap_s=20.0)
    _push_in_odd_blocks(scan, x)
    _assert_same_labels(scan.result(), whole)
    assert [c[1] for c in whole[0].cues] == ["start", "middle", "middle", "end"]
    assert [p[2] for p in whole[1].prompts] == ["zh", "en", "zh"]


def _assert_same_labels(got, want) -> None:
    """Same labels at the same times; scores equal to rounding (the decimator's BLAS blocks start
    from each chunk's first sample, so a sample may differ from the whole search's in its last bit)."""
    for g, w in zip(got, want, strict=True):
        assert (g.present, g.position, g.seconds, g.text) == (w.present, w.position, w.seconds, w.text)
        assert g.score == pytest.approx(w.score, abs=1e-3)
    assert [c[:2] for c in got[0].cues] == [c[:2] for c in want[0].cues]
    assert [p[:3] for p in got[1].prompts] == [p[:3] for p in want[1].prompts]
    pairs = zip(got[0].cues + got[1].prompts, want[0].cues + want[1].prompts, strict=True)
    scores = [(g[-1], w[-1]) for g, w in pairs]
    assert all(abs(g - w) <= 1e-3 for g, w in scores), scores


def test_label_scan_of_unlabeled_audio_finds_nothing_and_needs_samples() -> None:
    x = _programme(70.0, 22050)
    scan = AudioLabelScan(22050, chunk_s=20.0, overlap_s=10.0)
    _push_in_odd_blocks(scan, x)
    cue, voice = scan.result()
    assert not cue.present and not voice.present and 0.0 < voice.score < 0.5
    _assert_same_labels((cue, voice), detect_audio_labels(x, 22050))  # the best score seen: the same
    with pytest.raises(LabelerError, match="non-empty"):
        AudioLabelScan(22050).result()
    with pytest.raises(LabelerError, match="NaN"):
        AudioLabelScan(22050).push(np.full((100, 2), np.nan, np.float32))


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    """A 75 s stereo WAV labeled with the watermark and cues at start and end, its unlabeled source,
    an MP3 of the labeled one, and the key file."""
    d = tmp_path_factory.mktemp("long_audio")
    key_file = d / "wm.key"
    seeded_key_file(key_file, "test_verify_long_audio-1")
    src = d / "programme.wav"
    sf.write(src, _programme(75.0, 44100), 44100, subtype="PCM_16")
    out = d / "labeled.wav"
    run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "long-1", "--layers",
            "watermark,visible", "--cue", "start,end", "--key-file", str(key_file), check=True)
    mp3 = d / "labeled.mp3"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(out), "-c:a", "libmp3lame",
                    "-b:a", "128k", str(mp3)], check=True)
    return {"src": src, "wav": out, "mp3": mp3, "key": read_key_file(key_file), "dir": d}


def _small_stream(monkeypatch) -> None:
    """Stream every file, in 20 s watermark windows and 25 s label chunks (overlap 15 s)."""
    monkeypatch.setattr(audio_scan, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(audio_labels, "LABEL_CHUNK_S", 25.0)
    monkeypatch.setattr(audio_labels, "LABEL_OVERLAP_S", 15.0)


def _layers(report) -> dict:
    data = report.to_dict()
    return {"verdict": data["verdict"], "watermark": data["layers"]["watermark"],
            "visible": data["layers"]["visible"], "warnings": data["warnings"]}


@pytest.mark.parametrize("which", ["wav", "src"])
def test_streamed_verify_reports_what_the_whole_decode_reports(labeled, which, monkeypatch) -> None:
    monkeypatch.setattr(watermark_audio, "WINDOW_SECONDS", 20.0)
    whole = _layers(detectors.verify(labeled[which], key=labeled["key"]))
    calls = []
    real_scan = audio_scan.scan_audio
    monkeypatch.setattr(audio_scan, "scan_audio", lambda *a, **k: calls.append(k) or real_scan(*a, **k))
    _small_stream(monkeypatch)
    streamed = _layers(detectors.verify(labeled[which], key=labeled["key"]))
    assert calls == [{"key": labeled["key"], "labels": True, "threshold": 1e-6}]  # one pass for both layers
    assert streamed == whole
    if which == "wav":
        assert whole["watermark"]["present"] and whole["watermark"]["p_value"] < 1e-20
        assert [f["position"] for f in whole["visible"]["found"]] == ["start", "end"]
    else:  # every window read (the same best p-value), every chunk searched: nothing
        assert not whole["watermark"]["present"] and whole["watermark"]["checked"]
        assert not whole["visible"]["present"] and whole["verdict"] == "none"


def test_streamed_verify_memory_does_not_grow_with_the_length(labeled, monkeypatch) -> None:
    # Unlabeled audio with a key: every watermark window is read and every label chunk searched. Whole,
    # the peak grows with the file; streamed it is one window and one chunk, at 75 s as at 150 s.
    longer = labeled["dir"] / "programme150.wav"
    sf.write(longer, _programme(150.0, 44100), 44100, subtype="PCM_16")
    monkeypatch.setattr(watermark_audio, "WINDOW_SECONDS", 20.0)

    def peak(path) -> int:
        tracemalloc.start()
        try:
            detectors.verify(path, key=labeled["key"])
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole = peak(labeled["src"]), peak(longer)
    _small_stream(monkeypatch)
    streamed = peak(labeled["src"]), peak(longer)
    assert whole[1] > 1.6 * whole[0], whole
    assert streamed[1] < 1.15 * streamed[0] and streamed[1] < 0.5 * whole[1], streamed


def test_streamed_mp3_of_unstated_length_still_finds_both_labels(labeled, monkeypatch) -> None:
    # ffmpeg decodes an MP3 as a stream of unknown length: the watermark's p-value then spends its
    # budget window by window, and the mark still decodes in the first window.
    _small_stream(monkeypatch)
    report = detectors.verify(labeled["mp3"], key=labeled["key"]).to_dict()
    wm, visible = report["layers"]["watermark"], report["layers"]["visible"]
    assert wm["present"] and wm["p_value"] < 1e-20
    assert [f["position"] for f in visible["found"]] == ["start", "end"]


def test_streamed_float_wav_with_nan_says_so_in_both_layers(labeled, monkeypatch, tmp_path) -> None:
    x, rate = sf.read(labeled["wav"], dtype="float32", always_2d=True)
    x[30 * rate] = np.nan
    bad = tmp_path / "nan.wav"
    sf.write(bad, x, rate, subtype="FLOAT")
    _small_stream(monkeypatch)
    report = detectors.verify(bad, key=labeled["key"]).to_dict()
    assert "NaN" in report["layers"]["watermark"]["note"] and "NaN" in report["layers"]["visible"]["note"]
    assert not report["layers"]["watermark"]["checked"]


def test_a_long_soundtrack_is_streamed_and_stops_at_the_mark(labeled, monkeypatch, tmp_path) -> None:
    # Frames too small for the frame mark: the soundtrack answers, streamed without the label search.
    clip = tmp_path / "tiny.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=128x72:d=75:r=5", "-i", str(labeled["wav"]), "-map", "0:v", "-map", "1:a",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest",
                    str(clip)], check=True)
    calls = []
    real_scan = audio_scan.scan_audio

    def spy(*a, **k):
        result = real_scan(*a, **k)
        calls.append((k, result.seconds))
        return result

    monkeypatch.setattr(audio_scan, "scan_audio", spy)
    monkeypatch.setattr(watermark_audio, "WINDOW_SECONDS", 20.0)
    _small_stream(monkeypatch)
    wm = detectors.verify(clip, key=labeled["key"], layers="watermark").to_dict()["layers"]["watermark"]
    assert wm["present"] and wm["stream"] == "audio"
    # the frames and the soundtrack are two tests of the file: each at half the threshold
    assert len(calls) == 1 and calls[0][0] == {"key": labeled["key"], "labels": False, "threshold": 5e-7}
    assert calls[0][1] < 40.0  # stopped after the first windows, not at 75 s


def test_the_summary_line_names_the_cues_beside_a_watermark_without_metadata(labeled) -> None:
    # Watermark and cues, no metadata label: the verdict comes from the watermark, and the one-line
    # summary also names the cues found (until 2026-12-07 it named them only beside a metadata label).
    line = detectors.verify(labeled["wav"], key=labeled["key"]).summary()
    assert "watermark only" in line and line.endswith(" - rhythm cue at start + rhythm cue at end"), line
    alone = detectors.verify(labeled["wav"]).summary()  # the cue alone gives the verdict: named once
    assert alone.count("rhythm cue") == 1 and "possible" in alone, alone


def test_long_audio_given_as_bytes_is_spilled_and_streamed(labeled, monkeypatch, tmp_path) -> None:
    # Audio bytes over SPILL_AUDIO_BYTES go to verify's private folder and are streamed from there: the
    # report of the path, where decoding in memory refused them as too much (an hour of MP3 is 115 MB).
    import tempfile

    from labeler.media import audio as media_audio

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(detectors, "SPILL_AUDIO_BYTES", 1 << 20)
    monkeypatch.setattr(media_audio, "MAX_DECODED_BYTES", 4 << 20)  # in memory: "too much to decode"
    _small_stream(monkeypatch)
    data = labeled["mp3"].read_bytes()
    assert len(data) > 1 << 20
    from_bytes = _layers(detectors.verify(data, key=labeled["key"]))
    assert from_bytes == _layers(detectors.verify(labeled["mp3"], key=labeled["key"]))
    assert from_bytes["watermark"]["present"] and from_bytes["visible"]["present"]
    assert list(tmp_path.iterdir()) == []  # the spilled file and its folder are gone
