"""Reader / verify leftovers (QA helper s39), each on real media:

* an MP3 cut short in its audio is named by ``verify`` (PartialFile from the MP3 carrier reader: the
  labels before the cut), as a WAV cut short was; labeling it still works;
* ffmpeg's bare "invalid argument" for an MP3 that is a 3 MB ID3 tag and no frame, and "invalid sample
  rate: -1" for a WAV header's 4294967295 Hz, say what is wrong;
* BMP, ICO, PSD, SVG, PDF, JPEG XL, JPEG 2000 and camera raw files (DNG, CR2) are refused by name;
* a damaged LZW TIFF's decoder lines (libtiff's through Pillow, OpenCV's log) stay off the CLI's stderr;
* a watermark lost to a low ``quality`` names the quality, not the content;
* a 2- or 4-bit palette is not called 8-bit, and a PNG colour key that becomes alpha is noted.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from labeler import AIGCLabel, label
from labeler.errors import CorruptFile, UnsupportedFormat
from labeler.formats import sniff_bytes, sniff_file
from tests.conftest import PRODUCER, SAMPLES, run_cli, seeded_key

KEY = seeded_key("qa-reader-leftovers-s39")
RECORD = AIGCLabel(PRODUCER, "qa-s39")


# --------------------------------------------------------------------------- 1. a cut MP3 in verify

def test_verify_names_an_mp3_cut_short_and_reads_its_label(tmp_path: Path) -> None:
    from detectors import verify

    src = tmp_path / "speech.mp3"
    src.write_bytes((SAMPLES / "speech.mp3").read_bytes())
    labeled = tmp_path / "labeled.mp3"
    label(src, RECORD, dst=labeled)
    whole = labeled.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    assert not [w for w in verify(labeled).warnings if "truncated" in w]  # the whole file: nothing said
    for report in (verify(cut), verify(cut.read_bytes())):
        assert report.verdict == "confirmed", report.to_dict()
        notes = [w for w in report.warnings if w.startswith("damaged mp3 file: mp3 is truncated")]
        assert len(notes) == 1, report.warnings
        assert "s of sound)" in notes[0] and notes[0].endswith("the labels before the cut were read")
    # a label call still writes a cut MP3 as it is (it reads its output back through the same reader)
    result = label(cut, RECORD, dst=tmp_path / "again.mp3")
    assert any(w.startswith("damaged mp3 file") for w in result.warnings)


# --------------------------------------------------------------------------- 2, 3. probe's reasons

def _syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def test_probe_says_why_an_mp3_of_only_id3_tag_has_no_audio(tmp_path: Path) -> None:
    from labeler.media.ffmpeg import probe

    frame = b"TIT2" + (5).to_bytes(4, "big") + b"\x00\x00" + b"\x00talk"
    body = frame + b"\x00" * (3 * 1024 * 1024 - len(frame))
    path = tmp_path / "tag_only.mp3"
    path.write_bytes(b"ID3\x03\x00\x00" + _syncsafe(len(body)) + body)
    with pytest.raises(CorruptFile, match="no MPEG audio frames") as caught:
        probe(path)
    assert "invalid argument" not in str(caught.value)
    proc = run_cli("verify", str(path))
    assert "invalid argument" not in proc.stdout + proc.stderr and "no MPEG audio frames" in proc.stdout


def test_probe_gives_the_wav_header_sample_rate_as_stored(tmp_path: Path) -> None:
    from labeler.media.ffmpeg import probe

    fmt = struct.pack("<HHIIHH", 1, 1, 4294967295, 88200, 2, 16)
    samples = np.zeros(4410, "<i2").tobytes()
    body = (b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", len(samples)) + samples)
    path = tmp_path / "rate.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(CorruptFile, match="4294967295 Hz") as caught:
        probe(path)
    assert "-1" not in str(caught.value)


# --------------------------------------------------------------------------- 4. named refusals

def _pillow(tmp_path: Path, name: str, fmt: str, **options: object) -> Path:
    path = tmp_path / name
    Image.open(SAMPLES / "photo.png").convert("RGB").resize((64, 48)).save(path, fmt, **options)
    return path


def test_known_unsupported_formats_are_refused_by_name(tmp_path: Path) -> None:
    dng_tags = TiffImagePlugin.ImageFileDirectory_v2()
    dng_tags[50706] = bytes([1, 4, 0, 0])  # DNGVersion
    dng_tags.tagtype[50706] = 1
    files = {
        "BMP is not supported: convert it to PNG": _pillow(tmp_path, "a.bmp", "BMP"),
        "ICO (icon) is not supported": _pillow(tmp_path, "a.ico", "ICO"),
        "a PDF document": _pillow(tmp_path, "a.pdf", "PDF"),
        "(DNG) is not supported": _pillow(tmp_path, "a.dng", "TIFF", tiffinfo=dng_tags),
    }
    if "JPEG2000" in Image.SAVE:
        files["JPEG 2000 is not supported"] = _pillow(tmp_path, "a.jp2", "JPEG2000")
        files["JPEG 2000 is not supported "] = _pillow(tmp_path, "a.j2k", "JPEG2000", no_jp2=True)
    svg = tmp_path / "a.svg"
    svg.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>\n')
    files["SVG is not supported"] = svg
    heads = {
        "PSD (Photoshop) is not supported": b"8BPS\x00\x01" + b"\x00" * 20,
        "JPEG XL is not supported": b"\xff\x0a\xcb\x40\x42\x71\x21\x00",
        "JPEG XL is not supported ": b"\x00\x00\x00\x0cJXL \r\n\x87\n" + b"\x00" * 20,
        "(Canon CR2) is not supported": b"II*\x00\x10\x00\x00\x00CR\x02\x00" + b"\x00" * 20,
        "(Canon CR3) is not supported": b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom" + b"\x00" * 8,
    }
    for words, head in heads.items():
        path = tmp_path / f"head{len(files)}.bin"
        path.write_bytes(head)
        files[words] = path
    for words, path in files.items():
        for source in (path, path.read_bytes()):
            with pytest.raises(UnsupportedFormat) as caught:
                sniff_file(source) if isinstance(source, Path) else sniff_bytes(source)
            assert words.strip() in str(caught.value), (path.name, str(caught.value))
    proc = run_cli("verify", str(files["BMP is not supported: convert it to PNG"]))
    assert proc.returncode != 0 and "BMP is not supported" in proc.stdout + proc.stderr
    # a plain TIFF, and text that is no media, are still what they were
    assert sniff_file(_pillow(tmp_path, "plain.tif", "TIFF")) == "tiff"
    with pytest.raises(UnsupportedFormat, match="^unrecognised file content"):
        sniff_bytes(b"this is not an image, just text\n" * 10)


# --------------------------------------------------------------------------- 5. decoder noise

def _damaged(data: bytes, start: int) -> bytes:
    spoiled = bytearray(data)
    rng = np.random.default_rng(3)
    for at in range(start, len(spoiled) // 2, 37):
        spoiled[at] = int(rng.integers(256))
    return bytes(spoiled)


def test_damaged_lzw_tiffs_print_no_decoder_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    ramp = (np.add.outer(np.arange(256), np.arange(384)) % 256).astype(np.uint8)
    eight = tmp_path / "lzw8.tif"
    Image.fromarray(np.dstack([ramp, ramp[::-1], ramp])).save(eight, compression="tiff_lzw")
    eight.write_bytes(_damaged(eight.read_bytes(), 200))
    deep = (np.add.outer(np.arange(256), np.arange(384)) * 150 % 65535).astype(np.uint16)
    ok, encoded = cv2.imencode(".tif", np.dstack([deep, deep[::-1], deep]), [cv2.IMWRITE_TIFF_COMPRESSION, 5])
    assert ok
    sixteen = tmp_path / "lzw16.tif"
    sixteen.write_bytes(_damaged(encoded.tobytes(), 300))
    key_file = tmp_path / "k.key"
    from labeler.watermark.keyfile import write_key_file

    write_key_file(key_file, KEY)
    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)
    for path in (eight, sixteen):
        proc = run_cli("verify", "--key-file", str(key_file), str(path))
        assert proc.stderr == "", proc.stderr
        proc = run_cli("label", "--producer", PRODUCER, "--produce-id", "x", "--layers", "watermark",
                       "--key-file", str(key_file), str(path), str(tmp_path / f"out-{path.name}"))
        lines = proc.stderr.splitlines()
        assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("aigc: error:"), proc.stderr


# --------------------------------------------------------------------------- 6. low quality named

def test_a_mark_lost_to_a_low_quality_names_the_quality(tmp_path: Path) -> None:
    from detectors.read_back import LOW_QUALITY_NOTE, UNREAD_WATERMARK_NOTE, unread_watermark

    src = tmp_path / "photo.jpg"
    src.write_bytes((SAMPLES / "photo.jpg").read_bytes())
    result = label(src, RECORD, dst=tmp_path / "q3.jpg", layers="watermark", key=KEY, quality=3)
    note = unread_watermark(result.dst, result, KEY)  # the quality read from the JPEG's tables
    assert note == LOW_QUALITY_NOTE.format(quality=3) and "too little to ride on" not in note
    webp = tmp_path / "photo.webp"
    Image.open(SAMPLES / "photo.png").convert("RGB").save(webp, quality=95)
    result = label(webp, RECORD, dst=tmp_path / "q3.webp", layers="watermark", key=KEY, quality=3)
    assert unread_watermark(result.dst, result, KEY, quality=3) == LOW_QUALITY_NOTE.format(quality=3)
    assert unread_watermark(result.dst, result, KEY) == UNREAD_WATERMARK_NOTE  # quality not known
    fine = label(src, RECORD, dst=tmp_path / "q95.jpg", layers="watermark", key=KEY)
    assert unread_watermark(fine.dst, fine, KEY, quality=95) is None


# --------------------------------------------------------------------------- 7. conversion notes

def _png(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def _notes(data: bytes) -> list[str]:
    from labeler import LabelWarning

    with pytest.warns(LabelWarning) as caught:
        label(data, RECORD, layers="watermark", key=KEY)
    return [str(w.message) for w in caught if w.category is LabelWarning]


def test_palette_depth_and_colour_key_notes() -> None:
    photo = Image.open(SAMPLES / "photo.png").convert("RGB")
    for colours, depth in ((2, 1), (4, 2), (16, 4)):
        data = _png(photo.quantize(colours))
        assert data[24] == depth  # IHDR bit depth: a 1-, 2- or 4-bit palette
        notes = [n for n in _notes(data) if "palette" in n]
        assert notes and notes[0].startswith(f"{colours}-colour palette image written as truecolour RGB")
        assert "8-bit" not in notes[0] and "256" not in notes[0]
    notes = [n for n in _notes(_png(photo.quantize(200))) if "palette" in n]
    assert notes and notes[0].startswith("8-bit palette image written as truecolour RGB")
    pixels = np.asarray(photo)
    key = tuple(int(v) for v in pixels[0, 0])
    for image, options, words in (
            (photo, {"transparency": key}, "RGB image with a transparent colour key (tRNS) written as RGBA"),
            (photo.convert("L"), {"transparency": int(np.asarray(photo.convert("L"))[0, 0])},
             "grey image with a transparent colour key (tRNS) written as grey + alpha")):
        notes = _notes(_png(image, **options))
        assert any(n.startswith(words) for n in notes), notes
