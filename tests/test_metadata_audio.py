"""Audio carriers: WAV ``AIGC`` chunk (riff), MP3 ``TXXX:AIGC`` (id3), FLAC ``AIGC=`` Vorbis comment (flac).

Media are made with real encoders (soundfile / libsndfile, ffmpeg with libmp3lame
and flac) and checked with independent readers: soundfile for samples, mutagen
for tags, ffmpeg/ffprobe for decoding and tags, exiftool when installed.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import mutagen.flac
import mutagen.id3
import mutagen.wave
import numpy as np
import pytest
import soundfile as sf
from conftest import PRODUCER, corpus_path, decoded_digest, ffmpeg_exe, ffmpeg_warnings, run_ffmpeg

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput
from labeler.metadata import FoundLabel, flac, id3, riff, write_label
from labeler.record import AIGCLabel

VALUE = AIGCLabel(PRODUCER, "tts-2025-000042").to_json()  # 211 characters
VALUE2 = AIGCLabel(PRODUCER, "tts-2025-000043").to_json()
ODD = '{"Label":"1","ContentProducer":"x","ProduceID":"odd"}'  # 53 bytes: exercises RIFF padding
NON_ASCII = '{"Label":"1","ContentProducer":"豆包","ProduceID":"ÿ-1"}'
FF = ffmpeg_exe()
PROVENANCE = ("provenance",)


def ffmpeg_errors(path: Path) -> str:
    """What ``ffmpeg -v error`` prints while decoding the whole file (nothing for a sound file)."""
    proc = subprocess.run([FF, "-v", "error", "-nostdin", "-i", str(path), "-map", "0", "-f", "null", "-"],
                          capture_output=True, text=True)
    return proc.stderr.strip() + ("" if proc.returncode == 0 else f" (exit {proc.returncode})")


def tone(seconds: float = 0.3, rate: int = 22050, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1234 * t)
    return np.stack([mono * (0.5 + 0.5 * c) for c in range(channels)], axis=1).squeeze()


def label_bytes(module, data: bytes, value: str = VALUE) -> bytes:
    out = io.BytesIO()
    module.write(io.BytesIO(data), out, value)
    return out.getvalue()


def labels(module, data: bytes) -> list[FoundLabel]:
    return module.read(io.BytesIO(data))


def riff_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(id, offset, size) of the top-level chunks, walked independently of riff.py."""
    out, pos = [], 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        out.append((cid, pos, size))
        pos += 8 + size + (size & 1)
    return out


