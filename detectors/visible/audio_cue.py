"""Find the audio rhythm cue of :func:`labeler.visible.audio.add_audio_cue` (Morse "AI" tones) in samples."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.visible.common import (
    _ANALYSIS_HOP_S,
    _ANALYSIS_WIN_S,
    _COARSE_STEP,
    _CUE_EDGE_S,
    VisibleResult,
    _analysis_frames,
    _analysis_geometry,
    _decimated,
    _mono_samples,
    _stft_power,
    best_seen,
)

__all__ = ["AUDIO_CUE_SEARCH_HZ", "AUDIO_CUE_THRESHOLD", "AUDIO_CUE_UNITS_S", "AudioCueResult",
           "detect_audio_cue"]

#: Score (0..1) from which an audio rhythm cue counts as present (chosen in ``docs/visible.md``).
AUDIO_CUE_THRESHOLD = 0.6
#: Tone frequencies searched when ``freq_hz`` is not given (Hz).
AUDIO_CUE_SEARCH_HZ = (600.0, 1200.0)
#: Morse unit lengths tried (s); neighbours 10 ms apart, so any unit in 80-140 ms is within 5 %.
AUDIO_CUE_UNITS_S = (0.08, 0.09, 0.1, 0.11, 0.12, 0.13, 0.14)
# Analysis (detectors.visible.common): 25 ms Hann frames every 5 ms at ~5.5 kHz; tone band +-90 Hz (the
# Hann main lobe is +-80 Hz) against a local band of +-300 Hz, so a tone scores ~1 and speech harmonics
# (100-250 Hz apart) well below.
_CUE_WIN_S = _ANALYSIS_WIN_S
_CUE_HOP_S = _ANALYSIS_HOP_S
_CUE_BAND_HZ = 90.0
_CUE_LOCAL_HZ = 300.0
# Coarse pass: every _COARSE_STEP-th frame (15 ms) and every _COARSE_EVERY-th candidate frequency (~43 Hz
# apart, inside the +-90 Hz band), 6x fewer cells; only where it reaches _COARSE_SHARE of the threshold
# are the frames around (+-_COARSE_PAD frames) scored at full resolution, and only those exact scores
# decide. Measured (benchmarks/visible_audio_cue.py): coarse >= 0.68 at every cue found, <= 0.28 on
# every unlabeled file, against a cut of 0.3.
_COARSE_EVERY = 2
_COARSE_SHARE = 0.5
_COARSE_PAD = 8
# Contrast (mean tone ratio on - off) at which the score stops being discounted.
_CUE_CONTRAST = 0.5
# Spread (dB, standard deviation) of the in-band level over the tones' cores tolerated in full; the
# score falls to 0 at twice this.
_CUE_STEADY_DB = 2.0
# Level contrast (dB, mean in-band level under the tones minus under the gaps) below which the score is
# 0, and the span over which it rises to full. A real cue's gaps are its tone switched off: with the
# tone ratio's contrast the score needs, the band is >= ~9 dB quieter there (15-55 dB measured after MP3
# over speech and piano). A steady tone under a voice prompt has its ratio dip at each syllable, a
# Morse-like envelope, but its band is no quieter in those "gaps" (-6.5 .. +0.7 dB measured): no cue.
_CUE_LEVEL_DROP_DB = 3.0
_CUE_LEVEL_SPAN_DB = 3.0
# Each gap must be empty on its own, not only on average: how far the fullest gap's mean tone ratio
# (over its core, away from the tones' edges) stands above the emptiest gap's, as a share of the tones'
# mean above it, is tolerated in full up to _CUE_GAP_FILL, and the score falls to 0 at twice that.
# Morse "P" (.--.) has the cue's length and differs only by a dash inside its 3-unit letter gap (fill
# 0.70): the Pearson r alone scored it 0.62, over the threshold; now 0.45. Real cues mixed over speech
# after MP3 64k fill their gaps <= 0.08, but over speech or piano at a forced -30 dBFS some gaps hold
# speech harmonics: at 0.45 one of benchmarks/visible_audio_cue.py's 69 cues found was lost (at 0.55
# none), which is why Morse "L" (.-.., fill 0.57, 0.65 -> 0.63) is still above the threshold.
_CUE_GAP_FILL = 0.55
# The two units on either side of the cue (_guard_cores, _guard_factor): one filled beyond _CUE_GUARD_FILL
# (as the gaps' fill is measured), fully at _CUE_GUARD_FILL + _CUE_GUARD_SPAN, at the tones' level (within
# _CUE_GUARD_LEVEL_DB, none at twice that) is a Morse element of a longer letter: the score goes to 0.
_CUE_GUARD_FILL = 0.7
_CUE_GUARD_SPAN = 0.2
_CUE_GUARD_LEVEL_DB = 3.0
# At most this many cues are listed per file.
_MAX_FOUND = 32


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


@functools.lru_cache(maxsize=64)
def _template_runs(
    unit_frames: float, length: int, erode: int
) -> tuple[float, list[tuple[int, int]], float, list[tuple[int, int]]]:
    """:func:`_cue_template` as box runs: on-frame count, tone runs, core-frame count, core runs."""
    on, core = _cue_template(unit_frames, length, erode)
    return float(on.sum()), _runs(on), float(core.sum()), _runs(core)


@functools.lru_cache(maxsize=64)
def _guard_cores(unit_frames: float, length: int, erode: int) -> tuple[tuple[int, int], ...]:
    """``[start, end)``, relative to the cue's first frame, of the cores of the two units before the cue
    and the two after it (less ``erode`` frames at both ends); windows too short to keep a frame are
    left out.

    Inside a Morse letter the elements are one unit apart: a tone in these units makes the "AI" rhythm
    part of a longer letter ("AS", "AH", "AR": a dot or a dash right after the last dot; "UI": a dot
    right before the first). The cue has at least its 3-unit letter gap of room (the labeler leaves
    0.3 s of silence next to a start or end cue), and other Morse letters are 3 units away.
    """
    edges = [-2 * unit_frames, -unit_frames, 0.0, None, float(length), length + unit_frames,
             length + 2 * unit_frames]
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if a is None or b is None:
            continue
        lo, hi = math.ceil(a) + erode, math.floor(b) - erode
        if hi > lo:
            out.append((lo, hi))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _gap_cores(unit_frames: float, length: int, erode: int) -> tuple[tuple[int, int], ...]:
    """``[start, end)`` of each gap of the template less ``erode`` frames at both ends (the analysis
    window there still overlaps a tone); gaps too short to keep a frame are left out."""
    on, _ = _cue_template(unit_frames, length, erode)
    return tuple((a + erode, b - erode) for a, b in _runs(1.0 - on) if b - a > 2 * erode)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of ones in a 0/1 template."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0.0], mask, [0.0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _box_sum(
    csum: np.ndarray, runs: list[tuple[int, int]], count: int, out: np.ndarray | None = None
) -> np.ndarray:
    """``out[k, t] = sum over runs (a, b) of x[k, t + a : t + b]``, ``t < count``, from x's ``csum``.

    ``csum`` is the cumulative sum along the frames with a zero first column. The cue's templates are
    a few boxes (its tones), so a sliding dot product with one is a handful of differences of the
    cumulative sum: exact, and cheaper than an FFT correlation. Written into ``out`` when given.
    """
    a, b = runs[0]
    out = np.subtract(csum[:, b:b + count], csum[:, a:a + count], out=out)
    for a, b in runs[1:]:
        out += csum[:, b:b + count]
        out -= csum[:, a:a + count]
    return out


def _ratio_level(
    power: np.ndarray, rate: float, low: float, high: float, every: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate frequency and frame: power within +-90 Hz over power within +-300 Hz, and its level.

    ``power`` is :func:`~detectors.visible.common._stft_power`'s ``(frames, bins)``; every ``every``-th
    candidate bin in ``low..high`` Hz is kept. Returns the candidate frequencies (Hz), the ratios (0..1)
    and the in-band level (dB), both of shape ``(len(freqs), frames)``.
    """
    win, _, nfft = _analysis_geometry(rate)
    df = rate / nfft
    band, local, centres = _centres(df, nfft, low, high)
    centres = centres[::every]
    # Below -90 dBFS (a sine's band power) a frame counts as silence: the ratio is then ~0, not 0/0.
    floor = 1e-9 * (np.hanning(win).sum() / 2) ** 2
    # Band sums as one matrix product: (bins, centres) 0/1 matrices of the +-90 Hz and +-300 Hz bands.
    rows = np.arange(power.shape[1])[:, None]
    in_band = (power @ (np.abs(rows - centres) <= band)).T
    around = (power @ (np.abs(rows - centres) <= local)).T
    level = 10 * np.log10(in_band + floor)
    return centres * df, in_band / (around + floor), level


