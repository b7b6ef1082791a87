"""What the visible-label detectors share: the result type, and the audio detectors' input checks.

:class:`VisibleResult` is the outcome of :func:`detectors.visible.detect_image_label` and the base of
the video, rhythm-cue and voice-prompt results; :func:`_mono_samples` validates and mixes down the
samples both audio detectors take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["VisibleResult"]

# Position: a cue or prompt starting within this many seconds of the start (ending ... of the end) is
# "start" ("end"); anything else is "middle".
_CUE_EDGE_S = 2.0


@dataclass
class VisibleResult:
    """Outcome of :func:`detect_image_label`.

    Attributes
    ----------
    present : bool
        ``score >= threshold``.
    kind : str
        ``"image-text"``.
    position : str or None
        Where the best match is: one of :data:`labeler.visible.POSITIONS`, None when not present.
    height_ratio : float or None
        Matched ink height divided by the image's shorter side, None when not present.
    score : float
        Best ``|normalized cross-correlation|``, 0..1.
    text : str or None
        The wording that matched best, None when not present.
    box : tuple of int or None
        ``(x, y, w, h)`` of the matched label in the image's pixels, None when not present.
    seconds : float or None
        Video only (:func:`detect_video_label`): the last sampled time (s) at which the label was
        still found; None for images or when not present.
    """

    present: bool
    kind: str = "image-text"
    position: str | None = None
    height_ratio: float | None = None
    score: float = 0.0
    text: str | None = None
    box: tuple[int, int, int, int] | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``layers.visible`` entry of a verify report."""
        return {
            "present": self.present,
            "kind": self.kind,
            "position": self.position,
            "height_ratio": None if self.height_ratio is None else round(self.height_ratio, 4),
            "seconds": self.seconds,
            "score": round(self.score, 4),
            "text": self.text,
        }


def _mono_samples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validated float32 mono mix of ``(frames,)`` or ``(frames, channels)`` float samples."""
    from labeler.errors import LabelerError

    arr = np.asarray(samples)
    if arr.ndim not in (1, 2) or arr.size == 0 or (arr.ndim == 2 and arr.shape[1] == 0):
        raise LabelerError(f"samples must be a non-empty (frames,) or (frames, channels) array: {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise LabelerError(f"samples must be float, got {arr.dtype}")
    if int(sample_rate) != sample_rate or sample_rate < 4000:
        raise LabelerError(f"sample_rate must be an integer of at least 4000 Hz, got {sample_rate!r}")
    if arr.ndim == 2:
        # Channel by channel: numpy's mean over the short last axis is a strided reduction, 10x slower
        # than adding whole columns (40 ms for 32 s of 44.1 kHz stereo).
        mono = arr[:, 0].astype(np.float32)
        for ch in range(1, arr.shape[1]):
            mono += arr[:, ch]
        if arr.shape[1] > 1:
            mono *= np.float32(1 / arr.shape[1])
        arr = mono
    # NaN/inf in any channel survives the mix (inf - inf is NaN), so the mono check covers them all.
    if not np.isfinite(arr).all():
        raise LabelerError("samples contain NaN or infinity")
    return arr.astype(np.float32, copy=False)
