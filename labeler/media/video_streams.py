"""Which streams of a video an ffmpeg pass carries over, and how: alpha planes and picture attachments.

A pass that re-encodes the picture (the watermark, the visible label, the soundtrack mark) maps every
other stream from the source. Two kinds need more than a map: a VP8/VP9 alpha plane, which ffmpeg's own
decoders ignore (:func:`alpha_plane_decoder`), and a Matroska picture attachment, which ffmpeg would
remux as a video track (:func:`picture_attachments`).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from labeler.errors import CorruptFile
from labeler.media import ffmpeg as ff
from labeler.media.video import VideoInfo

__all__ = ["ALPHA_DECODERS", "ALPHA_SUFFIXES", "Attachment", "FrameFacts", "alpha_plane_decoder",
           "attach_args", "chapter_tracks", "derived_tag_args", "disposition_args", "drop_derived_keys",
           "frame_facts", "has_alpha", "is_timecode_track", "odd_rotation", "other_video_streams",
           "picture_attachments", "require_complete", "require_one_size", "require_video_file",
           "start_offset_args", "timecode_args"]


#: VP8/VP9 keep an alpha plane beside the picture (Matroska BlockAdditional, tagged ``alpha_mode=1``)
#: that ffmpeg's own decoders ignore; libvpx's decoders read it and its encoders write it (yuva420p).
ALPHA_DECODERS = {"vp9": "libvpx-vp9", "vp8": "libvpx"}
#: Containers the alpha plane of a VP8/VP9 stream can be written to (MP4 has no place for it).
ALPHA_SUFFIXES = {".webm", ".mkv"}
#: Coded formats with an alpha channel (ffmpeg's names), which a yuv420p conversion drops.
_ALPHA_PIX_FMT = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr|pal8)")


def require_complete(path: str | os.PathLike[str], container: str) -> None:
    """Refuse a video file cut short (an interrupted download or copy) before a pass re-encodes it.

    The pass decodes the video stream with ``-xerror``, but copies every other stream: a cut that falls
    in the soundtrack (the last bytes of an interleaved file are often audio), or between two whole
    packets, was labeled with exit 0 and the soundtrack's end missing (an MP4 cut at 99.5 %: 44 of 45
    AAC packets, FLV the same, AVI cut at 97 %: 41 of 45). ``container`` is ffmpeg's demuxer name
    (:attr:`labeler.media.ffmpeg.MediaInfo.container`). MP4 / MOV and Matroska / WebM: the checks the
    label stage makes (:func:`labeler.metadata.bmff_boxes.require_complete`,
    :func:`labeler.metadata.matroska.require_complete`); AVI: a top-level RIFF chunk that runs past the
    end; FLV: a tag that does. Only headers are read. A size a streaming writer left unknown (0 or
    0xFFFFFFFF) is taken as it is: nothing tells where such a file should end.

    Raises
    ------
    CorruptFile
        "the file is cut short: ..." naming the box, chunk or tag that runs past the end.
    """
    names = set(container.split(","))
    if names & {"mov", "mp4"}:
        from labeler.metadata.bmff_boxes import require_complete as bmff_complete

        bmff_complete(path)
    elif names & {"matroska", "webm"}:
        from labeler.metadata import matroska

        matroska.require_complete(path)
    elif "avi" in names:
        _riff_complete(path)
    elif "flv" in names:
        _flv_complete(path)


def require_video_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Refuse a source whose content is a still image (or an image format's animation), as ``aigc label``
    does.

    ffmpeg opens a PNG or JPEG (whatever its name) as a one-frame video: through the API alone, the
    video passes wrote a PNG named ``.mp4`` as a one-frame H.264 MP4 (``codec_from: "png"``), where the
    pipeline refuses the output name (:func:`labeler.formats.check_extension`). An audio file is left to
    the probe ("not a video: no video stream"); content this toolkit does not sniff (MPEG-TS, Y4M...)
    to ffmpeg, as before.

    Raises
    ------
    InvalidArgument
        ``dst``'s extension does not fit the source's format: the pipeline's own words.
    UnsupportedFormat
        The source is an image written to a name of its own format.
    """
    from labeler.errors import LabelerError, UnsupportedFormat
    from labeler.formats import IMAGE_FORMATS, check_extension, sniff_file

    try:
        fmt = sniff_file(src)
    except LabelerError:
        return  # not a format this toolkit names (or unreadable): ffmpeg's probe says what it is
    if fmt in IMAGE_FORMATS:
        check_extension(fmt, dst)
        raise UnsupportedFormat(f"not a video: this file is a {fmt} image (label it as an image)")


