"""The image detector's lattice gate (``detectors.watermark_gate.LATTICE_MIN``): evidence, marked vs unmarked.

Usage::

    python benchmarks/watermark_lattice_gate.py            # the large corpus photos, every attack
    python benchmarks/watermark_lattice_gate.py --quick    # every 2nd photo, dct only
    python benchmarks/watermark_lattice_gate.py --dump cases.json   # also every case's two reads

Marked photos are enlarged before marking where an attack would leave less than 1024 px a side.

On images of >= 1024 px a side the rescale / rotation search runs only where the lattice evidence (the
half-resolution read of :func:`detectors.watermark_gate.lattice_shows`) reaches ``LATTICE_MIN`` (and its
ring score ``LATTICE_RING_MIN``), or where its window is less than ``GATE_FLAT_SHARE`` flat or dense texture
(``GATE_DENSE_SHARE``: there the host hides the lattice). The same read of the full-resolution window (the
gate's second read until 2026-12-05) is printed beside it.
``--content N`` adds N flat, gradient and text images a class (``content_corpus``); ``--texture N`` adds
N synthetic textured pictures (:func:`textured`: grain over the whole picture, or over 50-85 % of it
beside smooth shading). This prints, per geometric attack of marked images, how many the detector
decodes and the lowest evidence among those (a decoded mark below the cut is one the gate would lose
but for the flat-share rule), and the evidence of unmarked variants of the same images (those the gate
lets through are searched: time, not errors).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import cv2
import numpy as np
from attacks import chain, jpeg, resize, rotate, webp
from PIL import Image
from watermark_common import CORPUS, KEY, corpus_images

import detectors.watermark as wm
import detectors.watermark_gate as gate
from labeler.watermark import embed
from labeler.watermark.lattice_evidence import lattice_evidence, lattice_scores
from labeler.watermark.transforms import luma_fast, prefilter_parts

ATTACKS = {
    "resize0.38": resize(0.38), "resize0.5+jpeg50": chain(resize(0.5), jpeg(50)), "resize0.75": resize(0.75),
    "resize0.5+webp75": chain(resize(0.5), webp(75)), "resize1.5": resize(1.5),
    "resize2.0+jpeg60": chain(resize(2.0), jpeg(60)), "resize2.2": resize(2.2),
    "rot2+jpeg50": chain(rotate(2.0), jpeg(50)),
    "rot-3": rotate(-3.0), "resize0.7+rot2+jpeg60": chain(resize(0.7), rotate(2.0), jpeg(60)),
}


def textured(i: int, shape: tuple[int, int] = (1440, 2560)) -> np.ndarray:
    """Synthetic picture ``i``: blurred Gaussian grain (blur 0.8-1.4 px, RMS 40 or, every fourth, 15
    levels) over the whole picture (even ``i``) or over 50 / 70 / 85 % of it in smooth blobs beside slow
    shading (odd ``i``)."""
    rng = np.random.default_rng(1000 + i)
    grain = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 0.8 + 0.2 * (i % 4))
    grain *= (15 if i % 4 == 3 else 40) / grain.std()
    if i % 2 == 0:
        img = 128 + grain
    else:
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        shading = 60 * np.sin(xx / 700 + i) * np.cos(yy / 500)
        field = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 60)
        share = (0.5, 0.7, 0.85)[(i // 2) % 3]
        mask = cv2.GaussianBlur((field <= np.quantile(field, share)).astype(np.float32), (0, 0), 3)
        img = 128 + shading + mask * grain
    grey = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def evidence(rgb: np.ndarray) -> tuple[float, float, float, float, float]:
    """The gate's lattice evidence read (the half-resolution window), for comparison the same read of the
    full-resolution window (the gate's second read until 2026-12-05), the window's dense-texture share
    (from ``GATE_DENSE_SHARE`` the search runs whatever the evidence) and the half-resolution read's ring
    score (``LATTICE_RING_MIN``) and its flat share (under ``GATE_FLAT_SHARE`` the search runs too)."""
    y = luma_fast(rgb)
    z = prefilter_parts(y)
    lo, hi = gate.SCALE_RANGE
    half = lattice_scores(z.half, lo * 64, hi * 64)
    return (half.total, lattice_evidence(z.image(), lo * 128, hi * 128), gate.dense_share(y),
            half.ring_total, gate.flat_share(z.weight))


def unmarked_variants(rgb: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The photo as is, rescaled 0.5-1.25x, some rotated up to 3 degrees, some JPEG q40-95."""
    out = []
    for f in (0.5, 0.6, 0.75, 0.9, 1.0, 1.25):
        img = rgb if f == 1.0 else np.asarray(Image.fromarray(rgb).resize(
            (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), Image.BICUBIC))
        if f in (0.6, 1.25):
            turned = Image.fromarray(img).rotate(float(rng.uniform(-3, 3)), Image.BICUBIC)
            img = np.asarray(turned)[40:-40, 40:-40]
        if f in (0.5, 0.9, 1.25):
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(img)).save(buf, "JPEG", quality=int(rng.integers(40, 95)))
            img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        if min(img.shape[:2]) >= 1024:
            out.append(img)
    return out


def decoded(img: np.ndarray, gate: bool) -> bool:
    """Whether ``detect`` finds the payload, with the gate or with the search forced on (as before it)."""
    real = wm.lattice_shows
    if not gate:
        wm.lattice_shows = lambda *a: True
    try:
        r = wm.detect(img, key=KEY)
    finally:
        wm.lattice_shows = real
    return bool(r.found and r.payload == bytes(range(8)))


