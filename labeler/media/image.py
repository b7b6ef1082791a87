"""Read and write still images as NumPy arrays, keeping ICC, EXIF, XMP and resolution.

Pixel layout after :func:`read_image` (the rules are few on purpose):

* grey (``L``) and bilevel (``1``): ``(H, W)`` uint8 (bilevel as 0 or 255);
* grey + alpha (``LA``): ``(H, W, 2)`` uint8;
* RGB, YCbCr and CMYK: ``(H, W, 3)`` uint8;
* RGBA: ``(H, W, 4)`` uint8;
* palette (``P``: GIF, PNG-8): ``(H, W, 3)``, or ``(H, W, 4)`` when it has transparency;
* 16-bit grey PNG/TIFF: ``(H, W)`` uint16;
* 16-bit grey + alpha, RGB, RGBA: ``(H, W, 2|3|4)`` uint16.

* Samples are the stored code values (0..255 or 0..65535), not normalised.
* A colour-key transparency (PNG ``tRNS`` on grey or RGB) becomes an alpha channel.
* CMYK (usually JPEG) is converted to RGB through its embedded ICC profile into sRGB
  when it has one (``icc`` then holds an sRGB profile), else with Pillow's plain formula
  (``icc`` then is None, as the CMYK profile no longer describes the pixels).
* Pixels are in **stored orientation**: the EXIF Orientation tag is not applied, it is
  carried in ``exif`` so a file written with ``like=`` displays the same way.
* Animated GIF/WebP/PNG: the first frame only (``n_frames`` says how many there are).
* 16-bit colour is decoded with OpenCV because Pillow reduces it to 8 bits.

Limits: an image over :data:`~labeler.media.pillow_guard.MAX_PIXELS` pixels raises
:class:`~labeler.errors.UnsafeInput` before its pixels are decoded (the size is read from the
header). Pillow's own decompression-bomb check (``2 * PIL.Image.MAX_IMAGE_PIXELS``, 179 MP by
default) may reject one earlier; this module never changes that global. Files over
:data:`labeler.limits.MAX_IMAGE_FILE` bytes are refused unread.

Writing (:mod:`labeler.media.image_write`: :func:`~labeler.media.image_write.write_image`,
:func:`~labeler.media.image_write.encode_image`) accepts the same layouts. What each
format can hold: JPEG 8-bit L/RGB; WebP 8-bit RGB/RGBA (grey is widened); AVIF 8-bit
L/RGB/RGBA (grey+alpha is widened; a colour AVIF source's chroma subsampling is kept); GIF 8-bit
(exact when the picture has at most 256 colours, else quantised by Pillow; alpha below
128 becomes transparent, the rest opaque); PNG everything above; TIFF everything but
16-bit grey+alpha (Pillow cannot read that back). TIFF files and 16-bit PNGs are written
by small encoders in this module: Pillow cannot hold 16-bit colour, and its compressed
TIFF path drops the Exif sub-IFD. Metadata comes from ``like``: its ICC profile (only
when its colour space matches the pixels: GRAY for grey, RGB for colour), EXIF, XMP and
dpi, and for a JPEG, PNG or TIFF written as its own format the rest of its container's metadata
(IPTC, comments, text chunks: :mod:`labeler.media.image_extras`). GIF stores none of them.

All functions are thread-safe; nothing here keeps global state.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, replace
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, JpegImagePlugin

from labeler import limits
from labeler.errors import CorruptFile, InvalidArgument, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.formats import FORMAT_TABLE, sniff
from labeler.media.image16 import (
    EXIF_IFD,
    EXIF_PREFIX,
    GPS_IFD,
    TIFF_DESCRIPTIVE,
    check_complete,
    decode_deep,
    deep_layout,
    tiff_grey_alpha16,
)
from labeler.media.image_extras import source_extras
from labeler.media.pillow_guard import check_size, pillow_errors

# Pillow's format names -> ours (from the format table; Pillow calls a multi-picture JPEG "MPO").
_FORMAT_NAMES = {f.pillow: f.name for f in FORMAT_TABLE if f.pillow} | {"MPO": "jpeg"}


@dataclass(eq=False)
class ImageData:
    """Pixels of one image plus the metadata needed to write it back faithfully.

    Attributes
    ----------
    pixels : numpy.ndarray
        ``(H, W)``, ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8 (0..255) or
        uint16 (0..65535); grey, grey+alpha, RGB or RGBA. In stored orientation.
    format : str or None
        Container the pixels came from (``"jpeg"``, ``"png"``, ``"webp"``, ``"tiff"``,
        ``"gif"``, or Pillow's name in lower case for others); None for arrays.
    mode : str or None
        How the file stored them, before any conversion: Pillow's mode (``"P"``,
        ``"CMYK"``, ``"I;16"``...), or ``"RGB;16"``/``"RGBA;16"``/``"LA;16"`` for 16-bit colour,
        ``"RGB;10"``, ``"L;12"``... for a 10- or 12-bit AVIF (read at 8 bits).
    icc : bytes or None
        The embedded ICC profile, whole.
    exif : bytes or None
        The EXIF block, always starting with ``b"Exif\\0\\0"`` followed by a TIFF
        structure (Pillow's convention), whatever the container stored. For TIFF
        sources it holds the descriptive tags only (see :func:`read_image`).
    xmp : bytes or None
        The XMP packet (UTF-8 XML).
    dpi : tuple of float or None
        Horizontal and vertical resolution in dots per inch.
    n_frames : int
        Frames in the file (animations); ``pixels`` is the first.
    lossless : bool
        A WebP stored losslessly (``VP8L``): :func:`~labeler.media.image_write.write_image` with this
        as ``like`` keeps it lossless.
    subsampling : int or None
        A colour JPEG's or AVIF's chroma subsampling, as Pillow names a JPEG's (0: 4:4:4, 1: 4:2:2,
        2: 4:2:0); None for other images. Writing a JPEG or AVIF with this as ``like`` keeps it.
    progressive : bool
        A progressive JPEG; writing a JPEG with this as ``like`` keeps it progressive.
    extras : tuple of (bytes, bytes)
        Other metadata of a JPEG, PNG or TIFF container (IPTC, comments, PNG text and colour chunks:
        :mod:`labeler.media.image_extras`); writing the same format with this as ``like`` copies them.
    """

    pixels: np.ndarray
    format: str | None = None
    mode: str | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    n_frames: int = 1
    lossless: bool = False
    subsampling: int | None = None
    progressive: bool = False
    extras: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def height(self) -> int:
        """Rows, in pixels."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Columns, in pixels."""
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """Samples per pixel: 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)."""
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])

    @property
    def has_alpha(self) -> bool:
        """True for grey+alpha and RGBA."""
        return self.channels in (2, 4)

    @property
    def orientation(self) -> int:
        """EXIF Orientation, 1..8 (1: stored as displayed, also when there is no tag): how a viewer turns
        ``pixels`` for display (:func:`to_display`)."""
        return exif_orientation(self.exif)


