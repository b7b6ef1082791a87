"""``aigc batch``: ``aigc batch label``, ``aigc batch verify`` and ``aigc batch propagate`` over whole
folder trees.

The commands, their shared options (workers, file list, retries, progress, Dask) and the end of a run
(the summary line, the warning for journaled files done with other options, the exit code); the work
itself is :func:`labeler.batch.run_batch`. The options the single-file commands share and the error
helpers come from :mod:`labeler.cli`, whose ``aigc`` group :data:`batch_group` joins (``@cli.group``);
:mod:`labeler.cli` imports this module, so ``aigc batch`` is there whichever is imported first.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from labeler.cli import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    CliPath,
    _absolute_store,
    _fail,
    _label_groups,
    _label_options,
    _layers_to_verify,
    _no_visible_option,
    _quick_option,
    _read_key,
    _store_option,
    _trust_anchors_option,
    _verify_layers_option,
    cli,
)
from labeler.errors import LabelerError


@cli.group("batch")
def batch_group() -> None:
    """Label, verify or propagate whole folder trees: parallel, journaled, resumable."""


def _batch_options(func):
    options = [
        click.option("--workers", type=click.IntRange(1, 1024), default=None,
                     help="Worker processes [default: all cores]."),
        click.option("--list", "list_file", type=CliPath(dir_okay=False, path_type=str),
                     help="Take the files from this list (one path per line, relative to SRC)."),
        click.option("--retry-errors", is_flag=True, help="Redo files the journal records as failed."),
        click.option("--no-progress", is_flag=True, help="No progress bar or progress lines."),
        click.option("--dask", "dask", metavar="ADDRESS|local",
                     help="Run on Dask distributed: a scheduler address (tcp://HOST:8786) or 'local' for a "
                          "local cluster of --workers processes. Workers must see SRC and DST at the same "
                          "paths (shared file system). Needs the dask extra."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_batch(task, journal: str | None, opts: dict) -> None:
    from labeler.batch import run_batch

    if opts["workers"] is not None and opts["dask"] not in (None, "local"):
        # Said before the run, not after it: the cluster's size decides how many files run at once.
        click.echo("aigc: warning: --workers is not used with a Dask scheduler address: the cluster's "
                   "workers run the files (start more with `dask worker`)", err=True)
    try:
        summary = run_batch(task, workers=opts["workers"], journal_path=journal, list_file=opts["list_file"],
                            retry_errors=opts["retry_errors"], progress=not opts["no_progress"],
                            dask=opts["dask"])
    except LabelerError as exc:
        _fail(str(exc))
    except OSError as exc:
        # The journal or report could not be written (a full disk): name it, as every other error does;
        # the files journaled before stay done for a resume (a torn last line is cut off then)
        _fail(f"{exc.filename or journal or 'the batch journal'}: {exc.strerror or exc}")
    for note in summary.notes:
        click.echo(f"aigc: warning: {note}", err=True)
    if summary.other_options:
        words = _other_options_words(task.kind, summary.other_options)
        click.echo(f"aigc: warning: {summary.journal}: {words}", err=True)
    click.echo(summary.line(), err=True)
    if summary.interrupted:
        sys.exit(130)
    sys.exit(EXIT_BAD_INPUT if summary.errors else EXIT_OK)


def _other_options_words(kind: str, count: int) -> str:
    """The warning for journaled files a run with other options did, which this run did again."""
    if kind == "verify":
        # No outputs to overwrite: the report (the journal) gets a second line for each such file.
        return (f"{count} file(s) in the report were verified with other options; they were verified "
                "again with these options, and the report now holds both results for them (the later "
                "line is the current one)")
    return (f"{count} journaled file(s) were done with other options; they were done again with these "
            "(outputs that exist need --overwrite)")


def _journal_option(func):
    return click.option("--journal", type=CliPath(dir_okay=False, path_type=str),
                        help="Journal file [default: DST/.aigc-journal.jsonl].")(func)


@batch_group.command("label")
# No exists=True: a URL must reach BatchTask.check, which says URLs are not supported yet (click said
# "does not exist"); a missing folder is refused there too ("SRC is not a folder").
@click.argument("src", type=CliPath(file_okay=False, path_type=str))
@click.argument("dst", type=CliPath(file_okay=False, path_type=str))
@_label_options(batch=True)
@_batch_options
@_journal_option
def batch_label_cmd(src: str, dst: str, journal: str | None, **opts) -> None:
    """Label every file under SRC into the same tree under DST; re-run to resume.

    Exit 0 when every file was labeled, 2 when any failed (each is in the journal with its reason),
    130 when interrupted.
    """
    from labeler.batch import BatchTask, RecordTemplate

    try:
        options, signer = _label_groups(opts)
    except LabelerError as exc:
        _fail(str(exc))
    record = RecordTemplate(
        producer=opts["producer"], produce_id=opts["produce_id"], label=opts["label_value"],
        reserved_code1=opts["reserved1"], propagator=opts["propagator"], propagate_id=opts["propagate_id"],
        reserved_code2=opts["reserved2"],
    )
    task = BatchTask("label", src, dst, record, options, signer)
    _run_batch(task, journal, opts)


@batch_group.command("verify")
# No exists=True: a URL must reach BatchTask.check, which says URLs are not supported yet (click said
# "does not exist"); a missing folder is refused there too ("SRC is not a folder").
@click.argument("src", type=CliPath(file_okay=False, path_type=str))
@click.option("--report", required=True, type=CliPath(dir_okay=False, path_type=str),
              help="JSON Lines report, one line per file as it finishes; also the resume journal.")
@click.option("--key-file", type=CliPath(dir_okay=False, path_type=str), help="Watermark key.")
@_trust_anchors_option
@_no_visible_option
@_verify_layers_option
@_quick_option
@_store_option
@_batch_options
def batch_verify_cmd(
    src: str, report: str, key_file: str | None, anchor_files: Sequence[str], no_visible: bool,
    verify_layers: str | None, quick: bool, manifest_store: str | None, **opts
) -> None:
    """Verify every file under SRC into REPORT (JSON Lines); re-run to resume.

    Exit 0 when every file was read, 2 when any could not be, 130 when interrupted.
    """
    from labeler.batch import BatchTask, VerifySettings

    try:
        key = _read_key(key_file)
        layers = _layers_to_verify(verify_layers, quick, no_visible, key, manifest_store)
    except LabelerError as exc:
        _fail(str(exc))
    settings = VerifySettings(key, tuple(anchor_files), "visible" in layers, layers,
                              _absolute_store(manifest_store))
    task = BatchTask("verify", src, verify=settings)
    _run_batch(task, report, opts)


@batch_group.command("propagate")
# No exists=True, as for batch label: BatchTask.check words a URL or a missing folder.
@click.argument("src", type=CliPath(file_okay=False, path_type=str))
@click.argument("dst", type=CliPath(file_okay=False, path_type=str))
@click.option("--propagator", required=True, help="ContentPropagator: the platform's code or name.")
@click.option("--propagate-id", "id_template", metavar="TEMPLATE",
              help="PropagateID per file: literal text with {stem}, {name}, {relpath}, {path_hash} or "
                   "{content_hash} (e.g. 'px-{path_hash}'); or give --ids.")
@click.option("--ids", "ids_file", type=CliPath(dir_okay=False, path_type=str), metavar="CSV",
              help="PropagateIDs from a CSV of 'relative path,id' rows; a file not in it fails (journaled).")
@click.option("--reserved2", default="", help="ReservedCode2: the platform's protection data.")
@click.option("--declared-ai", is_flag=True,
              help="The uploaders declare the content AI-generated: an unlabeled file gets Label 2.")
@click.option("--key-file", type=CliPath(dir_okay=False, path_type=str),
              help="Watermark key: a found watermark counts as a trace of AI generation.")
@_trust_anchors_option
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (and redo failed files).")
@_batch_options
@_journal_option
def batch_propagate_cmd(src: str, dst: str, propagator: str, id_template: str | None, ids_file: str | None,
                        reserved2: str, declared_ai: bool, key_file: str | None, anchor_files: Sequence[str],
                        overwrite: bool, journal: str | None, **opts) -> None:
    """What a distribution platform does on upload (Labeling Measures Art. 6), for every file under SRC
    into the same tree under DST; re-run to resume.

    Each file as `aigc propagate` does it: a labeled file keeps the producer's fields and gets the
    platform's ContentPropagator and PropagateID, an unlabeled one Label 2 (--declared-ai) or Label 3
    (traces found), and one with nothing found is copied unchanged. Exit 0 when every file was done, 2
    when any failed (each is in the journal with its reason), 130 when interrupted.
    """
    from labeler.batch import BatchTask, PropagateSettings

    if (id_template is None) == (ids_file is None):
        _fail("give one of --propagate-id TEMPLATE and --ids CSV (each file needs its PropagateID)")
    try:
        key = _read_key(key_file)
    except LabelerError as exc:
        _fail(str(exc))
    settings = PropagateSettings(propagator, id_template, ids_file, reserved2, declared_ai, key,
                                 tuple(anchor_files), overwrite)
    _run_batch(BatchTask("propagate", src, dst, propagate=settings), journal, opts)
