"""Explicit labels people perceive (GB 45438-2025 section 5): text marks on images/video, audio cues.

* :func:`add_image_label` draws "AI生成" (or another accepted wording) on an image array, sized by
  its ink height (>= 5 % of the shorter side), in a corner or at the top/bottom centre;
* :func:`place_label` says where and how large that label is, without drawing it;
* :func:`add_video_label` overlays the same label on the first seconds of a video (one ffmpeg run,
  audio and metadata copied);
* :func:`add_audio_cue` / :func:`add_audio_cue_file` put the rhythm cue (Morse "AI", short-long
  short-short tones) at the start, end or middle of audio, loudness-matched to the programme;
* :func:`add_voice_prompt` / :func:`add_voice_prompt_file` speak "本内容由人工智能生成" (or "This content
  is AI-generated.") there instead, from clips shipped in ``voice/``; :func:`add_audio_label` /
  :func:`add_audio_label_file` pick rhythm, voice or both.

The glyphs come from a subset of Noto Sans CJK SC Bold shipped in ``fonts/`` (SIL OFL 1.1).
Detection lives in :mod:`detectors.visible`.
"""

from __future__ import annotations

from labeler.visible.audio import (
    add_audio_cue,
    add_audio_cue_file,
    cue_length,
    loudness,
    morse_ai_cue,
)
from labeler.visible.image import (
    DEFAULT_TEXT,
    MIN_HEIGHT_RATIO,
    MIN_INK_PX,
    POSITIONS,
    LabelStyle,
    Placement,
    RenderedLabel,
    add_image_label,
    check_wording,
    font_path,
    place_label,
    render_label,
)
from labeler.visible.video import MIN_SECONDS, add_video_label
from labeler.visible.voice_prompt import (
    add_audio_label,
    add_audio_label_file,
    add_voice_prompt,
    add_voice_prompt_file,
    voice_clip,
)

__all__ = [
    "DEFAULT_TEXT",
    "MIN_HEIGHT_RATIO",
    "MIN_INK_PX",
    "MIN_SECONDS",
    "POSITIONS",
    "LabelStyle",
    "Placement",
    "RenderedLabel",
    "add_audio_cue",
    "add_audio_cue_file",
    "add_audio_label",
    "add_audio_label_file",
    "add_image_label",
    "add_video_label",
    "add_voice_prompt",
    "add_voice_prompt_file",
    "check_wording",
    "cue_length",
    "font_path",
    "loudness",
    "morse_ai_cue",
    "place_label",
    "render_label",
    "voice_clip",
]