# --------------------------------------------------------------------------- reading


def read_image(src: str | os.PathLike[str] | bytes | BinaryIO, *, fmt: str | None = None) -> ImageData:
    """Decode an image file into an :class:`ImageData` (see the module notes for the layout).

    Parameters
    ----------
    src : path-like, bytes or binary file
        The image. A file object is read from its current position to the end.
    fmt : str, optional
        The container format when the caller has probed it already (:class:`labeler.probe.Probe`);
        only names the format in error messages, and is sniffed otherwise.

    Returns
    -------
    ImageData

    Raises
    ------
    CorruptFile
        Empty, truncated or damaged file.
    UnsupportedFormat
        Not an image Pillow can read, or a pixel type this module does not handle
        (32-bit integer or float samples, LAB, 16-bit grey+alpha TIFF).
    UnsafeInput
        More than :data:`~labeler.media.pillow_guard.MAX_PIXELS` pixels, or a file over
        ``limits.MAX_IMAGE_FILE`` bytes.
    OSError
        When a path cannot be opened.
    """
    return _open(src, fmt, luma=False)


def read_luma_pixels(src: str | os.PathLike[str] | bytes | BinaryIO, *, fmt: str | None = None) -> np.ndarray:
    """Decode an image for analyses that look at its luma only (the watermark and visible-label detectors).

    A colour JPEG (YCbCr or RGB, the usual case) is decoded to its luma alone: libjpeg outputs the Y
    component (BT.601, as JPEG stores it) and skips the chroma planes, their upsampling and the colour
    conversion: ~5 ms for a 1920x1080 JPEG where :func:`read_image` takes ~11 ms (its RGB array is
    also copied out of Pillow; ~30 ms in a process whose allocator page-faults fresh memory). Y is
    what ``cv2.cvtColor(rgb, COLOR_RGB2GRAY)`` (the same BT.601 weights) recomputes from the decoded
    RGB, within rounding (1 level) except where the RGB conversion clipped a saturated colour. Any
    other image (grey, CMYK, PNG, WebP, 16-bit...) is returned exactly as
    :func:`read_image` returns it, and the caller takes its luma itself.

    Parameters
    ----------
    src, fmt
        As for :func:`read_image`.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8 luma (0..255) for a colour JPEG and a HEIC (decoded by ffmpeg 7.1+:
        :func:`labeler.media.heic.decode_luma`), else :func:`read_image`'s pixels.

    Raises
    ------
    CorruptFile, UnsupportedFormat, UnsafeInput, OSError
        As :func:`read_image`.
    """
    if fmt == "heic":  # no Pillow decoder: ffmpeg's (labeler.media.heic)
        from labeler.media.heic import decode_luma

        return decode_luma(src.read() if hasattr(src, "read") else src)
    return _open(src, fmt, luma=True).pixels


