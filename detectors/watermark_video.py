"""Video watermark detector: the image detector's reads on the temporal sum of many frames' folds.

::

    >>> from labeler.watermark import payload_from_produce_id
    >>> from labeler.watermark.video import watermark_video
    >>> from detectors.watermark_video import detect_video
    >>> _ = watermark_video("in.mp4", "clip.mp4", payload_from_produce_id("vid-7"), key=key, overwrite=True)
    >>> r = detect_video("clip.mp4", key=key)
    >>> r.found, r.payload == payload_from_produce_id("vid-7"), r.p_value <= 1e-6, r.frames_read
    (True, True, True, 1)

The mark (:mod:`labeler.watermark.video`) is the same tile at the same place in every frame, so the
prefiltered, folded tiles of successive frames add up coherently while the changing picture adds up
like noise: the detector streams luma frames (``-pix_fmt gray``, one frame in memory at a time), folds
each one (:class:`labeler.watermark.transforms.Prefiltered`), adds the folds, and at checkpoints
(1, 2, 4, 8, ... frames) runs the image detector's read (shift search, pilot statistic, Viterbi, CRC)
on the sums. It stops at the first checkpoint whose result is significant. No frame is special, so any
excerpt works; dropped or repeated frames (a changed frame rate) change nothing; letterboxing and crops
only move the tile's phase, which the shift search finds. A rescaled video is handled like a rescaled
image: after :data:`GEOMETRY_FRAMES` frames without a result the mark's lattice is estimated from the
mean of those frames' geometry images, and every later frame is also resampled to each candidate
geometry and folded into that candidate's sum.

p-value. Every read is one more set of hypotheses: the union bound counts all shifts of every method,
for the reads as given and every geometry candidate, at every checkpoint the run may reach (fixed in
advance from ``max_frames``), so stopping early at whichever checkpoint decodes first keeps the bound
valid (the derivation in ``docs/watermark.md`` holds for any image that does not depend on the key,
and the frame sum is such an image).
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, replace

import cv2
import numpy as np

from detectors.watermark import (
    DEFAULT_THRESHOLD,
    FULL_READ_MIN_Z,
    LIST_SIZE,
    READS_AS_GIVEN,
    WatermarkResult,
    _Attempt,
    _p_value,
    _read,
    _resample,
    _z_min,
    scale_tries,
)
from labeler.errors import CorruptFile
from labeler.media import ffmpeg as ff
from labeler.media.video import VideoInfo, video_info
from labeler.watermark import METHODS, _scheme
from labeler.watermark.payload import check_key
from labeler.watermark.scheme import Scheme
from labeler.watermark.sync import null_tail, scale_candidates
from labeler.watermark.transforms import MIN_SIDE, Prefiltered, fold, geometry_image, prefilter_parts
from labeler.watermark.video import VIDEO_METHOD, ZOOMS, zoom_for

__all__ = ["detect_video", "MAX_FRAMES", "GEOMETRY_FRAMES", "READ_STOPPED", "VideoWatermarkResult"]


@dataclass
class VideoWatermarkResult(WatermarkResult):
    """:class:`~detectors.watermark.WatermarkResult` of a video read, with ``read_error``: why the
    frames stopped before the end (a decoding error after some frames, or a file that ends before its
    index says), else None. The frames read before it are judged as they are (``frames_read`` counts
    them); without this the read ended quietly, 22 frames of 25 reading as a whole video."""

    read_error: str | None = None

#: Frames read at most (5 s at 30 fps): an unmarked video costs this many frame reads. More frames
#: help little (consecutive frames share most of their picture; see docs/watermark-video.md).
MAX_FRAMES = 150
#: A rescale candidate reads a centred window of at most this many pixels a side after resampling:
#: ~10 tiles per frame, plenty once frames are summed, at a fraction of a 1 MP resample.
RESAMPLE_SIDE = 640
#: Frames read at the scale as given before the lattice is estimated (their mean geometry image).
GEOMETRY_FRAMES = 8
#: Smallest rescale the lattice search proposes: 1080p -> 480p is 0.444 (the image detector's 0.45 is
#: just above it).
MIN_SCALE = 0.4
#: The rescale candidates read the mean of this many consecutive frames (in the view), resampled and
#: prefiltered once: neighbouring frames share most of their picture, and the mark, identical in each,
#: adds coherently before the (nonlinear) prefilter, so a candidate costs a quarter per frame. A group
#: also ends at every checkpoint, so each read sees every frame read so far.
GROUP = 4
#: "Absent" is decided early: from checkpoint :data:`FUTILE_FROM` on, a run whose strongest pilot
#: correlation is still :data:`FUTILE_MARGIN` below the z a payload needs stops. Unmarked frames give a
#: strongest z of about 3.5-4.5 (the maximum of ~16,000 shifts of a standard normal), so most clean
#: videos stop there instead of at :data:`MAX_FRAMES`. Stopping early only removes reads, so the
#: p-value's union bound (which counts every checkpoint up to ``max_frames``) stays valid; what it can
#: cost is a mark that is below ``z_min - FUTILE_MARGIN`` after 32 frames and would have crossed
#: ``z_min`` later (temporal gain beyond 32 frames is small: docs/watermark-video.md).
FUTILE_FROM = 32
#: How :attr:`VideoWatermarkResult.read_error` begins (the frame number and the reason follow): a
#: report's watermark note that starts so gets a warning (:func:`detectors.layers.unexamined_warnings`).
READ_STOPPED = "the video's frames stopped after frame"
FUTILE_MARGIN = 1.0


def checkpoints(max_frames: int) -> list[int]:
    """Frame counts at which the sums are read: powers of two below ``max_frames``, then ``max_frames``.

    A shorter video adds one read at its last frame instead; the p-value counts ``len + 1`` reads.
    """
    points = [1 << i for i in range(max(1, max_frames).bit_length()) if (1 << i) < max_frames]
    return [*points, max_frames]


class FoldSum(Prefiltered):
    """Sum of many frames' folds, presented as a :class:`Prefiltered` so the image detector reads it.

    ``period`` is the largest tile (pixels) of the methods searched; folds for smaller tiles that divide
    it are folds of the sum (folding is linear, and the modular row/column index commutes). The
    half-resolution image is kept as the sum of half-resolution folds at ``period / 2``.
    """

    def __init__(self, period: int) -> None:  # no super().__init__: there is no single image
        self.period = period
        self.full = np.zeros((period, period), np.float32)
        self.half = np.zeros((period // 2, period // 2), np.float32)
        self.frames = 0
        self._half_folds: dict[int, np.ndarray] = {}

    def add(self, z: Prefiltered) -> None:
        """Add one frame's prefiltered luma (both folds); invalidates the cached reads."""
        self.full += z.fold(self.period)
        self.half += fold(z.half, self.period // 2)
        self.frames += 1
        self._half_folds = {}

    def fold(self, tile: int) -> np.ndarray:
        """The summed full-resolution fold at ``tile`` pixels (a divisor of ``period``)."""
        return fold(self.full, tile)


def _frames(path: str, height: int, width: int, stream: int, view: int = 1,  # noqa: ANN202 - arrays
            limit: int | None = None, autorotate: bool = True):
    """Luma frames (upright) shrunk ``view`` times by ffmpeg, each pixel the exact mean of a ``view`` x
    ``view`` block: what :func:`_shrink` makes of the full frame, bit for bit (swscale's area filter with
    ``accurate_rnd`` at an integer ratio is that rounded mean), with 1/view**2 of the bytes through the
    pipe and no resize of our own. At most ``limit`` frames are decoded.

    One decoder thread: frame threads decode several frames ahead, and the search stops early (often
    at the first frame), so their frames are thrown away; one thread costs 3-14 % less CPU per search
    (measured on 1080p and 720p H.264, 2 cores), and the search's own work overlaps it anyway.

    ``autorotate`` False: the frames as stored, not turned by the file's display rotation (``height``
    and ``width`` are then the stored size).
    """
    url = ff.input_url(path)
    h, w = height // view, width // view
    # gray first (a copy of the luma plane), then crop to whole blocks and average them
    chain = "format=gray" if view == 1 else (
        f"format=gray,crop={w * view}:{h * view}:0:0,scale={w}:{h}:flags=area+accurate_rnd+bitexact")
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "1",
            *([] if autorotate else ["-noautorotate"]),
            "-protocol_whitelist", ff.PROTOCOLS, "-i", url, "-map", f"0:{stream}", "-an", "-sn", "-dn",
            "-fps_mode", "passthrough", *(["-frames:v", str(limit)] if limit else []),
            "-vf", chain, "-f", "rawvideo", "-pix_fmt", "gray",
            "-s", f"{w}x{h}", "pipe:"]
    # refuse_cut_short: a file that ends before its index says (ffmpeg: "File ended prematurely", exit 0)
    # raises CorruptFile after its last frame, so the search can say its read stopped short
    for buf in ff.pipe_chunks(args, url, w * h, refuse_cut_short=True):
        if len(buf) < w * h:
            return
        yield np.frombuffer(buf, np.uint8).reshape(h, w)


