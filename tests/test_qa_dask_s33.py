"""QA (s33) of ``aigc batch --dask``: what answers at the scheduler address, the local cluster's stderr."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES
from test_batch_dask import _stop, _wait_for

from labeler.batch import BatchTask, RecordTemplate

pytest.importorskip("distributed")


@contextlib.contextmanager
def _tcp_server(reply: bytes | None) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that is not a Dask scheduler: it sends ``reply`` and closes, or (None)
    accepts and then stays silent, as a firewall or a web server waiting for a request does."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            if reply is None:
                held.append(conn)
            else:
                with contextlib.suppress(OSError), conn:
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def _batch_verify(src: Path, report: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
    # A short connect timeout: the batch must give up within it whatever answers, not hang.
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s")
    try:
        return subprocess.run(
            [sys.executable, "-m", "labeler.cli", "batch", "verify", os.fspath(src), "--report",
             os.fspath(report), "--no-progress", *extra],
            capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the batch still waits after {timeout} s") from None


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "photo.png").write_bytes((SAMPLES / "photo.png").read_bytes())
    return root


@pytest.mark.parametrize("reply", [
    None,  # accepts and says nothing (before: waited forever in Dask's handshake)
    # a web server or proxy (before: "internal error (MemoryError: Unable to allocate 3.07 EiB ...)", a
    # Client.__del__ traceback, exit 1, after a 60 s wait at exit)
    b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
], ids=["silent", "http"])
def test_something_else_at_the_scheduler_address_is_one_line(src, tmp_path, reply):
    report = tmp_path / "report.jsonl"
    with _tcp_server(reply) as address:
        proc = _batch_verify(src, report, "--dask", address)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"aigc: error: cannot connect to the Dask scheduler at {address}: "), \
        proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not report.exists()


# --- a cluster started by hand, as docs/batch.md says: `dask scheduler`, then `dask worker` processes ---

DASK_CLI = Path(sys.executable).with_name("dask")


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory) -> Iterator[str]:
    """A `dask scheduler` on a free port of 127.0.0.1 (stopped, with its process group, at the end)."""
    if not DASK_CLI.exists():
        pytest.skip("the dask command is not installed next to this Python")
    sched_file = tmp_path_factory.mktemp("sched") / "scheduler.json"
    proc = subprocess.Popen(
        [str(DASK_CLI), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(sched_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: sched_file.exists() and sched_file.stat().st_size > 0, 30, "the scheduler")
        yield json.loads(sched_file.read_text())["address"]
    finally:
        _stop(proc)


@contextlib.contextmanager
def _worker(address: str, *, env: dict[str, str] | None = None, wrap: tuple[str, ...] = ()) -> Iterator[None]:
    """One `dask worker` process (``wrap`` runs it under another command), registered before the yield."""
    import distributed

    with distributed.Client(address, set_as_default=False, timeout=10) as client:
        before = len(client.scheduler_info()["workers"])
        proc = subprocess.Popen(
            [*wrap, str(DASK_CLI), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            env=dict(os.environ, **(env or {})), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            client.wait_for_workers(before + 1, timeout=60)
            yield
        finally:
            _stop(proc)
            # the next test must not find this worker still registered
            _wait_for(lambda: len(client.scheduler_info()["workers"]) <= before, 30, "the worker to leave")


def _batch_label(src: Path, dst: Path, address: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labeler.cli", "batch", "label", os.fspath(src), os.fspath(dst),
         "--producer", PRODUCER, "--no-progress", "--dask", address],
        capture_output=True, text=True, timeout=120)


def test_workers_with_another_ffmpeg_are_named(scheduler, src, tmp_path):
    """Their audio and video outputs are other bytes; before, nothing said which ffmpeg a worker ran."""
    import imageio_ffmpeg

    from labeler.media.ffmpeg import ffmpeg_exe

    if os.path.realpath(ffmpeg_exe()) == os.path.realpath(imageio_ffmpeg.get_ffmpeg_exe()):
        pytest.skip("this machine already runs the bundled ffmpeg")
    with _worker(scheduler, env={"AIGC_FFMPEG": "bundled"}):
        proc = _batch_label(src, tmp_path / "dst", scheduler)
    assert proc.returncode == 0, proc.stderr
    warning, summary = proc.stderr.strip().splitlines()
    assert warning.startswith(f"aigc: warning: the workers of the Dask scheduler at {scheduler} run ffmpeg ")
    assert f"({imageio_ffmpeg.get_ffmpeg_exe()})" in warning and f"({ffmpeg_exe()})" in warning
    assert summary.startswith("label finished: 1 done (ok 1)")


def test_workers_that_see_an_empty_mount_point_at_src_stop_the_batch(scheduler, src, tmp_path):
    """An unmounted share leaves an empty folder at its mount point: before, the worker passed the check
    (SRC is a folder there) and every file was journaled as failed ('No such file or directory')."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to give a worker its own mount table")
    # The worker's SRC is an empty tmpfs: the same path, another folder.
    wrap = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs none "$0" && exec "$@"', os.fspath(src))
    dst = tmp_path / "dst"
    with _worker(scheduler, wrap=wrap):
        proc = _batch_label(src, dst, scheduler)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"aigc: error: 1 worker(s) of the Dask scheduler at {scheduler} "), \
        proc.stderr
    assert f"see another folder at SRC {src} (no 'photo.png' in it)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not dst.exists()


