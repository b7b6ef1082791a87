"""Audio voice prompt (labeler.visible.voice_prompt), its detection, and tags kept by the audio labels."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import soundfile as sf
from conftest import PRODUCER, SAMPLES, corpus_path, run_cli

from detectors.visible import detect_audio_cue, detect_voice_prompt
from labeler.errors import LabelerError
from labeler.media.audio import read_audio
from labeler.media.audio_write import write_audio
from labeler.visible import add_audio_cue_file, add_audio_label, add_voice_prompt, add_voice_prompt_file
from labeler.visible.audio import loudness
from labeler.visible.voice_prompt import VOICE_RATE, VOICE_TEXTS, resample, voice_clip, voice_clip_path


def _voiced_seconds(clip: np.ndarray, rate: int) -> float:
    frame = rate // 100
    n = len(clip) // frame
    rms = np.sqrt((clip[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) + 1e-12
    on = np.flatnonzero(20 * np.log10(rms / rms.max()) > -40)
    return (on[-1] + 1 - on[0]) * frame / rate


def _programme(name: str, seconds: float = 12.0) -> tuple[np.ndarray, int]:
    """Decoded audio, cut to ``seconds`` (test time: MP3 round trips of 30 s stereo are slow)."""
    path = SAMPLES / "speech.wav" if name == "samples" else corpus_path("audio", name)
    audio = read_audio(path)
    return audio.samples[: round(seconds * audio.sample_rate)], audio.sample_rate


def _mp3(samples: np.ndarray, rate: int, tmp_path, bitrate: str = "128k") -> np.ndarray:
    path = tmp_path / "voice.mp3"
    write_audio(path, samples, rate, bitrate=bitrate)
    return read_audio(path).samples


def test_clips_rate_and_size() -> None:
    for language in VOICE_TEXTS:
        info = sf.info(voice_clip_path(language))
        assert (info.samplerate, info.channels, info.format) == (VOICE_RATE, 1, "FLAC")
        assert voice_clip_path(language).stat().st_size < 120_000
    zh = voice_clip("zh")
    per_minute = len(VOICE_TEXTS["zh"]) * 60 / _voiced_seconds(zh, VOICE_RATE)
    assert 120 <= per_minute <= 160  # the digest's "normal rate" for Chinese speech
    assert 1.5 < _voiced_seconds(voice_clip("en"), VOICE_RATE) < 3.0


def test_resample_is_band_limited_and_exact_length() -> None:
    t = np.arange(44100 * 2) / 44100
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    down = resample(tone, 44100, 8000)
    assert len(down) == 16000
    exact = np.sin(2 * np.pi * 1000 * np.arange(16000) / 8000)
    assert np.abs(down - exact)[200:-200].max() < 1e-3
    # 5 kHz is above the new Nyquist frequency (4 kHz): removed, not folded to 3 kHz.
    alias = resample(np.sin(2 * np.pi * 5000 * t).astype(np.float32), 44100, 8000)
    assert np.abs(alias[200:-200]).max() < 1e-2
    stereo = resample(np.stack([tone, -tone], axis=1), 44100, 22050)
    assert stereo.shape == (44100, 2) and np.allclose(stereo[:, 0], -stereo[:, 1])


@pytest.mark.parametrize("name", ["samples", "speech-en.wav", "music-piano.wav"])
def test_placement_and_loudness(name: str) -> None:
    x, sr = _programme(name)
    n, gap = len(voice_clip("zh", sr)), round(0.3 * sr)
    out = add_voice_prompt(x, sr, where=("start", "end"))
    assert out.shape == (len(x) + 2 * (n + gap), x.shape[1])
    assert np.array_equal(out[n + gap:n + gap + len(x)], x)  # the programme: shifted, untouched
    assert not out[n:n + gap].any() and not out[-n - gap:-n].any()
    assert np.array_equal(out[:n], out[-n:])
    assert abs(loudness(out[:n], sr) - loudness(x, sr)) <= 1.0  # matched within 1 LU
    assert np.abs(out[:n]).max() <= 10 ** (-1 / 20) + 1e-6
    middle = add_voice_prompt(x, sr, where=("middle",))
    assert middle.shape == x.shape
    start = (len(x) - n) // 2
    assert np.array_equal(middle[: start - round(0.05 * sr)], x[: start - round(0.05 * sr)])


@pytest.mark.parametrize(("name", "language"), [("samples", "zh"), ("speech-en.wav", "en"),
                                                ("music-piano.wav", "zh")])
def test_detected_after_mp3_at_start_middle_end(name: str, language: str, tmp_path) -> None:
    x, sr = _programme(name)
    out = add_voice_prompt(x, sr, language=language, where=("start", "middle", "end"))
    result = detect_voice_prompt(_mp3(out, sr, tmp_path), sr)
    assert result.present and result.kind == "audio-voice" and result.language == language
    n, gap = len(voice_clip(language, sr)), round(0.3 * sr)
    middle = n + gap + (len(x) - n) // 2
    expected = [(0, "start"), (middle, "middle"), (len(out) - n, "end")]
    assert [p[1] for p in result.prompts] == [w for _, w in expected]
    for (onset, _), prompt in zip(expected, result.prompts, strict=True):
        assert abs(prompt[0] - onset / sr) < 0.01  # MP3 adds no delay after ffmpeg's decoder trims it
        assert prompt[2] == language and prompt[3] >= 0.8


@pytest.mark.parametrize("name", ["samples", "speech-en.wav", "music-piano.wav"])
def test_no_prompt_in_unlabeled_audio(name: str, tmp_path) -> None:
    x, sr = _programme(name)
    for samples in (x, _mp3(x, sr, tmp_path), 0.1 * x[: len(x) // 3]):
        result = detect_voice_prompt(samples, sr)
        assert not result.present and result.score < 0.3 and result.prompts == ()


def test_both_kinds_in_one_block() -> None:
    x, sr = _programme("samples")
    out = add_audio_label(x, sr, kind="both", language="en", where=("start",))
    cue, voice = detect_audio_cue(out, sr), detect_voice_prompt(out, sr)
    assert cue.present and cue.position == "start" and abs(cue.seconds) < 0.01
    assert voice.present and voice.position == "start" and abs(voice.seconds - 1.4) < 0.01


def test_bad_options_are_one_line_errors() -> None:
    x = np.zeros((1000, 1), np.float32)
    for opts in ({"language": "fr"}, {"where": ("top",)}, {"level": "loud"}, {"gap_s": -1}):
        with pytest.raises(LabelerError):
            add_voice_prompt(x, 16000, **opts)
    with pytest.raises(LabelerError):
        add_audio_label(x, 16000, kind="beep")
    with pytest.raises(LabelerError):
        add_voice_prompt(np.zeros(10, np.int16), 16000)


def _wav_with_chunks(path, samples: np.ndarray, rate: int) -> dict[bytes, bytes]:
    """A 16-bit WAV with LIST/INFO and bext before data, a cue chunk and an iXML chunk after it."""
    write_audio(path, samples, rate)
    raw = path.read_bytes()
    at = raw.index(b"data")

    def chunk(cid: bytes, payload: bytes) -> bytes:
        return cid + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)

    info = b"INFO" + chunk(b"INAM", b"A title\x00") + chunk(b"IART", b"Someone\x00")
    chunks = {b"LIST": info, b"bext": b"x" * 603, b"iXML": b"<BWFXML/>", b"cue ": struct.pack("<I", 0)}
    before = chunk(b"LIST", info) + chunk(b"bext", chunks[b"bext"])
    after = chunk(b"cue ", chunks[b"cue "]) + chunk(b"iXML", chunks[b"iXML"])
    body = raw[12:at] + before + raw[at:] + after
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)
    return chunks


def _riff_chunks(path) -> list[tuple[bytes, bytes]]:
    raw, out, pos = path.read_bytes(), [], 12
    while pos + 8 <= len(raw):
        cid, size = struct.unpack_from("<4sI", raw, pos)
        out.append((cid, raw[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def test_wav_chunks_kept(tmp_path) -> None:
    x, sr = _programme("samples")
    src = tmp_path / "in.wav"
    chunks = _wav_with_chunks(src, x, sr)
    before = src.read_bytes()
    dst = tmp_path / "out.wav"
    add_voice_prompt_file(src, dst, where=("end",))
    assert src.read_bytes() == before
    found = _riff_chunks(dst)
    ids = [cid for cid, _ in found]
    assert ids.index(b"LIST") < ids.index(b"data") < ids.index(b"iXML")
    assert ids.index(b"data") < ids.index(b"cue ")  # kept: "end" moves no sample position
    for cid in (b"LIST", b"bext", b"iXML", b"cue "):
        assert dict(found)[cid] == chunks[cid]
    audio = read_audio(dst)
    assert sf.info(dst).subtype == "PCM_16" and len(audio.samples) > len(x)
    assert np.array_equal(audio.samples[: len(x)], x)


def test_flac_tags_and_picture_kept(tmp_path) -> None:
    from mutagen.flac import FLAC, Picture

    src = tmp_path / "in.flac"
    src.write_bytes((SAMPLES / "speech.flac").read_bytes())
    tagged = FLAC(src)
    tagged["TITLE"], tagged["ARTIST"] = "A title", "Someone"
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", b"\x89PNG fake"
    tagged.add_picture(picture)
    tagged.save()
    for add, dst in ((add_voice_prompt_file, tmp_path / "voice.flac"),
                     (add_audio_cue_file, tmp_path / "cue.flac")):
        add(src, dst)
        out = FLAC(dst)
        assert out["TITLE"] == ["A title"] and out["ARTIST"] == ["Someone"]
        assert [p.data for p in out.pictures] == [b"\x89PNG fake"]
        assert out.info.total_samples == len(read_audio(dst).samples) > len(read_audio(src).samples)
    result = detect_voice_prompt(read_audio(tmp_path / "voice.flac").samples, 22050)
    assert result.present and result.position == "start"


@pytest.mark.parametrize("name", ["speech.mp3", "speech.flac"])
def test_cli_label_voice_then_verify(name: str, tmp_path) -> None:
    dst = tmp_path / name
    run_cli("label", str(SAMPLES / name), str(dst), "--producer", PRODUCER, "--produce-id", "voice-1",
            "--layers", "visible,metadata", "--audio-label", "voice", check=True)
    report = json.loads(run_cli("verify", "--json", str(dst), check=True).stdout)
    visible = report["layers"]["visible"]
    assert visible["present"] and visible["kind"] == "audio-voice" and visible["position"] == "start"
    assert visible["language"] == "zh" and visible["seconds"] == 0.0
    assert [f["kind"] for f in visible["found"]] == ["audio-voice"]
    assert report["verdict"] == "confirmed"
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SAMPLES.parent / "docs" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    if name.endswith(".mp3"):
        from mutagen.id3 import ID3

        assert str(ID3(dst)["TIT2"]) == "aigc-labeler sample speech"  # the source's title kept


def test_batch_label_passes_the_voice_options(tmp_path) -> None:
    import pickle

    from labeler.batch import BatchTask, RecordTemplate, SignerRef
    from labeler.options import LabelOptions, VisibleOptions

    options = LabelOptions(visible=VisibleOptions(audio_label="both", voice_language="en"))
    task = BatchTask("label", "in", "out", RecordTemplate(PRODUCER), options, SignerRef("chain.pem", "k.pem"))
    assert pickle.loads(pickle.dumps(task)) == task
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.flac").write_bytes((SAMPLES / "speech.flac").read_bytes())
    run_cli("batch", "label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", "b-{path_hash}",
            "--layers", "visible,metadata", "--audio-label", "voice", "--voice-language", "en",
            "--workers", "1", "--no-progress", check=True)
    result = detect_voice_prompt(read_audio(dst / "a.flac").samples, 22050)
    assert result.present and result.language == "en" and result.position == "start"


def test_verify_text_names_both_audio_labels(tmp_path) -> None:
    """A file given both audio labels: the text line named only the best-scoring one."""
    out = tmp_path / "both.wav"
    done = run_cli("label", str(SAMPLES / "speech.wav"), str(out), "--producer", PRODUCER,
                   "--produce-id", "b", "--layers", "visible,metadata", "--audio-label", "both")
    assert done.returncode == 0, done.stderr
    shown = run_cli("verify", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "rhythm cue at start" in shown.stdout and "voice prompt at start" in shown.stdout, shown.stdout