def attacked(rgb: np.ndarray, method: str, fn: object, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` marked and attacked, the photo first enlarged (bicubic, before marking) as far as needed for
    the result to keep >= 1024 px a side, where the gate applies (a 0.38x resize of a 1600 px photo
    would not)."""
    base = rgb
    while True:
        img = np.ascontiguousarray(fn(embed(base, bytes(range(8)), key=KEY, method=method), rng))
        short = min(img.shape[:2])
        if short >= 1024:
            return img
        f = 1.05 * 1024 / short * base.shape[0] / rgb.shape[0]
        base = np.asarray(Image.fromarray(rgb).resize((round(rgb.shape[1] * f), round(rgb.shape[0] * f)),
                                                      Image.BICUBIC))


def collect(images: list[tuple[str, np.ndarray]], methods: tuple[str, ...]
            ) -> tuple[dict[str, list[tuple[tuple[float, ...], bool, bool]]],
                       list[tuple[float, ...]]]:
    """Per attack: (evidence, decoded with the gate, decoded with the search forced) of every marked image;
    and the evidence of the unmarked variants."""
    rows: dict[str, list[tuple[tuple[float, ...], bool, bool]]] = {a: [] for a in ATTACKS}
    clean: list[tuple[float, ...]] = []
    rng = np.random.default_rng(0)
    for name, rgb in images:
        clean += [evidence(v) for v in unmarked_variants(rgb, rng)]
        for method in methods:
            for attack, fn in ATTACKS.items():
                img = attacked(rgb, method, fn, rng)
                rows[attack].append((evidence(img), decoded(img, True), decoded(img, False)))
        print(f"{name} done", flush=True)
    return rows, clean


def _textured(e: tuple[float, ...]) -> bool:
    """Whether the gate searches ``e``'s window for its texture, whatever its scores."""
    return e[4] < gate.GATE_FLAT_SHARE or e[2] >= gate.GATE_DENSE_SHARE


def _shows(e: tuple[float, ...]) -> bool:
    """Whether the gate lets the search run on evidence ``e`` (both cuts, or dense texture)."""
    return _textured(e) or (e[0] >= gate.LATTICE_MIN and e[3] >= gate.LATTICE_RING_MIN)


def report(rows: dict[str, list[tuple[tuple[float, ...], bool, bool]]],
           clean: list[tuple[float, ...]]) -> None:
    """The marked table and the unmarked summary (the gate reads ``e[0]``, ``e[3]`` and ``e[2]``; ``e[1]``
    for comparison)."""
    print("| attack | decoded, gate | decoded, search forced | lowest evidence of a decoded mark | "
          "lowest ring score of a decoded mark | decoded marks the gate shuts out | "
          "lowest full-resolution read of a decoded mark (not used) |")
    print("|---|---|---|---|---|---|---|")
    for attack, v in rows.items():
        dec = [e for e, _, forced in v if forced]
        low = f"{min(e[0] for e in dec):.1f}" if dec else "-"
        low_ring = f"{min(e[3] for e in dec):.1f}" if dec else "-"
        full = f"{min(e[1] for e in dec):.1f}" if dec else "-"
        print(f"| {attack} | {sum(g for _, g, _ in v)}/{len(v)} | {len(dec)}/{len(v)} | {low} | {low_ring} | "
              f"{sum(not _shows(e) for e in dec)} | {full} |")
    c = np.array(clean)
    textured = np.array([_textured(tuple(e)) for e in c])
    shown = np.array([_shows(tuple(e)) for e in c])
    print(f"\nUnmarked variants ({len(c)}): evidence median {np.median(c[:, 0]):.1f}, "
          f"max {c[:, 0].max():.1f}, >= LATTICE_MIN {int(np.sum(c[:, 0] >= gate.LATTICE_MIN))}; "
          f"ring score median {np.median(c[:, 3]):.1f}, max {c[:, 3].max():.1f}; "
          f"searched {int(shown.sum())}, "
          f"for their texture (flat share < {gate.GATE_FLAT_SHARE} or dense share >= "
          f"{gate.GATE_DENSE_SHARE}) "
          f"{int(textured.sum())}; "
          f"full-resolution read (not used) "
          f"median {np.median(c[:, 1]):.1f} max {c[:, 1].max():.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--content", type=int, default=0, help="flat, gradient and text images a class to add")
    ap.add_argument("--texture", type=int, default=0, help="synthetic textured pictures to add")
    ap.add_argument("--dump", help="also write every case's two reads to this JSON file")
    args = ap.parse_args()
    images = [(n, img) for n, img in corpus_images() if min(img.shape[:2]) >= 1024]
    methods = ("dct", "dwt")
    if args.quick:
        images, methods = images[::2], ("dct",)
    if args.content:
        import content_corpus

        images += [(name, img) for _, _, name, img in content_corpus.corpus(args.content, photos=False)]
    images += [(f"texture-{i}", textured(i)) for i in range(args.texture)]
    if not images:
        # Without the corpus there is nothing to measure: say so in one line (it used to print an empty
        # table and end in an IndexError traceback).
        raise SystemExit("watermark_lattice_gate: no images: the corpus photos of >= 1024 px a side "
                         f"({CORPUS}) are absent; add --content N or --texture N")
    rows, clean = collect(images, methods)
    print(f"\nLATTICE_MIN = {gate.LATTICE_MIN}, LATTICE_RING_MIN = {gate.LATTICE_RING_MIN}; "
          f"images: {len(images)}; methods {', '.join(methods)}\n")
    report(rows, clean)
    if args.dump:
        cases = [{"attack": a, "half": e[0], "full": e[1], "dense": e[2], "ring": e[3], "flat_share": e[4],
                  "gate": g, "forced": f}
                 for a, v in rows.items() for e, g, f in v]
        Path(args.dump).write_text(json.dumps({"marked": cases, "unmarked": clean}, indent=1))


if __name__ == "__main__":
    main()
