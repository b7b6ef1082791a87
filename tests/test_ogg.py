"""Ogg Vorbis and Opus: the carrier (pages, CRC, comment header), the CLI round trips, hostile files."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
from pathlib import Path

import mutagen
import pytest
import soundfile as sf
from conftest import PRODUCER, SAMPLES, ffmpeg_exe, has_encoder, run_cli, seeded_key, seeded_key_file

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.formats import sniff_file
from labeler.media import ffmpeg as ff
from labeler.metadata import ogg, read_labels, write_label

VALUE = ('{"Label":"1","ContentProducer":"x","ProduceID":"ogg-1","ReservedCode1":"",'
         '"ContentPropagator":"x","PropagateID":"ogg-1","ReservedCode2":""}')
CODECS = {"vorbis": ("libvorbis", ".ogg"), "opus": ("libopus", ".opus")}


def make_ogg(path: Path, codec: str, *extra: str, loops: int = 0) -> Path:
    """Encode samples/speech.wav with ffmpeg's libvorbis/libopus; skips when the encoder is missing."""
    encoder = CODECS[codec][0]
    if not has_encoder(encoder):
        pytest.skip(f"{ffmpeg_exe()} has no {encoder} encoder")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-stream_loop", str(loops),
                    "-i", str(SAMPLES / "speech.wav"), "-c:a", encoder, *extra, str(path)],
                   check=True, capture_output=True)
    return path


def _pages(data: bytes) -> list:
    pos, pages = 0, []
    while pos < len(data):
        page, _ = ogg._read_page(io.BytesIO(data), pos, len(data))  # CRC-checked
        pages.append(page)
        pos += page.size
    return pages


def _probe(path: Path) -> dict:
    """ffprobe's view of the first stream and the format (codec, rate, channels, AIGC tag, bit rate).

    A user's machine usually has no ffprobe (the imageio-ffmpeg wheel ships ffmpeg only): there the same
    fields come from ffmpeg's own banner through :func:`labeler.media.ffmpeg.probe` (bit rates in kb/s).
    """
    if shutil.which("ffprobe") is None:
        info = ff.probe(path)
        first = info.streams[0]
        return {"streams": [{"codec_name": first.codec, "sample_rate": str(first.sample_rate),
                             "channels": first.channels,
                             "tags": {k.upper(): v for k, v in first.metadata.items()}}],
                "format": {"bit_rate": str(info.bitrate)}}
    entries = "stream=codec_name,sample_rate,channels:stream_tags=AIGC:format=bit_rate"
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries", entries, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("codec", list(CODECS))
def test_crc_matches_the_encoder(tmp_path, codec):
    data = make_ogg(tmp_path / f"a{CODECS[codec][1]}", codec).read_bytes()
    assert len(_pages(data)) > 3  # every page of libogg/ffmpeg's output passes our CRC
    assert ogg.ogg_crc(b"") == 0 and ogg.ogg_crc(b"\x00" * 7) == 0


@pytest.mark.parametrize("codec", list(CODECS))
def test_metadata_round_trip(tmp_path, codec):
    src = make_ogg(tmp_path / f"a{CODECS[codec][1]}", codec)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    assert sniff_file(src) == "ogg" and read_labels(src)[1] == []
    dst = tmp_path / f"b{CODECS[codec][1]}"
    run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", "ogg-7", check=True)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    report = json.loads(run_cli("verify", "--json", str(dst), check=True).stdout)
    assert report["format"] == "ogg" and report["layers"]["metadata"]["carrier"] == "vorbis-comment"
    assert report["layers"]["metadata"]["fields"]["ProduceID"] == "ogg-7"
    # Audio pages untouched: the label is a few hundred bytes, so the header keeps its page count.
    old, new = src.read_bytes(), dst.read_bytes()
    assert new.endswith(old[ogg._headers(io.BytesIO(old)).end:])
    tags = mutagen.File(dst)
    assert '"ogg-7"' in tags["AIGC"][0] and tags.info.channels == 1
    assert "ogg-7" in _probe(dst)["streams"][0]["tags"]["AIGC"]
    decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(dst), "-f", "null", "-"],
                             capture_output=True, text=True)
    assert decoded.returncode == 0 and decoded.stderr == ""
    assert sf.read(dst)[0].shape == sf.read(src)[0].shape