def id3_size(data: bytes) -> int:
    assert data[:3] == b"ID3"
    return 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    files: dict[str, Path] = {}
    for subtype, channels in (("PCM_16", 1), ("PCM_24", 1), ("FLOAT", 1), ("PCM_16", 2)):
        path = d / f"{subtype.lower()}_{channels}ch.wav"
        sf.write(path, tone(channels=channels), 22050, subtype=subtype)
        files[path.stem] = path
    src = files["pcm_16_1ch"]
    cover = d / "cover.png"
    run_ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1", str(cover))
    pic = ["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic"]
    run_ffmpeg("-i", str(src), *pic, "-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3",
               "-metadata", "title=Test tone", str(d / "v23.mp3"))
    run_ffmpeg("-i", str(src), "-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "4",
               "-metadata", "title=Test tone", str(d / "v24.mp3"))
    run_ffmpeg("-i", src, "-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "0", d / "bare.mp3")
    # ffmpeg's FLAC has STREAMINFO, PICTURE, VORBIS_COMMENT and 8 KiB of PADDING; soundfile's has no padding.
    run_ffmpeg("-i", str(src), *pic, "-c:a", "flac", "-metadata", "title=Test tone", str(d / "ff.flac"))
    sf.write(d / "sf.flac", tone(), 22050, subtype="PCM_16")
    for name in ("v23.mp3", "v24.mp3", "bare.mp3", "ff.flac", "sf.flac"):
        files[name] = d / name
    return files


# --------------------------------------------------------------------------- WAV


@pytest.mark.parametrize("name", ["pcm_16_1ch", "pcm_24_1ch", "float_1ch", "pcm_16_2ch"])
def test_wav_write_read_and_samples_identical(media, tmp_path, name):
    src = media[name]
    dst = tmp_path / "out.wav"
    result = write_label(src, dst, VALUE)
    assert (result.format, result.carrier) == ("wav", "riff-aigc")
    data = dst.read_bytes()
    chunks = riff_chunks(data)
    with dst.open("rb") as f:
        at = chunks[-2][1]
        assert riff.read(f) == [FoundLabel("riff-aigc", VALUE, f"RIFF chunk 'AIGC' at offset {at}")]
    # One chunk of 8 + 211 bytes + 1 pad byte, placed right before 'data'; the RIFF size is the real one.
    assert result.bytes_added == 8 + len(VALUE) + 1 == len(data) - src.stat().st_size
    ids = [c[0] for c in chunks]
    assert ids == [c[0] for c in riff_chunks(src.read_bytes())][:-1] + [b"AIGC", b"data"]
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    original, rate = sf.read(src, dtype="float64")
    labeled, rate2 = sf.read(dst, dtype="float64")
    assert rate == rate2 and np.array_equal(original, labeled)
    assert sf.info(dst).subtype == sf.info(src).subtype
    assert ffmpeg_errors(dst) == "" and ffmpeg_warnings(dst) == ffmpeg_warnings(src)
    assert decoded_digest(dst) == decoded_digest(src)
    # The sample bytes themselves are untouched.
    src_bytes = src.read_bytes()
    data_src = next(c for c in riff_chunks(src_bytes) if c[0] == b"data")
    data_out = next(c for c in riff_chunks(data) if c[0] == b"data")
    assert src_bytes[data_src[1]:] == data[data_out[1]:]


def test_wav_relabel_replaces_in_place(media, tmp_path):
    once = label_bytes(riff, media["pcm_16_2ch"].read_bytes(), ODD)
    twice = label_bytes(riff, once, VALUE2)
    found = labels(riff, twice)
    assert [(f.carrier, f.raw) for f in found] == [("riff-aigc", VALUE2)]
    assert [c[0] for c in riff_chunks(twice)].count(b"AIGC") == 1
    assert len(twice) - len(once) == len(VALUE2) + 1 - (len(ODD) + 1)
    # An AIGC chunk after 'data' (another tool's choice) is replaced where it is, not duplicated.
    base = media["pcm_16_1ch"].read_bytes()
    after = base + b"AIGC" + struct.pack("<I", len(ODD)) + ODD.encode() + b"\x00"
    after = after[:4] + struct.pack("<I", len(after) - 8) + after[8:]
    out = label_bytes(riff, after)
    assert [c[0] for c in riff_chunks(out)] == [b"fmt ", b"data", b"AIGC"]
    assert [f.raw for f in labels(riff, out)] == [VALUE]


def _info_list(*entries: tuple[bytes, bytes]) -> bytes:
    body = b"INFO"
    for cid, text in entries:
        body += cid + struct.pack("<I", len(text)) + text + (b"\x00" if len(text) & 1 else b"")
    return b"LIST" + struct.pack("<I", len(body)) + body


def _with_chunk_before_data(wav: bytes, chunk: bytes) -> bytes:
    at = wav.index(b"data")
    out = wav[:at] + chunk + wav[at:]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def test_wav_info_entry_and_id3_chunk_are_read_then_removed(media, tmp_path):
    # A file as some tools write it: LIST/INFO with ISFT and AIGC, plus an 'id3 ' chunk (mutagen) with
    # a title and a TXXX:AIGC frame.
    path = tmp_path / "tagged.wav"
    info = _info_list((b"ISFT", b"Lavf61\x00"), (b"AIGC", ODD.encode() + b"\x00"))
    path.write_bytes(_with_chunk_before_data(media["pcm_16_1ch"].read_bytes(), info))
    wave = mutagen.wave.WAVE(path)
    wave.add_tags()
    wave.tags.add(mutagen.id3.TIT2(encoding=3, text=["Test tone"]))
    wave.tags.add(mutagen.id3.TXXX(encoding=3, desc="AIGC", text=[ODD]))
    wave.save()
    found = labels(riff, path.read_bytes())
    assert [(f.carrier, f.raw) for f in found] == [("riff-info", ODD), ("id3-txxx", ODD)]

    out = tmp_path / "out.wav"
    result = write_label(path, out, VALUE)
    assert result.other_copies == ()
    assert [(f.carrier, f.raw) for f in labels(riff, out.read_bytes())] == [("riff-aigc", VALUE)]
    # The ISFT entry survives byte for byte, and so does the id3 title.
    data = out.read_bytes()
    assert [c[0] for c in riff_chunks(data)] == [b"fmt ", b"LIST", b"AIGC", b"data", b"id3 "]
    assert _info_list((b"ISFT", b"Lavf61\x00")) in data
    tags = mutagen.wave.WAVE(out).tags
    assert str(tags["TIT2"]) == "Test tone" and not tags.getall("TXXX")
    assert np.array_equal(sf.read(out)[0], sf.read(media["pcm_16_1ch"])[0])


def test_wav_info_only_entry_drops_the_empty_list(media):
    data = _with_chunk_before_data(media["pcm_16_1ch"].read_bytes(), _info_list((b"AIGC", ODD.encode())))
    out = label_bytes(riff, data)
    assert [c[0] for c in riff_chunks(out)] == [b"fmt ", b"AIGC", b"data"]


def test_wav_streamed_unknown_sizes_are_fixed(media, tmp_path):
    # ffmpeg writing to a pipe leaves RIFF and data sizes at 0xFFFFFFFF, as streaming TTS services do.
    piped = subprocess.run([FF, "-v", "error", "-i", str(media["pcm_16_2ch"]), "-f", "wav", "-"],
                           capture_output=True, check=True).stdout
    assert struct.unpack_from("<I", piped, 4)[0] == 0xFFFFFFFF
    out = tmp_path / "out.wav"
    out.write_bytes(label_bytes(riff, piped))
    data = out.read_bytes()
    chunks = riff_chunks(data)
    assert [c[0] for c in chunks][-2:] == [b"AIGC", b"data"]
    assert chunks[-1][2] == len(data) - chunks[-1][1] - 8
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert np.array_equal(sf.read(out)[0], sf.read(media["pcm_16_2ch"])[0])


@pytest.mark.parametrize("value", [VALUE, ODD])
def test_wav_rf64_keeps_its_form(media, tmp_path, value):
    src = tmp_path / "rf64.wav"
    run_ffmpeg("-i", str(media["pcm_16_1ch"]), "-rf64", "always", str(src))
    out = tmp_path / "out.wav"
    write_label(src, out, value)
    data = out.read_bytes()
    assert data[:4] == b"RF64" and data[12:16] == b"ds64"
    assert struct.unpack_from("<Q", data, 20)[0] == len(data) - 8  # ds64 riffSize
    assert [f.raw for f in labels(riff, data)] == [value]
    # libsndfile's RF64 reader ignores pad bytes: the chunk size is kept even (NUL-terminated when odd).
    aigc = next(c for c in riff_chunks(data) if c[0] == b"AIGC")
    assert aigc[2] % 2 == 0
    assert np.array_equal(sf.read(out)[0], sf.read(media["pcm_16_1ch"])[0])
    assert ffmpeg_errors(out) == "" and ffmpeg_warnings(out) == ffmpeg_warnings(src)


def test_wav_exiftool_sees_the_chunk(media, tmp_path):
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool not installed")
    out = tmp_path / "out.wav"
    write_label(media["pcm_16_1ch"], out, VALUE)
    # exiftool lists an unknown chunk with -u; its binary value includes the RIFF pad byte.
    raw = subprocess.run(["exiftool", "-u", "-U", "-b", "-RIFF:Unknown_AIGC", str(out)],
                         capture_output=True, check=True).stdout
    assert raw.rstrip(b"\x00") == VALUE.encode()


@pytest.mark.parametrize("name", ["speech-en.wav", "music-piano.wav"])
def test_corpus_wav_round_trip(tmp_path, name):
    src = corpus_path("audio", name)
    out = tmp_path / name
    result = write_label(src, out, VALUE)
    assert result.bytes_added == 8 + len(VALUE) + 1
    assert [f.raw for f in labels(riff, out.read_bytes())] == [VALUE]
    assert np.array_equal(sf.read(out, dtype="int16")[0], sf.read(src, dtype="int16")[0])


# --------------------------------------------------------------------------- MP3


@pytest.mark.parametrize("name, version", [("v23.mp3", 3), ("v24.mp3", 4), ("bare.mp3", 3)])
def test_mp3_write_read_keeps_frames_and_audio(media, tmp_path, name, version):
    src = media[name]
    out = tmp_path / "out.mp3"
    result = write_label(src, out, VALUE)
    assert result.carrier == "id3-txxx"
    found = labels(id3, out.read_bytes())
    assert [(f.carrier, f.raw) for f in found] == [("id3-txxx", VALUE)]
    tag = mutagen.id3.ID3(out)
    assert tag.version == (2, version, 0)
    frames = tag.getall("TXXX")
    assert [(f.desc, f.text) for f in frames] == [("AIGC", [VALUE])]
    # UTF-8 in v2.4; ISO-8859-1 for an ASCII value in v2.3 (as ffmpeg writes them).
    assert frames[0].encoding == (3 if version == 4 else 0)
    src_bytes, data = src.read_bytes(), out.read_bytes()
    if name != "bare.mp3":
        before = mutagen.id3.ID3(src)
        assert str(tag["TIT2"]) == "Test tone"
        assert sorted(k for k in tag if k != "TXXX:AIGC") == sorted(before.keys())
        if "APIC:" in before:
            assert tag["APIC:"].data == before["APIC:"].data
        # MPEG frames after the tag are byte-identical.
        assert src_bytes[id3_size(src_bytes):] == data[id3_size(data):]
    else:
        assert data[id3_size(data):] == src_bytes
        assert result.bytes_added == 10 + 10 + 1 + 5 + len(VALUE) + id3.GROW_PADDING
    assert decoded_digest(out) == decoded_digest(src)
    assert ffmpeg_errors(out) == "" and ffmpeg_warnings(out) == ffmpeg_warnings(src)


def test_mp3_relabel_and_case_insensitive_replace(media, tmp_path):
    path = tmp_path / "old.mp3"
    shutil.copy(media["v23.mp3"], path)
    tag = mutagen.id3.ID3(path)
    tag.add(mutagen.id3.TXXX(encoding=1, desc="aigc", text=[ODD]))
    tag.add(mutagen.id3.TXXX(encoding=0, desc="aigc_label_type", text=["1"]))
    tag.save(path, v2_version=3)
    found = labels(id3, path.read_bytes())
    assert [(f.carrier, f.raw, f.standard) for f in found] == [
        ("id3-txxx", ODD, True), ("vendor-key", "1", False)]
    once = label_bytes(id3, path.read_bytes(), VALUE)
    twice = label_bytes(id3, once, VALUE2)
    assert [(f.carrier, f.raw) for f in labels(id3, twice)] == [("id3-txxx", VALUE2), ("vendor-key", "1")]
    descs = sorted(f.desc for f in mutagen.id3.ID3(io.BytesIO(twice)).getall("TXXX"))
    assert descs == ["AIGC", "aigc_label_type"]
    # Same-length values reuse the room of the old tag: the file size does not change.
    assert len(twice) == len(once)


def test_mp3_ffprobe_and_exiftool_read_the_frame(media, tmp_path):
    out = tmp_path / "out.mp3"
    write_label(media["v23.mp3"], out, VALUE)
    if shutil.which("ffprobe"):
        tags = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=AIGC", "-of",
                               "default=nw=1:nk=1", str(out)], capture_output=True, text=True, check=True)
        assert tags.stdout.strip() == VALUE
    if shutil.which("exiftool"):
        got = subprocess.run(["exiftool", "-s3", "-UserDefinedText", str(out)],
                             capture_output=True, text=True)
        assert got.stdout.strip() == f"(AIGC) {VALUE}"


