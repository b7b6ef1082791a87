"""The batch runner: mixed tree, journal, resume (also after SIGKILL), Ctrl-C, list files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PRODUCER, ROOT, SAMPLES

from labeler.batch import LABEL_JOURNAL, BatchTask, RecordTemplate, iter_sources, read_journal, run_batch
from labeler.errors import LabelerError
from labeler.metadata import read_labels
from labeler.options import LabelOptions

GOOD = {
    "photo.jpg": "photo.jpg",
    "nested/deeper/照片 with spaces.png": "photo.png",
    "nested/speech.mp3": "speech.mp3",
    "nested/deeper/speech.flac": "speech.flac",
    "audio/speech one.wav": "speech.wav",
}
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checksums(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, set[str], set[str]]:
    """A mixed SRC tree; returns (src, good relative paths, bad relative paths)."""
    src = tmp_path / "src"
    for rel, sample in GOOD.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / sample, src / rel)
    bad = {"zero.png", "nested/text.jpg", "nested/deeper/truncated.jpg", "nested/loop", "dangling.jpg"}
    (src / "zero.png").write_bytes(b"")
    (src / "nested/text.jpg").write_text("this is text, not a JPEG\n")
    (src / "nested/deeper/truncated.jpg").write_bytes((SAMPLES / "photo.jpg").read_bytes()[:5000])
    os.symlink("..", src / "nested/loop")                       # a folder loop
    os.symlink("no-such-target.jpg", src / "dangling.jpg")
    if not AS_ROOT:  # root reads through chmod 000, so the case only exists for other users
        (src / "locked.mp3").write_bytes((SAMPLES / "speech.mp3").read_bytes())
        (src / "locked.mp3").chmod(0)
        bad.add("locked.mp3")
    return src, set(GOOD), bad


def label_task(src: Path, dst: Path) -> BatchTask:
    return BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER, "b-{path_hash}"))


def test_label_then_verify_mixed_tree(tree, tmp_path):
    src, good, bad = tree
    before = checksums(src)
    dst = tmp_path / "dst"
    summary = run_batch(label_task(src, dst), workers=2, progress=False)
    assert not summary.interrupted
    journal = lines(dst / LABEL_JOURNAL)
    by_path = {rec["path"]: rec for rec in journal}
    assert len(by_path) == len(journal) == len(good | bad)
    for rel in good:
        assert by_path[rel]["status"] == "ok", by_path[rel]
    for rel in bad:
        assert by_path[rel]["status"] == "error" and by_path[rel]["error"], by_path[rel]
        assert "\n" not in by_path[rel]["error"]
    assert "symlink loop" in by_path["nested/loop"]["error"]
    assert summary.counts == {"ok": len(good), "error": len(bad)} and summary.errors == len(bad)
    # Outputs mirror SRC, nothing partial, inputs untouched.
    outputs = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()} - {LABEL_JOURNAL}
    assert outputs == good
    assert checksums(src) == before

    report = tmp_path / "report.jsonl"
    vsum = run_batch(BatchTask("verify", os.fspath(dst)), workers=2, journal_path=report, progress=False)
    reports = lines(report)
    assert {r["batch"]["path"] for r in reports} == good
    assert all(r["verdict"] == "confirmed" for r in reports)
    assert vsum.counts == {"confirmed": len(good)}

    # Re-runs skip everything.
    again = run_batch(label_task(src, dst), workers=2, progress=False)
    assert again.done == 0 and again.skipped == len(good | bad)
    assert len(lines(dst / LABEL_JOURNAL)) == len(journal)
    vagain = run_batch(BatchTask("verify", os.fspath(dst)), workers=1, journal_path=report, progress=False)
    assert vagain.done == 0 and vagain.skipped == len(good)
    assert checksums(src) == before


def test_verify_batch_reports_bad_files_and_changed_files_are_redone(tree, tmp_path):
    src, good, bad = tree
    report = tmp_path / "r.jsonl"
    run_batch(BatchTask("verify", os.fspath(src)), workers=1, journal_path=report, progress=False)
    reports = {r["batch"]["path"]: r for r in lines(report)}
    assert set(reports) == good | bad
    assert all(reports[r]["verdict"] == "none" for r in good)
    assert all(reports[r]["verdict"] is None and reports[r]["errors"] for r in bad)
    # A changed file (new size/mtime) is verified again; the rest is skipped.
    target = src / "photo.jpg"
    target.write_bytes(target.read_bytes() + b"\0")
    summary = run_batch(BatchTask("verify", os.fspath(src)), workers=1, journal_path=report, progress=False)
    assert summary.done == 1 and summary.skipped == len(good | bad) - 1


def test_existing_outputs_kept_or_refused(tree, tmp_path):
    src, good, _ = tree
    dst = tmp_path / "dst"
    run_batch(label_task(src, dst), workers=1, progress=False)
    (dst / LABEL_JOURNAL).unlink()
    # Same task, no journal: the outputs already carry this task's label, so they are kept.
    summary = run_batch(label_task(src, dst), workers=1, progress=False)
    assert summary.counts["kept"] == len(good)
    (dst / LABEL_JOURNAL).unlink()
    # Another label: outputs exist and are not ours -> error, unless overwrite.
    other = BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER, "other-{path_hash}"))
    summary = run_batch(other, workers=1, progress=False)
    assert "ok" not in summary.counts and "kept" not in summary.counts
    assert any("exists" in r["error"] for r in lines(dst / LABEL_JOURNAL) if r["path"] in good)


def test_list_file(tree, tmp_path):
    src, _, _ = tree
    listing = tmp_path / "list.txt"
    listing.write_text("# files to do\nphoto.jpg\n\nnested/deeper/照片 with spaces.png\n/etc/hostname\n"
                       "missing.jpg\n", encoding="utf-8")
    problems: list[tuple[str, str]] = []
    found = list(iter_sources(src, list_file=listing, on_error=lambda p, r: problems.append((p, r))))
    names = [p.relative_to(src).as_posix() for p in found]
    assert names == ["photo.jpg", "nested/deeper/照片 with spaces.png"]
    assert {r.split(" ")[0] for _, r in problems} >= {"outside"}
    assert len(problems) == 2
    summary = run_batch(label_task(src, tmp_path / "d"), workers=1, list_file=listing, progress=False)
    assert summary.counts == {"ok": 2, "error": 2}


def test_walk_reports_loops_and_skips_own_files(tmp_path):
    root = tmp_path / "t"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(b"1")
    os.symlink("../..", root / "a" / "up")
    os.symlink("self", root / "self")
    (root / LABEL_JOURNAL).write_text("")
    (root / ".x.jpg.0123456789ab.part").write_bytes(b"")
    problems: list[str] = []
    found = list(iter_sources(root, on_error=lambda p, r: problems.append(r)))
    assert [p.name for p in found] == ["x.jpg"]
    assert sum("symlink loop" in r for r in problems) == 2


def test_bad_tasks(tmp_path):
    with pytest.raises(LabelerError, match="placeholder"):
        run_batch(BatchTask("label", os.fspath(SAMPLES), os.fspath(tmp_path),
                            RecordTemplate(PRODUCER, "{name}")))
    with pytest.raises(LabelerError, match="report path"):
        run_batch(BatchTask("verify", os.fspath(SAMPLES)))
    with pytest.raises(LabelerError, match="not a folder"):
        run_batch(BatchTask("verify", os.fspath(tmp_path / "nope")), journal_path=tmp_path / "r")
    with pytest.raises(LabelerError, match="invalid label"):
        run_batch(BatchTask("label", os.fspath(SAMPLES), os.fspath(tmp_path), RecordTemplate("a b")))
    # A built signer may not pickle: it travels as a SignerRef that each worker rebuilds.
    built = LabelOptions().with_signer(object())  # type: ignore[arg-type]
    with pytest.raises(LabelerError, match="BatchTask.signer"):
        run_batch(BatchTask("label", os.fspath(SAMPLES), os.fspath(tmp_path), RecordTemplate(PRODUCER),
                            built))
    with pytest.raises(LabelerError, match="unknown layer 'sparkle'"):
        run_batch(BatchTask("label", os.fspath(SAMPLES), os.fspath(tmp_path), RecordTemplate(PRODUCER),
                            LabelOptions(layers=("metadata", "sparkle"))))
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


# -- interruption ----------------------------------------------------------------------------------------
def many_files(tmp_path: Path, n: int) -> Path:
    src = tmp_path / "many"
    for i in range(n):
        sample = ("photo.png", "speech.mp3", "speech.wav")[i % 3]
        target = src / f"d{i % 4}" / f"f {i:03d}{Path(sample).suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / sample, target)
    return src


def start_batch(src: Path, dst: Path) -> subprocess.Popen:
    code = (
        "import json, sys; from labeler.batch import BatchTask, RecordTemplate, run_batch; "
        f"t = BatchTask('label', {os.fspath(src)!r}, {os.fspath(dst)!r}, RecordTemplate({PRODUCER!r}, "
        "'b-{path_hash}')); "
        "s = run_batch(t, workers=1, progress=True, progress_interval=0.2); print(json.dumps(s.to_dict()))"
    )
    # Own session: the test can kill the batch and its workers as one group, and nothing else.
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(journal: Path, proc: subprocess.Popen, n: int) -> None:
    deadline = time.monotonic() + 60  # a guard against a hung test, not a timing assertion
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.005)


def test_sigkill_then_resume_does_every_file_once(tmp_path):
    src = many_files(tmp_path, 60)
    before = checksums(src)
    dst = tmp_path / "dst"
    journal = dst / LABEL_JOURNAL
    proc = start_batch(src, dst)
    wait_for_lines(journal, proc, 3)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # A torn last line, as a kill in the middle of a write would leave it.
    with open(journal, "ab") as handle:
        handle.write(b'{"path":"d0/f 000.png","si')
    done_before, _, _ = read_journal(journal)
    summary = run_batch(label_task(src, dst), workers=2, progress=False)
    assert 0 < len(done_before) < 60 and summary.skipped == len(done_before)
    records = lines(journal)  # every line is whole JSON again
    paths = [r["path"] for r in records]
    assert sorted(paths) == sorted(before) and len(paths) == len(set(paths))
    assert all(r["status"] in ("ok", "kept") for r in records)
    for rel in before:
        _, found = read_labels(dst / rel)
        assert found and '"ProduceID":"b-' in found[0].raw
    leftovers = [p for p in dst.rglob("*") if p.name != LABEL_JOURNAL
                 and (p.name.endswith(".part") or p.name.startswith(".aigc-"))]
    assert leftovers == []
    assert checksums(src) == before


def test_ctrl_c_stops_cleanly(tmp_path):
    src = many_files(tmp_path, 45)
    dst = tmp_path / "dst"
    journal = dst / LABEL_JOURNAL
    proc = start_batch(src, dst)
    wait_for_lines(journal, proc, 2)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)  # the parent only, as the batch's own handling is under test
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    records = lines(journal)
    assert len(records) == summary["done"]
    assert "Traceback" not in err
    rest = run_batch(label_task(src, dst), workers=1, progress=False)
    assert rest.done + rest.skipped == 45
    assert len({r["path"] for r in lines(journal)}) == 45


def test_a_record_is_journaled_and_counted_as_one_step():
    """A Ctrl-C that lands while a record is written is held until it is journaled *and* counted: CI saw
    a journal of 5 records under a summary of 4 done (test_ctrl_c_stops_cleanly, 1 run in ~40)."""
    from labeler.batch.runner import _interrupts_deferred

    # Python's own handler, whatever this process inherited: a test run started in the background of a
    # shell without job control has SIGINT ignored, and the deferral keeps an ignored signal ignored
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        steps = []
        with pytest.raises(KeyboardInterrupt), _interrupts_deferred():
            steps.append("journaled")
            signal.raise_signal(signal.SIGINT)  # the handler only notes it here
            steps.append("counted")
        assert steps == ["journaled", "counted"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with _interrupts_deferred():
            signal.raise_signal(signal.SIGINT)  # ignored before, ignored after
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_progress_lines_when_not_a_tty(tree, tmp_path, capsys):
    src, _, _ = tree
    run_batch(BatchTask("verify", os.fspath(src)), workers=1, journal_path=tmp_path / "r.jsonl",
              progress=True, progress_interval=0.0)
    err = capsys.readouterr().err
    assert "aigc batch verify:" in err and "files/s" in err


def test_rerun_with_other_options_or_overwrite_is_not_skipped(tmp_path):
    """The journal remembers what each file was done with: a re-run with another record or other layers
    does the files again (an existing output then needs --overwrite, as the journal says), and
    --overwrite also redoes files that failed because their output existed (the fix the error names)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    shutil.copy(SAMPLES / "photo.png", src / "a.png")
    shutil.copy(SAMPLES / "photo.jpg", src / "b.jpg")
    (dst / "a.png").write_text("not ours")
    journal = dst / LABEL_JOURNAL

    def task(producer: str, layers: tuple[str, ...] = ("metadata",), overwrite: bool = False) -> BatchTask:
        return BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(producer, "r-{path_hash}"),
                         LabelOptions.build(layers=layers, overwrite=overwrite))

    first = run_batch(task(PRODUCER), workers=1, progress=False)
    assert first.counts == {"ok": 1, "error": 1}
    assert "exists" in next(r for r in lines(journal) if r["path"] == "a.png")["error"]
    assert (dst / "a.png").read_text() == "not ours"
    again = run_batch(task(PRODUCER, overwrite=True), workers=1, progress=False)
    assert (again.done, again.skipped, again.counts) == (1, 1, {"ok": 1})  # a.png redone, b.jpg kept
    assert f'"ContentProducer":"{PRODUCER}"' in read_labels(dst / "a.png")[1][0].raw
    same = run_batch(task(PRODUCER, overwrite=True), workers=1, progress=False)
    assert (same.done, same.skipped, same.other_options) == (0, 2, 0)
    other = run_batch(task("OTHER-PRODUCER", ("metadata", "visible")), workers=1, progress=False)
    assert other.other_options == 2 and other.counts == {"error": 2}  # outputs exist: not replaced
    replaced = run_batch(task("OTHER-PRODUCER", ("metadata", "visible"), overwrite=True), workers=1,
                         progress=False)
    # their last journal lines are the failures of the run before, with these options: redone as failures
    # (--overwrite), not as files of other options
    assert replaced.counts == {"ok": 2} and replaced.other_options == 0
    for name in ("a.png", "b.jpg"):
        assert '"ContentProducer":"OTHER-PRODUCER"' in read_labels(dst / name)[1][0].raw
    done = run_batch(task("OTHER-PRODUCER", ("metadata", "visible"), overwrite=True), workers=1,
                     progress=False)
    assert (done.done, done.skipped, done.other_options) == (0, 2, 0)


