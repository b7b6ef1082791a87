"""A batch driver killed with SIGKILL leaves no worker processes behind (QA session s38).

``kill -9`` of ``aigc batch`` (or the OOM killer, a CI job's timeout) used to leave the local pool's
forkserver and every worker waiting for their next file for ever: each worker holds both ends of the
pool's call pipe, so none of them ever sees the driver go.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import PRODUCER, ROOT, SAMPLES

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# The driver: a label batch whose sources hand over one file, then wait (the pool is up, its workers
# idle), so the test kills the driver at a known point without timing it.
DRIVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from labeler.batch import BatchTask, RecordTemplate, run_batch

    def sources(src, ready):
        yield src / "photo.jpg"
        ready.write_text("up")
        while True:
            time.sleep(60)

    if __name__ == "__main__":  # the forkserver imports this module again
        src, dst, ready = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
        run_batch(BatchTask("label", str(src), str(dst), RecordTemplate(producer=sys.argv[4])),
                  sources(src, ready), workers=2, progress=False)
""")


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren...), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "PID (comm) STATE PPID ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def test_sigkilled_driver_leaves_no_workers(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", src / "photo.jpg")
    ready = tmp_path / "ready"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, str(script), str(src), str(tmp_path / "dst"), str(ready),
                               PRODUCER], env=env, start_new_session=True)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert driver.poll() is None, "the driver ended before its pool was up"
            assert time.monotonic() < deadline, "the batch never took its first file"
            time.sleep(0.1)
        workers = _descendants(driver.pid)
        assert workers, "no pool processes found under the driver"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        # The workers notice the driver is gone and exit; a generous wait, not a timing check.
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = sorted(pid for pid in workers if _alive(pid))
        assert not left, f"processes left running after the driver was killed: {left}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in workers:  # only the processes this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
