"""aigc-labeler: write GB 45438-2025 labels into AI-generated media.

The public surface for generation backends::

    >>> from labeler import AIGCLabel, label, label_file
    >>> rec = AIGCLabel(content_producer="001191110102MACQD9K64010000", produce_id="img-42")
    >>> label_file("render.png", "render.labeled.png", rec).layers["metadata"]["carrier"]
    'xmp-tc260'
    >>> label(png_bytes, rec)[1:4]                             # bytes in, bytes out
    b'PNG'
    >>> label(pixels, rec, layers="watermark", key=key).shape  # array in, array out
    (419, 480, 3)

Reading and judging labels lives in the sibling package :mod:`detectors`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from labeler.api import label
from labeler.errors import (
    CorruptFile,
    InvalidLabel,
    LabelerError,
    LabelWarning,
    UnsafeInput,
    UnsupportedFormat,
)
from labeler.formats import FORMATS, sniff_file
from labeler.metadata import FoundLabel, read_labels, write_label
from labeler.options import LabelOptions
from labeler.pipeline import LabelResult, label_file
from labeler.record import FIELD_NAMES, AIGCLabel, ParsedLabel, parse_label

__all__ = [
    "__version__",
    "AIGCLabel",
    "ParsedLabel",
    "parse_label",
    "FIELD_NAMES",
    "label",
    "label_file",
    "LabelOptions",
    "LabelResult",
    "write_label",
    "read_labels",
    "FoundLabel",
    "FORMATS",
    "sniff_file",
    "LabelerError",
    "CorruptFile",
    "UnsafeInput",
    "UnsupportedFormat",
    "InvalidLabel",
    "LabelWarning",
]
