"""QA pass (s38): the metadata label between this toolkit and other tools (exiftool, Pillow, ffmpeg).

Found and fixed:

* MKV / WebM: the label's SimpleTag carried an explicit ``TagLanguage`` "und", which exiftool turns
  into the tag name ``Aigc-und``, so ``exiftool -Aigc file.mkv`` (what a platform's script asks) found
  nothing; ffmpeg writes no TagLanguage for a plain key, and RFC 9559's default is "und" anyway.
* JPEG: a label in the Extended XMP packet (exiftool moves the largest properties there once the XMP
  passes one APP1 segment: a label with a long ReservedCode1 signature) read as no label at all; and
  relabeling such a file would have left that copy beside the new one.
* PNG: an XMP packet in a ``zTXt`` / ``tEXt`` chunk with keyword ``XML:com.adobe.xmp`` (what Pillow's
  ``PngInfo.add_text(..., zip=True)`` writes; exiftool reads it as XMP) was reported as a non-standard
  declaration of XML text ("possible"), and labeling kept that stale copy beside a new XMP chunk.

Tests that ask exiftool skip without it; the rest hold without it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli
from PIL import Image, PngImagePlugin

from labeler.metadata import jpeg as jpeg_carrier
from labeler.metadata import read_labels

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")
NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
EXT_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"


def _value(produce_id: str, reserved1: str = "") -> str:
    return json.dumps({"Label": "1", "ContentProducer": PRODUCER, "ProduceID": produce_id,
                       "ReservedCode1": reserved1, "ContentPropagator": PRODUCER, "PropagateID": produce_id,
                       "ReservedCode2": ""}, separators=(",", ":"))


def _verify(path: Path) -> dict:
    proc = run_cli("verify", str(path), "--json")
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def _exiftool(*args: str) -> str:
    return subprocess.run([EXIFTOOL, *args], capture_output=True, text=True, check=True, timeout=60).stdout


# -- MKV / WebM -------------------------------------------------------------------------------------------
def test_mkv_label_has_no_tag_language(tmp_path):
    out = tmp_path / "labeled.mkv"
    run_cli("label", str(SAMPLES / "clip.mkv"), str(out), "--producer", PRODUCER, "--produce-id", "mkv-1",
            check=True)
    data = out.read_bytes()
    at = data.index(b"\x45\xa3\x84AIGC")  # TagName "AIGC"
    assert data[at + 7:at + 9] == b"\x44\x87", "TagString right after TagName, no TagLanguage (0x447A)"
    assert [json.loads(f.raw)["ProduceID"] for f in read_labels(out)[1]] == ["mkv-1"]


@needs_exiftool
def test_exiftool_names_the_mkv_label_aigc(tmp_path):
    out = tmp_path / "labeled.mkv"
    run_cli("label", str(SAMPLES / "clip.mkv"), str(out), "--producer", PRODUCER, "--produce-id", "mkv-2",
            check=True)
    got = json.loads(_exiftool("-j", "-ee", "-Aigc", str(out)))[0]
    assert json.loads(got["Aigc"])["ProduceID"] == "mkv-2"


# -- JPEG Extended XMP -------------------------------------------------------------------------------------
def _with_extended_label(value: str | None) -> bytes:
    """samples/photo.jpg with the label in an Extended XMP packet (XMP Part 3 1.1.3.1), laid out as
    exiftool writes it: main packet with xmpNote:HasExtendedXMP, the rest in 65,400-byte chunks. With
    ``value`` None the extended packet holds a large non-label property (a phone's depth map)."""
    if value is None:
        prop = f"<dc:source>{'z' * 70_000}</dc:source>"
    else:
        prop = f"<TC260:AIGC>{value.replace('&', '&amp;').replace('<', '&lt;')}</TC260:AIGC>"
    ext = ("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
           f"<rdf:Description rdf:about='' xmlns:TC260='{NS}' xmlns:dc='http://purl.org/dc/elements/1.1/'>"
           f"{prop}</rdf:Description></rdf:RDF></x:xmpmeta>").encode()
    guid = hashlib.md5(ext).hexdigest().upper()
    main = (f"<?xpacket begin='\ufeff' id='W5M0MpCehiHzreSzNTczkc9d'?><x:xmpmeta xmlns:x='adobe:ns:meta/'>"
            "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
            "<rdf:Description rdf:about='' xmlns:xmpNote='http://ns.adobe.com/xmp/note/' "
            f"xmlns:dc='http://purl.org/dc/elements/1.1/' xmpNote:HasExtendedXMP='{guid}'>"
            "<dc:format>image/jpeg</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>"
            + " " * 400 + "<?xpacket end='w'?>").encode()

    def app1(payload: bytes) -> bytes:
        return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload

    segs = app1(jpeg_carrier.XMP_HEADER + main)
    for at in range(0, len(ext), 65400):
        segs += app1(EXT_HEADER + guid.encode() + struct.pack(">II", len(ext), at) + ext[at:at + 65400])
    src = (SAMPLES / "photo.jpg").read_bytes()
    return src[:2] + segs + src[2:]


def test_label_in_extended_xmp_is_read(tmp_path):
    value = _value("ext-1", reserved1="ab" * 40_000)  # an 80 kB signature: past one APP1 segment
    path = tmp_path / "extended.jpg"
    path.write_bytes(_with_extended_label(value))
    report = _verify(path)
    meta = report["layers"]["metadata"]
    assert report["verdict"] == "confirmed", report["reasons"]
    assert meta["carrier"] == "xmp-tc260" and "Extended XMP" in meta["location"]
    assert meta["fields"]["ReservedCode1"] == "ab" * 40_000


def test_relabel_removes_the_extended_copy(tmp_path):
    src = tmp_path / "extended.jpg"
    src.write_bytes(_with_extended_label(_value("ext-old", reserved1="cd" * 40_000)))
    out = tmp_path / "relabeled.jpg"
    run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "ext-new", check=True)
    found = read_labels(out)[1]
    assert [json.loads(f.raw)["ProduceID"] for f in found] == ["ext-new"]
    data = out.read_bytes()
    assert b"cdcdcdcd" not in data and len(data) < src.stat().st_size - 70_000
    # The main packet names the rewritten extended packet by its MD5, as XMP Part 3 wants.
    main = jpeg_carrier._xmp_packet(data, jpeg_carrier._segments(data)[0][0])
    segments, _ = jpeg_carrier._segments(data)
    guid = jpeg_carrier._main_guid(data, segments)
    ext = jpeg_carrier._extended_xmp(data, segments, guid)
    assert main is not None and ext is not None and hashlib.md5(ext.packet).hexdigest().upper() == guid
    assert b"image/jpeg" in ext.packet or b"image/jpeg" in data  # other properties kept


