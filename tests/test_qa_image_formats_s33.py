"""QA pass over image format fidelity when labeling (2026-12-07): what a pixel layer keeps.

* a JPEG that states no resolution (JFIF density unit 0, EXIF without XResolution: what Pillow, many
  generators and phones' edited copies write) came out of a pixel layer as 72 dpi: Pillow's reader
  reports 72 when it finds none, and that placeholder was written back as a stated resolution;
* a TIFF's IPTC record (tag 33723, where Photoshop and exiftool put captions, keywords, credit),
  Photoshop image resources (34377), DocumentName (269) and PageName (285) were lost by the pixel
  layers, when the JPEG equivalents (APP13, COM) are kept;
* a 16-bit grey PNG's tRNS colour key was dropped (at 8 bits it becomes alpha), so its transparent
  area came out opaque;
* a camera JPEG's EXIF thumbnail kept the picture without its visible label.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, seeded_key
from PIL import Image, TiffImagePlugin

from labeler import AIGCLabel, label, label_file
from labeler.metadata.tiff import TiffData

RECORD = AIGCLabel(PRODUCER, "qa-image-formats-s33")
KEY = seeded_key("qa-image-formats-s33")


def _photo(size: tuple[int, int] = (320, 240)) -> Image.Image:
    with Image.open(SAMPLES / "photo.jpg") as im:
        return im.convert("RGB").resize(size)


def _jfif_density(data: bytes) -> tuple[int, int, int]:
    """(unit, x, y) of a JPEG's JFIF APP0 segment (JFIF 1.02: unit 0 = aspect ratio only, no resolution)."""
    assert data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\x00"
    return data[13], int.from_bytes(data[14:16], "big"), int.from_bytes(data[16:18], "big")


def _exif_without_resolution() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "QACam"  # Make
    exif[0x0112] = 1  # Orientation
    return exif.tobytes()


@pytest.mark.parametrize("layers", ["watermark", "visible"])
def test_jpeg_without_resolution_gets_none_invented(tmp_path: Path, layers: str) -> None:
    src = tmp_path / "gen.jpg"
    _photo().save(src, "JPEG", quality=90, exif=_exif_without_resolution())
    assert _jfif_density(src.read_bytes())[0] == 0
    label_file(src, tmp_path / "out.jpg", RECORD, layers=layers, key=KEY)
    assert _jfif_density((tmp_path / "out.jpg").read_bytes())[0] == 0


@pytest.mark.parametrize(("dpi", "exif", "want"), [
    ((300, 300), b"", (1, 300, 300)),  # JFIF dots per inch
    (None, "cm", (1, 300, 300)),  # EXIF XResolution 118.11 px/cm, no JFIF unit: the EXIF value
])
def test_jpeg_stated_resolution_is_kept(tmp_path: Path, dpi, exif, want) -> None:
    src = tmp_path / "print.jpg"
    if exif == "cm":
        block = Image.Exif()
        block[0x011A] = block[0x011B] = 11811 / 100  # XResolution / YResolution
        block[0x0128] = 3  # ResolutionUnit: centimetres
        exif = block.tobytes()
    options = {"dpi": dpi} if dpi else {}
    _photo().save(src, "JPEG", quality=90, exif=exif, **options)
    label_file(src, tmp_path / "out.jpg", RECORD, layers="visible")
    unit, x, y = _jfif_density((tmp_path / "out.jpg").read_bytes())
    assert (unit, x, y) == pytest.approx(want, abs=1)


# IPTC IIM 2:25 keywords and 2:80 by-line, and a Photoshop image resource block holding it (8BIM 0x0404).
_IPTC = b"\x1c\x02\x19\x00\x02qa" + b"\x1c\x02\x50\x00\x0aQA photog." + b"\x00" * 2  # LONG multiple
_IRB = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(_IPTC)) + _IPTC


def _newsroom_tiff(path: Path, iptc_type: int) -> None:
    """An 8-bit RGB TIFF as Photoshop / exiftool leave it: IPTC in tag 33723 (UNDEFINED, or LONGs as
    exiftool and Photoshop write it), the Photoshop IRB in 34377, DocumentName and PageName."""
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info.tagtype[33723] = 7
    info[33723] = _IPTC
    info.tagtype[34377] = 1
    info[34377] = _IRB
    info[269] = "scan-0042"
    info[285] = "front page"
    _photo().save(path, "TIFF", tiffinfo=info)
    if iptc_type == 4:  # Pillow cannot write a many-LONG 33723; exiftool rewrites it so
        if shutil.which("exiftool") is None:
            pytest.skip("exiftool not installed")
        subprocess.run(["exiftool", "-q", "-overwrite_original", "-IPTC:Keywords=qa",
                        "-IPTC:By-line=QA photog.", str(path)], check=True, capture_output=True, timeout=60)


def _ifd0_fields(data: bytes) -> dict[int, tuple[int, bytes]]:
    tiff = TiffData(data)
    return {e.tag: (e.type, tiff.value(e, 1 << 20)) for e in tiff.ifd(tiff.ifd0).entries}


