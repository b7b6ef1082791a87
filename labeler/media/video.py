"""Stream video frames as NumPy arrays through ffmpeg pipes, and write them back.

:func:`read_video_frames` yields one frame at a time (never the whole video): by
default ``(H, W, 3)`` uint8 RGB. Frames are in **stored orientation** (ffmpeg's
autorotation is off; :attr:`VideoInfo.rotation` says how a player turns them), at the
stream's coded size (stored pixels: :attr:`VideoInfo.sample_aspect_ratio` says how a player stretches
them), one array per decoded frame (no frames dropped or repeated).

:class:`VideoWriter` encodes frames (libx264 CRF 18, yuv420p by default) into a
temporary file beside the target, copies the audio streams (``-c:a copy``) and the
global metadata of ``audio_from``, and renames the file into place only when ffmpeg
succeeded. A failure, an exception in the ``with`` block or an abandoned writer kills
and reaps ffmpeg and removes the temporary file.

The command lines are built with ffmpeg-python and run with :func:`~labeler.media.ffmpeg.ffmpeg_exe`.
ffmpeg's stderr goes to a temporary file, so a chatty ffmpeg can never block on a full
pipe while we wait on another. Each reader or writer owns its own process; separate
ones may run in separate threads.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import IO

import ffmpeg as ffmpeg_python
import numpy as np

from labeler.errors import CorruptFile, InvalidArgument, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.media import ffmpeg as ff
from labeler.media.pillow_guard import MAX_PIXELS

#: Raw pixel formats frames may have: ffmpeg name -> (channels, dtype). Channels 1 means (H, W).
PIXEL_FORMATS: dict[str, tuple[int, type[np.generic]]] = {
    "rgb24": (3, np.uint8),
    "bgr24": (3, np.uint8),
    "rgba": (4, np.uint8),
    "gray": (1, np.uint8),
    "rgb48le": (3, np.uint16),
    "gray16le": (1, np.uint16),
}

#: Widest sample aspect ratio taken from a stream (and 1 / it, the narrowest). Real anamorphic formats
#: stay within 1:2 .. 2:1 (DV 16:9 is 64:45 or 40:33, HDV 4:3, DVCPRO HD 3:2); a tag far beyond is damage.
MAX_SAMPLE_ASPECT = 8

# YUV matrices VideoWriter can tag and convert to: tag -> swscale matrix name.
_MATRICES = {"bt709": "bt709", "bt470bg": "bt601", "smpte170m": "bt601"}


@dataclass(frozen=True)
class VideoInfo:
    """The main video stream of a file, from :func:`~labeler.media.ffmpeg.probe`.

    Attributes
    ----------
    width, height : int
        Frame size in pixels, as stored (before display rotation).
    fps : float
        Frames per second.
    frame_rate : str
        The same as an exact rational for ffmpeg, e.g. ``"25"``, ``"30000/1001"``.
    duration : float or None
        Container duration in seconds.
    codec : str
        e.g. ``"h264"``.
    pix_fmt : str or None
        Coded pixel format, e.g. ``"yuv420p"``.
    color_space : str or None
        Tagged YUV matrix (``"bt709"``...), None when untagged.
    rotation : float or None
        Display rotation in degrees counter-clockwise (ffmpeg's display-matrix reading).
    stream : int
        Index of this stream in the file.
    audio_streams : int
        How many audio streams the file has.
    estimated_frames : int or None
        ``round(duration * fps)``: a hint for progress bars, not a count.
    media : MediaInfo
        Everything :func:`~labeler.media.ffmpeg.probe` found.
    sample_aspect_ratio : Fraction or None
        Sample (pixel) aspect ratio of the stored frames (anamorphic video: 1440x1080 at 4:3 is shown
        1920x1080), None for square pixels. Like ``rotation``, it says how a player shows the frames
        (:func:`displayed_size`). A ratio beyond :data:`MAX_SAMPLE_ASPECT` either way is taken for a
        damaged tag and ignored.
    """

    width: int
    height: int
    fps: float
    frame_rate: str
    duration: float | None
    codec: str
    pix_fmt: str | None
    color_space: str | None
    rotation: float | None
    stream: int
    audio_streams: int
    estimated_frames: int | None
    media: ff.MediaInfo
    sample_aspect_ratio: Fraction | None = None


def video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe the first video stream of a file (cover pictures are not video).

    Raises
    ------
    CorruptFile
        ffmpeg cannot read the file, or its frame size or rate is missing.
    UnsupportedFormat
        The file has no video stream.
    UnsafeInput
        Frames over :data:`labeler.media.pillow_guard.MAX_PIXELS` pixels.
    """
    media = ff.probe(path)
    if not media.video:
        raise UnsupportedFormat("no video stream in this file")
    stream = media.video[0]
    if not stream.width or not stream.height:
        raise CorruptFile(f"cannot tell the frame size of the {stream.codec} stream")
    if stream.width * stream.height > MAX_PIXELS:
        raise UnsafeInput(f"video frames of {stream.width}x{stream.height} are over {MAX_PIXELS} pixels")
    if not stream.fps or not stream.frame_rate:
        raise CorruptFile(f"cannot tell the frame rate of the {stream.codec} stream")
    estimate = round(media.duration * stream.fps) if media.duration else None
    return VideoInfo(
        width=stream.width,
        height=stream.height,
        fps=stream.fps,
        frame_rate=stream.frame_rate,
        duration=media.duration,
        codec=stream.codec,
        pix_fmt=stream.pix_fmt,
        color_space=stream.color_space,
        rotation=stream.rotation,
        stream=stream.index,
        audio_streams=len(media.audio),
        estimated_frames=estimate,
        media=media,
        sample_aspect_ratio=_plausible_sar(stream.sample_aspect_ratio),
    )


def _plausible_sar(sar: Fraction | None) -> Fraction | None:
    if sar is None or not 1 / MAX_SAMPLE_ASPECT <= sar <= MAX_SAMPLE_ASPECT:
        return None
    return sar


def upright_size(info: VideoInfo) -> tuple[int, int]:
    """``(height, width)`` of the frames as ffmpeg decodes them when transcoding: turned upright by the
    display rotation (a quarter turn swaps the sides), still in stored pixels."""
    quarter = round((info.rotation or 0) / 90) % 2
    return (info.width, info.height) if quarter else (info.height, info.width)


def upright_sample_aspect(info: VideoInfo) -> Fraction | None:
    """The sample aspect ratio of the upright frames (:func:`upright_size`), None for square pixels.

    A quarter turn makes the pixels' width their height: ffmpeg's autorotation (``transpose``) inverts
    the SAR, 4:3 becomes 3:4.
    """
    sar = info.sample_aspect_ratio
    if sar is None:
        return None
    return 1 / sar if round((info.rotation or 0) / 90) % 2 else sar


def displayed_size(info: VideoInfo) -> tuple[int, int]:
    """``(height, width)`` of the picture a player shows: upright, the width times the upright SAR.

    The height is kept (as ffmpeg's display aspect does), so a row of the picture is a row of the
    upright frame; for square pixels this is :func:`upright_size`.
    """
    height, width = upright_size(info)
    sar = upright_sample_aspect(info)
    return (height, width) if sar is None else (height, max(1, round(width * sar)))


def _frame_layout(pix_fmt: str) -> tuple[int, type[np.generic]]:
    try:
        return PIXEL_FORMATS[pix_fmt]
    except KeyError:
        raise InvalidArgument(f"pix_fmt must be one of {', '.join(PIXEL_FORMATS)}, got {pix_fmt!r}") from None


def read_video_frames(path: str | os.PathLike[str], *, pix_fmt: str = "rgb24") -> Iterator[np.ndarray]:
    """Decode the first video stream frame by frame.

    The file is probed at once (errors as :func:`video_info`); ffmpeg starts on the
    first ``next()``. Closing the iterator early (``break`` in a for loop, or ``.close()``)
    kills and reaps ffmpeg.

    Parameters
    ----------
    path : path-like
        The video.
    pix_fmt : str
        Frame layout, one of :data:`PIXEL_FORMATS`: ``"rgb24"`` ``(H, W, 3)`` uint8
        (default), ``"bgr24"``, ``"rgba"`` ``(H, W, 4)``, ``"gray"`` ``(H, W)``,
        ``"rgb48le"`` ``(H, W, 3)`` uint16, ``"gray16le"`` ``(H, W)`` uint16.

    Yields
    ------
    numpy.ndarray
        One frame, writable and owned by the caller.

    Raises
    ------
    CorruptFile
        When ffmpeg fails while decoding (raised from the iterator).
    """
    channels, dtype = _frame_layout(pix_fmt)
    info = video_info(path)
    return _frames(path, info, pix_fmt, channels, dtype)


def _frames(
    path: str | os.PathLike[str], info: VideoInfo, pix_fmt: str, channels: int, dtype: type[np.generic]
) -> Iterator[np.ndarray]:
    url = ff.input_url(path)
    source = ffmpeg_python.input(url, noautorotate=None, protocol_whitelist=ff.PROTOCOLS)
    graph = (
        ffmpeg_python.output(
            source[str(info.stream)],
            "pipe:",
            format="rawvideo",
            pix_fmt=pix_fmt,
            # A fixed size: should the stream change resolution midway, frames keep one shape.
            s=f"{info.width}x{info.height}",
        )
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
    )
    args = graph.compile(cmd=ff.ffmpeg_exe())
    shape = (info.height, info.width) if channels == 1 else (info.height, info.width, channels)
    frame_bytes = info.width * info.height * channels * np.dtype(dtype).itemsize
    for buf in ff.pipe_chunks(args, url, frame_bytes):
        if len(buf) < frame_bytes:
            raise CorruptFile(f"decoder output ended inside a frame ({len(buf)} of {frame_bytes} B)")
        yield np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(
            dtype, copy=False
        )


class VideoWriter:
    """Encode frames into a video file, atomically, optionally copying audio and metadata.

    >>> from labeler.media.video import VideoWriter, read_video_frames
    >>> with VideoWriter("out.mp4", info.width, info.height, info.frame_rate, audio_from="in.mp4") as w:
    ...     for frame in read_video_frames("in.mp4"):
    ...         w.write(frame)

    Parameters
    ----------
    path : path-like
        Output file; its suffix picks the container (``.mp4``, ``.mov``, ``.mkv``...).
        It is replaced only when the whole encode succeeded.
    width, height : int
        Frame size in pixels. yuv420p needs both even.
    fps : float, str or Fraction
        Frame rate: ``25``, ``"30000/1001"``, ``29.97`` (taken as 30000/1001). Frames get
        constant timestamps at this rate.
    codec : str
        ffmpeg video encoder.
    crf : int or None
        Constant rate factor (libx264/libx265/libvpx-vp9; 18 is visually lossless for
        x264); None to leave the encoder's default.
    pix_fmt : str
        Pixel format of the encoded video.
    audio_from : path-like, optional
        File whose audio streams are copied unchanged (``-c:a copy``) and whose global
        metadata (title, creation time...) is copied. A stream the container cannot
        hold makes :meth:`close` fail.
    input_pix_fmt : str
        Layout of the frames given to :meth:`write`, one of :data:`PIXEL_FORMATS`.
    rotation : float, optional
        Display rotation, degrees counter-clockwise, as :attr:`VideoInfo.rotation` reads
        it (multiples of 90 for ffmpeg older than 6.0).
    color_space : str, optional
        ``"bt709"``, ``"bt470bg"`` or ``"smpte170m"``: convert RGB with that YUV matrix and
        tag the stream so (pass :attr:`VideoInfo.color_space` to keep a source's colours).
        None: ffmpeg's default (BT.601 matrix, untagged).
    preset : str, optional
        Encoder speed preset (x264: ``"ultrafast"`` ... ``"veryslow"``).
    metadata : dict of str to str, optional
        Global tags to set (after those copied from ``audio_from``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float | str | Fraction,
        *,
        codec: str = "libx264",
        crf: int | None = 18,
        pix_fmt: str = "yuv420p",
        audio_from: str | os.PathLike[str] | None = None,
        input_pix_fmt: str = "rgb24",
        rotation: float | None = None,
        color_space: str | None = None,
        preset: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if width <= 0 or height <= 0:
            raise InvalidArgument(f"frame size must be positive, got {width}x{height}")
        if width * height > MAX_PIXELS:
            raise InvalidArgument(f"frame size {width}x{height} is over {MAX_PIXELS} pixels")
        if color_space is not None and color_space not in _MATRICES:
            raise InvalidArgument(f"color_space must be one of {', '.join(_MATRICES)}, got {color_space!r}")
        if audio_from is not None and not os.path.isfile(audio_from):
            raise FileNotFoundError(f"no such file: {os.fspath(audio_from)}")
        self.path = os.fspath(path)
        self.width, self.height = int(width), int(height)
        self.frame_rate = ff.rate_text(fps)
        self.codec, self.crf, self.pix_fmt = codec, crf, pix_fmt
        self.audio_from = os.fspath(audio_from) if audio_from is not None else None
        self.input_pix_fmt = input_pix_fmt
        channels, self._dtype = _frame_layout(input_pix_fmt)
        self._shape = (self.height, self.width) if channels == 1 else (self.height, self.width, channels)
        self.rotation, self.color_space, self.preset = rotation, color_space, preset
        self.metadata = dict(metadata or {})
        #: Frames written so far.
        self.frames = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: str | None = None
        self._err: IO[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._closed = False

    # -- command line

    def command(self, output: str) -> list[str]:
        """The ffmpeg command line that writes to ``output`` (for logs and tests)."""
        video_options: dict[str, object] = {
            "format": "rawvideo",
            "pix_fmt": self.input_pix_fmt,
            "s": f"{self.width}x{self.height}",
            "framerate": self.frame_rate,
        }
        out_options: dict[str, object] = {"vcodec": self.codec, "pix_fmt": self.pix_fmt}
        if self.rotation is not None and not self._rotate_by_remux():
            # Without -noautorotate, ffmpeg would turn the pixels by the rotation instead of tagging it.
            video_options["noautorotate"] = None
            video_options["display_rotation"] = f"{float(self.rotation):g}"
        streams = [ffmpeg_python.input("pipe:", **video_options)["v"]]
        if self.audio_from is not None:
            audio = ffmpeg_python.input(ff.input_url(self.audio_from), protocol_whitelist=ff.PROTOCOLS)
            streams.append(audio["a?"])
            out_options.update(acodec="copy", map_metadata=1)
        if self.crf is not None:
            out_options["crf"] = self.crf
        if self.preset is not None:
            out_options["preset"] = self.preset
        if self.color_space is not None:
            matrix = _MATRICES[self.color_space]
            out_options.update(
                vf=f"scale=out_color_matrix={matrix}:out_range=tv",
                colorspace=self.color_space,
                color_primaries="bt709" if self.color_space == "bt709" else self.color_space,
                color_trc="bt709" if self.color_space == "bt709" else "smpte170m",
                color_range="tv",
            )
        graph = ffmpeg_python.output(*streams, output, **out_options)
        graph = graph.global_args("-hide_banner", "-nostdin", "-loglevel", "error").overwrite_output()
        args = graph.compile(cmd=ff.ffmpeg_exe())
        # Output options must come before the output name (ffmpeg ignores trailing ones), and a
        # dict of options cannot repeat "-metadata", so the tags are put in place here.
        at = args.index(output)
        for key, value in self.metadata.items():
            args[at:at] = ["-metadata", f"{key}={value}"]
            at += 2
        return args

    def _rotate_by_remux(self) -> bool:
        # ffmpeg before 6.0 has no -display_rotation, and its "rotate" tag is kept only on stream copy.
        return self.rotation is not None and ff.ffmpeg_version() < (6, 0)

    # -- life cycle

    def open(self) -> VideoWriter:
        """Start ffmpeg (done by ``with`` and by the first :meth:`write`)."""
        if self._proc is not None or self._closed:
            return self
        self._tmp = ff.temp_path_beside(self.path)
        err = None
        try:
            err = open_stderr_file()
            proc = subprocess.Popen(
                self.command("file:" + os.path.abspath(self._tmp)),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                **ff.CHILD,
            )
        except BaseException:
            if err is not None:
                err.close()
            ff.discard(self._tmp)
            raise
        self._proc, self._err = proc, err
        # Should the writer be dropped without close(), kill ffmpeg and remove the partial file.
        self._finalizer = weakref.finalize(self, _abandon, proc, self._tmp, err)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame.

        Parameters
        ----------
        frame : numpy.ndarray
            Shape ``(height, width, 3)`` for rgb24 (see ``input_pix_fmt``), dtype uint8
            (uint16 for the 48-bit/16-bit formats).

        Raises
        ------
        ValueError
            Wrong shape or dtype.
        LabelerError
            ffmpeg stopped (its reason in the message); the output is abandoned.
        """
        if self._closed:
            raise LabelerError("video writer is closed")
        arr = np.asarray(frame)
        if arr.shape != self._shape or arr.dtype != self._dtype:
            raise InvalidArgument(
                f"frame must be {np.dtype(self._dtype).name} {self._shape}, got {arr.dtype} {arr.shape}"
            )
        self.open()
        assert self._proc is not None and self._proc.stdin is not None
        data = np.ascontiguousarray(arr, dtype=np.dtype(self._dtype).newbyteorder("<"))
        try:
            self._proc.stdin.write(memoryview(data).cast("B"))
        except (BrokenPipeError, ValueError):
            reason = self._reason() or _status_text(self._proc.wait())
            self.abort()
            raise LabelerError(f"video encoder stopped: {reason}") from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file: flush ffmpeg, check it succeeded, rename into place.

        Raises
        ------
        LabelerError
            ffmpeg failed or no frame was written; the target is left untouched.
        """
        if self._closed:
            return
        if self.frames == 0:
            self.abort()
            raise LabelerError("no video frames were written")
        assert self._proc is not None and self._tmp is not None
        proc = self._proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except BrokenPipeError:
            pass  # it has already stopped; the status below tells
        status = proc.wait()
        if status != 0:
            reason = self._reason() or _status_text(status)
            self.abort()
            raise LabelerError(f"video encoder failed: {reason}")
        try:
            if self._rotate_by_remux():
                self._remux_rotation()
            ff.commit(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._release()

    def _remux_rotation(self) -> None:
        assert self._tmp is not None and self.rotation is not None
        tagged = ff.temp_path_beside(self.path)
        try:
            ff.run(
                [
                    "-loglevel", "error", "-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(self._tmp),
                    "-map", "0", "-c", "copy", "-map_metadata", "0",
                    "-metadata:s:v:0", f"rotate={round(float(self.rotation)) % 360}",
                    "-y", "file:" + os.path.abspath(tagged),
                ],
                error=LabelerError,
            )
        except BaseException:
            ff.discard(tagged)
            raise
        ff.discard(self._tmp)
        self._tmp = tagged
        if self._finalizer is not None:
            # The finalizer must remove the file that now holds the video.
            self._finalizer.detach()
            assert self._proc is not None and self._err is not None
            self._finalizer = weakref.finalize(self, _abandon, self._proc, tagged, self._err)

    def abort(self) -> None:
        """Stop ffmpeg (killed and reaped) and remove the partial output; the target is untouched."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()  # kill, wait, unlink, close stderr file
            self._finalizer = None
        elif self._tmp is not None:
            ff.discard(self._tmp)
        self._proc = None

    def _release(self) -> None:
        self._closed = True
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._err is not None:
            self._err.close()
        self._proc = None

    def _reason(self) -> str:
        if self._err is None:
            return ""
        return ff.error_line(ff.read_tail(self._err), [self._tmp or ""])

    def __enter__(self) -> VideoWriter:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_stderr_file() -> IO[bytes]:
    """An anonymous temporary file to take a long-running ffmpeg's stderr (see the module notes)."""
    return tempfile.TemporaryFile(prefix="ffmpeg-stderr-")


def _status_text(status: int) -> str:
    return f"ffmpeg killed by signal {-status}" if status < 0 else f"ffmpeg exit status {status}"


def _abandon(proc: subprocess.Popen[bytes], tmp: str, err: IO[bytes]) -> None:
    ff.stop(proc, kill=True)
    ff.discard(tmp)
    err.close()