def other_video_streams(info: VideoInfo) -> list[str]:
    """The video tracks a pixel pass leaves unmarked, as ``"stream 1 (h264, 320x240)"``: the passes mark
    the first video stream (:func:`labeler.media.video.video_info`) and copy every other one as it is
    (another camera angle came out with no watermark and no visible label, without a word). Cover
    pictures are not video tracks."""
    return [f"stream {s.index} ({s.codec}" + (f", {s.width}x{s.height})" if s.width and s.height else ")")
            for s in info.media.video if s.index != info.stream]


def odd_rotation(info: VideoInfo) -> float | None:
    """The display rotation (degrees) when it is not a quarter turn, else None.

    ffmpeg turns quarter turns upright within 1 degree (transpose / flips, which the passes write
    untagged); any other angle it applies with its ``rotate`` filter inside the stored frame size, so
    the picture's corners are cut off, and the output carries no rotation tag (45 degrees was dropped
    without a word)."""
    turn = info.rotation
    if turn is None or abs(turn - 90 * round(turn / 90)) < 1.0:
        return None
    return float(turn)


#: showinfo's line for a frame: its time and its size (``s:WxH``).
_SHOWINFO_SIZE = re.compile(r"pts_time:\s*(-?[\d.]+|N/A).*?\ss:(\d+)x(\d+)\s")


def require_one_size(src: str | os.PathLike[str], info: VideoInfo) -> None:
    """Refuse a video whose frame size changes mid-stream (a stream spliced from two sizes).

    A pass writes one frame size: ffmpeg scaled every frame after the change to the first frame's size
    (320x240 then 640x480 came out all 320x240, the second part at a quarter of its pixels), without a
    word. The frames can only be labeled by changing the video, which a label must not do unasked: the
    caller makes it one size (or labels it with the metadata and C2PA layers, which do not re-encode).
    A size change starts a new coded sequence, so only key frames are decoded (``-skip_frame nokey``),
    and the scan stops at the first change. A stream that cannot be read here passes: the pass itself
    refuses a damaged one.

    Raises
    ------
    UnsupportedFormat
        One line naming both sizes and where the second starts.
    """
    from labeler.errors import UnsupportedFormat

    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "info", "-skip_frame", "nokey",
            "-noautorotate", "-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(src),
            "-map", f"0:{info.stream}", "-an", "-sn", "-dn", "-vf", "showinfo=checksum=0", "-f", "null", "-"]
    first, change, drained = (info.width, info.height), None, False
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **ff.CHILD)
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:  # line by line: an hour of key frames is never held at once
            found = _SHOWINFO_SIZE.search(raw.decode("utf-8", "replace"))
            if found is None:
                continue
            size = (int(found.group(2)), int(found.group(3)))
            if size != first:
                change = (size, found.group(1))
                break
        else:
            drained = True
    finally:
        # stopped early (a change found, or an exception): kill it, it may block on a full stderr pipe
        ff.stop(proc, kill=not drained)
        if proc.stderr is not None:
            proc.stderr.close()
    if change is not None:
        (w, h), at = change
        when = "" if at == "N/A" else f" from {float(at):.2f} s"
        raise UnsupportedFormat(
            f"the video changes frame size mid-stream ({first[0]}x{first[1]}, then {w}x{h}{when}): a "
            "pixel pass writes one size and would scale the rest to the first; make it one size first, "
            "or label it with the metadata and c2pa layers only")


