"""Image watermark per content class: photos, flat/illustration, gradient/AI-look, text/UI.

Usage::

    python benchmarks/watermark_content.py                 # 15 images per generated class + the photos
    python benchmarks/watermark_content.py --quick         # 4 per class, every 3rd photo / art, fewer attacks
    python benchmarks/watermark_content.py --write         # also write the tables into RESULTS.md
    python benchmarks/watermark_content.py --strength 2    # the old fixed-strength model, for comparison

The generated classes come from ``benchmarks/content_corpus.py`` (deterministic, cached outside git), each
split by seed into a tuning part and a held-out part, reported separately. Every image is marked with the
default embed (``strength=None``: the per-image budget) and read after every attack with
``detectors.watermark.detect`` (both methods, full search): a cell is the share of images whose exact
64-bit payload came back with p <= 1e-6. Quality is PSNR (all channels) and SSIM (luma) of the marked
image against the original: worst / median / best per class. The flattest 256 x 256 area of every
``--crops`` image is saved (original | marked | marked with contrast x8 around its mean) as PNG under the
corpus cache for a person to look at, and where it is elsewhere the darkest flat area (``<name>-dark.png``).
"""

from __future__ import annotations

import argparse
import io
import time
import zlib
from collections import defaultdict

import numpy as np
from attacks import ATTACKS, avif, blur, chain, crop, enhance, jpeg, noise, resize, rotate, webp
from content_corpus import CACHE, CLASSES, corpus
from PIL import Image
from results import write_section
from watermark_common import KEY, psnr, ssim

from detectors.watermark import detect
from labeler.watermark import embed
from labeler.watermark.transforms import block_activity, luma

PAYLOAD = bytes.fromhex("a1b2c3d4e5f60718")
LABELS = {
    "photo": "photos",
    "flat": "flat / illustration",
    "gradient": "gradient / AI-look",
    "text": "text / UI",
    "art": "real vector art",
}