def _tag(version: int, frames: bytes, flags: int = 0) -> bytes:
    size = len(frames)
    return b"ID3" + bytes((version, 0, flags)) + bytes((size >> s) & 0x7F for s in (21, 14, 7, 0)) + frames


def _frame23(fid: bytes, body: bytes, flags: bytes = b"\x00\x00") -> bytes:
    return fid + struct.pack(">I", len(body)) + flags + body


def test_mp3_compressed_frames_and_stacked_tags(media):
    audio = media["bare.mp3"].read_bytes()
    body = b"\x00AIGC\x00" + ODD.encode()
    packed = struct.pack(">I", len(body)) + zlib.compress(body)
    compressed = _tag(3, _frame23(b"TXXX", packed, b"\x00\x80") + _frame23(b"TIT2", b"\x00Tone"))
    assert [f.raw for f in labels(id3, compressed + audio)] == [ODD]
    # A label in a second, stacked tag is found, and removed when the first one gets the new label.
    stacked = _tag(3, _frame23(b"TIT2", b"\x00Tone")) + _tag(3, _frame23(b"TXXX", body)) + audio
    assert [f.raw for f in labels(id3, stacked)] == [ODD]
    out = label_bytes(id3, stacked)
    assert [f.raw for f in labels(id3, out)] == [VALUE]
    assert out.endswith(audio)
    assert str(mutagen.id3.ID3(io.BytesIO(out))["TIT2"]) == "Tone"
    # A compressed frame that inflates past the bound is refused, not inflated.
    bomb = b"\x00AIGC\x00" + b"{" * (limits.MAX_INFLATED + 16)
    hostile = _tag(3, _frame23(b"TXXX", struct.pack(">I", len(bomb)) + zlib.compress(bomb, 9), b"\x00\x80"))
    with pytest.raises(UnsafeInput):
        labels(id3, hostile + audio)


