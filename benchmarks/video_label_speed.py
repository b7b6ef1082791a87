"""Time of ``aigc label --layers watermark`` against a plain ffmpeg re-encode (issue #15's speed target).

    .venv/bin/python benchmarks/video_label_speed.py --quick     # 720p, 2 s clips, 2 repeats
    .venv/bin/python benchmarks/video_label_speed.py --write     # 1080p, 4 s clips, 3 repeats -> RESULTS.md

Target: the label command takes at most 1.25x the time of ``ffmpeg -i src -map 0 -c copy -c:v libx264
-crf 18 -preset medium`` (the watermark pass's encoder settings, x264 threads left at ffmpeg's default
in both). The machine is shared, so every repeat runs all the variants back to back in a rotated order
and the ratios are taken within a repeat; the table gives their minimum and median.

Variants, per clip (screen-like ``testsrc2`` and a fast pan, as in ``video_watermark.py``):

* ``plain``: the reference re-encode;
* ``label``: the CLI, a fresh Python process (imports, probes, frames, soundtrack mark);
* ``pass``: :func:`labeler.watermark.video.watermark_video` with the mark rounded to nothing (what the
  decoder, the pipes and Python cost, apart from what x264 spends on the mark), in a fresh process;
* ``decode``: ffmpeg decoding to the Matroska raw pipe the pass reads, to ``/dev/null``;
* ``x264 clean`` / ``x264 marked``: x264 alone (same settings) on raw frames read from a file, unmarked
  and marked: the encoder's own extra work on the marked frames.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labeler.media.ffmpeg import ffmpeg_exe  # noqa: E402
from labeler.watermark import payload_from_produce_id  # noqa: E402
from labeler.watermark.keyfile import generate_key, write_key_file  # noqa: E402
from labeler.watermark.video import VideoPattern, budget_strength  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "images"
FPS = 30
X264 = ["-c:v", "libx264", "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p"]
PRODUCE_ID = "bench-label-speed-0001"


def _ff(*args: str, stdout: int | None = None) -> None:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                          stdout=stdout, stderr=subprocess.PIPE, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-400:])


def make_clips(folder: Path, w: int, h: int, seconds: float) -> dict[str, Path]:
    """Screen-like and fast-pan sources (H.264 CRF 16 veryfast, yuv420p, 30 fps, AAC tone), as the
    watermark benchmark makes them."""
    pan = f"scale={int(w * 1.6)}:-2,crop={w}:{h}:x='mod(t*700,iw-{w})':y='t*60',format=yuv420p"
    specs = {  # name -> (video input, filter options)
        "testsrc2 (screen)": (["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={FPS}:d={seconds}"], []),
        "fast pan": (["-loop", "1", "-framerate", str(FPS), "-t", str(seconds), "-i",
                      str(CORPUS / "mate-LadyBird.jpg")], ["-vf", pan]),
    }
    out = {}
    for i, (name, (video, filt)) in enumerate(specs.items()):
        path = folder / f"src{i}.mp4"
        _ff(*video, "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", *filt, "-c:v", "libx264",
            "-crf", "16", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
            "-shortest", str(path))
        out[name] = path
    return out


def raw_frames(src: Path, folder: Path, key: bytes) -> tuple[Path, Path, float]:
    """The clip's frames as raw yuv420p, unmarked and marked (the label's pattern and budget); strength."""
    from labeler.media.video import video_info

    info = video_info(src)
    w, h = info.width, info.height
    clean, marked = folder / f"{src.stem}.yuv", folder / f"{src.stem}.marked.yuv"
    _ff("-i", str(src), "-map", "0:v", "-f", "rawvideo", "-pix_fmt", "yuv420p", str(clean))
    pattern = VideoPattern.build(h, w, payload_from_produce_id(PRODUCE_ID), key)
    size = w * h * 3 // 2
    with clean.open("rb") as f, marked.open("wb") as o:
        first = True
        while len(buf := bytearray(f.read(size))) == size:
            y = np.frombuffer(buf, np.uint8, count=w * h).reshape(h, w)
            if first:
                pattern, first = replace(pattern, strength=budget_strength(y)), False
            pattern.mark(y)
            o.write(buf)
    return clean, marked, pattern.strength


def commands(src: Path, folder: Path, raw: tuple[Path, Path], size: tuple[int, int]) -> dict[str, list[str]]:
    """Variant name -> command line (each run as its own process)."""
    w, h = size
    exe, py = ffmpeg_exe(), sys.executable
    quiet = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    from_raw = [*quiet, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-framerate", str(FPS),
                "-i"]
    nomark = ("import sys; from labeler.watermark.video import watermark_video as f; "
              "from labeler.watermark.keyfile import read_key_file; "
              "f(sys.argv[1], sys.argv[2], bytes(8), key=read_key_file(sys.argv[3]), strength=1e-3, "
              "overwrite=True)")
    return {
        "plain": [*quiet, "-i", str(src), "-map", "0", "-c", "copy", *X264, "-fps_mode", "passthrough",
                  str(folder / "plain.mp4")],
        "label": [py, "-m", "labeler.cli", "label", "--producer", "bench", "--produce-id", PRODUCE_ID,
                  "--layers", "watermark", "--key-file", str(folder / "key.bin"), "--overwrite", str(src),
                  str(folder / "label.mp4")],
        "pass": [py, "-c", nomark, str(src), str(folder / "pass.mp4"), str(folder / "key.bin")],
        "decode": [*quiet, "-i", str(src), "-map", "0:v", "-c:v", "rawvideo", "-pix_fmt", "yuv420p",
                   "-f", "matroska", "/dev/null"],
        "x264 clean": [*from_raw, str(raw[0]), *X264, str(folder / "clean.mp4")],
        "x264 marked": [*from_raw, str(raw[1]), *X264, str(folder / "marked.mp4")],
    }


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one run."""
    before = os.times()
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, cwd=ROOT)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"{cmd[:3]}: {proc.stderr.decode(errors='replace')[-400:]}")
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def run(quick: bool) -> str:
    w, h, seconds, repeats = (1280, 720, 2.0, 2) if quick else (1920, 1080, 4.0, 3)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-label-speed-") as tmp:
        folder = Path(tmp)
        key = generate_key()
        write_key_file(folder / "key.bin", key)
        for name, src in make_clips(folder, w, h, seconds).items():
            clean, marked, strength = raw_frames(src, folder, key)
            cmds = commands(src, folder, (clean, marked), (w, h))
            wall: dict[str, list[float]] = {k: [] for k in cmds}
            cpu: dict[str, list[float]] = {k: [] for k in cmds}
            for r in range(repeats):
                order = list(cmds)[r % len(cmds):] + list(cmds)[: r % len(cmds)]  # rotate: no fixed slot
                for variant in order:
                    t, c = timed(cmds[variant])
                    wall[variant].append(t)
                    cpu[variant].append(c)
                    print(f"{name:18s} repeat {r} {variant:12s} {t:6.2f} s wall {c:6.2f} s CPU", flush=True)
            bytes_ = {k: (folder / f"{k.split()[-1]}.mp4").stat().st_size
                      for k in ("x264 clean", "x264 marked")}
            rows.append((name, strength, wall, cpu, bytes_))
            for p in (clean, marked):
                p.unlink()
    return _table(rows, w, h, seconds, repeats)


