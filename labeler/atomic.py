"""Atomic output: write to a temporary file beside the target, then rename into place."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from labeler.errors import LabelerError


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
    fd, tmp = _create_beside(target)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


#: Prefix of the staging folders multi-step labeling makes beside its output; the owner's PID follows.
STAGING_PREFIX = ".aigc-"
_STAGING = re.compile(r"^\.aigc-(\d+)-")


def staging_folder(directory: Path) -> tempfile.TemporaryDirectory[str]:
    """A private folder beside an output (same file system, so the final rename is atomic).

    Its name carries this process's ID, so a later run can tell a folder left by a killed process from
    one that a live process is still using (:func:`clean_stale_staging`).
    """
    return tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=directory)


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


def _create_beside(target: Path) -> tuple[int, str]:
    # O_EXCL with mode 0o666 lets the kernel apply the umask, as for any new file; mkstemp would
    # give 0600 and fixing that needs os.umask(), which is process-wide and not thread-safe.
    for _ in range(100):
        tmp = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise LabelerError(f"cannot write {target}: {exc.strerror or exc}") from None
    raise LabelerError(f"cannot create a temporary file beside {target}")


def check_paths(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, overwrite: bool
) -> tuple[Path, Path]:
    """Check an input/output pair before any work: ``src`` is a file, ``dst`` is not ``src``, and an
    existing ``dst`` is replaced only when ``overwrite``. Returns both as :class:`~pathlib.Path`.

    Raises :class:`LabelerError` with a one-line reason otherwise.
    """
    src_p, dst_p = Path(src), Path(dst)
    if not src_p.is_file():
        raise LabelerError("no such file" if not src_p.exists() else "not a regular file")
    if dst_p.exists():
        if os.path.samefile(src_p, dst_p):
            raise LabelerError("refusing to overwrite the input file; give another output path")
        if not overwrite:
            raise LabelerError(f"output {dst_p} exists (use --overwrite to replace it)")
    return src_p, dst_p
