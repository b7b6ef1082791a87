"""Image carriers: XMP ``TC260:AIGC`` in JPEG (APP1), PNG (iTXt), WebP (``XMP `` chunk), TIFF (tag 700), GIF.

Test media are made with Pillow (libjpeg, libpng/zlib, libwebp, libtiff encoders) and
checked with independent readers: Pillow decodes the pixels (and returns the XMP it
finds), the container structure is walked by the small walkers below (not the
carrier modules), defusedxml parses the packets, exiftool reads the property when
it is installed.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import zlib

import defusedxml.ElementTree as DET
import numpy as np
import pytest
from conftest import PRODUCER, corpus_path
from PIL import Image, ImageCms, PngImagePlugin

from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, gif, jpeg, png, tiff, webp, write_label, xmp
from labeler.record import AIGCLabel

VALUE = AIGCLabel(PRODUCER, "img-2025-000042").to_json()  # 207 characters
VALUE2 = AIGCLabel(PRODUCER, "img-2025-000043").to_json()
LONGER = AIGCLabel(PRODUCER, "img-2025-000044-regenerated-at-higher-resolution").to_json()
WRAPPED = '{"AIGC": ' + VALUE + "}"
NS = {
    "TC260": xmp.TC260_NS,
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}
FOREIGN_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
    '    xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:CreatorTool="Studio 7">\n'
    '   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour</rdf:li></rdf:Alt></dc:title>\n'
    "  </rdf:Description>\n"
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>'
).encode()
CODES = [(jpeg, "JPEG"), (png, "PNG"), (webp, "WEBP"), (tiff, "TIFF"), (gif, "GIF")]
EXIFTOOL = shutil.which("exiftool")


# -- helpers -------------------------------------------------------------------------------------
def picture(mode: str = "RGB", size: tuple[int, int] = (67, 45), seed: int = 1) -> Image.Image:
    """A smooth gradient with noise (exercises real entropy coding), in ``mode``."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h), 255 - x * 200 / w], axis=-1)
    rgba = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    if mode == "I;16":
        grey = rgba[..., 0].astype(np.uint16) * 257 + rng.integers(0, 200, (h, w))
        return Image.fromarray(grey.astype(np.uint16))
    image = Image.fromarray(rgba, "RGBA")
    if mode == "P":
        return image.convert("RGB").quantize(64)
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def sample(fmt: str) -> bytes:
    return encode(picture("P" if fmt == "GIF" else "RGB"), fmt)


def label(module, data: bytes, value: str = VALUE) -> bytes:
    out = io.BytesIO()
    module.write(io.BytesIO(data), out, value)
    return out.getvalue()


def labels(module, data: bytes) -> list[FoundLabel]:
    return module.read(io.BytesIO(data))


def frames(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        out = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            out.append(np.array(im.convert("RGBA") if im.mode == "P" else im))
        return out


def same_pixels(a: bytes, b: bytes) -> bool:
    fa, fb = frames(a), frames(b)
    return len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))


def packet_value(packet: bytes) -> list[str]:
    """TC260:AIGC values read with plain defusedxml (independent of labeler.metadata.xmp)."""
    text = packet[packet.index(b"<x:xmpmeta"):packet.rindex(b"</x:xmpmeta>") + 12]
    root = DET.fromstring(text, forbid_dtd=True)
    return [e.text for e in root.iter(f"{{{xmp.TC260_NS}}}AIGC")]


def jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """(marker, whole segment bytes) up to SOS, and the SOS offset."""
    out, pos = [], 2
    while data[pos + 1] != 0xDA:
        length = struct.unpack_from(">H", data, pos + 2)[0]
        out.append((data[pos + 1], data[pos:pos + 2 + length]))
        pos += 2 + length
    return out, pos


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        length = struct.unpack_from(">I", data, pos)[0]
        out.append((data[pos + 4:pos + 8], data[pos:pos + 12 + length]))
        pos += 12 + length
    return out


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        out.append((cid, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def gif_blocks(data: bytes) -> list[tuple[str, int]]:
    """('ext-XX' | 'app:<id>' | 'image' | 'trailer', offset) walked the way a GIF decoder does."""
    pos = 13 + (3 * (1 << ((data[10] & 7) + 1)) if data[10] & 0x80 else 0)
    out = []
    while pos < len(data):
        kind = data[pos]
        if kind == 0x3B:
            out.append(("trailer", pos))
            break
        if kind == 0x21:
            name = f"ext-{data[pos + 1]:02x}"
            if data[pos + 1] == 0xFF:
                name = "app:" + data[pos + 3:pos + 14].decode("latin-1")
            out.append((name, pos))
            pos += 2
        else:
            out.append(("image", pos))
            pos += 10 + (3 * (1 << ((data[pos + 9] & 7) + 1)) if data[pos + 9] & 0x80 else 0) + 1
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
    return out


def exif_with(user_comment: bytes | None = None, description: str | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0132] = "2025:09:01 10:00:00"  # DateTime
    if description is not None:
        exif[0x010E] = description
    if user_comment is not None:
        exif.get_ifd(0x8769)[0x9286] = user_comment
    return exif


def srgb() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def with_xmp(packet: str) -> bytes:
    """A JPEG carrying ``packet`` as its XMP (written by Pillow)."""
    return encode(picture(), "JPEG", xmp=packet.encode())


def labeled_packet(inner: str) -> str:
    return FOREIGN_XMP.decode().replace(" </rdf:RDF>", inner + " </rdf:RDF>")


# -- JPEG -------------------------------------------------------------------------------------------
def test_jpeg_write_read_keeps_exif_icc_and_scan():
    src = encode(picture(), "JPEG", quality=88, exif=exif_with(), icc_profile=srgb())
    out = label(jpeg, src)
    assert labels(jpeg, out) == [FoundLabel("xmp-tc260", VALUE, "APP1 XMP packet")]
    before, sos_in = jpeg_segments(src)
    after, sos_out = jpeg_segments(out)
    assert src[sos_in:] == out[sos_out:]  # entropy-coded data and EOI untouched
    markers = [m for m, _ in after]
    assert markers[:3] == [0xE0, 0xE1, 0xE1]  # JFIF, Exif, then the new XMP
    assert after[2][1][4:33] == jpeg.XMP_HEADER
    assert [seg for i, seg in enumerate(after) if i != 2] == before  # EXIF, ICC, tables byte-identical
    assert same_pixels(src, out)
    with Image.open(io.BytesIO(out)) as im:
        assert packet_value(im.info["xmp"]) == [VALUE]
        assert im.info["icc_profile"] == srgb()
        assert im.getexif()[0x010F] == "TestCam"
    assert len(out) - len(src) < 600


def test_jpeg_relabel_leaves_one_label():
    once = label(jpeg, encode(picture(), "JPEG", exif=exif_with()))
    twice = label(jpeg, once, VALUE2)
    assert [f.raw for f in labels(jpeg, twice)] == [VALUE2]
    assert sum(seg[4:33] == jpeg.XMP_HEADER for _, seg in jpeg_segments(twice)[0]) == 1
    assert len(twice) == len(once)  # same-size value: the segment is edited in place
    thrice = label(jpeg, twice, LONGER)
    assert [f.raw for f in labels(jpeg, thrice)] == [LONGER]
    assert same_pixels(once, thrice)


def test_jpeg_foreign_xmp_properties_survive():
    src = with_xmp(FOREIGN_XMP.decode())
    out = label(jpeg, src)
    with Image.open(io.BytesIO(out)) as im:
        packet = im.info["xmp"]
    at = FOREIGN_XMP.index(b"</rdf:RDF>")
    assert packet.startswith(FOREIGN_XMP[:at]) and packet.endswith(FOREIGN_XMP[at:])
    root = DET.fromstring(packet[packet.index(b"<x:xmpmeta"):packet.rindex(b">") - 19], forbid_dtd=True)
    assert root.find(".//dc:title/rdf:Alt/rdf:li", NS).text == "Harbour"
    assert root.find(".//rdf:Description", NS).get(f"{{{NS['xmp']}}}CreatorTool") == "Studio 7"
    assert packet_value(packet) == [VALUE]
    assert same_pixels(src, out)


def test_jpeg_packet_too_big_for_app1_is_a_clean_error():
    filler = "x" * (jpeg.MAX_PACKET - len(FOREIGN_XMP) - 300)
    src = with_xmp(labeled_packet(f'  <rdf:Description rdf:about="" xmlns:f="http://f/"><f:f>{filler}</f:f>'
                                  "</rdf:Description>\n"))
    with pytest.raises(LabelerError, match="app1"):
        label(jpeg, src)


def test_jpeg_mpo_second_image_offsets_follow_the_xmp_growth():
    # Pillow writes the MPF index before the XMP APP1; growing the XMP must move the MP offsets.
    first, second = picture(seed=2), picture(seed=3)
    src = encode(first, "MPO", save_all=True, append_images=[second], xmp=FOREIGN_XMP)
    out = label(jpeg, src)
    assert len(out) > len(src)
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "MPO" and im.n_frames == 2
    assert same_pixels(src, out)


@pytest.mark.parametrize(
    "packet, expected",
    [
        (labeled_packet(f'  <rdf:Description rdf:about="" xmlns:TC260="{xmp.TC260_NS}">'
                        f'<TC260:AIGC>{VALUE.replace(chr(34), "&quot;")}</TC260:AIGC>'
                        "</rdf:Description>\n"), VALUE),
        (labeled_packet(f'  <rdf:Description rdf:about="" xmlns:TC260="{xmp.TC260_NS}">'
                        f"<TC260:AIGC>{WRAPPED}</TC260:AIGC></rdf:Description>\n"), WRAPPED),
        (labeled_packet(f'  <rdf:Description rdf:about="" xmlns:C260="{xmp.TC260_NS}" '
                        f'C260:AIGC="{VALUE.replace(chr(34), "&quot;")}"/>\n'), VALUE),
    ],
    ids=["escaped-bare", "wrapped", "attribute-C260"],
)
def test_jpeg_wild_xmp_shapes_are_found_and_replaced(packet, expected):
    src = with_xmp(packet)
    assert labels(jpeg, src) == [FoundLabel("xmp-tc260", expected, "APP1 XMP packet")]
    out = label(jpeg, src, VALUE2)
    assert [f.raw for f in labels(jpeg, out)] == [VALUE2]


def test_jpeg_exif_usercomment_and_imagedescription():
    vendor = '{"ServiceProvider":"cloud-x","ServiceUser":"u1","ContentId":"c-9","Label":"AIGC"}'
    comment = b"ASCII\x00\x00\x00" + WRAPPED.encode()
    src = encode(picture(), "JPEG", exif=exif_with(comment, vendor))
    found = labels(jpeg, src)
    assert found == [
        FoundLabel("exif-usercomment", WRAPPED, "APP1 Exif UserComment"),
        FoundLabel("exif-imagedescription", vendor, "APP1 Exif ImageDescription", standard=False),
    ]
    out = label(jpeg, src)
    assert [(f.carrier, f.raw, f.standard) for f in labels(jpeg, out)] == [
        ("xmp-tc260", VALUE, True),  # the UserComment label blanked in place: one label per file
        ("exif-imagedescription", vendor, False),
    ]
    unicode = b"UNICODE\x00" + VALUE.encode("utf-16-le")
    assert [f.raw for f in labels(jpeg, encode(picture(), "JPEG", exif=exif_with(unicode)))] == [VALUE]
    vendor_key = b"ASCII\x00\x00\x00" + b'{"aigc_label_type":1,"provider":"x"}'
    vendor_jpeg = encode(picture(), "JPEG", exif=exif_with(vendor_key))
    assert [(f.carrier, f.standard) for f in labels(jpeg, vendor_jpeg)] == [("exif-usercomment", False)]
    plain = encode(picture(), "JPEG", exif=exif_with(b"ASCII\x00\x00\x00holiday", "a photo {of} a cat"))
    assert labels(jpeg, plain) == []


def splice_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    return data[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def test_jpeg_app_blob_is_reported_not_standard():
    src = splice_segment(encode(picture(), "JPEG"), 0xEA, b"AIGC" + VALUE.encode() + b"\x00")
    assert labels(jpeg, src) == [FoundLabel("app-blob", "AIGC" + VALUE, "APP10 segment at offset 2", False)]
    src2 = splice_segment(encode(picture(), "JPEG"), 0xEB, b"JP\x00\x00vendor" + WRAPPED.encode())
    assert [(f.carrier, f.raw, f.standard) for f in labels(jpeg, src2)] == [("app-blob", WRAPPED, False)]
    out = label(jpeg, src)
    assert [(f.carrier, f.standard) for f in labels(jpeg, out)] == [("xmp-tc260", True), ("app-blob", False)]


def test_jpeg_extended_xmp_is_ignored_and_kept():
    ext = b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 32 + struct.pack(">II", 10, 0) + b"<x>ab</x>"
    src = splice_segment(encode(picture(), "JPEG"), 0xE1, ext)
    assert labels(jpeg, src) == []
    out = label(jpeg, src)
    assert ext in out and [f.raw for f in labels(jpeg, out)] == [VALUE]


@pytest.mark.parametrize("cut", [3, 10, 21, 150, 400])
def test_jpeg_truncated_in_headers_is_corrupt(cut):
    data = encode(picture(), "JPEG", exif=exif_with(), icc_profile=srgb())
    assert cut < jpeg_segments(data)[1]
    with pytest.raises(CorruptFile):
        labels(jpeg, data[:cut])
    with pytest.raises(CorruptFile):
        label(jpeg, data[:cut])


def test_jpeg_truncated_in_scan_still_reads_and_writes():
    data = label(jpeg, encode(picture(), "JPEG"))
    cut = data[:len(data) - 300]
    assert [f.raw for f in labels(jpeg, cut)] == [VALUE]
    assert label(jpeg, cut, VALUE2).endswith(cut[-300:])


def test_jpeg_garbage_between_segments_is_corrupt():
    data = encode(picture(), "JPEG")
    with pytest.raises(CorruptFile, match="no marker"):
        labels(jpeg, data[:20] + b"junk" + data[20:])


@pytest.mark.parametrize("packet", ["xxe", "laughs"])
def test_jpeg_hostile_xmp_is_unsafe(packet):
    from test_xmp import LAUGHS, XXE

    src = with_xmp((XXE if packet == "xxe" else LAUGHS).decode())
    with pytest.raises(UnsafeInput):
        labels(jpeg, src)
    with pytest.raises(UnsafeInput):
        label(jpeg, src)


@pytest.mark.corpus
def test_corpus_photos_round_trip_with_identical_scan_data():
    photos = sorted(corpus_path("images").glob("mate-*.jpg"))
    assert photos
    for path in photos:
        src = path.read_bytes()
        out = label(jpeg, src)
        assert [f.raw for f in labels(jpeg, out)] == [VALUE], path.name
        before, sos_in = jpeg_segments(src)
        after, sos_out = jpeg_segments(out)
        assert src[sos_in:] == out[sos_out:], path.name
        assert [s for s in after if s[1][4:33] != jpeg.XMP_HEADER] == [
            s for s in before if s[1][4:33] != jpeg.XMP_HEADER
        ], path.name
        assert [f.raw for f in labels(jpeg, label(jpeg, out, VALUE2))] == [VALUE2]


# -- PNG --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "I;16", "P"])
def test_png_write_read_all_modes(mode):
    src = encode(picture(mode), "PNG")
    out = label(png, src)
    found = labels(png, out)
    assert [(f.carrier, f.raw, f.standard) for f in found] == [("xmp-tc260", VALUE, True)]
    before, after = png_chunks(src), png_chunks(out)
    xmp_at = next(i for i, (t, _) in enumerate(after) if t == b"iTXt")
    assert after[xmp_at + 1][0] == b"IDAT" and after[xmp_at - 1][0] != b"IDAT"
    assert after[:xmp_at] + after[xmp_at + 1:] == before  # every other chunk byte-identical
    raw = after[xmp_at][1]
    assert zlib.crc32(raw[4:-4]) == struct.unpack(">I", raw[-4:])[0]
    assert raw[8:8 + 21] == b"XML:com.adobe.xmp\x00\x00\x00\x00"  # uncompressed, no language
    assert same_pixels(src, out)
    with Image.open(io.BytesIO(out)) as im:
        assert packet_value(im.info["XML:com.adobe.xmp"].encode()) == [VALUE]
    twice = label(png, out, VALUE2)
    assert [f.raw for f in labels(png, twice)] == [VALUE2]
    assert [t for t, _ in png_chunks(twice)].count(b"iTXt") == 1


def test_png_text_chunks_are_read_and_removed_on_write():
    for kind in ("tEXt", "zTXt", "iTXt"):
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "Painter")
        if kind == "iTXt":
            info.add_itxt("AIGC", VALUE, zip=True)
        else:
            info.add_text("AIGC", VALUE, zip=kind == "zTXt")
        src = encode(picture(), "PNG", pnginfo=info)
        assert [t for t, _ in png_chunks(src)].count(kind.encode()) >= 1
        found = labels(png, src)
        assert [(f.carrier, f.raw) for f in found] == [("png-text", VALUE)], kind
        assert "(keyword AIGC)" in found[0].location
        out = label(png, src, VALUE2)
        assert [(f.carrier, f.raw) for f in labels(png, out)] == [("xmp-tc260", VALUE2)]
        with Image.open(io.BytesIO(out)) as im:
            assert im.text.get("Software") == "Painter" and "AIGC" not in im.text
        assert same_pixels(src, out)


def test_png_foreign_compressed_xmp_is_edited_and_kept():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", FOREIGN_XMP.decode(), lang="en", tkey="XMP", zip=True)
    src = encode(picture("RGBA"), "PNG", pnginfo=info)
    assert labels(png, src) == []
    out = label(png, src)
    chunks = png_chunks(out)
    raw = next(c for t, c in chunks if t == b"iTXt")
    assert raw[8:8 + 19] == b"XML:com.adobe.xmp\x00\x00"  # now uncompressed
    assert raw[28:28 + 7] == b"en\x00XMP\x00"  # language tag and translated keyword kept
    packet = raw[35:-4]
    at = FOREIGN_XMP.index(b"</rdf:RDF>")
    assert packet.startswith(FOREIGN_XMP[:at]) and packet.endswith(FOREIGN_XMP[at:])
    assert packet_value(packet) == [VALUE]
    assert [t for t, _ in chunks].index(b"iTXt") == [t for t, _ in png_chunks(src)].index(b"iTXt")


def test_png_exif_chunk_user_comment():
    src = encode(picture(), "PNG", exif=exif_with(b"ASCII\x00\x00\x00" + WRAPPED.encode()))
    assert b"eXIf" in src
    assert labels(png, src) == [FoundLabel("exif-usercomment", WRAPPED, "eXIf UserComment")]


def test_png_apng_frames_survive():
    frames_in = [picture("RGBA", seed=s) for s in (4, 5, 6)]
    src = encode(frames_in[0], "PNG", save_all=True, append_images=frames_in[1:], duration=100)
    out = label(png, src)
    types = [t for t, _ in png_chunks(out)]
    assert types.index(b"iTXt") < types.index(b"fcTL") < types.index(b"IDAT")
    assert same_pixels(src, out) and len(frames(out)) == 3


def test_png_crc_rules():
    out = label(png, encode(picture(), "PNG"))
    at = out.index(b"iTXt") + 40
    broken = out[:at] + bytes([out[at] ^ 1]) + out[at + 1:]
    with pytest.raises(CorruptFile, match="crc"):
        labels(png, broken)
    # a bad CRC on a chunk that is only copied is kept as it is
    src = encode(picture(), "PNG")
    private = b"prVt" + b"payload"
    chunk = struct.pack(">I", 7) + private + struct.pack(">I", zlib.crc32(private) ^ 0xFFFF)
    bad = src[:33] + chunk + src[33:]
    assert chunk in label(png, bad)


def test_png_truncated_and_structurally_broken():
    data = label(png, encode(picture(), "PNG"))
    idat = data.index(b"IDAT") - 4
    for cut in (5, 20, 60, idat - 3, idat + 20, len(data) // 2, len(data) - 5):
        with pytest.raises(CorruptFile) as caught:
            labels(png, data[:cut])
        # cut in or after the picture data: what came before is read all the same (the XMP is before it)
        found = getattr(caught.value, "found", None)
        assert ([f.raw for f in found] == [VALUE]) if cut > idat else found is None
        with pytest.raises(CorruptFile):  # never written
            label(png, data[:cut])
    no_ihdr = data[:8] + data[33:]
    with pytest.raises(CorruptFile, match="IHDR"):
        labels(png, no_ihdr)


def png_with_chunk(ctype: bytes, body: bytes) -> bytes:
    src = encode(picture(size=(8, 8)), "PNG")
    chunk = struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))
    return src[:33] + chunk + src[33:]


def test_png_ztxt_bomb_is_unsafe():
    bomb = zlib.compress(b"\x00" * (64 << 20), 9)
    assert len(bomb) < 100_000
    src = png_with_chunk(b"zTXt", b"AIGC\x00\x00" + bomb)
    with pytest.raises(UnsafeInput, match="inflates"):
        labels(png, src)
    xmp_bomb = png_with_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + bomb)
    with pytest.raises(UnsafeInput):
        labels(png, xmp_bomb)
    with pytest.raises(UnsafeInput):
        label(png, xmp_bomb)


