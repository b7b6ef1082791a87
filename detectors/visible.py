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
from dataclasses import dataclass
from typing import Any

import cv2
import ffmpeg as ffmpeg_python
import numpy as np

from labeler.visible.image import DEFAULT_STYLE, MIN_HEIGHT_RATIO, MIN_INK_PX, LabelStyle, render_label

__all__ = ["DEFAULT_TEXTS", "DEFAULT_THRESHOLD", "VisibleResult", "detect_image_label", "detect_video_label"]

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


def detect_video_label(
    path: str | os.PathLike[str],
    *,
    seconds_probe: float = 4.0,
    texts: tuple[str, ...] = DEFAULT_TEXTS,
    threshold: float = DEFAULT_THRESHOLD,
    style: LabelStyle = DEFAULT_STYLE,
) -> VisibleResult:
    """Look for a visible label drawn by :func:`labeler.visible.add_video_label` at the start of a video.

    Frames at t = 0.5, 1.0, ... s are decoded (one ffmpeg run, a ``select`` filter through a pipe,
    decoding stops as soon as the answer is known) and passed to :func:`detect_image_label`. Every
    sample up to ``seconds_probe`` is looked at; after that, sampling goes on only while the label is
    still found, up to :data:`VIDEO_MAX_SECONDS`.

    Parameters
    ----------
    path : path-like
        The video.
    seconds_probe : float
        Samples up to this time (s) are always examined (>= :data:`VIDEO_STEP`).
    texts, threshold, style
        As for :func:`detect_image_label`.

    Returns
    -------
    VisibleResult
        ``kind="video-text"``; position, ratio, text and box from the best-scoring frame; ``seconds``
        the last sampled time where the label was found (resolution :data:`VIDEO_STEP`). A label shown
        for the first S seconds reports S rounded down to the step (the frame at exactly S included).

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
    from labeler.media import ffmpeg as ff
    from labeler.media.video import video_info

    info = video_info(path)
    probe_until = max(VIDEO_STEP, float(seconds_probe))
    limit = VIDEO_MAX_SECONDS if info.duration is None else min(VIDEO_MAX_SECONDS, info.duration)
    times = [VIDEO_STEP * k for k in range(1, int(limit / VIDEO_STEP + 1e-9) + 1)]
    if not times:
        times = [0.0]  # a clip shorter than one step: look at its first frame
    # ffmpeg autorotates while transcoding, so the labeler drew on upright frames: decode them upright.
    quarter = round((info.rotation or 0) / 90) % 2
    height, width = (info.width, info.height) if quarter else (info.height, info.width)
    # Select the first frame at or after each sample time; half a frame early, so the frame stamped
    # exactly at T (the last one a between(t,0,T) overlay covers) is the one taken.
    half = 0.5 / info.fps
    # prev_t is NaN on the first frame (lt() is then 0): isnan() lets a late-starting first frame count.
    select = "+".join(f"gte(t,{t - half:.4f})*(lt(prev_t,{t - half:.4f})+isnan(prev_t))" for t in times)
    url = ff.input_url(path)
    source = ffmpeg_python.input(url, protocol_whitelist=ff.PROTOCOLS, t=f"{times[-1] + 0.5:.3f}")
    args = (
        source[str(info.stream)]  # the main video stream, never a cover picture
        .filter("select", select)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", fps_mode="passthrough")
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        .compile(cmd=ff.ffmpeg_exe())
    )
    frame_bytes = width * height * 3
    best: VisibleResult | None = None
    last_found: float | None = None
    top_score = 0.0
    chunks = ff.pipe_chunks(args, url, frame_bytes)
    try:
        for at, buf in zip(times, chunks, strict=False):
            if len(buf) < frame_bytes:
                break
            frame = np.frombuffer(buf, np.uint8).reshape(height, width, 3)
            result = detect_image_label(frame, texts=texts, threshold=threshold, style=style)
            top_score = max(top_score, result.score)
            if result.present:
                last_found = at
                if best is None or result.score > best.score:
                    best = result
            elif at >= probe_until:
                break  # past the always-examined window and the label is gone: done
    finally:
        chunks.close()  # kills ffmpeg when we stopped early
    if best is None:
        return VisibleResult(False, kind="video-text", score=top_score)
    best.kind = "video-text"
    best.seconds = last_found
    return best


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
    from labeler.errors import LabelerError
    from labeler.visible.audio import CUE_UNITS

    arr = np.asarray(samples)
    if arr.ndim not in (1, 2) or arr.size == 0 or (arr.ndim == 2 and arr.shape[1] == 0):
        raise LabelerError(f"samples must be a non-empty (frames,) or (frames, channels) array: {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise LabelerError(f"samples must be float, got {arr.dtype}")
    if int(sample_rate) != sample_rate or sample_rate < 4000:
        raise LabelerError(f"sample_rate must be an integer of at least 4000 Hz, got {sample_rate!r}")
    if not np.isfinite(arr).all():
        raise LabelerError("samples contain NaN or infinity")
    mono = (arr if arr.ndim == 1 else arr.mean(axis=1)).astype(np.float32)
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
