"""iTunes-style tags of MP4-family files (``ilst`` items of a ``meta`` with handler ``mdir``) carried across
an ffmpeg re-encode.

ffmpeg writes its tags as mdta keys when asked to keep custom keys (``-movflags use_metadata_tags``,
which the label passes need: an AIGC key, a phone's ``com.apple.quicktime.*`` keys) and then writes no
iTunes items at all. A re-encoded M4A, MP4 or MOV so lost its cover and, for every reader that looks
at the iTunes items only (mutagen, iTunes / Music, most phone and car players), its title, artist,
album, track number and freeform items (ReplayGain, MusicBrainz IDs): ffprobe and exiftool still read
the keys. :func:`itunes_items` takes the source's items, byte for byte, and :func:`add_itunes_items` /
:func:`restore_itunes_items` put back those the new file lacks, and remove the keys ffmpeg wrote for
them: ffmpeg 9 reads a tag held both ways twice and joins the copies ("My Title;My Title"), exiftool
lists it twice.
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

#: iTunes item type -> the tag name ffmpeg's mov demuxer reads it as (``mov_read_udta_string``, the same
#: in ffmpeg 5.1 and 9), which is the key name its muxer writes with ``use_metadata_tags``. A freeform
#: (``----``) item is read as its ``name``.
_FFMPEG_NAMES = {
    b"aART": "album_artist", b"akID": "account_type", b"apID": "account_id", b"catg": "category",
    b"cpil": "compilation", b"cprt": "copyright", b"desc": "description", b"disk": "disc",
    b"egid": "episode_uid", b"gnre": "genre", b"hdvd": "hd_video", b"keyw": "keywords", b"ldes": "synopsis",
    b"pcst": "podcast", b"pgap": "gapless_playback", b"purd": "purchase_date", b"rtng": "rating",
    b"soaa": "sort_album_artist", b"soal": "sort_album", b"soar": "sort_artist", b"soco": "sort_composer",
    b"sonm": "sort_name", b"sosn": "sort_show", b"stik": "media_type", b"trkn": "track",
    b"tven": "episode_id", b"tves": "episode_sort", b"tvnn": "network", b"tvsh": "show",
    b"tvsn": "season_number", b"\xa9ART": "artist", b"\xa9alb": "album", b"\xa9aut": "artist",
    b"\xa9cmt": "comment", b"\xa9com": "composer", b"\xa9cpy": "copyright", b"\xa9day": "date",
    b"\xa9des": "description", b"\xa9dir": "director", b"\xa9gen": "genre", b"\xa9grp": "grouping",
    b"\xa9lyr": "lyrics", b"\xa9nam": "title", b"\xa9prd": "producer", b"\xa9st3": "subtitle",
    b"\xa9wrt": "composer",
}
#: Keys never removed, whatever an item is called: the label's own (written by this project).
_KEPT_KEYS = (b"aigc",)


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
    missing = _missing(items, _items(buf, budget))
    dropped = isobmff.drop_keyed(buf, _ffmpeg_names(items, budget), budget)
    if not missing and not dropped:
        fresh.seek(0)
        copy_stream(fresh, out)
        return
    metas, _ = isobmff._metas(buf, budget)  # after the keys went: their boxes moved
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


def _ffmpeg_names(items: list[bytes], budget: Any) -> set[bytes]:
    """The tag names ffmpeg reads ``items`` as (:data:`_FFMPEG_NAMES`; a freeform item's own name)."""
    from labeler.metadata import bmff_boxes as bx
    from labeler.metadata import isobmff

    names = set()
    for raw in items:
        kind = raw[4:8]
        if kind == b"----":
            header = 16 if raw[:4] == b"\x00\x00\x00\x01" else 8
            name = isobmff._parse_item(raw, bx.Box(kind, 0, header, len(raw)), budget).name
            if name:
                names.add(name.encode("utf-8"))
        elif kind in _FFMPEG_NAMES:
            names.add(_FFMPEG_NAMES[kind].encode())
    return {n for n in names if n.lower() not in _KEPT_KEYS}


def _keyed_twice(path: str | os.PathLike[str], items: list[bytes]) -> bool:
    """Whether the MP4 at ``path`` has keys of the tags ``items`` hold (what
    :func:`labeler.metadata.isobmff.drop_keyed` would remove)."""
    from labeler.metadata import bmff_boxes as bx
    from labeler.metadata import isobmff

    with open(path, "rb") as src:
        budget = bx.Budget()
        _, buf = bx.load_moov(src, bx.top_level(src, budget))
        return isobmff.drop_keyed(buf, _ffmpeg_names(items, budget), budget)


def restore_itunes_items(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Put ``src``'s iTunes items that ``dst`` lacks into ``dst`` (rewritten atomically), and remove the
    keys ffmpeg wrote for them (the same tags, which ffmpeg 9 would read twice).

    Returns the number of items added: 0 when ``src`` has none (or is not MP4-family) or ``dst`` kept
    them itself.
    """
    items = itunes_items(src)
    if not items:
        return 0
    missing = _missing(items, itunes_items(dst))
    if not missing and not _keyed_twice(dst, items):
        return 0  # nothing to change: the file is not copied
    with open(dst, "rb") as fresh, atomic_output(dst) as out:
        add_itunes_items(fresh, out, items)
    return len(missing)
