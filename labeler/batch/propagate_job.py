"""The ``propagate`` job: what ``aigc propagate`` does for one upload
(:func:`labeler.propagate.propagate_file`, Labeling Measures Art. 6), run by a batch worker on one file of
SRC into the same relative path under DST.

Each file's PropagateID comes from the task's template (:meth:`~labeler.batch.task.PropagateSettings.make_id`)
or from an ID list (:func:`read_ids`, a CSV of ``relative path,PropagateID``, read once per worker process);
a file the list does not name fails, journaled, rather than getting a made-up ID. The journal line says
what propagation did (:data:`OUTCOMES`), so an archive team can count the files of each kind.
"""

from __future__ import annotations

import csv
import filecmp
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.batch.jobs import _inside_dst, failure_reason, prepare
from labeler.errors import LabelerError

if TYPE_CHECKING:
    from labeler.batch.task import BatchTask

#: What propagation did to a file, as the journal's ``outcome`` and the summary's counts say it:
#: the producer's label kept and the platform's propagator fields added (Art. 6 (4)); no label, the
#: uploader declared AI content: Label 2 added (Art. 6 (2)); no label, traces of generation found:
#: Label 3 added (Art. 6 (3)); nothing found: an unchanged byte copy.
OUTCOMES = ("propagated", "declared", "traces", "copied")
# A list row longer than this is not an ID list (a binary file given by mistake): one line, not a
# csv.Error about field sizes.
_MAX_ROW = 1 << 16


