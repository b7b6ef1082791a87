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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from labeler.errors import CorruptFile, LabelerError, UnsafeInput
from labeler.media.banner import (  # noqa: F401 - re-exported: the stream facts are part of this API
    MediaInfo,
    StreamInfo,
    channel_count,
    exact_rate,
    parse_banner,
    rate_text,
)

#: Keyword arguments of every ffmpeg child: a session of its own, so the Ctrl-C a terminal sends to its
#: foreground process group does not reach it. ffmpeg sets its own SIGINT handler (a worker's SIG_IGN
#: does not carry over), so when ``aigc batch`` turned a Ctrl-C into "finish the running files", their
#: ffmpeg quit under them: a verify was journaled as done with "the visible layer could not be examined:
#: ffmpeg: exit status 255" and skipped on resume. Our code stops its children itself (subprocess.run
#: kills on any exception, the streaming passes in their ``finally``).
CHILD: dict[str, bool] = {"start_new_session": True}

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
    proc = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30,
                          **CHILD)
    match = re.search(r"version\s+n?(\d+)\.(\d+)", proc.stdout)
    if match:
        return int(match.group(1)), int(match.group(2))
    return (99, 0)


def encoder_pix_fmts(name: str, exe: str | None = None) -> tuple[str, ...] | None:
    """Pixel formats the encoder ``name`` of the ffmpeg at ``exe`` (default :func:`ffmpeg_exe`) takes,
    in its order of preference; None when that ffmpeg has no such encoder.

    An encoder that lists none (a hardware wrapper) gives an empty tuple.
    """
    return _encoder_pix_fmts(exe or ffmpeg_exe(), name)


@functools.lru_cache(maxsize=64)
def _encoder_pix_fmts(exe: str, name: str) -> tuple[str, ...] | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return None
    try:
        proc = subprocess.run([exe, "-hide_banner", "-h", f"encoder={name}"], capture_output=True, text=True,
                              timeout=30, **CHILD)
    except (OSError, subprocess.SubprocessError):
        return None
    # "Encoder libx264 [libx264 H.264 ...]:" then "    Supported pixel formats: yuv420p yuvj420p ..."
    if not re.search(rf"^Encoder {re.escape(name)} ", proc.stdout, re.MULTILINE):
        return None
    match = re.search(r"Supported pixel formats:([^\n]*)", proc.stdout)
    return tuple(match.group(1).split()) if match else ()


def input_url(path: str | os.PathLike[str]) -> str:
    """Return the ``file:`` URL ffmpeg should open for a local ``path`` (never a protocol)."""
    return "file:" + os.path.abspath(os.fspath(path))


# --------------------------------------------------------------------------- probe

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
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, **CHILD)
    except subprocess.TimeoutExpired:
        raise UnsafeInput(f"ffmpeg took over {timeout:g} s to read the headers") from None
    text = proc.stderr.decode("utf-8", "replace")
    info = parse_banner(text)
    if info is None:
        reason = error_line(text, [input_url(path)]) or "ffmpeg cannot read this file"
        if reason == "end of file":  # ffmpeg's whole reason for a file cut before its first packet
            reason = "the file ends before any media data (only headers, or cut short): end of file"
        raise CorruptFile(_named_reason(path, reason))
    return info


#: ffmpeg's reason for a WAV header's sample rate over 2^31 - 1 Hz: the 32-bit field read as signed.
_NEGATIVE_RATE = re.compile(r"invalid sample rate: (-\d+)")