def _to_width(width: int, q: int):  # noqa: ANN202 - an attack
    def run(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = a.shape[:2]
        if w > width:
            a = np.asarray(Image.fromarray(a).resize((width, round(h * width / w)), Image.BICUBIC))
        return jpeg(q)(a, rng)

    return run


def _png(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


#: The issue's attack list; rotation's target is 95 %, every other 99 %.
CONTENT_ATTACKS = {
    "none": ATTACKS["none"],
    "jpeg50": jpeg(50),
    "webp75": webp(75),
    "resize0.5": resize(0.5),
    "resize0.75+jpeg75": chain(resize(0.75), jpeg(75)),
    "crop50": crop(0.5),
    "social 1080w jpeg85 x2": chain(_to_width(1080, 85), _to_width(1080, 85)),
    "screenshot 0.9 png": chain(resize(0.9), _png),
    "blur1": blur(1.0),
    "noise5": noise(5.0),
    "bright+20": enhance("brightness", 1.2),
    "bright-20": enhance("brightness", 0.8),
    "contrast+20": enhance("contrast", 1.2),
    "contrast-20": enhance("contrast", 0.8),
    "rot+2": rotate(2.0),
    "rot-2": rotate(-2.0),
}
#: Not in the issue's list, reported on their own (AVIF is what CDNs and browsers increasingly serve):
#: ``--attacks avif50,avif75 --section watermark:content-avif``.
EXTRA_ATTACKS = {"avif50": avif(50), "avif75": avif(75)}
QUICK = ["none", "jpeg50", "webp75", "resize0.5", "resize0.75+jpeg75", "social 1080w jpeg85 x2", "rot+2"]


def _window_sums(a: np.ndarray, k: int) -> np.ndarray:
    """Sum of ``a`` over every k x k window of its cells."""
    c = np.cumsum(np.cumsum(np.pad(a, ((1, 0), (1, 0))), 0), 1)
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def flattest_crop(img: np.ndarray, side: int = 256, dark: bool = False) -> tuple[int, int]:
    """Top-left corner of the ``side`` x ``side`` window (on a 64 px grid) with the least luma activity.

    With ``dark``, the darkest (lowest mean luma) of the windows whose activity is within 1.5x of the
    least (plus 0.5 level per cell): a flat dark fill, where a level of change is most visible (CIELAB
    lightness slope 0.51 per level near level 25, 0.41 at 128).
    """
    y = luma(img)
    act = block_activity(y, 64)
    k = side // 64
    h, w = act.shape
    if h < k or w < k:
        return 0, 0
    win = _window_sums(act, k)
    if dark:
        hb, wb = h * 64, w * 64
        grow = ((0, max(0, hb - y.shape[0])), (0, max(0, wb - y.shape[1])))
        pad = np.pad(y.astype(np.float64), grow, "edge")
        means = pad[:hb, :wb].reshape(h, 64, w, 64).mean(axis=(1, 3))
        flat = win <= 1.5 * win.min() + 0.5 * k * k
        win = np.where(flat, _window_sums(means, k), np.inf)
    i, j = np.unravel_index(int(np.argmin(win)), win.shape)
    return int(i) * 64, int(j) * 64


def save_crop(name: str, img: np.ndarray, marked: np.ndarray, tag: str, side: int = 256,
              dark: bool = False) -> str:
    """original | marked | marked with contrast x8 around its mean, as one PNG; returns the path.

    ``dark``: the darkest flat window (:func:`flattest_crop`), saved as ``<name>-dark.png``.
    """
    y0, x0 = flattest_crop(img, side, dark)
    a, b = img[y0 : y0 + side, x0 : x0 + side], marked[y0 : y0 + side, x0 : x0 + side]
    stretched = np.clip((b.astype(np.float32) - b.mean(axis=(0, 1))) * 8 + 128, 0, 255).astype(np.uint8)
    out = CACHE / "crops" / tag / f"{name}{'-dark' if dark else ''}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, b, stretched], axis=1)).save(out)
    return str(out)


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--per-class", type=int, default=None, help="generated images per class [15, quick 4]")
    ap.add_argument("--classes", default=",".join(("photo",) + CLASSES + ("art",)),
                    help="photo, the generated classes and art (real_art.py: Debian's wallpapers and Tango "
                         "icon sheets, all held out; skipped when those packages are absent)")
    ap.add_argument("--attacks", default=None,
                    help="comma-separated subset of: " + ",".join([*CONTENT_ATTACKS, *EXTRA_ATTACKS]))
    ap.add_argument("--method", default="dct")
    ap.add_argument("--strength", type=float, default=None, help="fixed strength (default: the budget)")
    ap.add_argument("--crops", action="store_true", help="save the flattest-area crops")
    ap.add_argument("--section", default="watermark:content")
    return ap.parse_args()


def _tables(args: argparse.Namespace, per_class: int, attacks: list[str],
            ok: dict[tuple[str, str, str], list[bool]], quality: dict[str, list[tuple[str, float, float]]],
            failures: list[str]) -> list[str]:
    """The run's Markdown: exact payloads per attack and class part, quality per class, the misses."""
    present = [c for c in ("photo",) + CLASSES + ("art",) if c in quality]
    cols = [(c, p) for c in present for p in ("tune", "held-out") if ok.get((c, p, attacks[0]))]
    model = "per-image budget" if args.strength is None else f"fixed strength {args.strength:g}"
    lines = [
        f"Method `{args.method}`, {model}; read with `detect(key=...)` (both methods, full search). "
        f"{per_class} generated images per class (`benchmarks/content_corpus.py`, 1920x1080 to 2560x1440; "
        "tuning seeds / held-out seeds), the corpus photos and, where Debian's packages are installed, real "
        "vector art (`benchmarks/real_art.py`: desktop-base wallpapers and Tango icon sheets, never tuned "
        "on). Cell: images whose exact 64-bit payload was found (p <= 1e-6) / images. "
        "Targets: >= 99 %, rotation >= 95 %.",
        "",
        "| attack | " + " | ".join(f"{LABELS[c]} ({p})" for c, p in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for attack in attacks:
        cells = []
        for c, p in cols:
            v = ok[(c, p, attack)]
            cells.append(f"{sum(v)}/{len(v)}" + (" **" if sum(v) < len(v) else ""))
        lines.append(f"| {attack} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Quality of the marked image (worst / median / best over the class, both parts):",
        "",
        "| class | PSNR dB | SSIM | worst PSNR image | worst SSIM image |",
        "|---|---|---|---|---|",
    ]
    for c in present:
        q = quality[c]
        ps, ss = np.array([x[1] for x in q]), np.array([x[2] for x in q])
        lines.append(
            f"| {LABELS[c]} | {ps.min():.1f} / {np.median(ps):.1f} / {ps.max():.1f} | "
            f"{ss.min():.4f} / {np.median(ss):.4f} / {ss.max():.4f} | {q[int(ps.argmin())][0]} | "
            f"{q[int(ss.argmin())][0]} |"
        )
    lines += [
        "",
        f"Misses ({len(failures)}): " + ("; ".join(failures) if failures else "none") + ".",
    ]
    return lines


def main() -> None:
    args = _parse()
    per_class = args.per_class or (4 if args.quick else 15)
    classes = tuple(args.classes.split(","))
    attacks = args.attacks.split(",") if args.attacks else (QUICK if args.quick else list(CONTENT_ATTACKS))
    generated = tuple(c for c in classes if c not in ("photo", "art"))
    items = corpus(per_class, generated, photos="photo" in classes, art="art" in classes)
    if args.quick:  # every third photo and real-art image
        items = [x for x in items if x[0] not in ("photo", "art")] + \
            [x for x in items if x[0] == "photo"][::3] + [x for x in items if x[0] == "art"][::3]
    tag = f"{args.method}-{'budget' if args.strength is None else f's{args.strength:g}'}"

    ok: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    quality: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    failures: list[str] = []
    crops: list[str] = []
    t0 = time.perf_counter()
    for cls, part, name, img in items:
        marked = embed(img, PAYLOAD, key=KEY, method=args.method, strength=args.strength)
        quality[cls].append((name, psnr(img, marked), ssim(img, marked)))
        if args.crops:
            crops.append(save_crop(name, img, marked, tag))
            if flattest_crop(img, dark=True) != flattest_crop(img):
                crops.append(save_crop(name, img, marked, tag, dark=True))
        for attack in attacks:
            rng = np.random.default_rng([zlib.crc32(name.encode()), zlib.crc32(attack.encode())])
            r = detect({**CONTENT_ATTACKS, **EXTRA_ATTACKS}[attack](marked, rng), key=KEY)
            good = bool(r.found and r.payload == PAYLOAD)
            ok[(cls, part, attack)].append(good)
            if not good:
                failures.append(f"{name} / {attack} (z {r.z:.1f})")
        print(
            f"[{time.perf_counter() - t0:6.1f}s] {name} psnr {quality[cls][-1][1]:.1f} "
            f"ssim {quality[cls][-1][2]:.4f} misses {sum(not v[-1] for k, v in ok.items() if k[0] == cls)}",
            flush=True,
        )

    lines = _tables(args, per_class, attacks, ok, quality, failures)
    lines.append(f"Time: {time.perf_counter() - t0:.0f} s.")
    if crops:
        lines.append(
            f"Flattest-area crops: {CACHE / 'crops' / tag}/ (original | marked | marked, contrast x8)."
        )
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.section, text)


if __name__ == "__main__":
    main()
