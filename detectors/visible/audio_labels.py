"""Both audio labels of GB 45438 (the rhythm cue and the voice prompt) over one shared analysis.

``verify`` looks for both in every audio file; searched apart, each would mix the channels down,
decimate and take a short-time spectrum of its own. :func:`detect_audio_labels` does that once and
hands the same coarse spectrum to both searches (the cue's tone ratios, the prompt's band energies).
"""

from __future__ import annotations

import numpy as np

from detectors.visible import audio_cue, voice
from detectors.visible.common import _COARSE_STEP, _analysis_frames, _decimated, _mono_samples, _stft_power

__all__ = ["detect_audio_labels"]


def detect_audio_labels(
    samples: np.ndarray, sample_rate: int
) -> tuple[audio_cue.AudioCueResult, voice.VoicePromptResult]:
    """:func:`~detectors.visible.detect_audio_cue` and :func:`~detectors.visible.detect_voice_prompt`.

    Same results as calling both (default options), with one mix-down, decimation and coarse STFT.

    Parameters
    ----------
    samples : numpy.ndarray
        float, ``(frames,)`` or ``(frames, channels)``.
    sample_rate : int
        Hz (at least 4000).

    Returns
    -------
    tuple of (AudioCueResult, VoicePromptResult)
        The rhythm cue's and the voice prompt's results.

    Raises
    ------
    LabelerError
        Empty samples, NaN/inf, a non-float dtype or a bad sample rate.
    """
    mono = _mono_samples(samples, sample_rate)
    work, rate = _decimated(mono, float(sample_rate))
    _, _, nfft = audio_cue._analysis_geometry(rate)
    low, high = audio_cue.AUDIO_CUE_SEARCH_HZ
    bins = max(audio_cue._cue_bins(rate / nfft, nfft, low, high), voice._coarse_bins(rate))
    frames = _analysis_frames(len(work), rate)
    power = _stft_power(work, rate, 0, (frames - 1) // _COARSE_STEP + 1, _COARSE_STEP, bins)
    return (audio_cue._search(mono, int(sample_rate), work, rate, power),
            voice._search(mono, int(sample_rate), work, rate, power))