def test_png_50mb_xmp_packet_is_unsafe():
    packet = FOREIGN_XMP.replace(b"</x:xmpmeta>", b"<!--" + b"x" * (50 << 20) + b"--></x:xmpmeta>")
    src = png_with_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet)
    with pytest.raises(UnsafeInput):
        labels(png, src)
    with pytest.raises(UnsafeInput):
        label(png, src)


def test_png_hostile_xmp_is_unsafe():
    from test_xmp import LAUGHS, XXE

    for packet in (XXE, LAUGHS):
        src = png_with_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet)
        with pytest.raises(UnsafeInput):
            labels(png, src)


# -- WebP -------------------------------------------------------------------------------------------
WEBP_CASES = {
    "lossy": ("RGB", {"quality": 80}),
    "lossless": ("RGB", {"lossless": True}),
    "lossy-alpha": ("RGBA", {"quality": 80}),
    "lossless-alpha": ("RGBA", {"lossless": True}),
}


@pytest.mark.parametrize("case", list(WEBP_CASES))
def test_webp_write_read(case):
    mode, kwargs = WEBP_CASES[case]
    image = picture(mode)
    src = encode(image, "WEBP", **kwargs)
    out = label(webp, src)
    assert [(f.carrier, f.raw) for f in labels(webp, out)] == [("xmp-tc260", VALUE)]
    assert struct.unpack_from("<I", out, 4)[0] == len(out) - 8
    chunks = riff_chunks(out)
    assert chunks[0][0] == b"VP8X" and chunks[-1][0] == b"XMP "
    flags = chunks[0][1][0]
    assert flags & webp.FLAG_XMP
    assert bool(flags & webp.FLAG_ALPHA) == (mode == "RGBA")
    width = int.from_bytes(chunks[0][1][4:7], "little") + 1
    height = int.from_bytes(chunks[0][1][7:10], "little") + 1
    assert (width, height) == image.size
    image_chunks = [c for c in riff_chunks(src) if c[0] != b"VP8X"]
    assert [c for c in chunks if c[0] not in (b"VP8X", b"XMP ")] == image_chunks  # bitstream untouched
    assert same_pixels(src, out)
    with Image.open(io.BytesIO(out)) as im:
        assert packet_value(im.info["xmp"]) == [VALUE]
    twice = label(webp, out, VALUE2)
    assert [f.raw for f in labels(webp, twice)] == [VALUE2]
    assert [c[0] for c in riff_chunks(twice)].count(b"XMP ") == 1


