"""Find the visible label of :func:`labeler.visible.add_video_label` in a video: start, middle, end.

How. Frames are sampled at t = 0.5, 1.0, ... s (a ``select`` filter, decoded by ffmpeg at the image
detector's working size, grey, through a pipe; stopping the read kills ffmpeg) and passed to
:func:`detectors.visible.detect_image_label`. Middle and end (``intervals``, when the duration is
known): three frames each, :data:`VIDEO_INTERVAL_OFFSETS` around the midpoint and around 1 s before the
end. The first frame showing the label is searched in full; later frames are only rechecked at its
place, wording and scale (a few small matches), falling back to a full search when that fails.

Two paths. First (:func:`_unlabeled_start`), one ffmpeg run reads the start samples that would have to
miss for the start not to carry the label (3 of the 4 up to 2 s) followed by the middle and end
windows, all without unreferenced frames: when none of those start samples shows the label, that run
gives the whole answer (an unlabeled video: one decoding run, 3 + 1 + 1 full searches; with one
keyframe per 10 s it is decoded once from the first frame instead of twice). At its first hit the
start is scanned exactly instead (:func:`_scan_start`), the window frames having been read on into
memory first (six small grey frames; not with ``stop_at_start``, which abandons the run at once): every
frame of the start decoded, every sample up to ``seconds_probe`` looked at, then sampling goes on only
while the label is still found, up to :data:`VIDEO_MAX_SECONDS`, so ``seconds`` comes from the exact
frames; then the middle and end windows are judged (unless ``stop_at_start``), from the start scan's
samples where it passed them, else from the frames kept (or, failing those, in one more ffmpeg run that
opens the file once per seek, ``-ss`` before ``-i``, the container's keyframe index saying whether a
seek or decoding through is cheaper: :func:`_segments`). So a video costs one or two decoding runs
(plus the probe; three at most) and about 30 frame looks, whatever its length.

The start carries the label when at least 2 of its samples show it (all of them when there are
fewer), so a single look-alike frame does not count; the middle and the end when all three of theirs
do (the label is seen across the second around the midpoint, or across 1.5 .. 0.5 s before the end),
so a start label that reaches past the midpoint of a short clip is not also reported as a middle one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from detectors.visible.common import VisibleResult
from detectors.visible.image import (
    DEFAULT_TEXTS,
    DEFAULT_THRESHOLD,
    SCALE_STEP,
    WORK_SIDE,
    _flat,
    _luma,
    _template,
    detect_image_label,
)
from labeler.visible.image import DEFAULT_STYLE, LabelStyle

__all__ = ["VIDEO_INTERVAL_OFFSETS", "VIDEO_MAX_SECONDS", "VIDEO_STEP", "VideoLabelResult",
           "detect_video_label"]


#: Spacing (s) of the frames :func:`detect_video_label` samples; also the resolution of ``seconds``.
VIDEO_STEP = 0.5
#: Latest time (s) :func:`detect_video_label` follows a label to.
VIDEO_MAX_SECONDS = 10.0
#: Sample times (s) around the centre of the middle interval and of the end interval (centred 1 s
#: before the end): the labeler's shortest interval is 2 s, so all three lie inside it.
VIDEO_INTERVAL_OFFSETS = (-0.5, 0.0, 0.5)
# Start samples that must show the label for the start to count (fewer when the video has fewer).
_VIDEO_MIN_HITS = 2
# Middle and end windows at most this far apart (s) are decoded in one run (see _later_intervals).
_JOIN_GAP_S = 10.0


@dataclass
class VideoLabelResult(VisibleResult):
    """Outcome of :func:`detect_video_label`: a :class:`VisibleResult` with the intervals found.

    Attributes
    ----------
    kind : str
        ``"video-text"``.
    seconds : float or None
        The last sampled time (s) at which the label was still found at the start; None when the
        start does not carry it.
    intervals : tuple of str
        Which of ``"start"``, ``"middle"``, ``"end"`` carry the label (in that order).
    not_read : tuple of str
        Windows (``"middle"``, ``"end"``) not decoded because the start already settled the answer
        (``stop_at_start``); their absence from ``intervals`` then says nothing about them.
    """

    kind: str = "video-text"
    intervals: tuple[str, ...] = ()
    not_read: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The ``layers.visible`` entry of a verify report (with ``intervals``, and ``not_read`` when set)."""
        out = super().to_dict()
        out["intervals"] = list(self.intervals)
        if self.not_read:
            out["not_read"] = list(self.not_read)
        return out