def test_workers_that_see_another_folder_where_dst_goes_stop_the_batch(scheduler, src, tmp_path):
    """DST made under a share that a worker has not mounted: its outputs went to its own disk (journaled
    as ok); the check looked at SRC only."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to give a worker its own mount table")
    share = tmp_path / "share"
    share.mkdir()
    (share / "earlier").mkdir()
    dst = share / "labeled"
    wrap = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs none "$0" && exec "$@"', os.fspath(share))
    with _worker(scheduler, wrap=wrap):
        proc = _batch_label(src, dst, scheduler)
    assert proc.returncode == 2, proc.stderr
    assert f"see another folder at {share} (where DST {dst} goes) (no 'earlier' in it)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not dst.exists()


def test_a_worker_of_another_version_stops_the_batch(scheduler, src, tmp_path):
    import distributed

    dst = tmp_path / "dst"
    with _worker(scheduler), distributed.Client(scheduler, set_as_default=False, timeout=10) as client:
        client.run(lambda: setattr(__import__("labeler"), "__version__", "0.0.1"))
        proc = _batch_label(src, dst, scheduler)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"aigc: error: 1 worker(s) of the Dask scheduler at {scheduler} "), \
        proc.stderr
    assert "runs aigc-labeler 0.0.1, this machine " in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not dst.exists()


def test_a_worker_that_cannot_import_the_job_stops_the_batch(scheduler, src, tmp_path):
    """A long-running worker whose package changed on disk under it: every file it got was journaled as
    failed ('the Dask worker failed (ImportError ...)'), and a re-run skipped them as done."""
    import distributed

    def break_the_job() -> None:
        import labeler.batch.jobs as jobs

        def process_file(*_args):
            raise ImportError("cannot import name 'NEW' from 'labeler.record'")

        jobs.process_file = process_file  # what the driver's pickled reference resolves to there

    dst = tmp_path / "dst"
    with _worker(scheduler), distributed.Client(scheduler, set_as_default=False, timeout=10) as client:
        client.run(break_the_job)
        proc = _batch_label(src, dst, scheduler)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"aigc: error: a worker of the Dask scheduler at {scheduler} cannot run "
                                  "the batch (cannot import name 'NEW' from 'labeler.record'); "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (dst / ".aigc-journal.jsonl").read_bytes() == b""  # nothing journaled: a re-run does it


def test_dask_local_says_nothing_when_port_8787_is_taken(src, tmp_path):
    """The local cluster's scheduler serves HTTP on 8787 by default even without a dashboard: with the
    port taken (a `dask scheduler` on this machine) distributed printed a UserWarning on stderr."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):  # taken already: the case itself
            stack.enter_context(socket.create_server(("127.0.0.1", 8787)))
        proc = subprocess.run(
            [sys.executable, "-m", "labeler.cli", "batch", "label", os.fspath(src),
             os.fspath(tmp_path / "dst"), "--producer", PRODUCER, "--no-progress", "--dask", "local",
             "--workers", "1"],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("label finished: 1 done (ok 1)") and len(proc.stderr.splitlines()) == 1, \
        proc.stderr


def test_a_scheduler_without_workers_is_one_line_not_a_silent_wait(tmp_path, src):
    """Before: '0 done' progress lines for ever, the files queued on a scheduler that had no worker."""
    if not DASK_CLI.exists():
        pytest.skip("the dask command is not installed next to this Python")
    sched_file = tmp_path / "scheduler.json"
    proc = subprocess.Popen(
        [str(DASK_CLI), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(sched_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: sched_file.exists() and sched_file.stat().st_size > 0, 30, "the scheduler")
        address = json.loads(sched_file.read_text())["address"]
        report = tmp_path / "report.jsonl"
        done = _batch_verify(src, report, "--dask", address)
    finally:
        _stop(proc)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"aigc: error: the Dask scheduler at {address} has no workers (waited 3 s): start "
                           "`dask worker ADDRESS` on the machines that run the files\n")
    assert not report.exists()


def test_workers_that_join_mid_batch_raise_the_files_in_flight(scheduler, src, tmp_path, monkeypatch):
    """The files in flight were 4 x the threads counted at the start, whatever joined later."""
    from labeler.batch import dask_runner
    from labeler.batch.runner import _Run

    task = BatchTask("label", os.fspath(src), os.fspath(tmp_path / "dst"), RecordTemplate(PRODUCER))
    with _worker(scheduler):
        executor = dask_runner.DaskExecutor(scheduler, 1, task)
        try:
            run = _Run(task, executor, None, set(), None, limit=None, bar=None)
            assert (executor.slots, run.limit) == (1, 4)
            with _worker(scheduler):
                monkeypatch.setattr(dask_runner, "_SLOTS_EVERY", 0.0)
                assert (executor.slots, run.limit) == (2, 8)
        finally:
            executor.shutdown(wait=False, pending=[])


def test_workers_option_with_a_scheduler_is_said_unused_and_the_summary_is_as_given(scheduler, src, tmp_path):
    """--workers was ignored without a word; the summary named the default journal by its absolute path
    (the pool's run names it as DST was given)."""
    def command(dst: str) -> list[str]:
        return [sys.executable, "-m", "labeler.cli", "batch", "label", "src", dst, "--producer", PRODUCER,
                "--no-progress", "--workers", "3"]

    pool = subprocess.run(command("pool"), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert pool.returncode == 0 and pool.stderr.strip().endswith("; journal pool/.aigc-journal.jsonl"), \
        pool.stderr
    with _worker(scheduler):
        dask = subprocess.run([*command("dask"), "--dask", scheduler], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
    assert dask.returncode == 0, dask.stderr
    warning, summary = dask.stderr.splitlines()
    assert warning == ("aigc: warning: --workers is not used with a Dask scheduler address: the cluster's "
                       "workers run the files (start more with `dask worker`)")
    assert summary.endswith("; journal dask/.aigc-journal.jsonl")


def test_the_scheduler_probe_works_where_an_event_loop_runs(scheduler):
    """run_batch from a notebook: the probe must not need this thread's event loop."""
    import asyncio

    import distributed

    from labeler.batch.dask_runner import _probe_scheduler

    async def in_a_loop() -> None:
        _probe_scheduler(distributed, scheduler)

    asyncio.run(in_a_loop())