def test_mp3_v24_unsynchronised_frame(media):
    audio = media["bare.mp3"].read_bytes()
    value = ODD.replace("odd", "\u00ff")  # UTF-16-LE 0xFF 0x00: needs unsynchronisation
    body = b"\x01\xff\xfe" + "AIGC".encode("utf-16-le") + b"\x00\x00\xff\xfe" + value.encode("utf-16-le")
    unsynced = body.replace(b"\xff", b"\xff\x00")
    frame = b"TXXX" + bytes((len(unsynced) >> s) & 0x7F for s in (21, 14, 7, 0)) + b"\x00\x02" + unsynced
    data = _tag(4, frame) + audio
    assert str(mutagen.id3.ID3(io.BytesIO(data))["TXXX:AIGC"]) == value  # independent check of the fixture
    assert [f.raw for f in labels(id3, data)] == [value]
    out = label_bytes(id3, data, VALUE)
    assert [f.raw for f in labels(id3, out)] == [VALUE]
    assert mutagen.id3.ID3(io.BytesIO(out)).getall("TXXX")[0].text == [VALUE]


def test_mp3_v22_tag_keeps_its_version(media):
    audio = media["bare.mp3"].read_bytes()

    def frame22(fid: bytes, body: bytes) -> bytes:
        return fid + len(body).to_bytes(3, "big") + body

    data = _tag(2, frame22(b"TT2", b"\x00Tone") + frame22(b"TXX", b"\x00aigc\x00" + ODD.encode())) + audio
    assert [f.raw for f in labels(id3, data)] == [ODD]
    out = label_bytes(id3, data, NON_ASCII)
    tag = mutagen.id3.ID3(io.BytesIO(out))
    assert tag.version == (2, 2, 0) and str(tag["TIT2"]) == "Tone"
    assert [f.text for f in tag.getall("TXXX")] == [[NON_ASCII]]
    assert out.endswith(audio)


