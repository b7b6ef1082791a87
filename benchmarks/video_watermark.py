"""Benchmark of the invisible video watermark (issue #15): the attack grid, quality, speed, false positives.

    .venv/bin/python benchmarks/video_watermark.py --quick          # 720p, 2 clips, a few attacks
    .venv/bin/python benchmarks/video_watermark.py --write          # 1080p, 4 clips, everything -> RESULTS.md

Clips are made with ffmpeg filters from the corpus photos (camera-like pan with grain, fast pan,
dark pan) and ``testsrc2`` (screen/animation-like), H.264 CRF 16 at 30 fps, with an AAC soundtrack
(``sine``). Each is labeled with :func:`labeler.watermark.video.watermark_video` (x264 CRF 18 medium),
attacked with ffmpeg (attacks encode with ``-preset veryfast`` to keep the run short; the soundtrack
is dropped, so only the frames carry the mark) and read with :func:`detectors.watermark_video.detect_video`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.watermark_video import detect_video  # noqa: E402
from labeler.media.ffmpeg import ffmpeg_exe  # noqa: E402
from labeler.watermark import payload_from_produce_id  # noqa: E402
from labeler.watermark.video import VIDEO_STRENGTH, VideoPattern, watermark_video, zoom_for  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "images"
KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("bench-video-0001")
FPS = 30
VF = "-preset veryfast"


def ff(*args: str) -> None:
    """Run ffmpeg quietly; raise with its stderr tail on failure."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], capture_output=True
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr.decode()[-400:])


def make_clips(folder: Path, w: int, h: int, seconds: float, quick: bool) -> dict[str, Path]:
    """Source clips: name -> path (H.264 CRF 16, yuv420p, 30 fps, AAC tone)."""
    specs = {
        "pan (camera-like)": (
            CORPUS / "mate-Garden.jpg",
            f"crop={w}:{h}:x='t*40':y='t*12',noise=alls=5:allf=t",
        ),
        "testsrc2 (screen)": (None, ""),
        "dark pan": (
            CORPUS / "mate-Wood.jpg",
            f"crop={w}:{h}:x='t*30':y=0,eq=brightness=-0.32:contrast=0.55,noise=alls=3:allf=t",
        ),
        "fast motion": (CORPUS / "mate-LadyBird.jpg", f"crop={w}:{h}:x='mod(t*700,iw-{w})':y='t*60'"),
    }
    if quick:
        specs = {k: specs[k] for k in ("pan (camera-like)", "testsrc2 (screen)")}
    out = {}
    for i, (name, (photo, vf)) in enumerate(specs.items()):
        path = folder / f"src{i}.mp4"
        audio = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        if photo is None:
            video = ["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={FPS}:d={seconds}"]
            filt = []
        else:
            big = f"scale={int(w * 1.6)}:-2"
            video = ["-loop", "1", "-framerate", str(FPS), "-t", str(seconds), "-i", str(photo)]
            filt = ["-vf", f"{big},{vf},format=yuv420p"]
        ff(
            *video,
            *audio,
            *filt,
            "-c:v",
            "libx264",
            "-crf",
            "16",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-shortest",
            str(path),
        )
        out[name] = path
    return out


def attacks(w: int, h: int, seconds: float, quick: bool) -> dict[str, list[str]]:
    """Attack name -> ffmpeg output options (audio dropped: the frames alone must carry the mark)."""
    x264 = ["-c:v", "libx264", *VF.split()]
    mid = max(0.0, seconds / 2 - 1.5)
    grid = {
        "H.264 CRF 28": [*x264, "-crf", "28"],
        "720p + CRF 28": ["-vf", "scale=-2:720", *x264, "-crf", "28"],
        "480p + CRF 30": ["-vf", "scale=-2:480", *x264, "-crf", "30"],
        "3 s excerpt (mid), CRF 23": ["-ss", f"{mid:.2f}", "-t", "3", *x264, "-crf", "23"],
        "1 s excerpt (mid), CRF 23": ["-ss", f"{seconds / 2 - 0.5:.2f}", "-t", "1", *x264, "-crf", "23"],
        "30 -> 25 fps, CRF 23": ["-r", "25", *x264, "-crf", "23"],
        "brightness +10 %": ["-vf", "lutyuv=y=clipval*1.1", *x264, "-crf", "23"],
        "brightness -10 %": ["-vf", "lutyuv=y=val*0.9", *x264, "-crf", "23"],
        "contrast +10 %": ["-vf", "eq=contrast=1.1", *x264, "-crf", "23"],
        "contrast -10 %": ["-vf", "eq=contrast=0.9", *x264, "-crf", "23"],
        "crop 10 % (centre), CRF 23": ["-vf", "crop=iw*0.9:ih*0.9", *x264, "-crf", "23"],
        "letterbox (pad 12 %), CRF 23": [
            "-vf",
            "scale=iw*0.88:-2,pad=iw/0.88:ih/0.88:(ow-iw)/2:(oh-ih)/2",
            *x264,
            "-crf",
            "23",
        ],
        "H.265 CRF 28": [
            "-c:v",
            "libx265",
            "-preset",
            "veryfast",
            "-crf",
            "28",
            "-x265-params",
            "log-level=error",
        ],
        "VP9 CRF 35": [
            "-c:v",
            "libvpx-vp9",
            "-crf",
            "35",
            "-b:v",
            "0",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
        ],
    }
    if h <= 720:
        grid.pop("720p + CRF 28")
        grid["360p + CRF 28"] = ["-vf", "scale=-2:360", *x264, "-crf", "28"]
    if quick:
        keep = (
            "H.264 CRF 28",
            "360p + CRF 28",
            "480p + CRF 30",
            "1 s excerpt (mid), CRF 23",
            "30 -> 25 fps, CRF 23",
            "crop 10 % (centre), CRF 23",
            "VP9 CRF 35",
        )
        grid = {k: v for k, v in grid.items() if k in keep}
    return grid


