"""HEIF stills (AVIF, HEIC): recognised as images, labeled in an XMP item, read back by exiftool and Pillow.

Before 2026-12-06 an AVIF or HEIC file was sniffed as an MP4 video ("mp4 file has no moov box").
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    PRODUCER,
    SAMPLES,
    assert_carrier_fails_cleanly,
    label_json,
    make_heic,
    run_cli,
    seeded_key_file,
)
from PIL import Image

from labeler.formats import sniff_bytes, sniff_file
from labeler.media import ffmpeg as ff
from labeler.metadata import heif
from labeler.metadata.bmff_boxes import Budget, top_level

VALUE = label_json("heif-1")
OTHER_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
             b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>'
             b'<rdf:li xml:lang="x-default">kept title</rdf:li></rdf:Alt></dc:title></rdf:Description>'
             b"</rdf:RDF></x:xmpmeta>")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("heif")
    with Image.open(SAMPLES / "photo.png") as im:
        photo = im.convert("RGB").resize((320, 240))
    out = {"avif": d / "photo.avif", "avif-xmp": d / "titled.avif", "heic": make_heic(d / "camera.heic")}
    photo.save(out["avif"], "AVIF", quality=80)
    photo.save(out["avif-xmp"], "AVIF", quality=80, xmp=OTHER_XMP)
    return out


def _image_item(data: bytes) -> bytes:
    """The primary image item's coded bytes (its iloc extents), to show the media is copied untouched."""
    src = io.BytesIO(data)
    layout, _, meta, budget = heif._load(src)
    iloc = heif._parse_iloc(meta.buf, meta.iloc, budget)
    loc = next(e for e in iloc.entries if e.item == meta.primary)
    chunks = []
    for x in loc.extents:
        src.seek(loc.base + x.offset)
        chunks.append(src.read(x.length))
    assert layout.size == len(data)
    return b"".join(chunks)


def test_sniffed_as_images(files):
    assert sniff_file(files["avif"]) == sniff_bytes(files["avif"].read_bytes()) == "avif"
    assert sniff_file(files["heic"]) == "heic"
    data = bytearray(files["avif"].read_bytes())
    data[8:12] = b"mif1"  # a generic HEIF major brand; "avif" among the compatible ones
    assert sniff_bytes(bytes(data)) == "avif"
    data[8:12] = b"avis"  # an AVIF image sequence has tracks: read as a movie, not as a still
    assert sniff_bytes(bytes(data)) == "mp4"


@pytest.mark.parametrize("name", ["avif", "avif-xmp", "heic"])
def test_write_read_replace(files, name):
    original = files[name].read_bytes()
    assert [f for f in heif.read(io.BytesIO(original)) if f.standard] == []
    once = io.BytesIO()
    heif.write(io.BytesIO(original), once, VALUE)
    found = heif.read(io.BytesIO(once.getvalue()))
    assert [(f.raw, f.carrier) for f in found] == [(VALUE, "xmp-tc260")]
    twice = io.BytesIO()
    heif.write(io.BytesIO(once.getvalue()), twice, VALUE.replace("heif-1", "heif-2"))
    assert [f.raw for f in heif.read(io.BytesIO(twice.getvalue()))] == [VALUE.replace("heif-1", "heif-2")]
    # the packet box the first write appended is replaced, not kept beside the new one
    assert len(twice.getvalue()) == len(once.getvalue()) and b"heif-1" not in twice.getvalue()
    assert _image_item(twice.getvalue()) == _image_item(original)
    if name.startswith("avif"):
        with Image.open(files[name]) as a, Image.open(io.BytesIO(twice.getvalue())) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b))
            xmp = b.info.get("xmp", b"")
            assert b"heif-2" in xmp and (name == "avif" or b"kept title" in xmp)


