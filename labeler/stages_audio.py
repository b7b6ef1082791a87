"""The audio samples stage of :data:`labeler.stages.STAGES`: the cue / voice prompt, then the watermark, on
one decode and one encode, tags kept; long files streamed in blocks (:mod:`labeler.media.audio_stream`).

In a module of its own because it is the largest stage (a whole-file form and a streamed one of each
step); :mod:`labeler.stages` calls :func:`audio_samples` from its table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.errors import CorruptFile, LabelerError
from labeler.stages import _require_complete

if TYPE_CHECKING:
    from labeler.stages import StageCall

__all__ = ["CANCELLED_AUDIO_NOTE", "SILENT_AUDIO_NOTE", "audio_samples", "short_audio_note",
           "unreadable_audio"]


def audio_samples(call: StageCall) -> dict[str, dict[str, Any]]:
    """The audio cue / voice prompt, then the watermark, on one decode and one encode, tags kept.

    The cue goes first because it moves the programme (a cue at the start puts seconds of sound before
    it): marked afterwards, the watermark covers the file as it is published, cue included, and is read
    from its first sample. Marked before, the whole mark moved by the cue's length; speech kept it, but
    on tonal sound (a held tone, a synthesised melody) the detector's time alignment does not find a
    mark moved by a fraction of its 32 ms cell (docs/watermark-audio.md, "Limits").

    WAV and FLAC keep their sample format; MP3 and M4A are re-encoded once at about the source's bit
    rate (:func:`labeler.media.audio_rewrite.rewrite_audio_file`), so the two layers never cost two
    generations of loss. All but Ogg are streamed (``stream``): read, labeled, marked and written in
    blocks, so memory does not grow with the file; the bytes are those of ``transform`` on the whole.
    """
    from labeler.media.audio_rewrite import AudioEdit, rewrite_audio_file
    from labeler.media.audio_stream import AudioStreamEdit
    from labeler.visible.audio_stream import audio_label_stream

    _require_complete(call)
    done: dict[str, dict[str, Any]] = {}
    steps: list[Callable[[Any, int], Any]] = []
    streams: list[Callable[[Any, Any], AudioStreamEdit]] = []
    vis = call.options.visible
    if "visible" in call.layers:
        steps.append(_audio_label_step(call, done))
        streams.append(lambda source, blocks: audio_label_stream(
            source, kind=vis.audio_label, where=vis.cue_positions, language=vis.voice_language))
    if "watermark" in call.layers:
        steps.append(_audio_watermark_step(call, done))
        streams.append(_audio_watermark_stream(call, done))

    made: list[Any] = []  # every block iterator stream() made, to close whatever happens

    def stream(source: Any) -> AudioStreamEdit:
        # The same steps as transform below, on blocks: the label reads the source itself (it needs a
        # first pass for the programme's loudness), the watermark marks what comes before it.
        edit = AudioStreamEdit(source.blocks())
        made.append(edit.blocks)
        for make in streams:
            step = make(source, edit.blocks)
            edit = AudioStreamEdit(step.blocks, edit.delay + step.delay)
            made.append(edit.blocks)
        return edit

    def transform(samples: Any, rate: int) -> AudioEdit:
        # The label step says how many samples it put before the programme (the watermark keeps the
        # length), so the rewriter can move the file's cue points and cue sheet by as much.
        delay = 0
        for step in steps:
            result = step(samples, rate)
            if isinstance(result, AudioEdit):
                samples, delay = result.samples, delay + result.delay
            else:
                samples = result
        return AudioEdit(samples, delay)

    try:
        call.warnings.extend(rewrite_audio_file(call.src, call.out, transform, stream) or ())
    finally:
        _close_all(made)
    return done


def _close_all(iterators: list[Any]) -> None:
    """Close the block generators of a streamed rewrite, outermost first (a no-op for finished ones).

    When the encoder fails, the chain stops mid-file; each generator kills and reaps its ffmpeg decoder
    only when it is closed, and the chain is reachable from the exception's traceback (the rewriter's
    frames hold the closures that hold it), so not even ``gc.collect()`` ends it: a caller that keeps the
    exception (a web framework's error log, a retry queue) kept the decoder too, as a zombie or blocked on
    a full pipe.
    """
    for blocks in reversed(iterators):
        close = getattr(blocks, "close", None)
        if close is not None:
            close()


def _audio_watermark_step(call: StageCall, done: dict[str, dict[str, Any]]) -> Callable[[Any, int], Any]:
    from labeler.watermark import embed_audio, payload_from_produce_id
    from labeler.watermark.audio import DEFAULT_AUDIO_STRENGTH
    from labeler.watermark.keyfile import key_id

    wm = call.options.watermark
    assert wm.key is not None
    key = wm.key
    payload = payload_from_produce_id(call.record.produce_id)
    if wm.strength is not None:
        # The image strength is in luma levels; the audio mark has its own scale (docs/watermark-audio.md).
        call.warnings.append("the watermark strength applies to images and video; audio uses its default "
                             "strength")
    done["watermark"] = {"method": "audio", "payload": payload.hex(), "key_id": key_id(key),
                         "strength": DEFAULT_AUDIO_STRENGTH}

    def step(samples: Any, rate: int) -> Any:
        import numpy as np

        from labeler.watermark.audio import MIN_DETECT_SECONDS, as_float_pcm

        marked = embed_audio(samples, rate, payload, key=key)
        # The mark is relative to the sound in its bands: digital silence gets none (a DC level only a
        # faint trace at its edges). Say so rather than report a layer that is not there.
        original = as_float_pcm(samples)[0]
        done["watermark"]["embedded"] = not np.array_equal(marked.reshape(-1), original.reshape(-1))
        if not done["watermark"]["embedded"]:
            call.warnings.append(CANCELLED_AUDIO_NOTE if original.any() else SILENT_AUDIO_NOTE)
        elif len(marked) < MIN_DETECT_SECONDS * rate:
            call.warnings.append(short_audio_note(len(marked) / rate))
        return marked

    return step


def _audio_watermark_stream(call: StageCall, done: dict[str, dict[str, Any]]) -> Callable[[Any, Any], Any]:
    """:func:`_audio_watermark_step` on blocks (which wrote ``done``'s entry): the same mark and notes."""
    from labeler.media.audio_stream import AudioStreamEdit
    from labeler.watermark import payload_from_produce_id
    from labeler.watermark.audio import MIN_DETECT_SECONDS, MIN_SECONDS, embed_audio_blocks, seconds_down
    from labeler.watermark.payload import TooSmallForWatermark

    wm = call.options.watermark
    payload = payload_from_produce_id(call.record.produce_id)

    def marked(blocks: Any, rate: int, channels: int) -> Any:
        import numpy as np

        held, frames, changed, sounding = [], 0, False, False

        def tap(blocks: Any) -> Any:
            nonlocal frames, sounding
            for block in blocks:
                frames += len(block)
                if not changed:
                    held.append(block)  # until the output differs: at most the embedder's 3 s lag
                    sounding = sounding or bool(np.any(block))  # which note, if nothing changes
                yield block

        for out in embed_audio_blocks(tap(blocks), rate, channels, payload, key=wm.key):
            if not changed:  # the mark is relative: digital silence gets none (as the whole-file step)
                original = np.concatenate(held)
                changed = not np.array_equal(out, original[:len(out)])
                held[:] = [] if changed else [original[len(out):]]
            yield out
        if frames < MIN_SECONDS * rate:  # embed_audio refuses it before marking; known here at the end
            raise TooSmallForWatermark(f"audio too short to carry a watermark "
                                       f"({seconds_down(frames, rate)} s < {MIN_SECONDS:g} s)")
        done["watermark"]["embedded"] = changed
        if not changed:
            call.warnings.append(CANCELLED_AUDIO_NOTE if sounding else SILENT_AUDIO_NOTE)
        elif frames < MIN_DETECT_SECONDS * rate:
            call.warnings.append(short_audio_note(frames / rate))

    return lambda source, blocks: AudioStreamEdit(marked(blocks, source.sample_rate, source.channels))


def short_audio_note(seconds: float) -> str:
    """The audio watermark stage's warning for audio shorter than the detector reads."""
    import math

    from labeler.watermark.audio import MIN_DETECT_SECONDS

    # rounded down, as the detector's "too short" note: 1.4999 s read "1.50 s long and the detector reads
    # 1.5 s or more"; the 1e-6 (hundredths) absorbs the float quotient's error, far below one sample
    shown = math.floor(seconds * 100 + 1e-6) / 100
    return (f"the watermark was embedded but cannot be verified: the audio is {shown:.2f} s long and "
            f"the detector reads {MIN_DETECT_SECONDS:g} s or more")


#: The audio watermark stage's warning when the file gave the mark nothing to ride on.
SILENT_AUDIO_NOTE = ("no watermark was embedded: the audio has no sound between 301 and 3704 Hz (digital "
                     "silence) and the mark only changes the energy of sound that is there")
#: The same when the samples are not all zero: the mark is computed from (and read in) the channels' mean,
#: which is silent when the channels cancel (a stereo file with one channel in inverted polarity). It
#: used to get SILENT_AUDIO_NOTE, which called audible sound "digital silence".
CANCELLED_AUDIO_NOTE = ("no watermark was embedded: the audio's mono mix (the mean of its channels, which "
                        "the mark is computed from and read in) has no sound between 301 and 3704 Hz: its "
                        "channels cancel (one in inverted polarity) or its sound lies outside that band")


def _audio_label_step(call: StageCall, done: dict[str, dict[str, Any]]) -> Callable[[Any, int], Any]:
    vis = call.options.visible
    kinds = {"rhythm": ["audio-rhythm"], "voice": ["audio-voice"]}.get(vis.audio_label,
                                                                        ["audio-rhythm", "audio-voice"])
    done["visible"] = {"kind": kinds[-1], "kinds": kinds, "where": list(vis.cue_positions)}
    if vis.audio_label != "rhythm":
        done["visible"]["language"] = vis.voice_language

    def step(samples: Any, rate: int) -> Any:
        if vis.audio_label == "rhythm":
            from labeler.visible.audio import audio_cue_edit

            return audio_cue_edit(samples, rate, where=vis.cue_positions)
        from labeler.visible.voice_prompt import audio_label_edit

        return audio_label_edit(samples, rate, kind=vis.audio_label, language=vis.voice_language,
                                where=vis.cue_positions)

    return step


def unreadable_audio(path: Path, fmt: str | None) -> str | None:
    """Why the WAV or MP3 at ``path`` holds no audio to decode (too short for its first chunk or frame, no
    ``data`` chunk, no MPEG audio frame), or None when its structure shows nothing of the kind: the audio
    stage's error when ffmpeg's own says only "invalid argument"."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if fmt == "wav":
                from labeler.metadata import riff

                try:
                    layout = riff._layout(handle)
                except CorruptFile as exc:
                    return f"not a readable WAV file ({exc})"
                if not layout.chunks:
                    return (f"not a readable WAV file: too short ({size} bytes), no complete chunk after "
                            "the RIFF header, so no audio frames")
                if not any(chunk.cid == b"data" for chunk in layout.chunks):
                    return "not a readable WAV file: it has no data chunk, so no audio frames"
                return None
            if fmt == "mp3":
                from labeler.media.mp3_cut import mp3_without_frames

                return mp3_without_frames(handle.read(1 << 20), size)
    except (OSError, LabelerError):
        return None
    return None
