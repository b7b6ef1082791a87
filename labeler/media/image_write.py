"""Write still images from NumPy arrays: the writing half of :mod:`labeler.media.image`.

:func:`write_image` (to a path, atomically) and :func:`encode_image` (to bytes) accept the layouts
:func:`~labeler.media.image.read_image` returns; what each format can hold and which metadata of
``like`` is written are described in :mod:`labeler.media.image`. Nothing here keeps global state.
"""

from __future__ import annotations

import io
import os
from dataclasses import replace

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from labeler.atomic import atomic_output
from labeler.errors import InvalidArgument, UnsupportedFormat
from labeler.formats import EXTENSIONS, IMAGE_FORMATS
from labeler.media.image import ImageData, image_from_array, normal_exif
from labeler.media.image16 import encode_png16, encode_tiff16
from labeler.media.image_extras import (
    fresh_exif_thumbnail,
    jpeg_segments,
    jpeg_trailer,
    png_chunks,
    tiff_fields,
)
from labeler.media.pillow_guard import one_line


def image_format_for(path: str | os.PathLike[str]) -> str | None:
    """Return the image format a file name's extension asks for (``"x.JPG"`` -> ``"jpeg"``), or None."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    for fmt in IMAGE_FORMATS:
        if ext in EXTENSIONS[fmt]:
            return fmt
    return None


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray | ImageData,
    *,
    format: str | None = None,  # noqa: A002 - the name imageio and Pillow use
    like: ImageData | None = None,
    quality: int = 95,
    lossless: bool = False,
) -> None:
    """Encode ``pixels`` and write them to ``path`` atomically (a temporary file renamed into place).

    Parameters
    ----------
    path : path-like
        Output file; replaced only when encoding succeeded.
    pixels : numpy.ndarray or ImageData
        See :func:`image_from_array`. An :class:`ImageData` also serves as ``like``
        when ``like`` is not given.
    format : str, optional
        ``"jpeg"``, ``"png"``, ``"webp"``, ``"tiff"``, ``"gif"`` or ``"avif"``; by default from the
        extension of ``path``, else ``like.format``.
    like : ImageData, optional
        Image whose ICC profile, EXIF, XMP and dpi are written with the pixels (an EXIF thumbnail drawn
        again from them when they differ from ``like``'s); a JPEG also keeps its chroma subsampling and
        progressive coding, a JPEG, PNG or TIFF written as its own format its other container metadata
        (:attr:`~labeler.media.image.ImageData.extras`).
    quality : int
        JPEG, lossy WebP and AVIF quality, 1..100.
    lossless : bool
        Lossless WebP; also when ``like`` was a lossless WebP (a lossless file stays lossless).

    Raises
    ------
    UnsupportedFormat
        The format cannot store these pixels (alpha or 16 bits in JPEG...), or is unknown.
    ValueError
        Pixels of a shape or dtype :func:`image_from_array` refuses.
    """
    if isinstance(pixels, ImageData):
        like = like or pixels
        pixels = pixels.pixels
    fmt = format or image_format_for(path) or (like.format if like else None)
    if fmt is None:
        raise UnsupportedFormat(f"cannot tell the image format from the name {os.fspath(path)!r}")
    lossless = lossless or bool(like is not None and like.lossless and fmt == "webp")
    data = encode_image(pixels, fmt, like=like, quality=quality, lossless=lossless)
    with atomic_output(path) as handle:
        handle.write(data)


def encode_image(
    pixels: np.ndarray,
    format: str,  # noqa: A002 - the name imageio and Pillow use
    *,
    like: ImageData | None = None,
    quality: int = 95,
    lossless: bool = False,
) -> bytes:
    """Encode ``pixels`` as an image file in memory; see :func:`write_image` for the parameters.

    Returns
    -------
    bytes
        The whole file.
    """
    fmt = format.lower()
    fmt = {"jpg": "jpeg", "tif": "tiff"}.get(fmt, fmt)
    if fmt not in IMAGE_FORMATS:
        raise UnsupportedFormat(f"cannot write images as {format!r}")
    if not 1 <= quality <= 100:
        raise InvalidArgument(f"quality must be 1..100, got {quality}")
    img = image_from_array(pixels, like=like)
    arr = img.pixels
    # an EXIF thumbnail of the source shows its old pixels (file browsers show it): drawn again
    img = replace(img, exif=fresh_exif_thumbnail(img.exif, arr, like.pixels if like else None))
    deep = arr.dtype == np.uint16
    channels = img.channels
    icc = img.icc if _icc_fits(img.icc, channels) else None
    # the source container's other metadata (IPTC, comments, PNG text): only into the same container
    extras = img.extras if img.format == fmt else ()
    if fmt == "png" and deep:
        return encode_png16(arr, icc=icc, exif=img.exif, xmp=img.xmp, dpi=img.dpi,
                            chunks=png_chunks(extras, icc=bool(icc)))
    if fmt == "tiff":
        if deep and channels == 2:
            raise UnsupportedFormat("16-bit grey+alpha tiff is not supported (pillow cannot read it)")
        return encode_tiff16(arr, icc=icc, exif=img.exif, xmp=img.xmp, dpi=img.dpi,
                             fields=tiff_fields(extras))
    if deep:
        raise UnsupportedFormat(f"{fmt} stores 8-bit samples only; write png or tiff for 16-bit")
    if fmt == "jpeg" and channels in (2, 4):
        raise UnsupportedFormat("jpeg has no alpha channel; drop it or write png, webp or tiff")
    options: dict[str, object] = {}
    if fmt == "gif":
        im, transparency = _gif_image(arr)
        if transparency is not None:
            options["transparency"] = transparency
    else:
        im = Image.fromarray(arr)
    if (fmt == "webp" and channels < 3) or (fmt == "avif" and channels == 2):
        # WebP has no grey pixel format; Pillow writes grey AVIF as 4:0:0 but not grey+alpha
        im = im.convert("RGBA" if channels == 2 else "RGB")
    if fmt != "gif":
        if icc:
            options["icc_profile"] = icc
        if img.dpi:
            options["dpi"] = img.dpi
        if img.exif:
            options["exif"] = normal_exif(img.exif)
        if img.xmp and fmt != "png":
            options["xmp"] = img.xmp
        if fmt == "png" and (img.xmp or extras):
            info = PngInfo()
            if img.xmp:
                # XMP spec part 3, 1.1.5: PNG iTXt with keyword XML:com.adobe.xmp, uncompressed.
                info.add_itxt("XML:com.adobe.xmp", img.xmp.decode("utf-8", "replace"), zip=False)
            for ctype, body in png_chunks(extras, icc=bool(icc)):
                info.add(ctype, body)
            options["pnginfo"] = info
        if fmt == "jpeg" and extras:
            options["extra"] = jpeg_segments(extras)  # Pillow writes these before its XMP and ICC segments
    if fmt == "jpeg":
        options["quality"] = quality
        if img.subsampling is not None and channels == 3:
            options["subsampling"] = img.subsampling  # the source's (Pillow's default is 4:2:0)
        if img.progressive:
            options["progressive"] = True
    elif fmt == "webp":
        options.update(quality=quality, lossless=lossless, method=4)
        if lossless:
            # libwebp otherwise rewrites the colour under fully transparent pixels (to compress better):
            # a lossless source keeps every sample the layers did not change
            options["exact"] = True
    elif fmt == "avif":
        options["quality"] = quality  # libavif's 0..100 (AV1 is lossy here: one more generation)
        if img.subsampling in _AVIF_SUBSAMPLING and channels >= 3:
            options["subsampling"] = _AVIF_SUBSAMPLING[img.subsampling]  # the source's (Pillow: 4:2:0)
    elif fmt == "png":
        options["compress_level"] = 6
    out = io.BytesIO()
    try:
        im.save(out, format=fmt.upper(), **options)
    except ValueError as exc:
        # Pillow says "EXIF data is too long" etc. for what a JPEG segment cannot hold.
        raise UnsupportedFormat(f"cannot write this {fmt}: {one_line(exc)}") from None
    if fmt == "jpeg" and extras:
        return out.getvalue() + jpeg_trailer(extras)  # after the new EOI, as the source had it
    return out.getvalue()


#: :attr:`~labeler.media.image.ImageData.subsampling` (Pillow's JPEG numbers) as its AVIF writer names it.
_AVIF_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def _gif_image(arr: np.ndarray) -> tuple[Image.Image, int | None]:
    """A palette image for GIF: exact when the picture has at most 256 colours (255 with
    transparency), else quantised by Pillow. Alpha below 128 becomes the transparent index."""
    if arr.ndim == 2:
        return Image.fromarray(arr), None
    if arr.shape[2] == 2:
        arr = np.dstack([arr[..., 0]] * 3 + [arr[..., 1]])
    rgb = arr[..., :3].reshape(-1, 3).astype(np.uint32)
    keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    clear = (arr[..., 3] < 128).reshape(-1) if arr.shape[2] == 4 else np.zeros(len(keys), bool)
    colours, index = np.unique(keys[~clear], return_inverse=True)
    if len(colours) > (255 if clear.any() else 256):
        if arr.shape[2] == 4:
            # Pillow's quantiser makes only alpha 0 transparent: binarise alpha first.
            arr = np.dstack([arr[..., :3], np.where(arr[..., 3] < 128, 0, 255).astype(np.uint8)])
        return Image.fromarray(arr), None
    indices = np.full(len(keys), len(colours), np.uint8)
    indices[~clear] = index.reshape(-1)
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(colours)] = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], 1)
    im = Image.frombytes("P", (arr.shape[1], arr.shape[0]), indices.tobytes())
    im.putpalette(palette.tobytes())
    return im, (len(colours) if clear.any() else None)


def _icc_fits(icc: bytes | None, channels: int) -> bool:
    # ICC.1:2022 7.2.6: the header's data colour space signature at bytes 16..19.
    if not icc or len(icc) < 128:
        return False
    space = icc[16:20]
    return space == (b"GRAY" if channels <= 2 else b"RGB ")
