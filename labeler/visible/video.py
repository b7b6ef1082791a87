"""Visible "AI生成" labels on video (GB 45438-2025 section 5: prompt text at the start, >= 2 s).

::

    >>> from labeler.visible import add_video_label
    >>> add_video_label("in.mp4", "out.mp4")                  # first 3 s, bottom-right  # doctest: +SKIP
    {'kind': 'video-text', 'text': 'AI生成', 'position': 'bottom-right', 'height_ratio': 0.05, ...}

How. The label is rendered **once**, with the same size and look rules as images
(:func:`labeler.visible.place_label`, :func:`labeler.visible.render_label`: ink height >= 5 % of the
frame's shorter side), into an RGBA PNG the size of the label plate. One ffmpeg run (built with
ffmpeg-python) then overlays that PNG on the video with ``enable='between(t,0,SECONDS)'`` and re-encodes
the video stream only (libx264, ``-crf``, the source's 4:2:0 pixel format, every frame kept with its
timestamp: ``-fps_mode passthrough``); audio, subtitle and data streams are copied, global metadata is
kept (``-map_metadata 0``, plus ``-movflags use_metadata_tags`` for MP4/MOV so an ``AIGC`` key written
by :func:`labeler.metadata.write_label` survives). The overlay costs a few blended pixels per frame, so
the run streams at encoder speed.

Colour scheme. ``"auto"`` picks light-on-dark or dark-on-light from the mean luminance under the
label box in the first frame (one decoded frame); a label that must stay legible over a changing
background keeps its outline and plate either way.

Rotation. ffmpeg autorotates when it transcodes, so frames carrying a display rotation are turned
upright before the overlay and the label is placed on the upright frame (the output is stored upright,
without a rotation tag).

Output is written to a temporary file beside ``dst`` and renamed into place only when ffmpeg succeeded;
``src`` is only read.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

import ffmpeg as ffmpeg_python
import numpy as np
from PIL import Image

from labeler.errors import CorruptFile, LabelerError, UnsupportedFormat
from labeler.media import ffmpeg as ff
from labeler.media.video import VideoInfo, video_info
from labeler.visible.image import (
    DEFAULT_STYLE,
    DEFAULT_TEXT,
    MIN_HEIGHT_RATIO,
    LabelStyle,
    Placement,
    check_wording,
    place_label,
)

__all__ = ["MIN_SECONDS", "add_video_label", "label_rgba"]

#: Shortest time (seconds) the label may be shown at the start: GB 45438 section 5 (spec digest, 2.).
MIN_SECONDS = 2.0
# Containers whose muxer takes "-movflags use_metadata_tags" (ffmpeg's mov/mp4 family).
_MOV_SUFFIXES = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}
# Coded pixel formats kept as they are; anything else is encoded as yuv420p (what players expect).
_KEEP_PIX_FMTS = {"yuv420p", "yuvj420p"}
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def label_rgba(placement: Placement, scheme: str) -> np.ndarray:
    """The placed label as a straight-alpha ``(h, w, 4)`` uint8 RGBA image (the overlay ffmpeg draws).

    Parameters
    ----------
    placement : Placement
        From :func:`labeler.visible.place_label`.
    scheme : str
        ``"light"`` (white text, dark plate) or ``"dark"`` (black text, light plate).

    Returns
    -------
    numpy.ndarray
    """
    if scheme not in ("light", "dark"):
        raise ValueError(f"scheme must be 'light' or 'dark', got {scheme!r}")
    t, b = placement.rendered.text_alpha, placement.rendered.back_alpha
    text_level, back_level = (255.0, 0.0) if scheme == "light" else (0.0, 255.0)
    alpha = t + b
    # The image blend is premultiplied (t*text + b*back); the PNG needs straight colour = that / alpha.
    colour = (t * np.float32(text_level) + b * np.float32(back_level)) / np.where(alpha > 0, alpha, 1)
    rgba = np.empty((*alpha.shape, 4), np.uint8)
    rgba[..., :3] = np.rint(np.clip(colour, 0, 255))[..., None].astype(np.uint8)
    rgba[..., 3] = np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    return rgba


def _upright_size(info: VideoInfo) -> tuple[int, int]:
    """``(height, width)`` of the frames the filter graph sees (ffmpeg autorotates when transcoding)."""
    quarter = round((info.rotation or 0) / 90) % 2
    return (info.width, info.height) if quarter else (info.height, info.width)


def _scheme_for(frame: np.ndarray | None, box: tuple[int, int, int, int], style: LabelStyle) -> str:
    if style.scheme != "auto":
        return style.scheme
    if frame is None:
        return "light"
    x, y, w, h = box
    region = frame[y:y + h, x:x + w, :3].astype(np.float32)
    lum = float((region @ _LUMA).mean()) / 255 if region.size else 0.5
    return "dark" if lum > 0.5 else "light"


def _first_frame(src: str | os.PathLike[str], height: int, width: int) -> np.ndarray | None:
    """The first decoded frame, upright, as ``(height, width, 3)`` RGB; None when it does not decode."""
    url = ff.input_url(src)
    args = (
        ffmpeg_python.input(url, protocol_whitelist=ff.PROTOCOLS)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", vframes=1, s=f"{width}x{height}")
        .global_args("-loglevel", "error")
        .get_args()
    )
    # Map only the first real video stream (a cover picture is "v" but not "V").
    args[args.index("pipe:"):args.index("pipe:")] = ["-map", "0:V:0"]
    data = ff.run(args, timeout=120, names=[url])
    if len(data) < height * width * 3:
        return None
    return np.frombuffer(data[: height * width * 3], np.uint8).reshape(height, width, 3)


def add_video_label(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    text: str = DEFAULT_TEXT,
    position: str = "bottom-right",
    seconds: float = 3.0,
    whole: bool = False,
    crf: int = 18,
    overwrite: bool = False,
    height_ratio: float = MIN_HEIGHT_RATIO,
    style: LabelStyle = DEFAULT_STYLE,
) -> dict[str, Any]:
    """Write ``dst``: ``src`` with a visible AI-content label over its first ``seconds`` (or all of it).

    Parameters
    ----------
    src : path-like
        A video file (only read).
    dst : path-like
        Output file; its suffix picks the container. Written atomically.
    text : str
        The wording (checked with :func:`labeler.visible.check_wording`).
    position : str
        One of :data:`labeler.visible.POSITIONS`.
    seconds : float
        How long the label is shown from the start, >= :data:`MIN_SECONDS` (the standard's minimum).
    whole : bool
        Show the label for the whole duration instead.
    crf : int
        libx264 constant rate factor for the re-encoded video, 0..51.
    overwrite : bool
        Replace an existing ``dst``.
    height_ratio : float
        Ink height as a fraction of the frame's shorter side, 0.05..0.5.
    style : LabelStyle
        Colour scheme, outline, plate (as for images).

    Returns
    -------
    dict
        ``{"kind": "video-text", "text", "position", "height_ratio", "seconds", "box"}``; ``seconds``
        is None when ``whole``; ``box`` is ``(x, y, w, h)`` of the label plate in upright frame pixels.

    Raises
    ------
    LabelerError
        Wording, ``seconds`` or ``crf`` not acceptable, ``dst`` exists (without ``overwrite``) or is
        ``src``. Whatever fails, nothing is left at ``dst``.
    UnsupportedFormat
        ``src`` has no video stream.
    CorruptFile
        ``src`` cannot be read, or ffmpeg stopped on a decoding error (``-xerror``: a damaged input is
        refused rather than labelled with frames missing).
    """
    seconds = float(seconds)
    if not whole and not (math.isfinite(seconds) and seconds >= MIN_SECONDS):
        raise LabelerError(f"the label must show for at least {MIN_SECONDS:g} s at the start "
                           f"(GB 45438 section 5), got seconds={seconds!r}")
    if not 0 <= int(crf) <= 51:
        raise LabelerError(f"crf must be 0..51, got {crf!r}")
    check_wording(text)
    src_path, dst_path = os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(dst))
    if os.path.exists(dst_path):
        if os.path.exists(src_path) and os.path.samefile(src_path, dst_path):
            raise LabelerError("output would overwrite the input; pick another name")
        if not overwrite:
            raise LabelerError(f"output exists: {os.fspath(dst)} (pass overwrite=True)")
    try:
        info = video_info(src_path)
    except UnsupportedFormat:
        raise UnsupportedFormat("not a video: no video stream in this file") from None
    height, width = _upright_size(info)
    placement = place_label(height, width, text, position=position, height_ratio=height_ratio, style=style)
    frame = _first_frame(src_path, height, width) if style.scheme == "auto" else None
    scheme = _scheme_for(frame, placement.box, style)
    x, y, _, _ = placement.box

    with tempfile.TemporaryDirectory(prefix="aigc-label-") as workdir:
        png = os.path.join(workdir, "label.png")
        Image.fromarray(label_rgba(placement, scheme), "RGBA").save(png, compress_level=1)
        args = _command(src_path, png, info, x, y, None if whole else seconds, int(crf), dst_path)
        with ff.output_path(dst_path) as tmp:
            args[-1] = tmp
            # -y: the temporary file exists already (created empty, so its name is ours). -xerror: a
            # truncated or damaged input otherwise "succeeds" with the frames it could decode.
            ff.run(["-loglevel", "error", "-xerror", "-y", *args], error=CorruptFile,
                   names=[ff.input_url(src_path), tmp])
    return {
        "kind": "video-text",
        "text": text,
        "position": placement.position,
        "height_ratio": round(placement.height_ratio, 4),
        "seconds": None if whole else seconds,
        "box": placement.box,
    }


def _command(src: str, png: str, info: VideoInfo, x: int, y: int, seconds: float | None, crf: int,
             dst: str) -> list[str]:
    """ffmpeg arguments (without the program name) for the labelling run; the last one is ``dst``."""
    source = ffmpeg_python.input(ff.input_url(src), protocol_whitelist=ff.PROTOCOLS)
    mark = ffmpeg_python.input(ff.input_url(png))
    overlay: dict[str, Any] = {"x": x, "y": y}
    if seconds is not None:
        overlay["enable"] = f"between(t,0,{seconds:g})"
    video = ffmpeg_python.overlay(source[str(info.stream)], mark, **overlay)
    # Every input stream keeps its place in the output: the labelled video where it was, the rest copied.
    streams = [video if s.index == info.stream else source[str(s.index)] for s in info.media.streams]
    out_index = [s.index for s in info.media.streams].index(info.stream)
    pix_fmt = info.pix_fmt if info.pix_fmt in _KEEP_PIX_FMTS else "yuv420p"
    options: dict[str, Any] = {
        "c": "copy",
        f"c:{out_index}": "libx264",
        f"crf:{out_index}": crf,
        f"pix_fmt:{out_index}": pix_fmt,
        # Every frame kept with its own timestamp: same count and rate (cfr would drop/duplicate on VFR).
        f"fps_mode:{out_index}": "passthrough",
        "map_metadata": 0,
    }
    if os.path.splitext(dst)[1].lower() in _MOV_SUFFIXES:
        options["movflags"] = "use_metadata_tags"
    graph = ffmpeg_python.output(*streams, dst, **options)
    # compile() puts the program first; ff.run adds it (and -hide_banner -nostdin) itself.
    return graph.compile(cmd=ff.ffmpeg_exe())[1:]