def test_free_box_absorbs_the_growth(files):
    """With a free box between meta and the media, nothing after it moves (no offset rewritten)."""
    data = files["heic"].read_bytes()
    layout = top_level(io.BytesIO(data), Budget())
    meta = next(b for b in layout.boxes if b.type == b"meta")
    padded = bytearray(data[: meta.end] + struct.pack(">I4s", 4096, b"free") + bytes(4088) + data[meta.end:])
    # the image item's offset moves with the inserted box
    heif_meta = bytearray(padded[meta.start:meta.end])
    at = heif_meta.find(b"iloc") + 4 + 4 + 2 + 2 + 2 + 2 + 2
    struct.pack_into(">I", heif_meta, at, struct.unpack_from(">I", heif_meta, at)[0] + 4096)
    padded[meta.start:meta.end] = heif_meta
    assert _image_item(bytes(padded)) == _image_item(data)
    out = io.BytesIO()
    heif.write(io.BytesIO(bytes(padded)), out, VALUE)
    new = out.getvalue()
    mdat = new.find(b"mdat")
    assert mdat == bytes(padded).find(b"mdat")  # the media did not move
    assert _image_item(new) == _image_item(data)
    assert [f.raw for f in heif.read(io.BytesIO(new))] == [VALUE]


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
@pytest.mark.parametrize("name", ["avif-xmp", "heic"])
def test_exiftool_reads_it(files, tmp_path, name):
    out = tmp_path / f"labeled.{'avif' if name.startswith('avif') else 'heic'}"
    with open(files[name], "rb") as src, open(out, "wb") as dst:
        heif.write(src, dst, VALUE)
    proc = subprocess.run(["exiftool", "-j", "-validate", "-warning", "-XMP-TC260:all", "-XMP-dc:Title",
                           str(out)], capture_output=True, text=True, check=True)
    tags = json.loads(proc.stdout)[0]
    assert tags["Aigc"] == VALUE and tags["Validate"] == "OK" and "Warning" not in tags
    assert name == "heic" or tags["Title"] == "kept title"


def test_damaged_files_fail_cleanly(files):
    for seed, name in enumerate(("avif", "heic")):
        assert_carrier_fails_cleanly(heif, files[name].read_bytes(), seed=3 + seed, shortest=8)


def _verify(path: Path, *args: str) -> tuple[dict, str]:
    proc = run_cli("verify", "--json", str(path), *args)
    assert proc.returncode == 0, proc.stderr
    text = run_cli("verify", str(path), *args).stdout
    return json.loads(proc.stdout), text


def test_cli_label_and_verify(files, tmp_path):
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_heif-1")
    for name, fmt in (("avif", "avif"), ("heic", "heic")):
        out = tmp_path / f"labeled.{fmt}"
        run_cli("label", str(files[name]), str(out), "--producer", PRODUCER, "--produce-id", f"cli-{fmt}",
                check=True)
        report, text = _verify(out, "--key-file", str(key))
        assert report["format"] == fmt and report["medium"] == "image"
        assert report["verdict"] == "confirmed" and report["layers"]["metadata"]["carrier"] == "xmp-tc260"
        if fmt == "avif" or ff.ffmpeg_version() >= (7, 1):  # Pillow decodes AV1, ffmpeg 7.1+ HEVC
            assert "watermark" in report["examined"] and report["warnings"] == []
        else:  # no HEVC decoder here: said so, and not listed as examined
            assert "watermark" not in report["examined"] and "visible" not in report["examined"]
            assert "cannot be decoded" in report["warnings"][0] and "  warning: heic pixels" in text


def test_watermark_found_after_conversion_to_avif(tmp_path):
    """A marked PNG that a CDN serves as AVIF: verify reads the AVIF's pixels and finds the mark."""
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_heif-2")
    marked = tmp_path / "marked.png"
    run_cli("label", str(SAMPLES / "photo.png"), str(marked), "--producer", PRODUCER, "--produce-id", "cdn-1",
            "--layers", "watermark", "--key-file", str(key), check=True)
    served = tmp_path / "served.avif"
    with Image.open(marked) as im:
        im.convert("RGB").save(served, "AVIF", quality=75)
    report, _ = _verify(served, "--key-file", str(key))
    assert report["layers"]["watermark"]["present"] is True


def test_heic_decodes_the_same_after_labeling(files, tmp_path):
    """ffmpeg 7.1+ reads HEIF items (the imageio-ffmpeg wheel's 9.0 does; Debian 12's 5.1 does not)."""
    from labeler.media.ffmpeg import ffmpeg_exe

    def frame(path: Path) -> bytes | None:
        proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1",
                               "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True)
        return proc.stdout if proc.returncode == 0 and proc.stdout else None

    before = frame(files["heic"])
    if before is None:
        pytest.skip("this ffmpeg reads no HEIF")
    out = tmp_path / "labeled.heic"
    with open(files["heic"], "rb") as src, open(out, "wb") as dst:
        heif.write(src, dst, VALUE)
    assert frame(out) == before and len(before) == 256 * 192