@pytest.mark.parametrize("iptc_type", [4, 7])
def test_tiff_iptc_photoshop_and_document_names_survive_the_pixel_layers(tmp_path: Path,
                                                                         iptc_type: int) -> None:
    src = tmp_path / "news.tif"
    _newsroom_tiff(src, iptc_type)
    before = _ifd0_fields(src.read_bytes())
    assert before[33723][0] == iptc_type and b"QA photog." in before[33723][1]
    label_file(src, tmp_path / "out.tif", RECORD, layers="watermark,visible,metadata", key=KEY)
    for out in ((tmp_path / "out.tif").read_bytes(), label(src.read_bytes(), RECORD, layers="visible")):
        after = _ifd0_fields(out)
        for tag in (269, 285, 33723, 34377):
            assert after[tag] == before[tag], tag
        assert 37724 not in after  # no Photoshop layer data invented
        with Image.open(io.BytesIO(out)) as im:
            assert im.tag_v2[269] == "scan-0042" and im.tag_v2[285] == "front page"
            assert np.array(im).shape == (240, 320, 3)


def test_16bit_grey_png_colour_key_stays_transparent(tmp_path: Path) -> None:
    """A 16-bit grey PNG's tRNS colour key became an alpha channel only at 8 bits: at 16 the key was
    dropped, and a pixel layer wrote the transparent area opaque."""
    import cv2

    from labeler.metadata.png import chunk_bytes

    grey = np.asarray(_photo().convert("L"), np.uint16) * 257
    grey[:40, :60] = 1234  # the keyed (transparent) area
    ok, encoded = cv2.imencode(".png", grey)
    assert ok
    data = encoded.tobytes()
    src = tmp_path / "keyed16.png"
    src.write_bytes(data[:33] + chunk_bytes(b"tRNS", struct.pack(">H", 1234)) + data[33:])  # after IHDR
    label_file(src, tmp_path / "out.png", RECORD, layers="visible")
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.ndim == 3  # 16 bits, with alpha (OpenCV widens LA to BGRA)
    alpha = out[..., 3]
    assert (alpha[:40, :60] == 0).all() and (alpha[40:] == 65535).all()
    assert np.array_equal(out[40:200, :, 0], grey[40:200])  # above the label, the grey as it was


def _exif_with_thumbnail(thumb: bytes) -> bytes:
    """An EXIF block (little-endian) whose IFD0 holds Orientation and whose IFD1 points at a JPEG
    thumbnail (EXIF 2.32 4.5.8: Compression 6, JPEGInterchangeFormat, JPEGInterchangeFormatLength)."""
    ifd0_at = 8
    ifd1_at = ifd0_at + 2 + 12 + 4
    data_at = ifd1_at + 2 + 3 * 12 + 4
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 1, 0) + struct.pack("<I", ifd1_at)
    ifd1 = (struct.pack("<H", 3) + struct.pack("<HHIHH", 0x0103, 3, 1, 6, 0)
            + struct.pack("<HHII", 0x0201, 4, 1, data_at) + struct.pack("<HHII", 0x0202, 4, 1, len(thumb))
            + struct.pack("<I", 0))
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", ifd0_at) + ifd0 + ifd1 + thumb


def _thumbnail_of(jpeg: bytes) -> Image.Image:
    with Image.open(io.BytesIO(jpeg)) as im:
        exif = im.info["exif"]
    tiff = TiffData(exif[6:], "exif")
    ifd1 = tiff.chain()[1]
    start, length = (tiff.u32(ifd1.get(tag).pos + 8) for tag in (0x0201, 0x0202))
    thumb = Image.open(io.BytesIO(tiff.data[start:start + length]))
    thumb.load()
    return thumb


def test_exif_thumbnail_is_redrawn_with_the_visible_label(tmp_path: Path) -> None:
    """A camera JPEG's EXIF thumbnail (what file browsers show) kept the picture without its visible
    label: the EXIF block was copied as it was."""
    photo = _photo((640, 480))
    small = io.BytesIO()
    photo.resize((160, 120)).save(small, "JPEG", quality=90)
    src = tmp_path / "camera.jpg"
    photo.save(src, "JPEG", quality=90, exif=_exif_with_thumbnail(small.getvalue()))
    label_file(src, tmp_path / "out.jpg", RECORD, layers="visible", position="bottom-right")
    out = (tmp_path / "out.jpg").read_bytes()
    with Image.open(io.BytesIO(out)) as im:
        shown = np.asarray(im.convert("RGB").resize((160, 120)), float)
    before, after = (np.asarray(t.convert("RGB"), float) for t in (_thumbnail_of(src.read_bytes()),
                                                                    _thumbnail_of(out)))
    assert after.shape == before.shape
    corner = (slice(100, 120), slice(120, 160))  # where the label is drawn
    assert np.abs(after[corner] - shown[corner]).mean() < np.abs(before[corner] - shown[corner]).mean() / 2


def test_one_bit_png_written_as_grey_says_so(tmp_path: Path) -> None:
    """A 1-bit PNG (a scanned page, line art) comes out 8-bit grey after a pixel layer: now with a warning."""
    src = tmp_path / "bw.png"
    with Image.open(SAMPLES / "photo.png") as im:
        im.convert("L").point(lambda v: 255 if v > 128 else 0).convert("1").save(src)
    with Image.open(src) as im:
        assert im.mode == "1"
    result = label_file(src, tmp_path / "out.png", AIGCLabel(PRODUCER, "s33-bw"), layers="visible")
    assert any(w.startswith("1-bit (black and white) image written as 8-bit grey") for w in result.warnings)
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "L"
