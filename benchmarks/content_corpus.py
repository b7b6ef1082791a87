"""A deterministic corpus of the flat and smooth images generators make, per content class.

Usage::

    python benchmarks/content_corpus.py              # build (or reuse) the cache, print a summary
    python benchmarks/content_corpus.py --per-class 6

Classes (``CLASSES``), each drawn from its own seeds, so the same seed always gives the same image:

* ``flat``: vector-like art and flat illustrations. Even seeds: an SVG written here (flat fills, linear and
  radial gradients, strokes, soft shadows) rendered by ``rsvg-convert`` (Debian ``librsvg2-bin``; Pillow
  drawing at 4x then downsampled when it is not installed). Odd seeds: cartoon-like scenes, a few flat
  colours with dark outlines (Pillow, drawn at 2x and downsampled for anti-aliased edges).
* ``gradient``: smooth gradients with soft blurred shapes (wallpapers) and low-noise "AI-look" portraits
  (a smoothly shaded head, hair and shoulders over a bokeh background), synthesised in float and rounded
  once to 8 bits, as a generator's decoder does.
* ``text``: text and UI renders: panels, buttons, cards, lines of text (DejaVu / Liberation fonts).
* ``photo``: the camera photos of ``/work/shared/corpus/images`` (absent: the class is empty).

Sizes are drawn from 1920x1080 to 2560x1440 (a few portrait). Each class is split by seed into a tuning
part (the first ``TUNE_FRACTION``) and a held-out part: the strength model was tuned on the first only.
Images are cached as PNG under ``$AIGC_CONTENT_CORPUS`` (default ``/tmp/aigc-content-corpus``), outside git.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CACHE = Path(os.environ.get("AIGC_CONTENT_CORPUS", "/tmp/aigc-content-corpus"))
CLASSES = ("flat", "gradient", "text")
#: Share of each class's seeds used for tuning; the rest is held out.
TUNE_FRACTION = 0.6
SIZES = [(1920, 1080), (2560, 1440), (2048, 1152), (2240, 1260), (1080, 1920), (1440, 2560)]
_VERSION = 1  # bump when a generator changes, so stale cached images are not reused
_FONTS = [
    p
    for p in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    )
    if Path(p).is_file()
]


def _size(rng: np.random.Generator) -> tuple[int, int]:
    # mostly landscape: 1 in 6 portrait
    return SIZES[int(rng.integers(len(SIZES)))] if rng.random() < 0.17 else SIZES[int(rng.integers(4))]


def _colour(rng: np.random.Generator, sat: float = 0.7) -> tuple[int, int, int]:
    # saturation capped at 255: with sat > 0.75 the draw can pass 1.0, and np.uint8 of 256+ raises
    hsv = np.uint8(
        [[[rng.integers(0, 180), min(255, int(255 * rng.uniform(0.25, sat + 0.25))), rng.integers(90, 256)]]]
    )
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _hex(c: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


# --- flat: SVG vector art ----------------------------------------------------------------------------------


def _svg(rng: np.random.Generator, w: int, h: int) -> str:
    """Vector wallpaper: a gradient or flat background, flat and gradient-filled shapes, strokes."""
    defs, body = [], []
    bg = [_colour(rng, 0.5) for _ in range(2)]
    if rng.random() < 0.5:
        defs.append(
            f'<linearGradient id="bg" x1="0" y1="0" x2="{rng.uniform(0, 1):.2f}" y2="1">'
            f'<stop offset="0" stop-color="{_hex(bg[0])}"/><stop offset="1" stop-color="{_hex(bg[1])}"/>'
            "</linearGradient>"
        )
        body.append(f'<rect width="{w}" height="{h}" fill="url(#bg)"/>')
    else:
        body.append(f'<rect width="{w}" height="{h}" fill="{_hex(bg[0])}"/>')
    defs.append('<filter id="soft"><feGaussianBlur stdDeviation="18"/></filter>')
    for i in range(int(rng.integers(6, 16))):
        c1, c2 = _colour(rng), _colour(rng)
        fill = _hex(c1)
        if rng.random() < 0.35:
            defs.append(
                f'<radialGradient id="g{i}"><stop offset="0" stop-color="{_hex(c1)}"/>'
                f'<stop offset="1" stop-color="{_hex(c2)}"/></radialGradient>'
            )
            fill = f"url(#g{i})"
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.04, 0.3) * min(w, h)
        stroke = ""
        if rng.random() < 0.4:
            stroke = f' stroke="{_hex(_colour(rng, 0.3))}" stroke-width="{rng.uniform(2, 10):.1f}"'
        shadow = ""
        if rng.random() < 0.3:
            body.append(
                f'<circle cx="{cx + 12:.1f}" cy="{cy + 16:.1f}" r="{r:.1f}" fill="#000" '
                'fill-opacity="0.25" filter="url(#soft)"/>'
            )
        kind = rng.integers(3)
        if kind == 0:
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{fill}"{stroke}{shadow}/>')
        elif kind == 1:
            n = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * np.pi, n))
            pts = " ".join(f"{cx + r * np.cos(a):.1f},{cy + r * np.sin(a):.1f}" for a in ang)
            body.append(f'<polygon points="{pts}" fill="{fill}"{stroke}/>')
        else:
            pts = [(rng.uniform(0, w), rng.uniform(0, h)) for _ in range(4)]
            d = (
                f"M{pts[0][0]:.0f},{pts[0][1]:.0f} C{pts[1][0]:.0f},{pts[1][1]:.0f} "
                f"{pts[2][0]:.0f},{pts[2][1]:.0f} {pts[3][0]:.0f},{pts[3][1]:.0f} Z"
            )
            body.append(f'<path d="{d}" fill="{fill}" fill-opacity="{rng.uniform(0.6, 1):.2f}"{stroke}/>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        f"<defs>{''.join(defs)}</defs>{''.join(body)}</svg>"
    )


def _render_svg(svg: str, w: int, h: int) -> np.ndarray | None:
    exe = shutil.which("rsvg-convert")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "a.svg", Path(tmp) / "a.png"
        src.write_text(svg)
        subprocess.run(
            [exe, "-w", str(w), "-h", str(h), "-o", str(dst), str(src)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with Image.open(dst) as im:
            return np.asarray(im.convert("RGB"))


def _cartoon(rng: np.random.Generator, w: int, h: int, supersample: int = 2) -> np.ndarray:
    """A flat cartoon scene: sky, hills, sun, houses/trees as flat fills with dark outlines."""
    s = supersample
    im = Image.new("RGB", (w * s, h * s), _colour(rng, 0.4))
    d = ImageDraw.Draw(im)
    outline = tuple(int(v) for v in rng.integers(10, 50, 3))
    lw = int(rng.integers(3, 8)) * s
    # hills
    for _k in range(int(rng.integers(2, 4))):
        y0 = h * s * rng.uniform(0.45, 0.8)
        xs = np.linspace(0, w * s, 9)
        ys = y0 + rng.uniform(-0.1, 0.1, 9) * h * s
        poly = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)] + [(w * s, h * s), (0, h * s)]
        d.polygon(poly, fill=_colour(rng, 0.6), outline=outline, width=lw)
    d.ellipse(
        [w * s * 0.75, h * s * 0.08, w * s * 0.9, h * s * 0.08 + w * s * 0.15],
        fill=(250, 220, 80),
        outline=outline,
        width=lw,
    )
    for _ in range(int(rng.integers(4, 12))):
        x, y = rng.uniform(0, w * s), rng.uniform(0.4, 0.9) * h * s
        bw, bh = rng.uniform(0.04, 0.12) * w * s, rng.uniform(0.06, 0.2) * h * s
        if rng.random() < 0.5:
            d.rectangle([x, y - bh, x + bw, y], fill=_colour(rng), outline=outline, width=lw)
            d.polygon(
                [(x - bw * 0.1, y - bh), (x + bw / 2, y - bh * 1.5), (x + bw * 1.1, y - bh)],
                fill=_colour(rng),
                outline=outline,
                width=lw,
            )
            d.rectangle(
                [x + bw * 0.35, y - bh * 0.45, x + bw * 0.65, y],
                fill=_colour(rng, 0.3),
                outline=outline,
                width=max(1, lw // 2),
            )
        else:
            d.rectangle(
                [x + bw * 0.42, y - bh * 0.5, x + bw * 0.58, y], fill=(110, 70, 40), outline=outline, width=lw
            )
            d.ellipse([x, y - bh * 1.3, x + bw, y - bh * 0.4], fill=_colour(rng), outline=outline, width=lw)
    return np.asarray(im.resize((w, h), Image.LANCZOS))


def _pillow_vector(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Fallback for the SVG art without rsvg-convert: flat shapes drawn at 4x, downsampled."""
    return _cartoon(rng, w, h, supersample=4)


