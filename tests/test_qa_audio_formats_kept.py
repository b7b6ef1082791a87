"""QA: the audio layers that re-encode keep what the source had (format, codec, tags, bit rate).

Found by a QA pass over WAV / FLAC / MP3 / M4A / Ogg sources (December 2026): an MP3's ID3 tag was
re-rendered by ffmpeg (v2.3 -> v2.4, COMM -> TXXX, USLT / POPM dropped, chapters moved by the encoder
delay); a VBR MP3 came out at a lower bit rate (nearest instead of at least); ALAC became lossy AAC;
an RF64 WAV lost every chunk (LIST/INFO, the extensible header) and got a false C2PA warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import has_encoder, run_ffmpeg

from labeler.media import ffmpeg as ff
from labeler.media.audio_rewrite import AudioEdit, rewrite_audio_file


def _tone(tmp_path: Path, seconds: float = 3.0) -> Path:
    src = tmp_path / "tone.wav"
    run_ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=44100",
            "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:a=0.1:r=44100", "-filter_complex",
            "[0][1]amix=inputs=2,aformat=channel_layouts=stereo", "-c:a", "pcm_s16le", str(src))
    return src


def _quieter(samples: np.ndarray, rate: int) -> np.ndarray:
    return samples * 0.9


def _delayed(samples: np.ndarray, rate: int) -> AudioEdit:
    pad = np.zeros((rate, samples.shape[1]), np.float32)  # 1 s before the programme
    return AudioEdit(np.concatenate([pad, samples]), delay=rate)


def _id3_source(tmp_path: Path) -> Path:
    mutagen_id3 = pytest.importorskip("mutagen.id3")
    if not has_encoder("libmp3lame"):
        pytest.skip("no libmp3lame encoder in this ffmpeg")
    src = tmp_path / "tagged.mp3"
    run_ffmpeg("-i", str(_tone(tmp_path)), "-c:a", "libmp3lame", "-b:a", "128k", str(src))
    m = mutagen_id3
    tag = m.ID3()
    tag.add(m.TIT2(encoding=1, text="QA Title"))
    tag.add(m.COMM(encoding=1, lang="eng", desc="", text="a comment"))
    tag.add(m.USLT(encoding=1, lang="eng", desc="", text="la la la"))
    tag.add(m.POPM(email="qa@example.org", rating=200, count=3))
    tag.add(m.CTOC(element_id="toc", flags=m.CTOCFlags.TOP_LEVEL | m.CTOCFlags.ORDERED,
                   child_element_ids=["c0", "c1"]))
    tag.add(m.CHAP(element_id="c0", start_time=0, end_time=1500, sub_frames=[m.TIT2(text="one")]))
    tag.add(m.CHAP(element_id="c1", start_time=1500, end_time=3000, sub_frames=[m.TIT2(text="two")]))
    tag.save(src, v2_version=3)
    return src


def test_mp3_id3_tag_kept_as_it_was(tmp_path: Path) -> None:
    from mutagen.id3 import ID3

    src = _id3_source(tmp_path)
    dst = tmp_path / "out.mp3"
    rewrite_audio_file(src, dst, _quieter)
    before, after = ID3(src), ID3(dst)
    assert after.version == (2, 3, 0)  # ffmpeg would have written v2.4
    for key in ("TIT2", "COMM::eng", "USLT::eng", "POPM:qa@example.org", "CTOC:toc"):
        assert str(after[key]) == str(before[key]), key
    assert [(after[c].start_time, after[c].end_time) for c in ("CHAP:c0", "CHAP:c1")] == [(0, 1500),
                                                                                         (1500, 3000)]
    with open(src, "rb") as a, open(dst, "rb") as b:  # the source's tag, byte for byte
        from labeler.metadata.id3 import tag_length

        size = tag_length(a.read(10))
        a.seek(0)
        assert b.read(size) == a.read(size)
    assert ff.probe(dst).audio[0].codec == "mp3"


def test_mp3_chapters_move_with_the_programme(tmp_path: Path) -> None:
    from mutagen.id3 import ID3

    src = _id3_source(tmp_path)
    dst = tmp_path / "out.mp3"
    rewrite_audio_file(src, dst, _delayed)
    after = ID3(dst)
    assert [(after[c].start_time, after[c].end_time) for c in ("CHAP:c0", "CHAP:c1")] == [(1000, 2500),
                                                                                         (2500, 4000)]
    assert str(after["USLT::eng"]) == "la la la"


def test_lossy_bitrate_never_below_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from labeler.media import audio_rewrite

    class _Stream:
        bitrate = 170_722  # a LAME -V2 file

    class _Info:
        audio = [_Stream()]
        bitrate = 170_859

    monkeypatch.setattr(ff, "probe", lambda path: _Info())
    assert audio_rewrite._bitrate_of("x.mp3") == "192k"  # the nearest, 160k, would be lower
    _Stream.bitrate = 128_000
    assert audio_rewrite._bitrate_of("x.mp3") == "128k"
    _Stream.bitrate = 400_000
    assert audio_rewrite._bitrate_of("x.mp3") == "320k"


def test_alac_stays_lossless_at_its_bit_depth(tmp_path: Path) -> None:
    if not has_encoder("alac"):
        pytest.skip("no alac encoder in this ffmpeg")
    src = tmp_path / "lossless.m4a"
    run_ffmpeg("-i", str(_tone(tmp_path)), "-c:a", "alac", "-metadata", "title=QA Title", str(src))
    dst = tmp_path / "out.m4a"
    rewrite_audio_file(src, dst, _quieter)
    stream = ff.probe(dst).audio[0]
    assert stream.codec == "alac"  # was AAC-LC: a lossy generation without a word
    assert (stream.sample_fmt or "").startswith("s16")


def _chunk_ids(path: Path) -> list[bytes]:
    from labeler.metadata import riff

    with open(path, "rb") as handle:
        return [c.cid for c in riff._layout(handle).chunks]


def test_rf64_keeps_its_chunks_and_gets_no_c2pa_warning(tmp_path: Path) -> None:
    from labeler.provenance.c2pa_sign import holds_manifest

    src = tmp_path / "big.wav"
    run_ffmpeg("-i", str(_tone(tmp_path)), "-rf64", "always", "-metadata", "title=QA Title",
            "-c:a", "pcm_s24le", str(src))
    assert src.read_bytes()[:4] == b"RF64"
    assert not holds_manifest(src, "wav")  # c2pa-rs cannot parse RF64: that is not a manifest
    dst = tmp_path / "out.wav"
    rewrite_audio_file(src, dst, _quieter)
    assert b"LIST" in _chunk_ids(dst)  # the source's INFO (title) was dropped with every other chunk
    stream = ff.probe(dst).audio[0]
    assert stream.metadata.get("title") or ff.probe(dst).metadata.get("title") == "QA Title"
    import soundfile as sf

    assert sf.info(str(dst)).subtype == "PCM_24"
    assert sf.info(str(dst)).channels == 2


@pytest.mark.parametrize("codec", ["aac", "alac"])
def test_m4a_itunes_items_kept(tmp_path: Path, codec: str) -> None:
    """ffmpeg, keeping custom keys (use_metadata_tags), writes the tags as mdta keys only: mutagen and
    iTunes-style players, which read the iTunes items, lost title, artist and freeform items (the cover
    alone was put back). The source's items now all are, byte for byte (``©too`` aside: the encoder)."""
    mutagen_mp4 = pytest.importorskip("mutagen.mp4")
    src = tmp_path / f"tagged-{codec}.m4a"
    run_ffmpeg("-i", str(_tone(tmp_path)), "-c:a", codec, "-metadata", "title=Night Drive",
            "-metadata", "artist=Example Band", "-metadata", "track=3/9", str(src))
    tags = mutagen_mp4.MP4(str(src))
    tags["----:com.apple.iTunes:replaygain_track_gain"] = [mutagen_mp4.MP4FreeForm(b"-6.20 dB")]
    tags.save()
    dst = tmp_path / f"out-{codec}.m4a"
    rewrite_audio_file(src, dst, lambda samples, rate: samples * np.float32(0.5))
    out = mutagen_mp4.MP4(str(dst)).tags
    assert out is not None
    assert out["\xa9nam"] == ["Night Drive"] and out["\xa9ART"] == ["Example Band"], dict(out)
    assert out["trkn"] == [(3, 9)]
    assert bytes(out["----:com.apple.iTunes:replaygain_track_gain"][0]) == b"-6.20 dB"
