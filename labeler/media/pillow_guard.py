"""Pillow's limits and failure modes, as this toolkit's one-line errors; its warnings, silenced where asked.

The pixel limit (:data:`MAX_PIXELS`) is checked from the header before any pixel is decoded; Pillow's own
decompression-bomb check (``2 * PIL.Image.MAX_IMAGE_PIXELS``, 179 MP by default) may refuse earlier, and
this module never changes that global. :func:`quiet_pillow_warnings` is for processes that own their
warning filters (the command line, its batch and server workers); the library never calls it.
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, UnidentifiedImageError

from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.formats import IMAGE_FORMATS

__all__ = ["MAX_PIXELS", "bomb_message", "check_size", "one_line", "pillow_errors", "quiet_pillow_warnings"]

#: Most pixels (width x height) an image may have before it is refused unread: 16384 x 16384.
MAX_PIXELS = 16384 * 16384

_BOMB_SIZES = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, lower-cased first letter, at most 200 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:1].lower() + text[1:200]


def bomb_message(exc: BaseException) -> str:
    """One line for Pillow's ``DecompressionBombError``, with the image's size and Pillow's limit.

    Pillow refuses at ``2 * MAX_IMAGE_PIXELS`` (179 MP), below :data:`MAX_PIXELS`: the numbers tell an
    archive which size would pass. Without them when Pillow's wording is not recognised.
    """
    match = _BOMB_SIZES.search(str(exc))
    if match is None:
        return "image too large to decode safely (pillow's decompression-bomb check)"
    pixels, limit = (int(g) for g in match.groups())
    return (f"image too large to decode safely: {pixels / 1e6:.1f} megapixels, over the "
            f"{limit / 1e6:.1f} megapixels of pillow's decompression-bomb check")


def check_size(width: int, height: int) -> None:
    """Refuse a picture with no pixels (:class:`CorruptFile`) or over :data:`MAX_PIXELS` pixels
    (:class:`UnsafeInput`), from its header's size, before its pixels are decoded."""
    if width <= 0 or height <= 0:
        raise CorruptFile(f"image has no pixels ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise UnsafeInput(f"image is {width}x{height} pixels, over the limit of {MAX_PIXELS} pixels")


@contextmanager
def pillow_errors(kind: str | None) -> Iterator[None]:
    """Pillow's many ways of reporting a bad or hostile file, as this toolkit's one-line errors.

    ``kind`` is the format sniffed from the bytes (None when unknown): a damaged header of a format we
    know is a :class:`CorruptFile`, anything else Pillow cannot identify is :class:`UnsupportedFormat`.
    """
    try:
        yield
    except LabelerError:
        raise
    except Image.DecompressionBombError as exc:
        raise UnsafeInput(bomb_message(exc)) from None
    except UnidentifiedImageError:
        if kind in IMAGE_FORMATS:
            raise CorruptFile(f"damaged {kind} header: pillow cannot identify it") from None
        raise UnsupportedFormat("not an image format this toolkit can decode") from None
    except MemoryError:
        raise UnsafeInput("not enough memory to decode this image") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
            struct.error, zlib.error, ZeroDivisionError) as exc:
        # Pillow reports broken files with all of these (SyntaxError from several plugins).
        raise CorruptFile(f"damaged {kind or 'image'} file: {one_line(exc)}") from None


def quiet_pillow_warnings() -> None:
    """Ignore Pillow's warnings in this process: the command line's, and its batch and server workers'.

    Notes
    -----
    Pillow's own UserWarnings ("Corrupt EXIF data" on a damaged TIFF) and its
    ``DecompressionBombWarning`` (any image over ``PIL.Image.MAX_IMAGE_PIXELS``, 89 MP: a 12000 x 12000
    PNG) would each print two raw lines of source location. What matters of the damage reaches the user
    in our one-line messages, and what is too large to decode is decided by :mod:`labeler.limits` and
    :data:`MAX_PIXELS` (Pillow's refusal at twice its limit is still an error). Worker processes
    started with ``forkserver`` or ``spawn`` do not inherit warning filters, so their initializers call
    this too. The library never calls it: warning filters are process-wide state, the caller's.
    """
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    # Only this RuntimeWarning subclass: other RuntimeWarnings (NumPy's overflows) may point at a bug.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    _quiet_libtiff()


def _quiet_libtiff() -> None:
    """Take away the error handler of the libtiff that Pillow's TIFF decoder uses, so that it stops
    printing its own lines on stderr.

    Pillow decodes a compressed TIFF (LZW, Deflate...) with libtiff, and silences libtiff's warnings but
    not its errors: a damaged strip printed ``tempfile.tif: Using code not yet in table.`` or
    ``ZIPDecode: Decoding error at scanline 0, ...`` before our one-line error (Pillow's "decoder error
    -2", as :func:`pillow_errors` words it), which says the same. Pillow has no setting for it, so
    libtiff's own ``TIFFSetErrorHandler(NULL)`` is called on the library Pillow's ``_imaging`` module
    loaded (found in ``/proc/self/maps``: Linux; elsewhere, or when it cannot be found, nothing is done).
    Process-wide state, like the warning filters above. OpenCV's libtiff is another copy; its messages go
    through OpenCV's log (``OPENCV_LOG_LEVEL``, which the command line sets).
    """
    import ctypes

    # Pillow's _imaging module (imported above with PIL.Image) links libtiff: it is mapped by now.
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            libs = sorted({line.split(None, 5)[5].strip() for line in maps
                           if line.count(" ") >= 5 and "libtiff" in line.rsplit("/", 1)[-1]})
        for lib_path in libs:
            lib = ctypes.CDLL(lib_path)
            for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
                setter = getattr(lib, name, None)
                if setter is not None:
                    setter.restype, setter.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
                    setter(None)
    except (OSError, IndexError, AttributeError):
        return  # no /proc (not Linux), or a libtiff that cannot be loaded: its lines still print