def gray_frames(path: Path, w: int, h: int):  # noqa: ANN201 - generator
    """Luma frames of a file (uint8 h x w)."""
    proc = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        stdout=subprocess.PIPE,
    )
    try:
        while True:
            buf = proc.stdout.read(w * h)
            if len(buf) < w * h:
                break
            yield np.frombuffer(buf, np.uint8).reshape(h, w)
    finally:
        proc.kill()
        proc.wait()


def quality(src: Path, marked: Path, plain: Path, w: int, h: int, strength: float) -> dict[str, float]:
    """Mean luma PSNR (dB) of the labeled file and of the plain re-encode against the source; the mark as
    the pass adds it (its RMS and PSNR alone); what of it survives the labeling encode (the least-squares
    gain of ``labeled - source`` on the mark: 1 = all of it); the encoder's own error on the marked
    frames (PSNR of the labeled file against source + mark); and flicker, the mean frame-to-frame change
    of the error ``out - source`` (8-bit levels) for the labeled file and for the plain re-encode, so
    their difference is the temporal change the mark adds after encoding."""
    marker = VideoPattern.build(h, w, PAYLOAD, KEY, strength=strength)
    d = marker.rounded.astype(np.float32)
    dd = float(np.mean(d * d))
    mse_m, mse_p, mse_enc, gain, flick_m, flick_p = [], [], [], [], [], []
    prev = None
    frames = zip(gray_frames(src, w, h), gray_frames(marked, w, h), gray_frames(plain, w, h), strict=False)
    for a, b, c in frames:
        a32, b32, c32 = a.astype(np.float32), b.astype(np.float32), c.astype(np.float32)
        em, ep = b32 - a32, c32 - a32
        mse_m.append(float(np.mean(em * em)))
        mse_p.append(float(np.mean(ep * ep)))
        target = np.clip(a32 + d, 0, 255)
        mse_enc.append(float(np.mean((b32 - target) ** 2)))
        gain.append(float(np.mean(em * d)) / dd)
        if prev is not None:
            flick_m.append(float(np.mean(np.abs(em - prev[0]))))
            flick_p.append(float(np.mean(np.abs(ep - prev[1]))))
        prev = (em, ep)

    def psnr(m: list[float]) -> float:
        return float(np.mean([10 * np.log10(255**2 / max(x, 1e-6)) for x in m]))

    return {
        "psnr_marked": psnr(mse_m),
        "psnr_plain": psnr(mse_p),
        "psnr_mark": psnr([dd]),
        "mark_rms": float(np.sqrt(dd)),
        "survives": float(np.mean(gain)),
        "psnr_encoder": psnr(mse_enc),
        "flicker_marked": float(np.mean(flick_m or [0])),
        "flicker_plain": float(np.mean(flick_p or [0])),
    }


def plain_reencode(src: Path, out: Path) -> float:
    """The reference: ffmpeg alone, same encoder settings as the label pass; returns seconds."""
    t = time.perf_counter()
    ff(
        "-i",
        str(src),
        "-map",
        "0",
        "-c",
        "copy",
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-preset",
        "medium",
        "-pix_fmt",
        "yuv420p",
        "-fps_mode",
        "passthrough",
        str(out),
    )
    return time.perf_counter() - t