@pytest.mark.parametrize("module, name", [(riff, "pcm_16_1ch"), (id3, "v23.mp3"), (id3, "v24.mp3"),
                                          (flac, "sf.flac")])
def test_non_ascii_values_round_trip(media, module, name):
    # Writers upstream refuse such values (Appendix E charset), but the carriers must not mangle them.
    out = label_bytes(module, media[name].read_bytes(), NON_ASCII)
    assert [f.raw for f in labels(module, out)] == [NON_ASCII]


# --------------------------------------------------------------------------- FLAC


def flac_blocks(data: bytes) -> list[tuple[int, bytes]]:
    pos = data.index(b"fLaC") + 4
    out = []
    while True:
        head = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        out.append((head & 0x7F, data[pos + 4:pos + 4 + length]))
        pos += 4 + length
        if head & 0x80:
            return out


@pytest.mark.parametrize("name", ["ff.flac", "sf.flac"])
def test_flac_write_read_keeps_blocks_and_samples(media, tmp_path, name):
    src = media[name]
    out = tmp_path / "out.flac"
    result = write_label(src, out, VALUE)
    assert result.carrier == "vorbis-comment"
    assert [(f.carrier, f.raw) for f in labels(flac, out.read_bytes())] == [("vorbis-comment", VALUE)]
    before, after = flac_blocks(src.read_bytes()), flac_blocks(out.read_bytes())
    assert [k for k, _ in before] == [k for k, _ in after]
    for (kind, old), (_, new) in zip(before, after, strict=True):
        if kind not in (1, 4):  # STREAMINFO, PICTURE... keep their bytes
            assert old == new
    tags = mutagen.flac.FLAC(out)
    assert tags["AIGC"] == [VALUE]
    if name == "ff.flac":
        assert tags["TITLE"] == ["Test tone"] and len(tags.pictures) == 1
        # The padding block absorbed the new comment: the audio frames did not move.
        assert result.bytes_added == 0
    else:
        assert result.bytes_added == 4 + len("AIGC=") + len(VALUE)
    src_bytes, data = src.read_bytes(), out.read_bytes()
    assert data.endswith(src_bytes[-(len(src_bytes) - sum(4 + len(b) for _, b in before) - 4):])
    assert np.array_equal(sf.read(out, dtype="int32")[0], sf.read(src, dtype="int32")[0])
    assert ffmpeg_errors(out) == "" and ffmpeg_warnings(out) == ffmpeg_warnings(src)
    if shutil.which("ffprobe"):
        got = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=AIGC", "-of",
                              "default=nw=1:nk=1", str(out)], capture_output=True, text=True, check=True)
        assert got.stdout.strip() == VALUE


