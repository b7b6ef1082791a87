"""Visible "AI生成" labels on video (GB 45438-2025 section 5: prompt text at the start, >= 2 s).

::

    >>> from labeler.visible import add_video_label
    >>> add_video_label("in.mp4", "out.mp4")                  # first 3 s, bottom-right
    {'kind': 'video-text', 'text': 'AI生成', 'position': 'bottom-right', 'height_ratio': 0.05, ...}
    >>> add_video_label("in.mp4", "out.mp4", at=("start", "end"), overwrite=True)["at"]
    ('start', 'end')

How. The label is rendered **once**, with the same size and look rules as images
(:func:`labeler.visible.place_label`, :func:`labeler.visible.render_label`: ink height >= 5 % of the
frame's shorter side as shown), into an RGBA PNG the size of the label plate. One ffmpeg run (built with
ffmpeg-python) then overlays that PNG on the video with an ``enable`` expression covering the chosen
intervals (:func:`label_intervals`) and re-encodes the video stream only, in the source's codec family
and pixel format where this ffmpeg can (the choice the watermark pass makes too:
:func:`labeler.media.video_encoders.plan_encoding`; H.264 with ``-crf`` and ``-preset``), every frame kept
with its timestamp (``-fps_mode passthrough``), an interlaced source's fields and an HDR10 source's
mastering display and light level written again (:func:`labeler.media.video_encoders.keep_frame_facts`);
audio, subtitle and data streams are copied (their
dispositions too; the video gets the source's default flag), global metadata is kept
(``-map_metadata 0``, plus ``-movflags use_metadata_tags`` for MP4/MOV so an ``AIGC`` key written by
:func:`labeler.metadata.write_label` survives). Outside its intervals the overlay filter is bypassed
(ffmpeg's timeline support passes the frame through untouched); inside, it blends a few thousand
pixels of a plate that ffmpeg converted to the frames' format once. So the run streams at encoder speed: the
label's only measurable cost is the fixed start-up (the probe and the first frame, run concurrently).

When. GB 45438 asks for the text *at the start*, shown >= 2 s, and allows it also at the end and in
the middle. ``at`` picks any of ``"start"``, ``"middle"``, ``"end"`` (``"start"`` is required), each
``seconds`` long; ``whole=True`` shows it throughout. A video no longer than ``seconds`` (so every
video under the 2 s minimum) carries the label for its whole duration: that is the closest it can
come to the standard's "at least 2 s", and it covers every interval asked for.

Colour scheme. ``"auto"`` picks light-on-dark or dark-on-light from the mean luminance under the
label box in the first frame (one decoded frame); a label that must stay legible over a changing
background keeps its outline and plate either way.

Rotation. ffmpeg autorotates when it transcodes, so frames carrying a display rotation are turned
upright before the overlay and the label is placed on the upright frame (the output is stored upright,
without a rotation tag).

Anamorphic video. Frames whose pixels are not square (a sample aspect ratio, SAR, other than 1:1:
1440x1080 at 4:3 is shown 1920x1080) are labelled as a player shows them: the label is placed and
sized on the displayed picture (:func:`labeler.media.video.displayed_size`: upright, the width times
the SAR), so its ink is >= 5 % of the *displayed* shorter side, then the plate is squeezed horizontally
by 1 / SAR (and its x divided by the SAR) for the stored pixels, which the player stretches back. The
output keeps the source's SAR; ``box`` is in displayed pixels and the result names the SAR.

Output is written to a temporary file beside ``dst`` and renamed into place only when ffmpeg succeeded;
``src`` is only read.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import ffmpeg as ffmpeg_python
import numpy as np
from PIL import Image

from labeler.errors import CorruptFile, InvalidArgument, LabelerError, UnsupportedFormat
from labeler.media import ffmpeg as ff
from labeler.media.video import VideoInfo, displayed_size, upright_sample_aspect, upright_size, video_info
from labeler.media.video_encoders import (
    Encoding,
    container_args,
    keep_frame_facts,
    loses,
    overlay_format,
    overlay_pix_fmt,
    plan_encoding,
)
from labeler.media.video_index import stream_time_base
from labeler.media.video_streams import (
    Attachment,
    alpha_plane_decoder,
    attach_args,
    chapter_tracks,
    derived_tag_args,
    disposition_args,
    drop_derived_keys,
    frame_facts,
    has_alpha,
    is_timecode_track,
    odd_rotation,
    other_video_streams,
    picture_attachments,
    require_complete,
    require_one_size,
    require_video_file,
    start_offset_args,
    timecode_args,
)
from labeler.visible.image import (
    DEFAULT_STYLE,
    DEFAULT_TEXT,
    MIN_HEIGHT_RATIO,
    LabelStyle,
    Placement,
    check_wording,
    place_label,
)

__all__ = ["END_MARGIN_S", "MIN_SECONDS", "PLACES", "X264_PRESETS", "add_video_label", "label_intervals",
           "label_rgba", "parse_places", "video_plate"]

#: Shortest time (seconds) the label may be shown at the start: GB 45438 section 5 (spec digest, 2.).
MIN_SECONDS = 2.0
#: Where in time the label can go (GB 45438 section 5: at the start; also allowed at the end, in the middle).
PLACES = ("start", "middle", "end")
#: libx264's preset names (x264 ``--preset``), fastest first.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
#: Seconds the end interval starts early. It is measured from the container's duration, which can
#: outlast the video by the audio's tail (AAC priming and padding: ~0.08 s on a looped samples/clip.mp4);
#: the margin keeps ``seconds`` of the last video frames labelled unless the audio outlasts it by more.
END_MARGIN_S = 0.5
# Containers whose muxer takes "-movflags use_metadata_tags" (ffmpeg's mov/mp4 family).
_MOV_SUFFIXES = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
# The first frame is only averaged under the label box, so it is decoded at most this wide (px): a cap
# that also keeps a huge frame from being piped before video_info has checked its size.
_SCHEME_WIDTH = 640


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
        raise InvalidArgument(f"scheme must be 'light' or 'dark', got {scheme!r}")
    t, b = placement.rendered.text_alpha, placement.rendered.back_alpha
    text_level, back_level = (255.0, 0.0) if scheme == "light" else (0.0, 255.0)
    alpha = t + b
    # The image blend is premultiplied (t*text + b*back); the PNG needs straight colour = that / alpha.
    colour = (t * np.float32(text_level) + b * np.float32(back_level)) / np.where(alpha > 0, alpha, 1)
    rgba = np.empty((*alpha.shape, 4), np.uint8)
    rgba[..., :3] = np.rint(np.clip(colour, 0, 255))[..., None].astype(np.uint8)
    rgba[..., 3] = np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    return rgba


def parse_places(at: str | Iterable[str]) -> tuple[str, ...]:
    """Check and normalise where in time the video label goes.

    Parameters
    ----------
    at : str or iterable of str
        Any of :data:`PLACES`, as names or one comma-separated string (case and spaces ignored).

    Returns
    -------
    tuple of str
        The places, each once, in time order (start, middle, end).

    Raises
    ------
    LabelerError
        An unknown name, or no ``"start"`` (GB 45438 section 5 requires the label at the start).
    """
    items = at.split(",") if isinstance(at, str) else list(at)
    names = {str(item).strip().lower() for item in items} - {""}
    unknown = sorted(names - set(PLACES))
    if unknown:
        raise LabelerError(f"video label places are start, middle and end, not {', '.join(unknown)}")
    if "start" not in names:
        raise LabelerError("the video label must be shown at the start (GB 45438 section 5); "
                           "add 'start' to the places")
    return tuple(p for p in PLACES if p in names)


def label_intervals(
    duration: float | None, seconds: float, at: str | Iterable[str] = ("start",)
) -> tuple[tuple[float, float | None], ...] | None:
    """Time intervals (s) the label covers: ``seconds`` at each place in ``at``, overlaps merged.

    Parameters
    ----------
    duration : float or None
        The video's duration in seconds (None when unknown).
    seconds : float
        Length of each interval in seconds, >= :data:`MIN_SECONDS`.
    at : str or iterable of str
        Any of :data:`PLACES` (a comma-separated string works); must include ``"start"``.
        ``"end"`` is the last ``seconds`` (plus :data:`END_MARGIN_S`) of the video, ``"middle"``
        ``seconds`` centred on its midpoint.

    Returns
    -------
    tuple of (float, float or None), or None
        ``(from, to)`` pairs in time order; ``to`` is None for "until the last frame" (the end
        interval). None when the label must cover the whole video: ``duration <= seconds``.

    Raises
    ------
    LabelerError
        ``at`` names an unknown place or lacks ``"start"``; ``seconds`` below the minimum; a middle
        or end interval asked for when ``duration`` is unknown.
    """
    places = parse_places(at)
    seconds = float(seconds)
    if not (math.isfinite(seconds) and seconds >= MIN_SECONDS):
        raise LabelerError(f"the label must show for at least {MIN_SECONDS:g} s at the start "
                           f"(GB 45438 section 5), got seconds={seconds!r}")
    if duration is not None and duration <= seconds:
        return None
    if duration is None and places != ("start",):
        raise LabelerError("the video's duration is unknown, so the label cannot be placed at its "
                           f"{' or '.join(p for p in places if p != 'start')}; use whole=True")
    spans: list[tuple[float, float | None]] = [(0.0, seconds)]
    if "middle" in places:
        assert duration is not None
        spans.append((max(0.0, duration / 2 - seconds / 2), duration / 2 + seconds / 2))
    if "end" in places:
        assert duration is not None
        spans.append((max(0.0, duration - seconds - END_MARGIN_S), None))
    merged: list[tuple[float, float | None]] = []
    for lo, hi in spans:
        if merged and (merged[-1][1] is None or lo <= merged[-1][1]):
            prev_lo, prev_hi = merged[-1]
            merged[-1] = (prev_lo, None if hi is None or prev_hi is None else max(prev_hi, hi))
        else:
            merged.append((lo, hi))
    if merged == [(0.0, None)]:
        return None
    return tuple((round(lo, 3), None if hi is None else round(hi, 3)) for lo, hi in merged)


def _enable(intervals: tuple[tuple[float, float | None], ...]) -> str:
    """The overlay's ``enable`` expression: true on frames whose time ``t`` lies in any interval."""
    terms = [f"gte(t,{lo:g})" if hi is None else f"between(t,{lo:g},{hi:g})" for lo, hi in intervals]
    return "+".join(terms)