def detect_video(path: str | os.PathLike[str], *, key: bytes, method: str | None = VIDEO_METHOD,
                 threshold: float = DEFAULT_THRESHOLD, max_frames: int = MAX_FRAMES,
                 search_scale: bool = True, info: VideoInfo | None = None) -> VideoWatermarkResult:
    """Look for a watermark made with ``key`` in a video's frames; stops as soon as it is decided.

    Parameters
    ----------
    path : path-like
        A video file (any container and codec ffmpeg decodes).
    key : bytes
        The key used to embed.
    method : {"dct", "dwt"} or None
        Method to look for: by default the one the video labeler uses (``"dwt"``); None tries both
        (the p-value counts both).
    threshold : float
        Largest p-value reported as found (default 1e-6).
    max_frames : int
        Frames read at most (from the start of the file, at least 1); the p-value counts every checkpoint
        up to it.
    search_scale : bool
        Estimate a rescale from the frames when the video as given does not decode.
    info : VideoInfo, optional
        The file's :func:`labeler.media.video.video_info`, when the caller has it (saves a probe).

    Returns
    -------
    VideoWatermarkResult
        With ``read_error`` (why the frames stopped before the end, else None), ``frames_read`` (frames
        decoded before the decision) and ``zero_bit_p_value``, the p-value of presence alone (the strongest
        pilot correlation under the same union bound, no payload needed: a mark too damaged to decode can
        still be shown present). ``scale`` is the mark's lattice scale in the view it was read in: 1.0 as
        decoded, 0.5 on the halved frames (a 2x-zoomed mark read intact), other values after a rescale. A file
        with a display rotation is read as shown, then (if nothing is found) as stored: each read at
        ``threshold / 2``, the p-values doubled, ``frames_read`` the frames of both reads.

    Raises
    ------
    UnsupportedFormat
        No video stream.
    CorruptFile
        ffmpeg cannot read the file (a decoding error after some frames, or a file that ends before
        its index says, only ends the reading: ``read_error`` says why).
    WatermarkError
        Bad key or method, ``max_frames`` under 1, ``path`` given as bytes (this reads a file; use
        :func:`detectors.verify` for a file in memory), or frames under 128 px a side.
    LabelerError
        ``path`` names no file, or a folder or other non-regular file (``InvalidArgument`` when it is
        not a path at all).
    """
    _check_call(path, max_frames)
    key = check_key(key)
    schemes = [_scheme(method)] if method is not None else list(METHODS.values())
    info = video_info(path) if info is None else info
    turn = round((info.rotation or 0) / 90) % 4
    h, w = (info.width, info.height) if turn % 2 else (info.height, info.width)
    if min(h, w) < MIN_SIDE:
        from labeler.watermark.payload import WatermarkError

        raise WatermarkError(f"video frames of {w}x{h} are too small for the watermark "
                             f"(at least {MIN_SIDE} px)")
    if not turn:
        return _detect_view(os.fspath(path), info, (h, w), schemes, key, threshold, max_frames, search_scale)
    # A display rotation (a phone's tag, or one added later by a lossless remux or an editor's "rotate"):
    # the labeler marks the frames as shown and writes them upright and untagged, so a tagged file is
    # read as shown first; if that finds nothing, as stored (a marked file tagged afterwards: the tag
    # turns what ffmpeg decodes, not the mark). Each read is decided at threshold / 2 and the p-values
    # are doubled (Bonferroni), as detectors.watermark.detect_as_shown does for EXIF-tagged pictures.
    best = _detect_view(os.fspath(path), info, (h, w), schemes, key, threshold / 2, max_frames,
                        search_scale)
    frames = best.frames_read
    if not best.found:
        stored = _detect_view(os.fspath(path), info, (info.height, info.width), schemes, key, threshold / 2,
                              max_frames, search_scale, autorotate=False)
        frames += stored.frames_read
        if stored.found or stored.p_value < best.p_value:
            best = stored
    return replace(best, p_value=min(1.0, 2 * best.p_value), trials=2 * best.trials, threshold=threshold,
                   zero_bit_p_value=min(1.0, 2 * best.zero_bit_p_value), frames_read=frames)


