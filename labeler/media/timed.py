"""Raw frames with their exact timestamps through ffmpeg pipes, for passes that must keep a variable rate.

A raw pipe (``-f rawvideo``) carries pixels only, so an encoder fed by one stamps frames at a constant
rate, and a variable-frame-rate source comes out re-timed. Here frames travel in Matroska instead
(``V_UNCOMPRESSED`` with its pixel-format FourCC; RFC 9559 5.1.4.1.28), which ffmpeg muxes and demuxes
natively:

* :func:`decoder_args` has ffmpeg decode a stream to Matroska raw video on stdout, and
  :func:`read_frames` walks that stream (a bounded, sequential EBML reader: no seeking on a pipe) and
  yields each frame's bytes with its presentation time. Matroska stores milliseconds; the exact time is
  recovered by :class:`ExactTimes` from the stream's packet timestamps (a stream copy to ffmpeg's
  ``framecrc``, no decoding): each frame takes the packet time within half a millisecond of it.
* :class:`TimedWriter` writes frames with their times as Matroska (one cluster per frame, 1 ns ticks) to
  an encoder reading ``-f matroska -i pipe:0``; with ``-fps_mode passthrough`` and ``-enc_time_base``
  set to the source's time base (:func:`labeler.media.video_index.stream_time_base`) every frame keeps its
  timestamp exactly (``tests/test_video_vfr.py`` compares the packet times before and after). Give the
  encoder ``-copyts`` when it also copies streams from the source: ffmpeg otherwise moves each input to
  start at 0 on its own, and a source whose video starts after its audio (AAC priming in MKV) would come
  out with the video shifted against the sound.
"""

from __future__ import annotations

import bisect
import os
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

from labeler.errors import CorruptFile, InvalidArgument, UnsafeInput
from labeler.media import ffmpeg as ff
from labeler.metadata import ebml

#: Pixel formats carried, with the FourCC ffmpeg's raw video tags give them (libavcodec/raw.c).
#: (ffmpeg's Matroska muxer refuses yuv444p as "raw RGB": 4:4:4 sources are not carried.)
FOURCC = {"yuv420p": b"I420", "yuvj420p": b"I420", "yuv422p": b"Y42B", "yuvj422p": b"Y42B", "gray": b"Y800"}
_EBML, _SEGMENT, _INFO, _TRACKS, _CLUSTER = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x1654AE6B, 0x1F43B675
_TIMESTAMP, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK, _TIMESTAMP_SCALE = 0xE7, 0xA3, 0xA0, 0xA1, 0x2AD7B1
_MAX_SKIP = 16 << 20  # largest non-frame element read past (bytes)


def decoder_args(src: str | os.PathLike[str], stream: int, pix_fmt: str, time_base: Fraction) -> list[str]:
    """ffmpeg arguments decoding stream ``stream`` of ``src`` to Matroska raw video (``pix_fmt``) on stdout.

    ``time_base`` is the stream's (:attr:`ExactTimes.time_base`): the raw video "encoder" keeps the
    frames' timestamps in it (ffmpeg's default, 1/frame rate, would re-time them before the muxer).
    """
    if pix_fmt not in FOURCC:
        raise InvalidArgument(f"pix_fmt must be one of {', '.join(FOURCC)}, got {pix_fmt!r}")
    return [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-xerror",
            "-protocol_whitelist", ff.PROTOCOLS, "-i", ff.input_url(src), "-map", f"0:{stream}",
            "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-c:v", "rawvideo", "-pix_fmt", pix_fmt,
            "-enc_time_base:v", str(time_base),
            "-f", "matroska", "-cluster_size_limit", "1", "-write_crc32", "0", "pipe:"]


def _read(src: BinaryIO, n: int) -> bytearray:
    data = ff.read_up_to(src, n) if n else bytearray()
    if len(data) < n:
        raise CorruptFile("raw video stream ended inside an element")
    return data


def _header(src: BinaryIO) -> ebml.Element | None:
    first = src.read(1)
    if not first:
        return None
    id_len = next((i for i in range(1, 5) if first[0] & (0x80 >> (i - 1))), 0)
    if not id_len:
        raise CorruptFile("raw video stream: bad EBML ID")
    head = first + _read(src, id_len - 1)
    size_first = _read(src, 1)
    size_len = next((i for i in range(1, 9) if size_first[0] & (0x80 >> (i - 1))), 0)
    if not size_len:
        raise CorruptFile("raw video stream: bad EBML size")
    return ebml.read_header(bytes(head + size_first + _read(src, size_len - 1)))