#: RIFF sizes a streaming writer leaves when it never came back to fill them in.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
#: FLV tag types: audio, video, script data (the filter bit, 0x20, may be set on any of them).
_FLV_TAGS = (8, 9, 18)
#: FLV tags walked at most (an hour of 30 fps video with its audio is ~200,000): past it, taken as is.
_FLV_MAX_TAGS = 4_000_000


def _cut(what: str, pos: int, declared: int, present: int) -> CorruptFile:
    # worded as labeler.metadata.bmff_boxes words a box that runs past the end (header included)
    return CorruptFile(f"the file is cut short: {what} at offset {pos} runs past the end of the file "
                       f"({declared} bytes declared, {present} present)")


def _riff_complete(path: str | os.PathLike[str]) -> None:
    """The top-level chunks of an AVI (``RIFF AVI `` and OpenDML's ``RIFF AVIX`` extensions) end
    within the file."""
    import struct

    with open(path, "rb") as src:
        size = src.seek(0, os.SEEK_END)
        pos = 0
        while size - pos >= 8:
            src.seek(pos)
            cid, length = struct.unpack("<4sI", src.read(8))
            if cid not in (b"RIFF", b"LIST", b"JUNK") or length in _UNKNOWN_SIZES:
                return  # bytes after the last chunk, or a size never written: nothing to tell
            end = pos + 8 + length + (length & 1)
            if pos + 8 + length > size:
                raise _cut(f"avi chunk {cid.decode('latin-1')!r}", pos, 8 + length, size - pos)
            pos = end


def _flv_complete(path: str | os.PathLike[str]) -> None:
    """Every tag of an FLV ends within the file (E.4.1 of Adobe's FLV spec v10.1: 11-byte header, data,
    4-byte PreviousTagSize)."""
    import struct

    with open(path, "rb") as src:
        size = src.seek(0, os.SEEK_END)
        src.seek(0)
        head = src.read(9)
        if len(head) < 9 or head[:3] != b"FLV":
            return
        pos = struct.unpack(">I", head[5:9])[0] + 4  # the header, then PreviousTagSize0
        for _ in range(_FLV_MAX_TAGS):
            if size - pos < 11:
                if size > pos:  # a tag header cut in two
                    raise _cut("flv tag", pos, 11, size - pos)
                return
            src.seek(pos)
            tag = src.read(11)
            if tag[0] & 0x1F not in _FLV_TAGS:
                return  # not a tag: trailing bytes some writers leave, taken as they are
            length = 11 + int.from_bytes(tag[1:4], "big") + 4
            if pos + length > size:
                raise _cut("flv tag", pos, length, size - pos)
            pos += length


def has_alpha(info: VideoInfo) -> bool:
    """True when the video has an alpha channel: an alpha pixel format, or VP8/VP9's ``alpha_mode`` tag."""
    stream = next(s for s in info.media.streams if s.index == info.stream)
    tags = {k.lower(): v for k, v in stream.metadata.items()}
    return tags.get("alpha_mode") == "1" or bool(_ALPHA_PIX_FMT.match(info.pix_fmt or ""))


def alpha_plane_decoder(info: VideoInfo, suffix: str) -> str | None:
    """The libvpx decoder that reads the source's alpha plane when it can be written again, else None.

    Only VP8/VP9 alpha (8-bit 4:2:0, the one layout libvpx codes with alpha) written back to WebM or
    Matroska is kept: a pass decodes the picture and its alpha plane with this decoder and encodes
    ``yuva420p`` with the libvpx encoder of the same family.
    """
    if info.pix_fmt not in ("yuv420p", "yuva420p") or suffix.lower() not in ALPHA_SUFFIXES:
        return None
    if not has_alpha(info):
        return None
    return ALPHA_DECODERS.get(info.codec)


#: Containers that keep attachments (Matroska; WebM has no place for them).
_ATTACHMENT_SUFFIXES = {".mkv", ".mka", ".mk3d"}
_PICTURE_TYPES = {"mjpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp",
                  "gif": "image/gif"}


