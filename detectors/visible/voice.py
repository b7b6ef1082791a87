"""Find the shipped voice prompts of :mod:`labeler.visible.voice_prompt` in samples: a matched filter."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.visible.common import _CUE_EDGE_S, VisibleResult, _mono_samples

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
