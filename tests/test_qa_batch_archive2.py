"""QA pass on `aigc batch` over an archive (second round): Ctrl-C with ffmpeg in the workers, `--list`
with absolute paths under a relative SRC, and the journal lines against docs/batch.md."""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import Future
from pathlib import Path

from conftest import PRODUCER, ROOT
from PIL import Image

from labeler.batch import BatchTask, RecordTemplate, iter_sources, read_journal, run_batch
from labeler.batch.journal import Journal
from labeler.batch.progress import Progress
from labeler.batch.runner import _Run
from labeler.batch.summary import BatchSummary


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (120, 80, 40)).save(path)
    return path


class _CtrlCWhileRunning:
    """An executor whose two running files come back after a Ctrl-C: one done, one whose ffmpeg was
    killed by the same Ctrl-C (the terminal's SIGINT reaches the whole process group)."""

    attempts, shared_fate, slots = 1, False, 2

    def __init__(self, task: BatchTask) -> None:
        self.task, self.items = task, {}

    def submit(self, item):
        fut: Future = Future()
        self.items[fut] = item
        return fut

    def wait(self, futures, timeout):
        raise KeyboardInterrupt  # Ctrl-C while both files run

    def result(self, fut, item):
        return fut.result()

    def restart(self) -> None:
        pass

    def cancel_pending(self, futures):
        for fut in futures:
            rel, size, mtime_ns, _ = self.items[fut]
            rec = {"path": rel, "size": size, "mtime_ns": mtime_ns, "task": self.task.fingerprint(),
                   "status": "ok", "error": None}
            if rel.startswith("video"):
                rec.update(status="error", error="ffmpeg (encoding the watermarked video): exit status 255")
            fut.set_result(rec)
        return futures

    def shutdown(self, wait, pending) -> None:
        pass


def test_file_failing_after_ctrl_c_is_left_for_the_resume(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    sources = [_png(src / "image.png"), _png(src / "video.png")]
    task = BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER))
    journal_path = tmp_path / "journal.jsonl"
    summary = BatchSummary("label")
    run = _Run(task, _CtrlCWhileRunning(task), Journal(journal_path, 0), set(), summary, limit=2,
               bar=Progress(False, "label", 10.0))
    run.run(sources)
    assert summary.interrupted
    lines = [json.loads(line) for line in journal_path.read_text().splitlines()]
    # the finished file is kept; the one the interruption failed is not journaled as failed ...
    assert [r["path"] for r in lines] == ["image.png"] and summary.errors == 0
    failed: set[int] = set()
    done, _, _ = read_journal(journal_path, task=task.fingerprint(), failed=failed)
    # ... so a resume redoes it instead of skipping it as "still failed from an earlier run"
    assert len(done) == 1 and not failed


def test_list_absolute_entry_under_a_relative_src(tmp_path, monkeypatch):
    _png(tmp_path / "src" / "sub" / "a b.png")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'src' / 'sub' / 'a b.png'}\n{tmp_path / 'elsewhere.png'}\n")
    monkeypatch.chdir(tmp_path)
    problems: list[tuple[str, str]] = []
    found = list(iter_sources(Path("src"), list_file=listing, on_error=lambda p, r: problems.append((p, r))))
    # the same path (and so the same resume key) as walking SRC gives it
    assert found == [Path("src") / "sub" / "a b.png"]
    assert [r for _, r in problems] == ["outside SRC (src); skipped"]


def _documented_label_keys() -> list[str]:
    text = (ROOT / "docs" / "batch.md").read_text(encoding="utf-8")
    section = text.split("## Journal lines", 1)[1].split("\n## ", 1)[0]
    label_table = section.split("A `propagate` line", 1)[0]  # the propagate line's own table follows
    return re.findall(r"^\| `([a-z_]+)` \|", label_table, flags=re.M)


def test_label_journal_lines_have_every_documented_field(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _png(src / "deep" / "er" / "ok.png")
    (src / "empty.png").write_bytes(b"")
    os.mkfifo(src / "pipe.png")
    run_batch(BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER)), workers=1,
              progress=False)
    _png(src / "kept.png")
    (dst / ".aigc-journal.jsonl").unlink()  # outputs there, no journal: the files are kept
    run_batch(BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER)), workers=1,
              progress=False)
    keys = _documented_label_keys()
    assert keys[:3] == ["path", "size", "mtime_ns"] and len(keys) == 12
    records = {r["path"]: r for r in map(json.loads, (dst / ".aigc-journal.jsonl").read_text().splitlines())}
    assert {p: r["status"] for p, r in records.items()} == {
        "deep/er/ok.png": "kept", "empty.png": "error", "pipe.png": "error", "kept.png": "ok"}
    for rec in records.values():
        assert list(rec) == keys
        assert isinstance(rec["warnings"], list) and isinstance(rec["task"], str)
    ok, kept, empty, pipe = (records[p] for p in ("kept.png", "deep/er/ok.png", "empty.png", "pipe.png"))
    assert ok["layers"] == ["metadata"] and ok["format"] == "png" and ok["error"] is None
    assert kept["format"] == "png" and kept["layers"] is None and kept["produce_id"]
    assert empty["format"] is None and empty["layers"] is None and empty["error"] == "empty file (0 bytes)"
    assert isinstance(empty["seconds"], float) and isinstance(empty["size"], int)
    assert pipe["size"] is None and pipe["dst"] is None and pipe["seconds"] is None
    assert pipe["produce_id"] is None


def test_a_symlink_in_dst_that_leads_outside_is_not_written_through(tmp_path):
    """A folder link already inside DST that points elsewhere: outputs were written through it, outside
    DST (QA, batch pass). Now that file is an error and nothing is written there."""
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    _png(src / "sub" / "a.png")
    _png(src / "sub" / "deeper" / "b.png")
    _png(src / "ok.png")
    outside.mkdir()
    dst.mkdir()
    (dst / "sub").symlink_to(outside, target_is_directory=True)
    run_batch(BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER)), workers=1,
              progress=False)
    records = {r["path"]: r for r in map(json.loads, (dst / ".aigc-journal.jsonl").read_text().splitlines())}
    assert records["ok.png"]["status"] == "ok"
    assert records["sub/a.png"]["status"] == "error"
    assert "outside DST through a symbolic link" in records["sub/a.png"]["error"]
    assert records["sub/deeper/b.png"]["status"] == "error"
    assert list(outside.iterdir()) == []  # not even an empty folder for sub/deeper