def read_ids(path: str | os.PathLike[str]) -> dict[str, str]:
    """The PropagateID of each relative path in an ID list (docs/batch.md, "Propagate").

    The list is CSV (UTF-8, a byte-order mark allowed): ``relative path,PropagateID`` per row, paths
    relative to SRC with ``/`` separators as the journal writes them (a leading ``./`` is dropped); blank
    rows and lines that start with ``#`` are skipped (a path that starts with ``#`` is quoted), empty
    cells after the two are dropped (a spreadsheet pads rows so), and a first row ``path,id`` is a header.

    Raises
    ------
    LabelerError
        One line naming the row: an unreadable file, a row without exactly two cells, an empty path or
        ID, a path listed twice with two IDs.
    """
    ids: dict[str, str] = {}
    try:
        # surrogateescape: a path that is not valid UTF-8 is written so by the walk, and matches here
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            comments: set[int] = set()
            # strict: an unclosed quote is an error, not a cell that swallows the rows after it
            reader = csv.reader(_rows(handle, path, comments), strict=True)
            start = 1
            for number, row in enumerate(reader, 1):
                # A comment is a line, not a cell: '"#1.jpg",ID' names a file, and the second line of
                # a quoted path is never taken for one.
                if start not in comments:
                    _add_row(ids, row, number, path)
                start = reader.line_num + 1
    except OSError as exc:
        raise LabelerError(f"cannot read the ID list {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise LabelerError(f"ID list {path}: not CSV ({exc})") from None
    return ids


def _rows(handle: Any, path: str | os.PathLike[str], comments: set[int]) -> Any:
    """The list's lines for the CSV reader; the numbers of those that start with ``#`` go to ``comments``."""
    for number, line in enumerate(handle, 1):
        if len(line) > _MAX_ROW:
            raise LabelerError(f"ID list {path}, row {number}: longer than {_MAX_ROW} characters; "
                               "not an ID list")
        if number == 1:
            line = line.lstrip("\ufeff")
        if line.lstrip().startswith("#"):
            comments.add(number)
        yield line


def _add_row(ids: dict[str, str], row: list[str], number: int, path: str | os.PathLike[str]) -> None:
    if not "".join(row).strip():
        return
    while len(row) > 2 and not row[-1].strip():  # Excel pads each row with the empty cells of the widest
        row = row[:-1]
    if number == 1 and [cell.strip().lower() for cell in row] == ["path", "id"]:
        return
    where = f"ID list {path}, row {number}"
    if len(row) != 2:
        raise LabelerError(f"{where}: {len(row)} cell(s), expected 2 (relative path,PropagateID)")
    rel, pid = row[0].strip(), row[1].strip()
    while rel.startswith("./"):
        rel = rel[2:]
    if not rel or not pid:
        raise LabelerError(f"{where}: empty {'path' if not rel else 'PropagateID'}")
    if ids.setdefault(rel, pid) != pid:
        raise LabelerError(f"{where}: {rel} is listed twice with two IDs ({ids[rel]!r} and {pid!r})")


def propagate_record(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None,
                     dst: str | None) -> dict[str, Any]:
    """A propagate journal line with every field (docs/batch.md), failed until the job says otherwise."""
    return {"path": rel, "size": size, "mtime_ns": mtime_ns, "task": task.fingerprint(), "status": "error",
            "error": None, "dst": dst, "propagate_id": None, "outcome": None, "action": None, "label": None,
            "verdict": None, "format": None, "carrier": None, "warnings": [], "seconds": None}


def propagate_one(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None) -> dict[str, Any]:
    """Propagate one file of SRC into DST and return its journal line (never raises for a bad file)."""
    from labeler.batch.jobs import _content_hash
    from labeler.propagate import propagate_file

    started = time.perf_counter()
    settings = task.propagate
    src = Path(task.src_root) / rel
    assert task.dst_root is not None
    dst = Path(task.dst_root) / rel
    record = propagate_record(task, rel, size, mtime_ns, os.fspath(dst))
    try:
        pid = _propagate_id(task, rel, lambda: _content_hash(src))
        record["propagate_id"] = pid
        _inside_dst(dst.parent, Path(task.dst_root))  # before mkdir: it would make folders out there
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not settings.overwrite and os.path.lexists(dst) and (kept := _already_done(task, src, dst, pid)):
            # Output of an earlier run killed before its journal line: outputs are renamed into place
            # whole, so one that holds exactly what this task writes is complete.
            record.update(kept, status="kept")
        else:
            result = propagate_file(
                src, dst, propagator=settings.propagator, propagate_id=pid, declared_ai=settings.declared_ai,
                reserved_code2=settings.reserved_code2, key=settings.key,
                trust_anchors=list(settings.trust_anchors) or None, overwrite=settings.overwrite)
            value = result.label["Label"] if result.label else None
            record.update(status="ok", action=result.action, outcome=_outcome(result.action, value),
                          label=value, verdict=result.verdict, format=result.format, carrier=result.carrier,
                          warnings=result.warnings)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch (failure_reason words it)
        record["error"] = failure_reason(exc, src)
    record["seconds"] = round(time.perf_counter() - started, 6)
    return record


def _propagate_id(task: BatchTask, rel: str, content_hash: Any) -> str:
    """The file's PropagateID: from the worker's ID list, else the template."""
    settings = task.propagate
    if settings.ids_file is None:
        return settings.make_id(rel, content_hash)
    state = prepare(task)
    if state["ids_error"]:
        raise LabelerError(state["ids_error"])
    pid = state["ids"].get(rel)
    if pid is None:
        if "ids_not_utf8" not in state:  # counted once per worker, on its first file without an ID
            state["ids_not_utf8"] = sum(1 for listed in state["ids"] if _undecoded(listed))
        # A spreadsheet's plain "CSV" is in the system's code page (GBK on a Chinese Windows): its rows
        # hold the names in bytes that cannot match, and the row the user sees must not seem ignored.
        hint = (f"; {state['ids_not_utf8']} row(s) of the list are not UTF-8: save it as CSV UTF-8"
                if state["ids_not_utf8"] and not _undecoded(rel) else "")
        raise LabelerError(f"no PropagateID for {rel} in the ID list {settings.ids_file}; not propagated "
                           f"(add it and re-run with --retry-errors){hint}")
    return pid


def _undecoded(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (surrogate escapes)."""
    return not text.isascii() and any("\udc80" <= char <= "\udcff" for char in text)


def _outcome(action: str, label: str | None) -> str:
    if action == "labeled":
        return "declared" if label == "2" else "traces"
    return action


def _already_done(task: BatchTask, src: Path, dst: Path, pid: str) -> dict[str, Any] | None:
    """The journal fields of an existing ``dst`` that holds exactly what this task writes from ``src``
    (its label, or a byte copy of an unlabeled ``src``), else None (then it is refused as existing)."""
    from labeler.metadata import read_labels
    from labeler.record import AIGCLabel

    settings = task.propagate
    try:
        fmt, found = read_labels(dst)
        before = _first_fields(read_labels(src)[1])
    except (LabelerError, OSError):
        return None
    after = _first_fields(found)
    if after is None:
        if before is None and filecmp.cmp(src, dst, shallow=False):
            return {"action": "copied", "outcome": "copied", "format": fmt}
        return None
    platform = {"ContentPropagator": settings.propagator, "PropagateID": pid,
                "ReservedCode2": settings.reserved_code2}
    if before is not None:
        action, expected = "propagated", {**before, **platform}
    else:
        action = "labeled"
        expected = AIGCLabel(content_producer=settings.propagator, produce_id=pid,
                             label="2" if settings.declared_ai else "3",
                             content_propagator=settings.propagator, propagate_id=pid,
                             reserved_code2=settings.reserved_code2).as_dict()
    if {k: v or "" for k, v in expected.items()} != after:
        return None
    carrier = next(label.carrier for label in found if label.standard)
    return {"action": action, "outcome": _outcome(action, after.get("Label")), "label": after.get("Label"),
            "format": fmt, "carrier": carrier}


def _first_fields(found: list[Any]) -> dict[str, str] | None:
    """The seven fields of the first standard label in ``found`` ("" for absent ones), or None."""
    from labeler.record import parse_label

    for label in found:
        if label.standard:
            return {k: v or "" for k, v in parse_label(label.raw).fields.items()}
    return None