# --- gradient: wallpapers and AI-look portraits ------------------------------------------------------


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32) / np.float32(max(h, w))


def _wallpaper(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    yy, xx = _grid(h, w)
    c0, c1 = np.float32(_colour(rng, 0.5)), np.float32(_colour(rng, 0.5))
    ang = rng.uniform(0, 2 * np.pi)
    t = np.cos(ang) * xx + np.sin(ang) * yy
    t = (t - t.min()) / (t.max() - t.min())
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    for _ in range(int(rng.integers(3, 9))):
        cy, cx = rng.uniform(0, h / max(h, w)), rng.uniform(0, w / max(h, w))
        r = rng.uniform(0.05, 0.35)
        blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
        a = rng.uniform(0.3, 0.8)
        img = img * (1 - a * blob[..., None]) + np.float32(_colour(rng)) * (a * blob[..., None])
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# The soft edges are logistic curves: far from an edge exp() overflows to inf and the curve is exactly 0,
# as intended, so the overflow warning (printed on every run) is silenced; the pixels are unchanged.
@np.errstate(over="ignore")
def _portrait(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth, low-noise synthetic portrait: shaded head and shoulders over a bokeh background."""
    yy, xx = _grid(h, w)
    sy, sx = h / max(h, w), w / max(h, w)
    bg0, bg1 = np.float32(_colour(rng, 0.4)), np.float32(_colour(rng, 0.4))
    img = bg0 * (1 - yy[..., None] / sy) + bg1 * (yy[..., None] / sy)
    for _ in range(int(rng.integers(8, 20))):  # bokeh: soft discs
        cy, cx, r = rng.uniform(0, sy), rng.uniform(0, sx), rng.uniform(0.01, 0.05)
        disc = 1.0 / (1.0 + np.exp((np.hypot(yy - cy, xx - cx) - r) / 0.004))
        img += disc[..., None] * np.float32(rng.uniform(10, 50))
    cx, cy = sx * rng.uniform(0.35, 0.65), sy * rng.uniform(0.35, 0.5)
    ry, rx = 0.22 * sy, 0.16 * sy
    skin = np.float32(_colour(rng, 0.2)) * 0.3 + np.float32([225, 180, 150]) * 0.7
    # shoulders
    sh = 1.0 / (1.0 + np.exp(-((yy - (cy + 1.6 * ry)) / 0.01 - 4 * ((xx - cx) / (2.5 * rx)) ** 2)))
    cloth = np.float32(_colour(rng, 0.6))
    img = img * (1 - sh[..., None]) + cloth * sh[..., None] * (0.8 + 0.2 * (1 - yy[..., None] / sy))
    # head: an ellipse with soft edge, Lambertian shading from a light at upper left
    e = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    head = 1.0 / (1.0 + np.exp((e - 1.0) / 0.02))
    nz = np.sqrt(np.clip(1 - e, 0, 1))
    lx, ly = rng.uniform(-0.6, -0.2), rng.uniform(-0.6, -0.2)
    shade = np.clip(0.55 + 0.45 * (nz * 0.8 + lx * (xx - cx) / rx + ly * (yy - cy) / ry), 0.2, 1.1)
    img = img * (1 - head[..., None]) + (skin * shade[..., None]) * head[..., None]
    hair = np.float32(_colour(rng, 0.5)) * 0.5
    hm = head * (1.0 / (1.0 + np.exp((yy - (cy - 0.45 * ry)) / 0.01)))
    img = img * (1 - hm[..., None]) + hair * hm[..., None]
    for ex in (-0.38, 0.38):  # eyes and mouth: small dark soft ellipses
        eye = np.exp(
            -(((yy - (cy - 0.05 * ry)) / (0.05 * ry)) ** 2 + ((xx - cx - ex * rx) / (0.14 * rx)) ** 2)
        )
        img = img * (1 - 0.8 * eye[..., None]) + np.float32([40, 30, 30]) * 0.8 * eye[..., None]
    mouth = np.exp(-(((yy - (cy + 0.5 * ry)) / (0.04 * ry)) ** 2 + ((xx - cx) / (0.3 * rx)) ** 2))
    img = img * (1 - 0.6 * mouth[..., None]) + np.float32([170, 70, 80]) * 0.6 * mouth[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 1.2)  # generator-like softness
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --- text / UI ---------------------------------------------------------------------------------------------


_WORDS = [
    "settings",
    "profile",
    "upload",
    "image",
    "generate",
    "account",
    "billing",
    "export",
    "share",
    "dashboard",
    "analytics",
    "welcome",
    "back",
    "your",
    "project",
    "created",
    "ready",
    "download",
    "preview",
    "cancel",
    "continue",
    "search",
    "results",
    "model",
    "prompt",
    "seed",
    "steps",
    "guidance",
    "sampler",
    "quality",
    "private",
    "public",
    "team",
    "members",
    "invite",
]


def _font(rng: np.random.Generator, size: int) -> ImageFont.ImageFont:
    if _FONTS:
        return ImageFont.truetype(_FONTS[int(rng.integers(len(_FONTS)))], size)
    return ImageFont.load_default(size)


def _ui(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    dark = rng.random() < 0.35
    bg = (24, 26, 32) if dark else (246, 247, 250)
    fg = (230, 232, 238) if dark else (30, 32, 40)
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    accent = _colour(rng, 0.8)
    side = int(w * rng.uniform(0.12, 0.2))
    d.rectangle([0, 0, side, h], fill=(34, 37, 46) if dark else (230, 233, 240))
    d.rectangle([side, 0, w, int(h * 0.07)], fill=(30, 32, 40) if dark else (255, 255, 255))
    f = _font(rng, int(h * 0.022))
    for i in range(int(rng.integers(6, 12))):
        d.text(
            (int(side * 0.15), int(h * (0.12 + 0.06 * i))),
            " ".join(rng.choice(_WORDS, 2)).title(),
            font=f,
            fill=fg,
        )
    y = int(h * 0.1)
    while y < h * 0.9:
        x = side + int(w * 0.03)
        ch = int(h * rng.uniform(0.12, 0.28))
        cols = int(rng.integers(1, 4))
        cw = (w - x - int(w * 0.03)) // cols - int(w * 0.015)
        for _ in range(cols):
            card = (40, 44, 54) if dark else (255, 255, 255)
            d.rounded_rectangle(
                [x, y, x + cw, y + ch],
                radius=int(h * 0.012),
                fill=card,
                outline=(60, 64, 76) if dark else (220, 224, 232),
                width=2,
            )
            ft = _font(rng, int(h * rng.uniform(0.018, 0.03)))
            d.text((x + 20, y + 16), " ".join(rng.choice(_WORDS, 3)).capitalize(), font=ft, fill=fg)
            fs = _font(rng, int(h * 0.015))
            for li in range(int(rng.integers(1, 4))):
                d.text(
                    (x + 20, y + 16 + int(h * 0.04) + li * int(h * 0.025)),
                    " ".join(rng.choice(_WORDS, 7)),
                    font=fs,
                    fill=(150, 155, 165),
                )
            if rng.random() < 0.6:
                bx, by = x + 20, y + ch - int(h * 0.055)
                d.rounded_rectangle(
                    [bx, by, bx + int(w * 0.08), by + int(h * 0.04)], radius=int(h * 0.01), fill=accent
                )
                d.text((bx + 14, by + 8), str(rng.choice(_WORDS)).capitalize(), font=fs, fill=(255, 255, 255))
            x += cw + int(w * 0.015)
        y += ch + int(h * 0.03)
    return np.asarray(im)


def _poster(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A text poster: flat or gradient background, big headline, body text."""
    img = _wallpaper(rng, w, h) if rng.random() < 0.5 else np.full((h, w, 3), _colour(rng, 0.4), np.uint8)
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    fill = (255, 255, 255) if img.mean() < 128 else (20, 20, 24)
    big = _font(rng, int(min(w, h) * 0.09))
    d.text((int(w * 0.07), int(h * 0.12)), " ".join(rng.choice(_WORDS, 2)).upper(), font=big, fill=fill)
    body = _font(rng, int(min(w, h) * 0.025))
    for i in range(int(rng.integers(4, 10))):
        d.text(
            (int(w * 0.07), int(h * 0.35) + i * int(min(w, h) * 0.04)),
            " ".join(rng.choice(_WORDS, 9)),
            font=body,
            fill=fill,
        )
    return np.asarray(im)


# --- the corpus ---------------------------------------------------------------------------------------------


def make_image(cls: str, seed: int) -> np.ndarray:
    """The image of class ``cls`` for ``seed`` (RGB uint8), generated (not cached)."""
    rng = np.random.default_rng([_VERSION, CLASSES.index(cls), seed])
    w, h = _size(rng)
    if cls == "flat":
        if seed % 2 == 0:
            out = _render_svg(_svg(rng, w, h), w, h)
            return out if out is not None else _pillow_vector(rng, w, h)
        return _cartoon(rng, w, h)
    if cls == "gradient":
        return _wallpaper(rng, w, h) if seed % 2 == 0 else _portrait(rng, w, h)
    if cls == "text":
        return _ui(rng, w, h) if seed % 2 == 0 else _poster(rng, w, h)
    raise ValueError(f"unknown class {cls!r}")


def split(seed: int, per_class: int) -> str:
    """``"tune"`` for the first ``TUNE_FRACTION`` of a class's seeds, else ``"held-out"``."""
    return "tune" if seed < round(per_class * TUNE_FRACTION) else "held-out"


def load(cls: str, seed: int) -> np.ndarray:
    """The cached image (generated and cached on first use)."""
    path = CACHE / f"v{_VERSION}" / cls / f"{seed:03d}.png"
    if path.is_file():
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    img = make_image(cls, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, compress_level=1)
    return img


def corpus(
    per_class: int, classes: tuple[str, ...] = CLASSES, photos: bool = True, art: bool = False
) -> list[tuple[str, str, str, np.ndarray]]:
    """(class, split, name, RGB array) for ``per_class`` seeds of every class, then the photos, then
    (with ``art``) the real artwork of ``real_art.py``, class ``"art"``, all held out.

    Photos are split by position (every third photo is held out).
    """
    out = []
    for cls in classes:
        for seed in range(per_class):
            out.append((cls, split(seed, per_class), f"{cls}-{seed:03d}", load(cls, seed)))
    if photos:
        from watermark_common import corpus_images

        ph = corpus_images()
        for i, (name, img) in enumerate(ph):
            out.append(("photo", "tune" if i % 3 != 2 else "held-out", name, img))
    if art:
        from real_art import art_images

        out += [("art", "held-out", name, img) for name, img in art_images()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=20)
    args = ap.parse_args()
    for cls, part, name, img in corpus(args.per_class):
        print(f"{cls:9s} {part:8s} {name:24s} {img.shape[1]}x{img.shape[0]} mean {img.mean():5.1f}")
    print(f"cache: {CACHE}")


if __name__ == "__main__":
    main()
