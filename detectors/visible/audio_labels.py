"""Both audio labels of GB 45438 (the rhythm cue and the voice prompt) over one shared analysis.

``verify`` looks for both in every audio file; searched apart, each would mix the channels down,
decimate and take a short-time spectrum of its own. :func:`detect_audio_labels` does that once and
hands the same coarse spectrum to both searches (the cue's tone ratios, the prompt's band energies).
:class:`AudioLabelScan` gives the same answer for audio fed block by block (a long file streamed from
its decoder), searching overlapping chunks in bounded memory.
"""

from __future__ import annotations

import math

import numpy as np

from detectors.visible import audio_cue, voice
from detectors.visible.common import (
    _ANALYSIS_MIN_RATE,
    _COARSE_STEP,
    _analysis_frames,
    _decimated,
    _mono_samples,
    _stft_power,
    best_seen,
)
from labeler.errors import LabelerError

__all__ = ["LABEL_CHUNK_S", "LABEL_OVERLAP_S", "AudioLabelScan", "detect_audio_labels"]

#: Seconds of audio :class:`AudioLabelScan` searches at a time, and by how much consecutive chunks
#: overlap: longer than a cue (Morse "AI" at the longest unit, 1.5 s) or a shipped prompt (under 4 s)
#: with the analysis' margins, so each label lies whole in some chunk. A chunk's mono mix is 27 MB at
#: 48 kHz, its searches' working set about as much again; an hour of 44.1 kHz stereo is verified in
#: 161 MB (resident, the interpreter's 93 MB included) at the same speed as in 300 s chunks (265 MB).
LABEL_CHUNK_S = 120.0
LABEL_OVERLAP_S = 20.0

Seen = tuple[float | None, float]
Found = tuple[list[tuple[float, float, float, float]], Seen, list[tuple[float, str, float]], Seen]


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
    cues, cue_seen, prompts, voice_seen = _find(mono, int(sample_rate))
    duration = len(mono) / sample_rate
    return (audio_cue.cue_result(cues, duration, best_seen([cue_seen])),
            voice.prompt_result(prompts, duration, best_seen([voice_seen])))


