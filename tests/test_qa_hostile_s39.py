"""QA: hostile containers against verify's C2PA layer and the image decoder (December 2026, s39).

Found by a pass of hand-made hostile files (XXE / billion laughs / deep XMP in every carrier,
decompression bombs, chunk floods, huge declared sizes) through ``aigc verify`` and ``aigc label``:

* a PNG or WAV of a million empty chunks (12 MB) kept verify's C2PA layer busy for 15-19 s, and the time
  grows with the file: c2pa-rs reads a stream through one Python callback per chunk header, where the
  metadata readers stop at :data:`labeler.limits.MAX_BOXES` chunks. The layer now refuses such a file
  after at most that many chunk headers (``labeler.provenance.c2pa_walk.too_many_chunks``), with
the reason; the
  visible layer's decode (Pillow walks the chunks in Python, ~4 s) refuses it too. An MP4 whose moov
  holds a million tracks was worse: c2pa-rs ran for over ten minutes, growing, and the process ignored
  SIGTERM (the CLI's interrupt was raised inside a c2pa stream callback and dropped); the same bound
  now covers ISO-BMFF boxes;
* a PNG with a 100 MB iTXt (XMP) chunk cost ~690 MB of memory in verify's visible layer, a WebP with a
  100 MB XMP chunk ~485 MB: Pillow reads the chunk whole and copies it. The decoder now refuses a chunk
  that holds no pixels over :data:`labeler.limits.MAX_SIDE_CHUNK` bytes before Pillow sees it.

Every file here is generated in the test from the committed samples.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from detectors.c2pa import read_c2pa
from labeler import limits
from labeler.errors import UnsafeInput
from labeler.media.image import read_image, read_luma_pixels

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with(chunks: bytes) -> bytes:
    """samples/photo.png with ``chunks`` right after its IHDR (signature 8 + IHDR 25 bytes)."""
    png = (SAMPLES / "photo.png").read_bytes()
    return png[:33] + chunks + png[33:]


def _wav_with(chunks: bytes) -> bytes:
    """samples/speech.wav's fmt and data chunks with ``chunks`` between them, in a fresh RIFF form."""
    wav = (SAMPLES / "speech.wav").read_bytes()
    body = b"WAVE" + wav[12:36] + chunks + wav[36:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("kind", ["png", "wav"])
def test_c2pa_layer_refuses_a_chunk_flood(tmp_path: Path, kind: str) -> None:
    """One chunk past MAX_BOXES: the C2PA layer says why it did not read the file (it was handed to
    c2pa-rs, one Python callback per chunk, and read as holding no manifest)."""
    count = limits.MAX_BOXES + 1
    if kind == "png":
        data = _png_with(_png_chunk(b"teXt", b"") * count)
    else:
        data = _wav_with(b"junk\0\0\0\0" * count)
    path = tmp_path / f"flood.{kind}"
    path.write_bytes(data)
    layer = read_c2pa(path)
    assert not layer.present
    assert layer.error == f"C2PA: not read: {'png' if kind == 'png' else 'riff'} file has more than " \
                          f"{limits.MAX_BOXES} chunks (unsafe input)"
    mime = "image/png" if kind == "png" else "audio/wav"
    assert read_c2pa(data, mime=mime).error == layer.error


def test_c2pa_layer_refuses_an_mp4_box_flood(tmp_path: Path) -> None:
    """samples/clip.mp4 with MAX_BOXES + 1 empty ``trak`` boxes in its ``moov`` (0.8 MB): c2pa-rs took
    22 s over it (a million: over ten minutes, and its process ignored SIGTERM meanwhile)."""
    mp4 = (SAMPLES / "clip.mp4").read_bytes()
    start = 32  # after ftyp
    size, kind = struct.unpack_from(">I4s", mp4, start)
    assert kind == b"moov"
    extra = struct.pack(">I4s", 8, b"trak") * (limits.MAX_BOXES + 1)
    moov = struct.pack(">I4s", size + len(extra), b"moov") + mp4[start + 8:start + size] + extra
    path = tmp_path / "flood.mp4"
    path.write_bytes(mp4[:start] + moov + mp4[start + size:])
    layer = read_c2pa(path)
    assert layer.error == f"C2PA: not read: mp4 file has more than {limits.MAX_BOXES} boxes (unsafe input)"
    assert read_c2pa(SAMPLES / "clip.mp4").error is None


def test_image_decoder_refuses_a_chunk_flood() -> None:
    """Pillow walks PNG chunks in Python (~4 s for a million empty ones): refused past MAX_BOXES."""
    data = _png_with(_png_chunk(b"teXt", b"") * (limits.MAX_BOXES + 1))
    with pytest.raises(UnsafeInput, match=rf"^png has more than {limits.MAX_BOXES} chunks$"):
        read_image(data)


def test_c2pa_layer_reads_a_file_with_many_chunks_under_the_limit(tmp_path: Path) -> None:
    """A thousand extra chunks is a file like any other: no refusal, no manifest."""
    path = tmp_path / "many.png"
    path.write_bytes(_png_with(_png_chunk(b"tEXt", b"k\0v") * 1000))
    layer = read_c2pa(path)
    assert (layer.present, layer.error) == (False, None)


def _big_text(size: int) -> bytes:
    return b"XML:com.adobe.xmp\0\0\0\0\0" + b"A" * size


def test_png_side_chunk_over_the_limit_is_refused_before_pillow() -> None:
    data = _png_with(_png_chunk(b"iTXt", _big_text(limits.MAX_SIDE_CHUNK)))
    for reader in (read_image, read_luma_pixels):
        with pytest.raises(UnsafeInput, match=r"^png iTXt chunk at offset 33 is \d+ bytes, over the "
                                              rf"{limits.MAX_SIDE_CHUNK}-byte limit"):
            reader(data)


def test_webp_side_chunk_over_the_limit_is_refused_before_pillow(tmp_path: Path) -> None:
    src = Image.open(SAMPLES / "photo.png").convert("RGB").resize((64, 48))
    path = tmp_path / "big-xmp.webp"
    src.save(path, "WEBP", xmp=b"<x:xmpmeta/>" + b" " * (limits.MAX_SIDE_CHUNK + 1))
    with pytest.raises(UnsafeInput, match=r"^webp XMP chunk at offset \d+ is \d+ bytes, over the "):
        read_image(path)


def test_side_chunks_under_the_limit_and_pixel_chunks_still_decode(tmp_path: Path) -> None:
    """A 1 MB text chunk decodes as before; one pixel chunk larger than the limit decodes."""
    data = _png_with(_png_chunk(b"iTXt", _big_text(1 << 20)))
    assert read_image(data).pixels.shape == read_image(SAMPLES / "photo.png").pixels.shape
    side = 4200  # one stored (uncompressed) IDAT chunk of ~17.7 MB, over the side-chunk limit
    rows = b"\0" + bytes((x * 7) & 0xFF for x in range(side))
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    idat = _png_chunk(b"IDAT", zlib.compress(rows * side, 0))
    assert len(idat) > limits.MAX_SIDE_CHUNK
    path = tmp_path / "big-idat.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + idat + _png_chunk(b"IEND", b""))
    assert read_image(path).pixels.shape[:2] == (side, side)


@pytest.mark.parametrize("kind", ["png", "wav"])
def test_label_does_not_hand_a_chunk_flood_to_c2pa_rs(tmp_path: Path, kind: str, monkeypatch) -> None:
    """The label call's check for a manifest it would invalidate (``holds_manifest``) used c2pa-rs on the
    whole flood first (7-15 s; an MP4 of a million tracks ran for minutes, deaf to SIGTERM): it now stops
    at the chunk headers, and the metadata layer refuses the file in one line."""
    from labeler.provenance import c2pa_sign

    data = (_png_with(_png_chunk(b"teXt", b"") * (limits.MAX_BOXES + 1)) if kind == "png"
            else _wav_with(b"junk\0\0\0\0" * (limits.MAX_BOXES + 1)))

    def refuse(*_args: object) -> bool:
        raise AssertionError("c2pa-rs was handed the flood")

    monkeypatch.setattr(c2pa_sign, "_has_manifest", refuse)
    assert c2pa_sign.holds_manifest(data, kind) is False
    path = tmp_path / f"flood.{kind}"
    path.write_bytes(data)
    assert c2pa_sign.holds_manifest(path, kind) is False
