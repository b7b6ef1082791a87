"""Audio watermark detector: is a keyed audio mark present, which payload, how sure.

::

    >>> from detectors.watermark import detect_audio
    >>> from labeler.watermark import embed_audio, payload_from_produce_id
    >>> payload = payload_from_produce_id("aud-42")
    >>> r = detect_audio(embed_audio(samples, 44100, payload, key=key), 44100, key=key)
    >>> r.found, r.payload == payload, r.p_value < 1e-6
    (True, True, True)

Steps (``docs/watermark-audio.md``): log band energies of the mono downmix on the embedder's bands, a
key-independent 2-D high-pass (the host's envelope out, the cells' +-a steps in), then for every
hypothesis (replay speed, tempo, pitch) resample to the embedding time grid, fold the 3.07 s periods,
find the period phase by one FFT circular cross-correlation with the pilot, read the cells, despread
(three weightings), soft Viterbi, CRC, and a list Viterbi when no maximum-likelihood path passes. The
p-value is a union bound over every (phase, hypothesis, window) tried of the Bentkus-Dzindzalieta bound
on the pilot's self-normalised correlation, times ``2**-16`` per CRC check when the CRC is required.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from detectors.audio_bandmap import band_energy, band_map, spectrogram
from detectors.watermark_result import DEFAULT_THRESHOLD, WatermarkResult
from labeler.watermark.audio import (
    CELL,
    CELL_TICKS,
    MIN_DETECT_SECONDS,
    N_BANDS,
    PERIOD_CELLS,
    TICK,
    Pattern,
    UnreadableSamples,
    as_float_pcm,
    check_rate,
    make_pattern,
    seconds_down,
)
from labeler.watermark.payload import (
    CRC_BITS,
    WatermarkError,
    check_key,
    list_viterbi,
    split_info,
    viterbi_decode,
)
from labeler.watermark.sync import null_tail

__all__ = ["detect_audio", "AudioDetector", "MIN_DETECT_SECONDS", "WINDOW_SECONDS", "hypotheses"]

#: Longest window read at once (s); longer input is cut into equal consecutive windows of at most this
#: (stop at the first that decodes), each counted in the p-value. Longer windows fold more periods (the
#: payload needs ~20-30 s of speech) but need a finer speed grid.
WINDOW_SECONDS = 60.0
#: Speed range searched: replay speed and tempo 1 +- SPEED_RANGE, pitch 1 +- PITCH_RANGE.
SPEED_RANGE, PITCH_RANGE = 0.06, 0.065
#: Frequency-factor step: +-0.25 % is at most 9.3 Hz (0.22 bin) at the top of the band. Replay-speed
#: hypotheses use the nearest frequency factor on this grid, so band maps are shared.
PITCH_STEP = 0.005
#: Phases kept from the FFT correlation per hypothesis and hypotheses decoded per window.
TOP_PHASES, DECODE_TOP = 3, 6
#: Decodings tried per read (cell-reliability-weighted, band-weighted and plain despreading): the CRC
#: factor is DECODINGS * 2**-16.
DECODINGS = 3
#: Reliability classes of the first decoding: each cell's received energy over its band's
#: RELIABILITY_PERCENTILE-th percentile in the window (a noise-floor estimate), cut at quantiles into
#: RELIABILITY_CLASSES classes; each class gets the LMMSE weight measured on its pilot cells.
RELIABILITY_CLASSES, RELIABILITY_PERCENTILE = 8, 10.0
#: Paths per decoding of the list Viterbi tried when no maximum-likelihood decoding passes its CRC: the
#: CRC then checks DECODINGS * LIST_SIZE candidates (the p-value counts them all, see _read_window).
LIST_SIZE = 64
#: Reads (best z first) that get the list decoding (it costs ~50 ms per decoding; the ML pass is ~1 ms).
LIST_READS = 2
#: Share of the false-positive budget given to the nominal hypothesis (speed and pitch 1), tested on its
#: own before the whole search: most audio is read at the speed it was marked, and its zero-bit test
#: then counts 192 phases instead of hypotheses x 192 (3 s: 11,328), for a factor 2 on the rest.
NOMINAL_WEIGHT = 0.5
_PERIOD_TICKS = PERIOD_CELLS * CELL_TICKS


def check_threshold(threshold: float) -> float:
    """``threshold`` as float, or :class:`WatermarkError` unless it is a number in (0, 1].

    A p-value threshold of NaN, 0 or below can never be met (every mark read as absent, silently); a
    str or None used to raise TypeError deep in the search.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 < threshold <= 1.0:
        raise WatermarkError(f"watermark threshold must be a p-value in (0, 1], not {threshold!r}")
    return float(threshold)