@dataclass(frozen=True)
class Attachment:
    """A Matroska picture attachment (a cover) copied out of the source for an ffmpeg pass.

    ffmpeg demuxes a Matroska attachment that is a picture as an ``attached pic`` video stream and,
    even with ``-c copy``, writes it back as a one-frame MJPEG/PNG **video track** (ffmpeg 5.1 and 7
    alike), so a pass leaves it out of ``-map`` and attaches the file again (:func:`attach_args`).
    """

    index: int
    path: str
    tags: dict[str, str]


def picture_attachments(src: str, media: ff.MediaInfo, dst: str, workdir: str) -> list[Attachment]:
    """The source's Matroska picture attachments, each written to a file in ``workdir``; empty when it
    has none or ``dst`` is not Matroska (WebM keeps no attachments: the stream is then mapped as before).

    Raises
    ------
    CorruptFile
        ffmpeg could not copy an attachment out.
    """
    if os.path.splitext(dst)[1].lower() not in _ATTACHMENT_SUFFIXES:
        return []
    found = [s for s in media.streams if s.attached_pic and "filename" in {k.lower() for k in s.metadata}]
    if not found:
        return []
    out: list[Attachment] = []
    args = ["-loglevel", "error", "-y", "-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(src)]
    for number, stream in enumerate(found):
        path = os.path.join(workdir, f"attachment-{number}")
        args += ["-map", f"0:{stream.index}", "-c", "copy", "-f", "data", "file:" + path]
        tags = {k.lower(): v for k, v in stream.metadata.items() if k.lower() not in ("duration",)}
        tags.setdefault("mimetype", _PICTURE_TYPES.get(stream.codec, "application/octet-stream"))
        out.append(Attachment(stream.index, path, tags))
    ff.run(args, error=CorruptFile, names=[ff.input_url(src)])
    return out


#: Containers whose muxer (ffmpeg's mov/mp4) writes a QuickTime timecode track itself.
_MOV_SUFFIXES = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}


def is_timecode_track(stream: ff.StreamInfo, dst: str) -> bool:
    """A QuickTime timecode track (``tmcd``, a data stream ffmpeg names codec ``none``) written to MP4/MOV.

    ffmpeg cannot copy it (the MP4 muxer refuses it: "could not find tag for codec none", so every
    pass failed on a camera's MP4 with a timecode track before 2026-12-07); its muxer writes the track
    again from the video stream's ``timecode`` tag (:func:`timecode_args`), so the passes leave it out of
    their maps."""
    return (stream.kind == "data" and stream.codec == "none" and "timecode" in stream.metadata
            and os.path.splitext(dst)[1].lower() in _MOV_SUFFIXES)


# An MP4/MOV chapter track in ffmpeg's banner: the mov demuxer turns the 'text' track a 'chap' reference
# names into a data stream ("Data: bin_data (text / 0x74786574)") and its samples into the chapters.
_CHAPTER_TRACK = re.compile(r"^\s*Stream #0:(\d+)\S*: Data: bin_data \(text / 0x74786574\)", re.MULTILINE)


def chapter_tracks(src: str, media: ff.MediaInfo) -> frozenset[int]:
    """Stream indexes of the MP4/MOV chapter text tracks of ``src``, which the passes leave out of their maps.

    ffmpeg carries the chapters themselves over (``-map_chapters``, its default) and the MP4/MOV muxer
    writes a chapter track for them; the copied track came as well, as a second data track that the muxer
    tags ``gpmd`` (GoPro telemetry), so every labelled MP4 with chapters had a bogus track. ffmpeg's
    banner is read again (one start-up) only for an MOV-family source with a ``bin_data`` stream.
    """
    if not media.container.startswith("mov") or not any(
            s.kind == "data" and s.codec == "bin_data" for s in media.streams):
        return frozenset()
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", ff.PROTOCOLS,
            "-i", ff.input_url(src)]
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=ff.PROBE_TIMEOUT,
                              **ff.CHILD)
    except subprocess.TimeoutExpired:
        return frozenset()
    header = proc.stderr.decode("utf-8", "replace").split("\nOutput #", 1)[0]
    return frozenset(int(m.group(1)) for m in _CHAPTER_TRACK.finditer(header))