def read_luma_image(src: str | os.PathLike[str] | bytes | BinaryIO, *, fmt: str | None = None) -> ImageData:
    """:func:`read_luma_pixels` as an :class:`ImageData`: the same pixels, and for a colour JPEG its EXIF
    block too (already parsed when the file is opened), so a caller can show the pixels as a viewer
    does (:attr:`ImageData.orientation`). Other metadata of a colour JPEG is not read.
    """
    if fmt == "heic":
        return ImageData(read_luma_pixels(src, fmt=fmt), "heic", "L")
    return _open(src, fmt, luma=True)


def _open(src: str | os.PathLike[str] | bytes | BinaryIO, fmt: str | None,
          luma: bool) -> ImageData:
    """:func:`read_image`; with ``luma`` a colour JPEG's pixels are its luma alone (and ``mode`` is
    ``"L"``, metadata not read): :func:`read_luma_pixels`."""
    data, kind = _data_and_kind(src, fmt)
    with pillow_errors(kind), Image.open(io.BytesIO(data)) as im:
        if luma and _jpeg_luma(im):
            check_size(*im.size)
            im.load()
            return ImageData(np.array(im), "jpeg", "L", exif=normal_exif(im.info.get("exif")))
        return _decode(im, data, kind)


#: Smallest side (pixels) of a JPEG that :func:`read_luma_half` decodes at half size.
HALF_MIN_SIDE = 512