def stage_speed(w: int = 1920, h: int = 1080, frames: int = 64) -> dict[str, float]:
    """fps of the watermark stage alone on one thread (CPU time of this process: the machine is shared),
    1080p luma frames already in memory.

    ``embed_fps``: :meth:`VideoPattern.mark` per frame. ``detect_fps``: the detector's per-frame work
    (shrink, prefilter and fold of the view, the rescale candidates, after frame 8 the 3 estimated
    ones: the unmarked worst case, every read at the checkpoints included); ``detect_marked_fps``: the
    same with the standard-scale and estimated candidates off (``search_scale=False``), what a file
    whose mark is intact costs until it stops.
    """
    from detectors.watermark_video import MAX_FRAMES, _Search, checkpoints, rescale_candidates
    from labeler.watermark import METHODS

    cv2.setNumThreads(1)
    rng = np.random.default_rng(1)
    photo = cv2.imread(str(CORPUS / "mate-Garden.jpg"), cv2.IMREAD_GRAYSCALE)
    base = cv2.resize(photo, (w + 64, h + 64))
    ys = [np.ascontiguousarray(base[i : i + h, i : i + w]) for i in rng.integers(0, 64, frames)]
    marker = VideoPattern.build(h, w, PAYLOAD, KEY)
    copies = [y.copy() for y in ys]
    t = time.process_time()
    for y in copies:
        marker.mark(y)
    embed = frames / (time.process_time() - t)
    out = {"embed_fps": embed}
    points = checkpoints(MAX_FRAMES)
    for name, tries, std in (("detect_fps", 3, rescale_candidates(h, 3)), ("detect_marked_fps", 0, [])):
        key = b"another key"
        search = _Search([METHODS["dwt"]], key, 10**6, 1e-6, tries, points, (3,), min(h, w), std)
        t = time.process_time()
        for n, y in enumerate(ys, 1):
            search._add(y, n)
            if n in search.points:
                search._read_all()
        out[name] = frames / (time.process_time() - t)
    cv2.setNumThreads(-1)
    return out


def false_positives(clips: dict[str, Path], folder: Path, n: int) -> dict[str, float]:
    """Clean clips and excerpts (re-encoded at 640 px wide, with offsets), each read with a fresh key."""
    variants = []
    for i, src in enumerate(clips.values()):
        for j, (ss, vf) in enumerate(
            [(0, "scale=640:-2"), (0.5, "scale=640:-2,crop=600:320"), (1.0, "scale=480:-2")]
        ):
            out = folder / f"fp{i}_{j}.mp4"
            ff(
                "-ss",
                str(ss),
                "-i",
                str(src),
                "-t",
                "2",
                "-vf",
                vf,
                "-an",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                str(out),
            )
            variants.append(out)
    hits, pmin, zmax, frames = 0, 1.0, 0.0, []
    for k in range(n):
        key = np.random.default_rng(1000 + k).bytes(32)
        r = detect_video(variants[k % len(variants)], key=key)
        hits += int(r.found)
        pmin, zmax = min(pmin, r.p_value), max(zmax, r.z)
        frames.append(r.frames_read)
    return {
        "runs": n,
        "clips": len(variants),
        "found": hits,
        "min_p": pmin,
        "max_z": zmax,
        "frames": float(np.mean(frames)),
    }