@needs_exiftool
def test_exiftool_extended_label_read_and_relabeled(tmp_path):
    config = tmp_path / "tc260.config"
    config.write_text(
        "%Image::ExifTool::UserDefined = ('Image::ExifTool::XMP::Main' => { TC260 => { SubDirectory =>"
        " { TagTable => 'Image::ExifTool::UserDefined::TC260' } } });\n"
        "%Image::ExifTool::UserDefined::TC260 = (GROUPS => { 0 => 'XMP', 1 => 'XMP-TC260', 2 => 'Image' },"
        f" NAMESPACE => {{ 'TC260' => '{NS}' }}, WRITABLE => 'string', AIGC => {{ }});\n1;\n")
    value = tmp_path / "value.json"
    value.write_text(_value("vendor-ext", reserved1="A" * 70_000))
    path = tmp_path / "vendor.jpg"
    shutil.copy(SAMPLES / "photo.jpg", path)
    _exiftool("-config", str(config), "-q", "-overwrite_original", f"-XMP-TC260:AIGC<={value}", str(path))
    assert "HasExtendedXMP" in _exiftool("-s", "-HasExtendedXMP", str(path))
    assert _verify(path)["layers"]["metadata"]["fields"]["ProduceID"] == "vendor-ext"
    out = tmp_path / "ours.jpg"
    run_cli("label", str(path), str(out), "--producer", PRODUCER, "--produce-id", "ours", check=True)
    before, after = (json.loads(_exiftool("-config", str(config), "-j", "-a", "-validate", "-warning",
                                          "-XMP-TC260:AIGC", str(p)))[0] for p in (path, out))
    # samples/photo.jpg has EXIF warnings of its own: the label adds none (no "Incomplete extended XMP").
    assert after["Validate"] == before["Validate"] and after.get("Warning") == before.get("Warning")
    assert json.loads(after["AIGC"])["ProduceID"] == "ours"


