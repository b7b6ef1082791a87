"""The Dask runner: the same per-file jobs on Dask distributed, through the :class:`Executor` interface.

``dask`` is a scheduler address (``tcp://HOST:8786``), ``"local"`` (a :class:`distributed.LocalCluster`
started and closed here) or an existing client (left open). ``distributed`` is imported only when a
:class:`DaskExecutor` is made, never at import time. Workers run :func:`labeler.batch.jobs.process_file`
on SRC and DST at the same absolute paths (a shared file system); the journal stays with the driver.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Collection
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeler.batch.executor import WorkerDied
from labeler.batch.jobs import problem_record, process_file
from labeler.batch.plan import Item
from labeler.errors import LabelerError

if TYPE_CHECKING:
    from labeler.batch.task import BatchTask


class DaskExecutor:
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
        self.lost = False  # the client lost its scheduler mid-batch
        self.own_client = not isinstance(dask, distributed.Client)
        if not self.own_client:
            self.client = dask
            self.where = f"the Dask scheduler at {dask.scheduler.address}"
        elif dask == "local":
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
        # distributed's own logs of a lost scheduler (distributed.client "Failed to reconnect ...",
        # distributed.batched "Batched Comm Closed" with a traceback, from its event-loop thread) would
        # stand beside the batch's one-line error: the whole tree is hushed while the batch owns the
        # client (a caller's own client keeps its logging; a local cluster is silenced to ERROR anyway).
        self._hush = contextlib.ExitStack()
        if self.own_client:
            self._hush.enter_context(_quiet("distributed"))
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

    def submit(self, item: Item) -> Any:
        if self.client.status != "running":
            # Reconnecting or closed: a future submitted now would wait for a scheduler that is gone.
            raise self._lost()
        future = self.client.submit(process_file, self.task, *item[:3], pure=False)
        self.ready.add(future)
        return future

    def wait(self, futures: Collection[Any], timeout: float) -> list[Any]:
        # as_completed has no timeout per batch: poll it, so progress lines keep coming during long files.
        deadline = time.monotonic() + timeout
        while not self.ready.has_ready() and time.monotonic() < deadline:
            if self.client.status in ("closing", "closed", "failed"):
                # The client gave up on its scheduler: what is still in flight never comes back.
                raise self._lost()
            time.sleep(0.02)
        return self.ready.next_batch(block=False)

    def result(self, future: Any, item: Item) -> dict[str, Any]:
        try:
            return future.result()
        except self.distributed.KilledWorker:
            raise WorkerDied from None
        except Exception as exc:  # noqa: BLE001 - lost scheduler, cancelled: the batch cannot go on
            # On a lost connection the client cancels every future at once (reason
            # "scheduler-connection-lost"), then tries to reconnect; the files' results are gone either way.
            # A connection reset can surface here before the client has noticed (status still "running").
            if ("scheduler-connection-lost" in str(exc) or self.client.status != "running"
                    or isinstance(exc, (ConnectionError, self.distributed.comm.CommClosedError))):
                raise self._lost() from None
            if future.status == "cancelled" or isinstance(exc, (OSError, CancelledError)):
                raise LabelerError(f"{self.where} stopped running the batch: {_one_line(exc)}") from None
            # process_file itself never raises; this is the cluster failing this one file (a worker
            # that cannot unpickle it, say): record it and go on.
            return problem_record(self.task, item[0], os.fspath(Path(self.task.src_root) / item[0]),
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
        try:
            self._close(pending)
        finally:
            self._hush.close()

    def _close(self, pending: list[Any]) -> None:
        if self.lost:
            # Closing stops the client's reconnect attempt, which distributed logs as an error with a
            # traceback; the batch has said what happened in one line already.
            with _quiet("distributed"), contextlib.suppress(Exception):
                if self.own_client:
                    self.client.close(timeout=5)
                if self.cluster is not None:
                    self.cluster.close()
            return
        with contextlib.suppress(Exception):
            if pending:
                self.client.cancel(pending)
            if self.own_client:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()

    def _lost(self) -> LabelerError:
        """The one-line error that stops a batch whose scheduler went away (marks the client lost)."""
        self.lost = True
        return LabelerError(f"lost the connection to {self.where} mid-batch; the files journaled so far are "
                            "kept: run the same command again to resume")


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


@contextlib.contextmanager
def _quiet(name: str) -> Any:
    """Raise the level of logger ``name`` and its children to CRITICAL for the ``with`` block."""
    loggers = [logging.getLogger(name)] + [
        logging.getLogger(other) for other in list(logging.root.manager.loggerDict)
        if other.startswith(name + ".")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