def read_frames(src: BinaryIO, frame_bytes: int) -> Iterator[tuple[bytearray, int]]:
    """``(frame, presentation time in ns)`` for each block of a Matroska raw video stream (one track).

    Each frame is a fresh writable buffer (a pass may mark it in place).

    Masters (Segment, Cluster, BlockGroup) are entered, other elements are read past (at most 16 MiB
    each), so the stream is read strictly in order.

    Raises
    ------
    CorruptFile
        A malformed stream, or a frame that is not ``frame_bytes`` long.
    """
    scale, cluster = 1_000_000, 0
    while (element := _header(src)) is not None:
        if element.id in (_SEGMENT, _CLUSTER, _BLOCK_GROUP):
            continue  # enter: its children follow
        if element.size is None:
            raise CorruptFile(f"raw video stream: element 0x{element.id:X} of unknown size")
        if element.id in (_SIMPLE_BLOCK, _BLOCK):
            if element.size > frame_bytes + 16:
                raise CorruptFile(f"raw video block of {element.size} bytes for frames of {frame_bytes}")
            # The block's head (track number, relative time, flags) is read on its own, so the frame is
            # read straight into its own buffer: no second 3 MB copy per 1080p frame.
            first = _read(src, 1)
            track_len = next((i for i in range(1, 9) if first[0] & (0x80 >> (i - 1))), 0)
            if not track_len or element.size < track_len + 3:
                raise CorruptFile("raw video stream: bad block header")
            head = _read(src, track_len + 2)
            rel = int.from_bytes(head[track_len - 1 : track_len + 1], "big", signed=True)
            if element.size - track_len - 3 != frame_bytes:
                raise CorruptFile(f"raw video frame of {element.size - track_len - 3} bytes, "
                                  f"expected {frame_bytes}")
            yield _read(src, frame_bytes), (cluster + rel) * scale
            continue
        if element.size > _MAX_SKIP:
            raise UnsafeInput(f"raw video stream: element of {element.size} bytes")
        data = _read(src, element.size)
        if element.id == _TIMESTAMP:
            cluster = ebml.read_uint(bytes(data))
        elif element.id == _INFO:
            scale = next((ebml.read_uint(d) for c, d in ebml.parse_children(bytes(data), 1, 2)
                          if c.id == _TIMESTAMP_SCALE), scale)


