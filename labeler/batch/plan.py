"""Planning a batch: which files to run (walking SRC or reading a list, never holding the whole list),
the item queued for each one, and DST made ready (folders created, a killed run's leftovers removed).

The batch's own files are never sources: the label journal, temporary outputs (``.NAME.HEX.part``,
``.aigc-*/``) and a DST inside SRC.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.batch.jobs import problem_record
from labeler.batch.journal import LABEL_JOURNAL, resume_key
from labeler.errors import LabelerError

if TYPE_CHECKING:
    from labeler.batch.task import BatchTask

# Temporary names left by labeler.atomic (".NAME.HEX12.part") and labeler.pipeline (".aigc-XXXX/").
_PART_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")
_TMPDIR_PREFIX = ".aigc-"

OnError = Callable[[str, str], None]
#: One file to submit: its path relative to SRC, size, ``mtime_ns`` (with the path, the resume key) and
#: how many times a worker already died on it.
Item = tuple[str, int | None, int | None, int]


def iter_sources(
    src: Path,
    *,
    list_file: Path | None = None,
    on_error: OnError | None = None,
    exclude: tuple[Path, ...] = (),
) -> Iterator[Path]:
    """Stream the files to process, folder by folder.

    Parameters
    ----------
    src : Path
        SRC folder. Symlinks to folders are followed, with loop detection (a link back to an ancestor is
        reported, not followed); symlinks to files are yielded like files.
    list_file : Path, optional
        Instead of walking SRC: one path per line (UTF-8; blank lines and ``#`` comments skipped),
        relative to SRC or absolute under SRC. Read line by line.
    on_error : callable, optional
        ``on_error(path, reason)`` for what cannot be walked: unreadable folders, symlink loops, dangling
        links, list entries outside SRC or missing. Without it such entries are skipped silently.
    exclude : tuple of Path
        Files or folders never yielded nor entered (DST inside SRC, the journal). Label journals
        (``.aigc-journal.jsonl``) and temporary outputs (``.NAME.HEX.part``, ``.aigc-*/``) are always
        left out, so verifying a DST does not verify its journal.

    Yields
    ------
    Path
        ``src / relative`` for each regular file (or link to one).

    Notes
    -----
    Memory is O(depth): one open ``os.scandir`` iterator per level. The order is the file system's
    (not sorted: sorting would hold a whole folder's names); resuming does not depend on it.
    """
    report = on_error or (lambda _p, _r: None)
    skip = {_ident(p) for p in exclude}
    skip.discard(None)
    if list_file is not None:
        yield from _iter_list(Path(src), Path(list_file), report, skip)
        return
    yield from _walk(Path(src), report, skip)


def _walk(root: Path, report: OnError, skip: set) -> Iterator[Path]:
    """The regular files under ``root``, depth first, following folder links without looping."""
    root_id = _ident(root)
    # Depth-first stack of (folder, its open scandir iterator, ancestors' (dev, ino)): only the open
    # levels are held, never the tree nor a whole folder listing.
    stack: list[tuple[Path, Iterator[os.DirEntry[str]], frozenset]] = []
    try:
        try:
            stack.append((root, os.scandir(root), frozenset({root_id})))
        except OSError as exc:
            report(os.fspath(root), f"cannot read folder: {exc.strerror or exc}")
            return
        while stack:
            folder, entries, ancestors = stack[-1]
            try:
                entry = next(entries, None)
            except OSError as exc:  # a folder that fails mid-listing: report it, keep what was read
                entry = None
                report(os.fspath(folder), f"cannot read folder: {exc.strerror or exc}")
            if entry is None:
                stack.pop()
                _close(entries)
                continue
            if _own_file(entry.name):
                continue
            path = folder / entry.name
            try:
                st = entry.stat()  # follows links: a link to a folder is walked as a folder
            except OSError as exc:
                if entry.is_symlink():
                    why = "symlink loop" if exc.errno == errno.ELOOP else "dangling symlink"
                    report(os.fspath(path), f"{why}: {exc.strerror or exc}")
                else:
                    report(os.fspath(path), exc.strerror or str(exc))
                continue
            ident = (st.st_dev, st.st_ino)
            if ident in skip:
                continue
            if stat.S_ISDIR(st.st_mode):
                if ident in ancestors:
                    report(os.fspath(path), "symlink loop: links back to a folder above it; not followed")
                    continue
                try:
                    stack.append((path, os.scandir(path), ancestors | {ident}))
                except OSError as exc:
                    report(os.fspath(path), f"cannot read folder: {exc.strerror or exc}")
            elif stat.S_ISREG(st.st_mode):
                yield path
            else:
                report(os.fspath(path), "not a regular file (device, FIFO or socket); skipped")
    finally:
        # An abandoned generator (Ctrl-C, early stop) must not leak one open folder handle per level.
        for _, entries, _ in stack:
            _close(entries)


def _own_file(name: str) -> bool:
    """Our bookkeeping (journal, temporary outputs of a running or killed batch): never a source."""
    return name == LABEL_JOURNAL or name.startswith(_TMPDIR_PREFIX) or bool(_PART_RE.match(name))


def _close(entries: Iterator[os.DirEntry[str]]) -> None:
    close = getattr(entries, "close", None)
    if close is not None:
        close()


def _iter_list(root: Path, list_file: Path, report: OnError, skip: set) -> Iterator[Path]:
    try:
        handle = open(list_file, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 - with below
    except OSError as exc:
        raise LabelerError(f"cannot read list file {list_file}: {exc.strerror or exc}") from None
    with handle:
        for line in handle:
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            path = Path(text)
            if path.is_absolute():
                # Under SRC as given, or as an absolute path (SRC given relative: `batch label src/ ...`
                # with a list of /abs/src/... lines); either way the file is SRC / its relative path, so
                # its journal key is the one the walk gives it.
                inside = _under(path, root)
                if inside is None:
                    report(text, f"outside SRC ({root}); skipped")
                    continue
                path = root / inside
            else:
                path = root / path
            if ".." in path.relative_to(root).parts:
                report(text, "'..' in a list entry; skipped")
                continue
            try:
                st = os.stat(path)
            except OSError as exc:
                report(os.fspath(path), exc.strerror or str(exc))
                continue
            if (st.st_dev, st.st_ino) in skip:
                continue
            if not stat.S_ISREG(st.st_mode):
                report(os.fspath(path), "not a regular file; skipped")
                continue
            yield path


def _under(path: Path, root: Path) -> Path | None:
    """``path`` (absolute) relative to ``root`` as given or made absolute, or None when not under it."""
    for base in (root, Path(os.path.abspath(root))):
        try:
            return path.relative_to(base)
        except ValueError:
            continue
    return None


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def prepare_dst(task: BatchTask, journal: Path, done_keys: set[int]) -> tuple[Path, ...]:
    """Make DST (label, propagate) and clean a killed run's leftovers from it; return what the walk must
    leave out."""
    if task.kind in ("label", "propagate"):
        # Exists before the walk starts, so a DST inside SRC is recognised and never walked into.
        Path(task.dst_root or "").mkdir(parents=True, exist_ok=True)
        if done_keys:
            clean_partials(Path(task.dst_root or ""))
    # an ID list kept beside the uploads is the platform's bookkeeping, not an upload
    ids = (Path(task.propagate.ids_file),) if task.kind == "propagate" and task.propagate.ids_file else ()
    return (journal, *ids) + ((Path(task.dst_root),) if task.dst_root else ())


def queue_item(
    task: BatchTask, path: Path, src_root: Path, done_keys: set[int], skip: Callable[[int], None],
    record: Callable[[dict[str, Any]], None],
) -> Item | None:
    """The (rel, size, mtime_ns, attempts) to submit, or None when skipped (``skip(key)``) or recorded."""
    rel = relative(path, src_root)
    if rel is None:
        record(problem_record(task, os.fspath(path), os.fspath(path), "outside SRC; skipped"))
        return None
    try:
        st = os.stat(path)
    except OSError as exc:
        if (key := resume_key(rel, None, None)) in done_keys:
            skip(key)
            return None
        record(problem_record(task, rel, os.fspath(path), exc.strerror or str(exc)))
        return None
    if (key := resume_key(rel, st.st_size, st.st_mtime_ns)) in done_keys:
        skip(key)
        return None
    return rel, st.st_size, st.st_mtime_ns, 0


def relative(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def clean_partials(dst_root: Path) -> int:
    """Remove temporary outputs a killed label batch left in DST; return how many."""
    removed = 0
    if not dst_root.is_dir():
        return 0
    stack = [dst_root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name.startswith(_TMPDIR_PREFIX):
                        import shutil

                        shutil.rmtree(entry.path, ignore_errors=True)
                        removed += 1
                    else:
                        stack.append(Path(entry.path))
                elif _PART_RE.match(entry.name) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    return removed
