"""What the visible-label detectors share: the result type, and the audio detectors' front end.

:class:`VisibleResult` is the outcome of :func:`detectors.visible.detect_image_label` and the base of
the video, rhythm-cue and voice-prompt results; :func:`_mono_samples` validates and mixes down the
samples both audio detectors take, :func:`_decimated` and :func:`_stft_power` give the low-rate
short-time spectrum both search first (one decode, one mix, one decimation, one STFT per file in
``verify``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["VisibleResult"]

# Position: a cue or prompt starting within this many seconds of the start (ending ... of the end) is
# "start" ("end"); anything else is "middle".
_CUE_EDGE_S = 2.0


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
    if arr.ndim == 2:
        # Channel by channel: numpy's mean over the short last axis is a strided reduction, 10x slower
        # than adding whole columns (40 ms for 32 s of 44.1 kHz stereo).
        mono = arr[:, 0].astype(np.float32)
        for ch in range(1, arr.shape[1]):
            mono += arr[:, ch]
        if arr.shape[1] > 1:
            mono *= np.float32(1 / arr.shape[1])
        arr = mono
    # NaN/inf in any channel survives the mix (inf - inf is NaN), so the mono check covers them all.
    if not np.isfinite(arr).all():
        raise LabelerError("samples contain NaN or infinity")
    return arr.astype(np.float32, copy=False)


# Audio analysis: 25 ms Hann frames every 5 ms, at the input rate halved while it stays at or above
# _ANALYSIS_MIN_RATE (44.1 kHz -> 5.5 kHz): the rhythm cue and its +-300 Hz neighbourhood lie below
# 1.5 kHz, the voice prompt's coarse bands below 2.5 kHz; halving keeps the STFT's bin width (window and
# FFT length halve together, ~21.5 Hz), so the scores' meaning does not depend on the input rate.
_ANALYSIS_WIN_S = 0.025
_ANALYSIS_HOP_S = 0.005
_ANALYSIS_MIN_RATE = 5000.0
# Both searches start with a coarse pass over every _COARSE_STEP-th analysis frame (15 ms apart).
_COARSE_STEP = 3
# Frames per FFT call of the analysis STFT (a few MiB of buffers at ~5.5 kHz: 25 ms frames of 138 samples).
_STFT_BATCH = 1024


def _decimated(mono: np.ndarray, sample_rate: float) -> tuple[np.ndarray, float]:
    """``mono`` low-passed and decimated by the largest power of two leaving at least 5 kHz.

    A polyphase windowed-sinc FIR (:func:`_fir_decimate`, about 74 dB down from 2.5 kHz above the
    1.5 kHz the cue analysis uses). Returns the samples (centred: output ``j`` is input time
    ``j * factor``) and their rate (Hz).
    """
    factor = 1
    while sample_rate / (2 * factor) >= _ANALYSIS_MIN_RATE:
        factor *= 2
    if factor == 1:
        return mono, sample_rate
    return _fir_decimate(mono, sample_rate, factor, 2500.0), sample_rate / factor


def _fir_decimate(x: np.ndarray, sample_rate: float, factor: int, transition_hz: float) -> np.ndarray:
    """``x`` low-passed at the new Nyquist frequency and decimated by ``factor`` (float32, centred).

    A Blackman-windowed sinc whose transition band is ``transition_hz`` wide, about 74 dB down
    beyond it, with unit gain at 0 Hz (levels in dBFS stay as they were). Polyphase: with the samples
    viewed as ``(rows, factor)`` (one output's worth of input per row), one matrix product gives each
    row's dot product with every phase of the kernel, ``(phases, rows)``, and output ``j`` is the sum
    of phase ``k`` at row ``j + k``: a single BLAS call and ``phases`` contiguous additions, in blocks
    of 2^16 outputs (bounded memory). Output ``j`` is input time ``j * factor``; ``ceil(len(x) /
    factor)`` outputs, zeros assumed beyond both ends.
    """
    taps = 2 * math.ceil(5.5 * sample_rate / transition_hz / 2) + 1  # Blackman width 5.5 / taps
    n = np.arange(taps, dtype=np.float64) - taps // 2
    kernel = np.sinc(n / factor) / factor * np.blackman(taps)
    kernel /= kernel.sum()
    phases = -(-taps // factor)
    weights = np.zeros(phases * factor, np.float32)
    weights[:taps] = kernel
    weights = weights.reshape(phases, factor)
    out_len = -(-len(x) // factor)
    rows = out_len + phases - 1
    padded = np.zeros(rows * factor, np.float32)
    padded[taps // 2:taps // 2 + len(x)] = x  # output j's window starts at input j * factor - taps // 2
    view = padded.reshape(rows, factor)
    out = np.empty(out_len, np.float32)
    # One product buffer for all blocks: a fresh one per block would be mapped and page-faulted in
    # anew wherever the allocator hands large blocks back to the system at once (glibc with a fixed
    # mmap threshold). The block length stays: BLAS rounds the columns of a block's tail differently,
    # so other blocks would move the outputs by an ulp.
    block = 1 << 16
    buffer = np.empty(phases * (min(block, out_len) + phases - 1), np.float32)
    for a in range(0, out_len, block):
        b = min(out_len, a + block)
        # (phases, rows of this block), C-contiguous for matmul's out.
        dots = buffer[:phases * (b - a + phases - 1)].reshape(phases, -1)
        np.matmul(weights, view[a:b + phases - 1].T, out=dots)
        out[a:b] = dots[0, :b - a]
        for k in range(1, phases):
            out[a:b] += dots[k, k:k + b - a]
    return out


def _fast_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= ``n``: an FFT length pocketfft handles at full speed."""
    best = 1 << max(0, n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35 << max(0, -(-n // p35) - 1).bit_length()
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _analysis_geometry(rate: float) -> tuple[int, int, int]:
    """Window, hop (samples at ``rate``) and FFT length of the audio analysis STFT."""
    win = max(16, round(_ANALYSIS_WIN_S * rate))
    hop = max(1, round(_ANALYSIS_HOP_S * rate))
    return win, hop, 1 << (win - 1).bit_length()


def _analysis_frames(length: int, rate: float) -> int:
    """Frames of the analysis STFT over ``length`` samples at ``rate`` (frame t centred on ``t * hop``)."""
    win, hop, _ = _analysis_geometry(rate)
    return (length + win // 2) // hop + 1


def _stft_power(work: np.ndarray, rate: float, first: int, count: int, step: int, bins: int) -> np.ndarray:
    """Power spectrum of analysis frames ``first, first + step, ...`` (``count`` of them), bins ``0..bins-1``.

    Frame ``t`` is the Hann window centred on sample ``t * hop`` of ``work`` (zeros beyond its ends),
    so any stretch of frames computed alone equals the same frames of the whole file. float64 (NumPy's
    float64 FFT is ~3x faster than its float32 one), shape ``(count, bins)``; batches of
    :data:`_STFT_BATCH` frames bound the memory on long files.
    """
    win, hop, nfft = _analysis_geometry(rate)
    lo = first * hop - win // 2
    hi = (first + step * (count - 1)) * hop - win // 2 + win
    segment = np.zeros(max(0, hi - lo), np.float32)
    a, b = max(lo, 0), min(hi, len(work))
    if b > a:
        segment[a - lo:b - lo] = work[a:b]
    frames = np.lib.stride_tricks.sliding_window_view(segment, win)[::hop * step][:count]
    window = np.hanning(win)
    power = np.empty((len(frames), bins))
    # One set of batch buffers, written in place: fresh ones per batch and step would be mapped and
    # page-faulted in anew wherever the allocator hands large blocks back to the system at once.
    rows = min(_STFT_BATCH, len(frames))
    windowed, imag = np.empty((rows, win)), np.empty((rows, bins))
    spec = np.empty((rows, nfft // 2 + 1), complex)
    for s in range(0, len(frames), _STFT_BATCH):
        n = min(_STFT_BATCH, len(frames) - s)
        np.multiply(frames[s:s + n], window, out=windowed[:n])
        np.fft.rfft(windowed[:n], nfft, axis=1, out=spec[:n])
        # power = real ** 2 + imag ** 2
        np.square(spec.real[:n, :bins], out=power[s:s + n])
        power[s:s + n] += np.square(spec.imag[:n, :bins], out=imag[:n])
    return power


def best_seen(seens: list[tuple[float | None, float]]) -> float:
    """The score a search reports when it finds nothing, from its parts' ``(exact, coarse)`` bests (one
    search, or the chunks of a streamed one): the best exact score wherever the coarse pass pointed
    somewhere (``exact`` not None), else the coarse pass's best."""
    exact = [e for e, _ in seens if e is not None]
    return max(exact) if exact else max((c for _, c in seens), default=0.0)
