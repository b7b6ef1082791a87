"""QA pass (s39): the image watermark through ``aigc label`` / ``aigc verify`` on the files users have.

Found and fixed:

* a JPEG that ffmpeg wrote 4:4:4 or 4:2:2 (a frame grab with ``-pix_fmt yuvj444p`` / ``yuvj422p``) came
  out of the watermark layer 4:2:0: ffmpeg states the sampling factors as 1 x 2 for every component
  (4:4:4) or 2 x 2 luma over 1 x 2 chroma (4:2:2), which Pillow's ``get_sampling`` does not know, so
  the source's subsampling was taken as unknown and Pillow's default used (``labeler.media.image``);
* a truncated TIFF whose picture data follows its header (every TIFF ``aigc label`` writes, 8- or
  16-bit) and a 16-bit PNG with a damaged or cut chunk made libtiff / libpng / OpenCV print their own
  lines on stderr ("TIFFFillStrip: Read error on strip 0", "[ERROR:0@0.1] global loadsave.cpp ...",
  "libpng error: bad adaptive filter value") before the one-line error, which then said only
  "decoder error -2" or "damaged 16-bit image data" (``labeler.media.image16.check_complete``), and a
  16-bit PNG whose late text chunk was damaged labeled with a "libpng warning" line on stderr
  (OpenCV now gets the pixel chunks only: ``labeler.media.image16._pixel_chunks``);
* ``embed`` and ``detect`` refused a big-endian uint16 array, which ``labeler.label`` takes
  (``labeler.watermark.transforms.native_order``);
* a lossless JPEG (valid; Pillow decodes 8-bit JPEG only) was called a "damaged jpeg header"
  (``labeler.media.image._jpeg_frame``);
* a motion photo (a JPEG with its video after the image's EOI) lost the video in the watermark and
  visible layers, silently (``labeler.media.image_extras.jpeg_trailer``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, has_encoder, run_cli, run_ffmpeg, seeded_key_file
from PIL import Image

from labeler.media.image16 import encode_png16, encode_tiff16


def _photo(size: tuple[int, int] = (512, 384)) -> np.ndarray:
    with Image.open(SAMPLES / "photo.jpg") as im:
        return np.asarray(im.convert("RGB").resize(size))


def _label(src: Path, dst: Path, key: Path, layers: str = "watermark,metadata") -> object:
    return run_cli("label", "--producer", PRODUCER, "--produce-id", f"qa-s39-{src.name}",
                   "--layers", layers, "--key-file", str(key), str(src), str(dst))


def _chroma_ratios(path: Path) -> list[tuple[int, int]]:
    """Each chroma component's (horizontal, vertical) reduction against the luma (ITU-T T.81 A.1.1)."""
    with Image.open(path) as im:
        (_, yh, yv, _), *chroma = im.layer
    return [(yh // h, yv // v) for _, h, v, _ in chroma]


@pytest.mark.parametrize(("pix_fmt", "ratios"), [("yuvj444p", (1, 1)), ("yuvj422p", (2, 1))])
def test_an_ffmpeg_jpeg_keeps_its_chroma_subsampling(tmp_path: Path, pix_fmt: str,
                                                    ratios: tuple[int, int]) -> None:
    png = tmp_path / "frame.png"
    Image.fromarray(_photo()).save(png)
    src, dst = tmp_path / f"{pix_fmt}.jpg", tmp_path / "out.jpg"
    run_ffmpeg("-i", str(png), "-pix_fmt", pix_fmt, "-q:v", "3", str(src))
    assert _chroma_ratios(src) == [ratios, ratios]  # what ffmpeg wrote (its own factor layout)
    before = src.read_bytes()
    key = seeded_key_file(tmp_path / "k.key", "qa-s39-subsampling")
    proc = _label(src, dst, key)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr  # the mark read back
    assert src.read_bytes() == before
    assert _chroma_ratios(dst) == [ratios, ratios]  # was (2, 2): 4:2:0
    verdict = run_cli("verify", "--key-file", str(key), str(dst))
    assert verdict.returncode == 0 and "confirmed" in verdict.stdout and "matches metadata" in verdict.stdout


def _assert_one_line_refusal(proc: object, *words: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("aigc: error: ") and all(w in lines[0] for w in words), proc.stderr


def _check_verify_quiet(path: Path, key: Path, *words: str) -> None:
    proc = run_cli("verify", "--key-file", str(key), str(path))
    assert not any(w in proc.stderr for w in ("TIFF", "libpng", "[ERROR")), proc.stderr
    assert all(w in proc.stdout for w in words), proc.stdout


def test_a_truncated_16bit_tiff_is_one_line(tmp_path: Path) -> None:
    pixels = _photo().astype(np.uint16) * 257
    data = encode_tiff16(pixels, icc=None, exif=None, xmp=None, dpi=None)
    src, dst = tmp_path / "cut.tif", tmp_path / "out.tif"
    src.write_bytes(data[: len(data) * 9 // 10])
    key = seeded_key_file(tmp_path / "k.key")
    _assert_one_line_refusal(_label(src, dst, key), "damaged tiff file", "truncated")
    assert not dst.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cut.tif", "k.key"]
    _check_verify_quiet(src, key, "truncated")


def test_a_labeled_tiff_cut_short_is_one_line(tmp_path: Path) -> None:
    """``aigc label`` writes its TIFFs header first: a copy cut short reaches libtiff's strip reader."""
    src, labeled, again = tmp_path / "in.tif", tmp_path / "labeled.tif", tmp_path / "again.tif"
    Image.fromarray(_photo()).save(src, compression="tiff_lzw")
    key = seeded_key_file(tmp_path / "k.key")
    assert _label(src, labeled, key, "watermark").returncode == 0
    cut = tmp_path / "cut.tif"
    cut.write_bytes(labeled.read_bytes()[:300_000])
    _assert_one_line_refusal(_label(cut, again, key), "damaged tiff file", "truncated")
    assert not again.exists()
    _check_verify_quiet(cut, key, "truncated")


def test_a_damaged_16bit_png_is_one_line(tmp_path: Path) -> None:
    pixels = np.dstack([_photo().astype(np.uint16) * 257, np.full((384, 512), 65535, np.uint16)])
    data = bytearray(encode_png16(pixels, icc=None, exif=None, xmp=None, dpi=None))
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4 : idat])[0]
    for at in range(idat + 4 + size // 2, idat + 4 + size // 2 + 64):  # a damaged sector in the pixels
        data[at] ^= 0x5A
    src, dst = tmp_path / "bad.png", tmp_path / "out.png"
    src.write_bytes(bytes(data))
    key = seeded_key_file(tmp_path / "k.key")
    _assert_one_line_refusal(_label(src, dst, key), "damaged png file", "CRC")
    assert not dst.exists()
    _check_verify_quiet(src, key, "CRC")
    cut = tmp_path / "cut.png"
    cut.write_bytes(bytes(data[: idat + size // 3]))
    _assert_one_line_refusal(_label(cut, dst, key), "damaged png file", "truncated")
    assert not dst.exists()


def test_embed_and_detect_take_a_big_endian_uint16_array() -> None:
    """``labeler.label`` takes uint16 arrays in either byte order; ``embed`` and ``detect`` refused a
    ``>u2`` array (what ``np.frombuffer`` gives for PNG / FITS rows) as "dtype must be uint8 or uint16"."""
    from detectors.watermark import detect
    from labeler.watermark import embed

    key, payload = b"qa-s39-big-endian".ljust(32, b"."), bytes(range(8))
    native = _photo((256, 192)).astype(np.uint16) * 257
    big = native.astype(">u2")
    marked = embed(big, payload, key=key)
    assert marked.dtype == big.dtype and big.tolist() == native.tolist()  # its order kept, input untouched
    assert np.array_equal(marked.astype(np.uint16), embed(native, payload, key=key))
    found = detect(marked, key=key)
    assert found.found and found.payload == payload


def test_a_lossless_jpeg_is_named_unsupported_not_damaged(tmp_path: Path) -> None:
    """A lossless JPEG (ffmpeg's ``ljpeg``: SOF3, 9-bit samples for RGB) is valid, but Pillow decodes 8-bit
    JPEG only and 'cannot identify' it: the watermark layer called it a "damaged jpeg header"."""
    if not has_encoder("ljpeg"):
        pytest.skip("this ffmpeg has no ljpeg encoder")
    png, src, dst = tmp_path / "frame.png", tmp_path / "lossless.jpg", tmp_path / "out.jpg"
    Image.fromarray(_photo()).save(png)
    run_ffmpeg("-i", str(png), "-c:v", "ljpeg", "-pix_fmt", "bgr24", "-strict", "-1", str(src))
    key = seeded_key_file(tmp_path / "k.key")
    _assert_one_line_refusal(_label(src, dst, key, "watermark"), "9-bit lossless jpeg is not supported")
    assert "damaged" not in run_cli("verify", "--key-file", str(key), str(src)).stdout
    assert _label(src, dst, key, "metadata").returncode == 0  # the metadata layer never decodes pixels


def test_a_motion_photo_keeps_its_video_through_the_pixel_layers(tmp_path: Path) -> None:
    """A phone's motion photo is a JPEG with its video appended after the image's EOI, located by the
    XMP from the end of the file (``GCamera:MicroVideoOffset``). The metadata layer kept it; the
    watermark and visible layers re-encoded the JPEG and dropped the video without a word."""
    clip = tmp_path / "clip.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:d=1", "-pix_fmt", "yuv420p", str(clip))
    video = clip.read_bytes()
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
           b'syntax-ns#"><rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
           b'GCamera:MicroVideo="1" GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="'
           + str(len(video)).encode() + b'"/></rdf:RDF></x:xmpmeta>')
    src, dst = tmp_path / "PXL_motion.jpg", tmp_path / "out.jpg"
    Image.fromarray(_photo()).save(src, quality=92, xmp=xmp)
    src.write_bytes(src.read_bytes() + video)
    before = src.read_bytes()
    key = seeded_key_file(tmp_path / "k.key")
    proc = _label(src, dst, key, "watermark,visible,metadata")
    assert proc.returncode == 0, proc.stderr
    assert src.read_bytes() == before
    out = dst.read_bytes()
    assert out.endswith(video) and out[: -len(video)].endswith(b"\xff\xd9")  # the video where the XMP says
    with Image.open(dst) as im:
        assert b"MicroVideoOffset" in im.info["xmp"]
    verdict = run_cli("verify", "--key-file", str(key), str(dst))
    assert "confirmed" in verdict.stdout and "matches metadata" in verdict.stdout, verdict.stdout


def test_a_16bit_png_with_a_damaged_late_text_chunk_labels_quietly(tmp_path: Path) -> None:
    """Pillow reads past a damaged ancillary chunk after the pixels quietly; libpng (OpenCV's 16-bit
    decode) printed "libpng warning: tEXt: CRC error" on stderr of a run that succeeded."""
    import zlib

    data = encode_png16(_photo().astype(np.uint16) * 257, icc=None, exif=None, xmp=None, dpi=None)
    body = b"Comment\0scanned 2026"
    bad_crc = (zlib.crc32(b"tEXt" + body) ^ 1).to_bytes(4, "big")
    text = len(body).to_bytes(4, "big") + b"tEXt" + body + bad_crc
    iend = data.rindex(b"IEND") - 4
    src, dst = tmp_path / "late.png", tmp_path / "out.png"
    src.write_bytes(data[:iend] + text + data[iend:])
    key = seeded_key_file(tmp_path / "k.key")
    proc = _label(src, dst, key, "watermark")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    with Image.open(dst) as im:
        assert im.mode == "RGB" and dst.read_bytes()[24] == 16  # IHDR bit depth: still 16-bit
