"""QA pass (s38): the image pixel layers keep each format's nature, and verify reads the results.

Found and fixed:

* an AVIF stored 4:4:4 came out of a pixel layer 4:2:0 (Pillow's default; the JPEG path kept its
  subsampling, the AVIF path did not), and a monochrome (4:0:0) AVIF came out as colour;
* a valid 16-bit grey+alpha TIFF (GIMP writes them) was refused as a "damaged tiff header", by label
  and by verify: Pillow cannot identify it, and the reason given now says what it is.

Also pinned here, as a user checks them (they held): lossless WebP stays VP8L with its alpha exact, a
palette PNG with tRNS becomes RGBA with its alpha exact, a 16-bit RGBA PNG stays 16-bit with its alpha
exact, and verify finds the watermark and the metadata label in each.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key, seeded_key_file
from PIL import Image

from labeler import AIGCLabel, label
from labeler.errors import UnsupportedFormat
from labeler.media.image import read_image
from labeler.media.image16 import encode_png16, encode_tiff16

RECORD = AIGCLabel(PRODUCER, "qa-image-nature-s38")
KEY = seeded_key("qa-image-nature-s38")


def _photo(size: tuple[int, int] = (512, 384)) -> np.ndarray:
    with Image.open(SAMPLES / "photo.jpg") as im:
        return np.asarray(im.convert("RGB").resize(size))


def _alpha(shape: tuple[int, int]) -> np.ndarray:
    """A ramp with a fully transparent hole and an opaque patch: every kind of alpha value."""
    h, w = shape
    alpha = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    alpha[20:60, 20:80] = 0
    alpha[100:140, 200:300] = 255
    return alpha


def _av1c_flags(data: bytes) -> tuple[int, int, int]:
    """(monochrome, chroma_subsampling_x, chroma_subsampling_y) of the file's first av1C box (AV1 in
    ISOBMFF 2.3.3, byte 2 of the body); the test files have a single colour item and no alpha."""
    at = data.index(b"av1C") + 4
    bits = data[at + 2]
    return (bits >> 4) & 1, (bits >> 3) & 1, (bits >> 2) & 1


def _avif(pixels: np.ndarray, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "AVIF", quality=90, **options)
    return out.getvalue()


def _verified(data: bytes, suffix: str, tmp_path: Path) -> dict:
    """``aigc verify --json`` on the labeled bytes, with the key."""
    path = tmp_path / f"out{suffix}"
    path.write_bytes(data)
    key = seeded_key_file(tmp_path / "key.bin", "qa-image-nature-s38")
    proc = run_cli("verify", str(path), "--key-file", str(key), "--json", check=True)
    return json.loads(proc.stdout)


def _marks_found(report: dict) -> None:
    layers = report["layers"]
    assert layers["metadata"]["present"], report
    assert layers["watermark"]["present"] and layers["watermark"]["matches_metadata"], report


@pytest.mark.parametrize("sampling", ["4:4:4", "4:2:2"])
def test_avif_keeps_its_chroma_subsampling(sampling: str, tmp_path: Path) -> None:
    src = _avif(_photo(), subsampling=sampling)
    want = _av1c_flags(src)
    assert want[1:] != (1, 1)  # the source really is not 4:2:0
    out = label(src, RECORD, layers="watermark,visible,metadata", key=KEY)
    assert _av1c_flags(out) == want
    _marks_found(_verified(out, ".avif", tmp_path))


def test_grey_avif_stays_monochrome(tmp_path: Path) -> None:
    src = _avif(np.ascontiguousarray(_photo()[..., 1]))
    assert _av1c_flags(src)[0] == 1
    out = label(src, RECORD, layers="watermark,metadata", key=KEY)
    assert _av1c_flags(out)[0] == 1
    assert read_image(out).channels == 1
    _marks_found(_verified(out, ".avif", tmp_path))


def test_420_avif_stays_420() -> None:
    out = label(_avif(_photo()), RECORD, layers="watermark", key=KEY)
    assert _av1c_flags(out) == (0, 1, 1)


def _grey_alpha16_tiff() -> bytes:
    grey = _photo()[..., 1].astype(np.uint16) * 257
    alpha = _alpha(grey.shape).astype(np.uint16) * 257
    return encode_tiff16(np.dstack([grey, alpha]), icc=None, exif=None, xmp=None, dpi=None)


def test_16bit_grey_alpha_tiff_is_refused_for_what_it_is(tmp_path: Path) -> None:
    src = tmp_path / "ga16.tif"
    src.write_bytes(_grey_alpha16_tiff())
    key = seeded_key_file(tmp_path / "key.bin")
    proc = run_cli("label", str(src), str(tmp_path / "out.tif"), "--producer", PRODUCER, "--produce-id",
                   "qa-ga16", "--layers", "watermark,metadata", "--key-file", str(key))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "16-bit grey+alpha tiff is not supported" in lines[0]
    assert "damaged" not in lines[0]
    assert not (tmp_path / "out.tif").exists()
    with pytest.raises(UnsupportedFormat, match="16-bit grey"):
        read_image(src.read_bytes())


def test_verify_names_a_16bit_grey_alpha_tiff_rather_than_calling_it_damaged(tmp_path: Path) -> None:
    src = tmp_path / "ga16.tif"
    src.write_bytes(_grey_alpha16_tiff())
    run_cli("label", str(src), str(tmp_path / "md.tif"), "--producer", PRODUCER, "--produce-id", "qa-ga16",
            check=True)
    key = seeded_key_file(tmp_path / "key.bin")
    report = json.loads(run_cli("verify", str(tmp_path / "md.tif"), "--key-file", str(key), "--json",
                                check=True).stdout)
    assert report["layers"]["metadata"]["present"]
    said = " ".join(report["warnings"])
    assert "16-bit grey+alpha tiff is not supported" in said and "damaged" not in said


def test_8bit_and_rgb_tiffs_are_not_taken_for_grey_alpha16() -> None:
    from labeler.media.image16 import tiff_grey_alpha16

    grey = _photo()[..., 1]
    for pixels in (np.dstack([grey, _alpha(grey.shape)]), grey.astype(np.uint16) * 257, _photo()):
        assert not tiff_grey_alpha16(encode_tiff16(pixels, icc=None, exif=None, xmp=None, dpi=None))
    assert tiff_grey_alpha16(_grey_alpha16_tiff())
    assert not tiff_grey_alpha16(b"II*\x00\xff\xff\xff\x7f")  # IFD offset past the end


def _webp_chunks(data: bytes) -> list[bytes]:
    chunks, at = [], 12
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4:at + 8], "little")
        chunks.append(data[at:at + 4])
        at += 8 + size + (size & 1)
    return chunks


def test_lossless_rgba_webp_stays_lossless_with_its_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([_photo(), _alpha((384, 512))])
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "WEBP", lossless=True)
    out = label(buf.getvalue(), RECORD, layers="watermark,metadata", key=KEY)
    assert b"VP8L" in _webp_chunks(out) and b"VP8 " not in _webp_chunks(out)
    assert np.array_equal(read_image(out).pixels[..., 3], rgba[..., 3])
    _marks_found(_verified(out, ".webp", tmp_path))


def test_palette_png_with_trns_keeps_its_transparency(tmp_path: Path) -> None:
    pal = Image.fromarray(_photo()).quantize(200)
    indices = np.asarray(pal).copy()
    indices[20:60, 20:80] = 255
    im = Image.fromarray(indices, "P")
    im.putpalette(pal.getpalette())
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=255)
    src = read_image(buf.getvalue())
    with pytest.warns(UserWarning, match="palette image written as truecolour RGBA"):
        out = label(buf.getvalue(), RECORD, layers="watermark,metadata", key=KEY)
    assert out[24:26] == bytes([8, 6])  # IHDR: 8-bit RGBA
    assert np.array_equal(read_image(out).pixels[..., 3], src.pixels[..., 3])
    _marks_found(_verified(out, ".png", tmp_path))


def test_16bit_rgba_png_stays_16bit_with_its_alpha(tmp_path: Path) -> None:
    rgb = _photo().astype(np.uint16) * 257 + 3
    rgba = np.dstack([rgb, _alpha((384, 512)).astype(np.uint16) * 257 + 1])
    src = encode_png16(rgba, icc=None, exif=None, xmp=None, dpi=None)
    out = label(src, RECORD, layers="watermark,metadata", key=KEY)
    assert out[24:26] == bytes([16, 6])  # IHDR: 16-bit RGBA
    back = read_image(out).pixels
    assert back.dtype == np.uint16 and np.array_equal(back[..., 3], rgba[..., 3])
    _marks_found(_verified(out, ".png", tmp_path))


def test_lossless_webp_keeps_the_colour_under_transparent_pixels():
    """libwebp rewrites the RGB of fully transparent pixels unless told ``exact``; a lossless source must
    keep every sample a pixel layer did not change (the visible label only touches its own box)."""
    rgba = np.zeros((300, 400, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = (np.arange(400) % 251)[None, :]
    rgba[..., 2] = (np.arange(300) % 241)[:, None]
    rgba[:150, :, 3] = 255  # top half opaque, bottom half fully transparent with colour kept under it
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="WEBP", lossless=True, exact=True)
    out = label(buf.getvalue(), AIGCLabel(PRODUCER, "qa-webp-exact"), layers="visible")
    got = np.asarray(Image.open(io.BytesIO(out)).convert("RGBA"))
    hidden = (rgba[..., 3] == 0) & (got[..., 3] == 0)
    ys, xs = np.nonzero(got[..., 3] != rgba[..., 3])  # the label's plate: its box is the layer's own
    hidden[ys.min() - 2 : ys.max() + 3, xs.min() - 2 : xs.max() + 3] = False
    assert hidden.sum() > 0.3 * hidden.size
    assert np.array_equal(got[hidden][:, :3], rgba[hidden][:, :3])


def test_a_10_bit_avif_is_said_to_become_8_bit(tmp_path):
    """Pillow reads and writes AVIF at 8 bits: a 10-bit source (av1C high_bitdepth) loses two bits in a
    pixel layer, and the label result says so, as it does for CMYK or a palette."""
    import subprocess

    from labeler.media.ffmpeg import ffmpeg_exe

    Image.fromarray((np.random.default_rng(3).random((128, 160, 3)) * 255).astype(np.uint8)).save(
        tmp_path / "a.png")
    src = tmp_path / "a10.avif"
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "a.png"), "-c:v", "libaom-av1",
                           "-still-picture", "1", "-pix_fmt", "yuv420p10le", "-y", str(src)],
                          capture_output=True, timeout=120)
    if proc.returncode:
        pytest.skip("this ffmpeg cannot write a 10-bit AVIF (libaom-av1)")
    image = read_image(src)
    assert image.mode == "RGB;10" and image.subsampling == 2
    result = label(src, AIGCLabel(PRODUCER, "qa-avif10"), dst=tmp_path / "out.avif", layers="visible")
    assert any("10-bit AVIF written as 8-bit" in w for w in result.warnings), result.warnings
    assert read_image(tmp_path / "out.avif").mode == "RGB"