def _detect_view(path: str, info: VideoInfo, size: tuple[int, int], schemes: list[Scheme], key: bytes,
                 threshold: float, max_frames: int, search_scale: bool,
                 autorotate: bool = True) -> VideoWatermarkResult:
    """One streaming search of the frames of ``size`` (height, width), as shown (``autorotate``) or as
    stored."""
    h, w = size
    points = checkpoints(max_frames)
    tries = scale_tries(h, w) if search_scale else 0
    # one view: the frames shrunk by the zoom the labeler uses at this size (exact box average), where an
    # intact mark is the image core's mark; other sizes are rescale candidates in that view
    view = zoom_for(h, w)
    standard = rescale_candidates(min(h, w), view) if search_scale else []
    per_read = sum(s.shifts for s in schemes)
    reads = READS_AS_GIVEN + (tries + len(standard)) * len(schemes)
    trials = per_read * reads * (len(points) + 1)
    search = _Search(schemes, key, trials, threshold, tries, points, (view,), min(h, w), standard,
                     prescaled=True)
    return search.run(_frames(path, h, w, info.stream, view, max(points), autorotate=autorotate))


def _check_call(path: object, max_frames: object) -> None:
    """Refuse arguments :func:`detect_video` cannot use, in one line (before any file is opened)."""
    from labeler.watermark.payload import WatermarkError

    if isinstance(path, (bytes, bytearray, memoryview)):
        # a bytes path is legal in os.fspath, but here it is almost always a file's content, and the
        # FileNotFoundError that follows quotes all of it
        raise WatermarkError(f"detect_video reads a video file: pass its path, not {len(path)} bytes "
                             "(detectors.verify takes a file's bytes)")
    from labeler.atomic import check_input

    check_input(path)  # type: ignore[arg-type] - None, a missing file, a folder: one line, before ffmpeg
    if isinstance(max_frames, bool) or not isinstance(max_frames, numbers.Integral) or max_frames < 1:
        raise WatermarkError(f"max_frames must be a whole number of frames, at least 1, got {max_frames!r}")