@pytest.mark.parametrize("codec", list(CODECS))
def test_relabel_with_a_big_comment_renumbers_pages(tmp_path, codec):
    src = make_ogg(tmp_path / f"a{CODECS[codec][1]}", codec)
    tags = mutagen.File(src)
    tags["AIGC"] = "old"
    tags["COMMENT"] = "z" * 64_900  # mutagen splits it over ~16 pages of 4 KiB
    tags.save()
    dst = tmp_path / f"b{CODECS[codec][1]}"
    write_label(src, dst, VALUE)
    data = dst.read_bytes()
    pages = _pages(data)
    assert [p.seq for p in pages] == list(range(len(pages)))
    assert len(ogg._headers(io.BytesIO(data)).pages) < len(ogg._headers(io.BytesIO(src.read_bytes())).pages)
    assert [f.raw for f in read_labels(dst)[1]] == [VALUE]
    assert mutagen.File(dst)["COMMENT"] == ["z" * 64_900]
    decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(dst), "-f", "null", "-"],
                             capture_output=True, text=True)
    assert decoded.returncode == 0 and decoded.stderr == ""


def test_chained_file_labels_the_first_link(tmp_path):
    first = make_ogg(tmp_path / "a.ogg", "vorbis").read_bytes()
    second = make_ogg(tmp_path / "b.ogg", "vorbis", "-serial_offset", "7").read_bytes()
    (tmp_path / "chain.ogg").write_bytes(first + second)
    write_label(tmp_path / "chain.ogg", tmp_path / "out.ogg", VALUE)
    out = (tmp_path / "out.ogg").read_bytes()
    assert out.endswith(second) and [f.raw for f in read_labels(tmp_path / "out.ogg")[1]] == [VALUE]


@pytest.mark.parametrize("codec", list(CODECS))
def test_watermark_and_metadata_round_trip(tmp_path, codec):
    ext = CODECS[codec][1]
    src = make_ogg(tmp_path / f"a{ext}", codec, "-ar", "48000", "-ac", "2", "-b:a", "96k", loops=1)
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_ogg-1")
    dst = tmp_path / f"b{ext}"
    run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", "ogg-wm",
            "--layers", "watermark,metadata", "--key-file", str(key), check=True)
    report = json.loads(run_cli("verify", "--json", "--key-file", str(key), str(dst), check=True).stdout)
    assert report["verdict"] == "confirmed"
    assert report["layers"]["metadata"]["fields"]["ProduceID"] == "ogg-wm"
    assert report["layers"]["watermark"]["present"] and report["layers"]["watermark"]["matches_metadata"]
    # The same file as bytes is read in memory (no temporary file) and judged the same.
    from detectors import IN_MEMORY_FORMATS, verify
    from labeler.watermark.keyfile import read_key_file

    assert "ogg" in IN_MEMORY_FORMATS
    in_memory = verify(dst.read_bytes(), key=read_key_file(key)).to_dict()
    assert in_memory["verdict"] == "confirmed"
    assert in_memory["layers"]["watermark"]["payload"] == report["layers"]["watermark"]["payload"]
    before, after = _probe(src), _probe(dst)
    keep = ("codec_name", "sample_rate", "channels")
    assert [after["streams"][0][k] for k in keep] == [before["streams"][0][k] for k in keep]
    # One re-encode, at a bit rate at least the source's.
    assert int(after["format"]["bit_rate"]) >= int(before["format"]["bit_rate"])


def _with_page(data: bytes, index: int, edit) -> bytes:
    """``data`` with page ``index`` replaced by ``edit(header, lacing, body)`` (CRC recomputed)."""
    pages = _pages(data)
    page = pages[index]
    raw = data[page.offset:page.offset + page.size]
    head, lacing, body = raw[:27], raw[27:27 + len(page.lacing)], raw[27 + len(page.lacing):]
    flags, granule, serial, seq = struct.unpack_from("<BQII", head, 5)
    new = ogg._page_bytes(flags, granule, serial, seq, *edit(lacing, body))
    return data[:page.offset] + new + data[page.offset + page.size:]


@pytest.mark.parametrize("codec", list(CODECS))
def test_reencoded_ogg_is_reproducible_and_keeps_the_serial(tmp_path, codec):
    """libsndfile draws a random stream serial, so the same Ogg labeled twice (watermark or cue) gave
    different bytes (QA); the output now takes the source's serial, and its pages' CRCs still check."""
    from mutagen.ogg import OggPage

    from labeler import AIGCLabel, label

    ext = CODECS[codec][1]
    src = make_ogg(tmp_path / f"a{ext}", codec, "-serial_offset", "4242")
    with open(src, "rb") as f:
        serial = OggPage(f).serial
    outs = [tmp_path / f"out{n}{ext}" for n in (1, 2)]
    for out in outs:
        label(src, AIGCLabel(PRODUCER, "ogg-same"), dst=out, layers="watermark,metadata",
              key=seeded_key("test_ogg-serial"))
    assert outs[0].read_bytes() == outs[1].read_bytes()
    with open(outs[0], "rb") as f:
        pages = []
        while f.read(4) == b"OggS":
            f.seek(-4, 1)
            pages.append(OggPage(f))
    assert {page.serial for page in pages} == {serial}
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(outs[0]), "-f", "null", "-"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""  # no CRC or page errors


