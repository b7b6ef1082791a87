"""Global motion of a video's picture, frame to frame: where the video mark moves, for embed and detect.

The video mark (:mod:`labeler.watermark.video`) is carried along with the picture's global translation
(a pan or tilt): frame ``n`` gets the pattern shifted by the picture's cumulative displacement since
the first frame. A static mark on a panning picture is new detail in every frame for the encoder
(x264 CRF 18 medium on a fast 1080p pan: 2.2x the bytes and 2.6x the CPU of a plain re-encode); one
that moves with the picture is predicted from the previous frame like the picture itself (1.09x the
bytes, 1.13x the CPU). The detector measures the same motion on the frames it reads and shifts each
frame's fold back before adding it to the temporal sum (``detectors.watermark_video``).

Both sides call :class:`MotionTracker` on the luma they have (the embedder on the source frames at
full size, the detector on its shrunk view of a possibly re-encoded, rescaled copy); the tracker
measures on a copy of fixed size (:data:`ANALYSIS_SIDE`), so both see the same content at the same
scale and their estimates differ only by what the codec changed. Only the displacement between
consecutive frames is measured, so any excerpt, a changed frame rate (dropped or repeated frames) or a
crop gives the same relative motion. Nothing here depends on the key.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MotionTracker", "ANALYSIS_SIDE", "MIN_RESPONSE"]

#: Shorter side (pixels) of the copy motion is measured on (a 1080p frame is shrunk 3x, the detector's
#: view of it is this size already). Measured on a 1080p picture moved by (2, 23.3) and (-5.2, 0.7) px:
#: errors of 0.16-0.23 px of the frame (180 px: 0.05-0.45; 270: 0.06-0.44); the mark's shortest
#: wavelength at 1080p is 24 px, so a read loses at most cos(2 pi 0.23 / 24) = 0.998 of its signal.
ANALYSIS_SIDE = 360
#: Peak of the phase correlation below which two frames are taken as unrelated (a cut, a flash) and
#: the step as no motion. Consecutive frames of one shot peak at 0.3-1; unrelated pictures at ~0.05.
MIN_RESPONSE = 0.12
#: A step larger than this share of the analysis frame's side is not trusted either (no motion).
MAX_STEP = 0.25
#: Steps shorter than this (analysis pixels: 6 px of a 1080p frame, 180 px/s at 30 fps) count as no
#: motion. A slow pan costs the encoder little with a still mark (x264 CRF 18 on a 1080p pan of 1.3 px a
#: frame: +4 % CPU), and a still mark is what x264's macroblock tree keeps best where the picture
#: barely moves (a 320 x 240 clip drifting 0.17 px a frame: a mark moved in whole-pixel steps lost its
#: presence after CRF 28, the still one kept it). The margin matters too: the embedder and a detector
#: reading a degraded copy must take the same steps, and near the limit they may not.
MIN_STEP = 2.0
#: The step is the picture's (global) motion only when undoing it leaves at most this share of the
#: frame-to-frame change (mean absolute difference of the frames smoothed by a Gaussian of
#: :data:`SMOOTH` px, inner part): a moving object over a still scene (testsrc2's moving bar) is the
#: strongest peak of the correlation but explains little of the change. Measured (30-40 frame pairs
#: each): a fast 1080p pan (23 px a frame) 0.01-0.03, the same after 480p + CRF 30 0.05-0.21; pans of
#: 4-5 px a frame with film grain 0.11-0.47; testsrc2 0.67-1.05 (smoothing keeps grain out of it:
#: unsmoothed, the grainy pans read 0.38-0.59).
GLOBAL_SHARE = 0.35
SMOOTH = 1.5


class MotionTracker:
    """Cumulative global displacement of a stream of luma frames (phase correlation of neighbours).

    Examples
    --------
    >>> t = MotionTracker()
    >>> t.push(frame0)       # (0.0, 0.0): the first frame is the origin
    >>> t.push(frame1)       # (dy, dx) of frame1's picture against frame0's, in frame1's pixels
    """

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._window: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        self.dy = 0.0
        self.dx = 0.0

    def push(self, y: np.ndarray) -> tuple[float, float]:
        """Add the next frame; returns the picture's displacement (dy, dx) since the first frame.

        Parameters
        ----------
        y : ndarray (H, W), uint8 or float32
            Luma of the next frame (8-bit levels); every frame of a stream the same size.

        Returns
        -------
        (float, float)
            Cumulative displacement in pixels of ``y``: content at (r, c) of the first frame is at
            about (r + dy, c + dx) now. Steps judged unreliable (:data:`MIN_RESPONSE`,
            :data:`MAX_STEP`) count as zero.
        """
        h, w = y.shape
        f = min(1.0, ANALYSIS_SIDE / min(h, w))
        size = (max(8, round(w * f)), max(8, round(h * f)))
        small = cv2.resize(y, size, interpolation=cv2.INTER_AREA) if f < 1.0 else y
        small = np.asarray(small, dtype=np.float32)
        if self._prev is None or self._shape != small.shape:
            self._prev, self._shape = small, small.shape
            self._window = cv2.createHanningWindow(size, cv2.CV_32F)
            return self.dy, self.dx
        (sx, sy), response = cv2.phaseCorrelate(self._prev, small, self._window)
        prev, self._prev = self._prev, small
        if (response >= MIN_RESPONSE and float(np.hypot(sx, sy)) >= MIN_STEP
                and abs(sx) <= MAX_STEP * size[0] and abs(sy) <= MAX_STEP * size[1]
                and _is_global(prev, small, sx, sy)):
            self.dy += sy * h / size[1]
            self.dx += sx * w / size[0]
        return self.dy, self.dx


def _is_global(prev: np.ndarray, cur: np.ndarray, sx: float, sy: float) -> bool:
    """True when moving ``prev`` by (sx, sy) explains most of its difference to ``cur`` (see
    :data:`GLOBAL_SHARE`), compared over the part both frames show."""
    h, w = cur.shape
    m = int(np.ceil(max(abs(sx), abs(sy)))) + 1
    if h <= 2 * m or w <= 2 * m:
        return False
    prev, cur = cv2.GaussianBlur(prev, (0, 0), SMOOTH), cv2.GaussianBlur(cur, (0, 0), SMOOTH)
    moved = cv2.warpAffine(prev, np.array([[1.0, 0.0, sx], [0.0, 1.0, sy]]), (w, h), flags=cv2.INTER_LINEAR)
    inner = (slice(m, h - m), slice(m, w - m))
    still = float(cv2.norm(cur[inner], prev[inner], cv2.NORM_L1))
    undone = float(cv2.norm(cur[inner], moved[inner], cv2.NORM_L1))
    return undone <= GLOBAL_SHARE * still