#: Shorter sides (pixels) videos are published at: a rescale between two of them is snapped to its ratio.
STANDARD_HEIGHTS = (240, 360, 480, 540, 576, 720, 1080, 1440, 2160)
#: Largest lattice scale the search reads (the image detector's).
MAX_SCALE = 2.2
#: How far (relative) a lattice estimate may be from a standard ratio to be snapped to it.
SNAP_TOLERANCE = 0.04


def _zoom_of_side(side: int) -> int:
    return next((z for least, z in ZOOMS if side >= least), 1)


def snap_scale(mat: np.ndarray, side: int, view: int) -> np.ndarray:
    """Replace a near-isotropic lattice estimate by the exact scale of a standard-size source.

    The estimate's relative error (~0.5-1 % on 8 frames) smears the fold over a frame several tiles
    wide; videos are rescaled between a few standard sizes, so when the source side implied by the
    estimate (under each zoom hypothesis) is within :data:`SNAP_TOLERANCE` of a standard side whose zoom
    is that zoom, the exact scale is used instead. Only the frame size enters, never the key, so the
    p-value is unaffected.

    Parameters
    ----------
    mat : ndarray (2, 2)
        Lattice matrix in units of the 128 px tile, in the view's pixels.
    side : int
        Shorter side of the frames as decoded (pixels).
    view : int
        How many times the view shrinks the frames.
    """
    if abs(mat[0, 1]) > 0.01 or abs(mat[1, 0]) > 0.01 or abs(mat[0, 0] / mat[1, 1] - 1) > 0.02:
        return mat
    s = 0.5 * float(mat[0, 0] + mat[1, 1])
    best = None
    for h0 in STANDARD_HEIGHTS:
        zoom = _zoom_of_side(h0)
        exact = zoom * side / h0 / view  # the lattice scale of a mark made on an h0 source, in this view
        err = abs(s / exact - 1)
        if err < SNAP_TOLERANCE and (best is None or err < best[0]):
            best = (err, exact)
    return mat if best is None else np.eye(2) * best[1]


