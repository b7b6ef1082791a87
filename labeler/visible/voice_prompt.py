"""Audio voice prompt (GB 45438-2025 section 5.3): "本内容由人工智能生成" or "This content is AI-generated".

::

    >>> from labeler.visible.voice_prompt import add_voice_prompt, add_audio_label
    >>> labeled = add_voice_prompt(samples, 44100)
    >>> labeled = add_voice_prompt(samples, 44100, language="en", where=("start", "end"))
    >>> labeled = add_audio_label(samples, 44100, kind="both")   # rhythm cue, then voice

The digest (section 2) asks for "a voice prompt (speech containing the wording) ... at the start, and/or
end or middle", spoken "at normal rate (about 120-160 Chinese characters per minute)". The prompts are
short pre-rendered clips shipped in ``voice/`` (made offline with espeak-ng by ``voice/make_voice.py``;
tool, parameters, measured rates and licence in ``voice/README.md``):

* ``zh``: 本内容由人工智能生成, 10 characters at about 135 characters per minute;
* ``en``: "This content is AI-generated."

Level rule (ours, **[U]** in the standard): ``level="match"`` sets the prompt's BS.1770 gated loudness to
the programme's (:data:`MATCH_OFFSET_LU` = 0), kept inside :data:`MATCH_RANGE_LUFS` and with its sample
peak at most :data:`MAX_PEAK_DBFS`; a silent programme gets :data:`DEFAULT_LEVEL_LUFS` (EBU R 128's
-23 LUFS). In the middle of a programme the prompt is mixed over it with the programme ducked by
:data:`DUCK_DB` under the prompt (more where the sum would still pass full scale: nothing is clipped),
so the prompt stays intelligible and nothing is cut or shifted.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from labeler.errors import LabelerError
from labeler.visible.audio import (
    AudioEdit,
    _as_2d,
    _check_places,
    _matched_level,
    _place,
    audio_cue_edit,
    check_middle_fits,
    loudness,
    morse_ai_cue,
    rewrite_audio_file,
    start_delay,
)

__all__ = [
    "AUDIO_LABEL_KINDS",
    "DEFAULT_LEVEL_LUFS",
    "DUCK_DB",
    "LANGUAGES",
    "MATCH_OFFSET_LU",
    "MATCH_RANGE_LUFS",
    "MAX_PEAK_DBFS",
    "VOICE_RATE",
    "VOICE_TEXTS",
    "add_audio_label",
    "add_audio_label_file",
    "add_voice_prompt",
    "add_voice_prompt_file",
    "audio_label_edit",
    "resample",
    "voice_clip",
    "voice_clip_path",
]

#: What each shipped clip says.
VOICE_TEXTS = {"zh": "本内容由人工智能生成", "en": "This content is AI-generated."}
#: Languages of the shipped clips.
LANGUAGES = tuple(VOICE_TEXTS)
#: Sample rate of the shipped clips (Hz): speech needs nothing above 8 kHz.
VOICE_RATE = 16000
#: Kinds of audio explicit label: the rhythm cue, the voice prompt, or both (cue first).
AUDIO_LABEL_KINDS = ("rhythm", "voice", "both")
#: ``level="match"``: prompt loudness = programme loudness + this (LU).
MATCH_OFFSET_LU = 0.0
#: ``level="match"`` keeps the prompt's loudness inside this range (LUFS).
MATCH_RANGE_LUFS = (-36.0, -14.0)
#: Loudness of the prompt on a silent programme (LUFS; EBU R 128 programme level).
DEFAULT_LEVEL_LUFS = -23.0
#: The prompt's sample peak never exceeds this (dBFS); a louder match is turned down to it.
MAX_PEAK_DBFS = -1.0
#: ``"middle"``: the programme is turned down by this much (dB) under the prompt.
DUCK_DB = 10.0
# Ducking ramps (s): short enough to stay out of the prompt, long enough not to click.
_DUCK_RAMP_S = 0.05
_HERE = Path(__file__).resolve().parent / "voice"


def voice_clip_path(language: str = "zh") -> Path:
    """Path of the shipped FLAC clip for ``language`` (``"zh"`` or ``"en"``)."""
    if language not in VOICE_TEXTS:
        raise LabelerError(f"voice language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return _HERE / f"prompt-{language}.flac"


@functools.lru_cache(maxsize=4)
def _shipped(language: str) -> np.ndarray:
    import soundfile as sf

    path = voice_clip_path(language)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
        raise LabelerError(f"cannot read the shipped voice clip {path.name}: {exc}") from None
    if rate != VOICE_RATE:
        raise LabelerError(f"shipped voice clip {path.name} is {rate} Hz, expected {VOICE_RATE}")
    clip = data[:, 0].copy()
    clip.setflags(write=False)
    return clip


@functools.lru_cache(maxsize=8)
def _clip_at(language: str, sample_rate: int) -> np.ndarray:
    clip = resample(_shipped(language), VOICE_RATE, sample_rate)
    clip.setflags(write=False)
    return clip


def voice_clip(language: str = "zh", sample_rate: int = VOICE_RATE) -> np.ndarray:
    """The shipped prompt for ``language``, resampled to ``sample_rate``, at its shipped level.

    Parameters
    ----------
    language : {"zh", "en"}
        Which prompt.
    sample_rate : int
        Hz, 4000 to 384000.

    Returns
    -------
    numpy.ndarray
        float32 ``(frames,)``, mono, a fresh copy (shipped at about -20 LUFS).
    """
    _check_rate(sample_rate)
    return _clip_at(language, int(sample_rate)).copy()


def _check_rate(sample_rate: int) -> None:
    if int(sample_rate) != sample_rate or not (4000 <= sample_rate <= 384000):
        raise LabelerError(f"sample_rate must be an integer from 4000 to 384000 Hz, got {sample_rate!r}")


# --------------------------------------------------------------------------- resampling


def resample(samples: np.ndarray, rate_in: int, rate_out: int, *, block: int = 1 << 15) -> np.ndarray:
    """Band-limited resampling by FFT, in Hann-windowed blocks with 50 % overlap-add.

    Each block (about ``block`` input samples, a multiple of the rates' reduced ratio so that block
    edges fall on whole samples at both rates) is windowed, its spectrum cut or zero-padded to the
    new length (an ideal low-pass at the lower Nyquist frequency) and transformed back; the periodic
    Hann windows sum to exactly 1, so overlap-adding the blocks gives the resampled signal, with
    bounded memory on long inputs. Errors come only from the windowed blocks' wrap-around, below
    -60 dB on ordinary audio (measured: a 1 kHz sine 44.1 -> 8 kHz is within 2e-5 of the exact one,
    and within 4e-4 after going back to 44.1 kHz, away from the signal's ends).

    Parameters
    ----------
    samples : numpy.ndarray
        float, ``(frames,)`` or ``(frames, channels)``.
    rate_in, rate_out : int
        Hz.
    block : int
        Target block length in input samples (memory vs. number of FFTs).

    Returns
    -------
    numpy.ndarray
        float32, ``round(frames * rate_out / rate_in)`` frames, same channels and dimensions.
    """
    x = np.asarray(samples, dtype=np.float32)
    one_d = x.ndim == 1
    if one_d:
        x = x[:, None]
    if x.ndim != 2:
        raise LabelerError(f"samples must be (frames,) or (frames, channels), got shape {x.shape}")
    for rate in (rate_in, rate_out):
        if int(rate) != rate or rate <= 0:
            raise LabelerError(f"sample rates must be positive integers, got {rate!r}")
    n_out = round(len(x) * rate_out / rate_in)
    if rate_in == rate_out or not len(x):
        out = x.copy()
    else:
        g = math.gcd(int(rate_in), int(rate_out))
        down, up = int(rate_in) // g, int(rate_out) // g
        # Block = 2k reduced periods, so the hop (half a block) is a whole number of samples at both rates.
        k = max(1, round(block / (2 * down)), math.ceil(16 / up))
        b_in, b_out = 2 * k * down, 2 * k * up
        h_in, h_out = b_in // 2, b_out // 2
        frames = -(-(len(x) + h_in) // h_in)  # blocks so that the padded signal is covered
        padded = np.zeros(((frames + 1) * h_in, x.shape[1]), np.float32)
        padded[h_in:h_in + len(x)] = x
        window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(b_in) / b_in)).astype(np.float32)
        keep = min(b_in, b_out) // 2 + 1
        acc = np.zeros(((frames + 1) * h_out, x.shape[1]), np.float32)
        batch = max(1, (1 << 22) // b_in)  # blocks per FFT call: bounded memory
        for ch in range(x.shape[1]):
            view = np.lib.stride_tricks.sliding_window_view(padded[:, ch], b_in)[::h_in][:frames]
            for s in range(0, frames, batch):
                spec = np.fft.rfft(view[s:s + batch] * window, axis=1)[:, :keep]
                if b_out < b_in and b_out % 2 == 0:
                    spec[:, -1] = 0  # the new Nyquist bin cannot hold a complex value
                elif b_out > b_in:
                    spec[:, -1] *= 0.5  # the old Nyquist bin splits between +f and -f
                part = np.fft.irfft(spec, b_out, axis=1).astype(np.float32) * (b_out / b_in)
                rows = len(part)
                # Overlap-add: each block's first half onto hop s, its second half onto hop s + 1.
                acc[s * h_out:(s + rows) * h_out, ch] += part[:, :h_out].reshape(-1)
                acc[(s + 1) * h_out:(s + 1 + rows) * h_out, ch] += part[:, h_out:].reshape(-1)
        out = acc[h_out:h_out + n_out]
    out = np.ascontiguousarray(out[:n_out], dtype=np.float32)
    return out[:, 0] if one_d else out


# --------------------------------------------------------------------------- adding the prompt


def _prompt_gain(programme: np.ndarray, sample_rate: int, clip: np.ndarray, level: str | float) -> float:
    """Linear gain for ``clip`` (on every channel of ``programme``) that meets the level rule."""
    channels = programme.shape[1]
    clip_lufs = loudness(np.repeat(clip[:, None], channels, axis=1), sample_rate)
    if level == "match":
        target = loudness(programme, sample_rate)
        target = DEFAULT_LEVEL_LUFS if not math.isfinite(target) else float(
            np.clip(target + MATCH_OFFSET_LU, *MATCH_RANGE_LUFS)
        )
    elif isinstance(level, (int, float)) and not isinstance(level, bool) and -70.0 <= level <= 0.0:
        target = float(level)
    else:
        raise LabelerError(f"level must be 'match' or a loudness from -70 to 0 LUFS, got {level!r}")
    gain = 10 ** ((target - clip_lufs) / 20)
    peak = float(np.abs(clip).max()) * gain
    limit = 10 ** (MAX_PEAK_DBFS / 20)
    return gain * min(1.0, limit / peak) if peak > 0 else gain


def _prompt_blocks(
    x: np.ndarray, sample_rate: int, kind: str, language: str, gap_s: float, level: str | float
) -> tuple[np.ndarray, np.ndarray]:
    """The mono labels to place at the start (and middle) and at the end, at matched levels.

    The voice prompt, the cue, or both: cue + gap + prompt, mirrored at the end (prompt + gap + cue)
    so that both lie within a detector's "start" / "end" reach of the programme's edge.
    """
    parts: list[np.ndarray] = []
    if kind in ("rhythm", "both"):
        cue_db = _matched_level(x, sample_rate, 880.0) if level == "match" else None
        if cue_db is None:
            # A loudness target for the voice has no meaning as the cue's RMS level: use its default.
            from labeler.visible.audio import DEFAULT_LEVEL_DBFS

            cue_db = DEFAULT_LEVEL_DBFS
        parts.append(morse_ai_cue(sample_rate, level_dbfs=cue_db))
    if kind in ("voice", "both"):
        clip = _clip_at(language, sample_rate)
        if parts:
            parts.append(np.zeros(round(gap_s * sample_rate), np.float32))
        parts.append((clip * _prompt_gain(x, sample_rate, clip, level)).astype(np.float32))
    return np.concatenate(parts), np.concatenate(parts[::-1])


def add_audio_label(
    samples: np.ndarray,
    sample_rate: int,
    *,
    kind: str = "voice",
    language: str = "zh",
    where: Iterable[str] = ("start",),
    gap_s: float = 0.3,
    level: str | float = "match",
    duck_db: float = DUCK_DB,
) -> np.ndarray:
    """Add the audio explicit label of ``kind`` to a programme: :func:`audio_label_edit`'s samples.

    Parameters
    ----------
    samples, sample_rate, kind, language, where, gap_s, level, duck_db
        As :func:`audio_label_edit`.

    Returns
    -------
    numpy.ndarray
        float32 with the input's dimensions and channels; the label is on every channel.
    """
    return audio_label_edit(samples, sample_rate, kind=kind, language=language, where=where, gap_s=gap_s,
                            level=level, duck_db=duck_db).samples


def audio_label_edit(
    samples: np.ndarray,
    sample_rate: int,
    *,
    kind: str = "voice",
    language: str = "zh",
    where: Iterable[str] = ("start",),
    gap_s: float = 0.3,
    level: str | float = "match",
    duck_db: float = DUCK_DB,
) -> AudioEdit:
    """Add the audio explicit label of ``kind`` to a programme; say how far the programme moved.

    Parameters
    ----------
    samples : numpy.ndarray
        float, ``(frames,)`` or ``(frames, channels)``, values in [-1, 1].
    sample_rate : int
        Hz, 4000 to 384000.
    kind : {"voice", "rhythm", "both"}
        The voice prompt, the Morse "AI" rhythm cue (as :func:`labeler.visible.audio.add_audio_cue`
        with its defaults), or both as one block: cue, ``gap_s`` of silence, prompt (at the end
        mirrored: prompt, gap, cue).
    language : {"zh", "en"}
        Language of the voice prompt.
    where : iterable of str
        Any of ``"start"`` (label, ``gap_s`` of silence, programme: the programme is delayed by exactly
        the label's length plus ``round(gap_s * rate)`` samples), ``"end"`` (programme, gap, label)
        and ``"middle"`` (the label mixed over the programme centred on its midpoint, the programme
        ducked by ``duck_db`` under it; length unchanged; the sum clipped to [-1, 1]).
    gap_s : float
        Silence between label and programme (and between cue and prompt), 0 to 10 s.
    level : "match" or float
        ``"match"``: the prompt's loudness follows the programme's (module notes) and the cue its own
        rule; a float is the prompt's loudness in LUFS (-70 to 0; the cue then gets -18 dBFS).
    duck_db : float
        ``"middle"`` only: how far the programme is turned down under the label, 0 to 60 dB.

    Returns
    -------
    AudioEdit
        ``samples``: float32 with the input's dimensions and channels, the label on every channel;
        ``delay``: with ``"start"`` the label's length plus ``round(gap_s * rate)`` samples, else 0.

    Raises
    ------
    LabelerError
        Empty or non-finite input, non-float dtype, unknown ``kind``/``language``/``where``, bad
        ``gap_s``, ``level`` or ``duck_db``; ``"middle"`` on a programme shorter than the label (it
        would be cut short: use start or end).
    """
    one_d = np.ndim(samples) == 1
    x = _as_2d(samples)
    _check_rate(sample_rate)
    if kind not in AUDIO_LABEL_KINDS:
        raise LabelerError(f"audio label kind must be one of {', '.join(AUDIO_LABEL_KINDS)}, got {kind!r}")
    if language not in VOICE_TEXTS:
        raise LabelerError(f"voice language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    places = _check_places(where)
    if not (0.0 <= gap_s <= 10.0):
        raise LabelerError(f"gap_s must be between 0 and 10 s, got {gap_s!r}")
    if not (0.0 <= duck_db <= 60.0):
        raise LabelerError(f"duck_db must be between 0 and 60 dB, got {duck_db!r}")
    block, end_block = _prompt_blocks(x, int(sample_rate), kind, language, gap_s, level)
    check_middle_fits(len(x), len(block), places, int(sample_rate), "voice prompt" if kind == "voice"
                      else "rhythm cue" if kind == "rhythm" else "rhythm cue and voice prompt")
    ramp = round(_DUCK_RAMP_S * sample_rate)
    gap = round(gap_s * sample_rate)
    result = _place(x, block, places, gap, duck=10 ** (-duck_db / 20), ramp=ramp, end_block=end_block)
    return AudioEdit(result[:, 0] if one_d else result, start_delay(places, len(block), gap))


def add_voice_prompt(
    samples: np.ndarray,
    sample_rate: int,
    *,
    language: str = "zh",
    where: Iterable[str] = ("start",),
    gap_s: float = 0.3,
    level: str | float = "match",
    duck_db: float = DUCK_DB,
) -> np.ndarray:
    """Add the spoken prompt to a programme: :func:`add_audio_label` with ``kind="voice"``.

    Parameters
    ----------
    samples : numpy.ndarray
        float, ``(frames,)`` or ``(frames, channels)``, values in [-1, 1].
    sample_rate : int
        Hz, 4000 to 384000. The 16 kHz clip is resampled to it (:func:`resample`).
    language : {"zh", "en"}
        "本内容由人工智能生成" or "This content is AI-generated.".
    where, gap_s, level, duck_db
        As :func:`add_audio_label`. ``level="match"``: prompt loudness = programme loudness
        (BS.1770 gated, -36 .. -14 LUFS, peak <= -1 dBFS); a float is the prompt's loudness in LUFS.

    Returns
    -------
    numpy.ndarray
        float32 with the input's dimensions and channels.
    """
    return add_audio_label(samples, sample_rate, kind="voice", language=language, where=where, gap_s=gap_s,
                           level=level, duck_db=duck_db)


def add_audio_label_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    **opts: object,
) -> None:
    """:func:`add_audio_label` on a file, written atomically in the same format, tags kept.

    Decoding, encoding and tag keeping as :func:`labeler.visible.audio.add_audio_cue_file`.
    ``kind="rhythm"`` gives exactly what ``add_audio_cue_file`` gives (``where``, ``gap_s`` and
    ``level`` passed on, ``language`` ignored).
    """
    if opts.get("kind", "voice") == "rhythm":
        cue_opts = {k: v for k, v in opts.items() if k not in ("kind", "language")}
        rewrite_audio_file(src, dst, lambda x, rate: audio_cue_edit(x, rate, **cue_opts))  # type: ignore[arg-type]
        return
    rewrite_audio_file(src, dst, lambda x, rate: audio_label_edit(x, rate, **opts))  # type: ignore[arg-type]


def add_voice_prompt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    **opts: object,
) -> None:
    """Add the voice prompt to an audio file (:func:`add_voice_prompt`), atomically, tags kept."""
    rewrite_audio_file(src, dst,
                       lambda x, rate: audio_label_edit(x, rate, kind="voice", **opts))  # type: ignore[arg-type]
