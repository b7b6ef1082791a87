"""Empirical false-positive rate of ``detectors.watermark.detect`` on unmarked images.

Usage::

    python benchmarks/watermark_false_positives.py            # corpus + 2,000 random crops/rescales
    python benchmarks/watermark_false_positives.py --quick    # corpus + 200
    python benchmarks/watermark_false_positives.py --write    # also write RESULTS.md
    python benchmarks/watermark_false_positives.py --images flat -n 300   # a generated content class

Every unmarked corpus photo, then random crops (128 px up to the whole photo, any offset) of them, half
of them also rescaled by a random factor in [0.5, 2], a fifth rotated by up to 3 degrees and a third
JPEG-compressed, are read with a key
that never marked anything, both methods (``method=None``) and the full sync search. A detection is a
false positive. Besides the count, the table checks the calibration of the p-value's synchronisation
factor: without a mark, P(p <= a) must be <= a for every a.

``--classes N`` (issue #16) instead reads N fresh small images (256-512 px a side) of every content class
(flat fills, vector-like SVG art, cartoon illustrations, gradients / AI-look portraits, text / UI renders,
crops of the corpus photos), each generated from its own seed, a third JPEG-compressed, each with its own
random key, on ``--workers`` processes (one thread each)::

    python benchmarks/watermark_false_positives.py --classes 10000 --workers 2 --write

A run stopped by ``--budget`` can be continued with other seeds (``--start``): ``--dump rows.json`` keeps
every trial's row, ``--budget 0`` only tabulates those rows, and ``--merge`` adds the counts of the
``--classes`` table already in RESULTS.md (an earlier run with seeds below ``--start``)::

    python benchmarks/watermark_false_positives.py --classes 8155 --start 1846 --workers 1 --dump rows.json
    python benchmarks/watermark_false_positives.py --classes 8155 --start 1846 --workers 1 --dump rows.json \
        --budget 0 --merge --write
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image
from results import write_section
from watermark_common import KEY, corpus_images, synthetic_photo

from detectors.watermark import detect


def trials(images: list[tuple[str, np.ndarray]], n: int, seed: int = 7):  # noqa: ANN201 - generator
    rng = np.random.default_rng(seed)
    for name, img in images:
        yield name, img
    for i in range(n):
        name, img = images[int(rng.integers(len(images)))]
        h, w = img.shape[:2]
        ch = int(rng.integers(128, h + 1))
        cw = int(rng.integers(128, w + 1))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out = img[y0 : y0 + ch, x0 : x0 + cw]
        tag = f"{name}[crop {cw}x{ch}]"
        if i % 2:
            f = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            nw, nh = max(128, round(cw * f)), max(128, round(ch * f))
            if nw * nh <= 4_000_000:
                out = np.asarray(Image.fromarray(out).resize((nw, nh), Image.BICUBIC))
                tag += f"[x{f:.2f}]"
        if i % 5 == 0 and min(out.shape[:2]) >= 256:
            deg = float(rng.uniform(-3.0, 3.0))
            r = np.asarray(Image.fromarray(out).rotate(deg, Image.BICUBIC))
            m = int(np.ceil(np.sin(np.radians(abs(deg))) * max(r.shape[:2]))) + 2  # drop black corners
            if min(r.shape[0], r.shape[1]) - 2 * m >= 128:
                out = r[m : r.shape[0] - m, m : r.shape[1] - m]
                tag += f"[rot {deg:.1f}]"
        if i % 3 == 0:
            buf = io.BytesIO()
            Image.fromarray(out).save(buf, "JPEG", quality=int(rng.integers(40, 95)))
            out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            tag += "[jpeg]"
        yield tag, out


#: Content classes of ``--classes`` (generators of benchmarks/content_corpus.py at small sizes).
CLASSES = ("flat", "vector", "illustrated", "gradient", "text", "photo")
_PHOTOS: list[np.ndarray] = []


def class_image(cls: str, seed: int) -> np.ndarray:
    """A fresh unmarked RGB image of class ``cls`` (256-512 px a side) for ``seed``; a third JPEG q40-95."""
    rng = np.random.default_rng([16, CLASSES.index(cls), seed])
    w, h = (int(v) for v in rng.integers(256, 513, size=2))
    for _ in range(8):
        try:
            img = _generate(cls, seed, rng, w, h)
            break
        except OverflowError:  # content_corpus._colour can overflow uint8 at high saturation: draw again
            continue
    if seed % 3 == 0:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img)).save(buf, "JPEG", quality=int(rng.integers(40, 96)))
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return np.ascontiguousarray(img)


def _generate(cls: str, seed: int, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """One image of class ``cls``, about w x h (a photo crop may be smaller than asked)."""
    import content_corpus as cc

    if cls == "flat":
        img = cc._pillow_vector(rng, w, h)  # flat fills and shapes, drawn at 4x and downsampled
    elif cls == "vector":
        img = cc._render_svg(cc._svg(rng, w, h), w, h)
        img = cc._pillow_vector(rng, w, h) if img is None else img
    elif cls == "illustrated":
        img = cc._cartoon(rng, w, h)
    elif cls == "gradient":
        img = cc._wallpaper(rng, w, h) if seed % 2 else cc._portrait(rng, w, h)
    elif cls == "text":
        img = cc._ui(rng, w, h) if seed % 2 else cc._poster(rng, w, h)
    else:  # a crop of a corpus photo, half of them rescaled 0.5-2x first
        if not _PHOTOS:
            _PHOTOS.extend(img for _, img in (corpus_images() or [("synthetic", synthetic_photo())]))
        src = _PHOTOS[int(rng.integers(len(_PHOTOS)))]
        if seed % 2:
            f = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            src = np.asarray(Image.fromarray(src).resize((max(256, round(src.shape[1] * f)),
                                                           max(256, round(src.shape[0] * f))), Image.BICUBIC))
        h, w = min(h, src.shape[0]), min(w, src.shape[1])
        y0, x0 = int(rng.integers(0, src.shape[0] - h + 1)), int(rng.integers(0, src.shape[1] - w + 1))
        img = src[y0 : y0 + h, x0 : x0 + w]
    return img


def _class_trial(job: tuple[str, int]) -> tuple[str, float, float, bool, float]:
    """(class, p-value, z, found, seconds) of one fresh image read with a fresh random key."""
    cls, seed = job
    img = class_image(cls, seed)
    key = np.random.default_rng([17, CLASSES.index(cls), seed]).bytes(32)
    t0 = time.process_time()
    r = detect(img, key=key)
    return cls, r.p_value, r.z, r.found, time.process_time() - t0


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def prior_counts(section: str) -> dict[str, dict[str, float]]:
    """Per-class counts of an earlier ``--classes`` table (the RESULTS.md section's text), for a run
    that continues it with other seeds and kept no ``--dump`` rows: images, false detections, smallest
    p, largest z, the numbers of p <= 0.1 / 0.01 / 0.001 (share x images, rounded) and ms per image."""
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0] in CLASSES:
            n = int(cells[1].replace(",", ""))
            out[cells[0]] = {"n": n, "found": int(cells[2]), "pmin": float(cells[3]), "zmax": float(cells[4]),
                             "k1": round(float(cells[5]) * n), "k2": round(float(cells[6]) * n),
                             "k3": round(float(cells[7]) * n), "ms": float(cells[8])}
    return out


def _class_row(cls: str, v: list[tuple[float, float, bool, float]], prior: dict[str, float] | None) -> str:
    """One table row: this run's trials ``v`` of ``cls`` plus an earlier run's counts ``prior``."""
    q = prior or {"n": 0, "found": 0, "pmin": 1.0, "zmax": -np.inf, "k1": 0, "k2": 0, "k3": 0, "ms": 0.0}
    p = np.array([r[0] for r in v]) if v else np.ones(0)
    n = len(v) + q["n"]
    counts = [int(np.sum(p <= a)) + q[k] for a, k in ((0.1, "k1"), (1e-2, "k2"), (1e-3, "k3"))]
    ms = (1000 * sum(r[3] for r in v) + q["ms"] * q["n"]) / max(n, 1)
    pmin = min(p.min(initial=1.0), q["pmin"])
    return (f"| {cls} | {n} | {sum(r[2] for r in v) + q['found']} | {pmin:.3g} | "
            f"{max(max((r[1] for r in v), default=-np.inf), q['zmax']):.2f} | "
            + " | ".join(f"{c / max(n, 1):.4f}" for c in counts) + f" | {ms:.0f} |")


def run_classes(per_class: int, workers: int, budget_s: float, start: int = 0,
                dump: str | None = None, prior: dict[str, dict[str, float]] | None = None) -> str:
    """False positives per content class over ``per_class`` fresh images each (seeds ``start`` on;
    classes interleaved, so a run stopped by ``budget_s`` seconds covers every class equally); the
    RESULTS.md text. With ``dump`` the (class, seed, p, z, found, seconds) rows go to that JSON file, and
    rows already there (an earlier run with other seeds) are counted in the table too; ``prior``
    (:func:`prior_counts`) adds an earlier run's table instead."""
    import json
    import multiprocessing as mp
    from pathlib import Path

    jobs = [(cls, seed) for seed in range(start, start + per_class) for cls in CLASSES]
    res: dict[str, list[tuple[float, float, bool, float]]] = {c: [] for c in CLASSES}
    rows = json.loads(Path(dump).read_text()) if dump and Path(dump).exists() else []
    for cls, _seed, p, z, found, sec in rows:
        res[cls].append((p, z, found, sec))
    t0 = time.perf_counter()
    if budget_s <= 0:  # tabulate the dumped rows only
        jobs = []
    with mp.get_context("fork").Pool(workers, initializer=_init_worker) as pool:
        for i, (cls, p, z, found, sec) in enumerate(pool.imap(_class_trial, jobs, chunksize=6)):
            res[cls].append((p, z, found, sec))
            rows.append((cls, jobs[i][1], p, z, found, sec))
            if (i + 1) % 600 == 0:
                print(f"[{time.perf_counter() - t0:6.0f}s] {i + 1} trials, "
                      f"{sum(r[2] for v in res.values() for r in v)} detections", flush=True)
            if time.perf_counter() - t0 > budget_s:
                pool.terminate()
                break
    wall = time.perf_counter() - t0
    if dump:
        Path(dump).write_text(json.dumps(rows))
    total = sum(len(v) for v in res.values())
    run = f"the last run {wall:.0f} s" if jobs else "tabulated from the --dump rows"
    earlier = sum(int(q["n"]) for q in (prior or {}).values())
    merged = (f"; with the {earlier} trials of an earlier run's table (seeds below {start}), "
              f"{total + earlier} in all") if earlier else ""
    lines = [f"Fresh unmarked images, 256-512 px a side, a third JPEG q40-95, each read with its own random "
             f"32-byte key, both methods, full sync search (`--classes {per_class}`, {workers} workers, "
             f"{total} trials from seed {start}, {run}{merged}). Threshold 1e-6. "
             "Classes: flat fills and shapes, vector-like SVG art (rsvg-convert), cartoon illustrations, "
             "gradients / AI-look portraits, "
             "text / UI renders, crops of the 13 corpus photos (half rescaled 0.5-2x). Calibration: "
             "without a mark P(p <= a) <= a must hold for every a.", "",
             "| class | images | false detections | smallest p | largest z | P(p <= 0.1) | P(p <= 0.01) "
             "| P(p <= 0.001) | ms / image (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for cls in CLASSES:
        if res[cls] or (prior and cls in prior):
            lines.append(_class_row(cls, res[cls], (prior or {}).get(cls)))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("-n", type=int, default=None, help="random crops/rescales (default 2000, quick 200)")
    ap.add_argument("--images", default="photos",
                    help="photos (the corpus), or flat, gradient, text (benchmarks/content_corpus.py)")
    ap.add_argument("--per-class", type=int, default=15, help="generated images of the class (--images)")
    ap.add_argument("--classes", type=int, default=0, help="fresh small images per content class (issue #16)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--start", type=int, default=0, help="first seed of --classes (continue a run)")
    ap.add_argument("--dump", default=None, help="JSON file of --classes rows: read, extended, written")
    ap.add_argument("--merge", action="store_true",
                    help="count the --classes table in RESULTS.md too (an earlier run, seeds below --start)")
    ap.add_argument("--budget", type=float, default=float("inf"),
                    help="stop --classes after this many seconds (0: only tabulate the --dump rows)")
    args = ap.parse_args()
    if args.classes:
        prior = None
        if args.merge:  # the table written before, continued with other seeds
            import re

            from results import RESULTS

            m = re.search(r"watermark:false_positives_classes:start -->(.*?)<!--", RESULTS.read_text(), re.S)
            prior = prior_counts(m.group(1)) if m else None
        text = run_classes(args.classes, args.workers, args.budget, args.start, args.dump, prior)
        print(text)
        if args.write:
            write_section("watermark:false_positives_classes", text)
        return
    n = args.n if args.n is not None else (200 if args.quick else 2000)
    if args.images == "photos":
        images = corpus_images() or [("synthetic", synthetic_photo())]
    else:
        from content_corpus import load

        images = [(f"{args.images}-{i:03d}", load(args.images, i)) for i in range(args.per_class)]
    other_key = bytes(reversed(KEY))  # never used to mark anything

    found, pvals, total, t0 = [], [], 0, time.perf_counter()
    for tag, img in trials(images, n):
        r = detect(img, key=other_key)
        total += 1
        pvals.append(r.p_value)
        if r.found:
            found.append((tag, r.p_value, r.payload.hex() if r.payload else None))
        if total % 250 == 0:
            print(f"[{time.perf_counter() - t0:6.1f}s] {total} trials, {len(found)} detections", flush=True)
    p = np.array(pvals)
    what = "corpus photos" if args.images == "photos" else f"generated {args.images} images"
    lines = [f"Trials: {total} ({len(images)} unmarked {what} + {n} random crops, half also rescaled "
             "0.5-2x, a fifth rotated +-3 degrees, a third JPEG q40-95), wrong key, both methods, full sync "
             "search (offsets, rescales, rotations). "
             f"Threshold 1e-6. **False detections: {len(found)}.**", "",
             "Calibration of the reported p-value without a mark (must satisfy P(p <= a) <= a):", "",
             "| a | observed P(p <= a) |", "|---|---|"]
    for a in (0.5, 0.1, 0.01, 1e-3, 1e-6):
        lines.append(f"| {a:g} | {np.mean(p <= a):.4f} ({int(np.sum(p <= a))}/{total}) |")
    lines.append(f"\nSmallest p-value seen: {p.min():.3g}. Time: {time.perf_counter() - t0:.0f} s.")
    for tag, pv, hx in found:
        lines.append(f"- false detection: {tag} p={pv:.3g} payload {hx}")
    text = "\n".join(lines)
    print(text)
    if args.write:
        section = "" if args.images == "photos" else f"_{args.images}"
        write_section(f"watermark:false_positives{section}", text)


if __name__ == "__main__":
    main()
