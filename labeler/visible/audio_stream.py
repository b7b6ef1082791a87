"""The audio explicit label (rhythm cue, voice prompt) added to a WAV / FLAC programme read in blocks.

The streaming form of :func:`labeler.visible.audio.audio_cue_edit` and
:func:`labeler.visible.voice_prompt.audio_label_edit` for
:func:`labeler.media.audio_rewrite.rewrite_audio_file`: the same samples, with memory that does not
grow with the programme (an hour of 44.1 kHz stereo is 635 MB of float32 PCM).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from labeler.errors import LabelerError
from labeler.media.audio_stream import AudioSource, AudioStreamEdit
from labeler.visible.audio import (
    _HEADROOM_RAMP_S,
    DEFAULT_FREQ_HZ,
    LoudnessMeter,
    MeasuredProgramme,
    _as_2d,
    _check_places,
    _duck_gain,
    _headroom_duck,
    _matched_level,
    check_middle_fits,
    check_sample_rate,
    morse_ai_cue,
    start_delay,
)

__all__ = ["audio_label_stream"]

# The default gap_s of audio_cue_edit and audio_label_edit (s), which the stage uses.
_GAP_S = 0.3


def audio_label_stream(source: AudioSource, *, kind: str = "rhythm", where: Iterable[str] = ("start",),
                       language: str = "zh") -> AudioStreamEdit:
    """The audio explicit label on a programme read in blocks: the stage's label, streamed.

    ``kind="rhythm"`` is :func:`labeler.visible.audio.audio_cue_edit`, ``"voice"`` and ``"both"`` are
    :func:`labeler.visible.voice_prompt.audio_label_edit`, each with its default gap, level and duck,
    and gives the same samples. A first pass measures the programme's loudness
    (:class:`labeler.visible.audio.LoudnessMeter`) and length; the second mixes the middle label in at
    its sample offset, the start and end labels go around it. Memory is a few blocks plus the label,
    whatever the programme's length.

    Parameters
    ----------
    source : labeler.media.audio_stream.AudioSource
        The programme.
    kind : {"rhythm", "voice", "both"}
        The label.
    where : iterable of str
        Any of ``"start"``, ``"middle"``, ``"end"``.
    language : {"zh", "en"}
        Language of the voice prompt.

    Returns
    -------
    AudioStreamEdit
        The labeled blocks (read lazily, in a second pass) and the samples put before the programme.

    Raises
    ------
    LabelerError
        As the whole-array functions: NaN/inf samples, a bad rate, ``where``, ``kind`` or ``language``,
        a ``"middle"`` label longer than the programme.
    """
    rate, channels = source.sample_rate, source.channels
    places = _check_places(where)
    meter = LoudnessMeter(rate, channels)
    for block in source.blocks():
        meter.push(_as_2d(block))  # _as_2d refuses NaN / inf as the whole-array label does
    programme = MeasuredProgramme(meter.frames, channels, meter.result())
    end_block = None
    if kind == "rhythm":
        check_sample_rate(rate)
        block = morse_ai_cue(rate, level_dbfs=_matched_level(programme, rate, DEFAULT_FREQ_HZ))  # type: ignore[arg-type]
        duck, ramp, what = 1.0, round(_HEADROOM_RAMP_S * rate), "rhythm cue"
    else:
        from labeler.visible import voice_prompt as vp

        vp._check_rate(rate)
        if kind not in vp.AUDIO_LABEL_KINDS or language not in vp.VOICE_TEXTS:
            raise LabelerError(f"audio label kind / language must be one of {vp.AUDIO_LABEL_KINDS} / "
                               f"{vp.LANGUAGES}, got {kind!r} / {language!r}")
        block, end_block = vp._prompt_blocks(programme, rate, kind, language, _GAP_S, "match")  # type: ignore[arg-type]
        duck, ramp = 10 ** (-vp.DUCK_DB / 20), round(vp._DUCK_RAMP_S * rate)
        what = "voice prompt" if kind == "voice" else "rhythm cue and voice prompt"
    check_middle_fits(programme.shape[0], len(block), places, rate, what)
    gap = round(_GAP_S * rate)
    blocks = _placed_blocks(source, programme.shape[0], block, places, gap, duck, ramp, end_block)
    return AudioStreamEdit(blocks, start_delay(places, len(block), gap))


def _placed_blocks(source: AudioSource, frames: int, block: np.ndarray, places: tuple[str, ...], gap: int,
                   duck: float, ramp: int, end_block: np.ndarray | None) -> Iterator[np.ndarray]:
    """:func:`_place` on a programme of ``frames`` samples read in blocks: the same samples, in blocks."""
    channels = source.channels
    piece = np.repeat(block.astype(np.float32, copy=False)[:, None], channels, axis=1)
    last = piece if end_block is None else np.repeat(end_block.astype(np.float32)[:, None], channels, axis=1)
    silence = np.zeros((gap, channels), np.float32)
    start = stop = lo = hi = 0
    gain = np.ones(0, np.float32)
    if "middle" in places:
        start = max(0, (frames - len(piece)) // 2)
        stop = min(frames, start + len(piece))
        under = list(source.blocks(start, stop))  # the label's length: seconds, not the programme
        duck = _headroom_duck(np.concatenate(under) if under else piece[:0], block, duck)
        if duck != 1.0:
            lo, hi, gain = _duck_gain(frames, start, stop, duck, ramp)
    if "start" in places:
        yield from (piece, silence)
    at = 0
    for x in source.blocks():
        end = at + len(x)
        a, b = max(lo, at), min(hi, end)
        if a < b:
            x[a - at:b - at] *= gain[a - lo:b - lo, None]
        a, b = max(start, at), min(stop, end)
        if a < b:
            x[a - at:b - at] = np.clip(x[a - at:b - at] + piece[a - start:b - start], -1.0, 1.0)
        at = end
        yield x
    if "end" in places:
        yield from (silence, last)
