"""The outcome of a batch: :class:`BatchSummary`, its JSON form and the one summary line ``aigc batch``
prints at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class BatchSummary:
    """The outcome of :func:`run_batch`.

    Attributes
    ----------
    kind : str
        ``label``, ``verify`` or ``propagate``.
    done : int
        Files processed in this run (journaled), failures and walk problems included.
    skipped : int
        Files skipped because the journal already had them.
    counts : dict
        Per status (``label``: ``ok``, ``kept``, ``error``), verdict (``verify``: ``confirmed``,
        ``possible``, ``suspected``, ``none``, ``error``) or outcome (``propagate``: ``propagated``,
        ``declared``, ``traces``, ``copied``, ``error``; :data:`labeler.batch.propagate_job.OUTCOMES`) for
        this run.
    errors : int
        Files that stand failed after this run: those recorded with an error in this run, plus
        ``failed_before`` (``aigc batch`` exits 2 when this is not 0).
    seconds : float
        Wall time.
    interrupted : bool
        Stopped by Ctrl-C (KeyboardInterrupt); the journal holds every file finished until then.
    journal : str
        The journal path.
    other_options : int
        Journal lines written by a run with other options (layers, record, keys, settings): their files
        were not skipped but done again with this run's.
    failed_before : int
        Files skipped because the journal records them as failed: their errors still stand
        (``retry_errors=True``, ``--retry-errors``, redoes them).
    notes : list of str
        Warnings about where the files ran (Dask workers whose ffmpeg differs: their audio and video
        outputs differ by worker); ``aigc batch`` prints each as a warning.
    """

    kind: str
    done: int = 0
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    journal: str = ""
    other_options: int = 0
    failed_before: int = 0
    notes: list[str] = field(default_factory=list)

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
        """One human line, e.g. ``label finished: 120 done (ok 118, error 2), 5000 skipped, 41.2 files/s in
        2.9 s; journal J``; no rate when nothing was done, and how to resume when interrupted."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        head = "interrupted after" if self.interrupted else "finished:"
        # a re-run that skips journaled failures must not read as a clean run
        still = (f" ({self.failed_before} still failed from an earlier run: --retry-errors redoes them)"
                 if self.failed_before else "")
        # a run that did nothing has no rate: "0.0 files/s" would read as a stalled batch
        rate = f", {self.files_per_s:.1f} files/s" if self.done else ""
        # the journal keeps every finished file: the same command picks up where this one stopped
        resume = "; run the same command again to resume" if self.interrupted else ""
        return (f"{self.kind} {head} {self.done} done ({counts or 'nothing new'}), {self.skipped} skipped"
                f"{still}{rate} in {self.seconds:.1f} s; journal {self.journal}{resume}")