def timecode_args(media: ff.MediaInfo, video: int, out_index: int, dst: str) -> list[str]:
    """``-metadata:s:N timecode=...`` for the output video stream when a timecode track left out of the
    maps (:func:`is_timecode_track`) has a timecode the video stream's own tags lack."""
    video_stream = next((s for s in media.streams if s.index == video), None)
    if video_stream is None or "timecode" in video_stream.metadata:
        return []
    track = next((s for s in media.streams if is_timecode_track(s, dst)), None)
    return [] if track is None else [f"-metadata:s:{out_index}", f"timecode={track.metadata['timecode']}"]


def start_offset_args(media: ff.MediaInfo) -> list[str]:
    """``-output_ts_offset`` for a source that starts after 0 (a cut from a longer recording, a capture).

    ffmpeg moves every input to start at 0 when it transcodes, so before 2026-12-07 a source starting at
    10 s came out starting at 0 (its copied streams too); the offset puts the file's own start back."""
    if media.start is None or media.start <= 0:
        return []
    return ["-output_ts_offset", f"{media.start:.6f}"]


def attach_args(attachments: Sequence[Attachment], first: int) -> list[str]:
    """``-attach`` arguments for ``attachments``, whose output streams follow the ``first`` mapped ones."""
    args: list[str] = []
    for number, item in enumerate(attachments):
        args += ["-attach", item.path]
        for name, value in item.tags.items():
            args += [f"-metadata:s:{first + number}", f"{name}={value}"]
    return args


def disposition_args(media: ff.MediaInfo, index: int, out_index: int) -> list[str]:
    """``-disposition:N`` for a re-encoded stream (source stream ``index``, output stream ``out_index``):
    the source stream's default flag.

    A stream that comes out of a filter graph or a pipe has no disposition of its own, so the Matroska
    muxer wrote the labeled video with FlagDefault 0: a source's default video track stopped being the
    default. (Copied streams keep theirs: ffmpeg copies them from their input stream.)"""
    stream = next((s for s in media.streams if s.index == index), None)
    return [] if stream is None else [f"-disposition:{out_index}", "default" if stream.default else "0"]


#: Tags ffmpeg's mov demuxer makes from boxes (``ftyp``, ``mvhd``), which ``-movflags use_metadata_tags``
#: writes again as keys: ffmpeg 9 then reads both copies and joins them ("isom;isom", a creation time
#: that parses as none), and a later ffmpeg pass writes the joined text back (mvhd time 0).
_DERIVED_KEYS = {b"major_brand", b"minor_version", b"compatible_brands", b"creation_time"}


def derived_tag_args(media: ff.MediaInfo, dst: str) -> list[str]:
    """``-metadata`` for the MP4/MOV ``dst``'s :data:`_DERIVED_KEYS` tags that ffmpeg read doubled.

    ffmpeg 9 reads a source that carries them as keys too (a file ffmpeg wrote with
    ``use_metadata_tags``, one labeled before :func:`drop_derived_keys`) as ``"X;X"``; the muxer takes
    that text as the creation time, which then parses as none (mvhd time 0). One copy is put back when
    every part is the same."""
    if os.path.splitext(dst)[1].lower() not in _MOV_SUFFIXES:
        return []
    args: list[str] = []
    for key in sorted(k.decode() for k in _DERIVED_KEYS):
        parts = set(media.metadata.get(key, "").split(";"))
        if ";" in media.metadata.get(key, "") and len(parts) == 1:
            args += ["-metadata", f"{key}={parts.pop()}"]
    return args


def drop_derived_keys(path: str) -> None:
    """Remove :data:`_DERIVED_KEYS` from the keyed (``mdta``) metadata of an MP4/MOV/M4A file ffmpeg has just
    written with ``use_metadata_tags`` (rewritten atomically; other files and keys are left alone).

    Their values stay where ffmpeg reads them from: the brands in ``ftyp``, the time in ``mvhd``.
    """
    if os.path.splitext(path)[1].lower() not in _MOV_SUFFIXES | {".m4a", ".m4b"}:
        return
    from labeler.atomic import atomic_output
    from labeler.metadata import bmff_boxes as bx
    from labeler.metadata import isobmff

    with open(path, "rb") as fresh:
        budget = bx.Budget()
        layout = bx.top_level(fresh, budget)
        index, buf = bx.load_moov(fresh, layout)
        if not isobmff.drop_keyed(buf, _DERIVED_KEYS, budget):
            return
        with atomic_output(path) as out:
            bx.rewrite(fresh, out, layout, {index: buf}, index, budget)