# -- PNG XMP in zTXt / tEXt --------------------------------------------------------------------------------
def _pillow_png(path: Path, *, zip_: bool) -> Path:
    packet = (f"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
              f"<rdf:Description rdf:about='' xmlns:TC260='{NS}' xmlns:dc='http://purl.org/dc/elements/1.1/'>"
              f"<TC260:AIGC>{_value('pillow-1')}</TC260:AIGC><dc:format>image/png</dc:format>"
              "</rdf:Description></rdf:RDF></x:xmpmeta>")
    info = PngImagePlugin.PngInfo()
    info.add_text("XML:com.adobe.xmp", packet, zip=zip_)  # a Latin-1 str: zTXt with zip, else tEXt
    with Image.open(SAMPLES / "photo.png") as im:
        im.convert("RGB").resize((64, 48)).save(path, pnginfo=info)
    return path


@pytest.mark.parametrize("zip_", [True, False], ids=["zTXt", "tEXt"])
def test_png_xmp_in_text_chunk_is_a_label(tmp_path, zip_):
    path = _pillow_png(tmp_path / "pillow.png", zip_=zip_)
    assert (b"zTXt" if zip_ else b"tEXt") + b"XML:com.adobe.xmp" in path.read_bytes()
    report = _verify(path)
    meta = report["layers"]["metadata"]
    assert report["verdict"] == "confirmed", report["reasons"]
    assert meta["carrier"] == "xmp-tc260" and meta["fields"]["ProduceID"] == "pillow-1"
    assert meta["declarations"] == []


@pytest.mark.parametrize("zip_", [True, False], ids=["zTXt", "tEXt"])
def test_png_label_replaces_the_text_chunk_xmp(tmp_path, zip_):
    src = _pillow_png(tmp_path / "pillow.png", zip_=zip_)
    out = tmp_path / "labeled.png"
    run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "ours-1", check=True)
    data = out.read_bytes()
    assert b"pillow-1" not in data and data.count(b"XML:com.adobe.xmp") == 1
    assert b"iTXtXML:com.adobe.xmp" in data and b"image/png" in data  # one XMP, other properties kept
    assert [json.loads(f.raw)["ProduceID"] for f in read_labels(out)[1]] == ["ours-1"]


@needs_exiftool
def test_exiftool_sees_one_png_xmp_after_labeling(tmp_path):
    src = _pillow_png(tmp_path / "pillow.png", zip_=True)
    out = tmp_path / "labeled.png"
    run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "ours-2", check=True)
    tags = json.loads(_exiftool("-j", "-a", "-validate", "-warning", "-XMP:all", str(out)))[0]
    assert tags["Validate"] == "OK" and "Warning" not in tags
    assert json.loads(tags["Aigc"])["ProduceID"] == "ours-2" and tags["Format"] == "image/png"


def test_jpeg_extended_xmp_without_label_is_kept_byte_for_byte(tmp_path):
    # A phone's depth map or a Photoshop history in Extended XMP holds no label: nothing there changes.
    data = _with_extended_label(None)
    path = tmp_path / "plain.jpg"
    path.write_bytes(data)
    out = io.BytesIO()
    with open(path, "rb") as f:
        jpeg_carrier.write(f, out, _value("plain"))
    segs = [seg for seg in jpeg_carrier._segments(out.getvalue())[0]
            if seg.payload(out.getvalue()).startswith(EXT_HEADER)]
    before = [seg for seg in jpeg_carrier._segments(data)[0] if seg.payload(data).startswith(EXT_HEADER)]
    assert [s.payload(out.getvalue()) for s in segs] == [s.payload(data) for s in before]