def _check_frames(frames: int | None) -> int | None:
    """The stream length given to :class:`AudioDetector` (None, or an integer >= 0)."""
    if frames is None:
        return None
    if isinstance(frames, bool) or not isinstance(frames, numbers.Integral) or frames < 0:
        raise WatermarkError(f"frames must be the stream's sample count (an integer >= 0) or None, "
                             f"not {frames!r}")
    return int(frames)


def hypotheses(seconds: float) -> list[tuple[float, float]]:
    """The (time factor, frequency factor) pairs searched for a window of ``seconds``.

    Time factor = received / embedded duration; frequency factor = received / embedded frequency.
    Replay speed v gives (1/v, v), a tempo change (1/v, 1), a pitch shift (1, p). The time step keeps
    the drift across the window under ~0.4 cell, so it is finer for longer windows; the list depends
    on the length only (fixed before looking at the audio: the p-value counts it).
    """
    step = min(0.02, max(0.0015, 0.8 * CELL / max(seconds, 1e-9)))
    k = int(math.ceil(SPEED_RANGE / step))
    speeds = 1.0 + step * np.arange(-k, k + 1)
    hyps = [(1.0, 1.0)]
    hyps += [(1.0 / v, 1.0 + PITCH_STEP * round((v - 1.0) / PITCH_STEP)) for v in speeds if v != 1.0]
    hyps += [(1.0 / v, 1.0) for v in speeds if v != 1.0]
    kp = int(round(PITCH_RANGE / PITCH_STEP))
    hyps += [(1.0, 1.0 + PITCH_STEP * i) for i in range(-kp, kp + 1) if i != 0]
    return hyps


@dataclass
class _Analysis:
    """What decoding reads again from a window: its power spectrogram and band maps."""

    power: np.ndarray
    hop_s: float
    bin_hz: float
    maps: dict[float, np.ndarray]


@dataclass
class _Read:
    z: float
    phase: int
    hyp: tuple[float, float]
    cells: np.ndarray  # (PERIOD_CELLS, N_BANDS) folded, aligned cell values


def _ticks(dmap: np.ndarray, hop_s: float, time: float) -> np.ndarray:
    """Resample the frame map to embedding ticks under time factor ``time``; (ticks, N_BANDS)."""
    dur = dmap.shape[0] * hop_s
    nt = int(dur / (TICK * time))
    pos = (np.arange(nt, dtype=np.float32) * np.float32(TICK * time / hop_s))
    i0 = np.minimum(pos.astype(np.int64), dmap.shape[0] - 2)
    w = (pos - i0).astype(np.float32)[:, None]
    return dmap[i0] * (1.0 - w) + dmap[i0 + 1] * w


def _fold(ticks: np.ndarray) -> np.ndarray:
    """Sum of the tick map over periods, (period ticks, N_BANDS)."""
    nt = ticks.shape[0]
    pad = (-nt) % _PERIOD_TICKS
    if pad:
        ticks = np.concatenate([ticks, np.zeros((pad, N_BANDS), ticks.dtype)])
    return ticks.reshape(-1, _PERIOD_TICKS, N_BANDS).sum(axis=0)


def _pilot_spectrum(pattern: Pattern) -> np.ndarray:
    ticks = np.repeat(pattern.pilot_chips, CELL_TICKS, axis=0)
    return np.conj(np.fft.rfft(ticks, axis=0))


def _phase_search(folded: np.ndarray, pilot_conj: np.ndarray, pattern: Pattern,
                  hyp: tuple[float, float]) -> _Read:
    """Best period phase by one circular cross-correlation, then the self-normalised pilot z there."""
    corr = np.fft.irfft((np.fft.rfft(folded, axis=0) * pilot_conj).sum(axis=1), _PERIOD_TICKS)
    best = None
    pilot = pattern.layout.pilot.reshape(PERIOD_CELLS, N_BANDS)
    for phase in np.argsort(corr)[::-1][:TOP_PHASES]:
        cells = np.roll(folded, -int(phase), axis=0).reshape(PERIOD_CELLS, CELL_TICKS, N_BANDS).sum(axis=1)
        a = cells[pilot]
        v = float((a * a).sum())
        z = float((a * pattern.pilot_chips[pilot]).sum()) / math.sqrt(v) if v > 0 else 0.0
        if best is None or z > best.z:
            best = _Read(z, int(phase), hyp, cells)
    return best