def _find(mono: np.ndarray, sample_rate: int) -> Found:
    """Cues and prompts in ``mono`` (onsets from its first sample) and the best score each search saw."""
    work, rate = _decimated(mono, float(sample_rate))
    _, _, nfft = audio_cue._analysis_geometry(rate)
    low, high = audio_cue.AUDIO_CUE_SEARCH_HZ
    bins = max(audio_cue._cue_bins(rate / nfft, nfft, low, high), voice._coarse_bins(rate))
    frames = _analysis_frames(len(work), rate)
    power = _stft_power(work, rate, 0, (frames - 1) // _COARSE_STEP + 1, _COARSE_STEP, bins)
    cues, cue_seen = audio_cue.find_cues(work, rate, power)
    prompts, voice_seen = voice.find_prompts(mono, sample_rate, work, rate, power)
    return cues, cue_seen, prompts, voice_seen


def _frame_step(sample_rate: int) -> tuple[int, float]:
    """The analysis frames' step: in input samples, and in seconds as the cue search computes it (its
    hop over the decimated rate, :func:`~detectors.visible.common._decimated`'s)."""
    factor = 1
    while sample_rate / (2 * factor) >= _ANALYSIS_MIN_RATE:
        factor *= 2
    rate = float(sample_rate) / factor
    hop = audio_cue._analysis_geometry(rate)[1]
    return factor * hop, hop / rate


def _grid(sample_rate: int) -> int:
    """Input samples between chunk starts that keep every analysis grid where the whole file has it:
    the decimation, the coarse STFT frames and the 8 kHz grid of the prompt's matched filter."""
    return math.lcm(_frame_step(sample_rate)[0] * _COARSE_STEP,
                    sample_rate // math.gcd(sample_rate, voice.VOICE_RATE_HZ))


class AudioLabelScan:
    """:func:`detect_audio_labels` over audio fed in blocks, in bounded memory.

    The mono mix is searched in chunks of :data:`LABEL_CHUNK_S` seconds overlapping by
    :data:`LABEL_OVERLAP_S` (both rounded to whole steps of every analysis grid, so a chunk's frames
    are the whole file's); what the chunks find is put on one time axis and suppressed as one search
    would (:func:`~detectors.visible.audio_cue.merge_cues`,
    :func:`~detectors.visible.voice.merge_prompts`); positions (start, middle, end) are placed against
    the whole length once the stream ends. Audio of at most one chunk plus the overlap is searched in
    one piece, exactly as :func:`detect_audio_labels`.

    Parameters
    ----------
    sample_rate : int
        Hz (at least 4000).
    chunk_s, overlap_s : float, optional
        Chunk length and overlap (s); default :data:`LABEL_CHUNK_S` and :data:`LABEL_OVERLAP_S`.
    """

    def __init__(self, sample_rate: int, *, chunk_s: float | None = None,
                 overlap_s: float | None = None) -> None:
        if int(sample_rate) != sample_rate or sample_rate < 4000:
            raise LabelerError(f"sample_rate must be an integer of at least 4000 Hz, got {sample_rate!r}")
        self.sample_rate = int(sample_rate)
        grid = _grid(self.sample_rate)
        chunk_s = LABEL_CHUNK_S if chunk_s is None else chunk_s
        overlap_s = LABEL_OVERLAP_S if overlap_s is None else overlap_s
        self._overlap = math.ceil(overlap_s * sample_rate / grid) * grid
        self._chunk = max(grid, round(chunk_s * sample_rate / grid) * grid)
        self._buf = np.empty(self._chunk + self._overlap, np.float32)
        self._held = 0
        self._start = 0  # input frame of the buffer's first sample
        self._searched = False  # some chunk was searched (the buffer then opens with its overlap)
        self._cues: list[tuple[float, float, float, float]] = []
        self._prompts: list[tuple[float, str, float]] = []
        self._seen: tuple[list[tuple[float | None, float]], ...] = ([], [])  # each chunk's, per search

    def push(self, samples: np.ndarray) -> None:
        """Add a block, float ``(frames,)`` or ``(frames, channels)``; raises ``LabelerError`` as
        :func:`detect_audio_labels` does (NaN/inf, a non-float dtype...)."""
        if np.asarray(samples).size == 0:
            return
        mono = _mono_samples(samples, self.sample_rate)
        pos = 0
        while pos < len(mono):
            take = min(len(mono) - pos, len(self._buf) - self._held)
            self._buf[self._held:self._held + take] = mono[pos:pos + take]
            self._held += take
            pos += take
            if self._held == len(self._buf):
                self._search(self._buf)
                self._buf[:self._overlap] = self._buf[self._chunk:]
                self._held, self._start = self._overlap, self._start + self._chunk

    def result(self) -> tuple[audio_cue.AudioCueResult, voice.VoicePromptResult]:
        """Search what is left and return both results, as :func:`detect_audio_labels` does.

        Raises
        ------
        LabelerError
            Nothing was pushed.
        """
        if self._held > (self._overlap if self._searched else 0):
            self._search(self._buf[:self._held])
        if not self._searched:
            raise LabelerError("samples must be a non-empty (frames,) or (frames, channels) array: (0,)")
        duration = (self._start + self._held) / self.sample_rate
        return (audio_cue.cue_result(audio_cue.merge_cues(self._cues), duration, best_seen(self._seen[0])),
                voice.prompt_result(voice.merge_prompts(self._prompts), duration, best_seen(self._seen[1])))

    def _search(self, mono: np.ndarray) -> None:
        cues, cue_seen, prompts, voice_seen = _find(mono, self.sample_rate)
        # Onsets as one search computes them, frame index x step: the chunk's start added in seconds
        # moves some by an ulp, and a prompt's (t / 8000 s, half a millisecond past a whole one) then
        # rounds to another millisecond in the report.
        samples, step = _frame_step(self.sample_rate)
        frames = self._start // samples
        self._cues += [((round(onset / step) + frames) * step, *rest) for onset, *rest in cues]
        ticks = self._start * voice.VOICE_RATE_HZ // self.sample_rate
        self._prompts += [((round(onset * voice.VOICE_RATE_HZ) + ticks) / voice.VOICE_RATE_HZ, *rest)
                          for onset, *rest in prompts]
        self._seen[0].append(cue_seen)
        self._seen[1].append(voice_seen)
        self._searched = True
