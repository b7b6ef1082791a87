"""QA session 37 (big media): regressions found while labeling and verifying large files.

Each test builds small inputs that take the same code paths as the large files of the QA run (a
description just over :data:`labeler.limits.MAX_TEXT_VALUE` instead of the 30 MB one of the run).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES
from PIL import Image

from detectors import verify
from labeler import AIGCLabel, label_file, limits

RECORD = AIGCLabel(PRODUCER, "qa-big-media-s37")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _exif_with_description(size: int) -> bytes:
    """A little-endian TIFF structure whose IFD0 holds one ImageDescription of ``size`` bytes."""
    text = b"B" * (size - 1) + b"\0"
    return (b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1)
            + struct.pack("<HHII", 0x010E, 2, len(text), 26) + struct.pack("<I", 0) + text)


def test_long_exif_description_does_not_hide_the_png_label(tmp_path: Path) -> None:
    """A PNG eXIf ImageDescription over the text limit is no label: the XMP label must still be read.

    Until session 37 the EXIF reader refused the whole metadata layer ("exif tag 270 is ... bytes,
    over the 1048576-byte limit"): verify said "possible (low)" for a labeled file and `aigc label`
    refused it.
    """
    labeled = tmp_path / "labeled.png"
    label_file(str(SAMPLES / "photo.png"), str(labeled), RECORD)
    data = labeled.read_bytes()
    end_of_ihdr = 8 + 8 + 13 + 4
    exif = _png_chunk(b"eXIf", _exif_with_description(limits.MAX_TEXT_VALUE + 2))
    with_exif = tmp_path / "with_exif.png"
    with_exif.write_bytes(data[:end_of_ihdr] + exif + data[end_of_ihdr:])

    report = verify(str(with_exif))
    assert report.verdict == "confirmed", report.to_dict()
    assert report.metadata.fields["ProduceID"] == RECORD.produce_id

    relabeled = tmp_path / "relabeled.png"
    label_file(str(with_exif), str(relabeled), RECORD)  # raised UnsafeInput before
    assert verify(str(relabeled)).verdict == "confirmed"


def test_tiff_with_a_long_image_description_labels(tmp_path: Path) -> None:
    """ImageJ and OME-TIFF keep megabytes of XML in ImageDescription; such a TIFF labels and verifies."""
    src = tmp_path / "ome.tif"
    pixels = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    description = "<OME>" + "x" * (limits.MAX_TEXT_VALUE + 10) + "</OME>"
    Image.fromarray(pixels).save(src, description=description)
    dst = tmp_path / "ome.labeled.tif"
    label_file(str(src), str(dst), RECORD)
    report = verify(str(dst))
    assert report.verdict == "confirmed", report.to_dict()
    assert report.metadata.fields["ProduceID"] == RECORD.produce_id
    with Image.open(dst) as im:  # the description is kept whole
        assert im.tag_v2[270] == description


@pytest.mark.parametrize("size", [limits.MAX_TEXT_VALUE // 2])
def test_exif_description_under_the_limit_still_examined(tmp_path: Path, size: int) -> None:
    """The head read leaves shorter descriptions as they were: a label in one is still reported."""
    from labeler.metadata.tiff import exif_labels

    value = RECORD.to_json().encode()
    text = value + b" " * (size - len(value) - 1) + b"\0"
    exif = (b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1)
            + struct.pack("<HHII", 0x010E, 2, len(text), 26) + struct.pack("<I", 0) + text)
    found = exif_labels(exif, "eXIf")
    assert [f.carrier for f in found] == ["exif-imagedescription"]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with one empty IDAT: nothing to decode."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b""))
            + _png_chunk(b"IEND", b""))


def test_over_pillows_bomb_limit_says_the_size(tmp_path: Path) -> None:
    """Beyond the pixel limit: one line naming the image's size and the limit, before any decode."""
    from conftest import run_cli

    src = tmp_path / "huge.png"
    src.write_bytes(_png_header_only(20000, 20000))
    proc = run_cli("label", str(src), str(tmp_path / "out.png"), "--producer", PRODUCER,
                   "--produce-id", "x", "--layers", "visible,metadata")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "400.0 megapixels, over the 179.0 megapixels" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.png").exists()