def read_luma_half(src: str | os.PathLike[str] | bytes | BinaryIO, *,
                   fmt: str | None = None) -> ImageData | None:
    """The luma of a JPEG decoded at half size, for the watermark's triage read (``verify --quick``).

    libjpeg scales in the DCT domain (each 8 x 8 block's 4 x 4 lowest coefficients, inverse-transformed
    at 4 x 4): no full-size IDCT, no chroma, ~0.45x of :func:`read_image`'s time at 1080p against ~0.55x
    for :func:`read_luma_pixels`, whose result the watermark detector would then halve itself.

    Parameters
    ----------
    src, fmt
        As for :func:`read_image`.

    Returns
    -------
    ImageData or None
        Pixels ``(ceil(H / 2), ceil(W / 2))`` uint8 luma (0..255), mode ``"L"``, with the file's EXIF
        block (for :attr:`ImageData.orientation`), of a colour or grey JPEG of at least
        :data:`HALF_MIN_SIDE` pixels a side; None for any other image (the caller decodes it in full).

    Raises
    ------
    CorruptFile, UnsupportedFormat, UnsafeInput, OSError
        As :func:`read_image`.
    """
    data, kind = _data_and_kind(src, fmt)
    with pillow_errors(kind), Image.open(io.BytesIO(data)) as im:
        if not isinstance(im, JpegImagePlugin.JpegImageFile) or im.mode not in ("RGB", "L"):
            return None
        width, height = im.size
        check_size(width, height)
        if min(width, height) < HALF_MIN_SIDE:
            return None
        im.draft("L", (width // 2, height // 2))
        if im.mode != "L" or im.size != (-(-width // 2), -(-height // 2)):
            return None  # pillow did not take the draft
        im.load()
        return ImageData(np.array(im), "jpeg", "L", exif=normal_exif(im.info.get("exif")))


def _data_and_kind(src: str | os.PathLike[str] | bytes | BinaryIO,
                   fmt: str | None) -> tuple[bytes, str | None]:
    """The encoded bytes (size-checked) and the format, given or sniffed (None when unknown)."""
    data = _read_source(src)
    if not data:
        raise CorruptFile("empty file (0 bytes)")
    kind = fmt
    if kind is None:
        try:
            kind = sniff(data[:4096])
        except LabelerError:
            kind = None
    if kind == "tiff" and tiff_grey_alpha16(data):
        # a valid file that Pillow cannot identify: not "damaged", as pillow_errors would call it
        raise UnsupportedFormat("16-bit grey+alpha tiff is not supported (pillow cannot decode it); "
                                "save it as a 16-bit png, or as rgba or 8-bit tiff")
    if kind in ("png", "webp"):
        _check_side_chunks(data, kind)
    if kind == "jpeg":
        precision, marker = _jpeg_frame(data)
        if precision not in (None, 8):
            # valid, but Pillow decodes 8-bit samples only (and then says it cannot identify the file)
            process = "lossless " if marker in _JPEG_LOSSLESS else ""
            raise UnsupportedFormat(f"{precision}-bit {process}jpeg is not supported (pillow decodes 8-bit "
                                    "jpeg only); save it as a 16-bit png or tiff")
    return data, kind


#: Chunks that hold the picture (PNG IDAT / APNG fdAT; WebP VP8 / VP8L / ANMF / ALPH): any size.
_PIXEL_CHUNKS = frozenset({b"IDAT", b"fdAT", b"VP8 ", b"VP8L", b"ANMF", b"ALPH"})


def _check_side_chunks(data: bytes, kind: str) -> None:
    """Refuse (:class:`UnsafeInput`) a PNG or WebP with a chunk that holds no pixels (text, XMP, EXIF,
    ICC) over :data:`labeler.limits.MAX_SIDE_CHUNK` bytes, before Pillow copies it, or with more than
    :data:`labeler.limits.MAX_BOXES` chunks.

    Pillow reads such a chunk whole and copies it several times over (split, decode, and for a PNG the
    salvage of a refused file): a 100 MB iTXt chunk cost ~690 MB of memory. Only chunk headers are read;
    a structure this walk cannot follow is left to Pillow, which says what is wrong with it.
    """
    if kind == "png":
        pos, layout, extra = 8, ">I4s", 12  # length, type, data, CRC (PNG 5.3)
    else:
        pos, layout, extra = 12, "<4sI", 8  # id, size, data, pad byte (RIFF)
    for _ in range(limits.MAX_BOXES):
        if pos + 8 > len(data):
            return
        first, second = struct.unpack_from(layout, data, pos)
        ctype, length = (second, first) if kind == "png" else (first, second)
        if length > limits.MAX_SIDE_CHUNK and ctype not in _PIXEL_CHUNKS:
            name = ctype.decode("latin-1").strip()
            raise UnsafeInput(f"{kind} {name} chunk at offset {pos} is {length} bytes, over the "
                              f"{limits.MAX_SIDE_CHUNK}-byte limit for a chunk that holds no pixels")
        if ctype == b"IEND":
            return
        pos += extra + length + (length & 1 if kind == "webp" else 0)
    if pos + 8 <= len(data):
        # Pillow walks every chunk in Python: a million empty ones took it ~4 s, and time grows with the file.
        raise UnsafeInput(f"{kind} has more than {limits.MAX_BOXES} chunks")


#: Start-of-frame markers (ITU-T T.81 table B.1: SOF0-3, 5-7, 9-11, 13-15) and the lossless ones among them.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})


def _jpeg_frame(data: bytes) -> tuple[int | None, int | None]:
    """The sample precision (bits) and marker of a JPEG's first frame header, or (None, None) when the
    markers before it cannot be walked (T.81 B.1.1: each marker segment states its length)."""
    pos = 2
    while pos + 5 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker (T.81 B.1.1.2)
            pos += 1
        elif marker in _JPEG_SOF:
            return data[pos + 4], marker
        elif marker in (0xD9, 0xDA):  # EOI, SOS: no frame header before the scan
            break
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None, None


def _jpeg_luma(im: Image.Image) -> bool:
    """Ask libjpeg for the luma only, when ``im`` is a three-component JPEG; whether it was asked."""
    if not isinstance(im, JpegImagePlugin.JpegImageFile) or im.mode != "RGB":
        return False  # grey JPEGs are luma already; CMYK/YCCK need read_image's colour management
    drafted = im.draft("L", None)
    return drafted is not None and im.mode == "L"


def _read_source(src: str | os.PathLike[str] | bytes | BinaryIO) -> bytes:
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        size = os.path.getsize(src)
        if size > limits.MAX_IMAGE_FILE:
            raise UnsafeInput(f"image file of {size} bytes is over the {limits.MAX_IMAGE_FILE}-byte limit")
        with open(src, "rb") as handle:
            data = handle.read()
    elif callable(getattr(src, "read", None)):
        data = src.read(limits.MAX_IMAGE_FILE + 1)
    else:
        raise InvalidArgument(f"an image is a path, bytes or a binary file, not {type(src).__name__}")
    if len(data) > limits.MAX_IMAGE_FILE:
        raise UnsafeInput(f"image file is over the {limits.MAX_IMAGE_FILE}-byte limit")
    return data


def _decode(im: Image.Image, data: bytes, kind: str | None) -> ImageData:
    width, height = im.size
    check_size(width, height)
    fmt = _FORMAT_NAMES.get(im.format or "", (im.format or kind or "unknown").lower())
    info = dict(im.info)
    icc = info.get("icc_profile") or None
    xmp = info.get("xmp") or None
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    dpi = _dpi(info.get("dpi")) if _states_resolution(im, fmt) else None
    exif = _tiff_exif(im) if fmt == "tiff" else normal_exif(info.get("exif"))
    n_frames = int(getattr(im, "n_frames", 1) or 1)
    mode = im.mode

    # Pillow's and OpenCV's TIFF readers apply the Orientation tag (Pillow already reports the
    # turned size); undo it so every format comes back in stored orientation.
    orientation = im.tag_v2.get(274, 1) if fmt == "tiff" and hasattr(im, "tag_v2") else 1
    deep = deep_layout(im, data, fmt)
    check_complete(im, data, fmt, deep is not None)  # before a native decoder prints its own lines
    if deep is not None:
        pixels, mode = decode_deep(data, deep, width, height)
    else:
        im.load()
        pixels, icc = _to_array(im, icc)
    if orientation in _UNDO_ORIENTATION:
        pixels = np.ascontiguousarray(_UNDO_ORIENTATION[orientation](pixels))
    lossless = fmt == "webp" and _webp_lossless(data)
    subsampling, progressive = _jpeg_coding(im) if fmt == "jpeg" else (None, False)
    if fmt == "avif":
        subsampling, depth = _avif_coding(data)
        if depth > 8:  # Pillow gives 8 bits: say how the file stored them, as for 16-bit PNGs
            mode = f"{mode};{depth}"
    return ImageData(pixels, fmt, mode, icc, exif, xmp, dpi, n_frames, lossless, subsampling, progressive,
                     source_extras(data, fmt))


def _jpeg_coding(im: Image.Image) -> tuple[int | None, bool]:
    """A JPEG's chroma subsampling (Pillow's 0 / 1 / 2, None when not 3-component YCbCr) and whether it
    is progressive, so a re-encode keeps what the source chose (a 4:4:4 photo is not turned 4:2:0)."""
    return _jpeg_subsampling(im), bool(im.info.get("progressive"))


#: Pillow's JPEG subsampling numbers by (horizontal, vertical) chroma reduction: 4:4:4, 4:2:2, 4:2:0.
_PILLOW_SUBSAMPLING = {(1, 1): 0, (2, 1): 1, (2, 2): 2}


def _jpeg_subsampling(im: Image.Image) -> int | None:
    """The Pillow subsampling that keeps at least the chroma resolution of a 3-component JPEG, or None.

    What counts is the ratio of the luma's sampling factors to the chroma's (ITU-T T.81 A.1.1), not the
    factors themselves: ffmpeg writes a 4:4:4 JPEG as 1 x 2 factors for all three components and a
    4:2:2 one as 2 x 2 luma over 1 x 2 chroma, which Pillow's ``get_sampling`` (exact factor triples
    only) does not know, and a re-encode with Pillow's default made them 4:2:0. Layouts Pillow cannot
    write (4:4:0 from a losslessly turned 4:2:2 photo, 4:1:1) get the nearest that loses no chroma.
    """
    layer = getattr(im, "layer", None)
    if not layer or len(layer) != 3 or im.mode != "RGB":
        return None
    try:
        (_, yh, yv, _), chroma = layer[0], layer[1:]
        ratios = [(yh / ch, yv / cv) for _, ch, cv, _ in chroma]
    except (ValueError, TypeError, ZeroDivisionError):
        return None
    hr, vr = min(r[0] for r in ratios), min(r[1] for r in ratios)
    fits = [(h * v, n) for (h, v), n in _PILLOW_SUBSAMPLING.items() if h <= hr and v <= vr]
    return max(fits)[1] if fits else None


def _avif_coding(data: bytes) -> tuple[int | None, int]:
    """An AVIF's chroma subsampling and bit depth (:func:`labeler.metadata.heif.av1_coding`); (None, 8)
    when its boxes do not say or are damaged (Pillow's defaults then, and the pixels still read)."""
    from labeler.metadata.heif import av1_coding

    try:
        return av1_coding(io.BytesIO(data)) or (None, 8)
    except LabelerError:
        return None, 8


def _webp_lossless(data: bytes) -> bool:
    """Whether a WebP's first image bitstream is ``VP8L`` (lossless) rather than ``VP8 `` (lossy)."""
    at = 12
    while at + 8 <= len(data):
        fourcc = data[at:at + 4]
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        size = int.from_bytes(data[at + 4:at + 8], "little")
        # ANMF (animation frame) holds its bitstream after a 16-byte frame header: step into it.
        at += 8 + 16 if fourcc == b"ANMF" else 8 + size + (size & 1)
    return False


# EXIF 2.32 4.6.4 Orientation: how a reader turned stored pixels for display, undone.
_UNDO_ORIENTATION = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}


# Stored pixels turned as a viewer shows them: the inverse of each _UNDO_ORIENTATION entry (the flips and
# transposes are their own inverses; the two quarter turns swap).
_TO_DISPLAY = {**_UNDO_ORIENTATION, 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


def exif_orientation(exif: bytes | None) -> int:
    """The Orientation tag (274) of IFD0 in an EXIF block (``Exif\\0\\0`` + TIFF structure, or the TIFF
    structure alone): 1..8, or 1 when there is none or the block cannot be read (EXIF 2.32, 4.6.4)."""
    if not exif:
        return 1
    tiff = exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    ifd = int.from_bytes(tiff[4:8], "little" if order == "<" else "big")
    end = "little" if order == "<" else "big"
    if ifd + 2 > len(tiff):
        return 1
    count = min(int.from_bytes(tiff[ifd:ifd + 2], end), (len(tiff) - ifd - 2) // 12)
    for at in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if int.from_bytes(tiff[at:at + 2], end) == 274:
            value = int.from_bytes(tiff[at + 8:at + 10], end)  # a SHORT, left-aligned in the value field
            return value if 1 <= value <= 8 else 1
    return 1


def to_display(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` (stored orientation) turned as a viewer shows them under EXIF ``orientation`` (1..8;
    anything else leaves them as they are). A view where possible, not a copy."""
    turn = _TO_DISPLAY.get(orientation)
    return pixels if turn is None else turn(pixels)


def to_stored(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The inverse of :func:`to_display`: pixels as shown turned back to their stored orientation."""
    turn = _UNDO_ORIENTATION.get(orientation)
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))


def _states_resolution(im: Image.Image, fmt: str) -> bool:
    """Whether the file states the resolution Pillow reports in ``info["dpi"]``, rather than Pillow
    putting a placeholder there: (1, 1) for a TIFF without XResolution, (72, 72) for a JPEG whose JFIF
    density is an aspect ratio (unit 0) or absent and whose EXIF has no XResolution. Written back, a
    placeholder would become a stated resolution (a TIFF printed 1 inch per pixel)."""
    if fmt == "tiff":
        return 282 in getattr(im, "tag_v2", {})
    if fmt == "jpeg" and im.info.get("jfif_unit") not in (1, 2):
        try:
            return 0x011A in im.getexif()  # EXIF XResolution, where Pillow took the value from
        except Exception:  # noqa: BLE001 - unreadable EXIF: Pillow's placeholder, and the pixels still read
            return False
    return True


def _dpi(value: object) -> tuple[float, float] | None:
    try:
        x, y = value  # type: ignore[misc]
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def normal_exif(exif: object) -> bytes | None:
    if not exif or not isinstance(exif, (bytes, bytearray)):
        return None
    exif = bytes(exif)
    return exif if exif.startswith(EXIF_PREFIX) else EXIF_PREFIX + exif


def _tiff_exif(im: Image.Image) -> bytes | None:
    try:
        source = im.getexif()
        out = Image.Exif()
        for tag in TIFF_DESCRIPTIVE:
            if tag in source:
                out[tag] = source[tag]
        for tag in (EXIF_IFD, GPS_IFD):
            sub = source.get_ifd(tag)
            if sub:
                out[tag] = dict(sub)
        return out.tobytes() if len(out) else None
    except Exception:  # noqa: BLE001 - odd EXIF must not stop the pixels from being read
        return None


def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _to_array(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    mode = im.mode
    keyed = "transparency" in im.info
    if mode in ("L", "RGB", "LA", "RGBA") and not (keyed and mode in ("L", "RGB")):
        return np.array(im), icc
    if mode in ("L", "RGB"):
        return np.array(im.convert(mode[0] + "A" if mode == "L" else "RGBA")), icc
    if mode == "1":
        return np.array(im.convert("L")), icc
    if mode in ("P", "PA"):
        return np.array(im.convert("RGBA" if keyed or mode == "PA" else "RGB")), icc
    if mode == "La":
        return np.array(im.convert("LA")), icc
    if mode in ("RGBa", "RGBX", "YCbCr", "HSV"):
        return np.array(im.convert("RGBA" if mode == "RGBa" else "RGB")), icc
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc)
    if mode.startswith("I;16") and mode not in ("I;16S", "I;16BS"):
        grey = np.array(im).astype(np.uint16)
        key = im.info.get("transparency")
        if isinstance(key, int):  # a 16-bit grey PNG's tRNS key: alpha, as at 8 bits
            return np.dstack([grey, np.where(grey == key, 0, 65535).astype(np.uint16)]), icc
        return grey, icc
    if mode == "I":
        values = np.array(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise UnsupportedFormat("32-bit integer samples outside 0..65535 are not supported")
        return values.astype(np.uint16), icc
    raise UnsupportedFormat(f"pixel mode {mode} is not supported")


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(im, source, target, outputMode="RGB")
            if converted is not None:
                return np.array(converted), _srgb_profile()
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain formula below
    return np.array(im.convert("RGB")), None


# --------------------------------------------------------------------------- arrays


def image_from_array(pixels: np.ndarray, *, like: ImageData | None = None) -> ImageData:
    """Check ``pixels`` against the layouts this module handles and wrap them with ``like``'s metadata.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)``, uint8 or uint16.
        ``(H, W, 1)`` is taken as ``(H, W)``.
    like : ImageData, optional
        Source of ``format``, ``icc``, ``exif``, ``xmp`` and ``dpi``.

    Returns
    -------
    ImageData
        Holding a C-contiguous view or copy of ``pixels``.

    Raises
    ------
    ValueError
        For any other shape or dtype, or an empty image.
    """
    arr = np.asarray(pixels)
    if arr.dtype not in (np.uint8, np.uint16):
        raise InvalidArgument(f"pixels must be uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (2, 3, 4))):
        raise InvalidArgument(f"pixels must be (H, W) or (H, W, 2|3|4), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidArgument(f"image has no pixels (shape {arr.shape})")
    arr = np.ascontiguousarray(arr)
    if like is None:
        return ImageData(arr)
    return replace(like, pixels=arr, mode=None, n_frames=1)
