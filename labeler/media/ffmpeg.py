"""Run the ``ffmpeg`` program and read stream facts from its banner (no ``ffprobe`` needed).

``imageio-ffmpeg`` ships a static ``ffmpeg`` but no ``ffprobe``, so :func:`probe`
parses what ``ffmpeg -hide_banner -i FILE`` prints about its input. That text is
meant for people, so the parser takes only what it can recognise and leaves a
field ``None`` rather than guessing; it has been checked against ffmpeg 5.1 and 9.0.

Input files are always passed as ``file:`` URLs with ``-protocol_whitelist file,pipe``,
so a file name such as ``http:x`` or ``concat:a|b`` is never taken as a protocol and a
hostile playlist cannot make ffmpeg reach the network.

Nothing here keeps mutable state besides the cached program path, so every
function may be called from several threads at once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO

from labeler.errors import CorruptFile, InvalidArgument, LabelerError, UnsafeInput

#: Protocols an input may use; ``pipe`` is for frames and samples we send ourselves.
PROTOCOLS = "file,pipe"
#: Seconds a probe may take before it counts as hostile input.
PROBE_TIMEOUT = 60.0


#: Environment variable naming the ffmpeg program to use: a path, a command name looked up on
#: ``PATH``, or ``bundled`` for the imageio-ffmpeg wheel's binary.
FFMPEG_ENV = "AIGC_FFMPEG"
#: The value of :data:`FFMPEG_ENV` that selects the imageio-ffmpeg wheel's binary.
BUNDLED = "bundled"


@dataclass(frozen=True)
class FFmpegChoice:
    """Which ``ffmpeg`` program the project runs, and why that one.

    Attributes
    ----------
    path : str
        Absolute path of the program.
    source : str
        ``"AIGC_FFMPEG"`` (named by the environment variable), ``"PATH"`` (found on ``PATH``) or
        ``"imageio-ffmpeg"`` (the wheel's static build).
    """

    path: str
    source: str


def ffmpeg_choice() -> FFmpegChoice:
    """Return the ``ffmpeg`` program to run: ``$AIGC_FFMPEG``, else the one on ``PATH``, else the wheel's.

    ``AIGC_FFMPEG`` may hold a path, a command name (looked up on ``PATH``) or ``bundled`` (the
    imageio-ffmpeg wheel's binary even when another ffmpeg is on ``PATH``). The answer is cached per
    value of ``AIGC_FFMPEG`` and ``PATH``, so changing either takes effect on the next call.

    Raises
    ------
    LabelerError
        When ``AIGC_FFMPEG`` names no runnable program, or no ffmpeg is available at all.
    """
    return _choose(os.environ.get(FFMPEG_ENV, "").strip(), os.environ.get("PATH", ""))


def ffmpeg_exe() -> str:
    """Return the path of the ``ffmpeg`` program (see :func:`ffmpeg_choice` for the order).

    Raises
    ------
    LabelerError
        When no ffmpeg is available.
    """
    return ffmpeg_choice().path


@functools.lru_cache(maxsize=8)
def _choose(named: str, path_env: str) -> FFmpegChoice:
    if named and named != BUNDLED:
        found = shutil.which(named, path=path_env)
        if not found:
            raise LabelerError(f"{FFMPEG_ENV}={named!r} is not an executable program (a path, a command "
                               f"on PATH, or {BUNDLED!r} for the imageio-ffmpeg binary)")
        return FFmpegChoice(os.path.abspath(found), FFMPEG_ENV)
    if not named:
        found = shutil.which("ffmpeg", path=path_env)
        if found:
            return FFmpegChoice(os.path.abspath(found), "PATH")
    return FFmpegChoice(_bundled_exe(), "imageio-ffmpeg")


def _bundled_exe() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise LabelerError(f"ffmpeg not found (install ffmpeg or imageio-ffmpeg): {exc}") from None


def ffmpeg_version(exe: str | None = None) -> tuple[int, int]:
    """Return ``(major, minor)`` of the ffmpeg at ``exe`` (default :func:`ffmpeg_exe`).

    Git snapshots (``N-12345-g...``) count as ``(99, 0)``: newer than any release.
    """
    return _version_of(exe or ffmpeg_exe())


@functools.lru_cache(maxsize=8)
def _version_of(exe: str) -> tuple[int, int]:
    proc = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"version\s+n?(\d+)\.(\d+)", proc.stdout)
    if match:
        return int(match.group(1)), int(match.group(2))
    return (99, 0)


def input_url(path: str | os.PathLike[str]) -> str:
    """Return the ``file:`` URL ffmpeg should open for a local ``path`` (never a protocol)."""
    return "file:" + os.path.abspath(os.fspath(path))


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file, as ffmpeg describes it.

    Attributes
    ----------
    index : int
        Stream index in the file (what ``-map 0:INDEX`` selects).
    kind : str
        ``"video"``, ``"audio"``, ``"subtitle"``, ``"data"`` or ``"attachment"``.
    codec : str
        ffmpeg codec name, e.g. ``"h264"``, ``"aac"``, ``"pcm_s16le"``.
    width, height : int or None
        Frame size in pixels (video), as decoded, before any display rotation.
    fps : float or None
        Frames per second (video): the ``fps`` figure, else ``tbr``. NTSC rates printed
        rounded (``29.97``) are restored to their exact value (30000/1001).
    frame_rate : str or None
        The same rate as an exact ffmpeg rational, e.g. ``"25"`` or ``"30000/1001"``.
    pix_fmt : str or None
        Pixel format of the coded video, e.g. ``"yuv420p"``.
    color_space : str or None
        YUV matrix the stream is tagged with (``"bt709"``, ``"bt470bg"``, ``"smpte170m"``...), if any.
    color_range : str or None
        ``"tv"`` (limited) or ``"pc"`` (full), if tagged.
    rotation : float or None
        Display rotation in degrees from the stream's display matrix (video), else None.
    sample_rate : int or None
        Samples per second per channel (audio), in Hz.
    channels : int or None
        Channel count (audio), from the channel layout name.
    channel_layout : str or None
        ffmpeg's layout name (audio), e.g. ``"stereo"``, ``"5.1(side)"``.
    sample_fmt : str or None
        Decoder sample format (audio), e.g. ``"fltp"``, ``"s16"``.
    bitrate : int or None
        Stream bit rate in bit/s when ffmpeg knows it.
    language : str or None
        ISO 639-2 code from the container, e.g. ``"und"``, ``"eng"``.
    default : bool
        The container marks this stream as default.
    attached_pic : bool
        A cover picture (a still image, not a video track).
    metadata : dict of str to str
        The stream's tags (``handler_name``, ``encoder``...).
    """

    index: int
    kind: str
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_rate: str | None = None
    pix_fmt: str | None = None
    color_space: str | None = None
    color_range: str | None = None
    rotation: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    channel_layout: str | None = None
    sample_fmt: str | None = None
    bitrate: int | None = None
    language: str | None = None
    default: bool = False
    attached_pic: bool = False
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learned about a media file.

    Attributes
    ----------
    container : str
        ffmpeg's demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"wav"``, ``"mp3"``.
    duration : float or None
        Duration in seconds, None when the container does not say (``N/A``).
    start : float or None
        Start time of the first packet in seconds.
    bitrate : int or None
        Overall bit rate in bit/s.
    streams : tuple of StreamInfo
        Every stream, in file order.
    metadata : dict of str to str
        The container's global tags (``major_brand``, ``encoder``, ``title``...).
    """

    container: str
    duration: float | None
    start: float | None
    bitrate: int | None
    streams: tuple[StreamInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def video(self) -> tuple[StreamInfo, ...]:
        """The video streams that are real tracks (cover pictures left out)."""
        return tuple(s for s in self.streams if s.kind == "video" and not s.attached_pic)

    @property
    def audio(self) -> tuple[StreamInfo, ...]:
        """The audio streams."""
        return tuple(s for s in self.streams if s.kind == "audio")


def probe(path: str | os.PathLike[str], *, timeout: float = PROBE_TIMEOUT) -> MediaInfo:
    """Describe the streams of a media file by parsing ``ffmpeg -i`` output.

    Parameters
    ----------
    path : path-like
        A local file.
    timeout : float
        Seconds to wait for ffmpeg.

    Returns
    -------
    MediaInfo

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    CorruptFile
        When ffmpeg cannot open the file as media (with ffmpeg's reason).
    UnsafeInput
        When ffmpeg takes longer than ``timeout`` to read the headers.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {os.fspath(path)}")
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", PROTOCOLS, "-i", input_url(path)]
    try:
        # ffmpeg exits with an error here because no output is given; the banner is all we want.
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UnsafeInput(f"ffmpeg took over {timeout:g} s to read the headers") from None
    text = proc.stderr.decode("utf-8", "replace")
    info = parse_banner(text)
    if info is None:
        raise CorruptFile(error_line(text, [input_url(path)]) or "ffmpeg cannot read this file")
    return info


_INPUT_RE = re.compile(r"^Input #0, (?P<container>[^,]+(?:,[^ ,]+)*), from ")
_STREAM_RE = re.compile(
    r"^\s*Stream #\d+[:.](?P<index>\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\((?P<lang>[^)]*)\))?"
    r"(?:\[0x[0-9a-fA-F]+\])?: (?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<rest>.*)$"
)
_DURATION_RE = re.compile(
    r"^\s*Duration: (?P<dur>N/A|\d+:\d\d:\d\d(?:\.\d+)?)"
    r"(?:, start: (?P<start>-?[\d.]+))?(?:, bitrate: (?P<rate>N/A|\d+) kb/s)?"
)
_META_RE = re.compile(r"^(?P<indent>\s*)(?P<key>[^:]*?)\s*: ?(?P<value>.*)$")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees")


def parse_banner(text: str) -> MediaInfo | None:
    """Parse the ``Input #0`` part of ffmpeg's stderr; None when there is none (an error).

    Only the first input is read. Chapter and program sections are skipped so their tags
    are not mistaken for the container's or a stream's.
    """
    container: str | None = None
    duration = start = None
    bitrate: int | None = None
    global_meta: dict[str, str] = {}
    streams: list[dict] = []
    # Which block the indented lines below belong to: "input", "stream", "chapter", "program".
    section = ""
    meta: dict[str, str] | None = None
    meta_indent = -1
    last_key = ""
    for line in text.splitlines():
        if container is None:
            match = _INPUT_RE.match(line)
            if match:
                container = match.group("container")
                section = "input"
            continue
        if line.startswith(("Input #", "Output #", "Stream mapping:")) or not line.startswith(" "):
            if line.startswith(("Input #", "Output #", "Stream mapping:")):
                break
            continue  # a log line such as "[mov @ 0x...] ..." or "At least one output file..."
        indent = len(line) - len(line.lstrip(" "))
        stripped = line.strip()
        if meta is not None:
            if indent > meta_indent:
                m = _META_RE.match(line)
                if m and m.group("key"):
                    last_key = m.group("key")
                    meta[last_key] = m.group("value")
                    continue
                if m and last_key:
                    # ffmpeg prints further lines of a multi-line tag as "   : more".
                    meta[last_key] += "\n" + m.group("value")
                    continue
            meta = None
        if stripped == "Metadata:":
            if section == "input" and indent == 2:
                meta = global_meta
            elif section == "stream" and streams:
                meta = streams[-1]["metadata"]
            else:
                meta = {}  # chapter or program tags: parsed and dropped
            meta_indent = indent
            last_key = ""
            continue
        match = _DURATION_RE.match(line)
        if match:
            duration = _clock_seconds(match.group("dur"))
            start = float(match.group("start")) if match.group("start") else None
            rate = match.group("rate")
            bitrate = int(rate) * 1000 if rate and rate != "N/A" else None
            section = "input"
            continue
        match = _STREAM_RE.match(line)
        if match:
            streams.append(_parse_stream(match))
            section = "stream"
            continue
        if stripped.startswith("Chapter") or stripped == "Chapters:":
            section = "chapter"
            continue
        if stripped.startswith("Program "):
            section = "program"
            continue
        rot = _ROTATION_RE.search(stripped)
        if rot and section == "stream" and streams:
            # Side data "displaymatrix: rotation of -90.00 degrees" (ffmpeg 5.1 and later).
            streams[-1]["rotation"] = float(rot.group(1))
    if container is None:
        return None
    return MediaInfo(
        container=container,
        duration=duration,
        start=start,
        bitrate=bitrate,
        streams=tuple(StreamInfo(**s) for s in streams),
        metadata=global_meta,
    )


def _clock_seconds(text: str) -> float | None:
    if text == "N/A":
        return None
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _split_top(text: str) -> list[str]:
    """Split at commas that are not inside parentheses or brackets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")
_RATE_RE = re.compile(r"^([\d.]+)(k?) (fps|tbr)$")
_HZ_RE = re.compile(r"^(\d+) Hz$")
_KBS_RE = re.compile(r"^(\d+) kb/s")


def _parse_stream(match: re.Match[str]) -> dict:
    rest = match.group("rest")
    flags = re.findall(r"\((default|attached pic|forced|dub|original|comment|lyrics|karaoke)\)", rest)
    # Dispositions are printed after the last comma: "... 12800 tbn (default)".
    body = re.sub(r"\s*\((default|attached pic|forced|dub|original|comment|lyrics|karaoke)\)", "", rest)
    parts = _split_top(body)
    codec = parts[0].split()[0] if parts else "unknown"
    stream: dict = {
        "index": int(match.group("index")),
        "kind": match.group("kind").lower(),
        "codec": codec,
        "language": match.group("lang") or None,
        "default": "default" in flags,
        "attached_pic": "attached pic" in flags,
        "metadata": {},
    }
    fps_text = tbr_text = None
    for position, part in enumerate(parts[1:], start=1):
        size = _SIZE_RE.match(part)
        if size and stream["kind"] == "video" and "width" not in stream:
            stream["width"], stream["height"] = int(size.group(1)), int(size.group(2))
            continue
        rate = _RATE_RE.match(part)
        if rate:
            # ffmpeg abbreviates large rates: "1k tbn", "90k tbn".
            value = str(Fraction(rate.group(1)) * (1000 if rate.group(2) else 1))
            if rate.group(3) == "fps":
                fps_text = value
            else:
                tbr_text = value
            continue
        hz = _HZ_RE.match(part)
        if hz:
            stream["sample_rate"] = int(hz.group(1))
            if position + 1 < len(parts):
                layout = parts[position + 1]
                stream["channel_layout"] = layout
                stream["channels"] = channel_count(layout)
            if position + 2 < len(parts) and not _KBS_RE.match(parts[position + 2]):
                stream["sample_fmt"] = parts[position + 2].split()[0]
            continue
        kbs = _KBS_RE.match(part)
        if kbs:
            stream["bitrate"] = int(kbs.group(1)) * 1000
            continue
        if position == 1 and stream["kind"] == "video" and not _SIZE_RE.match(part):
            stream["pix_fmt"] = re.split(r"[(\s]", part, maxsplit=1)[0]
            stream.update(_colour_tags(part))
    rate_text = fps_text or tbr_text
    if rate_text and stream["kind"] == "video":
        exact = exact_rate(rate_text)
        stream["frame_rate"] = _rational_text(exact)
        stream["fps"] = float(exact)
    return stream


_FIELD_ORDERS = {"progressive", "top first", "bottom first", "top coded first (swapped)",
                 "bottom coded first (swapped)", "unknown"}


def _colour_tags(pix_fmt_text: str) -> dict[str, str]:
    """Read "yuv420p(tv, bt709/bt709/bt709, progressive)": range, space[/primaries/trc], field order."""
    match = re.search(r"\((.*)\)", pix_fmt_text)
    tags: dict[str, str] = {}
    if not match:
        return tags
    for item in (i.strip() for i in match.group(1).split(",")):
        if item in ("tv", "pc"):
            tags["color_range"] = item
        elif item and item not in _FIELD_ORDERS and "color_space" not in tags and " " not in item:
            tags["color_space"] = item.split("/")[0]
    return tags


# ffmpeg's named layouts (libavutil/channel_layout.c) that are not "N.M" sums.
_NAMED_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "binaural": 2,
    "downmix": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "cube": 8,
    "hexadecagonal": 16,
}


def channel_count(layout: str) -> int | None:
    """Return the channel count of an ffmpeg channel layout name, None when unknown.

    ``"stereo"`` -> 2, ``"5.1(side)"`` -> 6, ``"7.1.4"`` -> 12, ``"3 channels"`` -> 3.
    """
    name = layout.strip()
    match = re.match(r"^(\d+) channels\b", name)
    if match:
        return int(match.group(1))
    base = name.split("(", 1)[0].strip()
    if base in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[base]
    if re.fullmatch(r"\d+(\.\d+){1,2}", base):
        return sum(int(n) for n in base.split("."))
    return None


def exact_rate(value: float | str | Fraction) -> Fraction:
    """Turn a frame rate into an exact fraction, restoring rounded NTSC rates.

    ``"25"`` -> 25, ``29.97`` -> 30000/1001, ``"24000/1001"`` -> 24000/1001, ``"59.94"`` -> 60000/1001.

    Raises
    ------
    ValueError
        When the rate is not a positive number.
    """
    if isinstance(value, Fraction):
        rate = value
    elif isinstance(value, str) and "/" in value:
        num, den = value.split("/", 1)
        rate = Fraction(int(num), int(den))
    else:
        rate = Fraction(str(value))
    if rate <= 0:
        raise InvalidArgument(f"frame rate must be positive, got {value!r}")
    if rate.denominator != 1 and rate.denominator != 1001:
        # ffmpeg prints 2 decimals; n*1000/1001 (ATSC/SMPTE rates) is the usual origin of a fraction.
        for base in range(1, 241):
            ntsc = Fraction(base * 1000, 1001)
            if abs(ntsc - rate) < Fraction(1, 200):
                return ntsc
        return rate.limit_denominator(1001)
    return rate


def _rational_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def rate_text(value: float | str | Fraction) -> str:
    """Return a frame rate as ffmpeg's rational text (``"25"``, ``"30000/1001"``)."""
    return _rational_text(exact_rate(value))


# --------------------------------------------------------------------------- running

# Lines ffmpeg prints around the actual reason for a failure.
_BOILERPLATE = re.compile(
    r"^(Error opening (input|output) files?\b|Conversion failed|At least one output file must be"
    r"|Exiting normally|Error while (opening|filtering)|Nothing was written|size=|frame=|video:"
    r"|Error initializing output stream|Could not write header|Error sending frames|Task finished"
    r"|Terminating thread|Error submitting|Error writing trailer|Error selecting an encoder)"
    r"|misdetection possible|^Press \[q\]",
    re.IGNORECASE,
)
_PREFIX_RE = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")


def error_line(stderr: str | bytes, names: Sequence[str] = ()) -> str:
    """Pick the line of ffmpeg's stderr that says why it failed, as one short lowercase line.

    Parameters
    ----------
    stderr : str or bytes
        What ffmpeg printed.
    names : sequence of str
        Input/output names to strip from the front of a line (``"file:/x.mp4: moov..."``).

    Returns
    -------
    str
        E.g. ``"moov atom not found"``; empty when stderr is empty.
    """
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    candidates: list[str] = []
    for raw in stderr.replace("\r", "\n").splitlines():
        line = _PREFIX_RE.sub("", raw.strip())
        if not line or _BOILERPLATE.search(line):
            continue
        for name in names:
            for prefix in (name + ": ", name.removeprefix("file:") + ": "):
                if line.startswith(prefix):
                    line = line[len(prefix):]
        line = re.sub(r"^Error opening input: ", "", line)
        candidates.append(line)
    if not candidates:
        return ""
    specific = [c for c in candidates if not c.lower().startswith("invalid data found when processing")]
    chosen = (specific or candidates)[-1]
    chosen = " ".join(chosen.split())[:200]
    return chosen[:1].lower() + chosen[1:]


def run(
    args: Sequence[str],
    *,
    input: bytes | None = None,  # noqa: A002 - the subprocess.run name
    timeout: float | None = None,
    error: type[LabelerError] = CorruptFile,
    names: Sequence[str] = (),
) -> bytes:
    """Run ffmpeg with ``args`` (without the program name) and return its stdout.

    ``-hide_banner -nostdin`` are added in front; stdin is ``input`` or nothing.

    Parameters
    ----------
    args : sequence of str
        Arguments after the program name.
    input : bytes, optional
        Data to send on stdin (for ``-i pipe:0``).
    timeout : float, optional
        Seconds before ffmpeg is killed.
    error : type of LabelerError
        Raised on failure: :class:`CorruptFile` when reading, :class:`LabelerError` when writing.
    names : sequence of str
        File names to strip from the front of the error line.

    Raises
    ------
    LabelerError
        ``error`` with the last meaningful stderr line when ffmpeg exits non-zero;
        :class:`UnsafeInput` when it runs past ``timeout``.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        proc = subprocess.run(
            cmd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise UnsafeInput(f"ffmpeg took over {timeout:g} s") from None
    if proc.returncode != 0:
        reason = error_line(proc.stderr, names) or f"exit status {proc.returncode}"
        raise error(f"ffmpeg: {reason}")
    return proc.stdout


@contextlib.contextmanager
def stderr_file() -> Iterator[IO[bytes]]:
    """A temporary file for a long-running ffmpeg's stderr.

    A file never fills up the way a pipe does, so ffmpeg cannot block on a full stderr
    pipe while we block on its stdout (the classic two-pipe deadlock).
    """
    with tempfile.TemporaryFile(prefix="ffmpeg-stderr-") as handle:
        yield handle


def read_tail(handle: IO[bytes], limit: int = 64 << 10) -> bytes:
    """Return the last ``limit`` bytes written to ``handle`` (an ffmpeg stderr file)."""
    handle.flush()
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - limit))
    return handle.read()


def read_up_to(stream: IO[bytes], size: int) -> bytearray:
    """Read ``size`` bytes from a pipe, fewer only at its end (a pipe may return short reads)."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    view.release()
    if got < size:
        del buf[got:]
    return buf


def pipe_chunks(args: Sequence[str], url: str, chunk_bytes: int) -> Iterator[bytearray]:
    """Run ffmpeg ``args`` and yield its stdout in chunks of ``chunk_bytes`` (the last may be shorter).

    stderr goes to a temporary file, so a chatty decoder cannot block the pipe. A consumer that stops
    early (or an exception) kills the process; a failed decode raises :class:`CorruptFile` with
    ffmpeg's reason, after the data it did produce.
    """
    with stderr_file() as err:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        finished = False
        try:
            assert proc.stdout is not None
            while True:
                buf = read_up_to(proc.stdout, chunk_bytes)
                if buf:
                    yield buf
                if len(buf) < chunk_bytes:
                    break
            finished = True
        finally:
            # Abandoned (consumer stopped, or an error): kill. Finished: it has closed stdout; reap it.
            status = stop(proc, kill=not finished)
        if status != 0:
            reason = error_line(read_tail(err), [url]) or f"exit status {status}"
            raise CorruptFile(f"ffmpeg: {reason}")


def stop(proc: subprocess.Popen[bytes], *, kill: bool) -> int:
    """End an ffmpeg process and reap it (no zombie), closing our ends of its pipes.

    Parameters
    ----------
    proc : subprocess.Popen
        The process.
    kill : bool
        Kill it now (an abandoned or failed job) instead of waiting for it to finish.

    Returns
    -------
    int
        Its exit status (negative: the signal that ended it).
    """
    if kill and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    return proc.wait()


def temp_path_beside(path: str | os.PathLike[str]) -> str:
    """Create an empty, uniquely named file next to ``path`` (same suffix) and return its name.

    The file gets the usual permissions (0o666 less the umask), applied by the kernel:
    reading the umask with ``os.umask`` would briefly change it for every thread.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise LabelerError(f"output folder does not exist: {directory}")
    while True:
        tmp = str(directory / f".{target.stem}.{secrets.token_hex(6)}.part{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def commit(tmp: str, path: str | os.PathLike[str]) -> None:
    """Flush ``tmp`` to disk and rename it onto ``path`` (atomic on one file system)."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def discard(tmp: str) -> None:
    """Remove a temporary output, if it is still there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def output_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Give a temporary path beside ``path`` for a program to write; rename it onto ``path`` on success.

    Like :func:`labeler.atomic.atomic_output`, but for writers (ffmpeg) that need a file
    name rather than an open handle. The temporary name keeps the target's suffix so
    ffmpeg picks the same muxer. On any exception it is removed and ``path`` is untouched.
    """
    tmp = temp_path_beside(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