def test_flac_relabel_replaces_lowercase_comment(media, tmp_path):
    path = tmp_path / "old.flac"
    shutil.copy(media["ff.flac"], path)
    tagged = mutagen.flac.FLAC(path)
    tagged["aigc"] = ODD
    tagged["ARTIST"] = "Someone"
    tagged.save()
    assert [f.raw for f in labels(flac, path.read_bytes())] == [ODD]
    once = label_bytes(flac, path.read_bytes(), VALUE)
    twice = label_bytes(flac, once, VALUE2)
    assert [(f.carrier, f.raw) for f in labels(flac, twice)] == [("vorbis-comment", VALUE2)]
    tags = mutagen.flac.FLAC(io.BytesIO(twice))
    assert tags["AIGC"] == [VALUE2] and tags["ARTIST"] == ["Someone"] and tags["TITLE"] == ["Test tone"]
    assert len(twice) == len(path.read_bytes())  # padding absorbs both writes


def test_flac_without_comment_block_and_with_id3_in_front(media, tmp_path):
    data = media["sf.flac"].read_bytes()
    blocks = flac_blocks(data)
    audio = data[4 + sum(4 + len(b) for _, b in blocks):]
    # Rebuild the stream with STREAMINFO only, behind an ID3v2 tag holding a title and a label.
    bare = b"fLaC" + bytes((0x80,)) + len(blocks[0][1]).to_bytes(3, "big") + blocks[0][1] + audio
    tag = _tag(3, _frame23(b"TIT2", b"\x00Tone") + _frame23(b"TXXX", b"\x00AIGC\x00" + ODD.encode()))
    path = tmp_path / "id3.flac"
    path.write_bytes(tag + bare)
    assert [(f.carrier, f.raw) for f in labels(flac, path.read_bytes())] == [("id3-txxx", ODD)]
    out = tmp_path / "out.flac"
    result = write_label(path, out, VALUE)
    assert (result.format, result.other_copies) == ("flac", ())
    data = out.read_bytes()
    assert [(f.carrier, f.raw) for f in labels(flac, data)] == [("vorbis-comment", VALUE)]
    assert [k for k, _ in flac_blocks(data)] == [0, 4]
    assert str(mutagen.id3.ID3(io.BytesIO(data))["TIT2"]) == "Tone"
    assert data.endswith(audio)
    assert np.array_equal(sf.read(out)[0], sf.read(media["sf.flac"])[0])


# --------------------------------------------------------------------------- hostile input


