"""QA pass over the image files users have (2026-12-06): what the pixel layers and C2PA keep or refuse.

* a pixel layer (watermark, visible mark) re-encodes a picture: a PNG's text chunks (Stable Diffusion's
  ``parameters``, author, comments) and colour chunks, and a JPEG's IPTC (APP13) and comments were lost;
* C2PA on a multi-page TIFF wrote a file Pillow cannot open (c2pa-rs appends an IFD without an image);
* a TIFF without resolution tags came out of a pixel layer as 1 dpi (Pillow's placeholder written back);
* an MPO or multi-page TIFF was refused as "animated".
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key
from PIL import Image, PngImagePlugin

from labeler import AIGCLabel, label, label_file
from labeler.errors import LabelerError
from labeler.metadata.png import chunk_bytes

RECORD = AIGCLabel(PRODUCER, "qa-image-keep")
SD_PARAMETERS = "a cat in a hat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42"


def _photo(size: tuple[int, int] = (320, 240)) -> Image.Image:
    with Image.open(SAMPLES / "photo.jpg") as im:
        return im.convert("RGB").resize(size)


def _chunk_types(data: bytes) -> list[bytes]:
    types, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        types.append(data[at + 4:at + 8])
        at += 12 + length
    return types


def _sd_png() -> bytes:
    """An 8-bit PNG as image generators write it: parameters in tEXt, more text, and a gAMA chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", SD_PARAMETERS)
    info.add_text("Author", "compressed text", zip=True)
    info.add_itxt("Description", "国际 text", lang="zh", tkey="描述")
    info.add(b"gAMA", struct.pack(">I", 45455))
    out = io.BytesIO()
    _photo().save(out, "PNG", pnginfo=info)
    return out.getvalue()


@pytest.mark.parametrize("layers", ["watermark", "visible", "watermark,visible,metadata"])
def test_png_text_and_gamma_survive_the_pixel_layers(layers: str) -> None:
    out = label(_sd_png(), RECORD, layers=layers, key=seeded_key("qa-image-keep-png"))
    with Image.open(io.BytesIO(out)) as im:
        assert im.text["parameters"] == SD_PARAMETERS
        assert im.text["Author"] == "compressed text"
        assert im.text["Description"] == "国际 text"
        assert im.info["gamma"] == pytest.approx(0.45455)
    assert _chunk_types(out).count(b"gAMA") == 1


def test_16bit_png_text_survives_the_pixel_layers(tmp_path: Path) -> None:
    pixels = np.asarray(_photo(), np.uint16) * 257
    ok, encoded = __import__("cv2").imencode(".png", pixels[..., ::-1])
    assert ok
    data = encoded.tobytes()
    # tEXt right after IHDR (8-byte signature + 25-byte IHDR chunk)
    data = data[:33] + chunk_bytes(b"tEXt", b"parameters\x00" + SD_PARAMETERS.encode("latin-1")) + data[33:]
    src = tmp_path / "deep.png"
    src.write_bytes(data)
    label_file(src, tmp_path / "out.png", RECORD, layers="watermark,metadata", key=seeded_key("qa-16"))
    with Image.open(tmp_path / "out.png") as im:
        assert im.text["parameters"] == SD_PARAMETERS
    assert (tmp_path / "out.png").read_bytes()[24] == 16  # IHDR bit depth kept


def _iptc_jpeg() -> tuple[bytes, bytes]:
    """A JPEG with a comment and an APP13 Photoshop IRB holding IPTC keywords (IIM 2:25), and that IRB."""
    iptc = b"\x1c\x02\x19\x00\x02qa" + b"\x1c\x02\x5a\x00\x07Beijing"
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    app13 = b"Photoshop 3.0\x00" + resource
    out = io.BytesIO()
    _photo().save(out, "JPEG", quality=90, comment=b"made by a model")
    data = out.getvalue()
    segment = b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13
    return data[:2] + segment + data[2:], iptc


def test_jpeg_iptc_and_comment_survive_the_pixel_layers(tmp_path: Path) -> None:
    data, iptc = _iptc_jpeg()
    src = tmp_path / "news.jpg"
    src.write_bytes(data)
    label_file(src, tmp_path / "out.jpg", RECORD, layers="watermark,visible,metadata",
               key=seeded_key("qa-image-keep-jpeg"))
    for out in ((tmp_path / "out.jpg").read_bytes(),
                label(data, RECORD, layers="visible", key=seeded_key("qa-image-keep-jpeg"))):
        with Image.open(io.BytesIO(out)) as im:
            assert im.info["photoshop"][0x0404] == iptc
            assert im.info["comment"] == b"made by a model"


def test_tiff_without_resolution_gets_none_invented(tmp_path: Path) -> None:
    src = tmp_path / "scan.tif"
    _photo().save(src, "TIFF")  # no XResolution / YResolution tags
    label_file(src, tmp_path / "out.tif", RECORD, layers="visible,metadata")
    with Image.open(tmp_path / "out.tif") as im:
        assert 282 not in im.tag_v2 and 283 not in im.tag_v2
    _photo().save(src, "TIFF", dpi=(300, 300))
    label_file(src, tmp_path / "out2.tif", RECORD, layers="visible")
    with Image.open(tmp_path / "out2.tif") as im:
        assert im.info["dpi"] == pytest.approx((300, 300))


def test_multi_frame_refusals_name_what_the_file_is(tmp_path: Path) -> None:
    photo = _photo()
    mpo, tiff = io.BytesIO(), io.BytesIO()
    photo.save(mpo, "MPO", save_all=True, append_images=[photo.resize((160, 120))])
    photo.save(tiff, "TIFF", save_all=True, append_images=[photo.rotate(90)])
    with pytest.raises(LabelerError, match=r"multi-picture JPEG \(MPO\) files .*: this one has 2 images"):
        label(mpo.getvalue(), RECORD, layers="visible")
    with pytest.raises(LabelerError, match="multi-page TIFF files: this one has 2 pages"):
        label(tiff.getvalue(), RECORD, layers="visible")


def test_c2pa_refuses_a_multi_page_tiff(tmp_path: Path) -> None:
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path / "pki")
    photo = _photo()
    src, single = tmp_path / "pages.tif", tmp_path / "one.tif"
    photo.save(src, "TIFF", save_all=True, append_images=[photo.rotate(90)])
    photo.save(single, "TIFF")
    before = src.read_bytes()
    sign = ["--producer", PRODUCER, "--produce-id", "qa-tiff", "--layers", "metadata,c2pa",
            "--sign-cert", str(pki.chain), "--sign-key", str(pki.signer_key)]
    proc = run_cli("label", str(src), str(tmp_path / "out.tif"), *sign)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "multi-page TIFF" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.tif").exists() and src.read_bytes() == before
    # one page is signed as before, and the output still opens
    proc = run_cli("label", str(single), str(tmp_path / "one.out.tif"), *sign)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "one.out.tif") as im:
        assert getattr(im, "n_frames", 1) == 1
        im.load()
