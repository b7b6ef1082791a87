"""Cover pictures of MP4-family files (iTunes-style ``covr`` items) carried across an ffmpeg re-encode.

ffmpeg writes its tags as mdta keys when asked to keep custom keys (``-movflags use_metadata_tags``,
which the label passes need: an AIGC key, a phone's ``com.apple.quicktime.*`` keys) and then writes no
``covr`` at all, so a re-encoded M4A, MP4 or MOV lost its cover. :func:`mp4_covers` takes the source's
items, byte for byte, and :func:`add_mp4_covers` / :func:`restore_mp4_covers` put them back.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from labeler.atomic import atomic_output
from labeler.errors import LabelerError

__all__ = ["add_mp4_covers", "mp4_covers", "restore_mp4_covers"]


def mp4_covers(path: str | os.PathLike[str]) -> list[bytes]:
    """The ``covr`` items (whole boxes) of an MP4 file's iTunes-style tags; empty if none or not MP4."""
    from labeler.metadata import bmff_boxes as bx
    from labeler.metadata import isobmff

    try:
        with open(path, "rb") as src:
            budget = bx.Budget()
            _, buf = bx.load_moov(src, bx.top_level(src, budget))
            metas, _ = isobmff._metas(buf, budget)
    except (LabelerError, OSError):
        return []
    return [bytes(buf[item.box.start:item.box.end])
            for meta in metas if not meta.keyed for item in meta.items if item.box.type == b"covr"]


def add_mp4_covers(fresh: BinaryIO, out: BinaryIO, covers: list[bytes]) -> None:
    """``fresh`` (an MP4 / M4A / MOV ffmpeg just wrote) with the cover items ``covers`` added, to ``out``.

    ffmpeg writes its tags as mdta keys (``use_metadata_tags``, so an AIGC key survives) and then
    writes no ``covr`` at all: the source's cover items go, byte for byte, into an iTunes-style
    ``meta`` (handler ``mdir``) after ffmpeg's in ``moov/udta``, the layout
    :mod:`labeler.metadata.isobmff` keeps and ffmpeg, exiftool and mutagen read.
    """
    from labeler.metadata import bmff_boxes as bx
    from labeler.metadata import copy_stream, isobmff

    budget = bx.Budget()
    layout = bx.top_level(fresh, budget)
    index, buf = bx.load_moov(fresh, layout)
    if any(item.box.type == b"covr" for meta in isobmff._metas(buf, budget)[0] for item in meta.items):
        fresh.seek(0)  # an ffmpeg that writes covers with mdta keys: nothing to add
        copy_stream(fresh, out)
        return
    hdlr = bx.box_bytes(b"hdlr", bytes(8) + b"mdirappl" + bytes(9))  # as ffmpeg writes iTunes tags
    meta = bx.box_bytes(b"meta", bytes(4) + hdlr + bx.box_bytes(b"ilst", b"".join(covers)))
    moov = bx.moov_root(buf)
    children, stop = bx.child_boxes(buf, moov, budget)
    udta = next((c for c in children if c.type == b"udta"), None)
    if udta is None:
        bx.splice(buf, [moov], stop, stop, bx.box_bytes(b"udta", meta))
    else:
        _, at = bx.child_boxes(buf, udta, budget)
        bx.splice(buf, [moov, udta], at, at, meta)
    bx.rewrite(fresh, out, layout, {index: buf}, index, budget)


def restore_mp4_covers(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Put ``src``'s cover items into ``dst`` (rewritten atomically) when ``dst`` has none.

    Returns the number of items added: 0 when ``src`` has no cover (or is not MP4-family) or ``dst``
    kept them itself.
    """
    covers = mp4_covers(src)
    if not covers or mp4_covers(dst):
        return 0
    with open(dst, "rb") as fresh, atomic_output(dst) as out:
        add_mp4_covers(fresh, out, covers)
    return len(covers)