@dataclass(frozen=True)
class FrameFacts:
    """What a video's first decoded frame says that the stream header does not (see :func:`frame_facts`).

    Attributes
    ----------
    field_order : str or None
        ``"tt"`` (top field first) or ``"bb"`` for an interlaced picture, None for a progressive one.
    mastering : tuple of float or None
        HDR10 mastering display: the red, green, blue and white-point CIE x, y (8 values) then the minimum
        and maximum luminance in cd/m².
    light_level : tuple of int or None
        HDR10 content light level: MaxCLL and MaxFALL in cd/m².
    start : float or None
        Presentation time of the first frame (seconds) counted from the file's start, as ffmpeg moves
        every input when it transcodes: above 0 when the video starts after another stream (AAC priming
        in Matroska, a clip placed later on its soundtrack, an MP4 edit list).
    """

    field_order: str | None = None
    mastering: tuple[float, ...] | None = None
    light_level: tuple[int, int] | None = None
    start: float | None = None


_NUM = r"([0-9.]+)[,\s]\s*([0-9.]+)"
# showinfo's side-data lines (ffmpeg 5.1 "mastering display:", 9.0 "Mastering display metadata:");
# its blue pair has no comma ("b(0.1500 0.0600)"), hence [,\s].
_MASTERING = re.compile(rf"mastering display.*?r\({_NUM}\) g\({_NUM}\) b\({_NUM}\) wp\({_NUM}\)"
                        r".*?min_luminance=([0-9.]+), max_luminance=([0-9.]+)", re.IGNORECASE)
_LIGHT = re.compile(r"MaxCLL=(\d+), MaxFALL=(\d+)")
_INTERLACE = re.compile(r" i:([TBP?]) ")
_FIRST_TIME = re.compile(r"\bn:\s*0\s+pts:\s*-?\d+\s+pts_time:(-?[0-9.]+(?:e-?\d+)?)")


def frame_facts(src: str, stream: int) -> FrameFacts:
    """Field order, HDR10 static metadata and time of the first frame of ``src``'s stream ``stream``.

    Both live in the coded frames (H.264/HEVC SEI, field flags), which a pass re-encoding the picture
    does not carry over by itself: ffmpeg 5.1's libx265 drops the mastering display and light level, raw
    frames from a pipe carry none, and libx264 codes every frame progressive unless told otherwise, so an
    interlaced source came out as combed progressive frames. One decoded frame (ffmpeg's ``showinfo``
    filter, so the wheel's ffmpeg without ffprobe can tell) is enough: these are per-stream properties.
    A frame that cannot be read gives the empty facts; the pass itself reports a damaged input.
    """
    args = ["-hide_banner", "-nostdin", "-loglevel", "info", "-protocol_whitelist", ff.PROTOCOLS,
            "-i", ff.input_url(src), "-map", f"0:{stream}", "-an", "-sn", "-dn", "-frames:v", "1",
            "-vf", "showinfo", "-f", "null", "-"]
    try:
        proc = subprocess.run([ff.ffmpeg_exe(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=ff.PROBE_TIMEOUT, **ff.CHILD)
    except subprocess.TimeoutExpired:
        return FrameFacts()
    text = proc.stderr.decode("utf-8", "replace")
    field = _INTERLACE.search(text)
    mastering, light = _MASTERING.search(text), _LIGHT.search(text)
    first = _FIRST_TIME.search(text)
    return FrameFacts(
        field_order={"T": "tt", "B": "bb"}.get(field.group(1)) if field else None,
        mastering=tuple(float(v) for v in mastering.groups()) if mastering else None,
        light_level=(int(light.group(1)), int(light.group(2))) if light else None,
        start=float(first.group(1)) if first else None,
    )
