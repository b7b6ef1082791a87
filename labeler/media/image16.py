"""16-bit PNG and TIFF: what Pillow would truncate to 8 bits, decoded with OpenCV and encoded here.

:func:`labeler.media.image.read_image` and :func:`~labeler.media.image_write.encode_image` call these for
16-bit colour (grey+alpha, RGB, RGBA); 16-bit grey and every 8-bit image go through Pillow.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, TiffImagePlugin

from labeler.errors import CorruptFile, UnsupportedFormat
from labeler.metadata.png import chunk_bytes

EXIF_PREFIX = b"Exif\x00\x00"
# IFD0 tags of a TIFF that describe the picture rather than its storage (TIFF 6.0 section 8,
# EXIF 2.32 4.6.3): these are what a TIFF's "EXIF" is taken to be.
TIFF_DESCRIPTIVE = (270, 271, 272, 274, 305, 306, 315, 316, 33432)
EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def deep_layout(im: Image.Image, data: bytes, fmt: str) -> str | None:
    """Return ``"LA"``, ``"RGB"`` or ``"RGBA"`` when the file holds 16-bit samples Pillow would truncate."""
    if fmt == "png" and len(data) >= 26 and data[12:16] == b"IHDR":
        depth, colour_type = data[24], data[25]
        # PNG spec 11.2.2: colour types 2 (RGB), 4 (grey+alpha), 6 (RGBA)
        if depth == 16:
            return {2: "RGB", 4: "LA", 6: "RGBA"}.get(colour_type)
        return None
    if fmt == "tiff":
        bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
        if isinstance(bits, int):
            bits = (bits,)
        if bits and len(bits) > 1 and all(b == 16 for b in bits):
            return {2: "LA", 3: "RGB", 4: "RGBA"}.get(len(bits))
    return None


def tiff_grey_alpha16(data: bytes) -> bool:
    """Whether a classic TIFF's first image is 16-bit grey+alpha (two 16-bit samples per pixel), a layout
    neither Pillow (it cannot identify the file) nor OpenCV (it returns 8-bit grey) decodes.

    Only IFD0's BitsPerSample (258) and SamplesPerPixel (277) are read (TIFF 6.0 section 2: the header,
    then 12-byte entries whose value sits in the entry when it fits in 4 bytes, else at an offset).
    """
    order = {b"II": "little", b"MM": "big"}.get(data[:2])
    if order is None or len(data) < 8 or int.from_bytes(data[2:4], order) != 42:
        return False

    def number(at: int, width: int) -> int:
        return int.from_bytes(data[at:at + width], order)

    ifd = number(4, 4)
    if ifd + 2 > len(data):
        return False
    fields: dict[int, int] = {}
    for at in range(ifd + 2, min(ifd + 2 + 12 * number(ifd, 2), len(data) - 11), 12):
        tag, kind, count = number(at, 2), number(at + 2, 2), number(at + 4, 4)
        if tag in (258, 277) and kind == 3 and count >= 1:  # SHORT: the first value
            where = at + 8 if count <= 2 else number(at + 8, 4)
            fields[tag] = number(where, 2)
    return fields.get(277) == 2 and fields.get(258) == 16


#: PNG chunks whose damage libpng treats as fatal (PNG 5.4: critical chunks are upper case first).
_PNG_CRITICAL = (b"IHDR", b"PLTE", b"IDAT")


def check_complete(im: Image.Image, data: bytes, fmt: str, deep: bool) -> None:
    """Raise :class:`CorruptFile` when a TIFF's picture data, or a 16-bit PNG's, is cut short or (PNG)
    fails its checksums: the damage a native decoder would otherwise report on stderr, past this
    toolkit's one-line errors.

    libtiff (through Pillow, and OpenCV for 16-bit TIFF) and libpng (through OpenCV for 16-bit PNG) print
    their own lines to the process's stderr before they fail ("TIFFFillStrip: Read error on strip 0",
    "libpng error: IDAT: CRC error", OpenCV's ``[ERROR]`` log), and then fail with "decoder error -2" or
    no reason at all. The checks here are the cheap, exact ones: every TIFF strip or tile of the first
    page inside the file (TIFF 6.0 section 3: StripOffsets 273 / StripByteCounts 279, TileOffsets 324 /
    TileByteCounts 325), and for a 16-bit PNG (8-bit PNGs are decoded by Pillow, which reports the same
    damage itself) every chunk up to IEND whole, with a matching CRC where libpng would stop on a bad
    one. Damage inside a compressed stream whose sizes and checksums hold (a TIFF has no checksums) is
    left to the decoders, and still reaches stderr.
    """
    if fmt == "tiff":
        tags = getattr(im, "tag_v2", None)
        if tags is None:
            return
        for offsets_tag, counts_tag, unit in ((273, 279, "strip"), (324, 325, "tile")):
            offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
            if offsets is None or counts is None:
                continue
            offsets = (offsets,) if isinstance(offsets, int) else tuple(offsets)
            counts = (counts,) if isinstance(counts, int) else tuple(counts)
            for n, (at, size) in enumerate(zip(offsets, counts, strict=False)):
                if at + size > len(data):
                    raise CorruptFile(f"damaged tiff file: image file is truncated ({unit} {n} ends at byte "
                                      f"{at + size} of a {len(data)}-byte file)")
    elif fmt == "png" and deep:
        _check_png_chunks(data)


def _check_png_chunks(data: bytes) -> None:
    """:func:`check_complete` for a PNG: every chunk whole up to IEND (OpenCV reads the file to its end,
    PNG 5.3), and the critical ones with a matching CRC."""
    pos = 8
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + size > len(data):
            break
        if kind == b"IEND":
            return
        if kind in _PNG_CRITICAL:
            crc = struct.unpack(">I", data[pos + 8 + size:pos + 12 + size])[0]
            if zlib.crc32(data[pos + 4:pos + 8 + size]) != crc:
                raise CorruptFile(f"damaged png file: CRC error in the {kind.decode('latin-1')} chunk at "
                                  f"byte {pos}")
        pos += 12 + size
    raise CorruptFile("damaged png file: image file is truncated")


#: The chunks OpenCV's PNG decoder is given (:func:`_pixel_chunks`): what the samples need.
_PNG_PIXEL_CHUNKS = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")


def _pixel_chunks(data: bytes) -> bytes:
    """A PNG with only the chunks that decide its samples (the colour key in ``tRNS`` included): libpng
    prints a warning line on stderr for damaged or odd ancillary chunks that Pillow reads quietly ("tEXt:
    CRC error", "iCCP: known incorrect sRGB profile"), and the metadata is read from the file itself."""
    parts, pos = [data[:8]], 8
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind in _PNG_PIXEL_CHUNKS:
            parts.append(data[pos:pos + 12 + size])
        if kind == b"IEND":
            break
        pos += 12 + size
    return b"".join(parts)


def decode_deep(data: bytes, layout: str, width: int, height: int) -> tuple[np.ndarray, str]:
    import cv2

    if data[:8] == b"\x89PNG\r\n\x1a\n":
        data = _pixel_chunks(data)
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise CorruptFile(f"damaged 16-bit image data: {_one_line(exc)}") from None
    if decoded is None:
        raise CorruptFile("damaged 16-bit image data")
    if decoded.dtype != np.uint16 or decoded.shape[:2] != (height, width):
        raise UnsupportedFormat(f"unexpected 16-bit {layout} layout {decoded.dtype} {decoded.shape}")
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    # OpenCV orders colour as BGR(A) and widens grey+alpha to BGRA.
    if layout == "LA" and channels == 4:
        pixels = decoded[..., [0, 3]]
    elif layout == "RGB" and channels == 3:
        pixels = decoded[..., ::-1]
    elif layout in ("RGB", "RGBA") and channels == 4:
        # RGBA, or RGB whose tRNS colour key OpenCV turned into alpha (as the 8-bit rule does).
        pixels = decoded[..., [2, 1, 0, 3]]
    else:
        raise UnsupportedFormat(f"unexpected 16-bit {layout} layout with {channels} channels")
    return np.ascontiguousarray(pixels), f"{layout};16"


def tiff_tags(exif: bytes | None, xmp: bytes | None) -> TiffImagePlugin.ImageFileDirectory_v2:
    """The TIFF IFD0 entries that carry ``exif`` (its descriptive tags and Exif/GPS sub-IFDs) and ``xmp``."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif:
        parsed = Image.Exif()
        parsed.load(exif)
        for tag in TIFF_DESCRIPTIVE:
            if tag in parsed:
                ifd[tag] = parsed[tag]
        for tag in (EXIF_IFD, GPS_IFD):
            sub = parsed.get_ifd(tag)
            if sub:
                ifd.tagtype[tag] = 4
                ifd[tag] = dict(sub)  # a dict value is written as a sub-IFD
    if xmp:
        ifd.tagtype[700] = 1  # TIFF tag 700 XMP, BYTE (XMP spec part 3, 1.1.6)
        ifd[700] = xmp
    return ifd



_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png16(
    pixels: np.ndarray,
    *,
    icc: bytes | None,
    exif: bytes | None,
    xmp: bytes | None,
    dpi: tuple[float, float] | None,
    chunks: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """Write a 16-bit PNG (grey, grey+alpha, RGB or RGBA), non-interlaced; ``chunks`` (type, data) are
    written before the image data (text and colour chunks of the source: PNG 5.6 allows both there)."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]  # PNG spec 11.2.2
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    parts = [_PNG_SIGNATURE, chunk_bytes(b"IHDR", header)]
    if icc:
        # PNG spec 11.3.3.3 iCCP: profile name, null, compression method 0, zlib data.
        parts.append(chunk_bytes(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if dpi:
        ppm = [int(round(d / 0.0254)) for d in dpi]  # pHYs is in pixels per metre (unit 1)
        parts.append(chunk_bytes(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        # PNG 3rd edition 11.3.6 eXIf: the TIFF structure without the JPEG "Exif\0\0" prefix.
        parts.append(chunk_bytes(b"eXIf", exif.removeprefix(EXIF_PREFIX)))
    if xmp:
        parts.append(chunk_bytes(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp))
    parts += [chunk_bytes(ctype, body) for ctype, body in chunks]
    rows = pixels.astype(">u2", copy=False).reshape(height, width * channels).view(np.uint8)
    compressor = zlib.compressobj(6)
    idat = bytearray()
    for block in _filtered_rows(rows, bpp=2 * channels):
        idat += compressor.compress(block)
        while len(idat) >= 1 << 20:
            parts.append(chunk_bytes(b"IDAT", bytes(idat[: 1 << 20])))
            del idat[: 1 << 20]
    idat += compressor.flush()
    parts.append(chunk_bytes(b"IDAT", bytes(idat)))
    parts.append(chunk_bytes(b"IEND", b""))
    return b"".join(parts)


def _filtered_rows(rows: np.ndarray, bpp: int) -> Iterator[bytes]:
    """Yield PNG-filtered scanlines in bands, each row with the filter that minimises
    the sum of absolute signed bytes (PNG spec 12.8 heuristic; filters from 9.2-9.4)."""
    height, length = rows.shape
    band = max(1, (1 << 20) // max(length, 1))
    previous = np.zeros(length, np.uint8)
    for start in range(0, height, band):
        x = rows[start:start + band].astype(np.int16)
        up = np.vstack([previous[None].astype(np.int16), x[:-1]])
        left = np.zeros_like(x)
        left[:, bpp:] = x[:, :-bpp]
        upleft = np.zeros_like(x)
        upleft[:, bpp:] = up[:, :-bpp]
        estimate = left + up - upleft
        pa, pb, pc = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        candidates = np.stack([x, x - left, x - up, x - ((left + up) >> 1), x - paeth]).astype(np.uint8)
        cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
        best = cost.argmin(axis=0)
        out = np.empty((x.shape[0], length + 1), np.uint8)
        out[:, 0] = best
        out[:, 1:] = candidates[best, np.arange(x.shape[0])]
        previous = rows[start + x.shape[0] - 1]
        yield out.tobytes()


def encode_tiff16(
    pixels: np.ndarray,
    *,
    icc: bytes | None,
    exif: bytes | None,
    xmp: bytes | None,
    dpi: tuple[float, float] | None,
    fields: Sequence[tuple[int, int, object]] = (),
) -> bytes:
    """Write a baseline TIFF (8 or 16 bits, 1-4 samples): one Deflate strip with horizontal differencing.

    Pillow's TIFF writer goes through libtiff for compressed files, which drops the
    Exif/GPS sub-IFDs, and it cannot hold 16-bit colour; this small writer does both. ``fields``
    (tag, type, value) are further IFD0 entries (the source's IPTC record...:
    :func:`labeler.media.image_extras.tiff_fields`).
    """
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    bits = pixels.dtype.itemsize * 8
    # TIFF 6.0 section 14: predictor 2 stores each sample minus its left neighbour, modulo 2**bits.
    samples = pixels.reshape(height, width, channels)
    diff = samples.copy()
    diff[:, 1:] -= samples[:, :-1]
    compressor = zlib.compressobj(6)
    strip = bytearray()
    band = max(1, (1 << 20) // (width * channels * pixels.dtype.itemsize))
    little = diff.dtype.newbyteorder("<")
    for start in range(0, height, band):
        strip += compressor.compress(diff[start:start + band].astype(little, copy=False).tobytes())
    strip += compressor.flush()

    ifd = tiff_tags(exif, xmp)
    # TIFF 6.0 baseline fields (sections 3-8, 18 for ExtraSamples, 19 for SampleFormat).
    tags: list[tuple[int, int, object]] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, (bits,) * channels),
        (259, 3, 8),  # Adobe Deflate
        (262, 3, 1 if channels <= 2 else 2),  # BlackIsZero / RGB
        (273, 4, 0),  # StripOffsets: see the end
        (277, 3, channels),
        (278, 4, height),
        (279, 4, len(strip)),
        (284, 3, 1),
        (317, 3, 2),
        (339, 3, (1,) * channels),
    ]
    if channels in (2, 4):
        tags.append((338, 3, (2,)))  # unassociated alpha
    if dpi:
        tags += [(282, 5, float(dpi[0])), (283, 5, float(dpi[1])), (296, 3, 2)]
    if icc:
        tags.append((34675, 7, icc))
    # LONG fields given as their bytes (an IPTC record as Photoshop types it) go in as UNDEFINED, then
    # are retyped: Pillow keeps only the first value of a tag it knows as single-valued.
    longs = {tag: len(value) // 4 for tag, kind, value in fields
             if kind == 4 and isinstance(value, bytes) and len(value) % 4 == 0}
    for tag, kind, value in [*fields, *tags]:
        ifd.tagtype[tag] = 7 if tag in longs else kind  # before the value: Pillow converts it by this type
        ifd[tag] = value
    # Pillow adds the end of the directory and its out-of-line values to StripOffsets, so the
    # 0 above comes out as the offset right after them, where the strip is placed.
    return b"II*\x00" + struct.pack("<I", 8) + _retyped(ifd.tobytes(8), longs) + bytes(strip)


def _retyped(directory: bytes, longs: dict[int, int]) -> bytes:
    """A little-endian IFD (count, then 12-byte entries: TIFF 6.0 section 2) with the entries of ``longs``
    turned from UNDEFINED bytes into that many LONGs: the same value bytes, so nothing moves."""
    out = bytearray(directory)
    for at in range(2, 2 + 12 * struct.unpack_from("<H", out)[0], 12):
        tag = struct.unpack_from("<H", out, at)[0]
        if tag in longs:
            struct.pack_into("<HI", out, at + 2, 4, longs[tag])
    return bytes(out)
