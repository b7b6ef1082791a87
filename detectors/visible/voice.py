"""Find the shipped voice prompts of :mod:`labeler.visible.voice_prompt` in samples: a matched filter."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.visible.common import (
    _COARSE_STEP,
    _CUE_EDGE_S,
    VisibleResult,
    _analysis_frames,
    _analysis_geometry,
    _decimated,
    _fast_size,
    _fir_decimate,
    _mono_samples,
    _stft_power,
    best_seen,
)

__all__ = ["VOICE_BAND_HZ", "VOICE_PARTS", "VOICE_RATE_HZ", "VOICE_THRESHOLD", "VoicePromptResult",
           "detect_voice_prompt"]

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
# Coarse pass: the log energy of 12 bands (250-2500 Hz, log-spaced) every 15 ms, from the STFT the cue
# search shares (25 ms frames at ~5.5 kHz), correlated with each clip's, part by part (each part's
# bands centred, so gain and a codec's tilt do not count). Only onsets within _COARSE_PAD_S of where
# that reaches _COARSE_THRESHOLD are scored exactly (the 8 kHz matched filter), and only those exact
# scores decide. Measured (benchmarks/visible_audio_voice.py): coarse >= 0.64 at every prompt found
# (MP3 64k, mixed over speech), <= 0.37 on the unlabeled (espeak speech saying "generated").
_COARSE_EDGES_HZ = tuple(float(f) for f in np.geomspace(250.0, 2500.0, 13))
_COARSE_THRESHOLD = 0.3
_COARSE_PAD_S = 0.03
# At most this many prompts are listed per file.
_MAX_FOUND = 32


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


@functools.lru_cache(maxsize=8)
def _band_masks(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The voice band's FFT bins (``size`` points, both signs) and its positive-frequency half (bool)."""
    freqs = np.fft.fftfreq(size, 1.0 / VOICE_RATE_HZ)
    band = (np.abs(freqs) >= VOICE_BAND_HZ[0]) & (np.abs(freqs) <= VOICE_BAND_HZ[1])
    positive = band & (freqs > 0)
    band.setflags(write=False)  # cached: shared by every call
    positive.setflags(write=False)
    return band, positive


