"""Find the audio rhythm cue of :func:`labeler.visible.audio.add_audio_cue` (Morse "AI" tones) in samples."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.visible.common import _CUE_EDGE_S, VisibleResult, _mono_samples

__all__ = ["AUDIO_CUE_SEARCH_HZ", "AUDIO_CUE_THRESHOLD", "AUDIO_CUE_UNITS_S", "AudioCueResult",
           "detect_audio_cue"]

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
# The analysis runs at the input rate halved while it stays at or above this (Hz): the cue and its
# +-300 Hz neighbourhood lie below 1.5 kHz, and halving keeps the STFT's bin width (window and FFT
# length halve together), so 44.1 kHz is analysed at 5.5 kHz with an 8x cheaper STFT.
_CUE_MIN_RATE = 5000.0
# Contrast (mean tone ratio on - off) at which the score stops being discounted.
_CUE_CONTRAST = 0.5
# Spread (dB, standard deviation) of the in-band level over the tones' cores tolerated in full; the
# score falls to 0 at twice this.
_CUE_STEADY_DB = 2.0


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


class _Rows:
    """Rows of frames (per candidate frequency) and their spectrum, transformed once for every kernel.

    The spectrum is taken at a size that fits the longest kernel, so each unit length's template costs
    one kernel transform and one inverse, not a forward transform of all the rows again.
    """

    def __init__(self, rows: np.ndarray, longest: int) -> None:
        self.frames = rows.shape[1]
        self.size = 1 << (self.frames + longest - 1).bit_length()
        self.spectrum = np.fft.rfft(rows, self.size, axis=1)

    def sliding_dot(self, kernel: np.ndarray) -> np.ndarray:
        """``out[k, t] = sum_j rows[k, t + j] * kernel[j]`` for every full window, via FFT."""
        spec = self.spectrum * np.conj(np.fft.rfft(kernel, self.size))
        return np.fft.irfft(spec, self.size, axis=1)[:, : self.frames - len(kernel) + 1]


def _decimated(mono: np.ndarray, sample_rate: float) -> tuple[np.ndarray, float]:
    """``mono`` low-passed and decimated by the largest power of two leaving at least :data:`_CUE_MIN_RATE`.

    A polyphase windowed-sinc FIR (Blackman, cut-off at the new Nyquist frequency, about 74 dB down
    from 2.5 kHz above the 1.5 kHz the analysis uses): only every ``factor``-th output is computed, as
    one matrix-vector product over a strided view. Returns the samples (centred: output ``j`` is input
    time ``j * factor``) and their rate (Hz).
    """
    factor = 1
    while sample_rate / (2 * factor) >= _CUE_MIN_RATE:
        factor *= 2
    if factor == 1:
        return mono, sample_rate
    taps = 2 * math.ceil(5.5 * sample_rate / 2500 / 2) + 1  # Blackman transition width 5.5 / taps
    n = np.arange(taps, dtype=np.float64) - taps // 2
    kernel = (np.sinc(n / factor) / factor * np.blackman(taps)).astype(np.float32)
    kernel /= kernel.sum()  # unit gain at 0 Hz: levels in dBFS stay as they were
    padded = np.concatenate([np.zeros(taps // 2, np.float32), mono, np.zeros(taps // 2 + factor, np.float32)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps)[::factor][:-(-len(mono) // factor)]
    return windows @ kernel, sample_rate / factor


def _tone_ratio(
    mono: np.ndarray, sample_rate: float, low: float, high: float
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


def _unit_scores(ratio: _Rows, level: _Rows, level_sq: _Rows, csum: np.ndarray, csq: np.ndarray,
                 unit_frames: float, length: int, erode: int) -> np.ndarray:
    """Score, per candidate frequency and start frame, of the cue's template at one unit length."""
    template, core = _cue_template(unit_frames, length, erode)
    n_on = template.sum()
    n_off = length - n_on
    on_sum = ratio.sliding_dot(template)
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
    level_mean = level.sliding_dot(core) / n_core
    level_sd = np.sqrt(np.maximum(level_sq.sliding_dot(core) / n_core - level_mean**2, 0))
    score *= np.clip(1 - (level_sd - _CUE_STEADY_DB) / _CUE_STEADY_DB, 0, 1)
    return score


def _best_per_frame(
    ratio: np.ndarray, level: np.ndarray, hop: float, units_s: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``best_score[t]``, ``best_unit[t]``: the best template starting at frame t (any frequency, unit)."""
    from labeler.visible.audio import CUE_UNITS

    erode = math.ceil(_CUE_WIN_S / 2 / _CUE_HOP_S) + 1
    frames = ratio.shape[1]
    csum = np.concatenate([np.zeros((len(ratio), 1)), np.cumsum(ratio, axis=1)], axis=1)
    csq = np.concatenate([np.zeros((len(ratio), 1)), np.cumsum(ratio * ratio, axis=1)], axis=1)
    best_score = np.zeros(frames)
    best_unit = np.zeros(frames)
    lengths = {unit: round(CUE_UNITS * unit / hop) for unit in units_s}
    longest = max([n for n in lengths.values() if n < frames], default=0)
    if not longest:
        return best_score, best_unit
    rows = [_Rows(x, longest) for x in (ratio, level, level * level)]
    for unit in units_s:
        length = lengths[unit]
        if length >= frames:
            continue
        score = _unit_scores(*rows, csum, csq, unit / hop, length, erode)
        top = score.max(axis=0)
        better = top > best_score[: len(top)]
        best_score[: len(top)][better] = top[better]
        best_unit[: len(top)][better] = unit
    return best_score, best_unit


def _pick_cues(
    best_score: np.ndarray, best_unit: np.ndarray, hop: float, threshold: float,
    mono: np.ndarray, sample_rate: int, low: float, high: float,
) -> list[tuple[float, str, float, float, float]]:
    """Cues found, ``(onset, position, score, tone Hz, unit s)``: greedy non-maximum suppression."""
    from labeler.visible.audio import CUE_UNITS

    duration = len(mono) / sample_rate
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
    return cues


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

    mono = _mono_samples(samples, sample_rate)
    low, high = AUDIO_CUE_SEARCH_HZ if freq_hz is None else (freq_hz - 50.0, freq_hz + 50.0)
    work, rate = _decimated(mono, float(sample_rate))
    _, ratio, level = _tone_ratio(work, rate, low, high)
    hop = max(1, round(_CUE_HOP_S * rate)) / rate
    best_score, best_unit = _best_per_frame(ratio, level, hop, units_s)
    cues = _pick_cues(best_score, best_unit, hop, threshold, mono, sample_rate, low, high)
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
