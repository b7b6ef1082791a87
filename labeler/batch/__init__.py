"""Archive-scale batch labeling, verification and propagation on a local process pool or a Dask cluster,
resumable.

The pieces, for the ``aigc batch`` commands and for backends (each module holds one of them):

* :mod:`~labeler.batch.task`: :class:`BatchTask`, a picklable description of the per-file work
  (``kind="label"``, ``"verify"`` or ``"propagate"`` plus its frozen groups: the :class:`RecordTemplate`,
  the :class:`~labeler.options.LabelOptions`, a C2PA signer as :class:`SignerRef` paths, the
  :class:`VerifySettings`, the :class:`PropagateSettings`), from which each worker process rebuilds what
  it needs once;
* :mod:`~labeler.batch.jobs`: :func:`process_file`, the label job and the verify job a worker runs on one
  file, returning its journal record; the propagate job is :mod:`~labeler.batch.propagate_job`;
* :mod:`~labeler.batch.plan`: :func:`iter_sources` streams the files of a folder tree (``os.scandir``, one
  directory iterator per level, never a full list) or of a list file, reporting symlink loops and
  unreadable folders to a callback instead of failing; DST is made ready there;
* :mod:`~labeler.batch.journal`: the resumable journal (:func:`read_journal`, :data:`LABEL_JOURNAL`);
* :mod:`~labeler.batch.local` and :mod:`~labeler.batch.dask_runner`: where the files run, a
  :class:`~concurrent.futures.ProcessPoolExecutor` or Dask distributed, behind one small executor
  interface (:mod:`~labeler.batch.executor`);
* :mod:`~labeler.batch.runner`: :func:`run_batch` runs the task on one of them with a bounded number of
  files in flight, appends one JSON line per finished file to the journal (written by this process
  only), shows progress (:mod:`~labeler.batch.progress`) and returns a :class:`BatchSummary`
  (:mod:`~labeler.batch.summary`).

Journal and resume
------------------
Each finished file (success or failure) is one JSON line, written whole, flushed at once and fsync'ed
every :data:`FSYNC_EVERY` lines and at the end. A file is identified by its path relative to SRC, its
size and its ``mtime_ns``: a re-run skips every file whose key is in the journal, and redoes a file that
changed since. A line torn by a SIGKILL is cut off before appending, so the journal stays valid JSON
Lines. For ``label`` and ``propagate`` the journal defaults to ``DST/.aigc-journal.jsonl``; for
``verify`` the report file itself is the journal (each line is ``Report.to_dict()`` plus a ``batch``
object with the key), so a resumed verification appends to the same report.

A label (or propagate) output that exists without a journal line (the batch was killed after the output
was renamed into place but before its line was written) is kept when it carries exactly the label this
task would write (a propagate output: or is a byte copy of an unlabeled input), and recorded then;
otherwise it is an error, unless ``overwrite``. Leftover temporary files of a killed run
(``.NAME.HEX.part``, ``.aigc-*`` folders) are removed from DST when a label or propagate batch resumes.
"""

from labeler.batch.dask_runner import dask_setup
from labeler.batch.jobs import process_file
from labeler.batch.journal import FSYNC_EVERY, LABEL_JOURNAL, default_journal, read_journal
from labeler.batch.plan import OnError, iter_sources
from labeler.batch.propagate_job import OUTCOMES, read_ids
from labeler.batch.runner import run_batch
from labeler.batch.summary import BatchSummary
from labeler.batch.task import (
    ID_PLACEHOLDERS,
    PROPAGATE_ID_FIELDS,
    BatchTask,
    PropagateSettings,
    RecordTemplate,
    SignerRef,
    VerifySettings,
)

__all__ = [
    "FSYNC_EVERY",
    "ID_PLACEHOLDERS",
    "LABEL_JOURNAL",
    "OUTCOMES",
    "PROPAGATE_ID_FIELDS",
    "BatchSummary",
    "BatchTask",
    "OnError",
    "PropagateSettings",
    "RecordTemplate",
    "SignerRef",
    "VerifySettings",
    "dask_setup",
    "default_journal",
    "iter_sources",
    "process_file",
    "read_ids",
    "read_journal",
    "run_batch",
]