def _truncations(data: bytes) -> list[bytes]:
    cuts = {1, 3, 4, 9, 11, 12, 20, 30, 45, 60, 100, 200, len(data) // 2, len(data) - 1}
    return [data[:n] for n in sorted(cuts) if n < len(data)]


def _only_clean_errors(module, data: bytes) -> None:
    for action in ("read", "write"):
        try:
            if action == "read":
                module.read(io.BytesIO(data))
            else:
                module.write(io.BytesIO(data), io.BytesIO(), VALUE)
        except LabelerError as err:
            assert "\n" not in str(err) and str(err)


@pytest.mark.parametrize("module, name", [(riff, "pcm_16_2ch"), (id3, "v23.mp3"), (flac, "ff.flac")])
def test_truncated_and_empty_files_give_clean_errors(media, module, name):
    data = media[name].read_bytes()
    for cut in [b"", *_truncations(data)]:
        _only_clean_errors(module, cut)
    with pytest.raises(CorruptFile):
        module.read(io.BytesIO(b""))


def test_riff_bomb_is_refused_fast():
    data = corpus_path(*PROVENANCE, "riff_bomb_1000.wav").read_bytes()
    with pytest.raises(UnsafeInput, match="nested deeper"):
        riff.read(io.BytesIO(data))
    with pytest.raises(UnsafeInput):
        riff.write(io.BytesIO(data), io.BytesIO(), VALUE)


def test_invalid_wav_riff_size_is_tolerated_and_fixed():
    # sample3.invalid.wav declares a RIFF size 1 MB larger than the file; its chunks are intact.
    data = corpus_path(*PROVENANCE, "sample3.invalid.wav").read_bytes()
    assert labels(riff, data) == []
    out = label_bytes(riff, data)
    assert struct.unpack_from("<I", out, 4)[0] == len(out) - 8
    assert [f.raw for f in labels(riff, out)] == [VALUE]
    assert np.array_equal(sf.read(io.BytesIO(out))[0], sf.read(io.BytesIO(data))[0])


def test_id3_compression_underflow_is_clean():
    data = corpus_path(*PROVENANCE, "id3v23_compression_underflow.mp3").read_bytes()
    assert labels(id3, data) == []
    out = label_bytes(id3, data)
    assert [f.raw for f in labels(id3, out)] == [VALUE]
    assert out[id3_size(out):] == data[id3_size(data):]


def test_hostile_headers():
    # A chunk larger than the file (not 'data') is corrupt; so is an ID3 size beyond the file.
    wav = b"RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\x00\x00" + bytes(16)
    with pytest.raises(CorruptFile):
        riff.read(io.BytesIO(wav))
    with pytest.raises(CorruptFile):
        id3.read(io.BytesIO(b"ID3\x03\x00\x00\x00\x00\x7f\x7f" + bytes(100)))
    with pytest.raises(UnsafeInput):
        id3.read(io.BytesIO(b"ID3\x03\x00\x00\x7f\x7f\x7f\x7f" + bytes(100)))
    with pytest.raises(CorruptFile):
        flac.read(io.BytesIO(b"fLaC\x00\xff\xff\xff" + bytes(64)))
    # A Vorbis comment count far beyond its block.
    comment = struct.pack("<I", 0) + struct.pack("<I", 0xFFFFFFF0)
    stream = b"fLaC" + b"\x00\x00\x00\x22" + bytes(34) + b"\x84" + len(comment).to_bytes(3, "big") + comment
    with pytest.raises(CorruptFile):
        flac.read(io.BytesIO(stream))
    # 20 000 tiny chunks are walked within the chunk bound, quickly.
    many = b"RIFF\x00\x00\x00\x00WAVE" + b"JUNK\x00\x00\x00\x00" * 20000
    assert riff.read(io.BytesIO(many)) == []


def test_grown_id3v24_tag_is_padded_so_exiftool_reads_it_without_a_warning(tmp_path):
    """A v2.4 tag that grows gets padding: exiftool 12 warns "Invalid ID3 frame size" when the last
    frame ends the tag exactly (every MP3 whose tag had no room for the label did), and a later
    relabel now fits in place."""
    from conftest import SAMPLES

    audio = (SAMPLES / "speech.mp3").read_bytes()
    src = tmp_path / "v24.mp3"
    tag = mutagen.id3.ID3()
    tag.add(mutagen.id3.TIT2(encoding=3, text="x"))
    tag.save(src, v2_version=4, padding=lambda info: 0)  # no room at all
    src.write_bytes(src.read_bytes() + audio[id3_size(audio):])
    out, again = tmp_path / "out.mp3", tmp_path / "again.mp3"
    write_label(src, out, VALUE)
    assert id3_size(out.read_bytes()) - id3_size(src.read_bytes()) > id3.GROW_PADDING
    write_label(out, again, VALUE2)
    assert id3_size(again.read_bytes()) == id3_size(out.read_bytes())  # relabeled in place
    if shutil.which("exiftool"):
        shown = subprocess.run(["exiftool", "-a", "-warning", str(out)], capture_output=True, text=True)
        assert "Invalid ID3" not in shown.stdout
