"""The per-file jobs a worker runs: label one file (:func:`labeler.label_file` into DST), verify one
(:func:`detectors.verify`) or propagate one (:mod:`labeler.batch.propagate_job`), each returning the
file's journal record and never raising for a bad file.

:func:`process_file` is the one function the local pool and Dask run; :func:`problem_record` is the
record of a file that never reached a worker, in the same shape. ``detectors`` and the pipeline are
imported inside the jobs, not here: ``labeler`` never imports ``detectors`` at import time.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.errors import LabelerError

if TYPE_CHECKING:
    from labeler.batch.task import BatchTask

# A per-process cache of what the current task needs rebuilt (the signer), filled by prepare on the first
# file of a task: pool workers fill it in their initializer, Dask workers (which have no initializer and
# may serve several batches in turn) on their first file of each task. Nothing else is kept between files.
_WORKER: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()  # a Dask worker with several threads may start two files at once


def prepare(task: BatchTask) -> dict[str, Any]:
    """The task's rebuilt parts (``signer``, ``signer_error``; ``ids``, ``ids_error``: a propagate task's ID
    list), built once per process and task."""
    state = _WORKER.get("state")
    if state is not None and state["task"] == task:
        return state
    with _WORKER_LOCK:
        state = _WORKER.get("state")
        if state is not None and state["task"] == task:
            return state
        state = {"task": task, "signer": None, "signer_error": None, "ids": None, "ids_error": None}
        if task.kind == "label" and task.signer is not None:
            try:
                state["signer"] = task.signer.build()
            except LabelerError as exc:
                state["signer_error"] = str(exc)
        if task.kind == "propagate" and task.propagate.ids_file is not None:
            from labeler.batch.propagate_job import read_ids

            try:
                state["ids"] = read_ids(task.propagate.ids_file)
            except LabelerError as exc:  # every file fails with it, journaled (the driver read it fine)
                state["ids_error"] = str(exc)
        _WORKER["state"] = state  # one assignment: a reader sees the old state or the new one, whole
    return state


def process_file(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None) -> dict[str, Any]:
    """Do the task's work on one file and return its journal record (never raises for a bad file).

    Parameters
    ----------
    task : BatchTask
        What to do.
    rel : str
        Path relative to ``task.src_root`` (POSIX separators).
    size, mtime_ns : int or None
        The file's stat when it was queued: with ``rel``, the resume key.

    Returns
    -------
    dict
        ``label``: ``path``, ``size``, ``mtime_ns``, ``task``, ``status`` (``ok``, ``kept``, ``error``),
        ``error``, ``dst``, ``produce_id``, ``format``, ``layers``, ``warnings``, ``seconds``, always all
        of them (null where they do not apply; docs/batch.md).
        ``verify``: ``Report.to_dict()`` plus ``batch`` = {``path``, ``size``, ``mtime_ns``, ``task``}.
        ``propagate``: :func:`labeler.batch.propagate_job.propagate_record`'s fields (docs/batch.md).
    """
    if task.kind == "verify":
        return _verify_one(task, rel, size, mtime_ns)
    if task.kind == "propagate":
        from labeler.batch.propagate_job import propagate_one

        return propagate_one(task, rel, size, mtime_ns)
    return _label_one(task, rel, size, mtime_ns)


def _verify_one(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None) -> dict[str, Any]:
    from detectors import verify

    src = Path(task.src_root) / rel
    try:
        record = verify(src, **task.verify.kwargs()).to_dict()
    except Exception as exc:  # noqa: BLE001 - verify never raises for a bad file; a bug must not stop a batch
        from detectors.report import Report

        why = f"internal error ({type(exc).__name__}: {exc}); please report it"
        record = Report(file=os.fspath(src), errors=[why]).to_dict()
    record["batch"] = {"path": rel, "size": size, "mtime_ns": mtime_ns, "task": task.fingerprint()}
    return record


def _label_one(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None) -> dict[str, Any]:
    from labeler.pipeline import run_stages

    started = time.perf_counter()
    src = Path(task.src_root) / rel
    assert task.dst_root is not None
    dst = Path(task.dst_root) / rel
    record = _label_record(task, rel, size, mtime_ns, os.fspath(dst))
    try:
        state = prepare(task)
        if state["signer_error"]:
            raise LabelerError(state["signer_error"])
        label = task.record.make_label(_path_hash(rel), lambda: _content_hash(src))
        record["produce_id"] = label.produce_id
        _inside_dst(dst.parent, Path(task.dst_root))  # before mkdir: it would make folders out there
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not task.options.output.overwrite and os.path.lexists(dst) and (
                kept := _carries(dst, label.to_json())):
            # Output of an earlier run killed before its journal line: outputs are renamed into place
            # whole, so an existing one with our exact label is complete.
            record.update(status="kept", error=None, format=kept)
        else:
            result = run_stages(src, dst, label, task.label_options(state["signer"]))
            record.update(status="ok", format=result.format, layers=list(result.layers),
                          warnings=[*result.warnings, *_unread_mark(dst, result, task)])
    except LabelerError as exc:
        record["error"] = str(exc)
    except OSError as exc:
        record["error"] = f"{exc.filename or src}: {exc.strerror or exc}" if exc.filename else str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch; recorded as a bug
        record["error"] = f"internal error ({type(exc).__name__}: {exc}); please report it"
    record["seconds"] = round(time.perf_counter() - started, 6)
    return record


def _unread_mark(dst: Path, result: Any, task: BatchTask) -> list[str]:
    """The read-back warning ``aigc label`` and ``/v1/label`` give for a written watermark that cannot be
    found in the output (a held tone, noise, a tiny picture or video), as a list of at most one.

    Without it a batch journaled such a file ``ok`` with no warning while the same file labeled alone
    was warned about: an archive learned that the mark was missing only once the metadata was stripped.

    Parameters
    ----------
    dst : Path
        The labeled output.
    result : labeler.pipeline.LabelResult
        What :func:`labeler.pipeline.run_stages` returned for it.
    task : BatchTask
        The batch's task (its watermark key).

    Returns
    -------
    list of str
        ``[]`` when the mark reads back or there is nothing to check; else the one warning.
    """
    key = task.options.watermark.key
    if key is None or "watermark" not in result.layers:
        return []
    from detectors.read_back import unread_watermark

    try:
        unread = unread_watermark(dst, result, key, quality=task.options.output.quality)
    except Exception as exc:  # noqa: BLE001 - the file is labeled: a failed check must not make it an error
        return [f"the watermark could not be read back: internal error ({type(exc).__name__}: {exc})"]
    return [unread] if unread else []


def failure_reason(exc: Exception, src: Path) -> str:
    """The journal's one-line ``error`` for an exception a job caught on ``src`` (as the label job's)."""
    if isinstance(exc, LabelerError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename or src}: {exc.strerror or exc}" if exc.filename else str(exc)
    return f"internal error ({type(exc).__name__}: {exc}); please report it"


def _inside_dst(folder: Path, dst_root: Path) -> None:
    """Refuse an output folder that a symbolic link already in DST leads out of DST: a batch writes
    under DST only (a link in SRC is followed when reading, but DST's folders are made, not followed)."""
    real, root = folder.resolve(), dst_root.resolve()
    if real != root and not real.is_relative_to(root):
        raise LabelerError(f"the output folder leads outside DST through a symbolic link ({real}); "
                           "not written")


def _carries(path: Path, value: str) -> str | None:
    """The format of ``path`` when its (first) label is exactly ``value``, else None."""
    from labeler.metadata import read_labels

    try:
        fmt, found = read_labels(path)
    except (LabelerError, OSError):
        return None
    return fmt if found and found[0].raw == value else None


def _label_record(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None,
                  dst: str | None) -> dict[str, Any]:
    """A label journal line with every field (docs/batch.md), as a failure until the job says otherwise."""
    return {"path": rel, "size": size, "mtime_ns": mtime_ns, "task": task.fingerprint(), "status": "error",
            "error": None, "dst": dst, "produce_id": None, "format": None, "layers": None, "warnings": [],
            "seconds": None}


def _path_hash(rel: str) -> str:
    return hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def problem_record(task: BatchTask, rel: str, path: str, reason: str) -> dict[str, Any]:
    """The journal line of a file that never reached a worker (walk problem, vanished file)."""
    if task.kind == "verify":
        from detectors.report import Report

        rec = Report(file=path, errors=[reason]).to_dict()
        rec["batch"] = {"path": rel, "size": None, "mtime_ns": None, "task": task.fingerprint()}
        return rec
    if task.kind == "propagate":
        from labeler.batch.propagate_job import propagate_record

        record = propagate_record(task, rel, None, None, None)
        record["error"] = reason
        return record
    record = _label_record(task, rel, None, None, None)
    record["error"] = reason
    return record
