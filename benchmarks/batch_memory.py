"""Part of the batch robustness benchmark: memory (RSS per process) over a 10,000-file tree."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

from batch_harness import (
    JOURNAL,
    PRODUCER,
    ROOT,
    SAMPLES,
    Checks,
    aigc_cmd,
    ffmpeg,
    label_cmd,
    last_line,
    read_jsonl,
    verify_cmd,
)


# -- part 5: memory ---------------------------------------------------------------------------------------
def tiny_bases(scratch: Path) -> list[Path]:
    """Small files of each format, half of them labeled: the 10,000-file tree is hard links to these."""
    from PIL import Image

    from labeler import AIGCLabel, label_file

    scratch.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLES / "photo.png") as im:
        small = im.convert("RGB").resize((96, 64))
    for ext in ("jpg", "png", "webp", "tiff", "gif"):
        small.save(scratch / f"t.{ext}")
    ff = ffmpeg()
    for ext, codec in (("wav", []), ("flac", []), ("mp3", []), ("m4a", ["-c:a", "aac"])):
        subprocess.run([ff, "-v", "error", "-y", "-i", str(SAMPLES / "speech.wav"), "-t", "0.3", *codec,
                        str(scratch / f"t.{ext}")], check=True)
    subprocess.run([ff, "-v", "error", "-y", "-i", str(SAMPLES / "clip.mp4"), "-t", "0.3", "-c", "copy",
                    str(scratch / "t.mp4")], check=True)
    files = sorted(scratch.iterdir())
    label = AIGCLabel(PRODUCER, "mem-0001")
    for f in list(files):
        labeled = scratch / f"labeled{f.suffix}"
        label_file(f, labeled, label)
        files.append(labeled)
    return files


def _rss_psutil(pid: int) -> dict[int, tuple[int, str, int]]:
    import psutil

    out = {}
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return out
    for p in procs:
        try:
            out[p.pid] = (p.memory_info().rss, " ".join(p.cmdline())[:200], p.ppid())
        except psutil.Error:
            continue
    return out


def _rss_proc(pid: int) -> dict[int, tuple[int, str, int]]:
    """The process tree under ``pid`` from /proc (no psutil): VmRSS per process."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
    tree, todo = {pid}, [pid]
    while todo:
        cur = todo.pop()
        for child, parent in parents.items():
            if parent == cur and child not in tree:
                tree.add(child)
                todo.append(child)
    out = {}
    for p in tree:
        with contextlib.suppress(OSError, ValueError):
            status = Path(f"/proc/{p}/status").read_text()
            rss = next(int(line.split()[1]) * 1024 for line in status.splitlines()
                       if line.startswith("VmRSS:"))
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
            out[p] = (rss, cmd, parents.get(p, 0))
    return out


def sample_rss(pid: int) -> dict[int, tuple[int, str, int]]:
    """{pid: (RSS bytes, command line, parent pid)} for ``pid`` and all its descendants."""
    try:
        return _rss_psutil(pid)
    except ImportError:
        return _rss_proc(pid)


def role(pid: int, root: int, cmd: str, ppid: int) -> str:
    """What a process of the batch is: workers are forked from the forkserver and share its command line."""
    if pid == root:
        return "driver"
    if "forkserver" in cmd and ppid == root:
        return "forkserver"
    if "resource_tracker" in cmd:
        return "resource tracker"
    return "worker"


