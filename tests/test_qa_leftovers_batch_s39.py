"""`aigc batch` refuses a --report / --journal whose folder does not exist (QA, December 2026).

The folders were made without a word: ``--report /typo/dir/report.jsonl`` ran the whole batch into a
report in a folder nobody would look in. Only DST's folders are made (docs/batch.md), and a journal
inside DST, which the batch makes, is still fine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import PRODUCER, SAMPLES, run_cli


def _src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", src / "photo.jpg")
    return src


def test_a_report_in_a_missing_folder_is_refused_naming_it(tmp_path):
    src = _src(tmp_path)
    report = tmp_path / "typo" / "dir" / "report.jsonl"
    done = run_cli("batch", "verify", str(src), "--report", str(report), "--workers", "1")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [f"aigc: error: the report's folder {report.parent} does not "
                                                "exist; create it first, or check the path"]
    assert not (tmp_path / "typo").exists()
    # a file where the folder should be: the same one line
    inside_a_file = src / "photo.jpg" / "r.jsonl"
    done = run_cli("batch", "verify", str(src), "--report", str(inside_a_file), "--workers", "1")
    assert done.returncode != 0 and "is not a folder" in done.stderr and "Traceback" not in done.stderr


def test_a_journal_outside_dst_in_a_missing_folder_is_refused_before_any_work(tmp_path):
    src = _src(tmp_path)
    dst = tmp_path / "out"
    done = run_cli("batch", "label", str(src), str(dst), "--journal", str(tmp_path / "nope" / "j.jsonl"),
                   "--producer", PRODUCER, "--produce-id", "batch-s39", "--workers", "1")
    assert done.returncode != 0 and "the journal's folder" in done.stderr and "nope" in done.stderr
    assert not dst.exists() and not (tmp_path / "nope").exists()


def test_the_default_journal_and_one_inside_a_new_dst_still_work(tmp_path):
    src = _src(tmp_path)
    for dst, journal in ((tmp_path / "a", None), (tmp_path / "b", tmp_path / "b" / "journal.jsonl")):
        extra = ("--journal", str(journal)) if journal else ()
        done = run_cli("batch", "label", str(src), str(dst), *extra, "--producer", PRODUCER,
                       "--produce-id", "batch-s39", "--workers", "1")
        assert done.returncode == 0, done.stderr
        assert (dst / "photo.jpg").is_file()
        assert (journal or dst / ".aigc-journal.jsonl").is_file()
    report = tmp_path / "report.jsonl"
    assert run_cli("batch", "verify", str(src), "--report", str(report), "--workers", "1").returncode == 0
    assert report.is_file()