def _scheme_for(frame: np.ndarray | None, box: tuple[int, int, int, int], size: tuple[int, int],
                style: LabelStyle) -> str:
    """``style.scheme``, or for ``"auto"`` the scheme that contrasts with ``frame`` under ``box``.

    ``box`` is in upright frame pixels of ``size`` = ``(height, width)``; ``frame`` may be smaller, or
    stretched on one axis (each axis is scaled on its own).
    """
    if style.scheme != "auto":
        return style.scheme
    if frame is None:
        return "light"
    sy, sx = frame.shape[0] / size[0], frame.shape[1] / size[1]
    x, y, w, h = box
    x0, y0 = int(x * sx), int(y * sy)
    x1, y1 = max(x0 + 1, math.ceil((x + w) * sx)), max(y0 + 1, math.ceil((y + h) * sy))
    region = frame[y0:y1, x0:x1, :3].astype(np.float32)
    lum = float((region @ _LUMA).mean()) / 255 if region.size else 0.5
    return "dark" if lum > 0.5 else "light"


def _first_frame(src: str | os.PathLike[str]) -> np.ndarray | None:
    """The first decoded frame, upright, at most :data:`_SCHEME_WIDTH` wide, as RGB; None if none decodes.

    Needs no probe (the frame comes as a PPM, which carries its size), so it runs beside
    :func:`video_info`.
    """
    url = ff.input_url(src)
    args = (
        # Only the first real video stream (a cover picture is "v" but not "V").
        ffmpeg_python.input(url, protocol_whitelist=ff.PROTOCOLS)["V:0"]
        .filter("scale", f"min(iw,{_SCHEME_WIDTH})", -2, flags="area")
        .output("pipe:", format="image2pipe", vcodec="ppm", vframes=1)
        .global_args("-loglevel", "error")
        .get_args()
    )
    data = ff.run(args, timeout=120, names=[url])
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError):
        return None


