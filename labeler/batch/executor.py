"""What the batch loop needs from where the files run (the local pool, :mod:`labeler.batch.local`, or a
Dask cluster, :mod:`labeler.batch.dask_runner`), and how either says that a worker died on a file."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from labeler.batch.plan import Item

#: The error recorded for a file whose worker died on it every time it was tried.
DIED = "the worker process died on this file (crash or out of memory)"


class WorkerDied(Exception):
    """The process running a file died (crash, out of memory): the file may be tried again."""


class Executor(Protocol):
    """What :func:`~labeler.batch.run_batch` needs from where the files run: the local pool or Dask."""

    #: Files a worker death is allowed to take before the file is recorded as failed.
    attempts: int
    #: A worker death fails every file in flight (a broken process pool), which then need a restart.
    shared_fate: bool
    #: Files that can run at once (worker processes or threads).
    slots: int
    #: Warnings about where the files ran, for the end of the batch (:attr:`BatchSummary.notes`).
    notes: list[str]

    def submit(self, item: Item) -> Any: ...
    def wait(self, futures: Collection[Any], timeout: float) -> list[Any]: ...
    def result(self, future: Any, item: Item) -> dict[str, Any]: ...
    def restart(self) -> None: ...
    def cancel_pending(self, futures: list[Any]) -> list[Any]: ...
    def shutdown(self, wait: bool, pending: list[Any]) -> None: ...
