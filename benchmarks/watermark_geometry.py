"""Where the true geometry ranks among the watermark detector's lattice candidates.

Usage::

    python benchmarks/watermark_geometry.py            # 13 corpus photos x 2 methods x 2 payloads x 7 attacks
    python benchmarks/watermark_geometry.py --quick    # every 3rd photo, one payload
    python benchmarks/watermark_geometry.py --write    # also write the table into RESULTS.md

The detector tries the first 3 (images >= 1 MP) to 6 (small images) candidates of
:func:`labeler.watermark.lattice.scale_candidates` after the image as given fails, so a true geometry
ranked lower is a lost recovery. For every marked photo and geometric attack (rotations, resizes, a
resize then rotation) this reads the candidate list (20 long) and records the rank of the first
candidate within 0.25 degrees and 1 % of scale of the truth ("-" when none is).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from attacks import chain, resize, rotate
from results import write_section
from watermark_common import KEY, corpus_images, synthetic_photo

from labeler.watermark import embed
from labeler.watermark.sync import scale_candidates
from labeler.watermark.transforms import geometry_image, luma_fast

#: name -> (attack, rotation in degrees, scale)
ATTACKS = {
    "rot1": (rotate(1.0), 1.0, 1.0),
    "rot2": (rotate(2.0), 2.0, 1.0),
    "rot-2": (rotate(-2.0), -2.0, 1.0),
    "resize0.5": (resize(0.5), 0.0, 0.5),
    "resize0.75": (resize(0.75), 0.0, 0.75),
    "resize1.5": (resize(1.5), 0.0, 1.5),
    "resize0.6+rot1": (chain(resize(0.6), rotate(1.0)), 1.0, 0.6),
}
PAYLOADS = [bytes(range(8)), bytes.fromhex("a1b2c3d4e5f60718")]


def rank(image: np.ndarray, degrees: float, scale: float, count: int = 20) -> int | None:
    """Rank (0 = first) of the true geometry among the candidates, or None when it is not proposed."""
    for i, m in enumerate(scale_candidates(geometry_image(luma_fast(image)), 128, count=count)):
        angle = float(np.degrees(np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1])))
        side = abs(float(np.linalg.det(m))) ** 0.5
        if abs(angle - degrees) < 0.25 and abs(side / scale - 1.0) < 0.01:
            return i
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    images = corpus_images() or [("synthetic", synthetic_photo(768, 1024))]
    payloads = PAYLOADS
    if args.quick:
        images, payloads = images[::3], PAYLOADS[:1]
    ranks: dict[str, list[int | None]] = {a: [] for a in ATTACKS}
    misses: list[str] = []
    t0 = time.perf_counter()
    for name, rgb in images:
        for method in ("dct", "dwt"):
            for payload in payloads:
                marked = embed(rgb, payload, key=KEY, method=method)
                for attack, (fn, degrees, scale) in ATTACKS.items():
                    r = rank(fn(marked, np.random.default_rng(0)), degrees, scale)
                    ranks[attack].append(r)
                    if r is None or r > 2:
                        misses.append(f"{name} {method} {attack}: {'not proposed' if r is None else r + 1}")
        print(f"[{time.perf_counter() - t0:6.1f}s] {name}", flush=True)

    cases = sum(len(v) for v in ranks.values())
    lines = [f"Photos: {len(images)}; methods dct, dwt; payloads: {len(payloads)}; {cases} cases. "
             "Cell: share of cases whose true geometry is the 1st / within the first 3 (what a >= 1 MP "
             "image tries) / within the first 6 (small images) candidates.", "",
             "| attack | 1st | <= 3rd | <= 6th | not proposed |", "|---|---|---|---|---|"]
    for attack, v in ranks.items():
        r = np.array([99 if x is None else x for x in v])
        lines.append(f"| {attack} | {np.mean(r == 0):.2f} | {np.mean(r <= 2):.2f} | {np.mean(r <= 5):.2f} | "
                     f"{int(np.sum(r == 99))} |")
    listed = "; ".join(misses) if misses else "none"
    lines += ["", f"Cases ranked below 3rd or not proposed: {listed}."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("watermark:geometry", text)


if __name__ == "__main__":
    main()
