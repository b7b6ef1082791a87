"""verify decodes an image once, and a colour JPEG to its luma only (issue #17: verify at archive speed)."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, seeded_key
from PIL import Image

import labeler.media.image as media_image
from detectors import verify
from labeler import AIGCLabel, label_file
from labeler.errors import CorruptFile
from labeler.media.image import read_image, read_luma_pixels
from labeler.media.image_write import encode_image


def test_colour_jpeg_is_read_as_its_luma() -> None:
    rgb = read_image(SAMPLES / "photo.jpg").pixels
    y = read_luma_pixels(SAMPLES / "photo.jpg")
    assert y.dtype == np.uint8 and y.shape == rgb.shape[:2]
    # JPEG's Y is the BT.601 luma cvtColor recomputes from the decoded RGB: equal within rounding,
    # apart from the few pixels where the RGB conversion clipped a saturated colour.
    diff = np.abs(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int) - y)
    assert diff.mean() < 0.05 and np.percentile(diff, 99.9) <= 1
    assert np.array_equal(read_luma_pixels((SAMPLES / "photo.jpg").read_bytes(), fmt="jpeg"), y)


def test_other_images_are_read_as_read_image_reads_them() -> None:
    png = SAMPLES / "photo.png"
    assert np.array_equal(read_luma_pixels(png), read_image(png).pixels)
    grey = encode_image(read_image(SAMPLES / "photo.jpg").pixels[..., 1], "jpeg")
    assert np.array_equal(read_luma_pixels(grey), read_image(grey).pixels)
    buf = io.BytesIO()
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)
    cmyk = read_luma_pixels(buf.getvalue())  # colour-managed like read_image, not libjpeg's grey
    assert cmyk.shape == (8, 16, 3) and np.array_equal(cmyk, read_image(buf.getvalue()).pixels)


def test_luma_read_refuses_what_read_image_refuses() -> None:
    data = (SAMPLES / "photo.jpg").read_bytes()
    for bad in (data[:400], b""):
        with pytest.raises(CorruptFile):
            read_luma_pixels(bad)


def test_verify_decodes_a_jpeg_once_and_only_its_luma(tmp_path: Path, monkeypatch) -> None:
    key = seeded_key("test_verify_decode-1")
    dst = tmp_path / "photo.jpg"
    label_file(SAMPLES / "photo.jpg", dst, AIGCLabel(PRODUCER, "decode-1"),
               layers=("watermark", "visible", "metadata"), key=key)
    whole = verify(read_image(dst).pixels, key=key).to_dict()["layers"]
    calls: list[bool] = []
    real_open = media_image._open
    monkeypatch.setattr(media_image, "_open", lambda *a, **k: calls.append(k["luma"]) or real_open(*a, **k))
    report = verify(dst, key=key).to_dict()
    assert calls == [True]  # one decode, luma only, shared by both pixel layers
    layers = report["layers"]
    assert report["verdict"] == "confirmed"
    assert layers["watermark"]["present"] and layers["visible"]["present"]
    # The same findings as from the RGB pixels.
    assert layers["watermark"]["payload"] == whole["watermark"]["payload"]
    assert layers["visible"]["position"] == whole["visible"]["position"]
    assert abs(layers["visible"]["score"] - whole["visible"]["score"]) < 0.01