class ExactTimes:
    """The exact presentation times of a stream's packets, to snap millisecond times back onto.

    Parameters
    ----------
    src : path-like
        The file.
    stream : int
        Stream index.
    """

    def __init__(self, src: str | os.PathLike[str], stream: int) -> None:
        url = ff.input_url(src)
        proc = subprocess.run(
            [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-protocol_whitelist",
             ff.PROTOCOLS, "-i", url, "-map", f"0:{stream}", "-c", "copy", "-f", "framecrc", "-"],
            capture_output=True, check=False, **ff.CHILD)
        lines = proc.stdout.decode("ascii", "replace").splitlines()
        tb = next((Fraction(ln.split(":", 1)[1].strip()) for ln in lines if ln.startswith("#tb 0")), None)
        if proc.returncode != 0 or tb is None:
            raise CorruptFile(f"cannot read the packet times: {ff.error_line(proc.stderr, [url])}")
        #: Seconds per tick of the stream.
        self.time_base = tb
        ticks = sorted({int(ln.split(",")[2]) for ln in lines if ln and ln[0] != "#"})
        self._ticks = ticks
        self._ns = [t * tb.numerator * 1_000_000_000 // tb.denominator for t in ticks]

    def snap(self, ns: int) -> Fraction:
        """The packet time (s) within half a millisecond of ``ns``, else ``ns`` itself (as seconds)."""
        at = bisect.bisect_left(self._ns, ns - 500_000)
        if at < len(self._ns) and abs(self._ns[at] - ns) <= 500_000:
            return self._ticks[at] * self.time_base
        return Fraction(ns, 1_000_000_000)


def timed_frames(src: str | os.PathLike[str], stream: int, pix_fmt: str,
                 frame_bytes: int) -> Iterator[tuple[bytearray, Fraction]]:
    """Decode stream ``stream`` of ``src``: ``(frame, exact presentation time in s)`` one at a time.

    Frames are writable ``pix_fmt`` buffers of ``frame_bytes``; times are the stream's own packet times
    (:class:`ExactTimes`). Closing the iterator early kills the decoder.

    Raises
    ------
    CorruptFile
        The decoder failed (its reason in the message), or the file ended before its index says
        (:func:`labeler.media.ffmpeg.cut_short`), after the frames it produced.
    """
    exact = ExactTimes(src, stream)
    url = ff.input_url(src)
    with ff.stderr_file() as err:
        proc = subprocess.Popen(decoder_args(src, stream, pix_fmt, exact.time_base), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, **ff.CHILD)
        finished = False
        try:
            assert proc.stdout is not None
            ff.widen_pipe(proc.stdout)
            for frame, ns in read_frames(proc.stdout, frame_bytes):
                yield frame, exact.snap(ns)
            finished = True
        finally:
            status = ff.stop(proc, kill=not finished)
        if status != 0:
            raise CorruptFile(f"ffmpeg: {ff.error_line(ff.read_tail(err), [url]) or f'exit status {status}'}")
        if short := ff.cut_short(ff.read_tail(err), [url]):
            raise CorruptFile(short)  # exit 0, but frames the file's index lists are missing


class TimedWriter:
    """Write raw frames with their presentation times as a Matroska stream (for ``-f matroska -i pipe:0``).

    Parameters
    ----------
    out : binary file
        The encoder's stdin.
    width, height : int
        Frame size (pixels).
    pix_fmt : str
        One of :data:`FOURCC`.
    frame_duration : Fraction, optional
        Nominal duration of a frame (seconds, > 0), written as the track's DefaultDuration: the
        demuxer gives it to every frame as its duration, so the last frame keeps one (a 1-frame video
        otherwise comes out with a duration and frame rate of 0, which nothing can read back); the
        frames' times are their own either way.
    """

    def __init__(self, out: BinaryIO, width: int, height: int, pix_fmt: str,
                 frame_duration: Fraction | None = None) -> None:
        if pix_fmt not in FOURCC:
            raise InvalidArgument(f"pix_fmt must be one of {', '.join(FOURCC)}, got {pix_fmt!r}")
        self.out, self.started = out, False
        ff.widen_pipe(out)  # a no-op (0) when ``out`` is not a pipe
        video = (ebml.uint_element(0xB0, width) + ebml.uint_element(0xBA, height)
                 + ebml.element(0x2EB524, FOURCC[pix_fmt]))
        if pix_fmt.startswith("yuvj"):
            # The FourCC names yuv420p/yuv422p; Colour/Range 2 says full range, so the encoder's
            # yuvj format is reached without a levels conversion (RFC 9559 5.1.4.1.28.40).
            video += ebml.element(0x55B0, ebml.uint_element(0x55B9, 2))
        track = (ebml.uint_element(0xD7, 1) + ebml.uint_element(0x73C5, 1) + ebml.uint_element(0x83, 1)
                 + ebml.element(0x86, b"V_UNCOMPRESSED") + ebml.element(0xE0, video))
        if frame_duration is not None and frame_duration > 0:  # DefaultDuration, ns (RFC 9559 5.1.4.1.13)
            track += ebml.uint_element(0x23E383, max(1, round(frame_duration * 1_000_000_000)))
        header = ebml.element(_EBML, ebml.uint_element(0x4286, 1) + ebml.uint_element(0x42F7, 1)
                              + ebml.uint_element(0x42F2, 4) + ebml.uint_element(0x42F3, 8)
                              + ebml.element(0x4282, b"matroska") + ebml.uint_element(0x4287, 4)
                              + ebml.uint_element(0x4285, 2))
        # Timestamps in nanoseconds (TimestampScale 1): exact enough for any time base an encoder uses.
        info = ebml.element(_INFO, ebml.uint_element(_TIMESTAMP_SCALE, 1) + ebml.element(0x4D80, b"aigc"))
        self._head = (header + ebml.encode_id(_SEGMENT) + ebml.UNKNOWN_SIZE + info
                      + ebml.element(_TRACKS, ebml.element(0xAE, track)))

    def write(self, frame: bytes | bytearray | memoryview, pts: Fraction) -> None:
        """Write one frame shown at ``pts`` seconds (>= 0): a cluster of its own, so any time fits."""
        ns = round(pts * 1_000_000_000)
        if ns < 0:
            raise InvalidArgument(f"frame time {float(pts):.6f} s is negative")
        if not self.started:
            self.out.write(self._head)
            self.started = True
        block = ebml.encode_id(_SIMPLE_BLOCK) + ebml.encode_size(len(frame) + 4) + b"\x81\x00\x00\x80"
        stamp = ebml.uint_element(_TIMESTAMP, ns)
        self.out.write(ebml.encode_id(_CLUSTER) + ebml.encode_size(len(stamp) + len(block) + len(frame))
                       + stamp + block)
        self.out.write(frame)


__all__ = ["FOURCC", "ExactTimes", "TimedWriter", "decoder_args", "read_frames", "timed_frames"]
