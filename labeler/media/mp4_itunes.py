"""iTunes-style tags of MP4-family files (``ilst`` items of a ``meta`` with handler ``mdir``) carried across
an ffmpeg re-encode.

ffmpeg writes its tags as mdta keys when asked to keep custom keys (``-movflags use_metadata_tags``,
which the label passes need: an AIGC key, a phone's ``com.apple.quicktime.*`` keys) and then writes no
iTunes items at all. A re-encoded M4A, MP4 or MOV so lost its cover and, for every reader that looks
at the iTunes items only (mutagen, iTunes / Music, most phone and car players), its title, artist,
album, track number and freeform items (ReplayGain, MusicBrainz IDs): ffprobe and exiftool still read
the keys. :func:`itunes_items` takes the source's items, byte for byte, and :func:`add_itunes_items` /
:func:`restore_itunes_items` put back those the new file lacks.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from labeler.atomic import atomic_output
from labeler.errors import LabelerError

__all__ = ["add_itunes_items", "itunes_items", "restore_itunes_items"]


def itunes_items(path: str | os.PathLike[str]) -> list[bytes]:
    """The items (whole boxes, in file order) of an MP4 file's iTunes-style tags; empty if none or not MP4."""
    from labeler.metadata import bmff_boxes as bx

    try:
        with open(path, "rb") as src:
            budget = bx.Budget()
            _, buf = bx.load_moov(src, bx.top_level(src, budget))
            return _items(buf, budget)
    except (LabelerError, OSError):
        return []


#: Items not carried over: ``©too`` names the encoding tool, which the re-encode changed.
_NOT_CARRIED = (b"\xa9too",)


def _items(buf: bytes, budget: Any) -> list[bytes]:
    from labeler.metadata import isobmff

    metas, _ = isobmff._metas(buf, budget)
    return [bytes(buf[item.box.start:item.box.end])
            for meta in metas if not meta.keyed for item in meta.items if item.box.type not in _NOT_CARRIED]


def _missing(items: list[bytes], present: list[bytes]) -> list[bytes]:
    """``items`` the new file does not hold: by item type, and for freeform ``----`` items (all of one
    type) and repeated types by their whole bytes."""
    types = {p[4:8] for p in present}
    return [it for it in items if it not in present and (it[4:8] == b"----" or it[4:8] not in types)]


def add_itunes_items(fresh: BinaryIO, out: BinaryIO, items: list[bytes]) -> None:
    """``fresh`` (an MP4 / M4A / MOV ffmpeg just wrote) with the iTunes items ``items`` it lacks, to ``out``.

    They go, byte for byte, at the end of ``fresh``'s own iTunes ``ilst`` when it has one (ffmpeg writes
    one without ``use_metadata_tags``: ALAC), else into a new iTunes-style ``meta`` (handler ``mdir``)
    put first in ``moov/udta``, before ffmpeg's keyed one: readers that look at the first ``meta`` only
    (mutagen, iTunes-style taggers) find the items, and ffmpeg, which reads the first ``keys`` table,
    and exiftool read both (the layout :mod:`labeler.metadata.isobmff` writes too).
    """
    from labeler.metadata import bmff_boxes as bx
    from labeler.metadata import copy_stream, isobmff

    budget = bx.Budget()
    layout = bx.top_level(fresh, budget)
    index, buf = bx.load_moov(fresh, layout)
    metas, _ = isobmff._metas(buf, budget)
    missing = _missing(items, _items(buf, budget))
    if not missing:
        fresh.seek(0)
        copy_stream(fresh, out)
        return
    own = next((m for m in metas if not m.keyed and m.ilst is not None), None)
    if own is not None:
        assert own.ilst is not None
        bx.splice(buf, [*own.path, own.box, own.ilst], own.ilst.end, own.ilst.end, b"".join(missing))
    else:
        hdlr = bx.box_bytes(b"hdlr", bytes(8) + b"mdirappl" + bytes(9))  # as ffmpeg writes iTunes tags
        meta = bx.box_bytes(b"meta", bytes(4) + hdlr + bx.box_bytes(b"ilst", b"".join(missing)))
        moov = bx.moov_root(buf)
        children, stop = bx.child_boxes(buf, moov, budget)
        udta = next((c for c in children if c.type == b"udta"), None)
        if udta is None:
            bx.splice(buf, [moov], stop, stop, bx.box_bytes(b"udta", meta))
        else:  # first in udta: mutagen and iTunes-style taggers read the first meta only
            bx.splice(buf, [moov, udta], udta.content, udta.content, meta)
    bx.rewrite(fresh, out, layout, {index: buf}, index, budget)


def restore_itunes_items(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Put ``src``'s iTunes items that ``dst`` lacks into ``dst`` (rewritten atomically).

    Returns the number of items added: 0 when ``src`` has none (or is not MP4-family) or ``dst`` kept
    them itself.
    """
    items = itunes_items(src)
    missing = _missing(items, itunes_items(dst)) if items else []
    if not missing:
        return 0
    with open(dst, "rb") as fresh, atomic_output(dst) as out:
        add_itunes_items(fresh, out, items)
    return len(missing)
