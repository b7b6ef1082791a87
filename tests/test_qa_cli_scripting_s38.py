"""QA findings on the ``aigc`` command line as scripts run it: exit codes, where the output goes, paths.

Each test fails on the code before its fix:

* a command started with standard output closed (``aigc verify x >&-``) printed nothing and exited 0;
* a file argument ending in ``/`` (``aigc label in.jpg new/``) wrote a file named ``new``, and
  ``o.jpg/ --overwrite`` replaced ``o.jpg``;
* ``aigc serve --manifest-store`` in a missing folder (or of a scheme no store speaks) started the server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES

CLI = [sys.executable, "-m", "labeler.cli"]
LABEL = ["label", "--producer", "001191110102MACQD9K64010000", "--produce-id", "qa-s38"]


def _run(args: list[str], *, close_stdout: bool = False) -> subprocess.CompletedProcess[str]:
    """``aigc ARGS``; ``close_stdout``: started with file descriptor 1 closed, as ``>&-`` does."""
    return subprocess.run([*CLI, *args], stdout=None if close_stdout else subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=(lambda: os.close(1)) if close_stdout else None)


@pytest.mark.parametrize("command", ["verify", "keygen"])
def test_closed_stdout_is_an_error_not_a_silent_success(tmp_path: Path, command: str) -> None:
    photo = shutil.copy(SAMPLES / "photo.jpg", tmp_path / "photo.jpg")
    key = tmp_path / "wm.key"
    args = ["verify", str(photo)] if command == "verify" else ["keygen", str(key)]
    proc = _run(args, close_stdout=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("aigc: error: standard output is closed: the results are written there "
                                   "(>/dev/null discards them)")
    assert not key.exists()  # refused before the work: no key whose ID nobody saw


def test_closed_stdout_leaves_batch_alone(tmp_path: Path) -> None:
    """``aigc batch`` writes its results to the journal and its summary to stderr: no stdout needed."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", src)
    report = tmp_path / "r.jsonl"
    proc = _run(["batch", "verify", str(src), "--report", str(report), "--no-progress", "--no-visible"],
                close_stdout=True)
    assert proc.returncode == 0, proc.stderr
    assert len(report.read_text().splitlines()) == 1


def test_file_path_ending_in_slash_is_refused(tmp_path: Path) -> None:
    photo = shutil.copy(SAMPLES / "photo.jpg", tmp_path / "photo.jpg")
    before = Path(photo).read_bytes()
    proc = _run([*LABEL, str(photo), f"{tmp_path / 'new'}/"])
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("aigc: error: Invalid value for 'DST': ")
    assert "ends with '/', which names a folder" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "new").exists()
    # an existing file named with a trailing slash is not replaced, even with --overwrite
    proc = _run([*LABEL, str(SAMPLES / "photo.jpg"), f"{photo}/", "--overwrite"])
    assert proc.returncode == 2 and Path(photo).read_bytes() == before
    proc = _run(["propagate", "--propagator", "p", "--propagate-id", "q", str(photo), f"{tmp_path / 'p'}/"])
    assert proc.returncode == 2 and not (tmp_path / "p").exists()
    proc = _run(["keygen", f"{tmp_path / 'k.key'}/"])
    assert proc.returncode == 2 and not (tmp_path / "k.key").exists()


def test_plain_file_paths_still_work(tmp_path: Path) -> None:
    proc = _run([*LABEL, str(SAMPLES / "photo.jpg"), str(tmp_path / "out.jpg"), "--json"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.jpg").is_file() and proc.stdout.startswith("{")


@pytest.mark.parametrize("store", ["missing-folder", "ftp://store.example/m"])
def test_serve_checks_its_manifest_store_before_it_starts(tmp_path: Path, store: str) -> None:
    pytest.importorskip("uvicorn")
    spec = str(tmp_path / "no-such-folder" / "m.db") if store == "missing-folder" else store
    # A port held here: the code before the fix went on to the port check, which ends the run at once
    # (instead of serving forever) with another message.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = _run(["serve", "--port", str(port), "--manifest-store", spec])
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aigc: error: manifest store "), proc.stderr