def run(quick: bool) -> str:
    w, h, seconds = (1280, 720, 3.0) if quick else (1920, 1080, 4.0)
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-vwm-") as tmp:
        folder = Path(tmp)
        clips = make_clips(folder, w, h, seconds, quick)
        grid = attacks(w, h, seconds, quick)
        results: dict[str, dict[str, str]] = {name: {} for name in grid}
        qual, speed = {}, {}
        for ci, (cname, src) in enumerate(clips.items()):
            marked, plain = folder / f"m{ci}.mp4", folder / f"p{ci}.mp4"
            t_plain = plain_reencode(src, plain)
            t = time.perf_counter()
            done = watermark_video(src, marked, PAYLOAD, key=KEY)
            t_label = time.perf_counter() - t
            t_plain = min(t_plain, plain_reencode(src, plain))  # interleaved: plain, label, plain
            # the same pass with the mark rounded to nothing: what the pipes and Python cost, apart from
            # what x264 spends encoding the mark
            t = time.perf_counter()
            watermark_video(src, folder / "nomark.mp4", PAYLOAD, key=KEY, strength=1e-3, overwrite=True)
            t_nomark = time.perf_counter() - t
            wm = done["watermark"]
            speed[cname] = (t_label, t_plain, wm["frames"], t_nomark, wm["mark_seconds"])
            qual[cname] = quality(src, marked, plain, w, h, wm["strength"])
            qual[cname]["strength"] = wm["strength"]
            r = detect_video(marked, key=KEY)
            results.setdefault("none (as labeled)", {})[cname] = _cell(r)
            for aname, opts in grid.items():
                out = folder / f"a{ci}.{'webm' if 'VP9' in aname else 'mp4'}"
                ff("-i", str(marked), "-an", *opts, str(out))
                results[aname][cname] = _cell(detect_video(out, key=KEY))
                print(f"{cname:20s} {aname:30s} {results[aname][cname]}", flush=True)
        stage = stage_speed()
        fp = false_positives(clips, folder, 24 if quick else 200)
    names = list(clips)
    lines.append(
        f"Clips: {w}x{h}, {FPS} fps, {seconds:g} s, H.264 CRF 16 + AAC; labeled with x264 CRF 18 "
        f"medium (`dwt`, uniform amplitude from the per-video budget, at least {VIDEO_STRENGTH} levels RMS "
        "(column RMS below), pattern zoomed "
        f"{zoom_for(h, w)}x at this size); attacks re-encode with x264/x265 "
        "`veryfast` or VP9 realtime, "
        "audio dropped. Cell: exact payload yes/no, frames read before stopping, z.\n"
    )
    lines.append("| attack | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    order = ["none (as labeled)", *grid]
    for aname in order:
        lines.append(f"| {aname} | " + " | ".join(results[aname].get(c, "") for c in names) + " |")
    lines.append(
        "\nQuality (mean luma PSNR vs the source, dB; 'mark alone': the change the pass adds before "
        "encoding, its PSNR and RMS in levels; 'survives': the share of the mark left in the labeled file "
        "(least-squares gain); 'encoder error on marked frames': PSNR of the labeled file against source + "
        "mark; flicker: mean frame-to-frame change of the error out - source, levels, labeled / plain):\n"
    )
    lines.append(
        "| clip | labeled | plain re-encode | difference | mark alone: PSNR | RMS | survives | encoder error "
        "on marked frames | flicker labeled / plain |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for c in names:
        q = qual[c]
        lines.append(
            f"| {c} | {q['psnr_marked']:.2f} | {q['psnr_plain']:.2f} | "
            f"{q['psnr_marked'] - q['psnr_plain']:+.2f} | {q['psnr_mark']:.2f} | {q['mark_rms']:.2f} | "
            f"{q['survives']:.2f} | {q['psnr_encoder']:.2f} | "
            f"{q['flicker_marked']:.3f} / {q['flicker_plain']:.3f} |"
        )
    lines.append(
        "\nLabel time (watermark pass, decode + mark + x264 CRF 18 medium) vs plain ffmpeg re-encode, "
        "same settings, both on this 2-core machine, interleaved:\n"
    )
    lines.append("| clip | frames | label s | plain s | ratio | pass without the mark s (ratio) "
                 "| marking CPU s |")
    lines.append("|---|---|---|---|---|---|---|")
    for c in names:
        tl, tp, nf, tn, ms = speed[c]
        lines.append(f"| {c} | {nf} | {tl:.2f} | {tp:.2f} | {tl / tp:.2f} | {tn:.2f} ({tn / tp:.2f}) "
                     f"| {ms:.2f} |")
    lines.append(
        f"\nWatermark stage alone, 1920x1080 luma, one thread (CPU time): embed "
        f"{stage['embed_fps']:.0f} fps, "
        f"detector {stage['detect_fps']:.0f} fps with every rescale candidate (unmarked worst case), "
        f"{stage['detect_marked_fps']:.0f} fps without (what an intact mark costs until it stops).\n"
    )
    lines.append(
        f"False positives: {fp['found']} found in {fp['runs']} reads of {fp['clips']} clean clips and "
        f"excerpts (each with a fresh random key; threshold p <= 1e-6); smallest p {fp['min_p']:.3g}, "
        f"largest z {fp['max_z']:.2f}, mean frames read {fp['frames']:.0f}."
    )
    return "\n".join(lines)


def _cell(r) -> str:  # noqa: ANN001
    ok = r.found and r.payload == PAYLOAD
    return f"{'yes' if ok else 'NO'} ({r.frames_read} fr, z {r.z:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="720p, 2 clips, 7 attacks, 24 false-positive reads")
    ap.add_argument("--write", action="store_true", help="write the tables into benchmarks/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    body = run(args.quick)
    print(body)
    if args.write:
        from benchmarks.results import write_section

        write_section("watermark:video-quick" if args.quick else "watermark:video", body)


if __name__ == "__main__":
    main()