def _work_size(info: Any) -> tuple[int, int]:
    """``(height, width)`` frames are decoded at: the image detector's working size, never larger.

    :func:`detect_image_label` reduces every image so its shorter side is :data:`WORK_SIDE` before
    matching; letting ffmpeg's scaler do it (area averaging, grey) keeps full-size RGB frames out of
    the pipe and out of Python, and the detector then sees the same picture. The picture is the one a
    player shows (:func:`labeler.media.video.displayed_size`: upright, as the labeler drew on it, and
    for non-square pixels the width times the sample aspect ratio, which the scaler un-squeezes), so
    the label's size and box come out in displayed geometry.
    """
    from labeler.media.video import displayed_size

    height, width = displayed_size(info)
    factor = min(1.0, WORK_SIDE / min(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def _select(times: list[float], seek: float, half: float) -> str:
    """A ``select`` expression taking the first frame at or after each time (s), half a frame early.

    Half a frame early, so the frame stamped exactly at T (the last one a between(t,0,T) overlay covers)
    is the one taken. After an input seek, t counts from the seek point. prev_t is NaN on the first
    frame (lt() is then 0): isnan() lets a late-starting first frame count.
    """
    return "+".join(f"gte(t,{t - seek - half:.4f})*(lt(prev_t,{t - seek - half:.4f})+isnan(prev_t))"
                    for t in times)


def _video_frames(path: str | os.PathLike[str], info: Any, segments: list[tuple[float, list[float]]],
                  skip_noref: bool = False) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t, frame)``: the upright grey frame at or just after each time of each segment (s).

    ``segments`` are ``(seek, times)`` in time order. One ffmpeg run: the file is opened once per segment,
    each input seeking to its ``seek`` (``-ss`` before ``-i``: jump to the keyframe before it, decode
    from there) and read no further than its last time; each gets a ``select`` filter, the selected
    frames of all segments are concatenated, then ffmpeg's area scaler takes them to :func:`_work_size`
    and grey (8 bits), through a pipe. One process for all the places looked at: an ffmpeg start costs
    about as much as decoding a second of 1080p. The decoder skips the deblocking filter (invisible at
    the working size, ~10 % of H.264 decoding); ``skip_noref`` also drops frames no other frame refers
    to (most B-frames: about a quarter of the decoding of a typical H.264 stream); a sample then falls
    on the next decoded frame, a frame or two later. Stopping the iteration kills ffmpeg.
    """
    from labeler.media import ffmpeg as ff

    height, width = _work_size(info)
    half = 0.5 / info.fps
    url = ff.input_url(path)
    args = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    graph = []
    for i, (seek, times) in enumerate(segments):
        if skip_noref:
            args += ["-skip_frame", "noref"]
        args += ["-skip_loop_filter", "all", "-protocol_whitelist", ff.PROTOCOLS]
        if seek > 0:
            args += ["-ss", f"{seek:.3f}"]
        args += ["-t", f"{times[-1] - seek + 0.5:.3f}", "-i", url]
        # the main video stream, never a cover picture
        graph.append(f"[{i}:{info.stream}]select='{_select(times, seek, half)}'[s{i}]")
    joined = "".join(f"[s{i}]" for i in range(len(segments)))
    if len(segments) > 1:
        graph.append(f"{joined}concat=n={len(segments)}:v=1:a=0[c]")
        joined = "[c]"
    graph.append(f"{joined}scale={width}:{height}:flags=area,format=gray[out]")
    args += ["-filter_complex", ";".join(graph), "-map", "[out]", "-fps_mode", "passthrough",
             "-f", "rawvideo", "-pix_fmt", "gray", "pipe:"]
    times = [t for _, ts in segments for t in ts]
    frame_bytes = width * height
    chunks = ff.pipe_chunks(args, url, frame_bytes)
    try:
        for at, buf in zip(times, chunks, strict=False):
            if len(buf) < frame_bytes:
                return
            yield at, np.frombuffer(buf, np.uint8).reshape(height, width)
    finally:
        chunks.close()  # kills ffmpeg when we stopped early


def _recheck(image: np.ndarray, found: VisibleResult, threshold: float, style: LabelStyle) -> VisibleResult:
    """Is the label ``found`` (by :func:`detect_image_label` in a frame of the same size) still in ``image``?

    Only its wording, at its ink height and one ladder step either side, around its box (a quarter of
    its height of slack): three small ``matchTemplate`` calls instead of the full search, so a label
    followed over many frames costs about one full search.
    """
    assert found.box is not None and found.height_ratio is not None and found.text is not None
    grey = _luma(image)
    height, width = grey.shape
    factor = min(1.0, WORK_SIDE / min(height, width))
    if factor < 1:
        grey = cv2.resize(grey, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)
    wh, ww = grey.shape
    bx, by, bw, bh = (v * factor for v in found.box)
    best = 0.0
    for ink in (found.height_ratio * min(wh, ww) * k for k in (1 / SCALE_STEP, 1.0, SCALE_STEP)):
        tpl, _ = _template(found.text, ink, style)
        th, tw = tpl.shape
        pad = max(3, math.ceil(0.25 * max(th, bh)))
        x0, y0 = max(0, math.floor(bx) - pad), max(0, math.floor(by) - pad)
        x1, y1 = min(ww, math.ceil(bx + max(bw, tw)) + pad), min(wh, math.ceil(by + max(bh, th)) + pad)
        region = grey[y0:y1, x0:x1]
        if region.shape[0] < th or region.shape[1] < tw:
            continue
        result = cv2.matchTemplate(region, tpl, cv2.TM_CCOEFF_NORMED)
        result[~np.isfinite(result)] = 0
        result[_flat(region, th, tw)] = 0
        best = max(best, float(np.abs(result).max()))
    if best < threshold:
        return VisibleResult(False, score=best)
    return VisibleResult(True, position=found.position, height_ratio=found.height_ratio, score=best,
                         text=found.text, box=found.box)


class _Judge:
    """Looks at one frame: the first full-search hit becomes the anchor, later frames are rechecked there."""

    def __init__(self, texts: tuple[str, ...], threshold: float, style: LabelStyle) -> None:
        self.texts, self.threshold, self.style = texts, threshold, style
        self.anchor: VisibleResult | None = None

    def __call__(self, frame: np.ndarray) -> VisibleResult:
        if self.anchor is not None:
            again = _recheck(frame, self.anchor, self.threshold, self.style)
            if again.present:
                return again
        result = detect_image_label(frame, texts=self.texts, threshold=self.threshold, style=self.style)
        if result.present and self.anchor is None:
            self.anchor = result
        return result


def _start_times(info: Any) -> list[float]:
    """Sample times (s) of the start scan: every :data:`VIDEO_STEP` up to :data:`VIDEO_MAX_SECONDS`."""
    limit = VIDEO_MAX_SECONDS if info.duration is None else min(VIDEO_MAX_SECONDS, info.duration)
    times = [VIDEO_STEP * k for k in range(1, int(limit / VIDEO_STEP + 1e-9) + 1)]
    if not times:
        times = [0.0]  # a clip shorter than one step: look at its first frame
    return times


def _scan_start(path: str | os.PathLike[str], info: Any, probe_until: float, judge: _Judge,
                seen: dict[float, VisibleResult]) -> None:
    """Judge the start samples into ``seen``, stopping at the first miss past ``probe_until``."""
    times = _start_times(info)
    probed = sum(1 for t in times if t <= probe_until + 1e-9)
    frames = _video_frames(path, info, [(0.0, times)])
    try:
        for k, (at, frame) in enumerate(frames):
            result = seen[at] = judge(frame)
            if not result.present and at >= probe_until:
                break  # past the always-examined window and the label is gone: done
            hits = sum(r.present for r in seen.values())
            if hits + (probed - k - 1) < min(_VIDEO_MIN_HITS, probed):
                break  # too few samples left for the start to carry the label: it does not
    finally:
        frames.close()


def _start_run(seen: dict[float, VisibleResult]) -> tuple[bool, float | None]:
    """Does the start carry the label, and the last sample of its unbroken run of hits."""
    start = sorted(seen.items())
    hits = [at for at, r in start if r.present]
    carries = bool(start) and len(hits) >= min(_VIDEO_MIN_HITS, len(start))
    # How long the start label lasts: the run of hits from the first one to the first miss after it
    # (a middle or end label further on is not part of it).
    run_end: float | None = None
    for at, r in start:
        if r.present:
            run_end = at
        elif run_end is not None:
            break
    return carries, run_end


def _covered(wanted: list[float], last: float,
             seen: dict[float, VisibleResult]) -> list[VisibleResult] | None:
    """The start scan's nearest samples for ``wanted`` (s) when it passed them all, else None."""
    covered = all(any(abs(t - s) <= VIDEO_STEP / 2 + 1e-6 for s in seen) for t in wanted)
    if covered and wanted[-1] <= last + 1e-6:
        return [seen[min(seen, key=lambda s, t=t: abs(s - t))] for t in wanted]
    return None


def _segments(windows: list[list[float]], keyframes: np.ndarray | None) -> list[tuple[float, list[float]]]:
    """Group the windows (s, in time order) into ``(seek, times)`` decoding segments.

    A window joins the one before it when seeking to it would restart decoding no later than where the
    previous one ended: its keyframe (from the container's index,
    :func:`labeler.media.video_index.keyframe_times`) is at or before the previous window's last time,
    as with x264's default of one keyframe per 10 s. Without an index, windows at most
    :data:`_JOIN_GAP_S` apart are joined.
    """
    segments: list[tuple[float, list[float]]] = []
    for wanted in windows:
        seek = max(0.0, wanted[0] - VIDEO_STEP / 2)
        if segments:
            previous = segments[-1][1][-1]
            if keyframes is None or not len(keyframes):
                join = 0 < wanted[0] - previous <= _JOIN_GAP_S
            else:
                before = keyframes[keyframes <= seek + 1e-6]
                join = (before[-1] if len(before) else 0.0) <= previous
            if join:
                segments[-1] = (segments[-1][0], segments[-1][1] + list(wanted))
                continue
        segments.append((seek, list(wanted)))
    return segments


def _judge_windows(path: str | os.PathLike[str], info: Any, windows: list[list[float]], judge: _Judge,
                   seen: dict[float, VisibleResult], *, clean_first: bool = False,
                   keep: list[tuple[float, np.ndarray]] | None = None) -> list[bool] | None:
    """Do all the samples of each window (s; windows in time order, disjoint) show the label?

    One ffmpeg run for all of them (:func:`_segments` says which are decoded through and which are
    sought), without the unreferenced frames (a window only needs frames somewhere inside it, not the
    exact one at a boundary); judged by :func:`_judge_frames`. ``clean_first``: the first window is
    start samples that must all miss; its first hit ends the judging and returns None, after the frames
    of the other windows are read into ``keep`` when it is given (else the run is abandoned at once).
    """
    from labeler.media.video_index import keyframe_times

    segments = _segments(windows, keyframe_times(path, info.stream))
    sampled = _video_frames(path, info, segments, skip_noref=True)
    try:
        judged = _judge_frames(sampled, windows, judge, seen, clean_first=clean_first)
        if judged is None and keep is not None:
            wanted = sum(len(w) for w in windows[1:])
            for at, frame in sampled:
                if at >= windows[1][0] - 1e-9:
                    keep.append((at, frame))
                if len(keep) == wanted:
                    break
        return judged
    finally:
        sampled.close()


def _judge_frames(sampled: Iterator[tuple[float, np.ndarray]], windows: list[list[float]], judge: _Judge,
                  seen: dict[float, VisibleResult], *, clean_first: bool = False) -> list[bool] | None:
    """Judge the frames of ``windows`` (``sampled``: ``(t, frame)`` in window order) as they come.

    A window's first miss settles it (its later frames are not judged); reading stops once every window
    is settled. ``clean_first``: see :func:`_judge_windows` (None at the first window's first hit, or
    when its samples were not all read).
    """
    owner = [i for i, window in enumerate(windows) for _ in window]
    results: list[list[VisibleResult]] = [[] for _ in windows]
    settled = [False] * len(windows)
    for k, (at, frame) in enumerate(sampled):
        i = owner[k]
        if settled[i]:
            continue
        seen[at] = judge(frame)
        results[i].append(seen[at])
        complete = len(results[i]) == len(windows[i])
        if clean_first and i == 0:
            if seen[at].present:
                return None
            settled[0] = complete
        else:
            settled[i] = not seen[at].present or complete
        if all(settled):
            break
    if clean_first and len(results[0]) < len(windows[0]):
        return None  # the start samples were not all read: let the exact start scan decide
    return [len(r) == len(w) and all(x.present for x in r) for r, w in zip(results, windows, strict=True)]


def _interval_windows(info: Any) -> list[list[float]]:
    """Sample times (s) of the middle and the end windows (needs ``info.duration``)."""
    duration = info.duration
    newest = max(0.0, duration - 1.0 / info.fps)
    return [sorted({min(newest, max(0.0, centre + d)) for d in VIDEO_INTERVAL_OFFSETS})
            for centre in (duration / 2, duration - 1.0)]


def _later_intervals(path: str | os.PathLike[str], info: Any, judge: _Judge, seen: dict[float, VisibleResult],
                     kept: Sequence[tuple[float, np.ndarray]] = ()) -> list[str]:
    """Which of ``"middle"`` and ``"end"`` carry the label (needs ``info.duration``).

    Windows the start scan already passed reuse its samples; the others are judged from ``kept``
    (``(t, frame)`` of both windows, read by :func:`_unlabeled_start` before it gave up) when it holds
    all their samples, else in one ffmpeg run (:func:`_judge_windows`).
    """
    last = max(seen, default=0.0)
    names = ("middle", "end")
    carries: dict[str, bool] = {}
    todo = []
    for name, wanted in zip(names, _interval_windows(info), strict=True):
        reused = _covered(wanted, last, seen)
        if reused is not None:
            carries[name] = all(r.present for r in reused)
        else:
            todo.append((name, wanted))
    if todo:
        wanted = [w for _, w in todo]
        times = [t for w in wanted for t in w]
        frames = [(at, frame) for at, frame in kept if at in times]
        if [at for at, _ in frames] == times:
            judged = _judge_frames(iter(frames), wanted, judge, seen)
        else:
            judged = _judge_windows(path, info, wanted, judge, seen)
        assert judged is not None
        carries.update((name, ok) for (name, _), ok in zip(todo, judged, strict=True))
    return [name for name in names if carries.get(name)]


def _unlabeled_start(path: str | os.PathLike[str], info: Any, probe_until: float, judge: _Judge,
                     seen: dict[float, VisibleResult],
                     keep: list[tuple[float, np.ndarray]] | None) -> list[str] | None:
    """The fast path of a start without the label: the intervals found, or None to take the exact path.

    The start samples the exact scan would need to see missing before it gives up (3 of the 4 up to
    2 s) and the middle and end windows are read in one ffmpeg run without unreferenced frames (so a
    video with one keyframe is decoded once, not twice from its first frame). A sample then falls a frame
    or two late, which can only turn the last hit of a label into a miss, never create a hit out of
    misses; so when none of those start samples shows the label, the exact scan would not find it
    carried either. Any hit ends the judging (None): the caller scans the start exactly, as ``seconds``
    needs the exact frames; with ``keep`` the window frames are read on into it first (judged later,
    after the exact scan, as they would have been), else the run is abandoned at once. None too when
    the windows do not lie wholly after those samples.
    """
    times = _start_times(info)
    probed = sum(1 for t in times if t <= probe_until + 1e-9)
    first = times[: probed - min(_VIDEO_MIN_HITS, probed) + 1]
    windows = [first, *_interval_windows(info)]
    if any(a[-1] + VIDEO_STEP / 2 >= b[0] for a, b in zip(windows, windows[1:], strict=False)):
        return None  # a short clip: windows overlap the start or each other
    judged = _judge_windows(path, info, windows, judge, seen, clean_first=True, keep=keep)
    if judged is None:
        return None
    return [name for name, ok in zip(("middle", "end"), judged[1:], strict=True) if ok]


def _examine(path: str | os.PathLike[str], info: Any, probe_until: float, intervals: bool,
             stop_at_start: bool, judging: tuple[tuple[str, ...], float, LabelStyle],
             seen: dict[float, VisibleResult]) -> tuple[list[str], float | None, tuple[str, ...]]:
    """The intervals carrying the label, the start run's last hit (s) and the windows not read."""
    whole = intervals and bool(info.duration)
    kept: list[tuple[float, np.ndarray]] = []
    if whole:
        found = _unlabeled_start(path, info, probe_until, _Judge(*judging), seen,
                                 None if stop_at_start else kept)
        if found is not None:
            return found, None, ()
        seen.clear()  # the fast path's samples are not the exact ones: start again
    judge = _Judge(*judging)
    _scan_start(path, info, probe_until, judge, seen)
    carries, run_end = _start_run(seen)
    found = ["start"] if carries else []
    if whole and carries and stop_at_start:
        return found, run_end, ("middle", "end")
    if whole:
        found += _later_intervals(path, info, judge, seen, kept)
    return found, run_end, ()


def _video_box(box: tuple[int, ...] | None, info: Any) -> tuple[int, ...] | None:
    """A box found at the working size (:func:`_work_size`), in the video's upright displayed pixels
    (its own pixels when they are square)."""
    from labeler.media.video import displayed_size

    if box is None:
        return None
    (full_h, full_w), (work_h, work_w) = displayed_size(info), _work_size(info)
    return tuple(round(v * (full_w / work_w if i % 2 == 0 else full_h / work_h)) for i, v in enumerate(box))


def detect_video_label(
    path: str | os.PathLike[str],
    *,
    seconds_probe: float = 2.0,
    intervals: bool = True,
    stop_at_start: bool = False,
    texts: tuple[str, ...] = DEFAULT_TEXTS,
    threshold: float = DEFAULT_THRESHOLD,
    style: LabelStyle = DEFAULT_STYLE,
    info: Any = None,
) -> VideoLabelResult:
    """Look for a visible label drawn by :func:`labeler.visible.add_video_label`: at the start, middle, end.

    How the frames are sampled and judged, and when an interval carries the label: see the module
    docstring (:mod:`detectors.visible.video`).

    Parameters
    ----------
    path : path-like
        The video.
    seconds_probe : float
        Samples up to this time (s) are always examined (>= :data:`VIDEO_STEP`; default the
        standard's 2 s minimum at the start).
    intervals : bool
        Also look at the middle and the end.
    stop_at_start : bool
        When the start carries the label, do not decode the middle and the end: the layer's answer
        (``present``) is already decided, and on a 10 s clip with one keyframe those windows cost a
        decode of nearly the whole clip. ``not_read`` then names them (and ``to_dict`` writes it), so
        a window not read never reads as one without the label. A video whose start lacks the label
        is read in full.
    texts, threshold, style
        As for :func:`detect_image_label`.
    info : labeler.media.video.VideoInfo, optional
        The file's :func:`labeler.media.video.video_info`, when the caller has it (saves a probe).

    Returns
    -------
    VideoLabelResult
        ``present`` when any interval carries the label; ``intervals`` which ones; position, ratio,
        text and box from the best-scoring frame; ``seconds`` the last sample of the unbroken run of
        hits from the start (resolution :data:`VIDEO_STEP`; a label shown for the first S seconds
        reports S rounded down to the step, the frame at exactly S included), None when the start
        lacks it.

    Raises
    ------
    CorruptFile
        The file cannot be decoded.
    UnsupportedFormat
        No video stream.
    LabelerError
        ``path`` names no file, or a folder or other non-regular file (``InvalidArgument`` when it is
        not a str or path-like).

    Notes
    -----
    The i-th selected frame is taken to be the i-th sample time; on variable-frame-rate video with
    gaps longer than :data:`VIDEO_STEP` that mapping can shift (``seconds`` may come out early).
    """
    from labeler.atomic import check_input
    from labeler.media.video import video_info

    check_input(path)  # None, a missing file, a folder: one line, before ffmpeg
    info = video_info(path) if info is None else info
    seen: dict[float, VisibleResult] = {}
    found, run_end, not_read = _examine(path, info, max(VIDEO_STEP, float(seconds_probe)), intervals,
                                        stop_at_start, (texts, threshold, style), seen)
    best = max(seen.values(), key=lambda r: r.score, default=VisibleResult(False))
    if not found or not best.present:
        return VideoLabelResult(False, score=best.score, not_read=not_read)
    return VideoLabelResult(True, position=best.position, height_ratio=best.height_ratio, score=best.score,
                            text=best.text, box=_video_box(best.box, info),
                            seconds=run_end if "start" in found else None, intervals=tuple(found),
                            not_read=not_read)
