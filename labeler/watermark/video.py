"""Invisible video watermark: the image core's keyed 64-bit mark on the luma plane of every frame.

::

    >>> from labeler.watermark import payload_from_produce_id
    >>> from labeler.watermark.video import watermark_video
    >>> payload = payload_from_produce_id("vid-0001")
    >>> done = watermark_video("in.mp4", "out.mp4", payload, key=key, overwrite=True)
    >>> done["watermark"]["method"], done["watermark"]["encoder"], done["watermark"]["audio"]
    ('dwt', 'libx264', 'copied')
    >>> from detectors.watermark_video import detect_video
    >>> detect_video("out.mp4", key=key).payload == payload
    True

One streaming pass: ffmpeg decodes the video stream to raw planar YUV (the source's 8-bit planar
format, so no RGB round trip and no chroma resampling) through a pipe; each frame's luma plane gets
the image core's pattern (same transforms, payload coding and tile layout, magnified with the frame:
:func:`zoom_for`) at a uniform amplitude, the per-video budget (:func:`budget_strength` of the first
frame: at least :data:`VIDEO_STRENGTH`, more on grainy sources); a second ffmpeg encodes the frames
with the source's codec family and copies every other stream of the source (audio packets
bit-identical). One frame is in Python's hands at a time, so memory does not grow with the video's
length. The output is written beside ``dst`` and renamed into place only when both ffmpeg runs
succeeded. The label stage (:mod:`labeler.stages`) then marks the soundtrack with the audio watermark
(:func:`labeler.watermark.soundtrack.mark_soundtrack`); this function leaves it as it was.

The tiled pattern depends only on the frame size, the key and the payload, so it is built and rounded
to levels once per video; a frame costs one saturating add (cv2). The visible label of the
explicit-labels layer can be drawn in the same encoder run (ffmpeg ``overlay`` of the same RGBA plate
:mod:`labeler.visible.video` makes), so a video with both layers is encoded once. Design and
measurements: ``docs/watermark-video.md``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from labeler.errors import CorruptFile, LabelerError, UnsupportedFormat
from labeler.media import ffmpeg as ff
from labeler.media import timed
from labeler.media.video import VideoInfo, video_info
from labeler.media.video_encoders import (  # noqa: F401 - ENCODERS re-exported: the table both passes use
    ENCODERS,
    Encoding,
    container_args,
    keep_frame_facts,
    overlay_format,
    pix_fmt_traits,
    plan_encoding,
)
from labeler.media.video_streams import (
    alpha_plane_decoder,
    drop_derived_keys,
    frame_facts,
    has_alpha,
    odd_rotation,
    other_video_streams,
    picture_attachments,
    require_complete,
    require_one_size,
    require_video_file,
)
from labeler.watermark import _pattern
from labeler.watermark.payload import TooSmallForWatermark
from labeler.watermark.transforms import MIN_SIDE
from labeler.watermark.video_commands import (
    KEEP_PIX_FMTS,
    Overlay,
    decoder_args,
    encoder_args,
    frame_size,
    marked_pix_fmt,
    upright_size,
    written_like,
)

__all__ = ["VideoPattern", "watermark_video", "KEEP_PIX_FMTS", "ENCODERS", "VIDEO_METHOD",
           "VIDEO_STRENGTH", "budget_strength", "noise_sigma"]

#: The image core's method video uses: ``dwt`` (block DCT in the Haar LL subband, 1/16 to 1/8 cycle per
#: pixel). Measured on a 720p camera-like pan after x264 CRF 28: ``dct`` (up to 3/16 cycle/px) was gone
#: (z 4.9 after 90 frames), ``dwt`` decoded from the first frame (z 7.9); it also stays under Nyquist
#: after the 1080p -> 480p downscale (0.44x).
VIDEO_METHOD = "dwt"

#: Amplitude of the video mark (the per-video budget's floor): 8-bit luma levels RMS, the same
#: everywhere in the frame (no texture mask). The detector divides the picture by its local RMS, so a
#: region's contribution to the pilot statistic is the mark's amplitude there over the local texture:
#: per unit of added energy (what PSNR counts) a uniform mark gives more than the image core's texture
#: mask (``clip((std / 8) ** 0.6, 0.3, 2)``, which puts the energy where the detector weighs it least).
#: Measured on 1.5 s 1080p clips, x264 CRF 18 medium, then 1080p -> 480p + CRF 30 (the weakest
#: attack): texture mask at strength 1.0 (mark RMS 0.87) lost the camera-like pan (z 4.8 after 45
#: frames); uniform 1.0 decoded it (z 6.5 at 32 frames) and the three clean clips (screen, dark pan,
#: fast pan) from one frame (z 8.9-9.7); uniform 0.8 gave z 7.0 on the fast pan.
VIDEO_STRENGTH = 0.75
#: Grain in the source (noise sigma, levels, :func:`noise_sigma`) at which the budget is sqrt(2) times
#: :data:`VIDEO_STRENGTH`. Grain is host noise the detector has to beat after every re-encode (a codec
#: spends its bits on it, not on the mark): the pan with grain (sigma ~1.7) needed 1.0 where clean clips
#: (sigma <= 0.35) decode at 0.8 with margin. Grain also masks the mark to the eye, and a grainy
#: source's re-encode is further from it (PSNR 44.5 dB against 48.5-52.7), so the mark costs it less.
NOISE_REF = 1.6
#: Largest budgeted amplitude (levels RMS).
BUDGET_MAX = 2.5
#: The floor for frames under 720 px (zoom 1): the mark's band is then 1/16-1/8 cycle/px of the frame,
#: where x264 quantizes hard, and a 640 x 360 or 320 x 240 frame holds few tiles. At 0.75 a 640 x 360
#: animation lost x264 CRF 28 and 320 x 240 lost CRF 23 (tests/test_watermark_video.py); the former
#: default (strength 2.0 under the texture mask, ~1.8 RMS) held both.
SMALL_FRAME_STRENGTH = 1.8


def noise_sigma(y: np.ndarray) -> float:
    """Noise (grain) of luma ``y`` (uint8, H x W), 8-bit levels: Immerkaer's estimator on the quietest
    blocks.

    The 3 x 3 kernel ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` cancels smooth picture up to second order, so its
    mean absolute response, times ``sqrt(pi / 2) / 6``, is the standard deviation of white noise
    (Immerkaer, CVIU 64(2) 1996). Edges and texture respond too, so the 10th percentile over 32 x 32 px
    blocks is taken: the grain that is everywhere, not the picture's detail.
    """
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = np.abs(cv2.filter2D(y, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT))
    h, w = (y.shape[0] // 32) * 32, (y.shape[1] // 32) * 32
    blocks = r[:h, :w].reshape(h // 32, 32, w // 32, 32).mean(axis=(1, 3))
    return float(np.percentile(blocks, 10) * np.sqrt(np.pi / 2) / 6)


def budget_strength(y: np.ndarray) -> float:
    """The per-video amplitude (levels RMS) for a video whose first frame's luma is ``y`` (uint8).

    ``floor * sqrt(1 + (noise / NOISE_REF) ** 2)``, at most :data:`BUDGET_MAX`: the floor on clean
    (rendered, screen, generated) video, more on grainy camera video (:data:`NOISE_REF`). The floor is
    :data:`VIDEO_STRENGTH` for frames of 720 px and more (a zoomed pattern), else
    :data:`SMALL_FRAME_STRENGTH`.
    """
    floor = VIDEO_STRENGTH if zoom_for(*y.shape) > 1 else SMALL_FRAME_STRENGTH
    s = floor * float(np.sqrt(1.0 + (noise_sigma(y) / NOISE_REF) ** 2))
    return round(min(BUDGET_MAX, s), 3)



#: Frames whose shorter side is at least this (pixels) get the pattern zoomed (:func:`zoom_for`).
ZOOM_MIN_SIDE = 720
#: (shorter side at least, zoom): 1080p and up 3x (a 384 px tile), 720p 2x (256 px), smaller 1x (128 px).
ZOOMS = ((1080, 3), (ZOOM_MIN_SIDE, 2))


def zoom_for(height: int, width: int) -> int:
    """Magnification of the image core's pattern for an ``height`` x ``width`` frame (pixels).

    The ``dwt`` band of the image core is 1/16 to 1/8 cycle per pixel. A video is downscaled before it is
    re-encoded on most platforms, and x264 quantizes hardest near 1/8 to 1/4 cycle per pixel of the
    small frame: measured on a 720p pan, the 1x mark survived a downscale to 360p alone (z 11.4) but
    not the downscale and CRF 23 (z 4.6); a 2x mark decoded after 720p -> 480p + CRF 30 from one frame,
    and a 2x mark on 1080p did not survive 1080p -> 480p + CRF 30 (z 5.9 after 120 frames), its band
    landing where the 1x band lands on 720p -> 360p. Zooming in proportion to the frame (x3 for
    1080p, x2 for 720p, ~1 per 360 px of shorter side) keeps the mark at about the same fraction of
    the picture whatever the source size, so a downscale to 480p or 360p brings it near its native
    band. Below 720p a bigger tile would leave too few tiles per frame, so it stays at 1x (and 4K stays
    at 3x: 5.6 tiles of 384 px a frame height). The detector reads a zoomed mark on frames shrunk by an
    exact ``zoom`` x ``zoom`` average, where it is the image core's mark again.
    """
    side = min(height, width)
    return next((z for least, z in ZOOMS if side >= least), 1)


@dataclass(frozen=True)
class VideoPattern:
    """The watermark pattern of one frame size, built once per video.

    Attributes
    ----------
    pattern : ndarray (H, W), float32
        The image core's RMS-1 tile (magnified ``zoom`` times) repeated over the frame from its
        top-left corner.
    block : int
        Side (pixels) of the image core's blocks at this zoom (8 x subsample x zoom).
    strength : float
        Amplitude in 8-bit luma levels RMS, uniform over the frame (:meth:`build`'s default is
        :data:`VIDEO_STRENGTH`; :func:`watermark_video` uses the per-video budget).
    method : str
        ``"dct"`` or ``"dwt"``.
    zoom : int
        Magnification of the pattern (1, 2 or 3: :func:`zoom_for`).
    """

    pattern: np.ndarray
    block: int
    strength: float
    method: str
    zoom: int = 1
    rounded: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the change each frame gets, rounded to levels once per video (int16 for the saturating add)
        change = np.rint(self.pattern * np.float32(self.strength)).astype(np.int16)
        object.__setattr__(self, "rounded", change)

    @classmethod
    def build(cls, height: int, width: int, payload: bytes, key: bytes, method: str = VIDEO_METHOD,
              strength: float = VIDEO_STRENGTH, zoom: int | None = None) -> VideoPattern:
        """Tile the image core's pattern over an ``height`` x ``width`` frame (pixels).

        ``zoom`` None picks :func:`zoom_for`. A zoomed tile is the 1x tile magnified with cubic
        interpolation of its periodic extension (so the tile stays seamless), rescaled to RMS 1.

        Raises
        ------
        WatermarkError
            Bad payload, key, method or strength (from the image core).
        """
        zoom = zoom_for(height, width) if zoom is None else int(zoom)
        scheme, tile = _pattern(payload, key, method, strength)
        t = scheme.tile_px
        if zoom > 1:
            big = cv2.resize(np.tile(tile, (3, 3)), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
            tile = big[t * zoom : 2 * t * zoom, t * zoom : 2 * t * zoom]
            tile = tile / np.float32(np.sqrt(np.mean(tile * tile)))
            t *= zoom
        full = np.tile(tile, (-(-height // t), -(-width // t)))[:height, :width]
        full = np.ascontiguousarray(full, dtype=np.float32)
        return cls(full, 8 * scheme.subsample * zoom, float(strength), method, zoom)

    def delta(self, y: np.ndarray | None = None) -> np.ndarray:
        """The luma change (float32, H x W, 8-bit units): ``strength * pattern``, the same for every frame.

        ``y`` (the frame's luma) is accepted for symmetry with the image core and not used: the video
        mark has no texture mask (uniform amplitude, see :data:`VIDEO_STRENGTH`).
        """
        return self.pattern * np.float32(self.strength)

    def mark(self, y: np.ndarray) -> np.ndarray:
        """Add the mark to luma ``y`` (uint8, H x W) in place, rounded and saturated; returns ``y``.

        ``round(y + d) == y + round(d)`` for integer ``y``, so the rounded change is computed once per
        video and a frame costs one saturating add.
        """
        cv2.add(y, self.rounded, dst=y, dtype=cv2.CV_8U)
        return y


def _visible_overlay(src: str, info: VideoInfo, workdir: str,
                     visible: dict[str, Any]) -> tuple[Overlay, dict[str, Any]]:
    """Place and render the visible label as :func:`labeler.visible.add_video_label` does (on the
    displayed picture, squeezed into stored pixels for non-square ones: :func:`video_plate`).

    ``visible`` holds ``text``, ``position``, ``seconds`` (None: whole video) and ``at``. Returns the
    overlay and the layer's result dict (the same fields ``add_video_label`` returns).
    """
    from PIL import Image

    from labeler.visible.image import DEFAULT_STYLE, check_wording
    from labeler.visible.video import (
        _enable,
        _first_frame,
        _result,
        label_intervals,
        parse_places,
        video_plate,
    )

    text, position = visible.get("text", "AI生成"), visible.get("position", "bottom-right")
    seconds = visible.get("seconds", 3.0)
    places = parse_places(visible.get("at", ("start",)))
    check_wording(text)
    intervals = None if seconds is None else label_intervals(info.duration, float(seconds), places)
    placement, rgba, (x, y, _, _) = video_plate(info, _first_frame(src), text, position=position,
                                                style=DEFAULT_STYLE)
    png = os.path.join(workdir, "label.png")
    Image.fromarray(rgba, "RGBA").save(png, compress_level=1)
    done = _result(text, placement, None if seconds is None else float(seconds), places, intervals)
    if info.sample_aspect_ratio is not None:
        sar = info.sample_aspect_ratio
        done["sample_aspect_ratio"] = f"{sar.numerator}:{sar.denominator}"  # the box is in displayed pixels
    return Overlay(png, x, y, None if intervals is None else _enable(intervals)), done


def _check_paths(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 overwrite: bool) -> tuple[str, str]:
    """Absolute (src, dst); refuses a ``dst`` that is ``src``, or that exists without ``overwrite``
    (the visible labeler's rule, shared)."""
    from labeler.visible.video import _paths

    return _paths(src, dst, overwrite)


def watermark_video(src: str | os.PathLike[str], dst: str | os.PathLike[str], payload: bytes, *, key: bytes,
                    method: str = VIDEO_METHOD, strength: float | None = None,
                    visible: dict[str, Any] | None = None, quality: tuple[str, ...] | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
    """Write ``dst``: ``src`` with the invisible watermark on every frame's luma (and the visible label).

    Parameters
    ----------
    src : path-like
        A video file (only read).
    dst : path-like
        Output file; its suffix picks the container. Written atomically.
    payload : bytes
        8 bytes (:func:`labeler.watermark.payload_from_produce_id`).
    key : bytes
        Secret key; the same key detects.
    method : {"dct", "dwt"}
        The image core's method.
    strength : float or None
        Amplitude in 8-bit luma levels RMS, uniform over the frame (0 < s <= 20). None: the per-video
        budget, :func:`budget_strength` of the first frame.
    visible : dict, optional
        Draw the visible label in the same encode: ``text``, ``position``, ``seconds`` (None: whole
        video), ``at`` (as :func:`labeler.visible.add_video_label`).
    quality : tuple of str, optional
        Encoder options replacing the rate control of :data:`ENCODERS` (e.g. ``("-crf", "23", "-preset",
        "veryfast")``), for benchmarks.
    overwrite : bool
        Replace an existing ``dst``.

    Returns
    -------
    dict
        ``{"watermark": {...}, "visible": {...}}`` (visible only when asked): the watermark entry has
        ``method``, ``strength`` (the amplitude used), ``budget`` (True when it was budgeted),
        ``encoder``, ``pix_fmt`` (the 8-bit format marked), ``output_pix_fmt`` (the format written:
        the source's depth again where the encoder takes it), ``frames``, ``mark_seconds`` (CPU time of
        the marking itself) and ``audio`` (``"copied"``: the soundtrack is marked afterwards by the label
        stage, :func:`labeler.watermark.soundtrack.mark_soundtrack`); ``converted_from`` (the source's
        pixel format) when the frames were marked in another format (10-bit, RGB...), ``codec_from``
        when the source's codec family could not be kept, ``alpha`` (``"kept"`` or ``"dropped"``)
        when the source has an alpha channel, ``unmarked_video`` (the other video tracks, copied
        unmarked: :func:`labeler.media.video_streams.other_video_streams`) and ``rotation_dropped``
        (a display rotation that is not a quarter turn: :func:`~labeler.media.video_streams.odd_rotation`).

    Raises
    ------
    UnsupportedFormat
        No video stream; a still image or audio file; a frame size that changes mid-stream
        (:func:`labeler.media.video_streams.require_one_size`).
    InvalidArgument
        ``src`` is a still image or audio file and ``dst`` a video name (``aigc label``'s own refusal).
    CorruptFile
        The source cannot be decoded to its end, or is cut short (a box, chunk or tag runs past the
        end of the file: :func:`labeler.media.video_streams.require_complete`).
    LabelerError
        ``dst`` exists (without ``overwrite``) or is ``src``; frames smaller than 128 px; the encoder
        failed. Whatever fails, nothing is left at ``dst``.
    """
    src_path, dst_path = _check_paths(src, dst, overwrite)
    require_video_file(src_path, dst_path)  # a PNG named .mp4 is refused as aigc label refuses it
    try:
        info = video_info(src_path)
    except UnsupportedFormat:
        raise UnsupportedFormat("not a video: no video stream in this file") from None
    # a cut in the copied streams (the soundtrack) is not seen by the video decoder's -xerror
    require_complete(src_path, info.media.container)
    size = upright_size(info)
    if min(size) >= MIN_SIDE:
        require_one_size(src_path, info)  # frames after a size change were scaled to the first size
    if min(size) < MIN_SIDE:
        raise TooSmallForWatermark(f"video frames of {size[1]}x{size[0]} are too small for the watermark "
                           f"(at least {MIN_SIDE} px a side)")
    pix_fmt = marked_pix_fmt(info.pix_fmt)
    suffix = os.path.splitext(dst_path)[1]
    alpha_decoder = alpha_plane_decoder(info, suffix)
    encoding = plan_encoding(info.codec, written_like(info.pix_fmt, pix_fmt), suffix,
                             alpha_kept=alpha_decoder is not None, quality=quality,
                             odd_sides=bool(info.width % 2 or info.height % 2))
    facts = frame_facts(src_path, info.stream)
    encoding = keep_frame_facts(encoding, facts)
    marker = VideoPattern.build(size[0], size[1], payload, key, method,
                                VIDEO_STRENGTH if strength is None else strength)
    with tempfile.TemporaryDirectory(prefix="aigc-label-") as workdir:
        overlay, vis_done = (_visible_overlay(src_path, info, workdir, visible) if visible is not None
                             else (None, None))
        with ff.output_path(dst_path) as tmp:
            attachments = picture_attachments(src_path, info.media, dst_path, workdir)
            enc = encoder_args(src_path, info, pix_fmt, size, encoding, overlay, "file:" + tmp,
                                alpha_decoder, attachments, facts.field_order, facts.start)
            frames, seconds, marker = _stream(src_path, info, enc, marker, pix_fmt,
                                              size, ff.input_url(src_path), budget=strength is None)
            drop_derived_keys(tmp)
    done: dict[str, Any] = {"watermark": {
        "method": method, "strength": marker.strength, "budget": strength is None, "zoom": marker.zoom,
        "width": size[1], "height": size[0], "encoder": encoding.encoder, "pix_fmt": pix_fmt,
        "output_pix_fmt": encoding.pix_fmt, "frames": frames,
        "mark_seconds": round(seconds, 3), "audio": "copied"}}
    if info.pix_fmt not in KEEP_PIX_FMTS:
        done["watermark"]["converted_from"] = info.pix_fmt
    if encoding.choice.fallback:
        done["watermark"]["codec_from"] = info.codec  # no encoder of its family, or the container refuses
    if has_alpha(info):
        done["watermark"]["alpha"] = "kept" if alpha_decoder is not None else "dropped"
        if alpha_decoder is None:
            # the label stage warns from converted_from: a yuv420p stream with a VP8/VP9 alpha plane lost it
            done["watermark"].setdefault("converted_from", "yuva420p")
    if others := other_video_streams(info):
        done["watermark"]["unmarked_video"] = others  # copied as they are: the label stage names them
    if (turn := odd_rotation(info)) is not None:
        done["watermark"]["rotation_dropped"] = turn
    if vis_done is not None:
        done["visible"] = vis_done
    return done


def _frames(src: str, info: VideoInfo, pix_fmt: str, frame_bytes: int, url: str) -> Iterator[tuple[Any, Any]]:
    """(frame buffer, presentation time or None): timed Matroska frames, or a raw pipe for other formats."""
    if pix_fmt in timed.FOURCC:
        return timed.timed_frames(src, info.stream, pix_fmt, frame_bytes)
    return ((buf, None) for buf in ff.pipe_chunks(decoder_args(src, info, pix_fmt), url, frame_bytes,
                                                  refuse_cut_short=True))


def _stream(src: str, info: VideoInfo, enc: list[str], marker: VideoPattern, pix_fmt: str,
            size: tuple[int, int], url: str, budget: bool = False) -> tuple[int, float, VideoPattern]:
    """Decode -> mark -> encode, one frame at a time. Returns (frames, CPU seconds spent marking, the
    pattern used). With ``budget`` the amplitude is set from the first frame (:func:`budget_strength`)."""
    import time

    h, w = size
    frame_bytes, luma = frame_size(pix_fmt, w, h), w * h
    frames, spent = 0, 0.0
    with ff.stderr_file() as err:
        proc = subprocess.Popen(enc, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, **ff.CHILD)
        ok = False
        try:
            assert proc.stdin is not None
            writer = (timed.TimedWriter(proc.stdin, w, h, pix_fmt, Fraction(1) / Fraction(info.frame_rate))
                      if pix_fmt in timed.FOURCC else None)
            for buf, pts in _frames(src, info, pix_fmt, frame_bytes, url):
                if len(buf) < frame_bytes:
                    raise CorruptFile(f"decoder output ended inside a frame ({len(buf)} of {frame_bytes} B)")
                t0 = time.process_time()
                y = np.frombuffer(buf, np.uint8, count=luma).reshape(h, w)
                if budget and frames == 0:
                    marker = replace(marker, strength=budget_strength(y))
                marker.mark(y)
                spent += time.process_time() - t0
                try:
                    if writer is not None:
                        writer.write(buf, pts)
                    else:
                        proc.stdin.write(buf)
                except BrokenPipeError:
                    break  # the encoder died: its reason is read below
                frames += 1
            ok = True
        finally:
            status = ff.stop(proc, kill=not ok)
        if status != 0:
            reason = ff.error_line(ff.read_tail(err), [url]) or f"exit status {status}"
            raise LabelerError(f"ffmpeg (encoding the watermarked video): {reason}")
    if frames == 0:
        raise CorruptFile("no video frame could be decoded")
    return frames, spent, marker
