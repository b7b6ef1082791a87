"""Find the visible label of :mod:`labeler.visible` in an image: normalized cross-correlation, multi-scale.

::

    >>> from detectors.visible import detect_image_label
    >>> r = detect_image_label(pixels)                 # doctest: +SKIP
    >>> r.present, r.position, r.height_ratio, r.score

How. The image is turned to luminance and reduced so its shorter side is at most
:data:`WORK_SIDE` px (labels are sized relative to that side, so this fixes their expected size).
For each wording in ``texts`` and each ink height on a geometric ladder covering the sizes
:func:`labeler.visible.place_label` produces (5 % .. :data:`MAX_RATIO` of the shorter side, and the
12 px floor of small images, also after a 0.5x resize), the label is rendered exactly as the labeler
draws it (composited on mid-grey, then area-resampled to the ladder size, as a downscaled copy would
be) and matched with OpenCV's ``TM_CCOEFF_NORMED`` against the top and bottom bands of the image, where
the labeler puts it. The labeler draws light-on-dark or dark-on-light depending on the background;
the two are negatives of each other around mid-grey, so ``|r|`` is the score. ``present`` is
``score >= threshold`` (default :data:`DEFAULT_THRESHOLD`, chosen from the corpus measurements in
``docs/visible.md``).

Limits: the label must still be near the top or bottom edge (a crop that cuts it off, or one that
moves it far from the edge, loses it); wordings not in ``texts`` are not looked for; the score is a
correlation, not a calibrated probability.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import ffmpeg as ffmpeg_python
import numpy as np

from labeler.visible.image import DEFAULT_STYLE, MIN_HEIGHT_RATIO, MIN_INK_PX, LabelStyle, render_label

__all__ = ["DEFAULT_TEXTS", "DEFAULT_THRESHOLD", "VideoLabelResult", "VisibleResult", "detect_image_label",
           "detect_video_label"]

#: Wordings looked for by default (the labeler's default first).
DEFAULT_TEXTS: tuple[str, ...] = ("AI生成", "人工智能生成", "AI合成", "人工智能合成")
#: Correlation from which a label counts as present.
DEFAULT_THRESHOLD = 0.58
#: The image is reduced to at most this shorter side (px) before matching.
WORK_SIDE = 480
#: Largest ink height looked for, as a fraction of the shorter side.
MAX_RATIO = 0.12
#: Ratio between neighbouring ink heights on the search ladder (matching tolerates ~5 % misscale).
SCALE_STEP = 1.08
# Smallest ink height (working px) worth matching: below it hanzi are blobs.
_MIN_MATCH_PX = 5.0
# Rendered ink height the templates are resampled from (px).
_RENDER_PX = 40
_MIN_STD = 8.0
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass
class VisibleResult:
    """Outcome of :func:`detect_image_label`.

    Attributes
    ----------
    present : bool
        ``score >= threshold``.
    kind : str
        ``"image-text"``.
    position : str or None
        Where the best match is: one of :data:`labeler.visible.POSITIONS`, None when not present.
    height_ratio : float or None
        Matched ink height divided by the image's shorter side, None when not present.
    score : float
        Best ``|normalized cross-correlation|``, 0..1.
    text : str or None
        The wording that matched best, None when not present.
    box : tuple of int or None
        ``(x, y, w, h)`` of the matched label in the image's pixels, None when not present.
    seconds : float or None
        Video only (:func:`detect_video_label`): the last sampled time (s) at which the label was
        still found; None for images or when not present.
    """

    present: bool
    kind: str = "image-text"
    position: str | None = None
    height_ratio: float | None = None
    score: float = 0.0
    text: str | None = None
    box: tuple[int, int, int, int] | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``layers.visible`` entry of a verify report."""
        return {
            "present": self.present,
            "kind": self.kind,
            "position": self.position,
            "height_ratio": None if self.height_ratio is None else round(self.height_ratio, 4),
            "seconds": self.seconds,
            "score": round(self.score, 4),
            "text": self.text,
        }