def test_webp_exif_icc_kept_and_xmp_after_exif():
    comment = b"ASCII\x00\x00\x00" + WRAPPED.encode()
    src = encode(picture(), "WEBP", exif=exif_with(comment), icc_profile=srgb(), xmp=FOREIGN_XMP)
    found = labels(webp, src)
    assert [(f.carrier, f.raw) for f in found] == [("exif-usercomment", WRAPPED)]
    out = label(webp, src)
    before, after = riff_chunks(src), riff_chunks(out)
    assert [c[0] for c in after] == [c[0] for c in before]
    ids = [c[0] for c in after]
    assert ids.index(b"EXIF") < ids.index(b"XMP ")
    # the EXIF chunk keeps its size and layout; only the UserComment's label text is blanked
    assert len(dict(after)[b"EXIF"]) == len(dict(before)[b"EXIF"]) and b"Label" not in dict(after)[b"EXIF"]
    assert dict(after)[b"ICCP"] == dict(before)[b"ICCP"]
    assert after[0][1] == bytes([before[0][1][0] | webp.FLAG_XMP]) + before[0][1][1:]
    packet = dict(after)[b"XMP "]
    assert b"Harbour" in packet and packet_value(packet) == [VALUE]
    assert [(f.carrier, f.raw) for f in labels(webp, out)] == [("xmp-tc260", VALUE)]


