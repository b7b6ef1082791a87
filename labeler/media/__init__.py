"""Media as arrays: decode images, audio and video to NumPy arrays and encode them back.

This is the layer watermarking and visible labels build on. Small plain functions,
arrays in and arrays out, no global mutable state (safe to call from several threads):

* images (:mod:`labeler.media.image`): :func:`read_image` -> :class:`ImageData`
  (pixels plus ICC/EXIF/XMP/dpi), :func:`write_image` keeps that metadata;
* audio (:mod:`labeler.media.audio`): float32 ``(frames, channels)`` in [-1, 1] via
  soundfile or ffmpeg; :func:`iter_audio_blocks` for long files;
* video (:mod:`labeler.media.video`): :func:`read_video_frames` streams frames,
  :class:`VideoWriter` encodes them and copies the source's audio;
* ffmpeg (:mod:`labeler.media.ffmpeg`): the program, :func:`probe` without ffprobe.

Errors are :mod:`labeler.errors` types with one-line messages.
"""

from __future__ import annotations

from labeler.media.audio import (
    AudioData,
    AudioInfo,
    audio_info,
    iter_audio_blocks,
    read_audio,
)
from labeler.media.audio_write import write_audio
from labeler.media.ffmpeg import MediaInfo, StreamInfo, ffmpeg_exe, probe
from labeler.media.image import ImageData, image_from_array, read_image
from labeler.media.image_write import encode_image, write_image
from labeler.media.pillow_guard import MAX_PIXELS
from labeler.media.video import VideoInfo, VideoWriter, read_video_frames, video_info

__all__ = [
    "MAX_PIXELS",
    "AudioData",
    "AudioInfo",
    "ImageData",
    "MediaInfo",
    "StreamInfo",
    "VideoInfo",
    "VideoWriter",
    "audio_info",
    "encode_image",
    "ffmpeg_exe",
    "image_from_array",
    "iter_audio_blocks",
    "probe",
    "read_audio",
    "read_image",
    "read_video_frames",
    "video_info",
    "write_audio",
    "write_image",
]
