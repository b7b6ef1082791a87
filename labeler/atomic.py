"""Atomic output: write to a temporary file beside the target, then rename into place."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from labeler.errors import OVERWRITE_HINT, InvalidArgument, LabelerError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file (read-write, binary) next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it
    was, so a failed write never leaves a partial output behind.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise LabelerError(f"output folder does not exist: {directory}")
    _refuse_special(target, _stat(target, "output"))
    fd, tmp = _create_beside(target)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:  # a full disk, an I/O error: the output's fault, not the writer's
                raise LabelerError(f"cannot write {target}: {exc.strerror or exc}") from None
        try:
            os.replace(tmp, target)
        except OSError as exc:  # e.g. a folder created at ``path`` meanwhile: one line, not a traceback
            raise LabelerError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


#: ``os.link`` errors that mean "this file system has no hard links", not "the target exists".
_NO_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, getattr(errno, "ENOTSUP", -1),
             getattr(errno, "EOPNOTSUPP", -1), errno.ENOSYS}


def place(staged: str | os.PathLike[str], target: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Move the finished file ``staged`` onto ``target`` (same file system: one atomic step).

    With ``overwrite`` an existing ``target`` is replaced (``os.replace``). Without it the move fails
    when ``target`` exists *at that moment*, not only when it existed at the start: two writers given
    the same output (two threads of a backend, two batch runs) would otherwise both succeed and one
    result would silently replace the other. The file is linked in (``os.link`` fails on an existing
    name, atomically) and its staged name removed; on a file system without hard links the name is
    checked just before ``os.replace`` (a window of microseconds instead of the whole job).

    Raises
    ------
    LabelerError
        ``target`` exists and not ``overwrite`` (the one-line "exists" error of :func:`check_paths`),
        or the move fails (a full or read-only folder).
    """
    staged, target = os.fspath(staged), Path(target)
    if not overwrite:
        try:
            os.link(staged, target)
        except FileExistsError:
            raise LabelerError(f"output {target} exists ({OVERWRITE_HINT}, replaces it)") from None
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise LabelerError(f"cannot write {target}: {exc.strerror or exc}") from None
            if os.path.lexists(target):
                raise LabelerError(f"output {target} exists ({OVERWRITE_HINT}, replaces it)") from None
        else:
            with contextlib.suppress(OSError):  # the output is in place; the staging folder goes anyway
                os.unlink(staged)
            return
    try:
        os.replace(staged, target)
    except OSError as exc:  # e.g. a folder created at ``target`` meanwhile: one line, not a traceback
        raise LabelerError(f"cannot write {target}: {exc.strerror or exc}") from None


#: Prefix of the staging folders multi-step labeling makes beside its output; the owner's PID follows.
STAGING_PREFIX = ".aigc-"
_STAGING = re.compile(r"^\.aigc-(\d+)-")


def staging_folder(directory: Path) -> tempfile.TemporaryDirectory[str]:
    """A private folder beside an output (same file system, so the final rename is atomic).

    Its name carries this process's ID, so a later run can tell a folder left by a killed process from
    one that a live process is still using (:func:`clean_stale_staging`).
    """
    try:
        return tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=directory)
    except OSError as exc:  # a read-only or full folder: one line, as atomic_output says it
        raise LabelerError(f"cannot write in {directory}: {exc.strerror or exc}") from None


