"""Detection rate and false alarms of detectors.visible on the shared corpus (numbers for docs/visible.md).

Run: ``.venv/bin/python benchmarks/visible_detection.py [--quick] [--decode luma|rgb]`` (uses
../shared/corpus, samples/ only without it; ~2 min on 2 cores; ``--quick``: every third photo, ~40 s).
Positives: every corpus photo plus samples/photo.{jpg,png}, labeled with "AI生成" and "人工智能生成" at each
of the six positions, then JPEG q70, 0.5x area resize, and both. Negatives: the unlabeled photos, their
JPEG q70 and 0.5x copies, and 20 random crops of each (seeded).

A JPEG copy is decoded as ``verify`` decodes a JPEG file (``--decode luma``, the default: its luma alone,
:func:`labeler.media.image.read_luma_pixels`) or as an RGB array (``--decode rgb``: OpenCV's decode, the
tables before issue #17's luma read).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np

from detectors.visible import DEFAULT_THRESHOLD, detect_image_label
from labeler.media import read_image
from labeler.media.image import read_luma_pixels
from labeler.visible import POSITIONS, add_image_label

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
TEXTS = ("AI生成", "人工智能生成")
#: How a JPEG copy is decoded: "luma" as verify reads a JPEG file, "rgb" as an RGB array.
DECODE = {"mode": "luma"}


def jpeg(a: np.ndarray, quality: int = 70) -> np.ndarray:
    """JPEG round trip (RGB or grey), decoded as :data:`DECODE` says."""
    bgr = a[..., ::-1] if a.ndim == 3 else a
    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if DECODE["mode"] == "luma":
        return read_luma_pixels(buf.tobytes(), fmt="jpeg")
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out[..., ::-1] if out.ndim == 3 else out


def half(a: np.ndarray) -> np.ndarray:
    """0.5x area resize."""
    return cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)


TRANSFORMS = {"jpeg70": jpeg, "half": half, "half+jpeg70": lambda a: jpeg(half(a))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every third photo only")
    parser.add_argument("--decode", choices=("luma", "rgb"), default="luma",
                        help="how JPEG copies are decoded")
    args = parser.parse_args()
    DECODE["mode"] = args.decode
    paths = sorted((CORPUS / "images").glob("*")) + [ROOT / "samples/photo.jpg", ROOT / "samples/photo.png"]
    if args.quick:
        paths = paths[::3]
    rng = np.random.default_rng(1)
    pos_scores, neg_scores, misses, wrong, seconds, heights = [], [], [], [], [], []
    for path in paths:
        img = read_image(path).pixels
        short = min(img.shape[:2])
        drawn = max(math.ceil(0.05 * short), 12) / short  # the labeler's ink height at the default ratio
        for text in TEXTS:
            for pos in POSITIONS:
                labeled = add_image_label(img, text, position=pos)
                for name, transform in TRANSFORMS.items():
                    probe = transform(labeled)
                    t0 = time.perf_counter()
                    r = detect_image_label(probe)
                    seconds.append(time.perf_counter() - t0)
                    pos_scores.append(r.score)
                    if not r.present:
                        misses.append((path.name, text, pos, name, round(r.score, 3)))
                    elif r.position != pos:
                        wrong.append((path.name, text, pos, name, r.position))
                    if r.present and r.height_ratio is not None:
                        heights.append(r.height_ratio / drawn)
        negatives = [img, jpeg(img), half(img)]
        h, w = img.shape[:2]
        for _ in range(20):
            ch = int(rng.integers(max(64, h // 4), h + 1))
            cw = int(rng.integers(max(64, w // 4), w + 1))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            negatives.append(np.ascontiguousarray(img[y:y + ch, x:x + cw]))
        neg_scores += [detect_image_label(n).score for n in negatives]
    pos, neg = np.array(pos_scores), np.array(neg_scores)
    print(f"labeled: {len(pos) - len(misses)}/{len(pos)} found, {len(wrong)} at a wrong position; "
          f"score min {pos.min():.3f}, 1st percentile {np.percentile(pos, 1):.3f}")
    print(f"unlabeled: {(neg >= DEFAULT_THRESHOLD).sum()}/{len(neg)} false alarms; "
          f"score max {neg.max():.3f}, 99th percentile {np.percentile(neg, 99):.3f}")
    hr = np.array(heights)
    print(f"height_ratio read / drawn: min {hr.min():.3f}, 1st percentile {np.percentile(hr, 1):.3f}, "
          f"median {np.median(hr):.3f}, 99th percentile {np.percentile(hr, 99):.3f}, max {hr.max():.3f}")
    print(f"threshold {DEFAULT_THRESHOLD}; detect time mean {1000 * np.mean(seconds):.0f} ms, "
          f"max {1000 * np.max(seconds):.0f} ms")
    for miss in misses:
        print("missed", miss)
    for item in wrong:
        print("wrong position", item)


if __name__ == "__main__":
    main()
