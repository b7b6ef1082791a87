"""Atomic output: write to a temporary file beside the target, then rename into place."""

from __future__ import annotations

import contextlib
import os
import secrets
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
