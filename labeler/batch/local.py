"""The local runner: the files run on a :class:`~concurrent.futures.ProcessPoolExecutor` (the default).

A worker that dies on a file (a crash, the OOM killer) breaks the whole pool: the runner tries the files
it held again, one at a time on a new pool, so the culprit is found and recorded as failed while the
others go through.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Collection
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from labeler.batch.executor import WorkerDied
from labeler.batch.jobs import prepare, process_file
from labeler.batch.plan import Item
from labeler.errors import LabelerError

if TYPE_CHECKING:
    from labeler.batch.task import BatchTask

# How many times a file whose worker died (BrokenProcessPool) is tried before it is recorded as failed.
_MAX_ATTEMPTS = 2
# Held by a worker while it runs a file: the driver watch (_watch_driver) takes it before the worker
# exits, so a file under way is finished (its output renamed into place whole, its staging folder gone)
# and no further one is started.
_RUNNING = threading.Lock()


def init_worker(task: BatchTask, driver: int | None = None) -> None:
    """The pool's initializer: ignore SIGINT and Pillow's warnings, end the worker when the driver
    process ``driver`` is gone, and build what the task needs, once per worker process."""
    # The parent handles Ctrl-C: a terminal sends SIGINT to the whole process group, and workers that
    # died mid-file would lose finished work; ignoring it lets in-flight files finish and be journaled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forkserver/spawn worker starts with the default warning filters, not the command line's:
    # Pillow's DecompressionBombWarning on a 12000 x 12000 PNG printed raw lines on the batch's stderr.
    from labeler.media.pillow_guard import quiet_pillow_warnings

    quiet_pillow_warnings()
    if driver is not None:
        _watch_driver(driver)
    prepare(task)


def run_one(task: BatchTask, rel: str, size: int | None, mtime_ns: int | None) -> dict[str, Any]:
    """:func:`~labeler.batch.jobs.process_file` in a pool worker, marked as running for the driver watch."""
    with _RUNNING:
        return process_file(task, rel, size, mtime_ns)


def _watch_driver(driver: int) -> None:
    """End this worker once the batch's driver process has exited, after the file it is running.

    A pool worker waits for its next file on a pipe that every worker holds open at both ends, so it
    never sees the driver go: a driver killed with SIGKILL (``kill -9``, the OOM killer, a CI timeout)
    left the forkserver and every worker waiting for ever, ~110 MB each, and a resumed run beside them.
    The worker's parent is the forkserver, not the driver, so the driver is watched by its process ID:
    a pidfd on Linux (readable once it exits; immune to the ID's reuse), else asked once a second.
    """
    try:
        fd: int | None = os.pidfd_open(driver)  # type: ignore[attr-defined]  # Linux >= 5.3, Python >= 3.9
    except ProcessLookupError:
        os._exit(1)  # gone already: nobody will ever send a file
    except (AttributeError, OSError):
        fd = None
    if fd is None and os.name != "posix":
        return  # os.kill(pid, 0) terminates the process on Windows: no fallback there

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while True:
                time.sleep(1.0)
                try:
                    os.kill(driver, 0)
                except ProcessLookupError:
                    break
                except OSError:  # alive, another user's (a reused ID): keep watching
                    continue
        _RUNNING.acquire()  # never released: the file under way finishes, no other one starts
        os._exit(1)

    threading.Thread(target=watch, name="aigc-batch-driver-watch", daemon=True).start()


def _new_pool(workers: int, task: BatchTask) -> ProcessPoolExecutor:
    # forkserver, not fork: the parent has threads (progress counting, tqdm's monitor), and forking a
    # threaded process can deadlock the child; spawn elsewhere.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=init_worker, initargs=(task, os.getpid()))
    # Probe: a pool whose workers cannot even start (unimportable __main__, no memory) must stop the
    # batch with one error, not record every file as "worker died".
    try:
        pool.submit(os.getpid).result()
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        # From Python the usual cause is a script without the __main__ guard: each worker imports it and
        # starts a pool of its own, which multiprocessing refuses (QA walkthrough, 2026-12-08)
        raise LabelerError("worker processes cannot start (call run_batch under 'if __name__ == "
                           "\"__main__\":' in a script or module, not from stdin; check memory)") from None
    return pool


def _submit(pool: ProcessPoolExecutor, task: BatchTask, item: tuple) -> Future:
    """Submit one file; a pool broken meanwhile gives a failed future, handled like any other break."""
    try:
        return pool.submit(run_one, task, *item[:3])
    except BrokenProcessPool as exc:
        fut: Future = Future()
        fut.set_exception(exc)
        return fut


class PoolExecutor:
    """The local :class:`~concurrent.futures.ProcessPoolExecutor` (the default)."""

    attempts = _MAX_ATTEMPTS
    shared_fate = True

    def __init__(self, workers: int, task: BatchTask) -> None:
        self.slots, self.task = workers, task
        self.notes: list[str] = []
        self.pool = _new_pool(workers, task)

    def submit(self, item: Item) -> Future:
        return _submit(self.pool, self.task, item)

    def wait(self, futures: Collection[Future], timeout: float) -> list[Future]:
        return list(wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)[0])

    def result(self, future: Future, item: Item) -> dict[str, Any]:
        try:
            return future.result()
        except BrokenProcessPool:
            raise WorkerDied from None

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = _new_pool(self.slots, self.task)

    def cancel_pending(self, futures: list[Future]) -> list[Future]:
        # Future.cancel() fails exactly for the files already running: those are waited for.
        return [fut for fut in futures if not fut.cancel()]

    def shutdown(self, wait: bool, pending: list[Future]) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=True)