def _band_weights(cells: np.ndarray, pattern: Pattern) -> np.ndarray:
    """Per-band despreading weight ``a_b / E[v^2]_b`` (LMMSE gain), from the pilot cells of each band.

    A codec or a low-pass that removes some bands leaves their cells mostly host noise: the weight
    follows what survived. It uses the pilot signs and squared values only, so the data signs stay
    independent fair coins under the null (the CRC still passes by chance with probability 2**-16).
    """
    pilot = pattern.layout.pilot.reshape(PERIOD_CELLS, N_BANDS)
    amp = np.where(pilot, cells * pattern.pilot_chips, 0.0).sum(axis=0) / np.maximum(pilot.sum(axis=0), 1)
    power = (cells * cells).mean(axis=0)
    w = np.maximum(amp, 0.0) / np.maximum(power, 1e-30)
    return np.broadcast_to(w / max(float(w.max()), 1e-30), cells.shape)


def _reliability_cells(read: _Read, pattern: Pattern, an: _Analysis) -> np.ndarray:
    """Folded cells of ``read`` with every (tick, band) value weighted by its reliability class.

    Added noise or a codec leaves some cells mostly noise (white noise fills speech's pauses and its
    weak upper bins, where the depth rule put much of the mark), and the fold gives them full weight.
    Each cell is classed by its received energy over its band's noise-floor estimate (key-free); each
    class's weight is the LMMSE gain ``a / E[v^2]`` measured on its pilot cells, so it follows what
    the attack left. Pilot signs only, like :func:`_band_weights`: the data signs stay fair coins under
    the null. Measured on the tuning speech at 20 dB white noise (16 keys): coded-bit SNR 0.62 (plain)
    / 0.53 (band-weighted) -> 0.66.
    """
    time, freq = read.hyp
    ticks = _ticks(an.maps[freq], an.hop_s, time)
    level = np.log(np.maximum(_ticks(band_energy(an.power, an.bin_hz, freq), an.hop_s, time), 1e-30))
    level -= np.percentile(level, RELIABILITY_PERCENTILE, axis=0)
    edges = np.quantile(level, np.linspace(0.0, 1.0, RELIABILITY_CLASSES + 1)[1:-1])
    cls = np.searchsorted(edges, level).ravel()
    cell = ((np.arange(ticks.shape[0]) - read.phase) % _PERIOD_TICKS) // CELL_TICKS
    chips = pattern.pilot_chips[cell]
    amp = np.bincount(cls, (ticks * chips).ravel(), RELIABILITY_CLASSES)
    power = np.bincount(cls, (ticks * ticks * np.abs(chips)).ravel(), RELIABILITY_CLASSES)
    w = (np.maximum(amp, 0.0) / np.maximum(power, 1e-30)).astype(np.float32)
    folded = _fold(ticks * w[cls].reshape(ticks.shape))
    return np.roll(folded, -read.phase, axis=0).reshape(PERIOD_CELLS, CELL_TICKS, N_BANDS).sum(axis=1)


def _decode(read: _Read, pattern: Pattern, an: _Analysis, listed: bool) -> tuple[bytes, bool, bool]:
    """Band-weighted, plain and cell-reliability-weighted despreading (:data:`DECODINGS`), each decoded
    by maximum likelihood until a CRC passes; if none does and ``listed``, each by the list Viterbi
    (:data:`LIST_SIZE` paths). Returns (payload, crc ok, whether the list found it). The p-value
    counts every path either stage may check, so the order only saves time: the reliability weights
    (a second fold) are computed only when the first two fail."""
    softs = [pattern.layout.soft_bits((read.cells * _band_weights(read.cells, pattern)).reshape(-1)),
             pattern.layout.soft_bits(read.cells.reshape(-1))]
    for i in range(DECODINGS):
        if i == len(softs):
            softs.append(pattern.layout.soft_bits(_reliability_cells(read, pattern, an).reshape(-1)))
        payload, ok = split_info(viterbi_decode(softs[i]))
        if ok:
            return payload, True, False
    for soft in softs[::-1] if listed else ():  # the reliability-weighted soft values first
        for bits in list_viterbi(soft, LIST_SIZE)[1:]:  # path 0 is the ML path, already checked
            payload, ok = split_info(bits)
            if ok:
                return payload, True, True
    return payload, False, False