def rescale_candidates(side: int, view: int) -> list[float]:
    """Lattice scales (in the view's pixels) read from the first frame: the plausible histories of a frame.

    A crop without rescale of a source marked at another zoom (``zoom / view``), and a rescale from
    every standard source side (``zoom(h0) * side / h0 / view``: 1080p -> 480p is 1.33 in the view of
    480p frames, 1080p -> 720p is 1.5 in the halved view of 720p frames). Scales within 1 % of 1 (read
    as given anyway) or of each other are dropped, and only :data:`MIN_SCALE` to :data:`MAX_SCALE` kept.
    """
    raw = [z / view for _, z in ZOOMS] + [1.0 / view]
    raw += [_zoom_of_side(h0) * side / h0 / view for h0 in STANDARD_HEIGHTS if h0 > side * 1.01]
    out: list[float] = []
    for c in raw:
        if MIN_SCALE <= c <= MAX_SCALE and abs(c - 1) > 0.01 and all(abs(c / o - 1) > 0.01 for o in out):
            out.append(c)
    return out


def _shrink(y: np.ndarray, factor: int) -> np.ndarray:
    """Luma shrunk ``factor`` times, each pixel the exact mean of a ``factor`` x ``factor`` block (undoes
    the zoom of the mark; an integer INTER_AREA reduction is that mean)."""
    if factor == 1:
        return y
    h, w = y.shape
    return cv2.resize(y[: h // factor * factor, : w // factor * factor], (w // factor, h // factor),
                      interpolation=cv2.INTER_AREA)


class _Search:
    """The streaming search: frame sums per geometry, reads at checkpoints, stop at the first success."""

    def __init__(self, schemes: list[Scheme], key: bytes, trials: int, threshold: float, tries: int,
                 points: list[int], views: tuple[int, ...] = (1,), side: int = 0,
                 standard: list[float] | None = None, prescaled: bool = False) -> None:
        # prescaled: the frames arrive already shrunk to the (single) view
        self.prescaled = prescaled and len(views) == 1
        self.schemes, self.key, self.trials, self.threshold = schemes, key, trials, threshold
        self.tries, self.points, self.side = tries, set(points), side
        self.period = max(s.tile_px for s in schemes)
        self.z_min = _z_min(trials, threshold)
        self.z_list = _z_min(trials, threshold, LIST_SIZE)
        # one frame sum per view (the frames shrunk by that factor; detect_video uses one view)
        self.views = {v: FoldSum(self.period) for v in views}
        # (method, view, lattice matrix in that view, reported scale, rotation, frame sum)
        self.geometries: list[tuple[Scheme, int, np.ndarray, tuple[float, float], float, FoldSum]] = []
        # the view the lattice is estimated on (a zoomed mark's band lies below the geometry image's
        # high-pass at full size; in the shrunk view it is back near its native band)
        self.geo_view = max(views)
        self.buffer: list[np.ndarray] = []
        for f in standard or []:  # known before any frame is read: their sums start at the first frame
            for scheme in schemes:
                self.geometries.append((scheme, self.geo_view, np.eye(2) * f, (f, f), 0.0,
                                        FoldSum(scheme.tile_px)))
        self.estimated = False
        self.read_error: str | None = None
        self.attempts: list[_Attempt] = []
        # the frames (in the geometry view) not yet given to the rescale candidates: their sum and count
        self.group: np.ndarray | None = None
        self.grouped = 0

    def run(self, frames) -> VideoWatermarkResult:  # noqa: ANN001 - an iterator of luma arrays
        n = 0
        best = None
        try:
            for y in frames:
                n += 1
                self._add(y, n)
                if n in self.points:
                    best = self._read_all()
                    if best is not None or n >= max(self.points) or self._futile(n):
                        break
        except CorruptFile as exc:
            if n == 0:
                raise
            # the frames before the error are read as they are, but the result says the read was cut
            self.read_error = f"{READ_STOPPED} {n}: {exc}"
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # kills the decoder when we stop early
        if best is None and n and n not in self.points:
            best = self._read_all()  # the video ended between checkpoints: one last read
        return self._result(best, n)

    def _futile(self, n: int) -> bool:
        """True when, at checkpoint ``n``, the strongest pilot z is too far below ``z_min`` to go on."""
        strongest = max((a.z for a in self.attempts), default=0.0)
        return n >= FUTILE_FROM and strongest < self.z_min - FUTILE_MARGIN

    def _add(self, y: np.ndarray, n: int) -> None:
        imgs = {v: y if self.prescaled else _shrink(y, v) for v in self.views}
        for v, acc in self.views.items():
            acc.add(prefilter_parts(imgs[v]))
        if self.geometries:
            g = imgs[self.geo_view]
            if self.group is None:
                self.group = g.astype(np.float32)
            else:
                self.group += g
            self.grouped += 1
            if self.grouped >= GROUP or n in self.points:
                self._flush()
        if self.tries and not self.estimated and n <= GEOMETRY_FRAMES:
            self.buffer.append(geometry_image(imgs[self.geo_view]))
            if n == GEOMETRY_FRAMES:
                self._choose_geometries()

    def _flush(self) -> None:
        """Add the mean of the grouped frames to every rescale candidate's sum."""
        if self.group is None or not self.grouped:
            return
        mean = self.group * np.float32(1.0 / self.grouped)
        for _, _, mat, _, _, acc in self.geometries:
            self._add_resampled(mean, mat, acc)
        self.group, self.grouped = None, 0

    @staticmethod
    def _add_resampled(y: np.ndarray, mat: np.ndarray, acc: FoldSum) -> None:
        # a centred window of the same size every frame, so the tile phase stays the same
        h, w = y.shape
        ch = min(h, int(np.ceil(RESAMPLE_SIDE * float(np.hypot(mat[0, 0], mat[1, 0])))))
        cw = min(w, int(np.ceil(RESAMPLE_SIDE * float(np.hypot(mat[0, 1], mat[1, 1])))))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        y2 = _resample(y[y0 : y0 + ch, x0 : x0 + cw], mat)
        if y2 is not None:
            acc.add(prefilter_parts(y2))

    def _choose_geometries(self) -> None:
        """Lattice candidates from the mean geometry image of the first frames (the mark adds up).

        Each method gets its own candidates, in units of its own tile (a ``dwt`` mark repeats every
        256 px, a ``dct`` one every 128 px, so the same lattice means a different rescale).
        """
        self.estimated = True
        if self._best() is not None:
            return
        mean = np.mean(self.buffer, axis=0, dtype=np.float32)
        self.buffer = []
        for scheme in self.schemes:
            found = scale_candidates(mean, scheme.tile_px, lo=MIN_SCALE, count=self.tries + 1)
            v = self.geo_view
            snapped = [snap_scale(c, self.side, v) for c in found]
            known = [g[2] for g in self.geometries if g[0] is scheme and g[1] == v]
            fresh = [c for c in snapped if np.abs(c - np.eye(2)).max() > 0.004
                     and all(np.abs(c - k).max() > 0.004 for k in known)]
            for mat in fresh[: self.tries]:
                geometry = (float(np.hypot(mat[0, 0], mat[1, 0])), float(np.hypot(mat[0, 1], mat[1, 1])))
                angle = float(np.degrees(np.arctan2(mat[1, 0] - mat[0, 1], mat[0, 0] + mat[1, 1])))
                self.geometries.append((scheme, v, mat, geometry, angle, FoldSum(scheme.tile_px)))
        # the frames before this one are not kept; the candidates' sums start here (bounded memory)

    def _read_all(self) -> _Attempt | None:
        for v, acc in self.views.items():
            fast = []
            scale = (1.0 / v, 1.0 / v)
            for scheme in self.schemes:
                fast.append(_read(acc, scheme, self.key, scale, z_min=self.z_min, half=True,
                                  z_list=self.z_list))
                self.attempts.append(fast[-1])
                if self._best():
                    return self._best()
            for scheme, a in zip(self.schemes, fast, strict=True):
                if a.z >= FULL_READ_MIN_Z:
                    self.attempts.append(_read(acc, scheme, self.key, scale, z_min=self.z_min,
                                                      z_list=self.z_list))
                    if self._best():
                        return self._best()
        for scheme, _, _, geometry, angle, acc in self.geometries:
            if acc.frames == 0:
                continue
            self.attempts.append(_read(acc, scheme, self.key, geometry, angle, z_min=self.z_min,
                                              z_list=self.z_list))
            if self._best():
                return self._best()
        return None

    def _best(self) -> _Attempt | None:
        good = [a for a in self.attempts if a.crc_ok and _p_value(a, self.trials) <= self.threshold]
        return min(good, key=lambda a: _p_value(a, self.trials)) if good else None

    def _result(self, best: _Attempt | None, n: int) -> VideoWatermarkResult:
        if not self.attempts:
            return VideoWatermarkResult(found=False, payload=None, p_value=1.0, method=None,
                                        trials=self.trials, threshold=self.threshold, frames_read=n,
                                        reason="no frame could be read", read_error=self.read_error)
        found = best is not None
        a = best if best is not None else max(self.attempts, key=lambda x: x.z)
        # presence alone (the pilot's z, no payload): the same union bound without the CRC factor
        strongest = max(x.z for x in self.attempts)
        presence = min(1.0, self.trials * null_tail(strongest))
        return VideoWatermarkResult(found=found, payload=a.payload if found else None,
                                    p_value=_p_value(a, self.trials), method=a.scheme.name, z=a.z,
                                    scale=a.scale, rotation=a.rotation, offset=a.offset,
                                    bit_errors=a.bit_errors if found else None, trials=self.trials,
                                    threshold=self.threshold, frames_read=n, zero_bit_p_value=presence,
                                    read_error=self.read_error)

