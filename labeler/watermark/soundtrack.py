"""The audio watermark on a video's soundtrack: the same payload on a second stream of the file.

A platform may keep the picture and re-encode only the sound, or the reverse; a clip's soundtrack is
also often re-used alone. :func:`mark_soundtrack` decodes each audio stream of a video file in turn,
adds the audio watermark (:class:`labeler.watermark.audio.AudioEmbedder`, block by block: bounded
memory whatever the length), encodes it once with the stream's own codec family at about its bit
rate, and writes the file again with every other stream copied (the picture is not re-encoded a
second time). The result is written beside the file and renamed into place.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from labeler.errors import LabelerError
from labeler.media import ffmpeg as ff
from labeler.media.audio import AudioInfo, decoded_blocks, stream_audio_info
from labeler.media.audio_write import bitrate_at_least, rate_args
from labeler.media.video_streams import (
    Attachment,
    attach_args,
    chapter_tracks,
    derived_tag_args,
    disposition_args,
    drop_derived_keys,
    is_timecode_track,
    picture_attachments,
    start_offset_args,
)
from labeler.watermark.audio import MAX_RATE, MIN_RATE, MIN_SECONDS, AudioEmbedder, as_float_pcm

#: Source audio codec -> (ffmpeg encoder, default bit rate) for the marked stream.
ENCODERS = {"aac": ("aac", "128k"), "mp3": ("libmp3lame", "128k"), "opus": ("libopus", "96k"),
            "vorbis": ("libvorbis", "128k")}
#: Lossless source codecs (and every ``pcm_*``), encoded again with their own encoder: no bit rate, no loss.
LOSSLESS = {"flac", "alac", "wavpack", "tta"}


def mark_soundtrack(path: str | os.PathLike[str], payload: bytes, *, key: bytes) -> dict[str, Any]:
    """Watermark every audio stream of the video file at ``path`` in place.

    Parameters
    ----------
    path : path-like
        A video file (rewritten atomically; on any error it is left as it was).
    payload : bytes
        The 8-byte payload (the frames' payload).
    key : bytes
        The watermark key.

    Returns
    -------
    dict
        ``{"audio": "marked", "codec", "bitrate"}``, or ``{"audio": reason}`` when the file has no
        audio stream or one too short or silent to carry the mark (then nothing is written). With several
        audio streams (dubbed languages, a commentary) each is marked in turn, one pass each, and
        ``"streams"`` lists every stream's own result; the rest describes the first marked one.

    Raises
    ------
    LabelerError
        When decoding or encoding fails.
    """
    info = ff.probe(path)
    if not info.audio:
        return {"audio": "none"}
    results: list[dict[str, Any]] = []
    for position in range(len(info.audio)):
        if results and results[-1]["audio"] == "marked":
            info = ff.probe(path)  # written again: the same streams in the same order, probed afresh
        results.append(_mark_stream(path, info, info.audio[position], payload, key))
    if len(results) == 1:
        return results[0]
    marked = [r for r in results if r["audio"] == "marked"]
    return {**(marked[0] if marked else results[0]), "streams": results}


def _mark_stream(path: str | os.PathLike[str], info: ff.MediaInfo, stream: ff.StreamInfo, payload: bytes,
                 key: bytes) -> dict[str, Any]:
    """Mark one audio stream of ``path`` (every other stream copied), or say why not."""
    audio = stream_audio_info(info, stream)  # the file is probed by the caller: not a second time
    if not MIN_RATE <= audio.sample_rate <= MAX_RATE:
        # AAC at 7350 Hz, PCM at 384 kHz: the mark has no rate to go on, but the picture does. The whole
        # label failed here ("sample rate must be ... not 7350") though the frames were marked; the
        # track is copied as a silent one is, and the result says why
        return {"audio": f"copied (sample rate {audio.sample_rate} Hz: the audio mark needs "
                         f"{MIN_RATE}-{MAX_RATE} Hz)"}
    blocks = decoded_blocks(path, audio, _BLOCK_FRAMES)
    try:
        head = _head(blocks, MIN_SECONDS * audio.sample_rate)
        sound = None if head is None else _sounding(itertools.chain(head, blocks), audio.channels)
        if sound is None:
            return {"audio": _UNMARKED}
        return _write_marked(path, info, stream, audio, sound, payload, key)
    finally:
        blocks.close()  # stops the decoder when the mark was not written


_UNMARKED = "copied (too short or silent for the audio mark)"
# Frames per decoded block: ~1.4 s at 48 kHz.
_BLOCK_FRAMES = 1 << 16


def _head(blocks: Iterator[np.ndarray], frames: float) -> list[np.ndarray] | None:
    """The first blocks, until they hold ``frames`` frames; None when the sound ends before."""
    head: list[np.ndarray] = []
    held = 0
    for block in blocks:
        head.append(block)
        held += len(block)
        if held >= frames:
            return head
    return None


def _sounding(blocks: Iterator[np.ndarray], channels: int) -> Iterator[np.ndarray] | None:
    """``blocks`` again, or None when every sample is digital silence (the mark is relative to the
    sound: silence gets none, so there is nothing to write).

    Decodes until the first block that holds sound; the silent blocks before it are given again as
    zeros of the same lengths, so only their lengths are held (a generated clip's silent track of an
    hour was encoded and muxed in full, then dropped, until 2026-12-07).
    """
    silent: list[int] = []
    for block in blocks:
        x, _ = as_float_pcm(block)  # NaN/inf refused, as embed_audio does
        if np.any(x):
            zeros = (np.zeros((n, channels), np.float32) for n in silent)
            return itertools.chain(zeros, [block], blocks)
        silent.append(len(x))
    return None


def _write_marked(path: str | os.PathLike[str], info: ff.MediaInfo, stream: ff.StreamInfo, audio: AudioInfo,
                  blocks: Iterable[np.ndarray], payload: bytes, key: bytes) -> dict[str, Any]:
    """Encode the marked sound and write the file again with every other stream copied.

    The sound is marked and encoded as it is decoded (:class:`~labeler.watermark.audio.AudioEmbedder`,
    whose output does not depend on how the input is cut), so memory is a few blocks whatever the
    length: an hour's soundtrack was 1.4 GB of float32 decoded whole, twice (marked copy), until
    2026-12-07.
    """
    if stream.codec in LOSSLESS or stream.codec.startswith("pcm_"):
        # lossless stays lossless, at the source's sample depth (was AAC before 2026-12-07)
        encoder = stream.codec
        keep_depth = stream.sample_fmt and not encoder.startswith("pcm_")
        rate = ["-sample_fmt", stream.sample_fmt] if keep_depth else []
        bitrate = None
    else:
        encoder, default = ENCODERS.get(stream.codec, ENCODERS["aac"])
        family = stream.codec if stream.codec in ENCODERS else "aac"
        bitrate = bitrate_at_least(stream.bitrate, family, audio.channels, default)
        # libvorbis gets the VBR quality whose nominal rate reaches it (a bit rate out of its mode's range
        # for the layout is refused), as every audio writer does
        rate = rate_args(encoder, bitrate, audio.channels, audio.sample_rate)

    def marked() -> Iterator[np.ndarray]:
        embedder = AudioEmbedder(audio.sample_rate, audio.channels, payload, key=key)
        for block in blocks:
            yield embedder.push(block)  # it converts and checks the block (NaN/inf refused)
        yield embedder.flush()

    with ff.output_path(path) as tmp, tempfile.TemporaryDirectory(prefix="aigc-label-") as workdir:
        name = os.fspath(path)
        attachments = picture_attachments(name, info, name, workdir)
        # the marked sound comes from a pipe, which has no disposition: the source track's default flag
        # is given again (Matroska wrote FlagDefault 0 until 2026-12-07)
        flag = disposition_args(info, stream.index, _out_index(info, stream.index, attachments, name))
        args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(path),
                "-f", "f32le", "-ar", str(audio.sample_rate), "-ac", str(audio.channels), "-i", "pipe:0",
                *_maps(info, stream.index, attachments, name), "-c", "copy", "-c:a", encoder, *rate, *flag,
                "-map_metadata", "0", *derived_tag_args(info, name), *start_offset_args(info),
                "-movflags", "use_metadata_tags",
                *ff.reproducible(path), "file:" + tmp]
        reason = ff.feed(args, marked(), [ff.input_url(path)])
        if reason is not None:
            raise LabelerError(f"marking the soundtrack failed: {reason}")
        # use_metadata_tags wrote the brands and creation time as keys again (ffmpeg 9 reads them doubled)
        drop_derived_keys(tmp)
    return {"audio": "marked", "codec": encoder, "bitrate": bitrate}


def _mapped(info: ff.MediaInfo, attachments: Sequence[Attachment], dst: str) -> list[ff.StreamInfo]:
    """The source streams mapped, in output order: all but Matroska picture attachments, an MP4/MOV
    timecode track and an MP4/MOV chapter track (the muxer writes it again from the chapters, which
    ffmpeg carries over: copied too, it came out twice)."""
    left_out = {a.index for a in attachments} | chapter_tracks(dst, info)
    return [s for s in info.streams if s.index not in left_out and not is_timecode_track(s, dst)]


def _out_index(info: ff.MediaInfo, marked: int, attachments: Sequence[Attachment], dst: str) -> int:
    """The output position of the marked sound (source stream ``marked``)."""
    return [s.index for s in _mapped(info, attachments, dst)].index(marked)


def _maps(info: ff.MediaInfo, marked: int, attachments: Sequence[Attachment], dst: str) -> list[str]:
    """``-map`` every stream in its own place, the marked sound (input 1) where the source's was, each
    with the source stream's tags (language, title): a pipe has none, and naming one stream's tags turns
    ffmpeg's copying of the others' off. Matroska picture attachments are attached again, not mapped
    (:func:`labeler.media.video_streams.picture_attachments`)."""
    mapped = _mapped(info, attachments, dst)
    args: list[str] = []
    for position, stream in enumerate(mapped):
        args += ["-map", "1:a" if stream.index == marked else f"0:{stream.index}",
                 f"-map_metadata:s:{position}", f"0:s:{stream.index}"]
    # an MP4/MOV timecode track is left out (ffmpeg cannot copy it): the muxer writes it again from the
    # video stream's timecode tag, which the frames' pass kept
    return args + attach_args(attachments, len(mapped))