def _centres(df: float, nfft: int, low: float, high: float) -> tuple[int, int, np.ndarray]:
    """Half-widths (bins) of the tone band and its neighbourhood, and the candidate centre bins."""
    band = max(1, math.ceil(_CUE_BAND_HZ / df))
    local = max(band + 1, math.ceil(_CUE_LOCAL_HZ / df))
    centres = np.arange(max(local, math.ceil(low / df)), min(nfft // 2 - local, math.floor(high / df)) + 1)
    return band, local, centres


def _cue_bins(df: float, nfft: int, low: float, high: float) -> int:
    """STFT bins (from 0) the cue search reads for candidates in ``low..high`` Hz."""
    _, local, centres = _centres(df, nfft, low, high)
    return int(centres[-1] + local + 1) if len(centres) else 1


def _dash_freq(
    mono: np.ndarray, sample_rate: float, onset: float, unit: float, low: float, high: float
) -> float:
    """Peak frequency (Hz, ~1 Hz steps) of the cue's dash, units 2..5 after ``onset``.

    ``mono`` may be the decimated analysis signal: the zero-padded FFT's bin width depends only on the
    rate's power-of-two ratio to its length (0.67 Hz at 44.1 kHz and at 5.5 kHz alike).
    """
    part = mono[round((onset + 2 * unit) * sample_rate):round((onset + 5 * unit) * sample_rate)]
    if len(part) < 16:
        return float("nan")
    nfft = 1 << max(int(sample_rate) - 1, len(part) - 1).bit_length()
    power = np.abs(np.fft.rfft(part * np.hanning(len(part)), nfft))
    freqs = np.fft.rfftfreq(nfft, 1 / sample_rate)
    inside = (freqs >= low - _CUE_BAND_HZ) & (freqs <= high + _CUE_BAND_HZ)
    return float(freqs[inside][np.argmax(power[inside])])


def _unit_scores(csums: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], unit_frames: float,
                 length: int, erode: int, scratch: np.ndarray, guard: bool = True) -> np.ndarray:
    """Score, per candidate frequency and start frame, of the cue's template at one unit length.

    ``csums`` are the cumulative sums (a zero first column) of the ratio, its square, the level and
    its square along the frames; ``scratch`` is float64 ``(4, >= candidates x start frames)`` working
    space (flat: each step's ``(candidates, start frames)`` view of it is C-contiguous, which NumPy
    loops over 1.6x faster than a strided one), and the scores returned are a view of it. Every step
    writes into ``scratch`` (the same operations, in the same order, as the plain expressions in the
    comments): a fresh temporary per step would be mapped and page-faulted in anew wherever the
    allocator hands large blocks back to the system at once (glibc with a fixed 128 KiB mmap
    threshold: 3x the arithmetic's cost). ``guard``: also look at the units around the cue
    (:func:`_guard_factor`; the coarse pass leaves it out, its 15 ms frames being too coarse for it).
    """
    csum, csq, lsum, lsq = csums
    rows, count = csum.shape[0], csum.shape[1] - length
    n_on, tones, n_core, cores = _template_runs(unit_frames, length, erode)
    n_off = length - n_on
    a, b, c, d = (buf[:rows * count].reshape(rows, count) for buf in scratch)
    # Pearson r of a two-level template: (mean_on - mean_off) sqrt(p (1 - p)) / std(x), with
    # std(x) = sqrt(max(total_sq / length - (total / length) ** 2, 1e-12)), in c.
    np.divide(np.subtract(csq[:, length:], csq[:, :count], out=c), length, out=c)
    np.subtract(csum[:, length:], csum[:, :count], out=b)  # total
    c -= np.square(np.divide(b, length, out=d), out=d)
    np.sqrt(np.maximum(c, 1e-12, out=c), out=c)
    # contrast = on_sum / n_on - (total - on_sum) / n_off: mean under the tones - under the gaps, in a.
    _box_sum(csum, tones, count, out=a)
    b -= a
    b /= n_off
    a /= n_on
    a -= b
    # score = contrast * sqrt(p (1 - p)) / std * clip(contrast / _CUE_CONTRAST, 0, 1), in b.
    p = n_on / length
    np.multiply(a, math.sqrt(p * (1 - p)), out=b)
    b /= c
    b *= np.clip(np.divide(a, _CUE_CONTRAST, out=d), 0, 1, out=d)
    # Our four tones have one steady level; piano notes decay and speech wavers: level_mean in a,
    # level_sd in c; score *= clip(1 - (level_sd - _CUE_STEADY_DB) / _CUE_STEADY_DB, 0, 1).
    _box_sum(lsum, cores, count, out=a)
    a /= n_core
    _box_sum(lsq, cores, count, out=c)
    c /= n_core
    c -= np.square(a, out=a)
    np.sqrt(np.maximum(c, 0, out=c), out=c)
    c -= _CUE_STEADY_DB
    c /= _CUE_STEADY_DB
    b *= np.clip(np.subtract(1, c, out=c), 0, 1, out=c)
    # Tones that switch off: level_on - level_off (in a), discounted below _CUE_LEVEL_DROP_DB + span.
    _box_sum(lsum, tones, count, out=a)
    np.subtract(lsum[:, length:], lsum[:, :count], out=c)
    c -= a
    c /= n_off
    a /= n_on
    a -= c
    a -= _CUE_LEVEL_DROP_DB
    a /= _CUE_LEVEL_SPAN_DB
    b *= np.clip(a, 0, 1, out=a)
    # Every gap empty: fill = (fullest gap core's mean ratio - emptiest one's, in c and a) / (the tones'
    # mean ratio - the emptiest gap's, in d); score *= clip(1 - (fill - _CUE_GAP_FILL) / _CUE_GAP_FILL,
    # 0, 1). Against the emptiest gap, not 0: a cue over steady noise has every gap at the noise's
    # ratio (0.3 for white noise), evenly, and that is no tone in a gap.
    gaps = _gap_cores(unit_frames, length, erode)
    if len(gaps) > 1:
        c.fill(-np.inf)
        a.fill(np.inf)
        for g0, g1 in gaps:
            _box_sum(csum, [(g0, g1)], count, out=d)
            d /= g1 - g0
            np.maximum(c, d, out=c)
            np.minimum(a, d, out=a)
        c -= a
        _box_sum(csum, tones, count, out=d)
        d /= n_on
        d -= a
        c /= np.maximum(d, 1e-6, out=d)  # the gaps' fill
        c -= _CUE_GAP_FILL
        c /= _CUE_GAP_FILL
        b *= np.clip(np.subtract(1, c, out=c), 0, 1, out=c)
        if guard:
            b *= _guard_factor(csums, unit_frames, length, erode, count, a)
    return b


def _guard_factor(csums: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], unit_frames: float,
                  length: int, erode: int, count: int, emptiest: np.ndarray) -> np.ndarray:
    """Per candidate and start frame, 1 when the units beside the cue hold no Morse element, down to 0.

    A Morse element one unit before or after the cue (:func:`_guard_cores`: "AS", "AH", "AR", "UI") is
    the cue's own tone: it fills its unit as a tone fills the template's tones (fill, measured as the
    gaps' is against ``emptiest``, the emptiest gap's mean ratio: ~1.0) at the tones' level (within
    0.1 dB). A programme beside a mixed-in cue has harmonics pass through such a unit: over speech,
    fills up to 0.93 but 15 dB off the tones' level, or within 2.4 dB but filling 0.65. So a unit
    counts by the product of how full it is (0 up to :data:`_CUE_GUARD_FILL`, 1 from that plus
    :data:`_CUE_GUARD_SPAN`) and how close its level is to the tones' (1 within
    :data:`_CUE_GUARD_LEVEL_DB`, 0 at twice that), and the fullest such unit takes the score down.
    Fresh arrays, not scratch space: only the exact pass, over the coarse pass's few regions, asks.
    """
    csum, _, lsum, _ = csums
    guards = _guard_cores(unit_frames, length, erode)
    if not guards:
        return np.ones((csum.shape[0], count))
    n_on, tones, n_core, cores = _template_runs(unit_frames, length, erode)
    # Padded with the edge values, a unit beyond either end of the frames sums to nothing (a cue at the
    # very start or end of a file has silence there, as far as this is concerned).
    pad = max(-guards[0][0], guards[-1][1] - length, 0)
    padded_ratio = np.pad(csum, ((0, 0), (pad, pad)), mode="edge")
    padded_level = np.pad(lsum, ((0, 0), (pad, pad)), mode="edge")
    above = np.maximum(_box_sum(csum, tones, count) / n_on - emptiest, 1e-6)
    tone_level = _box_sum(lsum, cores, count) / n_core
    worst = np.zeros_like(above)
    for g0, g1 in guards:
        run = [(g0 + pad, g1 + pad)]
        fill = (_box_sum(padded_ratio, run, count) / (g1 - g0) - emptiest) / above
        full = np.clip((fill - _CUE_GUARD_FILL) / _CUE_GUARD_SPAN, 0, 1)
        off_db = np.abs(_box_sum(padded_level, run, count) / (g1 - g0) - tone_level)
        same = np.clip(2 - off_db / _CUE_GUARD_LEVEL_DB, 0, 1)
        np.maximum(worst, full * same, out=worst)
    return 1 - worst


