"""The Dask runner: the same per-file jobs on Dask distributed, through the :class:`Executor` interface.

``dask`` is a scheduler address (``tcp://HOST:8786``), ``"local"`` (a :class:`distributed.LocalCluster`
started and closed here) or an existing client (left open). ``distributed`` is imported only when a
:class:`DaskExecutor` is made, never at import time. Workers run :func:`labeler.batch.jobs.process_file`
on SRC and DST at the same absolute paths (a shared file system); the journal stays with the driver.
"""

from __future__ import annotations

import concurrent.futures
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


#: Seconds between two counts of the cluster's worker threads (:attr:`DaskExecutor.slots`).
_SLOTS_EVERY = 5.0


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
            raise LabelerError("--dask needs Dask distributed: pip install 'aigc-labeler[dask]' "
                               "(in a clone: pip install -e '.[dask]')") from None
        self.distributed, self.task = distributed, task
        self.cluster: Any = None
        self.lost = False  # the client lost its scheduler mid-batch
        self.notes: list[str] = []  # warnings for the end of the batch (workers' ffmpeg builds)
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
                    # Without a dashboard the scheduler still serves HTTP (health, metrics), on 8787 by
                    # default: with that port taken (a `dask scheduler` on this machine) distributed
                    # printed a UserWarning about it on stderr. Any free port on this machine only.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
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
                _probe_scheduler(distributed, dask)
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
            self._await_workers()
            self._check_workers()
            self._slots, self._slots_at = max(1, sum(self.client.nthreads().values())), time.monotonic()
        except BaseException:
            self.shutdown(wait=False, pending=[])
            raise

    def _await_workers(self) -> None:
        """Wait (the connect timeout) for a first worker: with none, files would wait unseen forever."""
        if self.client.nthreads():
            return
        import dask
        from dask.utils import parse_timedelta

        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except Exception:  # noqa: BLE001 - WorkerStartTimeoutError, or the scheduler gone meanwhile
            raise LabelerError(f"{self.where} has no workers (waited {timeout:g} s): start "
                               "`dask worker ADDRESS` on the machines that run the files") from None

    @property
    def slots(self) -> int:
        """The cluster's worker threads, asked again every few seconds: workers may join mid-batch, and a
        count taken once at the start kept a cluster that grew at four files in flight per early thread."""
        if time.monotonic() - self._slots_at > _SLOTS_EVERY and self.client.status == "running":
            self._slots_at = time.monotonic()
            with contextlib.suppress(Exception):  # cannot ask now (a lost scheduler is seen elsewhere)
                self._slots = max(1, sum(self.client.nthreads(callback_timeout=10).values()))
        return self._slots

    def _check_workers(self) -> None:
        """Every worker there now runs this version of the package and sees SRC and DST as here (a shared
        file system); workers whose ffmpeg differs from each other's or this machine's are noted."""
        task = self.task
        try:
            anchor = _existing_ancestor(task.dst_root)
            answers = self.client.run(_worker_check, task.kind, (task.src_root, _first_names(task.src_root)),
                                      task.dst_root, (anchor, _first_names(anchor)))
        except Exception as exc:  # noqa: BLE001 - e.g. ModuleNotFoundError from a worker without the package
            raise LabelerError(f"the workers of {self.where} cannot run the batch ({_one_line(exc)}); "
                               "install aigc-labeler on every worker and restart them") from None
        from labeler import __version__

        for answer in answers.values():
            if answer["version"] != __version__ and not answer["problem"]:
                answer["problem"] = (f"runs aigc-labeler {answer['version']}, this machine {__version__}: "
                                     "install the same version everywhere")
        blind = sorted(worker for worker, answer in answers.items() if answer["problem"])
        if blind:
            raise LabelerError(f"{len(blind)} worker(s) of {self.where} ({blind[0]}...) "
                               f"{answers[blind[0]]['problem']}")
        theirs = sorted({answer["ffmpeg"] for answer in answers.values()})
        mine = _ffmpeg_words()
        if theirs and theirs != [mine]:
            # The audio and video outputs are the bytes that ffmpeg's encoders write: a file's output
            # then depends on which worker ran it, and the journal does not say which.
            self.notes.append(f"the workers of {self.where} run {' and '.join(theirs)}, this machine "
                              f"{mine}: audio and video outputs differ by ffmpeg build (AIGC_FFMPEG)")

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
            if isinstance(exc, ImportError):
                # A worker that cannot import the job (another version, or code changed on disk under a
                # long-running worker) would fail every file it gets: that is the cluster's fault, not the
                # files', and journaled they would stand failed.
                raise LabelerError(f"a worker of {self.where} cannot run the batch ({_one_line(exc)}); "
                                   "install the same aigc-labeler on every worker and restart them; "
                                   "the files journaled so far are kept") from None
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
    """Dask preload hook for the workers of ``dask="local"``: they ignore SIGINT and Pillow's warnings.

    Ctrl-C on a terminal reaches the whole process group, local Dask workers included; like the pool's
    workers they leave it to the batch, which lets running files finish and journals them. Their stderr
    is the batch's, so Pillow's warnings are ignored as on the command line
    (:func:`labeler.media.pillow_guard.quiet_pillow_warnings`). Workers started by hand (``dask worker``)
    are not touched.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from labeler.media.pillow_guard import quiet_pillow_warnings

    quiet_pillow_warnings()


def _probe_scheduler(distributed: Any, address: str) -> None:
    """Raise OSError unless a Dask scheduler answers at ``address`` within the connect timeout.

    ``distributed.Client`` bounds only the TCP connection by ``distributed.comm.timeouts.connect``: a
    peer that accepts and stays silent (a firewall, a web server) made it wait forever in the handshake;
    one that answers something else (an HTTP proxy, the dashboard port) made it read a length of exabytes
    (MemoryError); a worker's address got a TypeError, and each left a half-built Client whose finalizer
    waited 60 s at exit and printed a traceback. Here the handshake and an ``identity`` call run on a
    private connection under one deadline, so the Client is made only for a scheduler.
    """
    import asyncio

    import dask
    from dask.utils import parse_timedelta
    from distributed.comm import connect
    from distributed.core import send_recv

    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    args = distributed.Security().get_connection_args("client")  # TLS settings, as the Client reads them

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout, **args)
        try:
            return await send_recv(comm, op="identity")
        finally:
            comm.abort()

    try:
        # On a thread of its own: run_batch may be called where an event loop runs (a notebook), and
        # asyncio.run refuses to start a second one in that thread.
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            answer = thread.submit(asyncio.run, asyncio.wait_for(identity(), timeout)).result()
    except (OSError, asyncio.TimeoutError) as exc:
        if isinstance(exc, asyncio.TimeoutError) or not str(exc):
            raise OSError(f"no Dask scheduler answered within {timeout:g} s") from None
        raise
    except Exception:  # noqa: BLE001 - whatever the peer sent (MemoryError on a bogus length), it is not Dask
        raise OSError("what answers there is not a Dask scheduler") from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        words = f" but a Dask {kind}: give the address `dask scheduler` prints" if kind else ""
        raise OSError(f"what answers there is not a Dask scheduler{words}")


def _worker_check(kind: str, src: tuple[str, list[str]], dst_root: str | None,
                  dst_anchor: tuple[str | None, list[str]]) -> dict[str, Any]:
    """Run on each Dask worker before the batch: its version, its ffmpeg and why it cannot work (or None).

    ``src`` is SRC with a few of its entries as the driver sees them: an unmounted share leaves an empty
    folder at the mount point, which passes for SRC. ``dst_anchor`` is DST's nearest existing folder on
    the driver (DST itself is made later) with a few of its entries: a worker that sees another folder
    there would write its outputs on its own disk, and the journal would call them done.
    """
    import labeler.pipeline  # noqa: F401 - fails here, once, on a worker that lacks a dependency
    from labeler import __version__

    if kind in ("verify", "propagate"):
        import detectors  # noqa: F401 - the verify and propagate jobs' package

    problem = _unseen(f"SRC {src[0]}", *src)
    if problem is None and dst_root is not None:
        anchor, names = dst_anchor
        where = f"DST {dst_root}" if anchor == dst_root else f"{anchor} (where DST {dst_root} goes)"
        if _existing_ancestor(dst_root) != anchor:
            problem = f"cannot see {where}"
        elif anchor is not None:
            problem = _unseen(where, anchor, names)
    return {"problem": problem, "version": __version__, "ffmpeg": _ffmpeg_words()}


def _unseen(where: str, folder: str, names: list[str]) -> str | None:
    """Why this process does not see ``folder`` holding ``names`` as the driver does, or None."""
    if not os.path.isdir(folder):
        return f"cannot see {where}"
    missing = [name for name in names if not os.path.lexists(os.path.join(folder, name))]
    if missing:
        return (f"see another folder at {where} (no {missing[0]!r} in it): is the shared file system "
                "mounted there?")
    return None


def _first_names(folder: str | None, count: int = 8) -> list[str]:
    """Up to ``count`` entries of ``folder`` (the file system's order: no full listing of a big one)."""
    if folder is None:
        return []
    try:
        with os.scandir(folder) as entries:
            # not a running batch's temporary outputs (".aigc-*/", ".NAME.HEX.part"): they come and go
            names = (entry.name for entry in entries
                     if not entry.name.startswith(".aigc-") and not entry.name.endswith(".part"))
            return [name for _, name in zip(range(count), names, strict=False)]
    except OSError:
        return []


def _existing_ancestor(path: str | None) -> str | None:
    """``path`` or its nearest folder above that exists; None for None."""
    if path is None:
        return None
    current = Path(path)
    while not current.is_dir() and current != current.parent:
        current = current.parent
    return os.fspath(current)


def _ffmpeg_words() -> str:
    """The ffmpeg program this process would run, as ``ffmpeg VERSION (PATH)``."""
    from labeler.environment import ffmpeg_report

    found = ffmpeg_report()
    return f"ffmpeg {found.version or '(unknown version)'} ({found.path})" if found.path else "no ffmpeg"


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
