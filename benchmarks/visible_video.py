"""Video visible label: throughput against a plain re-encode, and detection after transcodes.

Run::

    python benchmarks/visible_video.py            # 5 interleaved runs each, 4 transforms (~5 min on 2 cores)
    python benchmarks/visible_video.py --quick    # 2 runs each, 2 transforms
    python benchmarks/visible_video.py --write    # also replace its section of benchmarks/RESULTS.md

(a) Throughput. ``add_video_label`` (default: "AI生成" bottom-right for the first 3 s; and ``whole=True``,
the overlay on every frame) against ``ffmpeg -i X -map 0 -c copy -c:v libx264 -crf 18 -preset medium
-pix_fmt <the source's> -fps_mode passthrough -map_metadata 0`` on the same file, runs interleaved so
both see the same load. Reported: median wall time of the whole call and frames/s, median CPU time
(user + sys of the child processes), and for the label the ffmpeg encoding run alone (the whole call
less the probe, the first frame and the label PNG), each as a ratio to the plain re-encode.

(b) Detection. Labelled clips (pan-720p start 3 s; pan-720p start + end 2 s; samples/clip.mp4 start 2 s;
clip.mp4 looped to 12 s with start, middle, end 2 s) and the unlabeled ones, each as is and after:
libx264 crf 28 at 0.5x size (ffmpeg ``scale=iw/2:ih/2``), VP9 in WebM (libvpx-vp9 crf 40, realtime),
MPEG-4 part 2 (``mpeg4 -q:v 6``). A labelled clip counts as found when ``detect_video_label`` reports
exactly the intervals it carries; an unlabeled one is a false alarm when anything is reported.

Timings are wall-clock on a shared machine: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attacks import video_reencodes  # noqa: E402
from results import write_section  # noqa: E402

import labeler.visible.video as video_mod  # noqa: E402
from detectors.visible import detect_video_label  # noqa: E402
from labeler.media import ffmpeg as ff  # noqa: E402
from labeler.media.video import video_info  # noqa: E402
from labeler.visible import add_video_label  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
PAN = CORPUS / "video" / "pan-720p.mp4"
CLIP = ROOT / "samples" / "clip.mp4"


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run([ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *map(str, args)],
                   check=True)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _frames(path: Path) -> int:
    cmd = [ff.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy",
           "-f", "null", "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    return int(out.rsplit("frame=", 1)[1].split()[0])


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = _child_cpu(), time.perf_counter()
    run()
    return time.perf_counter() - wall, _child_cpu() - cpu


def throughput(path: Path, repeats: int, work: Path) -> list[str]:
    """Table rows for one file: plain re-encode, label (first 3 s), label (whole)."""
    info = video_info(path)
    pix_fmt = info.pix_fmt if info.pix_fmt in ("yuv420p", "yuvj420p") else "yuv420p"
    frames = _frames(path)
    plain_out, label_out = work / f"plain{path.suffix}", work / f"label{path.suffix}"

    def plain() -> None:
        _ffmpeg("-i", path, "-map", "0", "-c", "copy", "-c:v", "libx264", "-crf", "18", "-preset", "medium",
                "-pix_fmt", pix_fmt, "-fps_mode", "passthrough", "-map_metadata", "0", plain_out)

    encode: list[float] = []
    real_run = ff.run

    def timed_run(args, **kwargs):  # the labelling ffmpeg run, timed on its own
        if "-xerror" not in args:
            return real_run(args, **kwargs)
        start = time.perf_counter()
        try:
            return real_run(args, **kwargs)
        finally:
            encode.append(time.perf_counter() - start)

    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "start": [], "whole": []}
    encodes: dict[str, list[float]] = {"start": [], "whole": []}
    video_mod.ff.run = timed_run  # type: ignore[assignment]
    try:
        for _ in range(repeats):
            runs["plain"].append(_timed(plain))
            for name, whole in (("start", False), ("whole", True)):
                encode.clear()
                call = lambda w=whole: add_video_label(path, label_out, whole=w, overwrite=True)  # noqa: E731
                runs[name].append(_timed(call))
                encodes[name].append(encode[0])
    finally:
        video_mod.ff.run = real_run  # type: ignore[assignment]
    base_wall = statistics.median(w for w, _ in runs["plain"])
    base_cpu = statistics.median(c for _, c in runs["plain"])
    rows = []
    names = (("plain", "plain re-encode"), ("start", "label, first 3 s"), ("whole", "label, whole"))
    for name, label in names:
        wall = statistics.median(w for w, _ in runs[name])
        cpu = statistics.median(c for _, c in runs[name])
        enc = "-"
        if name in encodes:
            run = statistics.median(encodes[name])
            enc = f"{run:.2f} s ({run / base_wall:.2f})"
        rows.append(f"| {path.name} | {label} | {wall:.2f} s | {frames / wall:.0f} | "
                    f"{wall / base_wall:.2f} | {enc} | {cpu:.2f} s ({cpu / base_cpu:.2f}) |")
    return rows


def _load_module(path: Path) -> Callable[..., object]:
    """``detect_video_label`` of another ``detectors/visible/video.py`` (e.g. written by ``git show``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("video_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["video_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.detect_video_label


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the ffmpeg runs)."""
    return time.process_time() + _child_cpu()


LABELLED = (  # name, source ("pan", "clip", "loop"), add_video_label options, intervals carried
    ("pan-720p start 3 s", "pan", {}, ("start",)),
    ("pan-720p start+end 2 s", "pan", {"seconds": 2.0, "at": ("start", "end")}, ("start", "end")),
    ("pan-720p top-left 2 s, 0.08", "pan", {"seconds": 2.0, "position": "top-left", "height_ratio": 0.08},
     ("start",)),
    ("pan-720p top-center start+middle 2 s", "pan",
     {"seconds": 2.0, "position": "top-center", "at": ("start", "middle")}, ("start", "middle")),
    ("clip start 2 s", "clip", {"seconds": 2.0}, ("start",)),
    ("clip x3 start+middle+end 2 s", "loop", {"seconds": 2.0, "at": ("start", "middle", "end")},
     ("start", "middle", "end")),
    ("clip x3 bottom-left start+end 2.5 s, 0.1", "loop",
     {"seconds": 2.5, "position": "bottom-left", "height_ratio": 0.1, "at": ("start", "end")},
     ("start", "end")),
)


def detection(quick: bool, work: Path, before: Path | None = None) -> tuple[list[str], list[str]]:
    """Table rows per transform and summary lines.

    Every file goes through ``detect_video_label`` (default settings), through it with
    ``stop_at_start=True`` (a labelled clip must then report the start, and name the middle and the
    end in ``not_read`` when it carries them) and, with ``before``, through that older module (whose
    results must equal today's; CPU time ratio reported).
    """
    loop = work / "loop.mp4"
    _ffmpeg("-stream_loop", "2", "-i", CLIP, "-map", "0", "-c", "copy", loop)
    sources = {"pan": PAN, "clip": CLIP, "loop": loop}
    labelled: list[tuple[str, Path, tuple[str, ...]]] = []
    for name, src, kwargs, expect in LABELLED:
        out = work / f"l{len(labelled)}.mp4"
        add_video_label(sources[src], out, preset="veryfast", **kwargs)
        labelled.append((name, out, expect))
    clean = [("pan-720p", PAN), ("clip", CLIP), ("clip x3", loop)]
    old = _load_module(before) if before else None
    rows, totals, differ, cpu, ratios = [], [0, 0, 0], [], [], []
    for tname, (suffix, options) in video_reencodes(quick).items():
        found, early, misses, alarms = 0, 0, [], []
        negatives = [(n, p, ()) for n, p in clean]
        for name, path, expect in [*labelled, *negatives]:
            target = path
            if options:
                target = work / f"t-{path.stem}{suffix}"
                _ffmpeg("-i", path, *options, target)
            start = _cpu()
            result = detect_video_label(target)
            cpu.append(_cpu() - start)
            quick_result = detect_video_label(target, stop_at_start=True)
            if old is not None:
                start = _cpu()
                previous = old(target)
                ratios.append(cpu[-1] / max(1e-9, _cpu() - start))
                if previous.to_dict() != result.to_dict():
                    differ.append(f"{tname} / {name}: {previous.to_dict()} -> {result.to_dict()}")
            if expect:
                ok = result.present and result.intervals == expect
                found += ok
                early += (quick_result.present and quick_result.intervals == ("start",)
                          and quick_result.not_read == ("middle", "end"))
                if not ok:
                    misses.append(f"{name}: {result.intervals or 'none'} ({result.score:.2f})")
            elif result.present or quick_result.present:
                alarms.append(f"{name}: {result.intervals or quick_result.intervals} ({result.score:.2f})")
        for k, v in enumerate((found, early, len(alarms))):
            totals[k] += v
        rows.append(f"| {tname} | {found} / {len(labelled)} | {early} / {len(labelled)} | "
                    f"{len(alarms)} / {len(clean)} | {'; '.join(misses + alarms) or '-'} |")
    n = len(video_reencodes(quick))
    summary = [f"{totals[0]} / {n * len(labelled)} labelled found with exactly their intervals "
               f"({totals[1]} with `stop_at_start`), {totals[2]} / {n * len(clean)} false alarms; "
               f"detect_video_label CPU (process + ffmpeg) median {statistics.median(cpu):.2f} s, "
               f"max {max(cpu):.2f} s per video."]
    if old is not None:
        same = len(ratios) - len(differ)
        summary.append(f"Against {before.name}: {same} / {len(ratios)} results identical; "
                       f"CPU time now / before median {statistics.median(ratios):.2f} "
                       f"(min {min(ratios):.2f}, max {max(ratios):.2f}).")
        summary += [f"- differs: {d}" for d in differ]
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 runs each, 2 transforms")
    parser.add_argument("--write", action="store_true", help="replace the section in benchmarks/RESULTS.md")
    parser.add_argument("--detection-only", action="store_true", help="(b) only (cannot be written)")
    parser.add_argument("--before", type=Path, help="an older detectors/visible/video.py to compare (b) with")
    args = parser.parse_args()
    if not PAN.exists():
        sys.exit(f"corpus not found: {PAN}")
    if args.write and args.detection_only:
        sys.exit("--write needs the whole run")
    repeats = 2 if args.quick else 5
    with tempfile.TemporaryDirectory(prefix="aigc-bench-video-") as tmp:
        work = Path(tmp)
        rows = []
        for path in () if args.detection_only else (PAN, CLIP):
            rows += throughput(path, repeats, work)
        det_rows, summary = detection(args.quick, work, args.before)
    body = "\n".join([
        f"`python benchmarks/visible_video.py{' --quick' if args.quick else ''}`: median of {repeats} "
        "interleaved runs; libx264 crf 18 preset medium for both. Ratios are to the plain re-encode of the "
        "same file in the same run (the machine is shared: compare within a run). \"encode run\" is the "
        "labelling ffmpeg process alone (the call less its concurrent probe + first-frame decode).",
        "",
        "| file | what | wall (median) | frames/s | wall ratio | encode run (ratio) | CPU (ratio) |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Detection (`detect_video_label`): labelled clips must come back with exactly the intervals they "
        "carry (default settings), and with `stop_at_start=True` with the start only and `not_read` "
        "middle and end; an unlabeled clip is a false alarm when either call reports anything.",
        "",
        "| transform | labelled found | found, `stop_at_start` | false alarms | misses / alarms |",
        "|---|---:|---:|---:|---|",
        *det_rows,
        "",
        *summary,
    ])
    print(body)
    if args.write:
        write_section("visible:video", body)


if __name__ == "__main__":
    main()