def clean_stale_staging(directory: Path) -> list[Path]:
    """Remove staging folders in ``directory`` whose owning process is gone (killed mid-write).

    A folder is removed only when its name carries a process ID (:func:`staging_folder`) and no such
    process exists; a live process's folder (ours, another user's, or a reused ID's) is left alone.
    Never raises: a folder that cannot be removed stays. Returns the folders removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING.match(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False) or _alive(int(match.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.exists(entry.path):
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process (or a number we cannot ask about): not ours to clean
    return True


#: Longest file name (bytes, in the file system's encoding) on the file systems in use (NAME_MAX).
NAME_MAX = 255
#: What a temporary name adds to the output's: ``.`` before, ``.`` + 12 hex digits + ``.part`` after.
_PART_EXTRA = len(".") + len(".") + 12 + len(".part")


def part_name(name: str, token: str, suffix: str = "") -> str:
    """The temporary name ``.NAME.TOKEN.part[SUFFIX]`` for an output called ``name``, within
    :data:`NAME_MAX`.

    Parameters
    ----------
    name : str
        The output's file name (or its stem, when ``suffix`` carries the extension).
    token : str
        12 random hex digits (``secrets.token_hex(6)``): they keep the name unique.
    suffix : str
        Appended after ``.part``, for writers that choose the container by extension (ffmpeg).

    A name too long to take the extra characters is cut (on a character boundary, counted in the file
    system's encoding) rather than refused: the token keeps it unique, the folder keeps it beside the
    output, and the batch clean-up still knows it by its shape.
    """
    room = NAME_MAX - _PART_EXTRA - len(os.fsencode(suffix))
    stem = name
    # Cut characters, not bytes: a multi-byte character split in two is not a valid name on some
    # file systems. A few hundred short encodes at most, and only for names near the limit.
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return f".{stem}.{token}.part{suffix}"


def _create_beside(target: Path) -> tuple[int, str]:
    # O_EXCL with mode 0o666 lets the kernel apply the umask, as for any new file; mkstemp would
    # give 0600 and fixing that needs os.umask(), which is process-wide and not thread-safe.
    for _ in range(100):
        tmp = str(target.parent / part_name(target.name, secrets.token_hex(6)))
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise LabelerError(f"cannot write {target}: {exc.strerror or exc}") from None
    raise LabelerError(f"cannot create a temporary file beside {target}")


def write_whole(target: Path, data: bytes, *, private: bool, overwrite: bool) -> bool:
    """Write a small file (a key, a certificate) whole: ``data`` in a new file, fsync'ed, renamed onto
    ``target`` with ``overwrite``; False, nothing written, when ``target`` exists without it.

    Without ``overwrite`` the file is created at ``target`` itself with ``O_EXCL``, so nothing already
    there (not even a dangling link) is replaced, and a file that cannot be written whole is removed.
    With it, the new file is written beside ``target`` (mode ``0600`` when ``private``, else ``0644``,
    both less the umask; ``0600`` whatever the umask when ``private``) and renamed onto it, so the old
    file stays whole until the new one is on disk. A symbolic link is refused then: replacing the link
    would leave its target holding the old content, and writing through it would change a file
    elsewhere (and make it ``0600``). A folder, a device or a FIFO is refused too.

    Raises
    ------
    LabelerError
        What is at ``target`` cannot be replaced (with ``overwrite``), or the file cannot be written.
    """
    if not overwrite:
        return _write_new(target, data, target, private)
    _check_replaceable(target)
    for _ in range(100):
        tmp = target.parent / part_name(target.name, secrets.token_hex(6))
        if _write_new(tmp, data, target, private):
            break
    else:
        raise LabelerError(f"cannot create a temporary file beside {target}")
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LabelerError(f"{target}: {exc.strerror or exc}") from None
    return True


def _check_replaceable(target: Path) -> None:
    """Refuse to replace ``target`` unless it is missing or a regular file (not a link to one)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LabelerError(f"{target}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode):
        raise LabelerError(f"{target} is a symbolic link; refusing to replace it: replace the link's target "
                           "by hand, or give the target's own path")
    if stat.S_ISDIR(mode):
        raise LabelerError(f"{target} is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise LabelerError(f"{target} is not a regular file (a device, a FIFO or a socket); give a file name")


def _write_new(path: Path, data: bytes, target: Path, private: bool) -> bool:
    """Create ``path`` (O_EXCL), write ``data`` and fsync it; False when ``path`` exists. A file that
    cannot be written whole is removed; errors name ``target``, the file the user asked for."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o600 if private else 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise LabelerError(f"{target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if private:
                os.fchmod(handle.fileno(), 0o600)  # whatever the umask: a key is its owner's only
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:  # a full disk, Ctrl-C: no half-written file left behind
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise LabelerError(f"{target}: {exc.strerror or exc}") from None
        raise
    return True


def check_paths(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, overwrite: bool
) -> tuple[Path, Path]:
    """Check an input/output pair before any work: ``src`` is a file, ``dst`` is not ``src`` nor a
    folder nor any other file that is not a regular file (a device, a FIFO, a socket, or a symbolic link
    to one), and an existing ``dst`` is replaced only when ``overwrite``. Returns both as
    :class:`~pathlib.Path`.

    A ``dst`` that is a symbolic link to a regular file is replaced by the output (the link, not the
    file it points to), as ``os.replace`` does.

    Raises
    ------
    InvalidArgument
        A path that is not a str or path-like, or one no file can have (a NUL character).
    LabelerError
        With a one-line reason otherwise (a missing input, a folder or a device as the output, a name
        too long).
    """
    src_p, src_st = _input(src)
    dst_p = _as_path(dst, "output")
    dst_st = _stat(dst_p, "output")
    if dst_st is not None:
        if (src_st.st_dev, src_st.st_ino) == (dst_st.st_dev, dst_st.st_ino):
            raise LabelerError("refusing to overwrite the input file; give another output path")
        # os.replace cannot put a file where a folder is, overwrite or not: say so before any work.
        if stat.S_ISDIR(dst_st.st_mode):
            raise LabelerError(f"output {dst_p} is a folder; give a file name")
        _refuse_special(dst_p, dst_st)
        if not overwrite:
            raise LabelerError(f"output {dst_p} exists ({OVERWRITE_HINT}, replaces it)")
    return src_p, dst_p


def check_input(src: str | os.PathLike[str]) -> Path:
    """``src`` as a :class:`~pathlib.Path` once it is known to name a regular file (or a link to one).

    Raises
    ------
    InvalidArgument
        Not a str or path-like (``None``, bytes), or a name with a NUL character.
    LabelerError
        ``SRC: no such file``, ``SRC: not a regular file`` (a folder, a FIFO...), or why it cannot be
        looked at.
    """
    return _input(src)[0]


def check_output(dst: str | os.PathLike[str]) -> Path:
    """``dst`` as a :class:`~pathlib.Path`, refused up front when no file can be written there: not a str
    or path-like (:class:`InvalidArgument`), a folder (``os.replace`` cannot put a file there), or another
    file that is not a regular file (a device, a FIFO: see :func:`check_paths`)."""
    path = _as_path(dst, "output")
    st = _stat(path, "output")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise LabelerError(f"output {path} is a folder; give a file name")
    _refuse_special(path, st)
    return path


def _refuse_special(path: Path, st: os.stat_result | None) -> None:
    """Refuse an existing output that is neither a regular file nor a folder (``st`` follows links).

    ``os.replace`` would put a regular file where a device, a FIFO or a socket was (``aigc label x.jpg
    /dev/null --overwrite`` replaced /dev/null), and through a link to one, the link: neither is what
    naming such a file means. Folders are left to the callers, which word that refusal themselves.
    """
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        raise LabelerError(f"output {path} exists and is not a regular file (a device, a FIFO or a socket, "
                           "or a link to one); give a file name")


def _input(src: object) -> tuple[Path, os.stat_result]:
    path = _as_path(src, "input")
    st = _stat(path, "input")
    # Named as the caller gave it (Path() drops a "./"): a library caller's message says which file, and
    # aigc, which puts "FILE: " before a reason, leaves that out for a reason that names it already.
    given = src if isinstance(src, str) else os.fspath(path)
    if st is None:
        raise LabelerError(f"{given}: no such file")
    if not stat.S_ISREG(st.st_mode):
        raise LabelerError(f"{given}: not a regular file")
    return path, st


def _as_path(path: object, what: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgument(f"the {what} path must be a str or path-like, not {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):  # a PathLike giving bytes: the rest of the toolkit works on str paths
        raise InvalidArgument(f"the {what} path must be a str or path-like giving a str, not bytes")
    if "\0" in text:
        raise InvalidArgument(f"the {what} path contains a NUL character")
    return Path(text)


def _stat(path: Path, what: str) -> os.stat_result | None:
    """``os.stat`` of ``path`` (symbolic links followed), None when there is nothing there; other
    failures (a name too long, no permission) as one line."""
    try:
        return path.stat()
    except OSError as exc:
        # As pathlib's exists(): a missing name, a file used as a folder, a symlink loop is "nothing there"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return None
        raise LabelerError(f"cannot use the {what} path {path}: {exc.strerror or exc}") from None