def _ratio(a: list[float], b: list[float]) -> str:
    r = [x / y for x, y in zip(a, b, strict=True)]
    return f"{min(r):.2f} / {statistics.median(r):.2f}"


def _table(rows: list, w: int, h: int, seconds: float, repeats: int) -> str:  # noqa: ANN401
    lines = [
        f"Clips {w}x{h}, {FPS} fps, {seconds:g} s (H.264 CRF 16 + AAC); x264 CRF 18 medium everywhere, "
        f"threads at ffmpeg's default; {repeats} repeats, variants rotated within each; ratios taken within "
        "a repeat against `plain` (min / median). `label`: `aigc label --layers watermark` (new process); "
        "`pass`: the watermark pass with the mark rounded to nothing; `decode`: decode to the raw pipe "
        "format only; `x264 clean / marked`: x264 alone on raw frames from a file.\n",
        "| clip | mark RMS | plain s (median) | label / plain | pass / plain | decode / plain "
        "| x264 clean / plain | x264 marked / plain | x264 marked / clean (CPU) "
        "| x264 bytes marked / clean |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, strength, wall, cpu, size in rows:
        plain = wall["plain"]
        lines.append(
            f"| {name} | {strength:.2f} | {statistics.median(plain):.2f} | {_ratio(wall['label'], plain)} "
            f"| {_ratio(wall['pass'], plain)} | {_ratio(wall['decode'], plain)} "
            f"| {_ratio(wall['x264 clean'], plain)} | {_ratio(wall['x264 marked'], plain)} "
            f"| {_ratio(cpu['x264 marked'], cpu['x264 clean'])} "
            f"| {size['x264 marked'] / size['x264 clean']:.2f} |")
    lines.append("\nCPU seconds (median; process and children):\n")
    lines.append("| clip | " + " | ".join(rows[0][2]) + " |")
    lines.append("|---|" + "---|" * len(rows[0][2]))
    for name, _, _, cpu, _ in rows:
        lines.append(f"| {name} | " + " | ".join(f"{statistics.median(v):.2f}" for v in cpu.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="720p, 2 s clips, 2 repeats")
    ap.add_argument("--write", action="store_true", help="write the tables into benchmarks/RESULTS.md")
    args = ap.parse_args()
    # The fast pan is made from a corpus photo: without it, say so in one line (it used to end in a
    # RuntimeError traceback from ffmpeg after the first clip).
    if not (CORPUS / "mate-LadyBird.jpg").is_file():
        sys.exit(f"corpus not found: {CORPUS / 'mate-LadyBird.jpg'}")
    body = run(args.quick)
    print(body)
    if args.write:
        from benchmarks.results import write_section

        write_section("watermark:video-label-speed" + ("-quick" if args.quick else ""), body)


if __name__ == "__main__":
    main()