def _window_reads(mono: np.ndarray, fs: int, pattern: Pattern) -> tuple[list[_Read], _Analysis]:
    """Phase search for every hypothesis of a window of ``mono``."""
    power, hop_s, bin_hz = spectrogram(mono, fs, 1.0 + PITCH_RANGE + SPEED_RANGE)
    pilot_conj = _pilot_spectrum(pattern)
    an = _Analysis(power, hop_s, bin_hz, {})
    reads = []
    for hyp in hypotheses(mono.shape[0] / fs):
        time, freq = hyp
        if freq not in an.maps:
            an.maps[freq] = band_map(power, bin_hz, freq, hop_s)
        folded = _fold(_ticks(an.maps[freq], hop_s, time))
        reads.append(_phase_search(folded, pilot_conj, pattern, hyp))
    return reads, an


def detect_audio(samples: np.ndarray, sample_rate: int, *, key: bytes,
                 threshold: float = DEFAULT_THRESHOLD, max_windows: int | None = None) -> WatermarkResult:
    """Look for the audio watermark of ``key``; return found, payload and a calibrated p-value.

    Parameters
    ----------
    samples : ndarray, shape (n,) or (n, channels)
        float or integer PCM, any length (under :data:`MIN_DETECT_SECONDS` gives found=False with
        ``reason`` "too short"). NaN/inf (or magnitudes over 1e12) in float input give found=False with a
        reason.
    sample_rate : int
        8000-192000 Hz.
    key : bytes
        The embedding key.
    threshold : float
        ``found`` requires a CRC-valid payload with ``p_value <= threshold`` (default 1e-6).
    max_windows : int, optional
        Read at most this many consecutive :data:`WINDOW_SECONDS` windows (default: all).

    Returns
    -------
    WatermarkResult
        ``method`` is ``"audio"``; ``z`` the pilot's self-normalised correlation, ``speed`` the replay /
        tempo factor (received speed / embedded), ``pitch`` the frequency factor, ``offset_seconds`` the
        window start plus the period phase, ``zero_bit_p_value`` the presence p-value (pilot only, no
        CRC), ``blocks_read`` the windows read, ``trials`` the hypotheses the p-value counts.

    Raises
    ------
    WatermarkError
        Bad key, sample rate, shape or dtype, a ``threshold`` outside (0, 1] or a ``max_windows`` that is
        not an integer >= 1 (not for silence, short or non-finite audio).
    """
    check_key(key)
    fs = check_rate(sample_rate)
    threshold = check_threshold(threshold)
    whole = isinstance(max_windows, numbers.Integral) and not isinstance(max_windows, bool)
    if max_windows is not None and (not whole or max_windows < 1):
        # 0 and -1 used to read one window anyway, "a" raised ValueError from int()
        raise WatermarkError(f"max_windows must be an integer >= 1 or None, not {max_windows!r}")
    try:
        x, _ = as_float_pcm(samples, allow_empty=True)  # no samples: "too short", as promised for any length
    except UnreadableSamples as err:  # NaN / inf / absurd magnitudes: not decided, as for silence
        return WatermarkResult(False, None, 1.0, None, threshold=threshold, reason=str(err))
    # channel mean as a matrix-vector product (numpy's mean over a short last axis is ~10x slower)
    mono = x @ np.full(x.shape[1], 1.0 / x.shape[1], np.float32) if x.shape[1] > 1 else x[:, 0]
    if mono.shape[0] < MIN_DETECT_SECONDS * fs:
        return WatermarkResult(False, None, 1.0, None, threshold=threshold,
                               reason=f"too short to carry a watermark ({seconds_down(mono.shape[0], fs)} s)")
    pattern = make_pattern(key, None)
    count = max(1, math.ceil(mono.shape[0] / (WINDOW_SECONDS * fs)))
    win = -(-mono.shape[0] // count)
    starts = list(range(0, mono.shape[0], win))
    if max_windows is not None:
        starts = starts[: max(1, int(max_windows))]
    # every phase of every hypothesis of every window that may be read, fixed before reading any
    trials = sum(len(hypotheses(min(win, mono.shape[0] - s0) / fs)) for s0 in starts) * _PERIOD_TICKS
    nominal = len(starts) * _PERIOD_TICKS
    best: WatermarkResult | None = None
    for i, s0 in enumerate(starts):
        seg = mono[s0: s0 + win]
        res = _read_window(seg, fs, pattern, trials, nominal, threshold)
        res.offset_seconds += s0 / fs
        res.blocks_read = i + 1
        if best is None or res.found or res.zero_bit_p_value < best.zero_bit_p_value:
            best = res
        if res.found:
            break
    best.blocks_read = i + 1  # windows actually read (the loop stops at the first that decodes)
    return best


class AudioDetector:
    """Streaming detector for long audio: memory is one analysis window, reading stops once decided.

    Feed float or integer PCM blocks (n,) or (n, channels) of any length with :meth:`push`; each time a
    window of audio has arrived that window is read and dropped. :meth:`push` returns the result as soon
    as a window decodes (stop feeding then); :meth:`result` reads what is left (if at least
    ``MIN_DETECT_SECONDS``) and returns the best result so far.

    With ``frames`` (the stream's length, when the file states it) the windows and the p-value are those
    of :func:`detect_audio` over the whole signal, so both give the same result; audio beyond ``frames``
    is not read. Without it the length is not known in advance: the windows are
    :data:`WINDOW_SECONDS` long and the p-value spends the false-positive budget over them: window k (1,
    2, ...) is tested with ``trials = M_k * k * (k + 1)``, ``M_k`` its own hypotheses x phases; since
    ``sum 1 / (k (k + 1)) = 1`` the p-value stays valid for a stream of any length (a second window
    costs a factor 6 in p, ~0.4 in z).

    Parameters
    ----------
    sample_rate : int
        8000-192000 Hz.
    key : bytes
        The embedding key.
    threshold : float
        As :func:`detect_audio`'s.
    frames : int, optional
        Samples per channel the stream will deliver, when known.

    Raises
    ------
    WatermarkError
        Bad sample rate, key, ``threshold`` (outside (0, 1]) or ``frames`` (not an integer >= 0); from
        :meth:`push`, a bad block (shape, dtype, NaN / inf) or a push after :meth:`result` (which reads
        the rest of the stream as its last window) while nothing was found.
    """

    def __init__(self, sample_rate: int, *, key: bytes, threshold: float = DEFAULT_THRESHOLD,
                 frames: int | None = None) -> None:
        self.fs = check_rate(sample_rate)
        self.threshold = check_threshold(threshold)
        frames = _check_frames(frames)
        self.pattern = make_pattern(check_key(key), None)
        self.window = int(WINDOW_SECONDS * self.fs)
        self._parts: list[np.ndarray] = []
        self._held = 0
        self._k = 0  # windows read
        self._start = 0.0  # seconds consumed before the buffered audio
        self._left: int | None = None  # frames still to take in (frames given)
        self._plan: tuple[int, int] | None = None  # (trials, nominal) of detect_audio (frames given)
        if frames is not None and frames >= MIN_DETECT_SECONDS * self.fs:
            count = max(1, math.ceil(frames / (WINDOW_SECONDS * self.fs)))
            self.window = -(-int(frames) // count)
            trials = sum(len(hypotheses(min(self.window, frames - s0) / self.fs))
                         for s0 in range(0, frames, self.window)) * _PERIOD_TICKS
            self._plan, self._left = (trials, count * _PERIOD_TICKS), int(frames)
        self.best: WatermarkResult | None = None
        self._ended = False  # result() was called: it read the rest as the last window

    def push(self, block: np.ndarray) -> WatermarkResult | None:
        """Add a block (an empty one is allowed); returns the result once a window has decoded, else None."""
        if self.best is not None and self.best.found:
            return self.best
        if self._ended:
            # the window result() read short would be followed by more windows than the p-value counts
            # (with ``frames`` its plan holds the windows of the stated length only)
            raise WatermarkError("AudioDetector.push after result(): result() ends the stream; "
                                 "start a new AudioDetector")
        # NaN/inf raise WatermarkError here: a stream cannot skip them silently; an empty block (a decoder
        # may deliver one) used to be refused as a bad shape
        x, _ = as_float_pcm(block, allow_empty=True)
        if self._left is not None:
            x, self._left = x[: self._left], max(0, self._left - x.shape[0])
        mono = x @ np.full(x.shape[1], 1.0 / x.shape[1], np.float32) if x.shape[1] > 1 else x[:, 0]
        self._parts.append(np.array(mono, dtype=np.float32))
        self._held += mono.shape[0]
        while self._held >= self.window:
            buf = np.concatenate(self._parts)
            self._parts, self._held = [buf[self.window:]], buf.shape[0] - self.window
            self._read(buf[: self.window])
            if self.best.found:
                return self.best
        return None

    def result(self) -> WatermarkResult:
        """Read the remaining audio (if long enough) and return the best result of all windows; ends the
        stream (call it again for the same result; :meth:`push` after it raises unless found)."""
        self._ended = True
        if (self.best is None or not self.best.found) and self._held >= MIN_DETECT_SECONDS * self.fs:
            self._read(np.concatenate(self._parts))
            self._parts, self._held = [], 0
        if self.best is None:
            return WatermarkResult(False, None, 1.0, None, threshold=self.threshold,
                                   reason="too short to carry a watermark")
        return self.best

    def _read(self, seg: np.ndarray) -> None:
        self._k += 1
        if self._plan is not None:
            trials, nominal = self._plan
        else:
            nominal = _PERIOD_TICKS * self._k * (self._k + 1)
            trials = len(hypotheses(seg.shape[0] / self.fs)) * nominal
        res = _read_window(seg, self.fs, self.pattern, trials, nominal, self.threshold)
        res.offset_seconds += self._start
        res.blocks_read = self._k
        self._start += seg.shape[0] / self.fs
        if self.best is None or res.found or res.zero_bit_p_value < self.best.zero_bit_p_value:
            self.best = res
        self.best.blocks_read = self._k


def _read_p(r: _Read, trials: int, nominal: int) -> float:
    """Zero-bit p-value of one read: weighted Bonferroni over two tests fixed before looking, the
    nominal hypothesis (speed and pitch 1: ``nominal`` phases x windows) and the whole search
    (``trials``), with weight :data:`NOMINAL_WEIGHT` on the first; each is a union bound of
    :func:`null_tail`, so ``P(p <= a) <= w a + (1 - w) a = a`` under the null."""
    tail = null_tail(r.z)
    p = trials * tail / (1.0 - NOMINAL_WEIGHT)
    if r.hyp == (1.0, 1.0):
        p = min(p, nominal * tail / NOMINAL_WEIGHT)
    return min(1.0, p)


def _read_window(seg: np.ndarray, fs: int, pattern: Pattern, trials: int, nominal: int,
                 threshold: float) -> WatermarkResult:
    """Search and decode one window; ``trials`` and ``nominal`` are the multiplicities of the whole
    search and of the nominal hypothesis that the p-value uses (>= this window's, see :func:`_read_p`)."""
    if not seg.any():
        # Digital silence carries no mark (the mark is relative to the sound), and the search would give
        # it z 0 and p 1 after the full STFT and every hypothesis: an hour of silence in a 20 MB FLAC held
        # a server worker for minutes. Skipping it depends on the samples only, never on the key, and
        # ``trials`` still counts the window, so the p-values of the other windows stay valid.
        return WatermarkResult(False, None, 1.0, None, z=0.0, trials=trials, threshold=threshold,
                               zero_bit_p_value=1.0)
    reads, an = _window_reads(seg, fs, pattern)
    ps = {id(r): _read_p(r, trials, nominal) for r in reads}
    reads.sort(key=lambda r: (ps[id(r)], -r.z))
    top = reads[0]
    p0 = ps[id(top)]
    # two tests, each a union bound over its CRC checks: A = the DECODINGS maximum-likelihood paths,
    # B = their DECODINGS x LIST_SIZE list paths. Given the audio and the pilot each check passes with
    # probability 2**-16 under the null, so p = 2 x min(p_A, p_B) (Bonferroni over A and B) is valid;
    # a file that A decodes pays a factor 2 for the list, not LIST_SIZE.
    crc = 2.0 * DECODINGS * 2.0 ** -CRC_BITS
    for i, r in enumerate(reads[:DECODE_TOP]):
        pr = ps[id(r)]
        if pr * crc > threshold:
            break  # no CRC could make this (or any weaker) read significant
        payload, ok, listed = _decode(r, pattern, an, i < LIST_READS and pr * crc * LIST_SIZE <= threshold)
        if ok:
            p = min(1.0, pr * crc * (LIST_SIZE if listed else 1))
            return _result(r, payload if p <= threshold else None, p, p0, trials, threshold)
    return _result(top, None, p0, p0, trials, threshold)


def _result(r: _Read, payload: bytes | None, p: float, p0: float, trials: int,
            threshold: float) -> WatermarkResult:
    time, freq = r.hyp
    return WatermarkResult(
        found=payload is not None, payload=payload, p_value=p, method="audio" if payload else None,
        z=r.z, trials=trials, threshold=threshold,
        offset_seconds=float((r.phase * TICK * time) % (PERIOD_CELLS * CELL)),
        speed=float(1.0 / time), pitch=float(freq), zero_bit_p_value=float(p0),
    )