def _probe_and_first_frame(src: str, need_frame: bool) -> tuple[VideoInfo, np.ndarray | None]:
    """:func:`video_info` and (when ``need_frame``) :func:`_first_frame`, as two concurrent ffmpeg runs.

    Each run costs an ffmpeg start-up (~0.1 s); side by side they cost one, which is most of the fixed
    overhead of a label over a plain re-encode.
    """
    if not need_frame:
        return _video_info(src), None
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_first_frame, src)
        try:
            info = _video_info(src)
        except BaseException:
            pending.cancel()
            raise
        return info, pending.result()


def _video_info(src: str) -> VideoInfo:
    try:
        return video_info(src)
    except UnsupportedFormat:
        raise UnsupportedFormat("not a video: no video stream in this file") from None


def add_video_label(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    text: str = DEFAULT_TEXT,
    position: str = "bottom-right",
    seconds: float | None = 3.0,
    at: str | Iterable[str] = ("start",),
    whole: bool = False,
    crf: int = 18,
    preset: str = "medium",
    overwrite: bool = False,
    height_ratio: float = MIN_HEIGHT_RATIO,
    style: LabelStyle = DEFAULT_STYLE,
) -> dict[str, Any]:
    """Write ``dst``: ``src`` with a visible AI-content label at its start (and optionally more).

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
    seconds : float or None
        How long the label is shown at each place, >= :data:`MIN_SECONDS` (the standard's minimum);
        None is the same as ``whole=True``.
    at : str or iterable of str
        Where in time: any of :data:`PLACES`, ``"start"`` required (``"start,end"`` works too). See
        :func:`label_intervals`; a video no longer than ``seconds`` is labelled throughout.
    whole : bool
        Show the label for the whole duration instead.
    crf : int
        libx264 constant rate factor, 0..51, when the video is written as H.264 (other codecs get the
        shared settings of :data:`labeler.media.video_encoders.ENCODERS`).
    preset : str
        libx264 preset, one of :data:`X264_PRESETS` (speed against size at the same quality).
    overwrite : bool
        Replace an existing ``dst``.
    height_ratio : float
        Ink height as a fraction of the shorter side of the picture as shown (upright; the width times
        the sample aspect ratio for non-square pixels), 0.05..0.5.
    style : LabelStyle
        Colour scheme, outline, plate (as for images).

    Returns
    -------
    dict
        ``{"kind": "video-text", "text", "position", "height_ratio", "seconds", "box", "at", "whole",
        "intervals"}``: ``seconds`` is None when the label covers the whole video (``whole``, or a
        video no longer than ``seconds``); ``box`` is ``(x, y, w, h)`` of the label plate in upright
        displayed pixels (the frame's pixels, except for anamorphic video: then ``sample_aspect_ratio``,
        the source's SAR as ``"4:3"``, is added, and x and w are the frame's times the SAR, inverted
        after a quarter turn); ``at`` the places asked for; ``whole`` whether it covers every frame;
        ``intervals`` the ``(from, to)`` seconds it is shown (``to`` None: until the last frame);
        ``encoder`` and ``pix_fmt``, what the video was written with (the source's family and format
        where the encoder takes them). ``codec_from`` (the source's codec) when its family could not be
        kept (no encoder here, or the container refuses it); ``converted_from`` (the source's pixel
        format) when bit depth or chroma resolution was lost. A source with an alpha channel adds
        ``alpha``: ``"kept"`` (VP8/VP9 alpha written to WebM or Matroska, re-encoded with libvpx as
        ``yuva420p``; the plate is opaque over a transparent corner) or ``"dropped"`` (any other alpha
        source or container: written opaque). ``unmarked_video``: the other video tracks, copied
        without the label (:func:`labeler.media.video_streams.other_video_streams`);
        ``rotation_dropped``: a display rotation that is not a quarter turn
        (:func:`labeler.media.video_streams.odd_rotation`).

    Raises
    ------
    LabelerError
        Wording, ``seconds``, ``at``, ``crf`` or ``preset`` not acceptable, ``dst`` exists (without
        ``overwrite``) or is ``src``. Whatever fails, nothing is left at ``dst``.
    UnsupportedFormat
        ``src`` has no video stream, or its frame size changes mid-stream
        (:func:`labeler.media.video_streams.require_one_size`).
    CorruptFile
        ``src`` cannot be read, or ffmpeg stopped on a decoding error (``-xerror``: a damaged input is
        refused rather than labelled with frames missing), or it is cut short (a box, chunk or tag runs
        past its end: :func:`labeler.media.video_streams.require_complete`; the copied soundtrack's end
        would be missing).
    InvalidArgument
        ``src`` is a still image or audio file and ``dst`` a video name (``aigc label``'s own refusal).
    """
    whole = whole or seconds is None
    places = parse_places(at)
    seconds = 0.0 if seconds is None else float(seconds)
    _check_options(text, seconds, whole, crf, preset)
    src_path, dst_path = _paths(src, dst, overwrite)
    require_video_file(src_path, dst_path)  # a PNG named .mp4 is refused as aigc label refuses it
    info, frame = _probe_and_first_frame(src_path, style.scheme == "auto")
    # a cut in the copied streams (the soundtrack) is not seen by the video decoder's -xerror
    require_complete(src_path, info.media.container)
    require_one_size(src_path, info)  # frames after a size change were scaled to the first size
    intervals = None if whole else label_intervals(info.duration, seconds, places)
    placement, rgba, box = video_plate(info, frame, text, position=position, height_ratio=height_ratio,
                                       style=style)
    decoder = alpha_plane_decoder(info, os.path.splitext(dst_path)[1])
    encoding = plan_encoding(info.codec, info.pix_fmt, os.path.splitext(dst_path)[1],
                             alpha_kept=decoder is not None,
                             odd_sides=bool(info.width % 2 or info.height % 2))
    if encoding.encoder == "libx264":  # the caller's crf and preset; other encoders keep the shared settings
        encoding = dataclasses.replace(encoding, quality=("-crf", str(int(crf)), "-preset", preset))
    facts = frame_facts(src_path, info.stream)
    encoding = keep_frame_facts(encoding, facts)
    _encode(src_path, dst_path, info, rgba, box, intervals, encoding, decoder)
    done = _result(text, placement, seconds, places, intervals)
    if info.sample_aspect_ratio is not None:
        sar = info.sample_aspect_ratio
        done["sample_aspect_ratio"] = f"{sar.numerator}:{sar.denominator}"  # the box is in displayed pixels
    done.update(encoder=encoding.encoder, pix_fmt=encoding.pix_fmt)
    if encoding.choice.fallback:
        done["codec_from"] = info.codec  # no encoder of its family here, or the container refuses it
    if has_alpha(info):
        done["alpha"] = "kept" if decoder is not None else "dropped"
    if others := other_video_streams(info):
        done["unmarked_video"] = others  # copied as they are: the label stage names them
    if (turn := odd_rotation(info)) is not None:
        done["rotation_dropped"] = turn
    blended = overlay_pix_fmt(overlay_format(encoding.pix_fmt))
    if loses(info.pix_fmt, encoding.pix_fmt) or loses(info.pix_fmt, blended):
        done["converted_from"] = info.pix_fmt  # fewer bits or less chroma than the source's
    return done