def part_memory(work: Path, args: argparse.Namespace, bases: list[Path], corpus: Path | None) -> Checks:
    checks = Checks("memory")
    tiny = tiny_bases(work / "memory" / "bases")
    src = work / "memory" / "tree"
    t0 = time.perf_counter()
    for i in range(args.memory_files):
        folder = src / f"d{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        base = tiny[i % len(tiny)]
        os.link(base, folder / f"f{i:05d}{base.suffix}")
    print(f"memory: {args.memory_files} files (hard links to {len(tiny)} small files) in "
          f"{time.perf_counter() - t0:.1f} s")
    rows, parts = [], []
    for kind in ("verify", "label"):
        if kind == "verify":
            journal = work / "memory" / "report.jsonl"
            cmd = verify_cmd(src, journal, 2)
        else:
            journal = work / "memory" / "labeled" / JOURNAL
            cmd = label_cmd(src, work / "memory" / "labeled", 2)
        rc, err, secs, by_role, growth = watch_rss(cmd, work / "memory" / f"{kind}.stderr")
        recs, problems = read_jsonl(journal)
        outcome = Counter(r.get("verdict") if kind == "verify" else r.get("status") for r in recs)
        checks(f"{kind}: all {args.memory_files} files done", rc == 0 and len(recs) == args.memory_files
               and not problems, f"exit {rc}; {len(recs)} lines; {last_line(err)}")
        worker_peak = max(by_role.get("worker", [0]))
        checks(f"{kind}: peak RSS per worker < 500 MB", 0 < worker_peak < 500 << 20,
               f"{worker_peak / 2**20:.0f} MB")
        driver_peak = max(by_role.get("driver", [0]))
        checks(f"{kind}: peak RSS of the driver < 500 MB", 0 < driver_peak < 500 << 20,
               f"{driver_peak / 2**20:.0f} MB")
        rows += [f"| {kind} | {name} | {len(v)} | {max(v) / 2**20:.0f} |"
                 for name, v in sorted(by_role.items())]
        parts.append(f"`{' '.join(cmd[len(aigc_cmd()):][:2])}` {secs:.1f} s ({args.memory_files / secs:.0f} "
                     f"files/s; {', '.join(f'{k} {v}' for k, v in sorted(outcome.items(), key=str))}; driver "
                     f"RSS growth after the first quarter {growth:+.0f} MB)")
    checks.summary = (f"{args.memory_files} files (hard links to {len(tiny)} small files of every format, "
                      "half labeled), 2 workers, `--no-visible` / `--layers metadata`; RSS sampled every "
                      f"0.1 s with {'psutil' if _has_psutil() else '/proc'}. " + "; ".join(parts) + ".\n\n"
                      "| run | process | count | peak RSS (MB) |\n|---|---|---:|---:|\n" + "\n".join(rows))
    print(checks.summary)
    return checks


def watch_rss(cmd: list[str], stderr_path: Path) -> tuple[int, str, float, dict[str, list[int]], float]:
    """Run ``cmd`` and sample its process tree's RSS every 0.1 s.

    Returns
    -------
    tuple
        Exit status, stderr text, seconds, peak RSS per process grouped by role (bytes), and the driver's
        RSS growth after the first quarter of the run (MB): growth there means state kept per file.
    """
    with open(stderr_path, "w+") as err_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=err_file)
        peaks: dict[int, tuple[int, str, int]] = {}
        timeline: list[tuple[float, int]] = []
        start = time.perf_counter()
        while proc.poll() is None:
            for pid, (rss, cmdline, ppid) in sample_rss(proc.pid).items():
                if rss > peaks.get(pid, (0, "", 0))[0]:
                    peaks[pid] = (rss, cmdline, ppid)
                if pid == proc.pid:
                    timeline.append((time.perf_counter() - start, rss))
            time.sleep(0.1)
        secs = time.perf_counter() - start
        err_file.seek(0)
        err = err_file.read()
    by_role: dict[str, list[int]] = {}
    for pid, (rss, cmdline, ppid) in peaks.items():
        by_role.setdefault(role(pid, proc.pid, cmdline, ppid), []).append(rss)
    quarter = [r for t, r in timeline if t <= secs / 4] or [0]
    growth = (max(r for _, r in timeline) - max(quarter)) / 2**20 if timeline else 0.0
    return proc.returncode, err, secs, by_role, growth


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True
