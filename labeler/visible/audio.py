"""Audio rhythm cue (GB 45438-2025 section 5.3): Morse "AI" (·− ··) as tones at the start, end or middle.

::

    >>> from labeler.visible.audio import add_audio_cue, morse_ai_cue
    >>> labeled = add_audio_cue(samples, 44100)
    >>> labeled = add_audio_cue(samples, 44100, where=("start", "end"), level=-20.0)

The standard fixes the rhythm, "short-long-short-short", and nothing else. The tone frequency,
unit length and level are ours (see ``docs/visible.md``, "Audio rhythm cue"):

* :data:`DEFAULT_FREQ_HZ` = 880 Hz (A5): in the ear's most sensitive octave band, above most speech
  fundamentals, below the MP3/AAC low-pass at any usual bit rate, and a musical pitch rather than a
  test-tone "beep" at 1 kHz;
* :data:`DEFAULT_UNIT_S` = 100 ms per Morse unit (a dot; a dash is 3 units, gaps 1 unit inside a
  letter, 3 units between letters), so the whole cue lasts 11 units = 1.1 s: clearly rhythmic, and
  about the speed of radio Morse at 12 words per minute;
* :data:`DEFAULT_LEVEL_DBFS` = -18 dBFS RMS while a tone sounds (peak -15 dBFS), the broadcast
  alignment level; ``level="match"`` in :func:`add_audio_cue` instead follows the programme's
  loudness (see there);
* 5 ms raised-cosine ramps on every tone edge, so no clicks and no splatter outside the tone's band.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import numpy as np

from labeler.errors import InvalidArgument, LabelerError
from labeler.media.audio_rewrite import AudioEdit, rewrite_audio_file  # noqa: F401 - re-exported

__all__ = [
    "CUE_UNITS",
    "DEFAULT_FREQ_HZ",
    "DEFAULT_LEVEL_DBFS",
    "DEFAULT_UNIT_S",
    "MATCH_OFFSET_DB",
    "MATCH_RANGE_DBFS",
    "MORSE_AI",
    "AudioEdit",
    "add_audio_cue",
    "add_audio_cue_file",
    "audio_cue_edit",
    "check_middle_fits",
    "check_sample_rate",
    "cue_length",
    "loudness",
    "LoudnessMeter",
    "MeasuredProgramme",
    "morse_ai_cue",
    "rewrite_audio_file",
]

#: Tone frequency (Hz).
DEFAULT_FREQ_HZ = 880.0
#: Length of one Morse unit (s).
DEFAULT_UNIT_S = 0.1
#: RMS level of a sounding tone (dBFS, plain RMS re 1.0: a -18 dBFS tone peaks at -15 dBFS).
DEFAULT_LEVEL_DBFS = -18.0
#: Raised-cosine ramp on each tone edge (ms).
DEFAULT_RAMP_MS = 5.0
#: Morse "AI" as (on?, length in units): dot, gap, dash, letter gap, dot, gap, dot.
MORSE_AI: tuple[tuple[int, int], ...] = ((1, 1), (0, 1), (1, 3), (0, 3), (1, 1), (0, 1), (1, 1))
#: Length of the cue in units.
CUE_UNITS = sum(n for _, n in MORSE_AI)
#: ``level="match"``: the cue's loudness while sounding = the programme's loudness + this (dB).
MATCH_OFFSET_DB = -3.0
#: ``level="match"`` keeps the cue's RMS level inside this range (dBFS): audible over quiet
#: programmes, never louder than a loud one needs.
MATCH_RANGE_DBFS = (-30.0, -12.0)
_WHERE = ("start", "end", "middle")



# ITU-R BS.1770-4 K-weighting, the two biquads as specified at 48 kHz (pre-filter shelf, RLB high-pass).
_K_SHELF = (
    (1.53512485958697, -2.69169618940638, 1.19839281085285),
    (1.0, -1.69065929318241, 0.73248077421585),
)
_K_HIGHPASS = ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621))


def cue_length(sample_rate: int, unit_s: float = DEFAULT_UNIT_S) -> int:
    """Samples in the cue made by :func:`morse_ai_cue` at this rate and unit length."""
    return CUE_UNITS * _unit_samples(sample_rate, unit_s)


def _unit_samples(sample_rate: int, unit_s: float) -> int:
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise LabelerError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if not (0.01 <= unit_s <= 1.0):
        raise LabelerError(f"unit_s must be between 0.01 and 1 s, got {unit_s!r}")
    return max(1, round(unit_s * sample_rate))


def morse_ai_cue(
    sample_rate: int,
    *,
    freq_hz: float = DEFAULT_FREQ_HZ,
    unit_s: float = DEFAULT_UNIT_S,
    level_dbfs: float = DEFAULT_LEVEL_DBFS,
    ramp_ms: float = DEFAULT_RAMP_MS,
) -> np.ndarray:
    """Render Morse "AI" (·− ··) as tone bursts.

    Parameters
    ----------
    sample_rate : int
        Hz.
    freq_hz : float
        Tone frequency; must be below the Nyquist frequency.
    unit_s : float
        One Morse unit in seconds (dot = 1 unit, dash = 3, gap 1 inside a letter, 3 between letters).
        Every unit is exactly ``round(unit_s * sample_rate)`` samples, so onsets fall on whole samples.
    level_dbfs : float
        RMS of a sounding tone, dB re full scale 1.0 (the peak is 3 dB higher); at most -3.
    ramp_ms : float
        Raised-cosine fade at each edge of each tone, inside the tone (the tone starts at its nominal
        onset and reaches full level ``ramp_ms`` later). At most half a unit.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(cue_length(sample_rate, unit_s),)``; silence in the gaps.

    Raises
    ------
    LabelerError
        Out-of-range parameters.
    """
    unit = _unit_samples(sample_rate, unit_s)
    if not (20.0 <= freq_hz < sample_rate / 2):
        raise LabelerError(f"freq_hz must be between 20 Hz and the Nyquist frequency, got {freq_hz!r}")
    if not (-120.0 <= level_dbfs <= -3.0):
        raise LabelerError(f"level_dbfs must be between -120 and -3 dBFS, got {level_dbfs!r}")
    ramp = round(ramp_ms * 1e-3 * sample_rate)
    if ramp < 0 or ramp > unit // 2:
        raise LabelerError(f"ramp_ms must be between 0 and half a unit ({500 * unit_s:g} ms), got {ramp_ms}")
    on = np.array([v for v, _ in MORSE_AI], np.float32)
    lengths = np.array([n for _, n in MORSE_AI]) * unit
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # Per sample: is a tone on, and how far is it from its segment's nearer edge (vectorized via repeat).
    envelope = np.repeat(on, lengths)
    idx = np.arange(len(envelope))
    seg_start = np.repeat(starts, lengths)
    seg_end = seg_start + np.repeat(lengths, lengths)
    edge = np.minimum(idx - seg_start, seg_end - 1 - idx) + 0.5
    if ramp > 0:
        envelope *= (0.5 - 0.5 * np.cos(np.pi * np.minimum(edge / ramp, 1.0))).astype(np.float32)
    amplitude = math.sqrt(2.0) * 10 ** (level_dbfs / 20)
    # Phase runs continuously across the cue (not reset per tone): same spectrum, simpler.
    tone = np.sin(2 * np.pi * freq_hz / sample_rate * idx)
    return (amplitude * tone * envelope).astype(np.float32)


# --------------------------------------------------------------------------- loudness


def _k_weight_power(freqs: np.ndarray) -> np.ndarray:
    """|H_K(f)|^2 of BS.1770 K-weighting at physical frequencies ``freqs`` (Hz).

    The filter is specified as 48 kHz biquads; evaluating their response at ``f / 48000`` gives the
    intended curve at any sample rate up to 48 kHz (above 24 kHz the 24 kHz value is used). Applied to
    block spectra (Parseval) this replaces time-domain filtering, which would need SciPy.
    """
    w = 2 * np.pi * np.minimum(freqs, 24000.0) / 48000.0
    z = np.exp(-1j * w)
    power = np.ones_like(w)
    for b, a in (_K_SHELF, _K_HIGHPASS):
        num = b[0] + b[1] * z + b[2] * z * z
        den = a[0] + a[1] * z + a[2] * z * z
        power = power * np.abs(num / den) ** 2
    return power


# Ramps (s) of the programme's lowering under a middle cue that needs headroom (as the voice prompt's).
_HEADROOM_RAMP_S = 0.05
# Samples of block spectra computed at once by loudness() (8 MB of float64, 25 MB of work space).
_LOUDNESS_CHUNK_SAMPLES = 1 << 20


def loudness(samples: np.ndarray | MeasuredProgramme, sample_rate: int) -> float:
    """Gated programme loudness after ITU-R BS.1770-4, in LUFS (``-inf`` for silence).

    400 ms blocks with 75 % overlap, K-weighted in the frequency domain (each Hann-free block's power
    spectrum times |H_K|^2, Parseval), channel powers summed with weight 1 (surround weights of
    1.41 are not applied: we treat every channel as front), absolute gate -70 LUFS, relative gate
    -10 LU. Differs from a time-domain implementation by a few tenths of a dB on ordinary material
    (block edges are treated as periodic); that is well inside what the cue level needs.
    :class:`LoudnessMeter` measures the same, block by block.

    Parameters
    ----------
    samples : numpy.ndarray or MeasuredProgramme
        ``(frames,)`` or ``(frames, channels)`` float; a :class:`MeasuredProgramme` gives its loudness.
    sample_rate : int
        Hz.
    """
    if isinstance(samples, MeasuredProgramme):
        return samples.lufs
    x = _as_2d(samples)
    meter = LoudnessMeter(sample_rate, x.shape[1])
    meter.push(x)
    return meter.result()


class LoudnessMeter:
    """:func:`loudness` measured block by block: memory is ~1 M samples per channel, whatever the length.

    ``push`` float32 ``(n, channels)`` blocks of any length, then ``result()``. The 400 ms blocks are
    computed in the same groups of about a million samples as a whole-array :func:`loudness`, so the
    two give the very same number (a streaming label then equals the whole-file one bit for bit).

    Parameters
    ----------
    sample_rate : int
        Hz.
    channels : int
        Channel count of the pushed blocks.
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.block = round(0.4 * sample_rate)
        self.step = max(1, self.block // 4)
        # About a million samples' worth of blocks at a time: all at once is (count, block) complex per
        # channel, 4x the programme (75 % overlap) in 16-byte numbers: 10 GB for an hour of 44.1 kHz stereo.
        self.chunk = max(1, _LOUDNESS_CHUNK_SAMPLES // self.block)
        weight = _k_weight_power(np.fft.rfftfreq(self.block, 1.0 / sample_rate))
        # Mean square of each K-weighted block per channel, via Parseval on the one-sided spectrum.
        scale = np.full(len(weight), 2.0)
        scale[0] = 1.0
        if self.block % 2 == 0:
            scale[-1] = 1.0
        self.gains = weight * scale / self.block**2
        self.frames = 0  # samples per channel pushed
        self._buf = np.zeros((0, channels), np.float32)  # from the first 400 ms block not yet measured
        self._powers: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> None:
        """Add ``(n, channels)`` float32 samples (checked finite, as :func:`loudness` checks them)."""
        self.frames += len(samples)
        # a whole programme pushed at once is measured in place, not copied (635 MB an hour of stereo)
        self._buf = np.concatenate([self._buf, samples]) if len(self._buf) else samples
        span = (self.chunk - 1) * self.step + self.block  # samples of one group of blocks
        while len(self._buf) >= span:
            self._measure(self.chunk)

    def result(self) -> float:
        """The gated loudness of everything pushed, LUFS (``-inf`` for silence)."""
        if self.frames < self.block:
            self._buf = np.concatenate([self._buf, np.zeros((self.block - len(self._buf), self._buf.shape[1]),
                                                            np.float32)])
        while len(self._buf) >= self.block:
            self._measure(min(self.chunk, 1 + (len(self._buf) - self.block) // self.step))
        power = np.concatenate(self._powers)
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10 * np.log10(power)
        kept = power[block_lufs > -70.0]
        if not len(kept):
            return float("-inf")
        relative = -0.691 + 10 * np.log10(kept.mean()) - 10.0
        kept = power[block_lufs > max(-70.0, relative)]
        return float(-0.691 + 10 * np.log10(kept.mean()))

    def _measure(self, count: int) -> None:
        """Mean squares of the next ``count`` 400 ms blocks, channels summed; drops their first steps."""
        power = np.zeros(count)
        for ch in range(self._buf.shape[1]):
            frames = np.lib.stride_tricks.sliding_window_view(self._buf[:, ch], self.block)[::self.step]
            spec = np.fft.rfft(frames[:count].astype(np.float64), axis=1)
            power += (spec.real**2 + spec.imag**2) @ self.gains
        self._powers.append(power)
        self._buf = self._buf[count * self.step:]


class MeasuredProgramme:
    """A programme known by its length, channels and loudness only (a streaming pass measured it).

    Stands in for the samples where the label's level rules read nothing else: :func:`loudness` gives
    ``lufs``, and ``shape`` is ``(frames, channels)``.
    """

    def __init__(self, frames: int, channels: int, lufs: float) -> None:
        self.shape = (int(frames), int(channels))
        self.lufs = float(lufs)


def _matched_level(samples: np.ndarray, sample_rate: int, freq_hz: float) -> float:
    """RMS level (dBFS) of a sounding tone whose loudness is the programme's plus MATCH_OFFSET_DB."""
    programme = loudness(samples, sample_rate)
    if not math.isfinite(programme):
        return DEFAULT_LEVEL_DBFS  # silent programme: nothing to match
    channels = samples.shape[1]
    # A steady tone of RMS r on every channel has loudness -0.691 + 10 log10(C * r^2 * |H_K(f)|^2).
    gain_db = 10 * math.log10(channels * float(_k_weight_power(np.array([freq_hz]))[0]))
    level = programme + MATCH_OFFSET_DB + 0.691 - gain_db
    return float(np.clip(level, *MATCH_RANGE_DBFS))


# --------------------------------------------------------------------------- adding the cue


def _as_2d(samples: np.ndarray) -> np.ndarray:
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise LabelerError(f"samples must be a non-empty (frames,) or (frames, channels) array: {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise LabelerError(f"samples must be float, got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise LabelerError("samples contain NaN or infinity")
    return arr.astype(np.float32, copy=False)


def audio_cue_edit(
    samples: np.ndarray,
    sample_rate: int,
    *,
    where: Iterable[str] = ("start",),
    gap_s: float = 0.3,
    level: str | float = "match",
    **cue_opts: float,
) -> AudioEdit:
    """Add the Morse "AI" cue to a programme; say how far the programme moved.

    Parameters
    ----------
    samples : numpy.ndarray
        float, ``(frames,)`` or ``(frames, channels)``, values in [-1, 1].
    sample_rate : int
        Hz.
    where : iterable of str
        Any of ``"start"`` (the cue, then ``gap_s`` of silence, then the programme: the programme is
        delayed by exactly ``cue_length + round(gap_s * rate)`` samples), ``"end"`` (the programme,
        the gap, the cue) and ``"middle"`` (the cue mixed over the programme, centred on its midpoint,
        length unchanged; where programme and cue together would pass full scale, the programme is
        lowered under the cue just enough, with 50 ms ramps, instead of clipping the sum).
    gap_s : float
        Silence between the cue and the programme for ``"start"`` and ``"end"``, seconds.
    level : "match" or float
        ``"match"`` (default): the tone's loudness while sounding is set to the programme's BS.1770
        gated loudness :data:`MATCH_OFFSET_DB` (-3 dB), its RMS level then clipped to
        :data:`MATCH_RANGE_DBFS` (-30 .. -12 dBFS); a silent programme gets -18 dBFS. A float is the
        tone's RMS level in dBFS, used as is.
    **cue_opts
        ``freq_hz``, ``unit_s``, ``ramp_ms`` for :func:`morse_ai_cue`.

    Returns
    -------
    AudioEdit
        ``samples``: float32 with the input's number of dimensions and channels, the cue on every
        channel; ``delay``: ``cue_length + round(gap_s * rate)`` samples with ``"start"``, else 0.

    Raises
    ------
    LabelerError
        Empty input, NaN/inf samples, non-float dtype, unknown ``where``, bad cue options; a sample
        rate that is not a positive integer, or ``"middle"`` on a programme shorter than the cue
        (mixed over it the cue would be cut short and no longer read as "AI") (InvalidArgument).
    """
    one_d = np.ndim(samples) == 1
    x = _as_2d(samples)
    check_sample_rate(sample_rate)
    places = _check_places(where)
    unknown = set(cue_opts) - {"freq_hz", "unit_s", "ramp_ms"}
    if unknown:
        raise LabelerError(f"unknown cue options: {sorted(unknown)}")
    if not (0.0 <= gap_s <= 10.0):
        raise LabelerError(f"gap_s must be between 0 and 10 s, got {gap_s!r}")
    freq = float(cue_opts.get("freq_hz", DEFAULT_FREQ_HZ))
    if level == "match":
        level_db = _matched_level(x, sample_rate, freq)
    elif isinstance(level, (int, float)) and not isinstance(level, bool):
        level_db = float(level)
    else:
        raise LabelerError(f"level must be 'match' or a number of dBFS, got {level!r}")
    cue = morse_ai_cue(sample_rate, level_dbfs=level_db, **cue_opts)
    check_middle_fits(len(x), len(cue), places, sample_rate, "rhythm cue")
    gap = round(gap_s * sample_rate)
    # ramps for the programme's lowering, in the rare case a middle cue needs headroom (_headroom_duck)
    result = _place(x, cue, places, gap, ramp=round(_HEADROOM_RAMP_S * sample_rate))
    return AudioEdit(result[:, 0] if one_d else result, start_delay(places, len(cue), gap))


def add_audio_cue(
    samples: np.ndarray,
    sample_rate: int,
    *,
    where: Iterable[str] = ("start",),
    gap_s: float = 0.3,
    level: str | float = "match",
    **cue_opts: float,
) -> np.ndarray:
    """Add the Morse "AI" cue to a programme: :func:`audio_cue_edit`'s samples.

    Parameters
    ----------
    samples, sample_rate, where, gap_s, level, **cue_opts
        As :func:`audio_cue_edit`.

    Returns
    -------
    numpy.ndarray
        float32 with the input's number of dimensions and channels; the cue is on every channel.
    """
    return audio_cue_edit(samples, sample_rate, where=where, gap_s=gap_s, level=level, **cue_opts).samples


def start_delay(places: tuple[str, ...], block: int, gap: int) -> int:
    """Samples :func:`_place` inserts before the programme: ``block + gap`` for ``"start"``, else 0.

    Parameters
    ----------
    places : tuple of str
        Where the label goes (``"start"``, ``"middle"``, ``"end"``).
    block, gap : int
        Length of the label put at the start and of the silence after it, in samples.
    """
    return block + gap if "start" in places else 0


def check_sample_rate(sample_rate: int) -> None:
    """Refuse a sample rate that is not a positive integer (Hz), as :class:`InvalidArgument`.

    Parameters
    ----------
    sample_rate : int
        Samples per second per channel.
    """
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InvalidArgument(f"sample_rate must be a positive integer, got {sample_rate!r}")


def check_middle_fits(frames: int, block: int, places: tuple[str, ...], sample_rate: int, what: str) -> None:
    """Refuse a ``"middle"`` label longer than the programme it is mixed over.

    ``"middle"`` keeps the programme's length, so the label would be cut at the programme's end and
    reported as placed while no listener (and no detector) hears it whole. Start and end insert the
    label and never cut it, so they are the way to label such a short programme.

    Parameters
    ----------
    frames, block : int
        Length of the programme and of the label, in samples.
    places : tuple of str
        Where the label goes.
    sample_rate : int
        Hz, for the message.
    what : str
        The label's name, for the message (``"rhythm cue"``, ``"voice prompt"``).
    """
    if "middle" in places and frames < block:
        raise InvalidArgument(f"the audio ({frames / sample_rate:.2f} s) is shorter than the {what} "
                              f"({block / sample_rate:.2f} s): a 'middle' {what} would be cut short; "
                              "put it at the start or end")


def _check_places(where: Iterable[str]) -> tuple[str, ...]:
    places = (where,) if isinstance(where, str) else tuple(where)
    if not places or any(p not in _WHERE for p in places):
        raise LabelerError(f"where must name some of {_WHERE}, got {places!r}")
    return places


def _headroom_duck(under: np.ndarray, block: np.ndarray, duck: float) -> float:
    """``duck``, or less where the programme ``under`` a mixed-in ``block`` would push the sum past full
    scale (the sum used to be clipped: 8 % of the samples under a cue flattened at +-1 on a 0 dBFS master)."""
    if not len(under):
        return duck
    # 0.99, not 1: the sum's own peak then stays clear of the integer formats' last code
    room = 0.99 - float(np.abs(block).max())
    loudest = float(np.abs(under).max()) * duck
    return duck if loudest <= room else duck * max(room, 0.0) / loudest


def _duck_gain(frames: int, start: int, stop: int, duck: float, ramp: int) -> tuple[int, int, np.ndarray]:
    """``(lo, hi, gain)``: the programme's float32 gain over samples ``lo:hi`` under a label mixed in at
    ``start:stop``: ``duck`` there, 1 outside, raised-cosine ramps of ``ramp`` samples in between."""
    lo, hi = max(0, start - ramp), min(frames, stop + ramp)
    idx = np.arange(lo, hi)
    dist = np.maximum(np.maximum(start - idx, idx - (stop - 1)), 0) / max(ramp, 1)
    fade = 0.5 + 0.5 * np.cos(np.pi * np.minimum(dist, 1.0))
    return lo, hi, (duck + (1.0 - duck) * (1.0 - fade)).astype(np.float32)


def _place(
    x: np.ndarray,
    block: np.ndarray,
    places: tuple[str, ...],
    gap: int,
    *,
    duck: float = 1.0,
    ramp: int = 0,
    end_block: np.ndarray | None = None,
) -> np.ndarray:
    """Put the mono ``block`` on every channel of ``x`` (2-D float32) at ``places``; ``gap`` in samples.

    ``"middle"`` mixes it over the centre of ``x`` (inserting would cut a word or a note in two), with
    ``x`` scaled by ``duck`` under the block and raised-cosine ramps of ``ramp`` samples either side;
    ``duck`` is lowered further where the sum would pass full scale, so nothing is clipped.
    ``end_block``, when given, goes at the end instead of ``block``.
    """
    channels = x.shape[1]
    piece = np.repeat(block.astype(np.float32, copy=False)[:, None], channels, axis=1)
    last = piece if end_block is None else np.repeat(end_block.astype(np.float32)[:, None], channels, axis=1)
    silence = np.zeros((gap, channels), np.float32)
    # Only a middle block changes the programme's own samples; start and end go around it, and the
    # concatenation below is the one copy (a second one is a programme's worth of memory: 1.3 GB an hour).
    out = x
    if "middle" in places:
        out = x.copy()
        start = max(0, (len(out) - len(piece)) // 2)
        stop = min(len(out), start + len(piece))
        duck = _headroom_duck(out[start:stop], block, duck)
        if duck != 1.0:
            lo, hi, gain = _duck_gain(len(out), start, stop, duck, ramp)
            out[lo:hi] *= gain[:, None]
        out[start:stop] = np.clip(out[start:stop] + piece[: stop - start], -1.0, 1.0)
    pieces = []
    if "start" in places:
        pieces += [piece, silence]
    pieces.append(out)
    if "end" in places:
        pieces += [silence, last]
    return np.concatenate(pieces).astype(np.float32, copy=False)


def add_audio_cue_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    **opts: object,
) -> None:
    """Add the cue to an audio file and write the result (atomically) in the same format.

    Decoding, encoding and tags as :func:`rewrite_audio_file`.

    Parameters
    ----------
    src, dst : path-like
        Input and output files (may be the same path).
    **opts
        Passed to :func:`add_audio_cue` (``where``, ``gap_s``, ``level``, ``freq_hz``...).
    """
    rewrite_audio_file(src, dst, lambda x, rate: audio_cue_edit(x, rate, **opts))  # type: ignore[arg-type]