def test_hostile_files_fail_in_one_line(tmp_path):
    data = make_ogg(tmp_path / "a.ogg", "vorbis").read_bytes()
    second = _pages(data)[1]
    bad_crc = bytearray(data)
    bad_crc[second.offset + 40] ^= 0xFF
    bomb = data[:_pages(data)[1].offset] + b"".join(
        ogg._page_bytes(0, 0, _pages(data)[0].serial, i + 1, b"", b"") for i in range(limits.MAX_BOXES))
    # A comment header whose vendor string claims 4 GiB.
    huge = _with_page(data, 1, lambda lacing, body: (lacing, body[:7] + b"\xff\xff\xff\xff" + body[11:]))
    cases = {"crc.ogg": (bytes(bad_crc), CorruptFile, "CRC"), "cut.ogg": (data[:60], CorruptFile, "offset"),
             "bomb.ogg": (bomb, UnsafeInput, "pages"), "huge.ogg": (huge, CorruptFile, "comment")}
    for name, (content, error, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(error, match=words):
            ogg.read(io.BytesIO(content))
        proc = run_cli("label", str(path), str(tmp_path / f"out-{name}"), "--producer", PRODUCER,
                       "--produce-id", "x")
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, (name, proc.stderr)
        assert path.read_bytes() == content and not (tmp_path / f"out-{name}").exists()


def test_comment_packet_over_the_limit(tmp_path, monkeypatch):
    data = make_ogg(tmp_path / "a.ogg", "vorbis").read_bytes()
    monkeypatch.setattr(limits, "MAX_OGG_PACKET", 1000)
    with pytest.raises(UnsafeInput, match="limit"):
        ogg.read(io.BytesIO(data))


def test_other_ogg_codecs_and_multiplexed_files_are_refused(tmp_path):
    flac = tmp_path / "flac.ogg"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(SAMPLES / "speech.wav"), "-c:a", "flac",
                    "-f", "ogg", str(flac)], check=True, capture_output=True)
    with pytest.raises(UnsupportedFormat, match="FLAC stream"):
        sniff_file(flac)
    both = tmp_path / "both.ogg"
    make_ogg(tmp_path / "one.ogg", "vorbis")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(tmp_path / "one.ogg"), "-map", "0:a",
                    "-map", "0:a", "-c", "copy", str(both)], check=True, capture_output=True)
    with pytest.raises(LabelerError, match="multiplexed"):
        ogg.read(io.BytesIO(both.read_bytes()))


def _lacing(size: int) -> bytes:
    return b"\xff" * (size // 255) + bytes((size % 255,))


@pytest.mark.parametrize(("tail", "kept"), [(bytes(512), False), (b"\x01binary data" + bytes(20), True)])
def test_opus_tags_padding_absorbs_and_binary_data_stays(tmp_path, tail, kept):
    data = make_ogg(tmp_path / "a.opus", "opus").read_bytes()
    # ffmpeg puts OpusTags alone on page 1; add data after the comment list (RFC 7845 5.2).
    padded = _with_page(data, 1, lambda lacing, body: (_lacing(len(body) + len(tail)), body + tail))
    old_packet = ogg._headers(io.BytesIO(padded)).packets[1]
    out = io.BytesIO()
    ogg.write(io.BytesIO(padded), out, VALUE)
    new_packet = ogg._headers(io.BytesIO(out.getvalue())).packets[1]
    grown = len(b"AIGC=" + VALUE.encode()) + 4
    if kept:
        assert new_packet.endswith(tail) and len(new_packet) == len(old_packet) + grown
    else:
        assert new_packet.endswith(bytes(512 - grown)) and len(new_packet) == len(old_packet)
    assert [f.raw for f in ogg.read(io.BytesIO(out.getvalue()))] == [VALUE]


REWRITES = [("opus", ("-ar", "16000", "-b:a", "32k")), ("vorbis", ("-q:a", "2")),
            ("vorbis", ("-ar", "44100", "-ac", "2", "-b:a", "192k"))]


@pytest.mark.parametrize(("codec", "extra"), REWRITES)
def test_sample_rewrite_keeps_codec_layout_and_bit_rate(tmp_path, codec, extra):
    # The cases that came out below the source before: libsndfile's defaults, then VBR under its target.
    from labeler.media.audio_rewrite import rewrite_audio_file

    ext = CODECS[codec][1]
    src = make_ogg(tmp_path / f"a{ext}", codec, *extra, loops=1)
    dst = tmp_path / f"b{ext}"
    rewrite_audio_file(src, dst, lambda samples, rate: samples)
    before, after = _probe(src), _probe(dst)
    keep = ("codec_name", "sample_rate", "channels")
    assert [after["streams"][0][k] for k in keep] == [before["streams"][0][k] for k in keep]
    assert int(after["format"]["bit_rate"]) >= int(before["format"]["bit_rate"])
