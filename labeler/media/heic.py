"""HEIC pixels for the detectors: the luma of the primary image, decoded by ffmpeg.

Pillow has no HEVC decoder; ffmpeg reads HEIF images from 7.1 on (its ``mov`` demuxer exposes the items,
a grid as a stream group that the command line composes with its ``tile`` filter), which is what the
imageio-ffmpeg wheel brings. Older builds (Debian 12's 5.1) cannot, and :func:`decode_luma` says so in
one line. Only the detectors read HEIC pixels: the toolkit writes no HEVC.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.media import ffmpeg as ff

#: Seconds one decode may take (a 48 MP phone picture decodes in about a second).
DECODE_TIMEOUT = 60.0


def decode_luma(src: str | os.PathLike[str] | bytes) -> np.ndarray:
    """The primary image of a HEIC / HEIF file as ``(H, W)`` uint8 luma (0..255), rotation applied.

    Raises
    ------
    UnsupportedFormat
        The ffmpeg in use cannot decode HEIF images (older than 7.1), with its version.
    UnsafeInput
        The image (its ``ispe`` canvas) is over :data:`labeler.media.pillow_guard.MAX_PIXELS` pixels.
    CorruptFile
        A damaged file.
    """
    from labeler.media.pillow_guard import MAX_PIXELS
    from labeler.metadata.heif import primary_size

    if isinstance(src, (bytes, bytearray, memoryview)):
        with tempfile.TemporaryDirectory(prefix="aigc-heic-") as folder:
            path = Path(folder) / "image.heic"
            path.write_bytes(bytes(src))
            return decode_luma(path)
    with open(src, "rb") as handle:
        size = primary_size(handle)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise UnsafeInput(f"image is {size[0]}x{size[1]} pixels, over the limit of {MAX_PIXELS} pixels")
    major, minor = ff.ffmpeg_version()
    if (major, minor) < (7, 1):
        raise UnsupportedFormat(f"ffmpeg {major}.{minor}, the one in use, decodes no HEIF images; 7.1 and "
                                "later do, as the imageio-ffmpeg wheel's")
    try:
        out = ff.run(["-loglevel", "error", "-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(src),
                      "-frames:v", "1", "-f", "image2pipe", "-c:v", "pgm", "-pix_fmt", "gray", "pipe:"],
                     timeout=DECODE_TIMEOUT, names=[ff.input_url(src)])
    except UnsafeInput:
        raise
    except LabelerError as exc:
        raise CorruptFile(f"cannot decode this heic: {exc}") from None
    return _pgm(out)


def _pgm(data: bytes) -> np.ndarray:
    """The pixels of a binary 8-bit PGM (``P5``) as ffmpeg writes it."""
    head = io.BytesIO(data)
    fields: list[bytes] = []
    while len(fields) < 4:
        line = head.readline()
        if not line:
            raise CorruptFile("ffmpeg gave no picture for this heic")
        fields += line.split(b"#")[0].split()
    if fields[0] != b"P5" or fields[3] != b"255":
        raise CorruptFile("ffmpeg gave an unexpected picture format for this heic")
    width, height = int(fields[1]), int(fields[2])
    pixels = np.frombuffer(data, np.uint8, count=width * height, offset=head.tell())
    return pixels.reshape(height, width)
