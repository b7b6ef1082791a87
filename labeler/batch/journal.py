"""The resumable journal: one JSON line per finished file, written by the process that runs the batch.

Each finished file (success or failure) is one JSON line, written whole, flushed at once and fsync'ed
every :data:`FSYNC_EVERY` lines and at the end. A file is identified by its path relative to SRC, its
size and its ``mtime_ns`` (:func:`resume_key`): a re-run skips every file whose key is in the journal,
and redoes a file that changed since. A line torn by a SIGKILL is cut off before appending, so the
journal stays valid JSON Lines. For ``label`` the journal defaults to ``DST/.aigc-journal.jsonl``; for
``verify`` the report file itself is the journal (each line is ``Report.to_dict()`` plus a ``batch``
object with the key), so a resumed verification appends to the same report.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from labeler.errors import LabelerError

if TYPE_CHECKING:
    from labeler.batch.task import BatchTask

#: Journal lines between two fsyncs (each line is flushed to the OS at once; fsync guards power loss).
FSYNC_EVERY = 32
#: Default name of the label journal inside DST.
LABEL_JOURNAL = ".aigc-journal.jsonl"
#: How a journal line begins (label: ``path`` first; verify: the report's ``schema``): a file whose only
#: line was torn by a kill is still ours when what is left of it begins so.
_LINE_STARTS = (b'{"path":', b'{"schema":')
#: Open without waiting: should a FIFO take the journal's place after the check, open() must not block.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def default_journal(task: BatchTask) -> Path:
    """``DST/.aigc-journal.jsonl`` for label and propagate; verify has no default (the report file is its
    journal)."""
    if task.kind in ("label", "propagate") and task.dst_root:
        return Path(task.dst_root) / LABEL_JOURNAL
    raise LabelerError("a verify batch needs a report path (it is also the journal)")


def resume_key(rel: str, size: int | None, mtime_ns: int | None) -> int:
    # An 8-byte digest per done file keeps the resume set at ~70 bytes per entry even for millions.
    raw = f"{rel}\0{size}\0{mtime_ns}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def record_key(record: dict[str, Any]) -> int | None:
    key = record.get("batch", record)
    if not isinstance(key, dict) or not isinstance(key.get("path"), str):
        return None
    return resume_key(key["path"], key.get("size"), key.get("mtime_ns"))


def read_journal(path: Path, *, retry_errors: bool = False, task: str | None = None,
                 failed: set[int] | None = None, kind: str | None = None) -> tuple[set[int], int, int]:
    """The resume keys in a journal, the byte length of its complete lines, and how many of its files
    only another task did.

    A journal that does not exist is empty. One that is not a regular file (a device, a FIFO: reading
    ``/dev/stdout`` blocked), or a non-empty file whose first line is not a journal line (docs/batch.md,
    "Journal lines"; of ``kind``'s, ``"label"``, ``"verify"`` or ``"propagate"``, when given) is refused
    with a :class:`~labeler.errors.LabelerError`: the batch would cut it after its last newline and append
    to it.

    Lines that are not JSON objects (a line torn by a SIGKILL) are ignored. A file's last line decides
    what it is. With ``retry_errors``, a file whose last line records a failure is not done. With
    ``task`` (:meth:`BatchTask.fingerprint`), a file whose last line was written by a task with other
    options is not done either (it is done again: a run with other layers or another producer must not
    skip it, nor a run back to the first options skip what a run with others relabeled since: until
    2026-12-08 any earlier line of this task's counted); lines without a fingerprint (journals written
    before it existed) count as this task's. ``failed``, when given, receives the done keys whose last
    line records a failure (a re-run skips them, but their errors still stand).
    """
    state: dict[int, tuple[bool, bool]] = {}  # key -> (last line this task's, last line a failure)
    good = 0
    handle = _open_journal(path, os.O_RDONLY, kind)
    if handle is None:
        return set(), 0, 0
    with handle:
        for line in handle:
            if not line.endswith(b"\n"):
                if not good and not any(line.startswith(s) or s.startswith(line) for s in _LINE_STARTS):
                    raise _not_a_journal(path, kind)  # no complete line, nor the start of one of ours
                break  # torn tail: cut off before appending
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not good and not _is_journal_line(record, kind):
                # Appending would cut the file after its last newline: a JPEG, an input, someone's notes.
                raise _not_a_journal(path, kind)
            good += len(line)
            if not isinstance(record, dict):
                continue
            key_part = record.get("batch", record)
            written_by = key_part.get("task") if isinstance(key_part, dict) else None
            key = record_key(record)
            if key is None:
                continue
            state[key] = (task is None or written_by is None or written_by == task, is_failed(record))
    done = {key for key, (mine, bad) in state.items() if mine and not (retry_errors and bad)}
    if failed is not None:
        failed.update(key for key in done if state[key][1])
    others = sum(1 for mine, _bad in state.values() if not mine)
    return done, good, others


def _is_journal_line(record: object, kind: str | None) -> bool:
    """Whether ``record`` is a journal line of ours: a label line has ``path`` and ``status``, a propagate
    line those and ``outcome``, a verify line a ``batch`` object with ``path`` (docs/batch.md, "Journal
    lines")."""
    if not isinstance(record, dict):
        return False
    key = record.get("batch")
    if isinstance(key, dict):
        return kind in (None, "verify") and isinstance(key.get("path"), str)
    if not (isinstance(record.get("path"), str) and "status" in record):
        return False
    # a propagate batch into a label batch's DST must not append to (and resume from) its journal
    return kind is None or kind == ("propagate" if "outcome" in record else "label")


def _not_a_journal(path: Path, kind: str | None) -> LabelerError:
    what = "report" if kind == "verify" else "journal"
    return LabelerError(f"{what} {path} is not a batch {kind or 'label, verify or propagate'} {what} (its "
                        f"first line is not one); refusing to append to it: give a new file or an earlier "
                        f"run's {what}")


def _open_journal(path: Path, flags: int, kind: str | None) -> IO[bytes] | None:
    """``path`` opened with ``flags`` (binary) once it is known to be a regular file (or a link to one);
    None when it does not exist and ``flags`` does not create it."""
    what = "report" if kind == "verify" else "journal"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): a FIFO would block it
            raise LabelerError(f"{what} {path} is not a regular file (a folder, a device, a FIFO or a "
                               "socket); give a file name")
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            return None
    except OSError as exc:
        raise LabelerError(f"cannot use the {what} {path}: {exc.strerror or exc}") from None
    try:
        fd = os.open(path, flags | _NONBLOCK | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise LabelerError(f"cannot open the {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the check above
        os.close(fd)
        raise LabelerError(f"{what} {path} is not a regular file; give a file name")
    return os.fdopen(fd, "ab" if flags & os.O_APPEND else "rb")


def is_failed(record: dict[str, Any]) -> bool:
    """Whether a journal line records a failure (label: ``status`` ``error``; verify: ``errors``)."""
    return record.get("status") == "error" or bool(record.get("errors"))


class Journal:
    """Appends whole JSON lines; flush per line, fsync per :data:`FSYNC_EVERY` lines and on close."""

    def __init__(self, path: Path, keep_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Checked as read_journal checks it: a regular file, never a device or a FIFO.
        handle = _open_journal(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, None)
        assert handle is not None  # O_CREAT
        self.handle: IO[bytes] = handle
        try:
            import fcntl

            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock, documented
            pass
        except OSError:
            self.handle.close()
            raise LabelerError(f"journal {path} is in use by another batch") from None
        if self.handle.seek(0, os.SEEK_END) > keep_bytes:
            self.handle.truncate(keep_bytes)  # drop a torn last line so the next one starts clean
        self.unsynced = 0

    def write(self, record: dict[str, Any]) -> None:
        from detectors.report import json_line  # here: a label batch need not load the detectors

        # The same encoding as `aigc verify --json` (one report, one form): an undecodable byte of a file
        # name as a \udcXX escape, valid UTF-8 that json.loads and os.fsencode turn back into the name.
        data = json_line(record).encode("utf-8")
        self.handle.write(data + b"\n")
        self.handle.flush()
        self.unsynced += 1
        if self.unsynced >= FSYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        os.fsync(self.handle.fileno())
        self.unsynced = 0

    def close(self) -> None:
        if not self.handle.closed:
            self.sync()
            self.handle.close()
