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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("-n", type=int, default=None, help="random crops/rescales (default 2000, quick 200)")
    ap.add_argument("--images", default="photos",
                    help="photos (the corpus), or flat, gradient, text (benchmarks/content_corpus.py)")
    ap.add_argument("--per-class", type=int, default=15, help="generated images of the class (--images)")
    args = ap.parse_args()
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