def video_plate(info: VideoInfo, frame: np.ndarray | None, text: str = DEFAULT_TEXT, *,
                position: str = "bottom-right", height_ratio: float = MIN_HEIGHT_RATIO,
                style: LabelStyle = DEFAULT_STYLE) -> tuple[Placement, np.ndarray, tuple[int, int, int, int]]:
    """Place and render the label of a video: where and what ffmpeg's ``overlay`` draws.

    Parameters
    ----------
    info : VideoInfo
        The video (its rotation and sample aspect ratio say how it is shown).
    frame : numpy.ndarray or None
        Its first frame, upright, any size (:func:`_first_frame`), for the ``"auto"`` colour scheme.
    text, position, height_ratio, style
        As for :func:`labeler.visible.place_label`.

    Returns
    -------
    placement : Placement
        The label placed on the displayed picture (:func:`labeler.media.video.displayed_size`): its
        ``box`` is in displayed pixels, its ink >= ``height_ratio`` of the displayed shorter side.
    rgba : numpy.ndarray
        The straight-alpha plate in upright frame pixels: :func:`label_rgba`, squeezed horizontally by
        1 / SAR for non-square pixels (the player stretches it back).
    box : tuple of int
        ``(x, y, w, h)`` of ``rgba`` in upright frame pixels (the overlay's place).
    """
    height, shown = displayed_size(info)
    placement = place_label(height, shown, text, position=position, height_ratio=height_ratio, style=style)
    rgba = label_rgba(placement, _scheme_for(frame, placement.box, (height, shown), style))
    sar = upright_sample_aspect(info)
    x, y, w, h = placement.box
    if sar is None:
        return placement, rgba, (x, y, w, h)
    width = upright_size(info)[1]
    stored_w = min(width, max(1, round(w / sar)))
    # Pillow resizes RGBA with premultiplied alpha, so the plate's edges keep their colour.
    squeezed = Image.fromarray(rgba, "RGBA").resize((stored_w, h), Image.Resampling.LANCZOS)
    stored_x = max(0, min(round(x / sar), width - stored_w))  # rounding must not push it off the frame
    return placement, np.asarray(squeezed), (stored_x, y, stored_w, h)