def _zero_led_cumsum(x: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``(rows, frames)`` along the frames, after a zero column: ``(rows, frames + 1)``."""
    out = np.zeros((x.shape[0], x.shape[1] + 1))
    np.cumsum(x, axis=1, out=out[:, 1:])
    return out


def _unit_lengths(hop: float, units_s: tuple[float, ...]) -> dict[float, int]:
    """Template length (frames) of each unit length (s) at a frame hop of ``hop`` s."""
    from labeler.visible.audio import CUE_UNITS

    return {unit: round(CUE_UNITS * unit / hop) for unit in units_s}


def _best_per_frame(
    ratio: np.ndarray, level: np.ndarray, hop: float, units_s: tuple[float, ...], step: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``best_score[t]``, ``best_unit[t]``: the best template starting at frame t (any frequency, unit).

    ``hop`` is the frame hop (s); ``step`` says the frames are every ``step``-th analysis frame (the
    coarse pass), which shortens the tones' cores by the same factor.
    """
    erode = math.ceil(_CUE_WIN_S / 2 / (step * _CUE_HOP_S)) + 1
    rows, frames = ratio.shape
    csums = tuple(_zero_led_cumsum(x) for x in (ratio, ratio * ratio, level, level * level))
    scratch = np.empty((4, rows * frames))
    best_score = np.zeros(frames)
    best_unit = np.zeros(frames)
    for unit, length in _unit_lengths(hop, units_s).items():
        if length >= frames:
            continue
        top = _unit_scores(csums, unit / hop, length, erode, scratch, guard=step == 1).max(axis=0)
        better = top > best_score[: len(top)]
        best_score[: len(top)][better] = top[better]
        best_unit[: len(top)][better] = unit
    return best_score, best_unit


def _pick_cues(
    best_score: np.ndarray, best_unit: np.ndarray, hop: float, threshold: float,
    work: np.ndarray, rate: float, low: float, high: float,
) -> list[tuple[float, float, float, float]]:
    """Cues found, ``(onset s, score, tone Hz, unit s)``: greedy non-maximum suppression.

    ``work`` is the analysis signal at ``rate`` Hz (for the tone).
    """
    from labeler.visible.audio import CUE_UNITS

    cues: list[tuple[float, float, float, float]] = []
    left = best_score.copy()
    while len(cues) < _MAX_FOUND:
        t = int(np.argmax(left))
        if left[t] < threshold:
            break
        unit = float(best_unit[t])
        onset = t * hop
        cues.append((onset, float(left[t]), _dash_freq(work, rate, onset, unit, low, high), unit))
        reach = round(CUE_UNITS * unit / hop)
        left[max(0, t - reach):t + reach] = 0
    return cues


def merge_cues(found: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """:func:`_pick_cues`' suppression over cues found apart (overlapping chunks of one file).

    ``found`` holds ``(onset s, score, tone Hz, unit s)`` on one time axis; the strongest cue is kept
    and every other starting within its length (Morse units x unit) dropped, as within one search.
    """
    from labeler.visible.audio import CUE_UNITS

    kept: list[tuple[float, float, float, float]] = []
    for cue in sorted(found, key=lambda c: -c[1]):
        if len(kept) == _MAX_FOUND:
            break
        if all(abs(cue[0] - k[0]) >= CUE_UNITS * k[3] for k in kept):
            kept.append(cue)
    return kept


def cue_result(cues: list[tuple[float, float, float, float]], duration: float, seen: float) -> AudioCueResult:
    """The :class:`AudioCueResult` of ``cues`` (``(onset s, score, tone Hz, unit s)``) in audio of
    ``duration`` seconds; ``seen`` is the score reported when there is none."""
    from labeler.visible.audio import CUE_UNITS

    if not cues:
        return AudioCueResult(False, score=float(seen))
    placed = []
    for onset, score, tone, unit in sorted(cues):
        end_gap = duration - (onset + CUE_UNITS * unit)
        position = "start" if onset <= _CUE_EDGE_S else "end" if end_gap <= _CUE_EDGE_S else "middle"
        placed.append((onset, position, score, tone, unit))
    onset, position, score, freq, unit = placed[0]
    return AudioCueResult(
        True,
        position=position,
        score=score,
        seconds=onset,
        freq_hz=freq,
        unit_s=unit,
        cues=tuple((round(c[0], 3), c[1], round(c[2], 4)) for c in placed),
    )


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
    contrast being the mean ratio under the template's tones minus under its gaps, times two factors
    in 0..1: steadiness (the in-band level barely varies over the tones) and the level drop (the band
    is at least 3-6 dB quieter in the gaps than under the tones: the tone really switches off, which a
    steady tone whose ratio merely dips under speech does not). So the score is 0..1, independent of
    level, and high only for a tone switching on and off in the cue's rhythm.

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

    mono = _mono_samples(samples, sample_rate)
    work, rate = _decimated(mono, float(sample_rate))
    return _search(mono, sample_rate, work, rate, None, freq_hz=freq_hz, threshold=threshold, units_s=units_s)


def _search(
    mono: np.ndarray, sample_rate: int, work: np.ndarray, rate: float, coarse_power: np.ndarray | None, *,
    freq_hz: float | None = None, threshold: float = AUDIO_CUE_THRESHOLD,
    units_s: tuple[float, ...] = AUDIO_CUE_UNITS_S,
) -> AudioCueResult:
    """:func:`detect_audio_cue` on the validated mono mix and its decimation (``work`` at ``rate`` Hz)."""
    cues, seen = find_cues(work, rate, coarse_power, freq_hz=freq_hz, threshold=threshold, units_s=units_s)
    return cue_result(cues, len(mono) / sample_rate, best_seen([seen]))


def find_cues(
    work: np.ndarray, rate: float, coarse_power: np.ndarray | None, *,
    freq_hz: float | None = None, threshold: float = AUDIO_CUE_THRESHOLD,
    units_s: tuple[float, ...] = AUDIO_CUE_UNITS_S,
) -> tuple[list[tuple[float, float, float, float]], float]:
    """The cues in ``work`` (the decimated mono mix at ``rate`` Hz), ``(onset s, score, tone Hz, unit s)``
    after suppression, and the best score seen (the best exact score where the coarse pass pointed; its
    own best where it pointed nowhere).

    ``coarse_power`` is the coarse pass's STFT (every :data:`_COARSE_STEP`-th frame, at least
    :func:`_cue_bins` bins) when the caller has it (shared with the voice search), else computed here.
    """
    low, high = AUDIO_CUE_SEARCH_HZ if freq_hz is None else (freq_hz - 50.0, freq_hz + 50.0)
    _, hop, nfft = _analysis_geometry(rate)
    frames = _analysis_frames(len(work), rate)
    bins = _cue_bins(rate / nfft, nfft, low, high)
    coarse = _coarse_pass(work, rate, coarse_power, low, high, units_s)
    cut = _COARSE_SHARE * threshold
    best_score, best_unit = np.zeros(frames), np.zeros(frames)
    longest = max(_unit_lengths(hop / rate, units_s).values())
    # The two units before and after a cue are looked at too (_guard_cores): analysed from that much
    # before each region, so that a tone there is seen, not taken for the region's edge.
    lead = math.ceil(2 * max(units_s) * rate / hop) + 1
    for a, b in _regions(coarse >= cut, _COARSE_STEP, _COARSE_PAD, frames):
        first = max(0, a - lead)
        count = min(frames - first, b - first + longest + lead)
        power = _stft_power(work, rate, first, count, 1, bins)
        score, unit = _best_per_frame(*_ratio_level(power, rate, low, high)[1:], hop / rate, units_s)
        score, unit = score[a - first:], unit[a - first:]  # only the onsets the coarse pass pointed at
        n = len(score)
        better = score > best_score[a:a + n]
        best_score[a:a + n][better] = score[better]
        best_unit[a:a + n][better] = unit[better]
    cues = _pick_cues(best_score, best_unit, hop / rate, threshold, work, rate, low, high)
    exact = float(best_score.max()) if best_score.any() else None
    return cues, (exact, float(coarse.max(initial=0.0)))


def _coarse_pass(work: np.ndarray, rate: float, power: np.ndarray | None, low: float, high: float,
                 units_s: tuple[float, ...] = AUDIO_CUE_UNITS_S) -> np.ndarray:
    """Best coarse score per coarse frame (every :data:`_COARSE_STEP`-th analysis frame), any tone, unit.

    ``power`` is that STFT when the caller has it (with at least :func:`_cue_bins` bins), else None.
    """
    _, hop, nfft = _analysis_geometry(rate)
    if power is None:
        frames = _analysis_frames(len(work), rate)
        power = _stft_power(work, rate, 0, (frames - 1) // _COARSE_STEP + 1, _COARSE_STEP,
                            _cue_bins(rate / nfft, nfft, low, high))
    _, ratio, level = _ratio_level(power, rate, low, high, every=_COARSE_EVERY)
    return _best_per_frame(ratio, level, _COARSE_STEP * hop / rate, units_s, _COARSE_STEP)[0]


def _regions(hits: np.ndarray, step: int, pad: int, frames: int) -> list[tuple[int, int]]:
    """Full-resolution frame ranges ``[a, b)`` around the coarse frames in ``hits``, merged."""
    idx = np.flatnonzero(hits)
    if not len(idx):
        return []
    starts = np.maximum(idx * step - pad, 0)
    ends = np.minimum(idx * step + pad + 1, frames)
    out: list[tuple[int, int]] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
