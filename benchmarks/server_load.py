"""Load test of `aigc serve`: N verify requests from C concurrent clients over loopback.

The server runs in its own process (``python -m labeler.cli serve`` on 127.0.0.1 and a free port,
its TMPDIR pointed at a fresh folder); this process is the clients (C threads, one HTTP connection
each, the sample media in rotation). Reported: errors (any status but 200, or a transport error),
p50/p95/max latency, throughput, the peak resident memory of the server process and of the server
with its worker processes (Linux /proc, sampled every 50 ms), and what is left in the server's
temporary folder after the requests (must be nothing but its own empty folders) and after it stopped
(must be nothing).

Usage::

    python benchmarks/server_load.py            # 200 requests, 16 clients, 2 workers
    python benchmarks/server_load.py --quick    # 48 requests, 16 clients
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
MEDIA = ("photo.jpg", "photo.png", "speech.mp3", "clip.mp4")


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss(pid: int) -> tuple[int, int]:
    """Resident memory (bytes) of ``pid`` alone and of ``pid`` with all its descendants."""
    def rss(p: int) -> int:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def children(p: int) -> Iterator[int]:
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                for child in (task / "children").read_text().split():
                    yield int(child)
                    yield from children(int(child))
        except OSError:
            return

    own = rss(pid)
    return own, own + sum(rss(c) for c in children(pid))


class MemoryWatch(threading.Thread):
    """Samples :func:`tree_rss` of a process every 50 ms; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_server = 0
        self.peak_tree = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            own, tree = tree_rss(self.pid)
            self.peak_server = max(self.peak_server, own)
            self.peak_tree = max(self.peak_tree, tree)
            self.stopped.wait(0.05)


def leftovers(folder: Path) -> list[str]:
    """Files under ``folder`` (folders themselves are not counted)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def start_server(port: int, tmp: Path, workers: int, clients: int, log: Path) -> subprocess.Popen[bytes]:
    """``aigc serve`` on 127.0.0.1:port; returns once /v1/health answers."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "labeler.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", str(workers), "--max-concurrent",
                                 str(clients)], stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")


def run_clients(url: str, requests: int, clients: int) -> tuple[list[float], list[str]]:
    """``requests`` POSTs to /v1/verify from ``clients`` threads; latencies (s) and error lines."""
    bodies = {name: (SAMPLES / name).read_bytes() for name in MEDIA}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    local = threading.local()

    def one(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=300)
        name = MEDIA[i % len(MEDIA)]
        start = time.perf_counter()
        try:
            response = local.client.post(f"{url}/v1/verify", files={"file": (name, bodies[name])})
            ok = response.status_code == 200
            problem = None if ok else f"{name}: {response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            problem = f"{name}: {type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            if problem:
                errors.append(problem[:300])

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    """Run the load test and print its table; exit 1 on any error or leftover file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="48 requests instead of 200")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    requests = args.requests or (48 if args.quick else 200)

    with tempfile.TemporaryDirectory(prefix="aigc-load-") as scratch:
        tmp = Path(scratch) / "server-tmp"
        tmp.mkdir()
        port = free_port()
        proc = start_server(port, tmp, args.workers, args.clients, Path(scratch) / "server.log")
        watch = MemoryWatch(proc.pid)
        watch.start()
        try:
            started = time.perf_counter()
            latencies, errors = run_clients(f"http://127.0.0.1:{port}", requests, args.clients)
            wall = time.perf_counter() - started
            left_running = leftovers(tmp)
        finally:
            watch.stopped.set()
            proc.terminate()
            proc.wait(timeout=60)
        left_after = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))

    print("| requests | clients | workers | errors | p50 s | p95 s | max s | req/s | peak RSS server MiB "
          "| peak RSS server+workers MiB | temp files left (running / stopped) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {requests} | {args.clients} | {args.workers} | {len(errors)} | "
          f"{statistics.median(latencies):.2f} | {percentile(latencies, 95):.2f} | {max(latencies):.2f} | "
          f"{requests / wall:.1f} | {watch.peak_server / 2**20:.0f} | {watch.peak_tree / 2**20:.0f} | "
          f"{len(left_running)} / {len(left_after)} |")
    print(f"media in rotation: {', '.join(MEDIA)}; loopback 127.0.0.1 only")
    for line in errors[:10]:
        print(f"error: {line}")
    for line in (left_running + left_after)[:10]:
        print(f"left: {line}")
    return 1 if errors or left_running or left_after else 0


if __name__ == "__main__":
    sys.exit(main())
