"""Damaged pictures read as far as they go, for verification only (labeling refuses a damaged input).

The metadata layer alone needs no pixels and labels a JPEG cut in its scan as it is; :func:`jpeg_cut_note`
is the warning that label call gives.

A JPEG or PNG cut short (an interrupted download or copy) still holds the part of the picture that is
there, and a watermark is in every tile of it; these readers decode that part, the rest grey, without
Pillow's process-wide ``LOAD_TRUNCATED_IMAGES`` switch. :class:`detectors.sources.Pixels` falls back
to them when the normal decode says the file is truncated.
"""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np

from labeler.errors import CorruptFile, LabelerError
from labeler.media.image import ImageData, _data_and_kind, _open
from labeler.media.pillow_guard import MAX_PIXELS

__all__ = ["jpeg_cut_note", "read_truncated_jpeg_luma", "read_truncated_png"]


def read_truncated_jpeg_luma(src: str | os.PathLike[str] | bytes | BinaryIO) -> np.ndarray:
    """The luma of a JPEG whose data stops early, decoded as far as it goes (for verification only).

    An end-of-image marker is put after the data, so libjpeg finishes the scan where the data ends and
    fills the rest of the picture with grey (its own behaviour on a premature end), without Pillow's
    process-wide ``LOAD_TRUNCATED_IMAGES`` switch. What is there can still be read (a watermark is in
    every tile); labeling never uses this (a damaged input is refused).

    Raises
    ------
    CorruptFile, UnsafeInput, OSError
        Not a JPEG, or damaged beyond a missing end.
    """
    data, kind = _data_and_kind(src, "jpeg")
    if not data.startswith(b"\xff\xd8"):
        raise CorruptFile("not a JPEG file")
    return _open(data + b"\xff\xd9", kind, luma=True).pixels


def read_truncated_png(src: str | os.PathLike[str] | bytes | BinaryIO) -> tuple[ImageData, float]:
    """A PNG cut short within its picture data, as :func:`labeler.media.image.read_luma_image` reads a
    PNG: the rows that are there decoded, the rest mid-grey
    (:func:`labeler.metadata.png.completed_truncated`), and the share (0..1) of the rows read.

    Raises
    ------
    CorruptFile, UnsafeInput, OSError
        Not a PNG cut within its picture data (see ``completed_truncated``), or damaged otherwise.
    """
    from labeler.metadata.png import completed_truncated

    data, kind = _data_and_kind(src, "png")
    fixed, share = completed_truncated(data, MAX_PIXELS)
    return _open(fixed, kind, luma=True), share


def jpeg_cut_note(src: str | os.PathLike[str] | bytes | BinaryIO) -> str | None:
    """A warning for a label call when the JPEG ``src`` is cut short in its image data, else None.

    Entropy-coded data never holds the bytes FF D9 (T.81 B.1.1.5: a data byte FF is stuffed as FF 00),
    so a file without an EOI marker after its first SOS ends within its scans: what Pillow reports as
    ``image file is truncated``, and what the pixel layers refuse. The wording follows verify's
    (``damaged jpeg file: ...``). None too for a file whose markers cannot be walked: the layer that
    reads it says what is wrong then.
    """
    from labeler.metadata.jpeg import _segments

    try:
        data, _ = _data_and_kind(src, "jpeg")
        _, sos = _segments(data)
    except (LabelerError, OSError):
        return None
    if data.find(b"\xff\xd9", sos) >= 0:
        return None
    return (f"damaged jpeg file: it is truncated (it ends within its image data, at {len(data)} bytes, with "
            "no EOI marker): labeled as it is, the picture still cut short")