def _result(text: str, placement: Placement, seconds: float, places: tuple[str, ...],
            intervals: tuple[tuple[float, float | None], ...] | None) -> dict[str, Any]:
    """The dict :func:`add_video_label` returns (``intervals`` None: the whole video)."""
    return {
        "kind": "video-text",
        "text": text,
        "position": placement.position,
        "height_ratio": round(placement.height_ratio, 4),
        "seconds": None if intervals is None else seconds,
        "box": placement.box,
        "at": places,
        "whole": intervals is None,
        "intervals": ((0.0, None),) if intervals is None else intervals,
    }


def _check_options(text: str, seconds: float, whole: bool, crf: int, preset: str) -> None:
    """Refuse bad options before any file is touched (the :func:`add_video_label` checks)."""
    if not whole:
        label_intervals(None, seconds)  # the seconds check
    if not 0 <= int(crf) <= 51:
        raise LabelerError(f"crf must be 0..51, got {crf!r}")
    if preset not in X264_PRESETS:
        raise LabelerError(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")
    check_wording(text)


def _paths(src: str | os.PathLike[str], dst: str | os.PathLike[str], overwrite: bool) -> tuple[str, str]:
    """Absolute ``(src, dst)``, checked as :func:`labeler.atomic.check_paths` checks them (one-line errors
    for a missing or non-regular ``src``, a path that is not a str, a ``dst`` that is ``src`` or a folder,
    or that exists without ``overwrite``), before ffmpeg is started."""
    from labeler.atomic import check_paths

    src_path, dst_path = check_paths(src, dst, overwrite=overwrite)
    return os.path.abspath(src_path), os.path.abspath(dst_path)


def _encode(src: str, dst: str, info: VideoInfo, rgba: np.ndarray, box: tuple[int, int, int, int],
            intervals: tuple[tuple[float, float | None], ...] | None, encoding: Encoding,
            alpha_decoder: str | None = None) -> None:
    """One ffmpeg run: ``src`` with the ``rgba`` plate overlaid at ``box`` during ``intervals``, to
    ``dst`` (through a temporary file beside it, renamed on success); with ``alpha_decoder`` (a libvpx
    decoder) the source's alpha plane is read and written again."""
    x, y, _, _ = box
    with tempfile.TemporaryDirectory(prefix="aigc-label-") as workdir:
        png = os.path.join(workdir, "label.png")
        Image.fromarray(rgba, "RGBA").save(png, compress_level=1)
        attachments = picture_attachments(src, info.media, dst, workdir)
        args = _command(src, png, info, x, y, intervals, dst, encoding, alpha_decoder, attachments)
        with ff.output_path(dst) as tmp:
            args[-1] = tmp
            # -y: the temporary file exists already (created empty, so its name is ours). -xerror: a
            # truncated or damaged input otherwise "succeeds" with the frames it could decode.
            # -xerror misses a live Matroska recording cut mid-way (ffmpeg exits 0): its stderr tells
            ff.run(["-loglevel", "error", "-xerror", "-y", *args], error=CorruptFile,
                   names=[ff.input_url(src), tmp], refuse_cut_short=True)
            drop_derived_keys(tmp)


def _command(src: str, png: str, info: VideoInfo, x: int, y: int,
             intervals: tuple[tuple[float, float | None], ...] | None,
             dst: str, encoding: Encoding, alpha_decoder: str | None = None,
             attachments: Sequence[Attachment] = ()) -> list[str]:
    """ffmpeg arguments (without the program name) for the labelling run; the last one is ``dst``.
    ``attachments`` (Matroska pictures) are left out of the maps and attached again after them."""
    # libvpx's decoder, set for this stream only, gives yuva420p frames; the overlay (format yuv420)
    # takes them as they are and blends the plate's alpha into the frame's, so the plate stays opaque
    decode = {f"c:{info.stream}": alpha_decoder} if alpha_decoder is not None else {}
    source = ffmpeg_python.input(ff.input_url(src), protocol_whitelist=ff.PROTOCOLS, **decode)
    mark = ffmpeg_python.input(ff.input_url(png))
    # blended in the frames' own chroma and depth (the filter's default is 8-bit 4:2:0; "auto" is RGBA)
    overlay: dict[str, Any] = {"x": x, "y": y, "format": overlay_format(encoding.pix_fmt)}
    if intervals is not None:
        overlay["enable"] = _enable(intervals)
    video = ffmpeg_python.overlay(source[str(info.stream)], mark, **overlay)
    # Every input stream keeps its place in the output: the labelled video where it was, the rest copied.
    attached = {a.index for a in attachments}
    # an MP4/MOV timecode track is not copied (ffmpeg cannot): the muxer writes it again from the tag
    # nor is an MP4/MOV chapter track: the muxer writes it again from the chapters ffmpeg carries over
    attached |= chapter_tracks(src, info.media)
    mapped = [s for s in info.media.streams if s.index not in attached and not is_timecode_track(s, dst)]
    streams = [video if s.index == info.stream else source[str(s.index)] for s in mapped]
    out_index = [s.index for s in mapped].index(info.stream)
    options: dict[str, Any] = {
        "c": "copy",
        f"c:{out_index}": encoding.encoder,
        f"pix_fmt:{out_index}": encoding.pix_fmt,
        # Every frame kept with its own timestamp: same count and rate (cfr would drop/duplicate on VFR),
        # in the source's time base (ffmpeg's default, 1/frame rate, rounds a variable rate's timestamps).
        f"fps_mode:{out_index}": "passthrough",
        f"enc_time_base:{out_index}": str(stream_time_base(src, info.stream)),
        "map_metadata": 0,
    }
    quality = encoding.quality
    options.update({f"{k[1:]}:{out_index}": v for k, v in zip(quality[::2], quality[1::2], strict=True)})
    # Every stream keeps its tags (language, title, handler): the filtered video has none of its own, and
    # naming one stream's tags turns ffmpeg's copying of the others' off, so all are named.
    options.update({f"map_metadata:s:{position}": f"0:s:{s.index}" for position, s in enumerate(mapped)})
    if os.path.splitext(dst)[1].lower() in _MOV_SUFFIXES:
        options["movflags"] = "use_metadata_tags"
    graph = ffmpeg_python.output(*streams, dst, **options)
    # compile() puts the program first; ff.run adds it (and -hide_banner -nostdin) itself.
    args = graph.compile(cmd=ff.ffmpeg_exe())[1:]
    return [*args[:-1], *attach_args(attachments, len(mapped)),
            *container_args(encoding.choice, os.path.splitext(dst)[1], out_index),
            *disposition_args(info.media, info.stream, out_index), *derived_tag_args(info.media, dst),
            *timecode_args(info.media, info.stream, out_index, dst), *start_offset_args(info.media),
            *ff.reproducible(dst), args[-1]]
