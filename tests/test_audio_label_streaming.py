"""``aigc label`` streams WAV, FLAC, Ogg and the ffmpeg formats: memory does not grow with the file; the
bytes are the whole-file ones.

Issue #14: labeling an hour of 44.1 kHz stereo peaked at ~5.4 GB (the float32 PCM alone is 635 MB). The
audio-sample stage now reads, labels (cue / voice prompt at the start, middle and end, the loudness
measured in a first pass), marks and writes WAV (RIFF, RF64) and FLAC in blocks. Each case here labels
the same input twice, streamed and through the whole-file path (``streamable`` answering None, as it does
for MP3), and wants the same bytes, notes and layer reports; the memory test compares the peak of a
2-minute and a 20-minute file in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
from conftest import PRODUCER, SAMPLES, ffmpeg_exe, seeded_key
from test_audio_positions_kept import _flac_with_positions, _wav_with_positions

from labeler import label
from labeler.errors import LabelerError
from labeler.media import audio_rewrite
from labeler.record import AIGCLabel

RECORD = AIGCLabel(content_producer=PRODUCER, produce_id="stream-1")
KEY = seeded_key("audio-label-streaming")
ALL = ("start", "middle", "end")


def _label_both_ways(src: Path, tmp: Path, layers: str, **opts: object) -> tuple[bytes, object]:
    """Label ``src`` streamed and whole; assert the two agree; return the streamed bytes and result."""
    results = []
    for whole in (False, True):
        dst = tmp / f"{'whole' if whole else 'stream'}-{layers.replace(',', '-')}{src.suffix}"
        dst.unlink(missing_ok=True)
        spy = mock.Mock(wraps=audio_rewrite._rewrite_stream)
        with mock.patch.object(audio_rewrite, "_rewrite_stream", spy):
            if whole:
                with mock.patch.object(audio_rewrite, "streamable", lambda s, d: None):
                    result = label(src, RECORD, dst=dst, layers=layers, key=KEY, **opts)
            else:
                result = label(src, RECORD, dst=dst, layers=layers, key=KEY, **opts)
        assert spy.called != whole, "the streamed run must stream, the whole one must not"
        results.append((dst.read_bytes(), result))
    (streamed, a), (whole_bytes, b) = results
    assert _untimed(streamed) == _untimed(whole_bytes)
    assert a.warnings == b.warnings
    assert a.layers == b.layers
    return streamed, a


def _untimed(data: bytes) -> bytes:
    """``data`` with the time stamp of libsndfile's PEAK chunk (float WAV: the second written) zeroed."""
    at = data.find(b"PEAK", 12, 4096)
    return data if at < 0 else data[:at + 12] + bytes(4) + data[at + 16:]


def _long_wav(path: Path, seconds: float, rate: int = 48000, channels: int = 2, codec: str = "pcm_s24le",
              extra: tuple[str, ...] = ()) -> Path:
    """samples/speech.wav looped to ``seconds``, resampled, as ``codec`` (ffmpeg)."""
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-stream_loop", "-1", "-i",
                    str(SAMPLES / "speech.wav"), "-t", str(seconds), "-ar", str(rate), "-ac", str(channels),
                    "-c:a", codec, *extra, str(path)], check=True, timeout=120)
    return path


SPEECH_CASES = [
    ("watermark", {}),
    ("visible", {"audio_label": "rhythm", "cue_positions": ("middle",)}),
    ("visible", {"audio_label": "voice", "cue_positions": ("end",)}),
    ("visible,watermark", {"audio_label": "rhythm", "cue_positions": ALL}),
    ("visible,watermark", {"audio_label": "voice", "cue_positions": ALL}),
    ("visible,watermark", {"audio_label": "both", "cue_positions": ("start",)}),
    ("visible,watermark,metadata", {"audio_label": "both", "cue_positions": ALL, "voice_language": "en"}),
]


@pytest.mark.parametrize("name", ["speech.wav", "speech.flac"])
@pytest.mark.parametrize(("layers", "opts"), SPEECH_CASES)
def test_streamed_label_is_the_whole_file_label(tmp_path, name, layers, opts):
    src = tmp_path / name
    shutil.copyfile(SAMPLES / name, src)
    before = src.read_bytes()
    _label_both_ways(src, tmp_path, layers, **opts)
    assert src.read_bytes() == before


