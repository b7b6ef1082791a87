"""The ffmpeg side of the video watermark pass: which pixel format the frames are marked in, how big a
raw frame is, and the command lines of the decoder (raw frames out) and of the encoder (marked frames in,
the visible label drawn in its filter graph, every other stream copied with its tags and place).

:func:`labeler.watermark.video.watermark_video` runs them; this module only builds them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from labeler.media import ffmpeg as ff
from labeler.media import timed
from labeler.media.video import VideoInfo, upright_sample_aspect
from labeler.media.video_encoders import Encoding, container_args, overlay_format, pix_fmt_traits
from labeler.media.video_index import stream_time_base
from labeler.media.video_streams import (
    Attachment,
    attach_args,
    chapter_tracks,
    derived_tag_args,
    disposition_args,
    is_timecode_track,
    start_offset_args,
    timecode_args,
)

__all__ = ["KEEP_PIX_FMTS", "Overlay", "marked_pix_fmt", "written_like", "frame_size", "upright_size",
           "decoder_args", "colour_tags", "encoder_args"]

#: 8-bit planar YUV formats the pass keeps as they are: name -> chroma subsampling (x, y) as shifts.
#: The luma plane is the first ``W * H`` bytes of a frame in each (only luma is marked: the chroma
#: planes go through untouched, whatever their layout, so 4:4:0 and DV's 4:1:1 are kept too rather than
#: resampled to 4:2:2 / 4:2:0, which lost half their chroma on one axis). Deeper YUV is marked in the
#: 8-bit form of its own layout; RGB, packed and paletted frames are converted to yuv420p, the format
#: every player takes.
KEEP_PIX_FMTS: dict[str, tuple[int, int]] = {
    "yuv420p": (1, 1), "yuvj420p": (1, 1),
    "yuv422p": (1, 0), "yuvj422p": (1, 0),
    "yuv444p": (0, 0), "yuvj444p": (0, 0),
    "yuv440p": (0, 1), "yuvj440p": (0, 1),
    "yuv411p": (2, 0), "yuvj411p": (2, 0),
    "yuv410p": (2, 2),
}

_MOV_SUFFIXES = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}
#: RGB-coded formats: ffmpeg converts them to YUV with its default matrix, BT.601 in limited range
#: (measured with ffmpeg 5.1 and 7/9: pure red comes out Y 81, Cb 90, Cr 240), so the output is tagged so;
#: the source's own tags (``gbr``, full range) describe RGB and are refused by a YUV encoder.
_RGB_PIX_FMT = re.compile(r"^(0?rgb|0?bgr|gbr|argb|abgr|x2rgb|x2bgr|pal8|monob|monow)")
_RGB_TO_YUV_TAGS = ("smpte170m", "tv")


def marked_pix_fmt(source: str | None) -> str:
    """The 8-bit planar format the frames are marked in: the source's (:data:`KEEP_PIX_FMTS`), else the
    8-bit form of its chroma layout (every YUV subsampling has one there: a 10-bit 4:4:0 source is
    marked as ``yuv440p``), else ``yuv420p`` (RGB, gray, packed...)."""
    if source in KEEP_PIX_FMTS:
        assert source is not None
        return source
    traits = pix_fmt_traits(source)
    if traits is not None and traits.kind == "yuv":
        for name, shifts in KEEP_PIX_FMTS.items():
            if shifts == traits.chroma and not name.startswith("yuvj"):
                return name
    return "yuv420p"


def written_like(source: str | None, marked: str) -> str:
    """The format the encoder is asked to keep: the source's when it is YUV of the marked frames' chroma
    (a 10-bit source is written at 10 bits again, as its codec profile and any HDR signalling need),
    else the marked frames' own."""
    src, mine = pix_fmt_traits(source), pix_fmt_traits(marked)
    if src is not None and mine is not None and src.kind == "yuv" and src.chroma == mine.chroma:
        assert source is not None
        return source
    return marked