def _named_reason(path: str | os.PathLike[str], reason: str) -> str:
    """``reason`` (ffmpeg's, for a file it cannot open) with what is wrong where ffmpeg's words hide it: an
    MP3 that is ID3v2 tags and no audio frame ("invalid argument", or with newer ffmpeg "failed to find
    two consecutive MPEG audio frames"), a WAV whose sample rate field is over
    2^31 - 1 ("invalid sample rate: -1" for 4294967295: ffmpeg reads the unsigned field as signed)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
            size = handle.seek(0, os.SEEK_END)
    except OSError:
        return reason
    if head[:3] == b"ID3":
        # ffmpeg 5.1 says "invalid argument", 7+ "failed to find two consecutive MPEG audio frames."
        from labeler.media.mp3_cut import mp3_without_frames

        return mp3_without_frames(head, size) or reason
    rate = _NEGATIVE_RATE.fullmatch(reason)
    if rate is not None and head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return f"invalid sample rate in the WAV header: {int(rate[1]) + (1 << 32)} Hz"
    return reason


# --------------------------------------------------------------------------- running

# Lines ffmpeg prints around the actual reason for a failure.
_BOILERPLATE = re.compile(
    r"^(Error opening (input|output) files?\b|Conversion failed|At least one output file must be"
    r"|Exiting normally|Error while (opening|filtering)|Nothing was written|size=|frame=|video:"
    r"|Error initializing output stream|Could not write header|Error sending frames|Task finished"
    r"|Terminating thread|Error submitting|Error writing trailer|Error selecting an encoder"
    r"|Could not open encoder|Error marking filters as finished)"
    r"|misdetection possible|^Press \[q\]",
    re.IGNORECASE,
)
# ffmpeg 7+ may nest contexts: "[vost#0:0/libx264 @ 0x55be] [enc:libx264 @ 0x55bf] Could not open ..."
_PREFIX_RE = re.compile(r"^(?:\[[^\]]*@ 0x[0-9a-f]+\]\s*)+")



def error_line(stderr: str | bytes, names: Sequence[str] = ()) -> str:
    """Pick the line of ffmpeg's stderr that says why it failed, as one short lowercase line.

    A demuxer's word that the input ended early (:func:`cut_short`) wins over the failures it causes
    further on, and reads ``"the file is cut short (...)"``: a Matroska file cut before its first frame
    made ffmpeg 5.1 end with "error marking filters as finished" (ffmpeg 9: "cannot determine format of
    input 0:0 after EOF"), which is what the pixel layers reported until 2026-12-07.

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
    short = next((line for line in stderr.splitlines() if _CUT_SHORT.search(line)), None)
    if short is not None:
        return f"the file is cut short ({_reason_line(short, names) or short.strip()})"
    return _reason_line(stderr, names)


def _reason_line(stderr: str, names: Sequence[str]) -> str:
    """:func:`error_line` without its preference for a cut-short line: the last meaningful line."""
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
    refuse_cut_short: bool = False,
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
    refuse_cut_short : bool
        Also refuse a run that exits 0 but whose stderr says the input ended early
        (:func:`cut_short`): a live Matroska recording cut mid-way decodes to its cut without an error,
        and a labeling pass would write a copy with its end missing.

    Raises
    ------
    LabelerError
        ``error`` with the last meaningful stderr line when ffmpeg exits non-zero;
        :class:`UnsafeInput` when it runs past ``timeout``; :class:`CorruptFile` for an input cut short
        (``refuse_cut_short``).
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        proc = subprocess.run(
            cmd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            **CHILD,
        )
    except subprocess.TimeoutExpired:
        raise UnsafeInput(f"ffmpeg took over {timeout:g} s") from None
    if proc.returncode != 0:
        reason = error_line(proc.stderr, names) or f"exit status {proc.returncode}"
        raise error(f"ffmpeg: {reason}")
    if refuse_cut_short and (short := cut_short(proc.stderr, names)):
        raise CorruptFile(short)
    return proc.stdout


#: What demuxers print, at error level, when the data ends before the file's index or sizes say
#: (MP4/MOV: samples listed past the end; Matroska: a segment or cluster cut short). ffmpeg then stops as
#: at a normal end with exit status 0, and ``-xerror`` does not see it.
_CUT_SHORT = re.compile(r"partial file|file ended prematurely", re.IGNORECASE)


def cut_short(stderr: str | bytes, names: Sequence[str] = ()) -> str | None:
    """The reason, as one line, when a decoder's ``stderr`` says its input ended early, else ``None``.

    A labeling pass checks this after a decoder that exited 0, so that a truncated file is refused
    instead of labeled with its last frames missing.
    """
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    hit = next((line for line in stderr.splitlines() if _CUT_SHORT.search(line)), None)
    if hit is None:
        return None
    return f"the file is cut short (ffmpeg: {_reason_line(hit, names) or hit.strip()})"


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


#: Capacity (bytes) asked for the pipes that carry raw frames. Linux gives a pipe 64 KiB, so a 3 MB
#: 1080p frame crosses in ~48 wake-ups of reader and writer; 1 MiB is what an unprivileged process may
#: ask (``/proc/sys/fs/pipe-max-size``).
PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031  # linux/fcntl.h; Python names it fcntl.F_SETPIPE_SZ from 3.10, on Linux only


def widen_pipe(pipe: IO[bytes] | int, size: int = PIPE_BYTES) -> int:
    """Ask the kernel to give the pipe ``pipe`` (a file object or descriptor) ``size`` bytes of buffer.

    Returns the capacity granted (bytes), or 0 where that cannot be set (not Linux, not a pipe, over the
    system's limit): the pipe then works as before, only with more wake-ups per frame.
    """
    try:
        import fcntl

        fd = pipe if isinstance(pipe, int) else pipe.fileno()
        return int(fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), size))
    except (ImportError, OSError, ValueError, AttributeError):
        return 0


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


