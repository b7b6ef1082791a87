"""The batch runner on Dask distributed: a LocalCluster of 2 worker processes against the local pool."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PRODUCER, SAMPLES, run_cli

from labeler.batch import LABEL_JOURNAL, BatchTask, RecordTemplate, VerifySettings, run_batch
from labeler.cli import cli
from labeler.errors import LabelerError

GOOD = {"photo.jpg": "photo.jpg", "nested/图 片.png": "photo.png", "nested/deeper/speech.mp3": "speech.mp3"}
BAD = {"zero.png": b"", "nested/text.jpg": b"this is text, not a JPEG\n"}


@pytest.fixture(scope="module")
def client():
    """One LocalCluster (2 single-threaded worker processes) for the module: starting one costs seconds."""
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster, set_as_default=False) as dask_client:
        yield dask_client


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for rel, sample in GOOD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / sample, root / rel)
    for rel, data in BAD.items():
        (root / rel).write_bytes(data)
    return root


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def normalized(records: list[dict], root: Path) -> dict[str, dict]:
    """Records by relative path, with the run's own root and timings taken out."""
    out = {}
    for rec in records:
        rec = json.loads(json.dumps(rec).replace(os.fspath(root), "ROOT"))
        rec.pop("seconds", None)
        if "batch" in rec:  # a verify line: its key is the output's, written at another time by each run
            rec["batch"].pop("mtime_ns")
        out[rec.get("batch", rec)["path"]] = rec
    return out


def label_task(src: Path, dst: Path) -> BatchTask:
    return BatchTask("label", os.fspath(src), os.fspath(dst), RecordTemplate(PRODUCER, "d-{path_hash}"))


def test_dask_gives_the_pool_records_and_resumes(client, src, tmp_path):
    pool_dst, dask_dst = tmp_path / "pool", tmp_path / "dask"
    pool = run_batch(label_task(src, pool_dst), workers=2, progress=False)
    summary = run_batch(label_task(src, dask_dst), dask=client, progress=False)
    assert (summary.done, summary.errors, summary.counts) == (5, 2, {"ok": 3, "error": 2})
    assert summary.counts == pool.counts
    journal = normalized(lines(dask_dst / LABEL_JOURNAL), dask_dst)
    assert journal == normalized(lines(pool_dst / LABEL_JOURNAL), pool_dst)
    assert set(journal) == set(GOOD) | set(BAD)
    for rel in GOOD:  # the same label, written by another process: the same bytes
        assert (dask_dst / rel).read_bytes() == (pool_dst / rel).read_bytes()

    reports = {}
    for name, dst in (("pool", pool_dst), ("dask", dask_dst)):
        report = tmp_path / f"{name}.jsonl"
        task = BatchTask("verify", os.fspath(dst), verify=VerifySettings(visible=False))
        run_batch(task, journal_path=report, progress=False, workers=2,
                  dask=client if name == "dask" else None)
        reports[name] = normalized(lines(report), dst)
    assert reports["dask"] == reports["pool"]
    assert {rel: rec["verdict"] for rel, rec in reports["dask"].items()} == dict.fromkeys(GOOD, "confirmed")
    assert {r["layers"]["metadata"]["fields"]["ProduceID"] for r in reports["dask"].values()} \
        == {journal[rel]["produce_id"] for rel in GOOD}

    again = run_batch(label_task(src, dask_dst), dask=client, progress=False)
    assert (again.done, again.skipped) == (0, 5)
    assert len(lines(dask_dst / LABEL_JOURNAL)) == 5


