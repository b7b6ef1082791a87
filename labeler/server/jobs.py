"""The CPU work, in a process pool sized by ``--workers``: off the event loop, one job per request.

The functions run in the pool's processes and take only plain values (paths, bytes, dataclasses), so
they pickle. :func:`run_job` waits for one with the request's timeout; a job that outlives it keeps
its worker (a process cannot be interrupted safely) and its request's place and folder until it ends.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from labeler.errors import LabelerError, UnsafeInput, UnsupportedFormat
from labeler.options import LabelOptions
from labeler.server.errors import ApiError

__all__ = ["make_pool", "run_job", "verify_job", "label_job", "propagate_job", "Pending"]


def make_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` fresh processes (``spawn``: no copy of the server's threads or sockets)."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_up)


def _warm_up() -> None:
    # Import the readers once per process, so the first request does not pay for NumPy, OpenCV, c2pa.
    import detectors  # noqa: F401
    import labeler.pipeline  # noqa: F401
    from labeler.media.pillow_guard import quiet_pillow_warnings

    # A spawned worker has the default warning filters, not `aigc serve`'s: Pillow's
    # DecompressionBombWarning (a 12000 x 12000 upload) printed raw lines on the server's stderr.
    quiet_pillow_warnings()


class Pending:
    """What a timed-out request leaves behind until its job ends: a callback that cleans up then."""

    def __init__(self) -> None:
        self.future: Future[Any] | None = None


async def run_job(pool_holder: Any, pending: Pending, timeout_s: float, fn: Callable[..., Any],
                  *args: Any) -> Any:
    """Run ``fn(*args)`` in the pool and wait at most ``timeout_s`` seconds.

    Parameters
    ----------
    pool_holder : object
        Has ``pool`` (a ``ProcessPoolExecutor``) and ``renew_pool()`` (after a worker died).
    pending : Pending
        Receives the job's future when the wait ends before the job (timeout, cancelled request).
    timeout_s : float
    fn : callable
        A module-level function of this module (it must pickle).

    Raises
    ------
    ApiError
        504 on timeout; 500 when a worker process died (the pool is renewed for the next request).
    """
    try:
        future = pool_holder.pool.submit(fn, *args)
    except BrokenProcessPool:
        pool_holder.renew_pool()
        try:
            future = pool_holder.pool.submit(fn, *args)
        except BrokenProcessPool:
            raise ApiError(500, "the worker processes are not available; see the server log") from None
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout_s)
    except asyncio.TimeoutError:
        if not future.cancel():  # not started yet: it never will; else it runs on, see Pending
            pending.future = future
        raise ApiError(504, f"the job took longer than {timeout_s:g} s") from None
    except asyncio.CancelledError:
        if not future.cancel():
            pending.future = future
        raise
    except BrokenProcessPool:
        pool_holder.renew_pool()
        raise ApiError(500, "a worker process died (out of memory?); the server has restarted its workers") \
            from None


def _bug(exc: BaseException) -> RuntimeError:
    # An exception that is not the client's fault: its traceback goes to the server log (stderr) here,
    # and only its type travels back, so what reaches the client is one line and always pickles.
    traceback.print_exception(exc, file=sys.stderr)
    return RuntimeError(type(exc).__name__)


def pixels_problem(path: str, max_pixels: int) -> str | None:
    """Why an image or video at ``path`` is too large to decode here (from its header only), or None.

    A decompression bomb (a few hundred kB of PNG that decodes to 100 megapixels) is refused before
    any pixel is decoded, so a worker's memory stays bounded by ``max_pixels``. A video's frames are
    held to the same bound (from ffmpeg's reading of the stream header): until 2026-12-08 a 200 kB
    MP4 of 8192 x 8192 frames was decoded, 1.5 GB resident to verify and 3.6 GB to label.
    """
    from PIL import Image

    from labeler.probe import probe_path

    try:
        probe = probe_path(path)
        if probe.medium == "video":
            streams = probe.media.video if probe.media is not None else ()
            width, height = (streams[0].width or 0, streams[0].height or 0) if streams else (0, 0)
            if width * height > max_pixels:
                return (f"the video's frames are {width} x {height} = {width * height / 1e6:.0f} megapixels;"
                        f" this server decodes at most {max_pixels / 1e6:g}")
            return None
        if probe.medium != "image":
            return None
        width, height = probe.image_size or (0, 0)
    except Image.DecompressionBombError:  # Pillow's own bomb check, from the header
        return f"the image is too large to decode (over {max_pixels / 1e6:g} megapixels)"
    except Exception:  # noqa: BLE001 - a header Pillow (or ffmpeg) cannot read (truncated, damaged)
        # Not a size problem: the reader then says what is wrong with the file, as the CLI does
        # (a truncated JPEG was answered "too large to decode" until 2026-12-06).
        return None
    if width * height > max_pixels:
        return (f"the image is {width} x {height} = {width * height / 1e6:.0f} megapixels; this server "
                f"decodes at most {max_pixels / 1e6:g}")
    return None


def verify_job(path: str, name: str, keys: tuple[bytes, ...], anchors: tuple[str, ...],
               want_box: bool, max_pixels: int, store: str | None = None) -> dict[str, Any]:
    """Verify the file at ``path`` as ``aigc verify --json`` does; ``name`` becomes ``report.file``.

    Returns
    -------
    dict
        ``report`` (``Report.to_dict()``), ``unsupported`` (the content is no format we read: the
        single-file API answers 415) and ``box`` (the visible label's box on the decoded image,
        ``{x, y, w, h, width, height}``, when asked and found; else None).
    """
    from detectors import Report, verify
    from labeler.formats import sniff_file

    try:
        try:
            sniff_file(path)
            unsupported = False
        except UnsupportedFormat:
            unsupported = True
        except LabelerError:
            unsupported = False  # e.g. empty: verify says so in report.errors
        too_large = pixels_problem(path, max_pixels)
        if too_large:
            refused = Report(file=name, size=os.path.getsize(path))
            refused.errors.append(too_large)
            return {"report": refused.to_dict(), "unsupported": False, "box": None}
        report = None
        # Each key in turn until one finds its watermark: rotated keys keep old files recognised.
        for key in keys or (None,):
            report = verify(path, key=key, trust_anchors=list(anchors) or None,
                            manifest_store=store if key is not None else None)  # a store is keyed by marks
            if key is None or (report.watermark or {}).get("present"):
                break
        assert report is not None
        report.file = name
        box = _visible_box(path, report.to_dict()) if want_box else None
        return {"report": report.to_dict(), "unsupported": unsupported, "box": box}
    except Exception as exc:  # noqa: BLE001 - verify never raises on purpose: this is a bug
        raise _bug(exc) from None


def _visible_box(path: str, report: dict[str, Any]) -> dict[str, int] | None:
    """Where the visible label is on the image, or on a video's first frame (for the page's drawing).

    The report gives the label's wording, position and size but not its box, and its JSON must stay
    exactly the CLI's; so the box is looked for again, for the found wording only (about 0.07 s for a
    1000 px photo), and travels beside the report, not in it.
    """
    visible = (report.get("layers") or {}).get("visible") or {}
    medium = report.get("medium")
    if medium not in ("image", "video") or not visible.get("present") or not visible.get("text"):
        return None
    from detectors.visible import detect_image_label

    try:
        pixels = _first_frame(path) if medium == "video" else _image(path)
    except LabelerError:
        return None
    if pixels is None:
        return None
    found = detect_image_label(pixels, texts=(visible["text"],))
    if not found.present or found.box is None:
        return None
    x, y, w, h = (int(v) for v in found.box)
    return {"x": x, "y": y, "w": w, "h": h, "width": int(pixels.shape[1]), "height": int(pixels.shape[0])}


def _image(path: str) -> Any:
    from labeler.media.image import read_image, to_display

    # as the browser shows it (EXIF orientation applied), which is how verify found the label
    image = read_image(path)
    return to_display(image.pixels, image.orientation)


def _first_frame(path: str) -> Any:
    # The video mark starts with the first frame: the page shows that frame, with the box on it, at the
    # shape a player shows it (an anamorphic frame stretched by its sample aspect ratio, as verify reads it).
    import cv2

    from labeler.media.video import displayed_size, read_video_frames, video_info

    frames = read_video_frames(path)
    try:
        frame = next(frames, None)
    finally:
        frames.close()  # stops and reaps ffmpeg
    if frame is None:
        return None
    height, width = displayed_size(video_info(path))
    if (height, width) == frame.shape[:2]:
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def label_job(src: str, record: Any, options: LabelOptions, max_pixels: int) -> dict[str, Any]:
    """Label the upload ``src`` with :func:`labeler.pipeline.label_file`, beside it in the request's folder.

    The format is sniffed from the content (the client's name only tells m4a from mp4 when the brand
    does not); input and output are named with that format's extension, so a name that lies is moot.

    Returns
    -------
    dict
        ``result``: ``LabelResult.to_dict()`` without the paths (they are the server's temporary
        names); ``output``: the labeled file's path.

    Raises
    ------
    LabelerError
        The client's input or fields (mapped to 4xx); anything else becomes a one-word RuntimeError.
    UnsafeInput
        An image over ``max_pixels`` with a layer that decodes it (watermark, visible, C2PA thumbnail).
    """
    from pathlib import Path

    from labeler.formats import EXTENSIONS, sniff_file
    from labeler.pipeline import label_file

    try:
        upload = Path(src)
        ext = EXTENSIONS[sniff_file(upload)][0]
        layers = set(options.layers)
        # The thumbnail option is inert unless the c2pa layer is asked for: only then does it decode.
        thumbnail = "c2pa" in layers and options.c2pa.thumbnail
        decodes = bool({"watermark", "visible"} & layers) or thumbnail
        too_large = pixels_problem(src, max_pixels) if decodes else None
        if too_large:
            apply = "the metadata and c2pa layers (without c2pa_thumbnail)" if thumbnail else (
                "the metadata and c2pa layers")
            raise UnsafeInput(f"{too_large}; only {apply} apply")
        source, dst = upload.rename(upload.with_name(f"input{ext}")), upload.with_name(f"labeled{ext}")
        labeled = label_file(source, dst, record, options=options)
        from detectors.read_back import unread_watermark

        unread = unread_watermark(dst, labeled, options.watermark.key, quality=options.output.quality)
        if unread:
            labeled.warnings.append(unread)
        result = labeled.to_dict()
    except LabelerError:
        raise
    except OSError as exc:
        raise LabelerError(f"cannot read or write the file: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - see _bug
        raise _bug(exc) from None
    result.pop("src", None)
    result.pop("dst", None)
    return {"result": result, "output": str(dst)}


def propagate_job(src: str, fields: dict[str, Any], keys: tuple[bytes, ...], anchors: tuple[str, ...],
                  max_pixels: int) -> dict[str, Any]:
    """What ``aigc propagate`` does, for the upload ``src``, beside it in the request's folder.

    Parameters
    ----------
    src : str
        The upload; renamed to its sniffed format's extension, as :func:`label_job` does.
    fields : dict
        ``propagator``, ``propagate_id``, ``reserved_code2`` and ``declared_ai`` for
        :func:`labeler.propagate.propagate_file`.
    keys, anchors : tuple
        The server's watermark keys (each in turn, as verify tries them) and C2PA trust anchors.
    max_pixels : int
        Propagation verifies the upload first, which decodes an image: a larger one is refused.

    Returns
    -------
    dict
        ``result``: ``PropagateResult.to_dict()`` without the paths; ``output``: the output's path;
        ``format``: the sniffed format.

    Raises
    ------
    LabelerError
        The client's input; a file that could not be read, or whose label may not be propagated, is
        a :class:`~labeler.errors.CorruptFile` (422: recognised but unfit), not a bad request.
    """
    from pathlib import Path

    from labeler.errors import CorruptFile
    from labeler.formats import EXTENSIONS, sniff_file
    from labeler.propagate import propagate_file

    try:
        upload = Path(src)
        fmt = sniff_file(upload)
        ext = EXTENSIONS[fmt][0]
        too_large = pixels_problem(src, max_pixels)
        if too_large:
            raise UnsafeInput(f"{too_large}; propagation verifies the file first, which decodes it")
        source, dst = upload.rename(upload.with_name(f"input{ext}")), upload.with_name(f"propagated{ext}")
        trust = list(anchors) or None
        result = propagate_file(source, dst, key=keys[0] if keys else None, trust_anchors=trust, **fields)
        # Key rotation: a watermark of an older key is a trace too; only a copy can change with the key.
        for key in keys[1:] if result.action == "copied" else ():
            if _watermark_found(source, key):
                result = propagate_file(source, dst, key=key, trust_anchors=trust, overwrite=True, **fields)
                break
        out = result.to_dict()
    except LabelerError as exc:
        if type(exc) is LabelerError:  # propagate_file's own refusals: about the file, the fields are checked
            raise CorruptFile(str(exc)) from None
        raise
    except OSError as exc:
        raise LabelerError(f"cannot read or write the file: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - see _bug
        raise _bug(exc) from None
    out.pop("src", None)
    out.pop("dst", None)
    return {"result": out, "output": str(dst), "format": fmt}


def _watermark_found(path: Any, key: bytes) -> bool:
    from detectors import verify

    return bool((verify(path, key=key, layers=("watermark",)).watermark or {}).get("present"))
