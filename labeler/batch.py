"""Archive-scale batch labeling and verification on a local process pool or a Dask cluster, resumable.

The pieces, for the ``aigc batch`` commands and for backends:

* :func:`iter_sources` streams the files of a folder tree (``os.scandir``, one directory iterator per
  level, never a full list) or of a list file, reporting symlink loops and unreadable folders to a
  callback instead of failing;
* :class:`BatchTask` is a picklable description of the per-file work (``kind="label"`` or ``"verify"``
  plus its options; a C2PA signer travels as :class:`SignerRef` paths, the watermark key as bytes), from
  which each worker process rebuilds what it needs once;
* :func:`run_batch` runs it on a :class:`~concurrent.futures.ProcessPoolExecutor` or, with ``dask=``, on
  Dask distributed (the same :func:`process_file` and the same loop, through a small executor adapter)
  with a bounded number of files in flight, appends one JSON line per finished file to the journal
  (written by this process only), shows progress and returns a :class:`BatchSummary`.

Journal and resume
------------------
Each finished file (success or failure) is one JSON line, written whole, flushed at once and fsync'ed
every :data:`FSYNC_EVERY` lines and at the end. A file is identified by its path relative to SRC, its
size and its ``mtime_ns``: a re-run skips every file whose key is in the journal, and redoes a file that
changed since. A line torn by a SIGKILL is cut off before appending, so the journal stays valid JSON
Lines. For ``label`` the journal defaults to ``DST/.aigc-journal.jsonl``; for ``verify`` the report file
itself is the journal (each line is ``Report.to_dict()`` plus a ``batch`` object with the key), so a
resumed verification appends to the same report.

A label output that exists without a journal line (the batch was killed after the output was renamed
into place but before its line was written) is kept when it carries exactly the label this task would
write, and recorded then; otherwise it is an error, unless ``overwrite``. Leftover temporary files of a
killed run (``.NAME.HEX.part``, ``.aigc-*`` folders) are removed from DST when a label batch resumes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import multiprocessing
import os
import re
import signal
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from labeler.errors import LabelerError

#: Journal lines between two fsyncs (each line is flushed to the OS at once; fsync guards power loss).
FSYNC_EVERY = 32
#: Default name of the label journal inside DST.
LABEL_JOURNAL = ".aigc-journal.jsonl"
#: Placeholders allowed in ProduceID / PropagateID templates.
ID_PLACEHOLDERS = ("path_hash", "content_hash")
# Temporary names left by labeler.atomic (".NAME.HEX12.part") and labeler.pipeline (".aigc-XXXX/").
_PART_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")
_TMPDIR_PREFIX = ".aigc-"
# "s3://bucket/x", "gs://...", "file://...": fsspec-style URLs, refused for SRC and DST.
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# How many times a file whose worker died (BrokenProcessPool) is tried before it is recorded as failed.
_MAX_ATTEMPTS = 2
_DIED = "the worker process died on this file (crash or out of memory)"

OnError = Callable[[str, str], None]


# -- the task -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignerRef:
    """A picklable reference to a local C2PA signer: workers call :meth:`build` once each.

    Attributes
    ----------
    cert_chain : str
        Certificate chain PEM path (signing certificate first).
    key : str
        Private key PEM path.
    tsa_url : str or None
        RFC 3161 time-stamp authority.
    """

    cert_chain: str
    key: str
    tsa_url: str | None = None

    def build(self) -> Any:
        """The :class:`~labeler.provenance.c2pa_sign.SignerSpec` (raises ``C2paSignError``)."""
        from labeler.provenance.c2pa_sign import local_signer

        return local_signer(self.cert_chain, self.key, tsa_url=self.tsa_url)


@dataclass(frozen=True)
class BatchTask:
    """What to do with each file; picklable, so it is sent once to each worker process.

    Attributes
    ----------
    kind : {"label", "verify"}
        The per-file function.
    src_root : str
        SRC: relative paths (the journal key and the mirror under ``dst_root``) are taken from here.
    dst_root : str or None
        DST, required for ``label``: outputs mirror SRC under it.
    producer, label, reserved_code1, reserved_code2 : str
        Label fields (``label`` only), as for ``aigc label``.
    produce_id : str
        ProduceID template, one per file: literal text plus ``{path_hash}`` (16 hex digits of SHA-256 of
        the relative path: stable across runs) and/or ``{content_hash}`` (16 hex digits of SHA-256 of
        the file's bytes). Default ``{path_hash}``.
    propagator, propagate_id : str or None
        ContentPropagator and its ID template (same placeholders); ``None`` applies the first-write rule.
    layers : tuple of str
        Layers for :func:`labeler.label_file`.
    key : bytes or None
        Watermark key (the ``watermark`` layer when labeling; detection when verifying).
    watermark_method, watermark_strength, quality, c2pa_thumbnail
        As for :func:`labeler.label_file`.
    signer : SignerRef or None
        C2PA signer for the ``c2pa`` layer.
    overwrite : bool
        Replace outputs that exist and were not written by this task.
    trust_anchors : tuple of str
        C2PA trust anchor PEM files (``verify``).
    text, position : str
        Visible label wording and placement (the ``visible`` layer).
    visible_seconds : float or None
        Video: seconds the visible label shows from the start; None for the whole duration.
    cue_positions : tuple of str
        Audio: where the rhythm cue goes (``start``, ``end``, ``middle``).
    video_at : tuple of str
        Video: where the visible label shows (``start`` required, ``middle``, ``end``).
    audio_label, voice_language : str
        Audio: ``rhythm``, ``voice`` or ``both``; the spoken prompt's language, ``zh`` or ``en``.
    visible : bool
        ``verify``: also search for our visible mark / audio cue (the slow layer).
    """

    kind: str
    src_root: str
    dst_root: str | None = None
    producer: str = ""
    produce_id: str = "{path_hash}"
    label: str = "1"
    reserved_code1: str = ""
    propagator: str | None = None
    propagate_id: str | None = None
    reserved_code2: str = ""
    layers: tuple[str, ...] = ("metadata",)
    key: bytes | None = field(default=None, repr=False)
    watermark_method: str = "dct"
    watermark_strength: float | None = None
    quality: int = 95
    signer: SignerRef | None = None
    c2pa_thumbnail: bool = False
    overwrite: bool = False
    trust_anchors: tuple[str, ...] = ()
    text: str = "AI生成"
    position: str = "bottom-right"
    visible_seconds: float | None = 3.0
    cue_positions: tuple[str, ...] = ("start",)
    video_at: tuple[str, ...] = ("start",)
    audio_label: str = "rhythm"
    voice_language: str = "zh"
    visible: bool = True

    def check(self) -> BatchTask:
        """Validate before any file is touched; raise :class:`LabelerError` (one line) otherwise."""
        if self.kind not in ("label", "verify"):
            raise LabelerError(f"unknown batch kind {self.kind!r} (label or verify)")
        for name, root in (("SRC", self.src_root), ("DST", self.dst_root)):
            if root and _URL_RE.match(root):
                # fsspec storage would need every reader and writer (Pillow, ffmpeg, c2pa) to stream
                # through it; until then workers share files through a mounted file system.
                raise LabelerError(f"{name} {root}: URLs are not supported yet; mount the storage on every "
                                   "worker and give its path")
        if not Path(self.src_root).is_dir():
            raise LabelerError(f"SRC is not a folder: {self.src_root}")
        if self.kind == "label":
            from labeler.pipeline import parse_layers

            if not self.dst_root:
                raise LabelerError("a label batch needs DST")
            parse_layers(self.layers)
            for template in (self.produce_id, self.propagate_id):
                if template is not None:
                    _check_template(template)
            # A label with sample IDs shows bad producer/propagator values before the first file.
            self.make_label("0" * 16, lambda: "0" * 16).check()
        return self

    def make_label(self, path_hash: str, content_hash: Callable[[], str]) -> Any:
        """The :class:`~labeler.record.AIGCLabel` for one file (``content_hash`` is called only if used)."""
        from labeler.record import AIGCLabel

        def fill(template: str | None) -> str | None:
            if template is None:
                return None
            values = {"path_hash": path_hash}
            if "{content_hash" in template:
                values["content_hash"] = content_hash()
            return template.format_map(_Missing(values))

        return AIGCLabel(
            content_producer=self.producer,
            produce_id=fill(self.produce_id) or "",
            label=self.label,
            reserved_code1=self.reserved_code1,
            content_propagator=self.propagator,
            propagate_id=fill(self.propagate_id),
            reserved_code2=self.reserved_code2,
        )


class _Missing(dict):
    def __missing__(self, name: str) -> str:
        raise LabelerError(f"unknown placeholder {{{name}}} in an ID template ({', '.join(ID_PLACEHOLDERS)})")


def _check_template(template: str) -> None:
    import string

    try:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
    except ValueError as exc:
        raise LabelerError(f"bad ID template {template!r}: {exc}") from None
    for name in names:
        if name not in ID_PLACEHOLDERS:
            raise LabelerError(f"unknown placeholder {{{name}}} in ID template {template!r} "
                               f"(known: {', '.join(ID_PLACEHOLDERS)})")


# -- sources ----------------------------------------------------------------------------------------------
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
    root = Path(src)
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
                try:
                    path.relative_to(root)
                except ValueError:
                    report(text, f"outside SRC ({root}); skipped")
                    continue
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


def _ident(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# -- per-file work (runs in the worker processes) -------------------------------------------------------
# A per-process cache of what the current task needs rebuilt (the signer), filled by _prepare on the first
# file of a task: pool workers fill it in their initializer, Dask workers (which have no initializer and
# may serve several batches in turn) on their first file of each task. Nothing else is kept between files.
_WORKER: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()  # a Dask worker with several threads may start two files at once


def _init_worker(task: BatchTask) -> None:
    # The parent handles Ctrl-C: a terminal sends SIGINT to the whole process group, and workers that
    # died mid-file would lose finished work; ignoring it lets in-flight files finish and be journaled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _prepare(task)


def _prepare(task: BatchTask) -> dict[str, Any]:
    """The task's rebuilt parts (``signer``, ``signer_error``), built once per process and task."""
    state = _WORKER.get("state")
    if state is not None and state["task"] == task:
        return state
    with _WORKER_LOCK:
        state = _WORKER.get("state")
        if state is not None and state["task"] == task:
            return state
        state = {"task": task, "signer": None, "signer_error": None}
        if task.kind == "label" and task.signer is not None:
            try:
                state["signer"] = task.signer.build()
            except LabelerError as exc:
                state["signer_error"] = str(exc)
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
        ``label``: ``path``, ``size``, ``mtime_ns``, ``status`` (``ok``, ``kept``, ``error``), ``error``,
        ``dst``, ``format``, ``produce_id``, ``layers``, ``warnings``, ``seconds``.
        ``verify``: ``Report.to_dict()`` plus ``batch`` = {``path``, ``size``, ``mtime_ns``}.
    """
    if task.kind == "verify":
        return _verify_one(task, rel, size, mtime_ns)
    return _label_one(task, rel, size, mtime_ns)


def _verify_one(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None) -> dict[str, Any]:
    from detectors import verify

    src = Path(task.src_root) / rel
    try:
        record = verify(src, key=task.key, trust_anchors=list(task.trust_anchors) or None,
                        visible=task.visible).to_dict()
    except Exception as exc:  # noqa: BLE001 - verify never raises for a bad file; a bug must not stop a batch
        from detectors.report import Report

        why = f"internal error ({type(exc).__name__}: {exc}); please report it"
        record = Report(file=os.fspath(src), errors=[why]).to_dict()
    record["batch"] = {"path": rel, "size": size, "mtime_ns": mtime_ns}
    return record


def _label_one(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None) -> dict[str, Any]:
    from labeler.pipeline import label_file

    started = time.perf_counter()
    src = Path(task.src_root) / rel
    assert task.dst_root is not None
    dst = Path(task.dst_root) / rel
    record: dict[str, Any] = {"path": rel, "size": size, "mtime_ns": mtime_ns, "status": "error",
                              "error": None, "dst": os.fspath(dst)}
    try:
        state = _prepare(task)
        if state["signer_error"]:
            raise LabelerError(state["signer_error"])
        label = task.make_label(_path_hash(rel), lambda: _content_hash(src))
        record["produce_id"] = label.produce_id
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not task.overwrite and os.path.lexists(dst) and _carries(dst, label.to_json()):
            # Output of an earlier run killed before its journal line: outputs are renamed into place
            # whole, so an existing one with our exact label is complete.
            record.update(status="kept", error=None)
        else:
            result = label_file(
                src, dst, label,
                layers=task.layers, overwrite=task.overwrite, key=task.key,
                watermark_method=task.watermark_method, watermark_strength=task.watermark_strength,
                quality=task.quality, signer=state["signer"], c2pa_thumbnail=task.c2pa_thumbnail,
                text=task.text, position=task.position, visible_seconds=task.visible_seconds,
                cue_positions=task.cue_positions, video_at=task.video_at,
                audio_label=task.audio_label, voice_language=task.voice_language,
            )
            record.update(status="ok", format=result.format, layers=list(result.layers),
                          warnings=result.warnings)
    except LabelerError as exc:
        record["error"] = str(exc)
    except OSError as exc:
        record["error"] = f"{exc.filename or src}: {exc.strerror or exc}" if exc.filename else str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch; recorded as a bug
        record["error"] = f"internal error ({type(exc).__name__}: {exc}); please report it"
    record["seconds"] = round(time.perf_counter() - started, 6)
    return record


def _carries(path: Path, value: str) -> bool:
    from labeler.metadata import read_labels

    try:
        _, found = read_labels(path)
    except (LabelerError, OSError):
        return False
    return bool(found) and found[0].raw == value


def _path_hash(rel: str) -> str:
    return hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


# -- the journal -----------------------------------------------------------------------------------------
def _key(rel: str, size: int | None, mtime_ns: int | None) -> int:
    # An 8-byte digest per done file keeps the resume set at ~70 bytes per entry even for millions.
    raw = f"{rel}\0{size}\0{mtime_ns}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def _record_key(record: dict[str, Any]) -> int | None:
    key = record.get("batch", record)
    if not isinstance(key, dict) or not isinstance(key.get("path"), str):
        return None
    return _key(key["path"], key.get("size"), key.get("mtime_ns"))


def read_journal(path: Path, *, retry_errors: bool = False) -> tuple[set[int], int]:
    """The resume keys in a journal and the byte length of its complete lines.

    Lines that are not JSON objects (a line torn by a SIGKILL) are ignored. With ``retry_errors``, lines
    of failed files do not count as done.
    """
    done: set[int] = set()
    good = 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 - with below
    except FileNotFoundError:
        return done, 0
    with handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break  # torn tail: cut off before appending
            good += len(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if retry_errors and _failed(record):
                continue
            key = _record_key(record)
            if key is not None:
                done.add(key)
    return done, good


def _failed(record: dict[str, Any]) -> bool:
    return record.get("status") == "error" or bool(record.get("errors"))


class _Journal:
    """Appends whole JSON lines; flush per line, fsync per :data:`FSYNC_EVERY` lines and on close."""

    def __init__(self, path: Path, keep_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.handle: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by close()
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
        try:
            data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:  # undecodable file names (surrogate escapes): ASCII-escaped JSON
            data = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode("ascii")
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


# -- summary and progress --------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    """The outcome of :func:`run_batch`.

    Attributes
    ----------
    kind : str
        ``label`` or ``verify``.
    done : int
        Files processed in this run (journaled), failures and walk problems included.
    skipped : int
        Files skipped because the journal already had them.
    counts : dict
        Per status (``label``: ``ok``, ``kept``, ``error``) or verdict (``verify``: ``confirmed``,
        ``possible``, ``suspected``, ``none``, ``error``) for this run.
    errors : int
        Files recorded with an error in this run.
    seconds : float
        Wall time.
    interrupted : bool
        Stopped by Ctrl-C (KeyboardInterrupt); the journal holds every file finished until then.
    journal : str
        The journal path.
    """

    kind: str
    done: int = 0
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    journal: str = ""

    @property
    def files_per_s(self) -> float:
        """Throughput of this run (files processed per second of wall time)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["files_per_s"] = round(self.files_per_s, 3)
        out["seconds"] = round(self.seconds, 3)
        return out

    def line(self) -> str:
        """One human line, e.g. ``label: 120 done (ok 118, error 2), 5000 skipped, 41.2 files/s``."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        head = "interrupted after" if self.interrupted else "finished:"
        return (f"{self.kind} {head} {self.done} done ({counts or 'nothing new'}), {self.skipped} skipped, "
                f"{self.files_per_s:.1f} files/s in {self.seconds:.1f} s; journal {self.journal}")


class _Progress:
    """A tqdm bar on a terminal, else a plain line every ``interval`` seconds; both on stderr."""

    def __init__(self, enabled: bool, kind: str, interval: float, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.kind, self.interval = kind, interval
        self.enabled = enabled
        self.started = self.last = time.monotonic()
        self.total: int | None = None  # set by the counting thread when it is done
        self.done = self.skipped = 0
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit="file", desc=f"aigc batch {kind}", file=self.stream,
                            dynamic_ncols=True, smoothing=0.05)

    def update(self, done: int = 0, skipped: int = 0, force: bool = False) -> None:
        self.done += done
        self.skipped += skipped
        if not self.enabled:
            return
        if self.bar is not None:
            if self.total is not None and self.bar.total != self.total - self.skipped:
                self.bar.total = max(self.total - self.skipped, self.done)
                self.bar.refresh()
            if done:
                self.bar.update(done)
            return
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            elapsed = now - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            tail = ""
            if self.total is not None and rate > 0:
                left = max(self.total - self.skipped - self.done, 0)
                tail = f", {left} left, ETA {_hms(left / rate)}"
            print(f"aigc batch {self.kind}: {self.done} done, {self.skipped} skipped, {rate:.1f} files/s, "
                  f"elapsed {_hms(elapsed)}{tail}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _count_in_background(progress: _Progress, src: Path, list_file: Path | None,
                         exclude: tuple[Path, ...], stop: threading.Event) -> threading.Thread:
    """Count the sources on a thread so the bar gets an ETA without holding the paths."""

    def count() -> None:
        n = 0
        for _ in iter_sources(src, list_file=list_file, exclude=exclude):
            n += 1
            if stop.is_set():
                return
        progress.total = n

    thread = threading.Thread(target=count, name="aigc-batch-count", daemon=True)
    thread.start()
    return thread


# -- the runner ------------------------------------------------------------------------------------------
def default_journal(task: BatchTask) -> Path:
    """``DST/.aigc-journal.jsonl`` for label; verify has no default (the report file is its journal)."""
    if task.kind == "label" and task.dst_root:
        return Path(task.dst_root) / LABEL_JOURNAL
    raise LabelerError("a verify batch needs a report path (it is also the journal)")


def run_batch(
    task: BatchTask,
    sources: Iterator[Path] | None = None,
    *,
    workers: int | None = None,
    journal_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    progress_interval: float = 10.0,
    list_file: str | os.PathLike[str] | None = None,
    retry_errors: bool = False,
    max_in_flight: int | None = None,
    dask: str | Any | None = None,
) -> BatchSummary:
    """Run ``task`` over every source file on a local process pool or a Dask cluster, journaling each result.

    Parameters
    ----------
    task : BatchTask
        What to do with each file (validated first with :meth:`BatchTask.check`).
    sources : iterator of Path, optional
        Files under ``task.src_root``; default :func:`iter_sources` over SRC (or ``list_file``), with walk
        problems journaled as errors. Files outside SRC are recorded as errors.
    workers : int, optional
        Worker processes of the local pool or of ``dask="local"`` (default ``os.cpu_count()``); unused
        with a scheduler address or a client (the cluster's size decides).
    journal_path : path, optional
        The JSON Lines journal; default ``DST/.aigc-journal.jsonl`` for label; required for verify (the
        report file).
    progress : bool
        Show progress on stderr: a tqdm bar on a terminal, plain lines every ``progress_interval`` s
        otherwise.
    list_file : path, optional
        Read the files from this list (see :func:`iter_sources`) instead of walking SRC.
    retry_errors : bool
        Redo files that the journal records as failed (default: they count as done).
    max_in_flight : int, optional
        Files queued or running at once (default ``4 *`` worker processes or Dask worker threads): bounds
        memory whatever SRC's size.
    dask : str or distributed.Client, optional
        Run the per-file function on Dask distributed instead of the local pool: a scheduler address
        (``"tcp://host:8786"``), ``"local"`` for a :class:`distributed.LocalCluster` of ``workers``
        single-threaded processes, or an existing client (left open). Workers must see SRC and DST at
        the same absolute paths (a shared file system); the journal is written here only. Needs the
        ``dask`` extra, imported only then.

    Returns
    -------
    BatchSummary
        Also when interrupted by Ctrl-C (``interrupted=True``): pending files are cancelled, files in
        progress finish and are journaled, and the journal is closed with only complete lines.

    Raises
    ------
    LabelerError
        Invalid task, unusable journal (e.g. locked by another batch), a Dask scheduler that cannot be
        reached or workers that cannot run the task.
    """
    task.check()
    started = time.monotonic()
    if dask is not None:
        # Workers elsewhere have their own working folder: they get absolute paths.
        task = _absolute_paths(task)
        if sources is not None:
            sources = (Path(os.path.abspath(p)) for p in sources)
    src_root = Path(task.src_root)
    journal_p = Path(journal_path) if journal_path is not None else default_journal(task)
    workers = max(1, workers or os.cpu_count() or 1)
    done_keys, good_bytes = read_journal(journal_p, retry_errors=retry_errors)
    # The executor starts before the journal is opened and DST made: a scheduler that cannot be reached
    # or workers that cannot start stop the batch without leaving anything on disk.
    executor: _Executor = (_DaskExecutor(dask, workers, task) if dask is not None
                           else _PoolExecutor(workers, task))
    try:
        journal = _Journal(journal_p, good_bytes)
    except BaseException:
        executor.shutdown(wait=False, pending=[])
        raise
    limit = max_in_flight or 4 * executor.slots
    summary = BatchSummary(task.kind, journal=os.fspath(journal_p))
    counts: Counter[str] = Counter()
    if task.kind == "label":
        # Exists before the walk starts, so a DST inside SRC is recognised and never walked into.
        Path(task.dst_root or "").mkdir(parents=True, exist_ok=True)
        if done_keys:
            _clean_partials(Path(task.dst_root or ""))
    exclude = (journal_p,) + ((Path(task.dst_root),) if task.dst_root else ())

    def record(rec: dict[str, Any]) -> None:
        journal.write(rec)
        key = rec.get("batch", rec)
        status = (rec.get("verdict") or "error") if task.kind == "verify" else rec.get("status", "error")
        counts[status] += 1
        summary.done += 1
        if status == "error" or (task.kind == "verify" and rec.get("errors")):
            summary.errors += 1
        if isinstance(key, dict) and key.get("path") is not None:
            done_keys.add(_key(key["path"], key.get("size"), key.get("mtime_ns")))
        bar.update(done=1)

    def finish(rec: dict[str, Any]) -> None:
        # A file that ran twice (listed twice, or re-run by a Dask scheduler after its worker was lost
        # just as it reported) is journaled once.
        if _record_key(rec) in done_keys:
            summary.skipped += 1
            bar.update(skipped=1)
            return
        record(rec)

    def walk_problem(path: str, reason: str) -> None:
        rel = _relative(Path(path), src_root) or path
        if _key(rel, None, None) in done_keys:
            summary.skipped += 1
            return
        record(_problem_record(task, rel, path, reason))

    bar = _Progress(progress, task.kind, progress_interval)
    stop = threading.Event()
    if sources is None:
        lf = Path(list_file) if list_file is not None else None
        sources = iter_sources(src_root, list_file=lf, on_error=walk_problem, exclude=exclude)
        if progress:
            _count_in_background(bar, src_root, lf, exclude, stop)
    interrupted = False
    in_flight: dict[Any, tuple[str, int | None, int | None, int]] = {}
    retry: list[tuple[str, int | None, int | None, int]] = []
    source_iter = iter(sources)
    exhausted = False
    try:
        while True:
            # Refill: retries first, then new sources, until `limit` files are in flight.
            while len(in_flight) < limit and (retry or not exhausted):
                if retry:
                    # After a worker crash each suspect runs alone, so a second crash names the culprit
                    # and the files that merely shared the pool with it go through.
                    if in_flight:
                        break
                    item = retry.pop()
                    in_flight[executor.submit(item)] = item
                    break
                else:
                    path = next(source_iter, None)
                    if path is None:
                        exhausted = True
                        break
                    item = _queue_item(task, Path(path), src_root, done_keys, summary, record)
                    if item is None:
                        bar.update(skipped=summary.skipped - bar.skipped)
                        continue
                in_flight[executor.submit(item)] = item
            if not in_flight:
                break
            broken = False
            for fut in executor.wait(in_flight, timeout=1.0):
                item = in_flight.pop(fut)
                try:
                    rec = executor.result(fut, item)
                except _WorkerDied:
                    broken = True
                    if item[3] + 1 < executor.attempts:
                        retry.append((*item[:3], item[3] + 1))
                    else:
                        record(_problem_record(task, item[0], os.fspath(src_root / item[0]), _DIED))
                    continue
                finish(rec)
            if broken and executor.shared_fate:
                # Every future of a broken pool fails: requeue the rest too and start a new pool.
                for fut, item in list(in_flight.items()):
                    in_flight.pop(fut)
                    if item[3] + 1 < executor.attempts:
                        retry.append((*item[:3], item[3] + 1))
                    else:
                        record(_problem_record(task, item[0], os.fspath(src_root / item[0]), _DIED))
                executor.restart()
            bar.update(force=False)
    except KeyboardInterrupt:
        interrupted = True
        # Pending files are dropped; running ones (pool workers ignore SIGINT) finish and are journaled,
        # so what was paid for is kept. A second Ctrl-C while waiting abandons them (journal still whole).
        with contextlib.suppress(KeyboardInterrupt):
            for fut in executor.cancel_pending(list(in_flight)):
                with contextlib.suppress(Exception):
                    finish(executor.result(fut, in_flight[fut]))
    finally:
        stop.set()
        journal.close()  # first: nothing is recorded past here, and a Ctrl-C in the shutdown keeps it whole
        # A Ctrl-C that lands while the pool shuts down (the batch is over) would otherwise lose the
        # summary and print a traceback from the executor's threads.
        with _sigint_ignored():
            executor.shutdown(wait=not interrupted, pending=list(in_flight))
        bar.update(force=True)
        bar.close()
    summary.counts = dict(counts)
    summary.interrupted = interrupted
    summary.seconds = time.monotonic() - started
    return summary


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be changed from the main thread; none are delivered elsewhere
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _new_pool(workers: int, task: BatchTask) -> ProcessPoolExecutor:
    # forkserver, not fork: the parent has threads (progress counting, tqdm's monitor), and forking a
    # threaded process can deadlock the child; spawn elsewhere.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=_init_worker, initargs=(task,))
    # Probe: a pool whose workers cannot even start (unimportable __main__, no memory) must stop the
    # batch with one error, not record every file as "worker died".
    try:
        pool.submit(os.getpid).result()
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        raise LabelerError("worker processes cannot start (run from a script or module, not stdin; "
                           "check memory)") from None
    return pool


def _submit(pool: ProcessPoolExecutor, task: BatchTask, item: tuple) -> Future:
    """Submit one file; a pool broken meanwhile gives a failed future, handled like any other break."""
    try:
        return pool.submit(process_file, task, *item[:3])
    except BrokenProcessPool as exc:
        fut: Future = Future()
        fut.set_exception(exc)
        return fut


class _WorkerDied(Exception):
    """The process running a file died (crash, out of memory): the file may be tried again."""


class _Executor(Protocol):
    """What :func:`run_batch` needs from where the files run: the local pool or a Dask cluster."""

    #: Files a worker death is allowed to take before the file is recorded as failed.
    attempts: int
    #: A worker death fails every file in flight (a broken process pool), which then need a restart.
    shared_fate: bool
    #: Files that can run at once (worker processes or threads).
    slots: int

    def submit(self, item: tuple[str, int | None, int | None, int]) -> Any: ...
    def wait(self, futures: Collection[Any], timeout: float) -> list[Any]: ...
    def result(self, future: Any, item: tuple[str, int | None, int | None, int]) -> dict[str, Any]: ...
    def restart(self) -> None: ...
    def cancel_pending(self, futures: list[Any]) -> list[Any]: ...
    def shutdown(self, wait: bool, pending: list[Any]) -> None: ...


class _PoolExecutor:
    """The local :class:`~concurrent.futures.ProcessPoolExecutor` (the default)."""

    attempts = _MAX_ATTEMPTS
    shared_fate = True

    def __init__(self, workers: int, task: BatchTask) -> None:
        self.slots, self.task = workers, task
        self.pool = _new_pool(workers, task)

    def submit(self, item: tuple[str, int | None, int | None, int]) -> Future:
        return _submit(self.pool, self.task, item)

    def wait(self, futures: Collection[Future], timeout: float) -> list[Future]:
        return list(wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)[0])

    def result(self, future: Future, item: tuple[str, int | None, int | None, int]) -> dict[str, Any]:
        try:
            return future.result()
        except BrokenProcessPool:
            raise _WorkerDied from None

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = _new_pool(self.slots, self.task)

    def cancel_pending(self, futures: list[Future]) -> list[Future]:
        # Future.cancel() fails exactly for the files already running: those are waited for.
        return [fut for fut in futures if not fut.cancel()]

    def shutdown(self, wait: bool, pending: list[Future]) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=True)


class _DaskExecutor:
    """A Dask distributed client: a scheduler address, ``"local"`` (a LocalCluster) or a given client."""

    # Dask reschedules a file whose worker died by itself (``distributed.scheduler.allowed-failures``
    # times) and raises KilledWorker only then; trying it again here would multiply that.
    attempts = 1
    shared_fate = False

    def __init__(self, dask: str | Any, workers: int, task: BatchTask) -> None:
        try:
            import distributed
        except ImportError:
            raise LabelerError("--dask needs Dask distributed: pip install 'aigc-labeler[dask]'") from None
        self.distributed, self.task = distributed, task
        self.cluster: Any = None
        self.own_client = not isinstance(dask, distributed.Client)
        if not self.own_client:
            self.client = dask
            self.where = f"the Dask scheduler at {dask.scheduler.address}"
        elif dask == "local":
            import logging

            self.where = "a local Dask cluster"
            try:
                # preload: this module's dask_setup runs in every worker process, restarted ones too.
                self.cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR, preload=[__name__],
                )
                self.client = distributed.Client(self.cluster, set_as_default=False)
            except Exception as exc:  # noqa: BLE001 - whatever stops the start is reported in one line
                if self.cluster is not None:
                    self.cluster.close()
                raise LabelerError(f"cannot start {self.where}: {_one_line(exc)}") from None
        else:
            if not isinstance(dask, str) or not dask.strip():
                raise LabelerError(f"bad Dask scheduler address {dask!r} (tcp://HOST:PORT or local)")
            self.where = f"the Dask scheduler at {dask}"
            try:
                # Checked first: a Client that fails on its address leaves a half-built object whose
                # finalizer prints a traceback at exit.
                from distributed.comm.addressing import parse_address
                from distributed.comm.registry import get_backend

                get_backend(parse_address(dask)[0])
                # Waits up to distributed.comm.timeouts.connect (30 s unless configured).
                self.client = distributed.Client(dask, set_as_default=False)
            except (OSError, ValueError, TypeError) as exc:
                raise LabelerError(f"cannot connect to {self.where}: {_one_line(exc)}") from None
        try:
            self.ready = distributed.as_completed(loop=self.client.loop)
            self._check_workers()
            self.slots = max(1, sum(self.client.nthreads().values()))
        except BaseException:
            self.shutdown(wait=False, pending=[])
            raise

    def _check_workers(self) -> None:
        """Every worker there now can import this package and sees SRC (a shared file system)."""
        try:
            answers = self.client.run(_worker_check, self.task.src_root)
        except Exception as exc:  # noqa: BLE001 - e.g. ModuleNotFoundError from a worker without the package
            raise LabelerError(f"the workers of {self.where} cannot run the batch ({_one_line(exc)}); "
                               "install aigc-labeler on every worker") from None
        blind = sorted(worker for worker, problem in answers.items() if problem)
        if blind:
            raise LabelerError(f"{len(blind)} worker(s) of {self.where} ({blind[0]}...) "
                               f"{answers[blind[0]]}: workers need SRC and DST on a shared file system")

    def submit(self, item: tuple[str, int | None, int | None, int]) -> Any:
        future = self.client.submit(process_file, self.task, *item[:3], pure=False)
        self.ready.add(future)
        return future

    def wait(self, futures: Collection[Any], timeout: float) -> list[Any]:
        # as_completed has no timeout per batch: poll it, so progress lines keep coming during long files.
        deadline = time.monotonic() + timeout
        while not self.ready.has_ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.ready.next_batch(block=False)

    def result(self, future: Any, item: tuple[str, int | None, int | None, int]) -> dict[str, Any]:
        try:
            return future.result()
        except self.distributed.KilledWorker:
            raise _WorkerDied from None
        except Exception as exc:  # noqa: BLE001 - lost scheduler, cancelled: the batch cannot go on
            if future.status == "cancelled" or isinstance(exc, (OSError, CancelledError)):
                raise LabelerError(f"{self.where} stopped running the batch: {_one_line(exc)}") from None
            # process_file itself never raises; this is the cluster failing this one file (a worker
            # that cannot unpickle it, say): record it and go on.
            return _problem_record(self.task, item[0], os.fspath(Path(self.task.src_root) / item[0]),
                                   f"the Dask worker failed ({type(exc).__name__}: {_one_line(exc)})")

    def restart(self) -> None:  # Dask replaces dead workers itself (a nanny restarts them)
        pass

    def cancel_pending(self, futures: list[Any]) -> list[Any]:
        # Files already executing on a worker cannot be stopped there; they are waited for and journaled,
        # as with the local pool. call_stack lists exactly those (not the ones merely queued on a worker).
        try:
            running = {key for stacks in self.client.call_stack().values() for key in stacks}
        except Exception:  # noqa: BLE001 - cannot ask: cancel everything, resume redoes them
            running = set()
        self.client.cancel([fut for fut in futures if fut.key not in running])
        return [fut for fut in futures if fut.key in running]

    def shutdown(self, wait: bool, pending: list[Any]) -> None:
        with contextlib.suppress(Exception):
            if pending:
                self.client.cancel(pending)
            if self.own_client:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def dask_setup(worker: Any) -> None:
    """Dask preload hook for the workers of ``dask="local"``: they ignore SIGINT.

    Ctrl-C on a terminal reaches the whole process group, local Dask workers included; like the pool's
    workers they leave it to the batch, which lets running files finish and journals them. Workers
    started by hand (``dask worker``) are not touched.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_check(src_root: str) -> str | None:
    """Run on each Dask worker before the batch: None when it can work on SRC, else why not."""
    import labeler.pipeline  # noqa: F401 - fails here, once, on a worker that lacks a dependency

    return None if os.path.isdir(src_root) else f"cannot see SRC {src_root}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _absolute_paths(task: BatchTask) -> BatchTask:
    """The task with every path absolute, as workers with another working folder need."""
    signer = task.signer
    if signer is not None:
        signer = replace(signer, cert_chain=os.path.abspath(signer.cert_chain),
                         key=os.path.abspath(signer.key))
    return replace(
        task, src_root=os.path.abspath(task.src_root),
        dst_root=os.path.abspath(task.dst_root) if task.dst_root else task.dst_root, signer=signer,
        trust_anchors=tuple(os.path.abspath(a) for a in task.trust_anchors),
    )


def _queue_item(
    task: BatchTask, path: Path, src_root: Path, done_keys: set[int], summary: BatchSummary,
    record: Callable[[dict[str, Any]], None],
) -> tuple[str, int | None, int | None, int] | None:
    """The (rel, size, mtime_ns, attempts) to submit, or None when skipped or recorded here."""
    rel = _relative(path, src_root)
    if rel is None:
        record(_problem_record(task, os.fspath(path), os.fspath(path), "outside SRC; skipped"))
        return None
    try:
        st = os.stat(path)
    except OSError as exc:
        if _key(rel, None, None) in done_keys:
            summary.skipped += 1
            return None
        record(_problem_record(task, rel, os.fspath(path), exc.strerror or str(exc)))
        return None
    if _key(rel, st.st_size, st.st_mtime_ns) in done_keys:
        summary.skipped += 1
        return None
    return rel, st.st_size, st.st_mtime_ns, 0


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def _problem_record(task: BatchTask, rel: str, path: str, reason: str) -> dict[str, Any]:
    """The journal line of a file that never reached a worker (walk problem, vanished file)."""
    if task.kind == "verify":
        from detectors.report import Report

        rec = Report(file=path, errors=[reason]).to_dict()
        rec["batch"] = {"path": rel, "size": None, "mtime_ns": None}
        return rec
    return {"path": rel, "size": None, "mtime_ns": None, "status": "error", "error": reason, "dst": None}


def _clean_partials(dst_root: Path) -> int:
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