def frame_size(pix_fmt: str, width: int, height: int) -> int:
    """Bytes of one raw frame of ``pix_fmt`` (a :data:`KEEP_PIX_FMTS` format) at ``width`` x ``height``."""
    sx, sy = KEEP_PIX_FMTS[pix_fmt]
    cw, ch = -(-width // (1 << sx)), -(-height // (1 << sy))
    return width * height + 2 * cw * ch


def upright_size(info: VideoInfo) -> tuple[int, int]:
    """(height, width) of the decoded frames: ffmpeg turns rotated frames upright when transcoding."""
    quarter = round((info.rotation or 0) / 90) % 2
    return (info.width, info.height) if quarter else (info.height, info.width)


@dataclass(frozen=True)
class Overlay:
    """The visible label drawn in the encoder's filter graph: a PNG, its place, its time expression."""

    png: str
    x: int
    y: int
    enable: str | None


def decoder_args(src: str, info: VideoInfo, pix_fmt: str) -> list[str]:
    # -xerror: a truncated or damaged input is refused, never labeled with frames missing.
    return [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-xerror",
            "-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(src), "-map", f"0:{info.stream}",
            "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:"]


def colour_tags(info: VideoInfo, stream: ff.StreamInfo, out_index: int) -> list[str]:
    """``-colorspace``/``-color_range``/``-color_primaries``/``-color_trc`` for the output: the source's
    (the frames come from a pipe that carries none: an HDR source's BT.2020 / PQ tags were lost, so
    players showed it as SDR), except the matrix and range of frames converted from RGB, whose tags
    (``gbr``) describe no YUV and are refused by the encoder. Primaries and transfer describe the
    light, not the coding, so they stay with 10-bit sources written as 8-bit too."""
    space, rng = stream.color_space, stream.color_range
    if info.pix_fmt not in KEEP_PIX_FMTS and (space == "gbr" or _RGB_PIX_FMT.match(info.pix_fmt or "")):
        space, rng = _RGB_TO_YUV_TAGS
    tags = (("-colorspace", space), ("-color_range", rng), ("-color_primaries", stream.color_primaries),
            ("-color_trc", stream.color_trc))
    return [arg for option, value in tags if value and value != "unknown"
            for arg in (f"{option}:{out_index}", value)]


def encoder_args(src: str, info: VideoInfo, pix_fmt: str, size: tuple[int, int], encoding: Encoding,
                  overlay: Overlay | None, out: str,
                  alpha_decoder: str | None = None, attachments: Sequence[Attachment] = (),
                  field_order: str | None = None, video_start: float | None = None) -> list[str]:
    """ffmpeg arguments: raw frames on stdin (input 0), the label PNG (1, optional), the source (last).

    With ``alpha_decoder`` the source is also decoded (by that decoder) for its alpha plane, which is
    merged with the marked frames (``encoding.pix_fmt`` is then ``yuva420p``). ``attachments`` (Matroska
    pictures) are left out of the maps and attached again after the mapped streams. ``field_order``
    (``"tt"``/``"bb"``: an interlaced source) flags the piped frames, which carry none. ``video_start``
    (seconds from the file's start to the first frame, ``FrameFacts.start`` of
    :mod:`labeler.media.video_streams`) places the frames of the constant-rate raw pipe, which start
    at 0, where the source's video started."""
    h, w = size
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    # the colour tags on the piped frames as well: ffmpeg 7 takes an encoder's primaries and transfer
    # from its frames, and raw frames carry none (ffmpeg 5.1 takes the output options below)
    video_stream = next(s for s in info.media.streams if s.index == info.stream)
    tagged = [a.split(":")[0] if a.startswith("-") else a for a in colour_tags(info, video_stream, 0)]
    keeps_times = pix_fmt in timed.FOURCC
    if keeps_times:
        # Frames come with their own times (labeler.media.timed): a variable frame rate is kept. Those
        # times count from the source's start (its decoder moved the file to start at 0), so the source
        # is moved by the same amount and no input is moved again (-copyts): ffmpeg otherwise moves each
        # input to start at 0 on its own, and a video starting after the file's start (AAC priming in
        # MKV, Opus pre-skip in WebM) came out shifted against the copied sound and subtitles.
        args += ["-copyts", "-f", "matroska", *tagged, "-i", "pipe:0"]
    else:
        args += ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-framerate", info.frame_rate,
                 *tagged, "-i", "pipe:0"]
    if overlay is not None:
        args += ["-i", ff.input_url(overlay.png)]
    src_in = 2 if overlay is not None else 1
    if alpha_decoder is not None:  # only this stream is decoded from the source; the others are copied
        args += [f"-c:{info.stream}", alpha_decoder]
    if keeps_times and info.media.start:
        args += ["-itsoffset", f"{-info.media.start:.6f}"]  # to start at 0, as the piped frames count
    args += ["-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(src)]
    pad, graph = "[0:v]", []
    if alpha_decoder is not None:
        # Each marked frame must meet the alpha plane of the same source frame. Timed frames keep the
        # source's times (both inputs are on the same clock); raw frames start at 0, so setpts moves the
        # source's video stream to 0 as well.
        align = "" if keeps_times else ",setpts=PTS-STARTPTS"
        graph.append(f"[{src_in}:{info.stream}]alphaextract{align}[a];{pad}[a]alphamerge[m]")
        pad = "[m]"
    if overlay is not None:
        enable = f":enable='{overlay.enable}'" if overlay.enable else ""
        # format=: the overlay blends in the frames' own format ("auto" picks rgba: every frame went
        # YUV -> RGB -> YUV); after the alpha merge, so the label's plate is opaque over a transparent corner.
        graph.append(f"{pad}[1:v]overlay={overlay.x}:{overlay.y}{enable}:format={overlay_format(pix_fmt)}[o]")
        pad = "[o]"
    if field_order is not None:
        graph.append(f"{pad}setfield={'tff' if field_order == 'tt' else 'bff'}[f]")
        pad = "[f]"
    sar = upright_sample_aspect(info)
    if sar is not None:
        # Raw frames carry no sample aspect ratio: without it an anamorphic video came out 1:1, shown
        # at the wrong shape (1080x1440 at 4:3 shown 1080x1440, not 1440x1440).
        graph.append(f"{pad}setsar={sar.numerator}/{sar.denominator}[s]")
        pad = "[s]"
    # Raw frames start at 0, and ffmpeg moves the source to start at 0 too: a video that starts after the
    # file's start (the sound first: AAC priming in Matroska, a clip placed 0.3 s into its soundtrack, an
    # edit list) came out that much early against the copied sound (until 2026-12-08; the timed pipe
    # carries the frames' own times). Moved last (the label's intervals count from the first frame), in
    # ffmpeg's microseconds: the raw pipe's 1/frame-rate clock would round the move to whole frames.
    shifted = not keeps_times and video_start is not None and video_start > 0.0005
    if shifted:
        graph.append(f"{pad}settb=AVTB,setpts=PTS+{video_start:.6f}/TB[t]")
        pad = "[t]"
    video = pad if graph else "0:v"
    if graph:
        args += ["-filter_complex", ";".join(graph)]
    # Every source stream keeps its place: the marked video where the source's video was, the rest copied.
    # Each keeps its tags (language, title, handler): the marked frames come from a pipe, which has none,
    # and naming one stream's tags turns ffmpeg's copying of the others' off, so all are named.
    out_index = 0
    attached = {a.index for a in attachments}
    # an MP4/MOV timecode track is not copied (ffmpeg cannot): the muxer writes it again from the tag
    # nor is an MP4/MOV chapter track: the muxer writes it again from the chapters ffmpeg carries over
    attached |= chapter_tracks(src, info.media)
    mapped = [s for s in info.media.streams if s.index not in attached and not is_timecode_track(s, out)]
    for position, stream in enumerate(mapped):
        if stream.index == info.stream:
            args += ["-map", video]
            out_index = position
        else:
            args += ["-map", f"{src_in}:{stream.index}"]
        args += [f"-map_metadata:s:{position}", f"{src_in}:s:{stream.index}"]
    args += attach_args(attachments, len(mapped))
    args += timecode_args(info.media, info.stream, out_index, out)
    args += ["-c", "copy", f"-c:{out_index}", encoding.choice.encoder]
    args += [f"{opt}:{out_index}" if opt.startswith("-") else opt for opt in encoding.quality]
    args += container_args(encoding.choice, os.path.splitext(out)[1], out_index)
    args += disposition_args(info.media, info.stream, out_index)
    args += [f"-pix_fmt:{out_index}", encoding.pix_fmt, f"-fps_mode:{out_index}", "passthrough"]
    if keeps_times or shifted:  # every frame's time in the source's own time base
        args += [f"-enc_time_base:{out_index}", str(stream_time_base(src, info.stream))]
    args += colour_tags(info, mapped[out_index], out_index)
    args += ["-map_metadata", str(src_in), *derived_tag_args(info.media, out), *start_offset_args(info.media)]
    if os.path.splitext(out)[1].lower() in _MOV_SUFFIXES:
        args += ["-movflags", "use_metadata_tags"]
    return [*args, *ff.reproducible(out), out]