def test_webp_simple_file_with_exif_gets_xmp_after_it():
    src = encode(picture(), "WEBP", exif=exif_with())
    ids = [c[0] for c in riff_chunks(src)]
    out = label(webp, src)
    out_ids = [c[0] for c in riff_chunks(out)]
    assert out_ids[:len(ids)] == ids and out_ids[-1] == b"XMP "


def test_webp_animated():
    images = [picture("RGBA", seed=s) for s in (7, 8, 9)]
    src = encode(images[0], "WEBP", save_all=True, append_images=images[1:], duration=80, lossless=True)
    out = label(webp, src)
    both = webp.FLAG_XMP | webp.FLAG_ANIMATION
    assert riff_chunks(out)[0][1][0] & both == both
    assert same_pixels(src, out) and len(frames(out)) == 3
    assert [f.raw for f in labels(webp, out)] == [VALUE]


def test_webp_odd_packet_is_padded():
    for value in (VALUE, VALUE + " ", '{"Label":"1"}', '{"Label":"1"} '):
        out = label(webp, encode(picture(), "WEBP"), value)
        assert len(out) % 2 == 0 and struct.unpack_from("<I", out, 4)[0] == len(out) - 8
        assert [f.raw for f in labels(webp, out)] == [value]
        assert same_pixels(out, encode(picture(), "WEBP"))


