"""A batch whose journal or report cannot be written (a full disk) says which file, in one line, exit 2
(QA, December 2026: `aigc: error: No space left on device`, no file named)."""

from __future__ import annotations

import errno

from click.testing import CliRunner

import labeler.batch
from labeler.cli import cli


def test_a_full_disk_names_the_report(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(labeler.batch, "run_batch", full)
    (tmp_path / "in").mkdir()
    report = tmp_path / "report.jsonl"
    result = CliRunner().invoke(cli, ["batch", "verify", str(tmp_path / "in"), "--report", str(report)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == f"aigc: error: {report}: No space left on device", result.output
    assert "Traceback" not in result.output