def _luma(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be uint8 or uint16, got {arr.dtype}")
    scale = np.float32(255.0 / np.iinfo(arr.dtype).max)
    if arr.ndim == 2:
        return arr.astype(np.float32) * scale
    channels = arr.shape[2]
    if channels in (1, 2):
        return arr[..., 0].astype(np.float32) * scale
    return (arr[..., :3].astype(np.float32) @ _LUMA) * scale


def _template(text: str, ink: float, style: LabelStyle) -> tuple[np.ndarray, float]:
    """Grey rendering of the light-scheme label with ink height ``ink`` px, and its exact ink height."""
    return _template_cached(text, round(ink * 4), style)


@functools.lru_cache(maxsize=512)
def _template_cached(text: str, ink4: int, style: LabelStyle) -> tuple[np.ndarray, float]:
    # ink4: the ink height in quarter pixels, so near-equal ladder heights share an entry.
    rendered = render_label(text, _RENDER_PX, style)
    grey = 128 * (1 - rendered.text_alpha - rendered.back_alpha) + 255 * rendered.text_alpha
    factor = (ink4 / 4) / rendered.ink_height
    size = (max(3, round(rendered.width * factor)), max(3, round(rendered.height * factor)))
    small = cv2.resize(grey.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    # Unmasked on purpose: a mask of the opaque text/outline (ignoring the plate, through which the
    # background shows) was tried; at the 5-8 px ink sizes of small resized images it scored lower and
    # matched 3x slower.
    small.setflags(write=False)
    return small, rendered.ink_height * size[1] / rendered.height


def _ladder(work_short: int, factor: float) -> list[float]:
    """Ink heights (working px) to try."""
    low = max(_MIN_MATCH_PX, 0.9 * MIN_HEIGHT_RATIO * work_short)
    # The 12 px floor of small images is a larger ratio; halve it for a 0.5x resized copy.
    high = max(MAX_RATIO * work_short, 1.1 * MIN_INK_PX * factor)
    high = min(high, 0.3 * work_short)
    count = max(1, math.ceil(math.log(high / low) / math.log(SCALE_STEP)) + 1)
    return [low * SCALE_STEP**i for i in range(count)]


def _flat(region: np.ndarray, th: int, tw: int) -> np.ndarray:
    """Boolean map (matchTemplate's result shape) of windows whose grey level barely varies."""
    mean = cv2.boxFilter(region, -1, (tw, th), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)
    sq = cv2.boxFilter(region * region, -1, (tw, th), anchor=(0, 0), normalize=True,
                       borderType=cv2.BORDER_CONSTANT)
    rows, cols = region.shape[0] - th + 1, region.shape[1] - tw + 1
    var = sq[:rows, :cols] - mean[:rows, :cols] ** 2
    # Our label spans black outline to white text (std ~100); below 8 grey levels nothing is drawn.
    return var < _MIN_STD**2


def _position(cx: float, top: bool, width: int) -> str:
    third = cx / width
    horizontal = "left" if third < 1 / 3 else "right" if third > 2 / 3 else "center"
    return f"{'top' if top else 'bottom'}-{horizontal}"


def detect_image_label(
    image: np.ndarray,
    *,
    texts: tuple[str, ...] = DEFAULT_TEXTS,
    threshold: float = DEFAULT_THRESHOLD,
    style: LabelStyle = DEFAULT_STYLE,
) -> VisibleResult:
    """Look for a visible label drawn by :func:`labeler.visible.add_image_label`.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)``, ``(H, W, 2|3|4)``, uint8 or uint16 (alpha ignored).
    texts : tuple of str
        Wordings to look for.
    threshold : float
        Score (``|NCC|``, 0..1) from which the label counts as present.
    style : LabelStyle
        The style it was drawn with (the default unless you changed it).

    Returns
    -------
    VisibleResult
    """
    grey = _luma(image)
    height, width = grey.shape
    short = min(height, width)
    factor = min(1.0, WORK_SIDE / short)
    if factor < 1:
        grey = cv2.resize(grey, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)
    wh, ww = grey.shape
    work_short = min(wh, ww)
    best = (0.0, None, 0.0, "", (0, 0, 0, 0))  # score, top?, ink, text, box
    for text in texts:
        for ink in _ladder(work_short, factor):
            tpl, tpl_ink = _template(text, ink, style)
            th, tw = tpl.shape
            if th >= wh or tw >= ww:
                continue
            # The labeler's margin is <= 25 % of the shorter side (2 % by default): search a band that deep.
            band = min(wh, th + math.ceil(0.1 * work_short) + 2)
            for top in (True, False):
                y0 = 0 if top else wh - band
                region = grey[y0:y0 + band]
                result = cv2.matchTemplate(region, tpl, cv2.TM_CCOEFF_NORMED)
                # Flat areas give 0/0: OpenCV returns inf, nan or a spurious 1 there.
                result[~np.isfinite(result)] = 0
                result[_flat(region, th, tw)] = 0
                np.abs(result, out=result)
                _, score, _, (mx, my) = cv2.minMaxLoc(result)
                if score > best[0] and np.isfinite(score):
                    best = (float(score), top, tpl_ink, text, (mx, y0 + my, tw, th))
    score, top, ink, text, (bx, by, bw, bh) = best
    if score < threshold or top is None:
        return VisibleResult(False, score=score)
    inv = 1 / factor
    box = (round(bx * inv), round(by * inv), round(bw * inv), round(bh * inv))
    return VisibleResult(
        True,
        position=_position(bx + bw / 2, top, ww),
        height_ratio=ink / work_short,
        score=score,
        text=text,
        box=box,
    )


# --------------------------------------------------------------------------- video

#: Spacing (s) of the frames :func:`detect_video_label` samples; also the resolution of ``seconds``.
VIDEO_STEP = 0.5
#: Latest time (s) :func:`detect_video_label` follows a label to.
VIDEO_MAX_SECONDS = 10.0
#: Sample times (s) around the centre of the middle interval and of the end interval (centred 1 s
#: before the end): the labeler's shortest interval is 2 s, so all three lie inside it.
VIDEO_INTERVAL_OFFSETS = (-0.5, 0.0, 0.5)
# Start samples that must show the label for the start to count (fewer when the video has fewer).
_VIDEO_MIN_HITS = 2


@dataclass
class VideoLabelResult(VisibleResult):
    """Outcome of :func:`detect_video_label`: a :class:`VisibleResult` with the intervals found.

    Attributes
    ----------
    kind : str
        ``"video-text"``.
    seconds : float or None
        The last sampled time (s) at which the label was still found at the start; None when the
        start does not carry it.
    intervals : tuple of str
        Which of ``"start"``, ``"middle"``, ``"end"`` carry the label (in that order).
    """

    kind: str = "video-text"
    intervals: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The ``layers.visible`` entry of a verify report (with ``intervals``)."""
        out = super().to_dict()
        out["intervals"] = list(self.intervals)
        return out


def _video_frames(path: str | os.PathLike[str], info: Any, times: list[float],
                  seek: float = 0.0) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t, frame)``: the upright RGB frame at or just after each time in ``times`` (s).

    One ffmpeg run: input seek to ``seek`` (``-ss`` before ``-i``: jump to the keyframe before it,
    decode from there), input read no further than the last time, a ``select`` filter through a pipe.
    Stopping the iteration kills ffmpeg.
    """
    from labeler.media import ffmpeg as ff

    # ffmpeg autorotates while transcoding, so the labeler drew on upright frames: decode them upright.
    quarter = round((info.rotation or 0) / 90) % 2
    height, width = (info.width, info.height) if quarter else (info.height, info.width)
    # Select the first frame at or after each sample time; half a frame early, so the frame stamped
    # exactly at T (the last one a between(t,0,T) overlay covers) is the one taken. After an input
    # seek, t counts from the seek point.
    half = 0.5 / info.fps
    # prev_t is NaN on the first frame (lt() is then 0): isnan() lets a late-starting first frame count.
    select = "+".join(f"gte(t,{t - seek - half:.4f})*(lt(prev_t,{t - seek - half:.4f})+isnan(prev_t))"
                      for t in times)
    url = ff.input_url(path)
    options: dict[str, Any] = {"protocol_whitelist": ff.PROTOCOLS, "t": f"{times[-1] - seek + 0.5:.3f}"}
    if seek > 0:
        options["ss"] = f"{seek:.3f}"
    source = ffmpeg_python.input(url, **options)
    args = (
        source[str(info.stream)]  # the main video stream, never a cover picture
        .filter("select", select)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", fps_mode="passthrough")
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        .compile(cmd=ff.ffmpeg_exe())
    )
    frame_bytes = width * height * 3
    chunks = ff.pipe_chunks(args, url, frame_bytes)
    try:
        for at, buf in zip(times, chunks, strict=False):
            if len(buf) < frame_bytes:
                return
            yield at, np.frombuffer(buf, np.uint8).reshape(height, width, 3)
    finally:
        chunks.close()  # kills ffmpeg when we stopped early


def _recheck(image: np.ndarray, found: VisibleResult, threshold: float, style: LabelStyle) -> VisibleResult:
    """Is the label ``found`` (by :func:`detect_image_label` in a frame of the same size) still in ``image``?

    Only its wording, at its ink height and one ladder step either side, around its box (a quarter of
    its height of slack): three small ``matchTemplate`` calls instead of the full search, so a label
    followed over many frames costs about one full search.
    """
    assert found.box is not None and found.height_ratio is not None and found.text is not None
    grey = _luma(image)
    height, width = grey.shape
    factor = min(1.0, WORK_SIDE / min(height, width))
    if factor < 1:
        grey = cv2.resize(grey, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)
    wh, ww = grey.shape
    bx, by, bw, bh = (v * factor for v in found.box)
    best = 0.0
    for ink in (found.height_ratio * min(wh, ww) * k for k in (1 / SCALE_STEP, 1.0, SCALE_STEP)):
        tpl, _ = _template(found.text, ink, style)
        th, tw = tpl.shape
        pad = max(3, math.ceil(0.25 * max(th, bh)))
        x0, y0 = max(0, math.floor(bx) - pad), max(0, math.floor(by) - pad)
        x1, y1 = min(ww, math.ceil(bx + max(bw, tw)) + pad), min(wh, math.ceil(by + max(bh, th)) + pad)
        region = grey[y0:y1, x0:x1]
        if region.shape[0] < th or region.shape[1] < tw:
            continue
        result = cv2.matchTemplate(region, tpl, cv2.TM_CCOEFF_NORMED)
        result[~np.isfinite(result)] = 0
        result[_flat(region, th, tw)] = 0
        best = max(best, float(np.abs(result).max()))
    if best < threshold:
        return VisibleResult(False, score=best)
    return VisibleResult(True, position=found.position, height_ratio=found.height_ratio, score=best,
                         text=found.text, box=found.box)


def detect_video_label(
    path: str | os.PathLike[str],
    *,
    seconds_probe: float = 2.0,
    intervals: bool = True,
    texts: tuple[str, ...] = DEFAULT_TEXTS,
    threshold: float = DEFAULT_THRESHOLD,
    style: LabelStyle = DEFAULT_STYLE,
) -> VideoLabelResult:
    """Look for a visible label drawn by :func:`labeler.visible.add_video_label`: at the start, middle, end.

    Start: frames at t = 0.5, 1.0, ... s are decoded (one ffmpeg run, a ``select`` filter through a
    pipe, decoding stops as soon as the answer is known) and passed to :func:`detect_image_label`.
    Every sample up to ``seconds_probe`` is looked at; after that, sampling goes on only while the
    label is still found, up to :data:`VIDEO_MAX_SECONDS`. Middle and end (``intervals``, when the
    duration is known): three frames each, :data:`VIDEO_INTERVAL_OFFSETS` around the midpoint and
    around 1 s before the end, taken from the start scan when it already passed them, else decoded
    by one ffmpeg run per interval that seeks there (``-ss`` before ``-i``). The first frame showing
    the label is searched in full; later frames are only rechecked at its place, wording and scale
    (a few small matches), falling back to a full search when that fails. So a video costs at most
    three ffmpeg runs and 26 frame looks, whatever its length; an unlabeled one 4 + 1 + 1 full searches
    (the first miss in a middle or end window ends it).

    The start carries the label when at least 2 of its samples show it (all of them when there are
    fewer), so a single look-alike frame does not count; the middle and the end when all three of
    theirs do (the label is seen across the second around the midpoint, or across 1.5 .. 0.5 s
    before the end), so a start label that reaches past the midpoint of a short clip is not also
    reported as a middle one.

    Parameters
    ----------
    path : path-like
        The video.
    seconds_probe : float
        Samples up to this time (s) are always examined (>= :data:`VIDEO_STEP`; default the
        standard's 2 s minimum at the start).
    intervals : bool
        Also look at the middle and the end.
    texts, threshold, style
        As for :func:`detect_image_label`.

    Returns
    -------
    VideoLabelResult
        ``present`` when any interval carries the label; ``intervals`` which ones; position, ratio,
        text and box from the best-scoring frame; ``seconds`` the last sample of the unbroken run of
        hits from the start (resolution :data:`VIDEO_STEP`; a label shown for the first S seconds
        reports S rounded down to the step, the frame at exactly S included), None when the start
        lacks it.

    Raises
    ------
    CorruptFile
        The file cannot be decoded.
    UnsupportedFormat
        No video stream.

    Notes
    -----
    The i-th selected frame is taken to be the i-th sample time; on variable-frame-rate video with
    gaps longer than :data:`VIDEO_STEP` that mapping can shift (``seconds`` may come out early).
    """
    from labeler.media.video import video_info

    info = video_info(path)
    probe_until = max(VIDEO_STEP, float(seconds_probe))
    limit = VIDEO_MAX_SECONDS if info.duration is None else min(VIDEO_MAX_SECONDS, info.duration)
    times = [VIDEO_STEP * k for k in range(1, int(limit / VIDEO_STEP + 1e-9) + 1)]
    if not times:
        times = [0.0]  # a clip shorter than one step: look at its first frame
    seen: dict[float, VisibleResult] = {}

    anchor: list[VisibleResult] = []  # the first full-search hit: later frames are only rechecked

    def judge(frame: np.ndarray) -> VisibleResult:
        if anchor:
            again = _recheck(frame, anchor[0], threshold, style)
            if again.present:
                return again
        result = detect_image_label(frame, texts=texts, threshold=threshold, style=style)
        if result.present and not anchor:
            anchor.append(result)
        return result

    frames = _video_frames(path, info, times)
    try:
        for at, frame in frames:
            result = seen[at] = judge(frame)
            if not result.present and at >= probe_until:
                break  # past the always-examined window and the label is gone: done
    finally:
        frames.close()
    start = sorted(seen.items())
    hits = [at for at, r in start if r.present]
    found = ["start"] if start and len(hits) >= min(_VIDEO_MIN_HITS, len(start)) else []
    # How long the start label lasts: the run of hits from the first one to the first miss after it
    # (a middle or end label further on is not part of it).
    run_end: float | None = None
    for at, r in start:
        if r.present:
            run_end = at
        elif run_end is not None:
            break

    if intervals and info.duration:
        duration, last = info.duration, max(seen, default=0.0)
        newest = max(0.0, duration - 1.0 / info.fps)
        for name, centre in (("middle", duration / 2), ("end", duration - 1.0)):
            wanted = sorted({min(newest, max(0.0, centre + d)) for d in VIDEO_INTERVAL_OFFSETS})
            results: list[VisibleResult] = []
            covered = all(any(abs(t - s) <= VIDEO_STEP / 2 + 1e-6 for s in seen) for t in wanted)
            if covered and wanted[-1] <= last + 1e-6:
                # The start scan passed here already: reuse its nearest samples.
                results = [seen[min(seen, key=lambda s, t=t: abs(s - t))] for t in wanted]
            else:
                sampled = _video_frames(path, info, wanted, seek=max(0.0, wanted[0] - VIDEO_STEP / 2))
                try:
                    for at, frame in sampled:
                        seen[at] = judge(frame)
                        results.append(seen[at])
                        if not results[-1].present:
                            break  # all must show it: the first miss settles the interval
                finally:
                    sampled.close()
            if results and all(r.present for r in results):
                found.append(name)

    best = max(seen.values(), key=lambda r: r.score, default=VisibleResult(False))
    if not found or not best.present:
        return VideoLabelResult(False, score=best.score)
    return VideoLabelResult(
        True,
        position=best.position,
        height_ratio=best.height_ratio,
        score=best.score,
        text=best.text,
        box=best.box,
        seconds=run_end if "start" in found else None,
        intervals=tuple(found),
    )


# --------------------------------------------------------------------------- audio rhythm cue

#: Score (0..1) from which an audio rhythm cue counts as present (chosen in ``docs/visible.md``).
AUDIO_CUE_THRESHOLD = 0.6
#: Tone frequencies searched when ``freq_hz`` is not given (Hz).
AUDIO_CUE_SEARCH_HZ = (600.0, 1200.0)
#: Morse unit lengths tried (s); neighbours 10 ms apart, so any unit in 80-140 ms is within 5 %.
AUDIO_CUE_UNITS_S = (0.08, 0.09, 0.1, 0.11, 0.12, 0.13, 0.14)
# Analysis: 25 ms Hann frames every 5 ms; tone band +-90 Hz (the Hann main lobe is +-80 Hz) against a
# local band of +-300 Hz, so a tone scores ~1 and speech harmonics (100-250 Hz apart) well below.
_CUE_WIN_S = 0.025
_CUE_HOP_S = 0.005
_CUE_BAND_HZ = 90.0
_CUE_LOCAL_HZ = 300.0
# Contrast (mean tone ratio on - off) at which the score stops being discounted.
_CUE_CONTRAST = 0.5
# Spread (dB, standard deviation) of the in-band level over the tones' cores tolerated in full; the
# score falls to 0 at twice this.
_CUE_STEADY_DB = 2.0
# Position: a cue starting within this many seconds of the start (ending ... of the end) is "start"
# ("end"); anything else is "middle".
_CUE_EDGE_S = 2.0


@dataclass
class AudioCueResult(VisibleResult):
    """Outcome of :func:`detect_audio_cue`: a :class:`VisibleResult` with the cue's time and tone.

    Attributes
    ----------
    kind : str
        ``"audio-rhythm"``.
    position : str or None
        ``"start"``, ``"end"`` or ``"middle"`` of the earliest cue found; None when not present.
    seconds : float or None
        Onset of that cue (start of its first tone), seconds from the start of the samples.
    freq_hz, unit_s : float or None
        Its tone frequency (FFT peak of the dash, ~1 Hz) and Morse unit length (to 10 ms).
    cues : tuple of (float, str, float)
        Every cue found, ``(seconds, position, score)``, in time order.
    """

    kind: str = "audio-rhythm"
    seconds: float | None = None
    freq_hz: float | None = None
    unit_s: float | None = None
    cues: tuple[tuple[float, str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The ``layers.visible`` entry of a verify report."""
        out = super().to_dict()
        out["seconds"] = None if self.seconds is None else round(self.seconds, 3)
        return out


def _mono_samples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validated float32 mono mix of ``(frames,)`` or ``(frames, channels)`` float samples."""
    from labeler.errors import LabelerError

    arr = np.asarray(samples)
    if arr.ndim not in (1, 2) or arr.size == 0 or (arr.ndim == 2 and arr.shape[1] == 0):
        raise LabelerError(f"samples must be a non-empty (frames,) or (frames, channels) array: {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise LabelerError(f"samples must be float, got {arr.dtype}")
    if int(sample_rate) != sample_rate or sample_rate < 4000:
        raise LabelerError(f"sample_rate must be an integer of at least 4000 Hz, got {sample_rate!r}")
    if not np.isfinite(arr).all():
        raise LabelerError("samples contain NaN or infinity")
    return (arr if arr.ndim == 1 else arr.mean(axis=1)).astype(np.float32)


def _cue_template(unit_frames: float, length: int, erode: int) -> tuple[np.ndarray, np.ndarray]:
    """On/off (1/0) of Morse "AI" sampled at frame centres, ``unit_frames`` frames per unit.

    Also the tones' cores: on frames at least ``erode`` frames from a tone edge, whose analysis
    window lies wholly inside the tone.
    """
    from labeler.visible.audio import MORSE_AI

    units = np.concatenate([np.full(n, v, np.float64) for v, n in MORSE_AI])
    idx = np.minimum((np.arange(length) / unit_frames).astype(int), len(units) - 1)
    on = units[idx]
    width = 2 * erode + 1
    core = (np.convolve(np.pad(on, erode), np.ones(width), "valid") >= width - 0.5).astype(np.float64)
    return on, core


def _sliding_dot(rows: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``out[k, t] = sum_j rows[k, t + j] * kernel[j]`` for every full window, via FFT."""
    n = rows.shape[1] + len(kernel)
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(rows, size, axis=1) * np.conj(np.fft.rfft(kernel, size))
    return np.fft.irfft(spec, size, axis=1)[:, : rows.shape[1] - len(kernel) + 1]


def _tone_ratio(
    mono: np.ndarray, sample_rate: int, low: float, high: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate frequency and frame: power within +-90 Hz over power within +-300 Hz.

    Returns the candidate frequencies (Hz), the ratios (0..1) and the in-band level (dB), both of
    shape ``(len(freqs), frames)``. Frame ``t`` is centred on sample ``t * hop``.
    """
    win = max(16, round(_CUE_WIN_S * sample_rate))
    hop = max(1, round(_CUE_HOP_S * sample_rate))
    nfft = 1 << (win - 1).bit_length()
    df = sample_rate / nfft
    band = max(1, math.ceil(_CUE_BAND_HZ / df))
    local = max(band + 1, math.ceil(_CUE_LOCAL_HZ / df))
    centres = np.arange(max(local, math.ceil(low / df)), min(nfft // 2 - local, math.floor(high / df)) + 1)
    lo_bin, hi_bin = centres[0] - local, centres[-1] + local + 1
    padded = np.concatenate([np.zeros(win // 2, np.float32), mono, np.zeros(win, np.float32)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop]
    window = np.hanning(win).astype(np.float32)
    # Below -90 dBFS (a sine's band power) a frame counts as silence: the ratio is then ~0, not 0/0.
    floor = 1e-9 * (window.sum() / 2) ** 2
    power = np.empty((len(frames), hi_bin - lo_bin), np.float32)
    step = 4096  # frames per FFT batch: bounded memory on long files
    for s in range(0, len(frames), step):
        spec = np.fft.rfft(frames[s:s + step] * window, nfft, axis=1)[:, lo_bin:hi_bin]
        power[s:s + step] = spec.real**2 + spec.imag**2
    csum = np.concatenate([np.zeros((len(power), 1), np.float64), np.cumsum(power, axis=1, dtype=np.float64)],
                          axis=1)
    c = centres - lo_bin
    in_band = csum[:, c + band + 1] - csum[:, c - band]
    around = csum[:, c + local + 1] - csum[:, c - local]
    level = 10 * np.log10(in_band + floor)
    return centres * df, (in_band / (around + floor)).T, level.T


def _dash_freq(
    mono: np.ndarray, sample_rate: int, onset: float, unit: float, low: float, high: float
) -> float:
    """Peak frequency (Hz, ~1 Hz steps) of the cue's dash, units 2..5 after ``onset``."""
    part = mono[round((onset + 2 * unit) * sample_rate):round((onset + 5 * unit) * sample_rate)]
    if len(part) < 16:
        return float("nan")
    nfft = 1 << max(int(sample_rate) - 1, len(part) - 1).bit_length()
    power = np.abs(np.fft.rfft(part * np.hanning(len(part)), nfft))
    freqs = np.fft.rfftfreq(nfft, 1 / sample_rate)
    inside = (freqs >= low - _CUE_BAND_HZ) & (freqs <= high + _CUE_BAND_HZ)
    return float(freqs[inside][np.argmax(power[inside])])


def detect_audio_cue(
    samples: np.ndarray,
    sample_rate: int,
    *,
    freq_hz: float | None = None,
    threshold: float = AUDIO_CUE_THRESHOLD,
    units_s: tuple[float, ...] = AUDIO_CUE_UNITS_S,
) -> AudioCueResult:
    """Look for the Morse "AI" rhythm cue of :func:`labeler.visible.audio.add_audio_cue`, anywhere.

    A matched filter. The channels are averaged; a 25 ms / 5 ms STFT gives, for each candidate tone
    frequency (every ~22 Hz bin in 600-1200 Hz, or +-50 Hz around ``freq_hz``), the tone ratio: power
    within +-90 Hz over power within +-300 Hz (scale-free, ~1 for a tone, ~0 for silence, lower for
    speech and broadband music). That envelope is correlated at every frame with the cue's on/off
    template at each unit length in ``units_s``: score = Pearson correlation x min(1, contrast / 0.5),
    contrast being the mean ratio under the template's tones minus under its gaps, so the score is
    0..1, independent of level, and high only for a tone switching on and off in the cue's rhythm.

    Parameters
    ----------
    samples : numpy.ndarray
        float, ``(frames,)`` or ``(frames, channels)``.
    sample_rate : int
        Hz (at least 4 kHz).
    freq_hz : float, optional
        The cue's tone frequency when known; searching 600-1200 Hz otherwise.
    threshold : float
        Score from which a cue counts as present.
    units_s : tuple of float
        Morse unit lengths tried, seconds.

    Returns
    -------
    AudioCueResult
        ``present``, ``position``, ``seconds`` (onset) and ``score`` of the earliest cue found, all cues
        in ``cues``; when none is found, ``score`` is the best score seen.

    Raises
    ------
    LabelerError
        Empty samples, NaN/inf, a non-float dtype or a bad sample rate.
    """
    from labeler.visible.audio import CUE_UNITS

    mono = _mono_samples(samples, sample_rate)
    low, high = AUDIO_CUE_SEARCH_HZ if freq_hz is None else (freq_hz - 50.0, freq_hz + 50.0)
    _, ratio, level = _tone_ratio(mono, int(sample_rate), low, high)
    erode = math.ceil(_CUE_WIN_S / 2 / _CUE_HOP_S) + 1
    hop = max(1, round(_CUE_HOP_S * sample_rate)) / sample_rate
    duration = len(mono) / sample_rate
    frames = ratio.shape[1]
    csum = np.concatenate([np.zeros((len(ratio), 1)), np.cumsum(ratio, axis=1)], axis=1)
    csq = np.concatenate([np.zeros((len(ratio), 1)), np.cumsum(ratio * ratio, axis=1)], axis=1)
    # best_*[t]: score and unit of the best template starting at frame t (any frequency).
    best_score = np.zeros(frames)
    best_unit = np.zeros(frames)
    for unit in units_s:
        length = round(CUE_UNITS * unit / hop)
        if length >= frames:
            continue
        template, core = _cue_template(unit / hop, length, erode)
        n_on = template.sum()
        n_off = length - n_on
        on_sum = _sliding_dot(ratio, template)
        total = csum[:, length:] - csum[:, :-length]
        total_sq = csq[:, length:] - csq[:, :-length]
        on_mean = on_sum / n_on
        off_mean = (total - on_sum) / n_off
        # Pearson r of a two-level template: (mean_on - mean_off) sqrt(p (1 - p)) / std(x).
        var = np.maximum(total_sq / length - (total / length) ** 2, 1e-12)
        p = n_on / length
        contrast = on_mean - off_mean
        score = contrast * math.sqrt(p * (1 - p)) / np.sqrt(var) * np.clip(contrast / _CUE_CONTRAST, 0, 1)
        # Our four tones have one steady level; piano notes decay and speech wavers.
        n_core = core.sum()
        level_mean = _sliding_dot(level, core) / n_core
        level_sd = np.sqrt(np.maximum(_sliding_dot(level * level, core) / n_core - level_mean**2, 0))
        score *= np.clip(1 - (level_sd - _CUE_STEADY_DB) / _CUE_STEADY_DB, 0, 1)
        top = score.max(axis=0)
        better = top > best_score[: len(top)]
        best_score[: len(top)][better] = top[better]
        best_unit[: len(top)][better] = unit
    # Cues found: greedy non-maximum suppression, one cue length around each peak.
    cues: list[tuple[float, str, float, float, float]] = []
    work = best_score.copy()
    while len(cues) < 32:
        t = int(np.argmax(work))
        if work[t] < threshold:
            break
        unit = float(best_unit[t])
        onset = t * hop
        end_gap = duration - (onset + CUE_UNITS * unit)
        position = "start" if onset <= _CUE_EDGE_S else "end" if end_gap <= _CUE_EDGE_S else "middle"
        tone = _dash_freq(mono, int(sample_rate), onset, unit, low, high)
        cues.append((onset, position, float(work[t]), tone, unit))
        reach = round(CUE_UNITS * unit / hop)
        work[max(0, t - reach):t + reach] = 0
    if not cues:
        return AudioCueResult(False, score=float(best_score.max(initial=0.0)))
    cues.sort()
    onset, position, score, freq, unit = cues[0]
    return AudioCueResult(
        True,
        position=position,
        score=score,
        seconds=onset,
        freq_hz=freq,
        unit_s=unit,
        cues=tuple((round(c[0], 3), c[1], round(c[2], 4)) for c in cues),
    )


__all__ += ["AUDIO_CUE_THRESHOLD", "AudioCueResult", "detect_audio_cue"]


# --------------------------------------------------------------------------- audio voice prompt

#: Score (0..1) from which a voice prompt counts as present (chosen in ``docs/visible.md``).
VOICE_THRESHOLD = 0.5
#: Rate the search runs at (Hz) and the band kept (Hz): telephone speech, inside any MP3/AAC low-pass
#: and above the bass that dominates music's energy.
VOICE_RATE_HZ = 8000
VOICE_BAND_HZ = (250.0, 3600.0)
#: The prompt is matched as this many consecutive parts, each normalized on its own; the score is
#: their mean, so a single word the programme shares with a prompt scores at most ~1/parts.
VOICE_PARTS = 4
# FFT length of one batch of onsets (2^19 samples at 8 kHz, ~65 s; the batch scores what is left after
# the longest clip and the margins): bounded memory on long files. Margin (samples) cut from either
# end of a batch's band-pass, where the FFT's wrap-around leaks in.
_VOICE_FFT = 1 << 19
_VOICE_MARGIN = 1024
# Windows below this mean power (-80 dBFS) count as silence: a score ~0, not 0/0.
_VOICE_FLOOR = 1e-8


@dataclass
class VoicePromptResult(VisibleResult):
    """Outcome of :func:`detect_voice_prompt`: a :class:`VisibleResult` with the prompt's time and language.

    Attributes
    ----------
    kind : str
        ``"audio-voice"``.
    position : str or None
        ``"start"``, ``"end"`` or ``"middle"`` of the earliest prompt found; None when not present.
    seconds : float or None
        Onset of that prompt (first sample of the shipped clip), seconds from the start of the samples.
    language : str or None
        ``"zh"`` or ``"en"``: which shipped clip matched.
    prompts : tuple of (float, str, str, float)
        Every prompt found, ``(seconds, position, language, score)``, in time order.
    """

    kind: str = "audio-voice"
    seconds: float | None = None
    language: str | None = None
    prompts: tuple[tuple[float, str, str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The ``layers.visible`` entry of a verify report."""
        out = super().to_dict()
        out["seconds"] = None if self.seconds is None else round(self.seconds, 3)
        out["language"] = self.language
        return out


def _voice_band(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectrum (``size`` points) of the band-passed analytic signal, and the band-passed real signal."""
    spec = np.fft.fft(x.astype(np.complex64), size)
    freqs = np.fft.fftfreq(size, 1.0 / VOICE_RATE_HZ)
    band = (np.abs(freqs) >= VOICE_BAND_HZ[0]) & (np.abs(freqs) <= VOICE_BAND_HZ[1])
    real = np.fft.ifft(spec * band)[: len(x)].real.astype(np.float32)
    # Analytic: positive frequencies doubled, negative ones dropped. Its correlation with a real
    # template is the complex envelope of the real correlation: its magnitude does not care about the
    # sub-sample offset or the phase shifts a lossy codec leaves.
    return (spec * (band & (freqs > 0)) * 2).astype(np.complex64), real


@functools.lru_cache(maxsize=2)
def _voice_templates() -> tuple[tuple[str, int, tuple[tuple[int, np.ndarray], ...]], ...]:
    """Per language: clip length at 8 kHz and its parts ``(offset, unit-norm band-passed samples)``."""
    from labeler.visible.voice_prompt import LANGUAGES, voice_clip

    out = []
    for language in LANGUAGES:
        clip = voice_clip(language, VOICE_RATE_HZ)
        _, real = _voice_band(clip, 1 << (len(clip) - 1).bit_length())
        edges = np.linspace(0, len(real), VOICE_PARTS + 1).astype(int)
        spans = zip(edges[:-1], edges[1:], strict=True)
        parts = tuple((int(a), real[a:b] / np.linalg.norm(real[a:b])) for a, b in spans)
        out.append((language, len(real), parts))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _voice_spectra(size: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Conjugate spectra (``size`` points) of each language's parts, in :func:`_voice_templates` order."""
    return tuple(tuple(np.conj(np.fft.fft(part.astype(np.complex64), size)) for _, part in parts)
                 for _, _, parts in _voice_templates())


def _voice_scores(x: np.ndarray) -> dict[str, np.ndarray]:
    """Score of each shipped prompt starting at each sample of ``x`` (8 kHz mono)."""
    templates = _voice_templates()
    longest = max(length for _, length, _ in templates)
    n = len(x)
    chunk = _VOICE_FFT - longest - 2 * _VOICE_MARGIN
    scores = {lang: np.zeros(max(0, n - length + 1), np.float32) for lang, length, _ in templates}
    for a in range(0, n, chunk):
        lo, hi = max(0, a - _VOICE_MARGIN), min(n, a + chunk + longest + _VOICE_MARGIN)
        size = 1 << (hi - lo - 1).bit_length()
        analytic, real = _voice_band(x[lo:hi], size)
        energy = np.concatenate([[0.0], np.cumsum(real.astype(np.float64) ** 2)])
        for (language, length, parts), spectra in zip(templates, _voice_spectra(size), strict=True):
            t0, t1 = a, min(a + chunk, n - length + 1)
            if t1 <= t0:
                continue
            total = np.zeros(t1 - t0, np.float64)
            for (offset, part), spectrum in zip(parts, spectra, strict=True):
                corr = np.fft.ifft(analytic * spectrum)
                idx = np.arange(t0, t1) - lo + offset
                power = np.maximum(energy[idx + len(part)] - energy[idx], len(part) * _VOICE_FLOOR)
                total += np.abs(corr[idx]) / np.sqrt(power)
            scores[language][t0:t1] = total / len(parts)
    return scores


def detect_voice_prompt(
    samples: np.ndarray,
    sample_rate: int,
    *,
    threshold: float = VOICE_THRESHOLD,
) -> VoicePromptResult:
    """Look for the shipped voice prompts of :mod:`labeler.visible.voice_prompt` anywhere in audio.

    A matched filter for known clips. The channels are averaged, resampled to 8 kHz
    (:func:`labeler.visible.voice_prompt.resample`) and band-passed to 250-3600 Hz by FFT. Each
    language's clip, treated the same way, is cut into :data:`VOICE_PARTS` consecutive parts; at every
    onset each part's normalized cross-correlation with the signal is taken as the magnitude of the
    analytic signal's correlation over the part's norm times the window's norm (1 for an exact copy at
    any level, ~0.1 for unrelated speech or music), and the score is the parts' mean. Greedy
    non-maximum suppression (one clip length) picks every prompt at or above ``threshold``.

    Parameters
    ----------
    samples : numpy.ndarray
        float, ``(frames,)`` or ``(frames, channels)``.
    sample_rate : int
        Hz (at least 4000).
    threshold : float
        Score from which a prompt counts as present.

    Returns
    -------
    VoicePromptResult
        ``present``, ``position``, ``seconds`` (onset), ``language`` and ``score`` of the earliest
        prompt found, all prompts in ``prompts``; when none is found, ``score`` is the best score seen.

    Raises
    ------
    LabelerError
        Empty samples, NaN/inf, a non-float dtype or a bad sample rate.
    """
    from labeler.visible.voice_prompt import VOICE_TEXTS, resample

    mono = _mono_samples(samples, sample_rate)
    x = resample(mono, int(sample_rate), VOICE_RATE_HZ)
    duration = len(mono) / sample_rate
    scores = _voice_scores(x)
    lengths = {language: length for language, length, _ in _voice_templates()}
    best = max((float(s.max(initial=0.0)) for s in scores.values()), default=0.0)
    found: list[tuple[float, str, str, float]] = []
    work = {language: s.copy() for language, s in scores.items()}
    while len(found) < 32:
        language = max(work, key=lambda k: float(work[k].max(initial=0.0)))
        s = work[language]
        if not len(s) or s.max() < threshold:
            break
        t = int(np.argmax(s))
        onset = t / VOICE_RATE_HZ
        end_gap = duration - (onset + lengths[language] / VOICE_RATE_HZ)
        position = "start" if onset <= _CUE_EDGE_S else "end" if end_gap <= _CUE_EDGE_S else "middle"
        found.append((onset, position, language, float(s[t])))
        # One prompt per stretch of audio, whatever the language: suppress both around it.
        for other, arr_ in work.items():
            reach = max(lengths[other], lengths[language])
            arr_[max(0, t - reach):t + reach] = 0
    if not found:
        return VoicePromptResult(False, score=best)
    found.sort()
    onset, position, language, score = found[0]
    return VoicePromptResult(
        True,
        position=position,
        score=score,
        seconds=onset,
        language=language,
        text=VOICE_TEXTS[language],
        prompts=tuple((round(f[0], 3), f[1], f[2], round(f[3], 4)) for f in found),
    )


__all__ += ["VOICE_THRESHOLD", "VoicePromptResult", "detect_voice_prompt"]