def test_webp_truncated_is_corrupt():
    data = label(webp, encode(picture(), "WEBP"))
    for cut in (8, 20, len(data) // 2, len(data) - 3):
        with pytest.raises(CorruptFile):
            labels(webp, data[:cut])


# -- TIFF -------------------------------------------------------------------------------------------
def big_endian_tiff(image: Image.Image) -> bytes:
    """A minimal uncompressed RGB TIFF in Motorola byte order (TIFF 6.0 section 6 baseline RGB)."""
    w, h = image.size
    pixels = image.convert("RGB").tobytes()
    entries = [
        (256, 3, 1, w << 16), (257, 3, 1, h << 16), (258, 3, 3, None), (259, 3, 1, 1 << 16),
        (262, 3, 1, 2 << 16), (273, 4, 1, None), (277, 3, 1, 3 << 16), (278, 3, 1, h << 16),
        (279, 4, 1, len(pixels)),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    bps_at, pix_at = 8 + ifd_size, 8 + ifd_size + 6
    blob = bytearray(b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", len(entries)))
    for tag, typ, count, val in entries:
        val = {258: bps_at, 273: pix_at}.get(tag, val)
        blob += struct.pack(">HHII", tag, typ, count, val)
    blob += struct.pack(">I", 0) + struct.pack(">HHH", 8, 8, 8) + pixels
    return bytes(blob)


TIFF_CASES = {
    "le-raw": lambda: encode(picture(), "TIFF"),
    "le-lzw-rgba": lambda: encode(picture("RGBA"), "TIFF", compression="tiff_lzw"),
    "le-deflate-16bit": lambda: encode(picture("I;16"), "TIFF", compression="tiff_adobe_deflate"),
    "be-raw": lambda: big_endian_tiff(picture()),
}


def tag700(im: Image.Image) -> bytes:
    value = im.tag_v2[700]  # Pillow gives bytes, or a tuple of bytes for type UNDEFINED
    return b"".join(value) if isinstance(value, tuple) else bytes(value)


def strip_offsets(data: bytes) -> tuple:
    with Image.open(io.BytesIO(data)) as im:
        return tuple(im.tag_v2.get(273, ())), tuple(im.tag_v2.get(279, ()))


@pytest.mark.parametrize("case", list(TIFF_CASES))
def test_tiff_write_read(case):
    src = TIFF_CASES[case]()
    out = label(tiff, src)
    assert labels(tiff, out) == [FoundLabel("xmp-tc260", VALUE, "IFD0 tag 700 XMP packet")]
    # Before the appended part only the header's IFD0 offset changed.
    assert out.startswith(src[:4]) and out[8:len(src)] == src[8:]
    assert strip_offsets(out) == strip_offsets(src)
    assert same_pixels(src, out)
    with Image.open(io.BytesIO(out)) as im:
        assert packet_value(tag700(im)) == [VALUE]
    same_size = label(tiff, out, VALUE2)
    assert len(same_size) == len(out)  # the packet is rewritten in place
    assert [f.raw for f in labels(tiff, same_size)] == [VALUE2]
    longer = label(tiff, same_size, LONGER)
    assert [f.raw for f in labels(tiff, longer)] == [LONGER]
    assert b"img-2025-000043" not in longer  # the old packet was wiped, not left behind
    assert same_pixels(src, longer) and strip_offsets(longer) == strip_offsets(src)


def test_tiff_foreign_xmp_and_multipage():
    pages = [picture(seed=s) for s in (10, 11, 12)]
    src = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:], tiffinfo={700: FOREIGN_XMP})
    out = label(tiff, src)
    with Image.open(io.BytesIO(out)) as im:
        packet = tag700(im)
        assert im.n_frames == 3
    assert b"Harbour" in packet and b'xmp:CreatorTool="Studio 7"' in packet
    assert packet_value(packet) == [VALUE]
    assert same_pixels(src, out)


def test_tiff_bigtiff_refused_and_ifd_loop_detected():
    with pytest.raises(UnsupportedFormat):
        labels(tiff, b"II\x2b\x00\x08\x00\x00\x00" + bytes(16))
    src = bytearray(encode(picture(), "TIFF"))
    ifd0 = struct.unpack_from("<I", src, 4)[0]
    count = struct.unpack_from("<H", src, ifd0)[0]
    struct.pack_into("<I", src, ifd0 + 2 + 12 * count, ifd0)  # next IFD = itself
    with pytest.raises(CorruptFile, match="loops"):
        labels(tiff, bytes(src))
    with pytest.raises(CorruptFile):
        labels(tiff, b"II\x2a\x00\xff\xff\x00\x00")


# -- GIF --------------------------------------------------------------------------------------------
def test_gif_write_read_animated():
    images = [picture(seed=s).quantize(32) for s in (13, 14, 15)]
    src = encode(images[0], "GIF", save_all=True, append_images=images[1:], loop=0, duration=90)
    out = label(gif, src)
    assert labels(gif, out) == [
        FoundLabel("xmp-tc260", VALUE, f"XMP application extension at offset {out.index(b'XMP DataXMP') - 3}")
    ]
    blocks = [name for name, _ in gif_blocks(out)]
    assert blocks[:3] == ["app:NETSCAPE2.0", "app:XMP DataXMP", "ext-f9"]
    assert [name for name, _ in gif_blocks(src)] == [b for b in blocks if b != "app:XMP DataXMP"]
    at = out.index(b"XMP DataXMP") + 11
    end = out.index(gif.MAGIC_TRAILER, at)
    assert packet_value(out[at:end]) == [VALUE]
    assert same_pixels(src, out) and len(frames(out)) == 3
    twice = label(gif, out, VALUE2)
    assert [f.raw for f in labels(gif, twice)] == [VALUE2] and twice.count(b"XMP DataXMP") == 1


def test_gif87a_becomes_89a_and_comment_blob():
    src = bytearray(encode(picture("P"), "GIF"))
    src[:6] = b"GIF87a"
    out = label(gif, bytes(src))
    assert out[:6] == b"GIF89a" and same_pixels(bytes(src), out)
    body = b"AIGC" + VALUE.encode()
    pieces = [body[i:i + 255] for i in range(0, len(body), 255)]
    comment = b"\x21\xfe" + b"".join(bytes([len(p)]) + p for p in pieces)
    pos = gif_blocks(out)[0][1]
    with_comment = out[:pos] + comment + b"\x00" + out[pos:]
    assert [(f.carrier, f.raw, f.standard) for f in labels(gif, with_comment)] == [
        ("xmp-tc260", VALUE, True), ("app-blob", "AIGC" + VALUE, False)
    ]


def test_gif_truncated_is_corrupt():
    data = label(gif, encode(picture("P"), "GIF"))
    for cut in (5, 12, 400, len(data) - 10):
        with pytest.raises(CorruptFile):
            labels(gif, data[:cut])


# -- all formats -----------------------------------------------------------------------------------
@pytest.mark.parametrize("module, fmt", CODES, ids=[f for _, f in CODES])
def test_write_label_end_to_end(tmp_path, module, fmt):
    src = tmp_path / f"in.{fmt.lower()}"
    src.write_bytes(sample(fmt))
    dst = tmp_path / f"out.{fmt.lower()}"
    result = write_label(src, dst, VALUE)
    assert result.carrier == "xmp-tc260" and result.format == fmt.lower()
    assert result.bytes_added == dst.stat().st_size - src.stat().st_size
    assert 0 < result.bytes_added < 900
    assert same_pixels(src.read_bytes(), dst.read_bytes())


@pytest.mark.exiftool
@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")
@pytest.mark.parametrize("module, fmt", CODES, ids=[f for _, f in CODES])
def test_exiftool_reads_the_label(tmp_path, module, fmt):
    path = tmp_path / f"labeled.{fmt.lower()}"
    path.write_bytes(label(module, label(module, sample(fmt), VALUE2)))
    proc = subprocess.run([EXIFTOOL, "-s3", "-XMP-TC260:AIGC", str(path)], capture_output=True, text=True)
    assert proc.stdout.rstrip("\n") == VALUE
    validate = [EXIFTOOL, "-validate", "-warning", "-s3", str(path)]
    warnings = subprocess.run(validate, capture_output=True, text=True)
    bad = [w for w in warnings.stdout.splitlines() if "XMP" in w or "Truncated" in w or "Corrupt" in w]
    assert not bad


@pytest.mark.corpus
@pytest.mark.parametrize(
    "name, module", [("tiff_poc.tiff", tiff), ("libpng-test.png", png), ("mars.webp", webp), ("C.jpg", jpeg)]
)
def test_hostile_and_odd_corpus_files_give_clean_results(name, module):
    data = corpus_path("provenance", name).read_bytes()
    try:
        assert isinstance(labels(module, data), list)
        out = label(module, data)
    except LabelerError as exc:
        assert "\n" not in str(exc)
        return
    assert [f.raw for f in labels(module, out) if f.standard] == [VALUE]


@pytest.mark.parametrize("module, fmt", CODES, ids=[f for _, f in CODES])
def test_mutated_files_raise_only_labeler_errors(module, fmt):
    base = label(module, encode(picture("P" if fmt == "GIF" else "RGB", size=(24, 16)), fmt), VALUE)
    rng = random.Random(fmt)
    for _ in range(150):
        data = bytearray(base)
        kind = rng.random()
        if kind < 0.3:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(data))
                data[at] = rng.choice([0, 0xFF, rng.randrange(256)])
        for call in (lambda d: labels(module, d), lambda d: label(module, d, VALUE2)):
            try:
                call(bytes(data))
            except LabelerError as exc:
                assert "\n" not in str(exc)

