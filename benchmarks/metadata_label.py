"""Metadata layer: time to label and to verify one file, and bytes added, per format.

Usage::

    python benchmarks/metadata_label.py            # samples/ + corpus media, 20 repeats
    python benchmarks/metadata_label.py --quick    # samples/ only, 5 repeats
    python benchmarks/metadata_label.py --write    # also rewrite the table in benchmarks/RESULTS.md

Times are wall-clock medians of in-process calls (``labeler.label_file`` and
``detectors.verify``), so they include file I/O but not interpreter start-up.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors import verify  # noqa: E402
from labeler import AIGCLabel, __version__, label_file  # noqa: E402
from labeler.media.ffmpeg import ffmpeg_exe  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
LABEL = AIGCLabel("001191110102MACQD9K64010000", "bench-0000000001")
MARK_START, MARK_END = "<!-- metadata_label:start -->", "<!-- metadata_label:end -->"


def inputs(quick: bool, scratch: Path) -> list[Path]:
    files = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in (".jpg", ".png", ".wav", ".flac",
                                                                          ".mp3", ".mp4"))
    from PIL import Image

    Image.open(ROOT / "samples" / "photo.png").save(scratch / "photo.webp", quality=80)
    Image.open(ROOT / "samples" / "photo.png").save(scratch / "photo.tiff")
    Image.open(ROOT / "samples" / "photo.png").convert("P").save(scratch / "photo.gif")
    Image.open(ROOT / "samples" / "photo.png").convert("RGB").save(scratch / "photo.avif", quality=75)
    ff = ffmpeg_exe()
    # an audio-only WebM (a browser's voice note: Opus), labeled as audio (format weba)
    subprocess.run([ff, "-v", "error", "-i", str(ROOT / "samples" / "speech.wav"), "-c:a", "libopus",
                    str(scratch / "voice.webm")], check=True)
    subprocess.run([ff, "-v", "error", "-i", str(ROOT / "samples" / "speech.wav"), "-c:a", "aac",
                    str(scratch / "speech.m4a")], check=True)
    subprocess.run([ff, "-v", "error", "-i", str(ROOT / "samples" / "clip.mp4"), "-c", "copy", "-f", "mov",
                    str(scratch / "clip.mov")], check=True)
    files += sorted(scratch.iterdir())
    if not quick and CORPUS.is_dir():
        files += [CORPUS / "images" / "mate-Aqua.jpg", CORPUS / "images" / "skimage-astronaut.png",
                  CORPUS / "audio" / "music-piano.wav", CORPUS / "video" / "pan-720p.mp4"]
    return [f for f in files if f.exists()]


def measure(path: Path, repeats: int, out_dir: Path) -> dict[str, object]:
    out = out_dir / f"out-{path.name}"
    label_times, verify_times, full_times = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = label_file(path, out, LABEL, overwrite=True)
        t1 = time.perf_counter()
        report = verify(out, visible=False)
        t2 = time.perf_counter()
        verify(out)
        t3 = time.perf_counter()
        assert report.verdict == "confirmed", (path, report.to_dict())
        label_times.append(t1 - t0)
        verify_times.append(t2 - t1)
        full_times.append(t3 - t2)
    md = result.layers["metadata"]
    return {
        "file": path.name,
        "format": result.format,
        "size_kb": path.stat().st_size / 1024,
        "carrier": md["carrier"],
        "bytes_added": md["bytes_added"],
        "label_ms": statistics.median(label_times) * 1e3,
        "verify_ms": statistics.median(verify_times) * 1e3,
        "full_ms": statistics.median(full_times) * 1e3,
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(rows: list[dict[str, object]], repeats: int) -> str:
    lines = [
        f"Machine: {cpu_name()}, {platform.machine()}, Python {platform.python_version()}, "
        f"aigc-labeler {__version__}; median of {repeats} runs; label value {len(LABEL.to_json())} bytes.",
        "",
        "verify = `verify(path, visible=False)` (metadata and C2PA layers); with visible = the default,",
        "which also searches for our visible mark / audio cue.",
        "",
        "| file | format | size (KB) | carrier | bytes added | label (ms) | verify (ms) | + visible (ms) |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['file']} | {r['format']} | {r['size_kb']:.0f} | {r['carrier']} | {r['bytes_added']} | "
            f"{r['label_ms']:.2f} | {r['verify_ms']:.2f} | {r['full_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="samples only, 5 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 20)
    with tempfile.TemporaryDirectory() as tmp:
        scratch, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        scratch.mkdir()
        out_dir.mkdir()
        rows = [measure(p, repeats, out_dir) for p in inputs(args.quick, scratch)]
    text = table(rows, repeats)
    print(text)
    if args.write:
        results = ROOT / "benchmarks" / "RESULTS.md"
        body = results.read_text() if results.exists() else "# Benchmark results\n"
        block = f"{MARK_START}\n{text}\n{MARK_END}"
        if MARK_START in body:
            head, rest = body.split(MARK_START, 1)
            body = head + block + rest.split(MARK_END, 1)[1]
        else:
            body += (
                "\n## Metadata label: label and verify time per file\n\n"
                f"`python benchmarks/metadata_label.py`\n\n{block}\n"
            )
        results.write_text(body)


if __name__ == "__main__":
    main()
