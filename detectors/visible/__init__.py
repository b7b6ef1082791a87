"""Find the visible labels of :mod:`labeler.visible`: one module per medium.

* :mod:`detectors.visible.image` — :func:`detect_image_label`: the text mark in an image
  (normalized cross-correlation, multi-scale, in the top and bottom bands);
* :mod:`detectors.visible.video` — :func:`detect_video_label`: the same mark at the start, middle
  and end of a video (a few sampled frames through the image detector);
* :mod:`detectors.visible.audio_cue` — :func:`detect_audio_cue`: the Morse "AI" rhythm cue in audio;
* :mod:`detectors.visible.voice` — :func:`detect_voice_prompt`: the shipped voice prompts in audio;
* :mod:`detectors.visible.common` — :class:`VisibleResult` and the audio input checks they share.

::

    >>> from detectors.visible import detect_image_label
    >>> from labeler.visible import add_image_label
    >>> r = detect_image_label(add_image_label(pixels))
    >>> r.present, r.position
    (True, 'bottom-right')
"""

from __future__ import annotations

from detectors.visible.audio_cue import (
    AUDIO_CUE_SEARCH_HZ,
    AUDIO_CUE_THRESHOLD,
    AUDIO_CUE_UNITS_S,
    AudioCueResult,
    detect_audio_cue,
)
from detectors.visible.common import VisibleResult
from detectors.visible.image import (
    DEFAULT_TEXTS,
    DEFAULT_THRESHOLD,
    MAX_RATIO,
    SCALE_STEP,
    WORK_SIDE,
    detect_image_label,
)
from detectors.visible.video import (
    VIDEO_INTERVAL_OFFSETS,
    VIDEO_MAX_SECONDS,
    VIDEO_STEP,
    VideoLabelResult,
    detect_video_label,
)
from detectors.visible.voice import (
    VOICE_BAND_HZ,
    VOICE_PARTS,
    VOICE_RATE_HZ,
    VOICE_THRESHOLD,
    VoicePromptResult,
    detect_voice_prompt,
)

# The names exported before the split into one module per medium, then the public constants that
# were importable from here too.
__all__ = ["DEFAULT_TEXTS", "DEFAULT_THRESHOLD", "VideoLabelResult", "VisibleResult", "detect_image_label",
           "detect_video_label", "AUDIO_CUE_THRESHOLD", "AudioCueResult", "detect_audio_cue",
           "VOICE_THRESHOLD", "VoicePromptResult", "detect_voice_prompt",
           "AUDIO_CUE_SEARCH_HZ", "AUDIO_CUE_UNITS_S", "MAX_RATIO", "SCALE_STEP", "WORK_SIDE",
           "VIDEO_INTERVAL_OFFSETS", "VIDEO_MAX_SECONDS", "VIDEO_STEP", "VOICE_BAND_HZ", "VOICE_PARTS",
           "VOICE_RATE_HZ"]