def test_a_file_listed_twice_is_journaled_once(client, src, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("photo.jpg\nnested/图 片.png\nphoto.jpg\n", encoding="utf-8")
    dst = tmp_path / "dst"
    summary = run_batch(label_task(src, dst), dask=client, list_file=listing, progress=False)
    assert sorted(rec["path"] for rec in lines(dst / LABEL_JOURNAL)) == ["nested/图 片.png", "photo.jpg"]
    assert (summary.done, summary.skipped) == (2, 1)


def test_cli_dask_local_end_to_end(src, tmp_path):
    pytest.importorskip("distributed")
    dst = tmp_path / "dst"
    proc = run_cli("batch", "label", str(src), str(dst), "--producer", PRODUCER, "--dask", "local",
                   "--workers", "1", "--no-progress")
    assert proc.returncode == 2, proc.stderr  # the two bad files
    assert "Traceback" not in proc.stderr and "error 2, ok 3" in proc.stderr
    journal = lines(dst / LABEL_JOURNAL)
    assert sorted(r["path"] for r in journal if r["status"] == "ok") == sorted(GOOD)
    assert all(r["dst"] == os.fspath(dst / r["path"]) for r in journal)  # absolute, as workers got them
    # verify takes the same option (one definition in _batch_options); its run is the in-process test's
    help_text = CliRunner().invoke(cli, ["batch", "verify", "--help"]).output
    assert "--dask ADDRESS|local" in help_text


def test_unreachable_scheduler_is_one_line_and_leaves_nothing(src, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")  # read by the child's dask config
    report = tmp_path / "report.jsonl"
    proc = run_cli("batch", "verify", str(src), "--report", str(report), "--dask", "tcp://127.0.0.1:1",
                   "--no-progress")
    assert proc.returncode == 2
    assert proc.stderr.startswith("aigc: error: cannot connect to the Dask scheduler at tcp://127.0.0.1:1")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not report.exists()
    task = BatchTask("verify", os.fspath(src))
    with pytest.raises(LabelerError, match=r"^cannot connect to the Dask scheduler at nope://x: unknown"):
        run_batch(task, journal_path=report, dask="nope://x", progress=False)
    assert not report.exists()


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and its children (a worker's nannies)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_scheduler_lost_mid_batch_stops_in_one_line_and_resumes(tmp_path):
    """`dask scheduler` killed while files run: one line, exit 2, a whole journal; a re-run does the rest."""
    pytest.importorskip("distributed")
    dask_cli = Path(sys.executable).with_name("dask")
    if not dask_cli.exists():
        pytest.skip("the dask command is not installed next to this Python")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    names = [f"p{i:02d}.png" for i in range(30)]
    for name in names:
        shutil.copy(SAMPLES / "photo.png", src / name)
    # A lost scheduler must not cost the 30 s default reconnect wait in the batch, nor in the worker.
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s")
    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [str(dask_cli), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(sched_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        _wait_for(lambda: sched_file.exists() and sched_file.stat().st_size > 0, 30, "the scheduler")
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen(
            [str(dask_cli), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
             "--death-timeout", "5"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        command = [sys.executable, "-m", "labeler.cli", "batch", "label", str(src), str(dst),
                   "--producer", PRODUCER, "--produce-id", "s-{path_hash}", "--layers", "visible,metadata",
                   "--no-progress"]
        batch = subprocess.Popen([*command, "--dask", address], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(batch)
        journal = dst / LABEL_JOURNAL

        def journaled() -> int:
            return len(journal.read_bytes().splitlines()) if journal.exists() else 0

        # The visible layer takes a fraction of a second per image: two done, the rest still to come.
        _wait_for(lambda: journaled() >= 2 or batch.poll() is not None, 45, "the first files")
        assert batch.poll() is None, f"the batch ended before its scheduler was lost: {batch.stderr.read()}"
        os.killpg(procs[0].pid, signal.SIGKILL)
        try:
            _, stderr = batch.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            raise AssertionError("the batch hangs after losing its scheduler") from None
    finally:
        for proc in reversed(procs):
            _stop(proc)
    assert batch.returncode == 2, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith(f"aigc: error: lost the connection to the Dask scheduler at {address}"), stderr
    assert "run the same command again to resume" in stderr

    first = lines(journal)  # every line whole JSON
    done_first = [rec["path"] for rec in first]
    assert len(done_first) == len(set(done_first)) and 2 <= len(done_first) < len(names)
    assert all(rec["status"] == "ok" for rec in first)

    # Resume on the local pool: exactly the files not journaled yet, each once.
    resumed = subprocess.run([*command, "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    records = lines(journal)
    assert records[:len(first)] == first
    again = [rec["path"] for rec in records[len(first):]]
    assert sorted(again) == sorted(set(names) - set(done_first)) and len(again) == len(set(again))
    # A file a worker finished after the loss but before its line was written is "kept", not redone.
    assert all(rec["status"] in ("ok", "kept") for rec in records[len(first):])
    assert sorted(p.name for p in dst.iterdir() if not p.name.startswith(".")) == names


def test_worker_killed_mid_file_is_rescheduled_and_journaled_once(client, tmp_path):
    """Last of the cluster tests: it leaves one worker restarting."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLES / "clip.mp4", src / "clip.mp4")
    pids = client.run(os.getpid)
    killed: list[str] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = [worker for worker, stacks in client.call_stack().items() if stacks]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    report = tmp_path / "report.jsonl"
    # The visible search on a video takes seconds: long enough to be caught mid-file.
    task = BatchTask("verify", os.fspath(src), verify=VerifySettings(visible=True))
    summary = run_batch(task, journal_path=report, dask=client, progress=False)
    killer.join()
    assert killed, "no worker was seen running a file"
    records = lines(report)
    assert [r["batch"]["path"] for r in records] == ["clip.mp4"]
    assert summary.errors == 0 and all(not r["errors"] and r["verdict"] == "none" for r in records)
    # A re-run finds the file done: nothing runs twice, the journal is unchanged.
    again = run_batch(task, journal_path=report, dask=client, progress=False)
    assert (again.done, again.skipped) == (0, 1) and lines(report) == records


def test_urls_are_refused_before_anything_runs(src, tmp_path):
    task = BatchTask("label", os.fspath(src), "s3://bucket/out", RecordTemplate(PRODUCER))
    with pytest.raises(LabelerError, match=r"^DST s3://bucket/out: URLs are not supported yet"):
        run_batch(task, dask="local", progress=False)
    with pytest.raises(LabelerError, match="URLs are not supported"):
        BatchTask("verify", "gs://bucket/in").check()