def pipe_chunks(args: Sequence[str], url: str, chunk_bytes: int, *,
                refuse_cut_short: bool = False) -> Iterator[bytearray]:
    """Run ffmpeg ``args`` and yield its stdout in chunks of ``chunk_bytes`` (the last may be shorter).

    stderr goes to a temporary file, so a chatty decoder cannot block the pipe. A consumer that stops
    early (or an exception) kills the process; a failed decode raises :class:`CorruptFile` with
    ffmpeg's reason, after the data it did produce. With ``refuse_cut_short`` (labeling) an input that
    ended before its index says (:func:`cut_short`) raises :class:`CorruptFile` too, although ffmpeg
    exits 0 for it; readers (verify) leave it off and read what is there.
    """
    with stderr_file() as err:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, **CHILD)
        finished = False
        try:
            assert proc.stdout is not None
            widen_pipe(proc.stdout)
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
        if refuse_cut_short and (short := cut_short(read_tail(err), [url])):
            raise CorruptFile(short)


def feed(args: Sequence[str], blocks: Iterable[Any], names: Sequence[str]) -> str | None:
    """Run ffmpeg ``args`` with ``blocks`` (NumPy arrays, written as little-endian float32) on its
    standard input, one block in memory at a time.

    Returns None when it exits 0 having read everything, else why not: ffmpeg's error line (file
    ``names`` stripped from it, :func:`error_line`) or its exit status. An exception from ``blocks``
    (a decoder feeding them failed) kills the process and propagates.

    Whenever it stops before the end of ``blocks`` (the encoder failed, the pipe broke, an exception), it
    closes their iterator (when it has ``close``): a generator that owns an ffmpeg decoder kills and
    reaps it only when closed, and a caller that kept the exception (whose traceback holds the
    generator) kept the decoder alive until 2026-12-07.
    """
    source = iter(blocks)
    with stderr_file() as err:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, **CHILD)
        finished = broken = False
        try:
            assert proc.stdin is not None
            step = 1 << 20
            for data in source:
                raw = memoryview(data.astype("<f4", copy=False).reshape(-1)).cast("B")
                for start in range(0, len(raw), step):
                    proc.stdin.write(raw[start:start + step])
            proc.stdin.close()
            finished = True
        except BrokenPipeError:
            broken = True  # ffmpeg stopped reading: it is exiting and its stderr says why
        finally:
            # Any other exception (KeyboardInterrupt, a failed decode upstream) abandons the job.
            status = stop(proc, kill=not (finished or broken))
            # a no-op for an exhausted generator or one that raised; ends the decoder of an abandoned one
            close = getattr(source, "close", None)
            if close is not None:
                close()
        if status != 0 or not finished:
            return error_line(read_tail(err), list(names)) or f"exit status {status}"
    return None


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


#: Output suffixes whose muxers draw random IDs (Matroska segment and track UIDs, Ogg stream serials)
#: unless asked to be bit-exact: the same input labeled twice gave different bytes (60 of them in a
#: Matroska file), which defeats caches, de-duplication and content-hash IDs.
_RANDOM_ID_SUFFIXES = {".mkv", ".mka", ".mk3d", ".webm", ".weba", ".ogg", ".oga", ".opus"}


def reproducible(path: str | os.PathLike[str]) -> list[str]:
    """``["-fflags", "+bitexact"]`` (an output option) for an output at ``path`` whose muxer would
    otherwise draw random IDs, else ``[]``. Its only other effect: the file's ``encoder`` tag reads
    ``Lavf`` without the library version."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    return ["-fflags", "+bitexact"] if suffix in _RANDOM_ID_SUFFIXES else []


def temp_path_beside(path: str | os.PathLike[str]) -> str:
    """Create an empty, uniquely named file next to ``path`` (same suffix) and return its name; an existing
    ``path`` that is not a regular file (or a link to one) or a folder is refused
    (:func:`labeler.atomic.check_output`).

    The file gets the usual permissions (0o666 less the umask), applied by the kernel:
    reading the umask with ``os.umask`` would briefly change it for every thread.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise LabelerError(f"output folder does not exist: {directory}")
    from labeler.atomic import check_output, part_name

    check_output(target)  # a device or a FIFO is never replaced by the rename that follows

    while True:
        # part_name keeps the temporary name within NAME_MAX (a 240-character output name failed)
        tmp = str(directory / part_name(target.stem, secrets.token_hex(6), target.suffix))
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise LabelerError(f"cannot create a file beside {target.name}: {exc.strerror or exc}") from None


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