def test_pixel_layers_on_avif(files, tmp_path):
    """AVIF takes the watermark and the visible mark (Pillow decodes and re-encodes AV1), metadata after."""
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_heif-3")
    out = tmp_path / "labeled.avif"
    run_cli("label", str(files["avif-xmp"]), str(out), "--producer", PRODUCER, "--produce-id", "avif-px",
            "--layers", "watermark,visible,metadata", "--key-file", str(key), check=True)
    report, _ = _verify(out, "--key-file", str(key))
    assert report["format"] == "avif" and report["verdict"] == "confirmed"
    assert report["layers"]["watermark"]["matches_metadata"] is True
    assert report["layers"]["visible"]["present"] is True
    with Image.open(out) as im:
        assert im.format == "AVIF" and im.size == (320, 240)
        assert b"kept title" in im.info["xmp"]  # the source's XMP went through the re-encode
    assert '"ProduceID":"avif-px"' in heif.read(io.BytesIO(out.read_bytes()))[0].raw


def _apple_like(data: bytes) -> bytes:
    """The HEIC with an ``iloc`` of version 1 whose image offset sits in base_offset (as Apple's files
    store it), and an Exif item whose bytes live in ``idat`` (construction method 1); no free box, so a
    label moves the image data and its base offset must follow."""
    src = io.BytesIO(data)
    layout, index, meta, budget = heif._load(src)
    iloc = heif._parse_iloc(meta.buf, meta.iloc, budget)
    image = next(e for e in iloc.entries if e.item == meta.primary)
    start, length = image.base + image.extents[0].offset, image.extents[0].length
    iloc.version, iloc.sizes = 1, (4, 4, 4, 0)
    iloc.entries.append(heif._Location(7, 1, 0, 0, [heif._Extent(0, 0, len(EXIF))]))
    infe = heif.box_bytes(b"infe", struct.pack(">B3xHH", 2, 7, 0) + b"Exif\x00")

    def rebuilt(shift: int) -> bytes:
        image.base, image.extents = start + shift, [heif._Extent(0, 0, length)]
        boxes = {b"iloc": heif._iloc_bytes(iloc, set())[0], b"iinf": heif._iinf_plus(meta, infe),
                 b"idat": heif.box_bytes(b"idat", EXIF)}
        return bytes(heif._rebuild(meta, boxes)[0])

    old = layout.boxes[index]
    new_meta = rebuilt(len(rebuilt(0)) - old.size)
    return data[:old.start] + new_meta + data[old.end:]


EXIF = b"\x00\x00\x00\x06Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x00"


def test_iloc_v1_base_offsets_and_idat_items_survive(files):
    data = _apple_like(files["heic"].read_bytes())
    assert _image_item(data) == _image_item(files["heic"].read_bytes())
    out = io.BytesIO()
    heif.write(io.BytesIO(data), out, VALUE)
    labeled = out.getvalue()
    assert _image_item(labeled) == _image_item(data)
    src = io.BytesIO(labeled)
    layout, _, meta, budget = heif._load(src)
    exif = next(e for e in heif._parse_iloc(meta.buf, meta.iloc, budget).entries if e.item == 7)
    assert heif._item_data(src, meta, exif, layout.size) == EXIF
    assert [f.raw for f in heif.read(io.BytesIO(labeled))] == [VALUE]


def test_heic_pixels_read_where_ffmpeg_can(tmp_path):
    """A marked picture stored as HEIC: with ffmpeg 7.1+ (the imageio-ffmpeg wheel's) verify decodes it and
    finds the watermark and the visible mark; with an older ffmpeg it says why it could not look."""
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_heif-4")
    marked = tmp_path / "marked.png"
    run_cli("label", str(SAMPLES / "photo.png"), str(marked), "--producer", PRODUCER, "--produce-id",
            "heic-px", "--layers", "watermark,visible", "--key-file", str(key), check=True)
    heic = make_heic(tmp_path / "marked.heic", source=marked)
    report, text = _verify(heic, "--key-file", str(key))
    if ff.ffmpeg_version() >= (7, 1):
        assert report["examined"] == ["metadata", "c2pa", "watermark", "visible"] and report["warnings"] == []
        assert report["layers"]["watermark"]["present"] is True
        assert report["layers"]["visible"]["present"] is True and report["verdict"] == "confirmed"
    else:
        assert "watermark" not in report["examined"] and "7.1 and later" in report["warnings"][0]
        assert "  warning: heic pixels cannot be decoded here" in text
