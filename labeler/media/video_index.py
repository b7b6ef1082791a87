"""Where a video's frames lie in time, read without decoding: the container's keyframe index and a
stream's time base.

:func:`keyframe_times` lets the visible-label search seek straight to the windows it reads;
:func:`stream_time_base` lets a re-encode keep every frame's timestamp (variable frame rate too).
"""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from typing import IO

import numpy as np

from labeler.errors import CorruptFile
from labeler.media import ffmpeg as ff

#: Most samples a keyframe index is built for (a 24 h 60 fps video has 5.2 million).
MAX_INDEX_SAMPLES = 20_000_000


def keyframe_times(path: str | os.PathLike[str], stream: int) -> np.ndarray | None:
    """Decode times (s, ascending float64) of the keyframes of stream ``stream``, from the container's index.

    Read without decoding: the ``stss`` sync-sample table and ``stts`` durations of the stream's ``trak``
    in an MP4/MOV, the ``Cues`` of an MKV/WebM. None when the container has no index to tell (another
    format, Matroska without Cues, a damaged or oversized index): the caller then assumes nothing. An
    MP4 track without ``stss`` is all keyframes (ISO/IEC 14496-12 8.6.2). Times are decode times without
    the edit list's shift: good for planning seeks, not for exact presentation times.
    """
    from labeler.errors import LabelerError

    try:
        with open(path, "rb") as src:
            head = src.read(12)
            if head.startswith(b"\x1a\x45\xdf\xa3"):
                return _matroska_keyframes(src)
            if head[4:8] in (b"ftyp", b"moov", b"free", b"wide", b"mdat", b"skip"):
                return _bmff_keyframes(src, stream)
    except (LabelerError, OSError, ValueError):
        return None
    return None


def _bmff_keyframes(src: IO[bytes], stream: int) -> np.ndarray | None:
    from labeler.metadata import bmff_boxes as bx

    budget = bx.Budget()
    _, moov = bx.load_moov(src, bx.top_level(src, budget))
    traks = [b for b in bx.child_boxes(moov, bx.moov_root(moov), budget)[0] if b.type == b"trak"]
    if stream >= len(traks):
        return None

    def child(parent: bx.Box, kind: bytes) -> bx.Box | None:
        return next((b for b in bx.child_boxes(moov, parent, budget)[0] if b.type == kind), None)

    mdia = child(traks[stream], b"mdia")
    mdhd = child(mdia, b"mdhd") if mdia else None
    minf = child(mdia, b"minf") if mdia else None
    stbl = child(minf, b"stbl") if minf else None
    stts = child(stbl, b"stts") if stbl else None
    if mdhd is None or stbl is None or stts is None:
        return None
    version = moov[mdhd.content]
    timescale = int.from_bytes(moov[mdhd.content + (20 if version == 1 else 12):][:4], "big")
    entries = int.from_bytes(moov[stts.content + 4 : stts.content + 8], "big")
    if timescale <= 0 or stts.content + 8 + 8 * entries > stts.end:
        return None
    table = np.frombuffer(moov, ">u4", count=2 * entries, offset=stts.content + 8).reshape(-1, 2)
    counts = table[:, 0].astype(np.int64)
    if counts.sum() > MAX_INDEX_SAMPLES:
        return None
    dts = np.concatenate(([0], np.cumsum(np.repeat(table[:, 1].astype(np.int64), counts))[:-1]))
    stss = child(stbl, b"stss")
    if stss is None:
        return dts / timescale
    n = int.from_bytes(moov[stss.content + 4 : stss.content + 8], "big")
    if stss.content + 8 + 4 * n > stss.end:
        return None
    sync = np.frombuffer(moov, ">u4", count=n, offset=stss.content + 8).astype(np.int64) - 1
    sync = sync[(sync >= 0) & (sync < len(dts))]
    return np.sort(dts[sync] / timescale)


def _matroska_keyframes(src: IO[bytes]) -> np.ndarray | None:
    from labeler.metadata import ebml
    from labeler.metadata import matroska as mk

    top = mk.layout(src, strict=False)

    def load(element: ebml.Element) -> list[tuple[ebml.Element, bytes]]:
        return ebml.parse_children(mk._load(src, element), 2, 8)

    scale, video_track = 1_000_000, None
    for element in top.children:
        if element.id == 0x1549A966:  # Info: TimestampScale (ns per tick)
            scale = next((ebml.read_uint(d) for c, d in load(element) if c.id == 0x2AD7B1), scale)
        elif element.id == mk.TRACKS and video_track is None:
            for entry, data in load(element):
                fields = {c.id: d for c, d in ebml.parse_children(data, 3, 8)} if entry.id == 0xAE else {}
                if fields.get(0x83) is not None and ebml.read_uint(fields[0x83]) == 1:
                    video_track = ebml.read_uint(fields.get(0xD7, b""))
                    break
    cues = [e for e in top.children if e.id == mk.CUES]
    if not cues or video_track is None:
        return None
    times = []
    for point, data in load(cues[0]):
        if point.id != 0xBB:  # CuePoint
            continue
        fields = ebml.parse_children(data, 3, 8)
        at = next((ebml.read_uint(d) for c, d in fields if c.id == 0xB3), None)  # CueTime
        tracks = [ebml.read_uint(t) for c, d in fields if c.id == 0xB7  # CueTrackPositions / CueTrack
                  for t_el, t in ebml.parse_children(d, 4, 8) if t_el.id == 0xF7]
        if at is not None and video_track in tracks:
            times.append(at * scale / 1e9)
    return np.array(sorted(times), dtype=np.float64) if times else None


def stream_time_base(path: str | os.PathLike[str], stream: int) -> Fraction:
    """The time base of stream ``stream`` (seconds per timestamp tick, e.g. ``Fraction(1, 90000)``).

    What a re-encode needs to keep every frame's timestamp exactly (``-enc_time_base`` set to it, with
    ``-fps_mode passthrough``): without it ffmpeg re-times frames to ``1/frame rate``, which rounds a
    variable-frame-rate source's timestamps (and fails on two frames rounding to the same tick). Read
    from the header ffmpeg's ``framecrc`` muxer prints for a stream copy of one packet (no decoding).

    Raises
    ------
    CorruptFile
        ffmpeg cannot read the stream.
    """
    url = ff.input_url(path)
    proc = subprocess.run(
        [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-protocol_whitelist",
         ff.PROTOCOLS, "-i", url, "-map", f"0:{stream}", "-c", "copy", "-frames:v", "1", "-f", "framecrc",
         "-"],
        capture_output=True, timeout=ff.PROBE_TIMEOUT, **ff.CHILD,
    )
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        if line.startswith("#tb 0:"):
            num, _, den = line.split(":", 1)[1].strip().partition("/")
            if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0:
                return Fraction(int(num), int(den))
    reason = ff.error_line(proc.stderr, [url]) or "no time base"
    raise CorruptFile(f"cannot read the time base of stream {stream}: {reason}")
