"""Which streams of a video an ffmpeg pass carries over, and how: alpha planes and picture attachments.

A pass that re-encodes the picture (the watermark, the visible label, the soundtrack mark) maps every
other stream from the source. Two kinds need more than a map: a VP8/VP9 alpha plane, which ffmpeg's own
decoders ignore (:func:`alpha_plane_decoder`), and a Matroska picture attachment, which ffmpeg would
remux as a video track (:func:`picture_attachments`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from labeler.errors import CorruptFile
from labeler.media import ffmpeg as ff
from labeler.media.video import VideoInfo

__all__ = ["ALPHA_DECODERS", "ALPHA_SUFFIXES", "Attachment", "alpha_plane_decoder", "attach_args",
           "derived_tag_args", "disposition_args", "drop_derived_keys", "has_alpha", "is_timecode_track",
           "picture_attachments", "start_offset_args", "timecode_args"]


#: VP8/VP9 keep an alpha plane beside the picture (Matroska BlockAdditional, tagged ``alpha_mode=1``)
#: that ffmpeg's own decoders ignore; libvpx's decoders read it and its encoders write it (yuva420p).
ALPHA_DECODERS = {"vp9": "libvpx-vp9", "vp8": "libvpx"}
#: Containers the alpha plane of a VP8/VP9 stream can be written to (MP4 has no place for it).
ALPHA_SUFFIXES = {".webm", ".mkv"}
#: Coded formats with an alpha channel (ffmpeg's names), which a yuv420p conversion drops.
_ALPHA_PIX_FMT = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr|pal8)")


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
