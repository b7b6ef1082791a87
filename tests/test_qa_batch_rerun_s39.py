"""A batch re-run back to the first options after a run with others relabeled the files (QA, December 2026).

``aigc batch label in out --producer A``, then ``--producer B --overwrite``, then ``--producer A`` again:
the third run printed "0 done (nothing new), 1 skipped" and left B's label in the output, because any
journal line of this run's options counted as done. A file's last journal line decides.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import SAMPLES, run_cli

from labeler.metadata import read_labels
from labeler.record import parse_label


def _producer(path: Path) -> str:
    found = [f for f in read_labels(path)[1] if f.standard]
    assert len(found) == 1
    return parse_label(found[0].raw).fields["ContentProducer"]


def test_a_rerun_with_the_first_options_relabels_what_another_run_changed(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.png", src / "photo.png")
    a, b = "001191110102MACQD9K64010000", "001191110102MACQD9K64010001"

    def batch(producer: str, *extra: str):  # noqa: ANN202
        return run_cli("batch", "label", str(src), str(dst), "--producer", producer, "--no-progress", *extra)

    assert batch(a).returncode == 0 and _producer(dst / "photo.png") == a
    assert batch(b, "--overwrite").returncode == 0 and _producer(dst / "photo.png") == b
    # Back to A: not skipped as done (the output holds B's label now); without --overwrite the existing
    # output is refused and said so, with it the file is labeled A again
    again = batch(a)
    assert again.returncode != 0 and "done with other options" in again.stderr, again.stderr
    assert _producer(dst / "photo.png") == b
    assert batch(a, "--overwrite").returncode == 0 and _producer(dst / "photo.png") == a
    lines = [json.loads(line) for line in (dst / ".aigc-journal.jsonl").read_text().splitlines()]
    assert [line["status"] for line in lines][-1] == "ok"


def test_verify_rerun_reads_again_what_another_run_reported_last(tmp_path):
    """``batch verify`` with a report: A, B (other layers), A again reads the file again, so the report's
    last line (the current one, docs/batch.md) is this run's."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.png", src / "photo.png")
    report = tmp_path / "report.jsonl"
    for layers in ("metadata", "metadata,c2pa", "metadata"):
        done = run_cli("batch", "verify", str(src), "--report", str(report), "--layers", layers,
                       "--no-progress")
        assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == 3 and lines[-1]["examined"] == ["metadata"], lines[-1]
