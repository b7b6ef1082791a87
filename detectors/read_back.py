"""Did the watermark just written come out readable? The check ``aigc label`` and the HTTP service's
``/v1/label`` make on a labeled picture (the library's callers can call it too).

It lives with the detectors because it is one: ``labeler`` (the writing side) never imports them."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["UNREAD_WATERMARK_NOTE", "unread_watermark"]

#: The warning when the watermark a label call wrote cannot be read back from its output.
UNREAD_WATERMARK_NOTE = ("the watermark was embedded but cannot be read back from the output (this content "
                         "gives the invisible mark too little to ride on: a small picture, noise, a single "
                         "tiny frame, a held tone...); do not rely on it for this file")


def unread_watermark(output: str | os.PathLike[str], result: Any, key: bytes | None) -> str | None:
    """:data:`UNREAD_WATERMARK_NOTE` when a picture's watermark, as written, is not found in ``output``;
    else None.

    Parameters
    ----------
    output : path-like
        The labeled file.
    result : labeler.pipeline.LabelResult
        What the label call returned (its ``layers["watermark"]`` and ``format``).
    key : bytes or None
        The key the mark was made with.

    The read is ``verify --quick``'s (the geometry as given; ~10-40 ms at 1080p). Pictures only: the
    image budget follows the content, and pure noise leaves the mark unreadable; the video mark has a
    uniform amplitude (read from one frame in every benchmark cell) and a video's read-back cost
    0.2-0.45 s a 1080p clip; reading a long soundtrack back would cost much more.
    """
    from detectors import verify
    from labeler.formats import medium

    mark = result.layers.get("watermark")
    if key is None or mark is None or mark.get("embedded") is False or medium(result.format) != "image":
        return None
    found = verify(output, key=key, layers="quick").watermark or {}
    if found.get("present") and found.get("payload") == mark.get("payload"):
        return None
    return UNREAD_WATERMARK_NOTE
