"""Rotation misses of the geometry search, and a proposed seed for it (issue #16; a diagnosis, not a change).

Usage::

    python benchmarks/watermark_rotation_seed.py            # 13 corpus photos + 6 text / UI renders
    python benchmarks/watermark_rotation_seed.py --quick    # 4 photos + 2 renders
    python benchmarks/watermark_rotation_seed.py --write    # also write RESULTS.md

Every image is marked with the default budget (``dct``) and with ``method="dwt"``, rotated by +-2 degrees
(and +-1 with ``--angles``), and read with ``detectors.watermark.detect`` twice: as the code is, and with
one more lattice proposal added to ``labeler.watermark.sync._candidates_2d`` (patched here at run time;
this script owns neither file). The proposal: the rotation ``R(t)`` of the unscaled tile for ``t`` in
-3..3 degrees in 0.25 degree steps, the one that :func:`labeler.watermark.sync._lattice_fit` scores
highest, refined like the other proposals (start window 2 samples) and kept refined only if the
refinement scores at least as high. Why: the 2-D estimator scores periods on the axis-aligned lattice
``(m p, n p)``; after a 2 degree rotation its points beyond the first ring sit 5-13 px off the true
peaks, outside the 9 x 9 dilation, so on a 472 px rotated photo the period 128 ranked 473rd (sharp)
and 117th (dilated) of 750 and was never refined, although the true lattice scores 42 on the final
ranking's robust z where every proposal scored <= 4.7. On text renders the plain refinement from
``128 I`` is pulled off by text-line peaks (a fit of 14 against 111 for the true lattice), hence the
angle grid and the keep-if-better rule. The seed depends on the image only (never the key) and the
number of candidates tried is unchanged, so the p-value's ``M`` and its bound stay as they are.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from attacks import rotate
from content_corpus import load
from results import write_section
from watermark_common import KEY, corpus_images

from detectors.watermark import detect
from labeler.watermark import embed, sync

PAYLOAD = bytes.fromhex("a1b2c3d4e5f60718")
ANGLES = np.radians(np.arange(-3.0, 3.01, 0.25))


def _refine_from(acf: np.ndarray, lh: int, lw: int, start: np.ndarray, window: int,
                 reach: float = 0.8) -> np.ndarray:
    """:func:`labeler.watermark.sync._refine_lattice` started from the matrix ``start`` (pixels)
    instead of ``period * I`` (the only difference)."""
    sh, sw = acf.shape
    mat = np.array(start, np.float64)
    period = abs(float(np.linalg.det(mat))) ** 0.5
    m_all, n_all, _ = sync._lattice(np.array([period * 0.9], dtype=np.float32), lh, lw, reach)
    radius, win = 1, max(1, int(window))
    last = max(np.abs(m_all).max(initial=0), n_all.max(initial=0))

    def vertex(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        den = a - 2.0 * b + c
        return np.where(den < 0, np.clip(0.5 * (a - c) / np.where(den < 0, den, -1.0), -0.5, 0.5), 0.0)

    while True:
        pos = mat @ np.stack([m_all, n_all])
        sel = (np.abs(m_all) <= radius) & (n_all <= radius) & (np.abs(pos[0]) <= reach * lh) & \
            (np.abs(pos[1]) <= reach * lw)
        if sel.sum() < 2:
            return mat
        m, n = m_all[sel], n_all[sel]
        cy, cx = np.rint(pos[0, sel]).astype(np.int64), np.rint(pos[1, sel]).astype(np.int64)
        d = np.arange(-win, win + 1)
        k = 2 * win + 1
        patch = acf[(cy[:, None, None] + d[None, :, None]) % sh, (cx[:, None, None] + d[None, None, :]) % sw]
        j = patch.reshape(len(m), k * k).argmax(axis=1)
        ys, xs = cy + j // k - win, cx + j % k - win
        b = acf[ys % sh, xs % sw]
        fy = ys + vertex(acf[(ys - 1) % sh, xs % sw], b, acf[(ys + 1) % sh, xs % sw])
        fx = xs + vertex(acf[ys % sh, (xs - 1) % sw], b, acf[ys % sh, (xs + 1) % sw])
        design = np.stack([m, n], axis=1).astype(np.float64)
        mat = np.linalg.lstsq(design, np.stack([fy, fx], axis=1), rcond=None)[0].T
        if radius >= last:
            return mat
        radius *= 2
        win = max(1, win // 2)


def rotation_seed(acf: np.ndarray, lh: int, lw: int, tile: int) -> np.ndarray:
    """The proposed extra lattice (in tiles): the best-fitting rotation of the unscaled tile, refined."""
    fit = sync._lattice_fit(acf, lh, lw)
    best = max((tile * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) for t in ANGLES), key=fit)
    ref = _refine_from(acf, lh, lw, best, 2)
    return (ref if fit(ref) >= fit(best) else best) / tile


SEED_SECONDS: list[float] = []


def install() -> None:
    """Patch ``sync._candidates_2d`` to append :func:`rotation_seed` to its proposals (this process only)."""
    original = sync._candidates_2d

    def patched(acf: np.ndarray, lh: int, lw: int, tile: int, lo: float, hi: float,
                count: int = 8) -> list[np.ndarray]:
        out = original(acf, lh, lw, tile, lo, hi, count)
        t0 = time.process_time()
        out.append(rotation_seed(acf, lh, lw, tile))
        SEED_SECONDS.append(time.process_time() - t0)
        return out

    sync._candidates_2d = patched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--angles", default="2,-2")
    args = ap.parse_args()
    photos = corpus_images()
    texts = [(f"text-{s:03d}", load("text", s)) for s in (1, 9, 11, 0, 4, 13)]
    images = photos[::4] + texts[:2] if args.quick else photos + texts
    angles = [float(a) for a in args.angles.split(",")]
    rows = []
    for name, img in images:
        for method in ("dct", "dwt"):
            marked = embed(img, PAYLOAD, key=KEY, method=method)
            for deg in angles:
                rows.append((name, method, deg, rotate(deg)(marked, None)))
    results = {}
    for variant in ("as is", "with the seed"):
        if variant == "with the seed":
            install()
        for name, method, deg, attacked in rows:
            r = detect(attacked, key=KEY)
            results[(variant, name, method, deg)] = (bool(r.found and r.payload == PAYLOAD), r.z, r.rotation)
    lines = [f"Rotations {', '.join(f'{a:+g}' for a in angles)} degrees of {len(images)} images (corpus "
             "photos, text / UI renders), each marked with the default budget (`dct`) and with `dwt`; "
             "found = exact payload, p <= 1e-6. `with the seed`: one more lattice proposal (module "
             "docstring), patched in at run time; `labeler/watermark/sync.py` itself unchanged.", "",
             "| method | as is | with the seed |", "|---|---|---|"]
    for method in ("dct", "dwt"):
        cells = []
        for variant in ("as is", "with the seed"):
            v = [results[(variant, n, method, d)][0] for n, m, d, _ in rows if m == method]
            cells.append(f"{sum(v)}/{len(v)}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for variant in ("as is", "with the seed"):
        miss = [f"{n} {m} {d:+g} (z {results[(variant, n, m, d)][1]:.1f})" for n, m, d, _ in rows
                if not results[(variant, n, m, d)][0]]
        lines.append(f"\nMisses {variant} ({len(miss)}): " + ("; ".join(miss) or "none") + ".")
    if SEED_SECONDS:
        ms = 1000 * np.array(SEED_SECONDS)
        lines.append(f"\nThe seed's CPU time per geometry search: median {np.median(ms):.1f} ms, "
                     f"max {ms.max():.1f} ms ({ms.size} searches).")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("watermark:rotation-seed", text)


if __name__ == "__main__":
    main()
