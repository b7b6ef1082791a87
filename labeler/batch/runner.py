"""The batch loop: :func:`run_batch` plans the files, keeps a bounded number in flight on an executor (the
local pool or Dask), journals each result as it comes back, shows progress and returns the summary."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from labeler.batch.dask_runner import DaskExecutor
from labeler.batch.executor import DIED, Executor, WorkerDied
from labeler.batch.jobs import problem_record
from labeler.batch.journal import Journal, default_journal, is_failed, read_journal, record_key, resume_key
from labeler.batch.local import PoolExecutor
from labeler.batch.plan import Item, iter_sources, prepare_dst, queue_item, relative
from labeler.batch.progress import Progress, count_in_background
from labeler.batch.summary import BatchSummary
from labeler.batch.task import BatchTask, absolute_paths
from labeler.errors import LabelerError


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
    # Before the paths are made absolute for Dask: the summary names the journal as the pool's run does.
    journal_p = Path(journal_path) if journal_path is not None else default_journal(task)
    if journal_path is not None:
        _check_journal_folder(task, journal_p)
    if dask is not None:
        # Workers elsewhere have their own working folder: they get absolute paths.
        task = absolute_paths(task)
        if sources is not None:
            sources = (Path(os.path.abspath(p)) for p in sources)
    workers = max(1, workers or os.cpu_count() or 1)
    # --overwrite says "replace what is there": files that failed before (an existing output was
    # refused) are done again, not skipped as journaled
    retry = retry_errors or (task.kind == "label" and task.options.output.overwrite) or (
        task.kind == "propagate" and task.propagate.overwrite)
    failed: set[int] = set()
    done_keys, good_bytes, other = read_journal(journal_p, retry_errors=retry, task=task.fingerprint(),
                                                failed=failed, kind=task.kind)
    executor, journal = _start(task, dask, workers, journal_p, good_bytes)
    exclude = prepare_dst(task, journal_p, done_keys)
    summary = BatchSummary(task.kind, journal=os.fspath(journal_p), other_options=other)
    run = _Run(task, executor, journal, done_keys, summary, limit=max_in_flight,
               bar=Progress(progress, task.kind, progress_interval), failed=failed)
    if sources is None:
        sources = run.walk(Path(list_file) if list_file is not None else None, exclude, count=progress)
    summary.notes = list(executor.notes)
    run.run(sources)
    summary.seconds = time.monotonic() - started
    return summary


def _check_journal_folder(task: BatchTask, journal: Path) -> None:
    """Refuse a ``--journal`` / ``--report`` whose folder does not exist, naming it, before any work.

    The folders were made without a word, so a typo (``--report /typo/dir/report.jsonl``) ran the whole
    batch into a report nobody would look for. Only DST's folders are made (a journal inside DST, which
    does not exist yet, is fine), as ``cp``, ``tee`` or a shell redirection make none either.
    """
    folder = journal.parent
    if folder.is_dir():
        return
    if task.dst_root is not None and task.kind in ("label", "propagate"):
        dst = Path(os.path.abspath(task.dst_root))
        where = Path(os.path.abspath(folder))
        if where == dst or dst in where.parents:
            return
    what = "report" if task.kind == "verify" else "journal"
    hint = "" if folder.exists() else "; create it first, or check the path"
    state = "is not a folder" if folder.exists() else "does not exist"
    raise LabelerError(f"the {what}'s folder {folder} {state}{hint}")


def _start(task: BatchTask, dask: str | Any | None, workers: int, journal_path: Path,
           good_bytes: int) -> tuple[Executor, Journal]:
    """Start where the files run, then open the journal (cut back to ``good_bytes``)."""
    # The executor starts before the journal is opened and DST made: a scheduler that cannot be reached
    # or workers that cannot start stop the batch without leaving anything on disk.
    executor: Executor = (DaskExecutor(dask, workers, task) if dask is not None
                          else PoolExecutor(workers, task))
    try:
        journal = Journal(journal_path, good_bytes)
    except BaseException:
        executor.shutdown(wait=False, pending=[])
        raise
    return executor, journal


class _Run:
    """One batch in progress: the files in flight and to retry, the journal, the tally and the progress."""

    def __init__(self, task: BatchTask, executor: Executor, journal: Journal, done_keys: set[int],
                 summary: BatchSummary, *, limit: int | None, bar: Progress,
                 failed: set[int] | None = None) -> None:
        self.task, self.executor, self.journal, self.done_keys = task, executor, journal, done_keys
        # keys the journal records as failed: skipping them does not make their errors go away
        self.failed = failed if failed is not None else set()
        self.summary, self.max_in_flight, self.bar = summary, limit, bar
        self.src_root = Path(task.src_root)
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()  # stops the background count
        self.in_flight: dict[Any, Item] = {}
        self.retry: list[Item] = []
        self.exhausted = False
        self.interrupted = False

    def walk(self, list_file: Path | None, exclude: tuple[Path, ...], *, count: bool) -> Iterator[Path]:
        """The sources under SRC (or in ``list_file``), walk problems journaled; counted in the background."""
        sources = iter_sources(self.src_root, list_file=list_file, on_error=self.walk_problem,
                               exclude=exclude)
        if count:
            count_in_background(self.bar, self.src_root, list_file, exclude, self.stop)
        return sources

    def run(self, sources: Iterable[Path]) -> None:
        """Run every source; on Ctrl-C let the running files finish; always close the journal whole."""
        source_iter = iter(sources)
        try:
            while True:
                self.refill(source_iter)
                if not self.in_flight:
                    break
                self.collect()
                self.bar.update(force=False)
        except KeyboardInterrupt:
            self.interrupted = True
            self.finish_running()
        finally:
            self.close()
        self.summary.counts = dict(self.counts)
        self.summary.interrupted = self.interrupted

    @property
    def limit(self) -> int:
        """Files queued or running at once: ``max_in_flight``, else four per slot (a Dask cluster's slots
        follow the workers that join or leave it)."""
        return self.max_in_flight or 4 * self.executor.slots

    def refill(self, sources: Iterator[Path]) -> None:
        """Submit retries first, then new sources, until ``limit`` files are in flight."""
        while len(self.in_flight) < self.limit and (self.retry or not self.exhausted):
            if self.retry:
                # After a worker crash each suspect runs alone, so a second crash names the culprit
                # and the files that merely shared the pool with it go through.
                if not self.in_flight:
                    self.submit(self.retry.pop())
                return
            path = next(sources, None)
            if path is None:
                self.exhausted = True
                return
            item = queue_item(self.task, Path(path), self.src_root, self.done_keys, self.skip, self.record)
            if item is None:
                self.bar.update(skipped=self.summary.skipped - self.bar.skipped)
                continue
            self.submit(item)

    def submit(self, item: Item) -> None:
        self.in_flight[self.executor.submit(item)] = item

    def collect(self) -> None:
        """Journal the files that finished within a second; requeue those whose worker died."""
        broken = False
        for fut in self.executor.wait(self.in_flight, timeout=1.0):
            item = self.in_flight.pop(fut)
            try:
                rec = self.executor.result(fut, item)
            except WorkerDied:
                broken = True
                self.worker_died(item)
                continue
            self.finish(rec)
        if broken and self.executor.shared_fate:
            # Every future of a broken pool fails: requeue the rest too and start a new pool.
            for fut, item in list(self.in_flight.items()):
                self.in_flight.pop(fut)
                self.worker_died(item)
            self.executor.restart()

    def worker_died(self, item: Item) -> None:
        """Try the file again, or record it as failed once it has used its attempts."""
        if item[3] + 1 < self.executor.attempts:
            self.retry.append((*item[:3], item[3] + 1))
        else:
            self.record(problem_record(self.task, item[0], os.fspath(self.src_root / item[0]), DIED))

    def finish_running(self) -> None:
        """After Ctrl-C: drop pending files; running ones finish and are journaled, unless they failed."""
        # Running ones (pool workers ignore SIGINT) finish so what was paid for is kept. A second Ctrl-C
        # while waiting abandons them (journal still whole).
        with contextlib.suppress(KeyboardInterrupt):
            for fut in self.executor.cancel_pending(list(self.in_flight)):
                with contextlib.suppress(Exception):
                    rec = self.executor.result(fut, self.in_flight[fut])
                    # A terminal's Ctrl-C reaches the whole process group, the ffmpeg a worker runs too
                    # (ffmpeg sets its own SIGINT handler: the workers' SIG_IGN does not shield it), so a
                    # file that fails now may have failed of the interruption ("exit status 255").
                    # Journaled, it would stand failed and be skipped on resume; left out, it is redone.
                    if not is_failed(rec):
                        self.finish(rec)

    def close(self) -> None:
        """Stop the count, close the journal, shut the executor down and the progress display."""
        self.stop.set()
        # The journal first: nothing is recorded past here, and a Ctrl-C in the shutdown keeps it whole.
        self.journal.close()
        # A Ctrl-C that lands while the pool shuts down (the batch is over) would otherwise lose the
        # summary and print a traceback from the executor's threads.
        # After a Ctrl-C whose running files all finished, the pool is waited for as after a normal end:
        # shut down without waiting, its manager thread closes its wake-up pipe while the interpreter's
        # exit hook writes to it (CPython 3.11 concurrent.futures: an "OSError: Bad file descriptor"
        # traceback at exit, seen once in CI; the wake-up got its own lock in CPython gh-125451). Only
        # files abandoned by a second Ctrl-C are not waited for.
        settled = all(fut.done() for fut in self.in_flight)
        with _sigint_ignored():
            self.executor.shutdown(wait=not self.interrupted or settled, pending=list(self.in_flight))
        self.bar.update(force=True)
        self.bar.close()

    def skip(self, key: int | None) -> None:
        """Count a file the journal has already; one it records as failed still stands failed."""
        self.summary.skipped += 1
        if key in self.failed:
            self.failed.discard(key)  # counted once, even when listed twice
            self.summary.failed_before += 1
            self.summary.errors += 1

    def record(self, rec: dict[str, Any]) -> None:
        """Journal one file's record and count it, as one step for Ctrl-C (:func:`_interrupts_deferred`)."""
        with _interrupts_deferred():
            self._record(rec)

    def _record(self, rec: dict[str, Any]) -> None:
        self.journal.write(rec)
        key = rec.get("batch", rec)
        kind = self.task.kind
        status = (rec.get("verdict") or "error") if kind == "verify" else rec.get("status", "error")
        if kind == "propagate" and status != "error":
            status = rec.get("outcome") or "error"  # counted by what propagation did; kept ones too
        self.counts[status] += 1
        self.summary.done += 1
        if status == "error" or (kind == "verify" and rec.get("errors")):
            self.summary.errors += 1
        if isinstance(key, dict) and key.get("path") is not None:
            self.done_keys.add(resume_key(key["path"], key.get("size"), key.get("mtime_ns")))
        self.bar.update(done=1)

    def finish(self, rec: dict[str, Any]) -> None:
        """Record a worker's result, unless the file is journaled already."""
        # A file that ran twice (listed twice, or re-run by a Dask scheduler after its worker was lost
        # just as it reported) is journaled once.
        if (key := record_key(rec)) in self.done_keys:
            self.skip(key)
            self.bar.update(skipped=1)
            return
        self.record(rec)

    def walk_problem(self, path: str, reason: str) -> None:
        rel = relative(Path(path), self.src_root) or path
        if (key := resume_key(rel, None, None)) in self.done_keys:
            self.skip(key)
            return
        self.record(problem_record(self.task, rel, path, reason))


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (or the CLI's SIGTERM, which raises the same) until the block is done, then deliver
    it: a record journaled but not yet counted had left the summary one file short of the journal (CI)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to defer elsewhere
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in held[:1]:  # one interrupt is enough; the handler says what it means
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


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
