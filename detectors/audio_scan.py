"""One streamed pass over a long audio file for ``verify``'s sample layers, in bounded memory.

A short file is decoded whole once and each sample layer reads the array
(:class:`detectors.sources.Samples`). A long one (over :data:`STREAM_ABOVE_BYTES` of decoded samples:
~12 minutes of 44.1 kHz stereo) would hold gigabytes that way (an hour of 48 kHz stereo is 1.4 GB of
float32, several times that in the searches' intermediates), and one over
:data:`labeler.media.audio.MAX_DECODED_BYTES` could not be examined at all. :func:`scan_audio` instead
feeds the decoder's blocks to the watermark detector
(:class:`detectors.watermark_audio.AudioDetector`, which stops once a window decodes) and to the audio
label search (:class:`detectors.visible.audio_labels.AudioLabelScan`, overlapping chunks) in one
pass; memory is one label chunk (~50 MB with its searches) and one watermark window (~60 MB at
44.1 kHz), whatever the length. A file that does not state its length (a FLAC or WebM written to a
pipe) is decoded until it proves long (:func:`decode_or_scan`); the blocks held by then, at most
:data:`STREAM_ABOVE_BYTES`, are fed first and let go one by one.

Results equal the whole-file ones: with the file's frame count known (WAV, FLAC, Ogg: the header
says) the watermark reads the same windows with the same p-value; without it (MP3, AAC: ffmpeg decodes
a stream of unknown length) the p-value spends its false-positive budget window by window
(:class:`~detectors.watermark_audio.AudioDetector`), valid for any length. The labels' chunks are laid on
every analysis grid, so each finds what the whole search finds there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors.watermark_result import DEFAULT_THRESHOLD
from labeler.errors import LabelerError, UnsafeInput
from labeler.media import audio as media_audio
from labeler.media.audio import AudioData, AudioInfo, decoded_blocks, read_audio

__all__ = ["STREAM_ABOVE_BYTES", "AudioScan", "decode_or_scan", "scan_audio", "streamed"]

#: Decoded samples (float32 bytes) above which ``verify`` streams an audio file instead of decoding it
#: whole: 256 MiB, 12.7 minutes of 44.1 kHz stereo.
STREAM_ABOVE_BYTES = 1 << 28
# Frames per decoded block: ~1.4 s at 48 kHz, 1.5 MB of stereo float32.
_BLOCK_FRAMES = 1 << 16


def streamed(info: AudioInfo) -> bool:
    """Whether ``verify`` streams this file from its start: its decoded size (from the frame count, else
    the stated duration) is over :data:`STREAM_ABOVE_BYTES`. A length the file does not state is found
    out by decoding (:func:`decode_or_scan`)."""
    if info.frames is not None:
        frames = float(info.frames)
    elif info.duration is not None:
        frames = info.duration * info.sample_rate
    else:
        return False
    return frames * info.channels * 4 > STREAM_ABOVE_BYTES


@dataclass
class AudioScan:
    """What :func:`scan_audio` found: each part's result, or the ``LabelerError`` that stopped it.

    Attributes
    ----------
    watermark : WatermarkResult or None
        The audio watermark detector's result (None when no key was given or it failed).
    labels : tuple of (AudioCueResult, VoicePromptResult) or None
        The rhythm cue's and the voice prompt's results (None when not asked for or failed).
    errors : dict
        ``"watermark"`` / ``"labels"``: the error that stopped that part (a decoding error stops both).
    seconds : float
        Audio read (s): all of it, unless only the watermark was asked for and decoded early.
    """

    watermark: Any = None
    labels: tuple[Any, Any] | None = None
    errors: dict[str, LabelerError] = field(default_factory=dict)
    seconds: float = 0.0

    def get(self, part: str) -> Any:
        """``watermark`` or ``labels``; raises the error that stopped that part."""
        if part in self.errors:
            raise self.errors[part]
        return getattr(self, part)


def decode_or_scan(path: Path, info: AudioInfo, *, key: bytes | None, labels: bool,
                   threshold: float = DEFAULT_THRESHOLD) -> AudioData | AudioScan:
    """``path`` decoded whole when it is short, else streamed once (:func:`scan_audio`).

    A length the header states decides up front (:func:`streamed`). Without one (ffmpeg's decoders: a
    FLAC or WebM written to a pipe states none, an MP3's duration is an estimate) the file is decoded
    until it proves longer than :data:`STREAM_ABOVE_BYTES` (or than
    :data:`labeler.media.audio.MAX_DECODED_BYTES`); the blocks held so far are then fed to the
    streamed pass ahead of the rest, so no file is decoded twice or held past that size.

    Returns
    -------
    AudioData or AudioScan
        The samples of a short file, the streamed pass's results for a long one.

    Raises
    ------
    LabelerError
        The file cannot be decoded (before it proved long; afterwards :class:`AudioScan` holds the error).
    """
    if streamed(info):
        return scan_audio(path, info, key=key, labels=labels, threshold=threshold)
    if info.frames is not None:  # libsndfile: read_audio's integer reads, the count known
        try:
            return read_audio(path, info=info)
        except UnsafeInput:
            return scan_audio(path, info, key=key, labels=labels, threshold=threshold)
    limit = min(STREAM_ABOVE_BYTES, media_audio.MAX_DECODED_BYTES)
    blocks = decoded_blocks(path, info, _BLOCK_FRAMES)
    head: deque[np.ndarray] = deque()
    size = 0
    try:
        for block in blocks:
            head.append(block)
            size += block.nbytes
            if size > limit:
                return scan_audio(path, info, key=key, labels=labels, blocks=_resumed(head, blocks),
                                  threshold=threshold)
    finally:
        blocks.close()  # ends ffmpeg on an error (the streamed pass has read it to its end otherwise)
    # as read_audio decodes a file through ffmpeg: the same blocks, joined
    samples = np.concatenate(head) if head else np.zeros((0, info.channels), np.float32)
    return AudioData(samples, info.sample_rate, info.format, info.subtype)


def _resumed(head: deque[np.ndarray], rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The blocks already decoded (each let go once handed on), then the rest of the decoder's."""
    while head:
        yield head.popleft()
    yield from rest


def scan_audio(path: Path, info: AudioInfo, *, key: bytes | None, labels: bool,
               blocks: Iterator[np.ndarray] | None = None, threshold: float = DEFAULT_THRESHOLD) -> AudioScan:
    """Stream ``path`` once through the watermark detector (with ``key``) and the label search.

    Parameters
    ----------
    path : Path
        The audio file (or a video, for its soundtrack: ``labels=False``).
    info : AudioInfo
        Its :func:`labeler.media.audio.audio_info`.
    key : bytes or None
        The watermark key; None skips the watermark.
    labels : bool
        Search for the rhythm cue and the voice prompt.
    blocks : iterator of numpy.ndarray, optional
        The decoded blocks when the caller has started decoding (:func:`decode_or_scan`); by default
        the file is decoded here.
    threshold : float
        The watermark detector's p-value threshold.

    Returns
    -------
    AudioScan
        A part that raised (NaN samples, a bad key) has its error in ``errors``; a decoding error
        (the file breaks off) is every part's. Reading stops early only when the watermark alone was
        asked for and has decoded.
    """
    from detectors.visible.audio_labels import AudioLabelScan
    from detectors.watermark_audio import AudioDetector

    scan = AudioScan()
    parts: dict[str, Any] = {}
    for name, make in (("watermark", lambda: AudioDetector(info.sample_rate, key=key, frames=info.frames,
                                                              threshold=threshold)),
                       ("labels", lambda: AudioLabelScan(info.sample_rate))):
        if (name == "watermark" and key is None) or (name == "labels" and not labels):
            continue
        try:
            parts[name] = make()
        except LabelerError as exc:
            scan.errors[name] = exc
    frames = 0
    if blocks is None:
        blocks = decoded_blocks(path, info, _BLOCK_FRAMES)
    try:
        for block in blocks:
            frames += len(block)
            for name in list(parts):
                try:
                    decided = parts[name].push(block)
                except LabelerError as exc:
                    scan.errors[name] = exc
                    del parts[name]
                    continue
                if name == "watermark" and decided is not None:
                    scan.watermark = decided
                    del parts[name]
            if not parts:
                break
    except LabelerError as exc:  # the decoder: no part can finish
        for name in ("watermark", "labels"):
            if name in parts:
                scan.errors[name] = exc
        return scan
    finally:
        blocks.close()  # stops ffmpeg when reading ended early
    scan.seconds = frames / info.sample_rate
    for name, part in parts.items():
        try:
            setattr(scan, name, part.result())
        except LabelerError as exc:
            scan.errors[name] = exc
    return scan