@pytest.mark.parametrize(("name", "args"), [
    ("speech.mp3", ()),
    ("aac.m4a", ("-c:a", "aac", "-b:a", "96k", "-metadata", "title=T")),  # iTunes items put back
    ("alac.m4a", ("-c:a", "alac")),
    ("opus.mka", ("-c:a", "libopus")),
    ("opus.weba", ("-c:a", "libopus", "-f", "webm")),
])
def test_ffmpeg_formats_stream_through_pipes(tmp_path, name, args):
    """MP3, M4A, Matroska / WebM audio: decoded and encoded through ffmpeg pipes, the same bytes."""
    src = tmp_path / name
    if args:
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(SAMPLES / "speech.wav"), *args,
                        str(src)], check=True, timeout=60)
    else:
        shutil.copyfile(SAMPLES / name, src)
    _label_both_ways(src, tmp_path, "visible,watermark", audio_label="both", cue_positions=ALL)
    if name == "speech.mp3":
        _label_both_ways(src, tmp_path, "watermark")


@pytest.mark.parametrize(("name", "args"), [
    ("vorbis.ogg", ("-c:a", "libvorbis", "-q:a", "3")),
    ("opus.opus", ("-c:a", "libopus", "-b:a", "48k")),
])
def test_ogg_streams_through_libsndfile(tmp_path, name, args):
    """Ogg Vorbis and Opus: read and written in blocks by libsndfile (until 2026-12-07 decoded whole:
    an hour of it held gigabytes). Their encoders' output depends on how the samples are handed to
    them, so every Ogg writer hands them over in the same parts (``sndfile_writes``): the same bytes,
    the source's comments carried over, the rate held."""
    src = tmp_path / name
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-stream_loop", "2", "-i",
                    str(SAMPLES / "speech.wav"), *args, "-metadata", "title=T", str(src)],
                   check=True, timeout=60)
    out, result = _label_both_ways(src, tmp_path, "visible,watermark,metadata", audio_label="both",
                                   cue_positions=ALL)
    assert result.layers["watermark"]["embedded"] is True
    labeled = tmp_path / f"stream-visible-watermark-metadata{src.suffix}"
    with sf.SoundFile(labeled) as snd:
        assert snd.subtype == sf.info(str(src)).subtype and snd.frames > sf.info(str(src)).frames
    assert b"title=T" in out
    _label_both_ways(src, tmp_path, "watermark")


@pytest.mark.parametrize(("suffix", "codec", "extra"), [(".wav", "pcm_s24le", ()),
                                                        (".wav", "pcm_s16le", ("-rf64", "always")),
                                                        (".flac", "flac", ())])
def test_two_minutes_streamed_equal_whole(tmp_path, suffix, codec, extra):
    """Two minutes of 48 kHz stereo (24-bit WAV, an RF64 WAV, FLAC): many blocks, the middle label mixed
    in across a block boundary, every label at once and the watermark over them."""
    src = _long_wav(tmp_path / f"two{suffix}", 120, codec=codec, extra=extra)
    if extra:
        assert src.read_bytes()[:4] == b"RF64"
    out, result = _label_both_ways(src, tmp_path, "visible,watermark",
                                   audio_label="both", cue_positions=ALL)
    assert result.layers["watermark"]["embedded"] is True
    with sf.SoundFile(tmp_path / f"stream-visible-watermark{suffix}") as snd:
        assert snd.subtype == sf.info(str(src)).subtype
        assert snd.frames > 120 * 48000  # the start and end labels are in


def test_watermark_only_two_minutes_float_wav(tmp_path):
    src = tmp_path / "float.wav"
    rng = np.random.default_rng(3)
    with sf.SoundFile(src, "w", 44100, 2, "FLOAT") as snd:
        for _ in range(12):
            snd.write((0.2 * rng.standard_normal((441000, 2))).astype(np.float32))
    _label_both_ways(src, tmp_path, "watermark")


def test_full_scale_middle_label_ducked_the_same(tmp_path):
    """A programme at full scale: the middle cue needs headroom, so the programme is lowered under it
    with ramps (the gain applied block by block must be the whole-file one)."""
    src = tmp_path / "loud.wav"
    t = np.arange(8 * 22050) / 22050
    sf.write(src, np.sign(np.sin(2 * np.pi * 220 * t)) * 0.999, 22050, subtype="PCM_16")
    for kind in ("rhythm", "both"):
        _label_both_ways(src, tmp_path, "visible,watermark", audio_label=kind, cue_positions=ALL)


@pytest.mark.parametrize("kind", ["rhythm", "voice"])
def test_chunks_and_positions_kept_when_streamed(tmp_path, kind):
    """LIST/INFO, cue points, smpl loops, plst (WAV) and comments, picture, cue sheet (FLAC) as the whole
    file path keeps them, positions moved by the start label."""
    wav, flac = tmp_path / "pos.wav", tmp_path / "pos.flac"
    _wav_with_positions(wav)
    _flac_with_positions(flac)
    for src in (wav, flac):
        # the 4.5 s voice prompt is longer than the 2 s programme: no middle one
        where = ALL if kind == "rhythm" else ("start", "end")
        _label_both_ways(src, tmp_path, "visible", audio_label=kind, cue_positions=where)