def _voice_band(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectrum (``size`` points) of the band-passed analytic signal, and the band-passed real signal."""
    spec = np.fft.fft(x.astype(np.complex64), size)
    band, positive = _band_masks(size)
    real = np.fft.ifft(spec * band)[: len(x)].real.astype(np.float32)
    # Analytic: positive frequencies doubled, negative ones dropped. Its correlation with a real
    # template is the complex envelope of the real correlation: its magnitude does not care about the
    # sub-sample offset or the phase shifts a lossy codec leaves. In place: no more large temporaries.
    spec *= positive
    spec *= 2
    return spec, real


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


def _voice_scores(x: np.ndarray, languages: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Score of each shipped prompt (of ``languages``: default all) at each onset in ``x`` (8 kHz mono)."""
    templates = tuple(t for t in _voice_templates() if languages is None or t[0] in languages)
    longest = max(length for _, length, _ in templates)
    n = len(x)
    chunk = _VOICE_FFT - longest - 2 * _VOICE_MARGIN
    scores = {lang: np.zeros(max(0, n - length + 1), np.float32) for lang, length, _ in templates}
    for a in range(0, n, chunk):
        lo, hi = max(0, a - _VOICE_MARGIN), min(n, a + chunk + longest + _VOICE_MARGIN)
        size = _fast_size(hi - lo)
        analytic, real = _voice_band(x[lo:hi], size)
        energy = np.zeros(len(real) + 1)  # energy[i] = sum of real[:i] ** 2
        np.cumsum(np.square(real.astype(np.float64)), out=energy[1:])
        product = np.empty_like(analytic)
        for (language, length, parts), spectra in zip(_voice_templates(), _voice_spectra(size), strict=True):
            t0, t1 = a, min(a + chunk, n - length + 1)
            if language not in scores or t1 <= t0:
                continue
            total = np.zeros(t1 - t0, np.float64)
            for (offset, part), spectrum in zip(parts, spectra, strict=True):
                corr = np.fft.ifft(np.multiply(analytic, spectrum, out=product))
                i, j, m = t0 - lo + offset, t1 - lo + offset, len(part)  # onsets t0..t1-1 in corr
                power = np.maximum(energy[i + m:j + m] - energy[i:j], m * _VOICE_FLOOR)
                total += np.abs(corr[i:j]) / np.sqrt(power)
            scores[language][t0:t1] = total / len(parts)
    return scores


def _coarse_bins(rate: float) -> int:
    """STFT bins (from 0) the coarse pass reads at the analysis rate ``rate``."""
    _, _, nfft = _analysis_geometry(rate)
    return min(nfft // 2 + 1, math.ceil(_COARSE_EDGES_HZ[-1] * nfft / rate) + 1)


def _band_features(power: np.ndarray, rate: float) -> np.ndarray:
    """Log energy (dB) of the coarse bands, ``(bands, frames)``, from an STFT power ``(frames, bins)``."""
    win, _, nfft = _analysis_geometry(rate)
    edges = np.minimum(np.round(np.array(_COARSE_EDGES_HZ) * nfft / rate).astype(int), power.shape[1])
    bins = np.arange(power.shape[1])[:, None]
    energy = power @ ((bins >= edges[:-1]) & (bins < edges[1:]))  # one matrix product: (frames, bands)
    # -90 dBFS of a full-scale sine's frame power: digital silence is a level, not -inf.
    floor = 1e-9 * (np.hanning(win).sum() / 2) ** 2
    return (10 * np.log10(energy + floor)).T


@functools.lru_cache(maxsize=8)
def _coarse_templates(sample_rate: int) -> tuple[tuple[str, int, tuple[tuple[int, np.ndarray], ...]], ...]:
    """Per language: clip length in coarse frames and its parts ``(offset, centred unit-norm features)``.

    The clip goes through the same front end as the programme (resampled to ``sample_rate``,
    decimated, STFT every :data:`_COARSE_STEP`-th frame), so the features line up frame for frame.
    """
    from labeler.visible.voice_prompt import LANGUAGES, voice_clip

    out = []
    for language in LANGUAGES:
        work, rate = _decimated(voice_clip(language, sample_rate).astype(np.float32), float(sample_rate))
        frames = (len(work) - 1) // _analysis_geometry(rate)[1] // _COARSE_STEP + 1
        feats = _band_features(_stft_power(work, rate, 0, frames, _COARSE_STEP, _coarse_bins(rate)), rate)
        edges = np.linspace(0, frames, VOICE_PARTS + 1).astype(int)
        parts = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            part = feats[:, a:b] - feats[:, a:b].mean(axis=1, keepdims=True)
            parts.append((int(a), part / np.linalg.norm(part)))
        out.append((language, frames, tuple(parts)))
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _coarse_spectra(sample_rate: int, size: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Conjugate spectra (``size`` points) of :func:`_coarse_templates`' parts, in the same order."""
    return tuple(tuple(np.conj(np.fft.rfft(part, size, axis=1)) for _, part in parts)
                 for _, _, parts in _coarse_templates(sample_rate))


def _coarse_scores(features: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """Coarse score (mean over parts of the centred features' correlation) per language and frame."""
    bands, frames = features.shape
    zero = np.zeros((bands, 1))
    s1 = np.concatenate([zero, np.cumsum(features, axis=1)], axis=1)
    s2 = np.concatenate([zero, np.cumsum(features * features, axis=1)], axis=1)
    templates = _coarse_templates(sample_rate)
    longest = max(length for _, length, _ in templates)
    size = _fast_size(frames + longest)
    spectrum = np.fft.rfft(features, size, axis=1)
    out = {}
    for (language, length, parts), spectra in zip(templates, _coarse_spectra(sample_rate, size), strict=True):
        count = frames - length + 1
        if count <= 0:
            out[language] = np.zeros(0)
            continue
        total = np.zeros(count)
        for (offset, part), part_spectrum in zip(parts, spectra, strict=True):
            n = part.shape[1]
            dot = np.fft.irfft(np.einsum("bf,bf->f", spectrum, part_spectrum), size)
            a, b = offset, offset + count
            spread = (s2[:, a + n:b + n] - s2[:, a:b]) - (s1[:, a + n:b + n] - s1[:, a:b]) ** 2 / n
            total += dot[a:b] / np.sqrt(np.maximum(spread.sum(axis=0), 1e-9))
        out[language] = total / len(parts)
    return out


def _coarse_pass(
    work: np.ndarray, rate: float, sample_rate: int, power: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Coarse score per language and coarse frame (every :data:`_COARSE_STEP`-th analysis frame).

    ``power`` is that STFT when the caller has it (with at least :func:`_coarse_bins` bins), else None.
    """
    if power is None:
        frames = _analysis_frames(len(work), rate)
        power = _stft_power(work, rate, 0, (frames - 1) // _COARSE_STEP + 1, _COARSE_STEP, _coarse_bins(rate))
    return _coarse_scores(_band_features(power[:, :_coarse_bins(rate)], rate), sample_rate)


def _exact_near(
    mono: np.ndarray, sample_rate: int, coarse: dict[str, np.ndarray], hop_s: float, cut: float
) -> dict[str, np.ndarray]:
    """Exact scores (:func:`_voice_scores`, 8 kHz onsets) within :data:`_COARSE_PAD_S` of coarse hits.

    ``coarse`` holds each language's coarse score per frame (``hop_s`` apart); onsets elsewhere keep a
    score of 0. Each stretch is resampled to 8 kHz alone, from an input sample that falls on the
    8 kHz grid, with :data:`_VOICE_MARGIN` samples on either side (the resampler's and band-pass's
    edges). Returns every language's full-length array, or an empty dict when nothing was hit.
    """
    lengths = _clip_lengths()
    n8 = round(len(mono) * VOICE_RATE_HZ / sample_rate)
    g = math.gcd(sample_rate, VOICE_RATE_HZ)
    step_in, step_out = sample_rate // g, VOICE_RATE_HZ // g
    pad = round(_COARSE_PAD_S * VOICE_RATE_HZ)
    out: dict[str, np.ndarray] = {}
    for language, score in coarse.items():
        length = lengths[language]
        count = max(0, n8 - length + 1)
        hits = np.round(np.flatnonzero(score >= cut) * hop_s * VOICE_RATE_HZ).astype(int)
        for a, b in _merged(np.maximum(hits - pad, 0), np.minimum(hits + pad + 1, count)):
            first = max(0, a - _VOICE_MARGIN) // step_out * step_out  # on both grids
            last = min(n8, b - 1 + length + _VOICE_MARGIN)
            x = _to_voice_rate(mono[first // step_out * step_in:-(-last // step_out) * step_in], sample_rate)
            exact = _voice_scores(x, (language,))[language][a - first:b - first]
            arr = out.setdefault(language, np.zeros(count, np.float32))
            np.maximum(arr[a:a + len(exact)], exact, out=arr[a:a + len(exact)])
    if out:
        for language, length in lengths.items():
            out.setdefault(language, np.zeros(max(0, n8 - length + 1), np.float32))
    return out


def _to_voice_rate(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``x`` at :data:`VOICE_RATE_HZ`: FIR-decimated by a power of two first (44.1 kHz -> 11.025 kHz).

    The FIR is flat to the voice band's 3.6 kHz and its aliases land above it, so the FFT resampler
    (:func:`labeler.visible.voice_prompt.resample`) then works on a quarter of the samples. Sample 0
    stays at time 0.
    """
    from labeler.visible.voice_prompt import resample

    factor = 1
    while sample_rate % (2 * factor) == 0 and sample_rate // (2 * factor) >= VOICE_RATE_HZ:
        factor *= 2
    if factor > 1:
        # Transition from 3.6 kHz up to where aliases would fold back onto 3.6 kHz.
        x = _fir_decimate(x, sample_rate, factor, sample_rate / factor - 2 * VOICE_BAND_HZ[1])
        sample_rate //= factor
    # Blocks of a power of two reduced periods (~16k samples): FFT lengths with small prime factors
    # only (the default block at 11025 Hz has a factor 37, twice as slow).
    down = sample_rate // math.gcd(sample_rate, VOICE_RATE_HZ)
    periods = 1 << max(0, round(math.log2(max(1.0, (1 << 14) / (2 * down)))))
    return resample(x, sample_rate, VOICE_RATE_HZ, block=2 * periods * down)


def _merged(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """Sorted ``[start, end)`` ranges with overlaps merged (empty ones dropped)."""
    out: list[tuple[int, int]] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


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

    That exact score is computed only near onsets a coarse pass points to: the correlation of 12 log
    band energies every 15 ms with the clip's, part by part (0.3 or more; the shipped prompts, after
    MP3 64k and mixed over speech, reach 0.64 or more, unlabeled speech and music 0.37 at most).

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
        prompt found, all prompts in ``prompts``; when none is found, ``score`` is the best exact score
        seen (the coarse pass's best where it pointed nowhere).

    Raises
    ------
    LabelerError
        Empty samples, NaN/inf, a non-float dtype or a bad sample rate.
    """
    mono = _mono_samples(samples, sample_rate)
    work, rate = _decimated(mono, float(sample_rate))
    return _search(mono, int(sample_rate), work, rate, None, threshold=threshold)


def _search(
    mono: np.ndarray, sample_rate: int, work: np.ndarray, rate: float, coarse_power: np.ndarray | None, *,
    threshold: float = VOICE_THRESHOLD,
) -> VoicePromptResult:
    """:func:`detect_voice_prompt` on the validated mono mix and its decimation (``work`` at ``rate`` Hz)."""
    found, seen = find_prompts(mono, sample_rate, work, rate, coarse_power, threshold=threshold)
    return prompt_result(found, len(mono) / sample_rate, best_seen([seen]))


def find_prompts(
    mono: np.ndarray, sample_rate: int, work: np.ndarray, rate: float, coarse_power: np.ndarray | None, *,
    threshold: float = VOICE_THRESHOLD,
) -> tuple[list[tuple[float, str, float]], float]:
    """The prompts in ``mono`` (``work``: its decimation at ``rate`` Hz), ``(onset s, language, score)``
    after suppression, and the best score seen (exact where the coarse pass pointed, else the coarse
    pass's best).

    ``coarse_power`` is the analysis STFT every :data:`_COARSE_STEP`-th frame with at least
    :func:`_coarse_bins` bins (shared with the cue search), else computed here.
    """
    coarse = _coarse_pass(work, rate, sample_rate, coarse_power)
    hop_s = _COARSE_STEP * _analysis_geometry(rate)[1] / rate
    scores = _exact_near(mono, sample_rate, coarse, hop_s, min(_COARSE_THRESHOLD, threshold))
    lengths = _clip_lengths()
    coarse_best = max((float(s.max(initial=0.0)) for s in coarse.values()), default=0.0)
    if not scores:
        return [], (None, coarse_best)
    best = max(float(s.max(initial=0.0)) for s in scores.values())
    found: list[tuple[float, str, float]] = []
    left = {language: s.copy() for language, s in scores.items()}
    while len(found) < _MAX_FOUND:
        language = max(left, key=lambda k: float(left[k].max(initial=0.0)))
        s = left[language]
        if not len(s) or s.max() < threshold:
            break
        t = int(np.argmax(s))
        found.append((t / VOICE_RATE_HZ, language, float(s[t])))
        # One prompt per stretch of audio, whatever the language: suppress both around it.
        for other, arr_ in left.items():
            reach = max(lengths[other], lengths[language])
            arr_[max(0, t - reach):t + reach] = 0
    return found, (best, coarse_best)


def merge_prompts(found: list[tuple[float, str, float]]) -> list[tuple[float, str, float]]:
    """:func:`find_prompts`' suppression over prompts found apart (overlapping chunks of one file).

    ``found`` holds ``(onset s, language, score)`` on one time axis; the strongest is kept and every
    other starting within the longer of the two clips dropped, as within one search.
    """
    lengths = _clip_lengths()
    kept: list[tuple[float, str, float]] = []
    for prompt in sorted(found, key=lambda f: -f[2]):
        if len(kept) == _MAX_FOUND:
            break
        if all(abs(prompt[0] - k[0]) * VOICE_RATE_HZ >= max(lengths[prompt[1]], lengths[k[1]]) for k in kept):
            kept.append(prompt)
    return kept


def prompt_result(found: list[tuple[float, str, float]], duration: float, seen: float) -> VoicePromptResult:
    """The :class:`VoicePromptResult` of ``found`` (``(onset s, language, score)``) in audio of
    ``duration`` seconds; ``seen`` is the score reported when there is none."""
    from labeler.visible.voice_prompt import VOICE_TEXTS

    if not found:
        return VoicePromptResult(False, score=float(seen))
    lengths = _clip_lengths()
    placed = []
    for onset, language, score in sorted(found):
        end_gap = duration - (onset + lengths[language] / VOICE_RATE_HZ)
        position = "start" if onset <= _CUE_EDGE_S else "end" if end_gap <= _CUE_EDGE_S else "middle"
        placed.append((onset, position, language, score))
    onset, position, language, score = placed[0]
    return VoicePromptResult(
        True,
        position=position,
        score=score,
        seconds=onset,
        language=language,
        text=VOICE_TEXTS[language],
        prompts=tuple((round(f[0], 3), f[1], f[2], round(f[3], 4)) for f in placed),
    )


def _clip_lengths() -> dict[str, int]:
    """Each shipped clip's length in samples at :data:`VOICE_RATE_HZ`."""
    return {language: length for language, length, _ in _voice_templates()}