def test_dst_equal_to_src_is_refused_before_anything_is_written(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.png", src / "a.png")
    for dst in (src, tmp_path / "src" / "." , tmp_path / "x" / ".." / "src"):
        with pytest.raises(LabelerError, match="DST is SRC"):
            run_batch(label_task(src, dst), workers=1, progress=False)
    assert sorted(p.name for p in src.iterdir()) == ["a.png"]  # no journal, no output


def test_read_journal_reports_the_files_still_failed(tmp_path):
    """``failed`` gets the files whose last journal line is a failure: a file retried successfully is
    no longer failed, and a retry run (retry_errors) counts no old failure."""
    from labeler.batch.journal import resume_key

    journal = tmp_path / LABEL_JOURNAL
    rows = [{"path": "a.png", "size": 1, "mtime_ns": 1, "status": "error"},
            {"path": "b.png", "size": 1, "mtime_ns": 1, "status": "error"},
            {"path": "a.png", "size": 1, "mtime_ns": 1, "status": "ok"},
            {"path": "c.png", "size": 1, "mtime_ns": 1, "status": "ok"}]
    journal.write_text("".join(json.dumps(r) + "\n" for r in rows))
    failed: set[int] = set()
    done, _, _ = read_journal(journal, failed=failed)
    assert len(done) == 3 and failed == {resume_key("b.png", 1, 1)}
    retrying: set[int] = set()
    read_journal(journal, retry_errors=True, failed=retrying)
    assert retrying == set()