def _error(src: Path, dst: Path, whole: bool, layers: str, **opts: object) -> str:
    patch = mock.patch.object(audio_rewrite, "streamable", lambda s, d: None) if whole else mock.MagicMock()
    with patch, pytest.raises(LabelerError) as caught:
        label(src, RECORD, dst=dst, layers=layers, key=KEY, **opts)
    assert not dst.exists()
    return str(caught.value)


@pytest.mark.parametrize(("data", "layers", "opts"), [
    (np.full((22050, 1), np.nan, np.float32), "visible", {}),  # NaN in a float WAV
    (np.full((22050, 1), np.nan, np.float32), "watermark", {}),
    (0.1 * np.ones((11025, 1), np.float32), "watermark", {}),  # 0.5 s: too short to carry the mark
    (0.1 * np.ones((11025, 1), np.float32), "visible", {"cue_positions": ("middle",)}),  # under the cue
])
def test_streamed_refusals_are_the_whole_file_ones(tmp_path, data, layers, opts):
    src = tmp_path / "bad.wav"
    sf.write(src, data, 22050, subtype="FLOAT")
    streamed = _error(src, tmp_path / "a.wav", False, layers, **opts)
    assert streamed == _error(src, tmp_path / "b.wav", True, layers, **opts)


def test_silence_gets_the_same_note(tmp_path):
    src = tmp_path / "silence.flac"
    sf.write(src, np.zeros((3 * 22050, 2), np.float32), 22050, subtype="PCM_16")
    _, result = _label_both_ways(src, tmp_path, "watermark")
    assert result.layers["watermark"]["embedded"] is False
    assert any("no watermark was embedded" in w for w in result.warnings)


_PEAK = """
import sys, tracemalloc
from labeler import label
from labeler.record import AIGCLabel
tracemalloc.start()
label(sys.argv[1], AIGCLabel(content_producer=sys.argv[3], produce_id="p"), dst=sys.argv[2],
      layers="visible,watermark", key=bytes(32), audio_label="both", cue_positions=("start", "middle", "end"))
print(tracemalloc.get_traced_memory()[1])
"""


_CODECS = {".flac": "flac", ".mp3": "libmp3lame", ".ogg": "libvorbis"}


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg"])
def test_peak_memory_does_not_grow_with_the_file(tmp_path, suffix):
    """1 vs 8 minutes (8 kHz mono: the whole-file path held 10x the PCM, ~130 MB more for the long one):
    the traced peak (NumPy's allocations included; ffmpeg runs in its own processes) differs by under
    4 MB."""
    peaks = []
    for minutes in (1, 8):
        src = _long_wav(tmp_path / f"m{minutes}{suffix}", 60 * minutes, rate=8000, channels=1,
                        codec=_CODECS.get(suffix, "pcm_s16le"))
        proc = subprocess.run([sys.executable, "-c", _PEAK, str(src), str(tmp_path / f"out{minutes}{suffix}"),
                               PRODUCER], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        peaks.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert peaks[1] - peaks[0] < 4 << 20, peaks


def test_wav_past_the_riff_limit_is_refused(tmp_path):
    """An RF64 source whose labeled copy would pass 4 GiB is refused as the whole-file path refused it
    (libsndfile would write the WAV with wrapped sizes); the limit is lowered here to stay small."""
    src = _long_wav(tmp_path / "big.wav", 3, rate=8000, channels=1, codec="pcm_s16le",
                    extra=("-rf64", "always"))
    dst = tmp_path / "out.wav"
    with mock.patch.object(audio_rewrite, "_RIFF_LIMIT", 40000), pytest.raises(LabelerError, match="4 GiB"):
        label(src, RECORD, dst=dst, layers="watermark", key=KEY)
    assert not dst.exists()


def test_flac_without_a_sample_count_streams_through_ffmpeg(tmp_path):
    """A FLAC written to a pipe has no total in STREAMINFO and libsndfile fails at its end ("psf_fseek()
    failed"): ffmpeg decodes it block by block and libsndfile writes it (until 2026-12-07 it was decoded
    whole, up to MAX_DECODED_BYTES), the same file as the whole-file path, at its own 24 bits."""
    src = tmp_path / "piped.flac"
    with src.open("wb") as out:
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(SAMPLES / "speech.wav"), "-c:a", "flac",
                        "-sample_fmt", "s32", "-f", "flac", "-"], stdout=out, check=True, timeout=60)
    _, result = _label_both_ways(src, tmp_path, "visible,watermark", audio_label="rhythm",
                                 cue_positions=ALL)
    assert result.layers["watermark"]["embedded"] is True
    assert sf.info(str(tmp_path / "stream-visible-watermark.flac")).subtype == "PCM_24"
