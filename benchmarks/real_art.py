"""Real vector artwork, made by people, as a held-out content class for the image watermark benchmarks.

Usage::

    python benchmarks/real_art.py          # render (or reuse) the cache, print a summary

The generated classes of ``content_corpus.py`` were written and tuned on by this project; this class is
neither. It renders artwork that Debian ships, so a run needs the packages (``apt-get install
desktop-base tango-icon-theme librsvg2-bin``); without them the class is empty and the benchmarks skip it.

* ``wp-<theme>``: every desktop-base theme's 1920x1080 wallpaper (SVG: flat fills, soft gradients,
  vector shapes, dark night scenes), rendered at 1920x1080.
* ``login-<theme>``: the same themes' login backgrounds, rendered 2560 px wide (their own compositions;
  renders identical to one already taken are dropped: joy and joy-inksplat share one).
* ``tango-<n>``: sheets of Tango icons (gradient-shaded illustrations, public domain) rendered at 160-480 px
  and laid out on flat backgrounds: white, light grey, one mid colour, dark. Like a sticker sheet, an
  app store banner or a UI mock-up made of illustrations.

Every image is held out: none was looked at while the watermark was designed or tuned (first run
2026-12-06, after the strength model of 2026-12-05). Renders are cached as PNG under
``$AIGC_CONTENT_CORPUS/art`` (default ``/tmp/aigc-content-corpus/art``), outside git; the artwork keeps
its packages' licences (desktop-base: GPL-2+ and CC BY-SA artwork; Tango: public domain) and is not
redistributed by this project.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from content_corpus import CACHE, SIZES
from PIL import Image

DESKTOP_BASE = Path("/usr/share/desktop-base")
TANGO = Path("/usr/share/icons/Tango/scalable")
ART_CACHE = CACHE / "art"
#: Tango sheets made (seeds 0..TANGO_SHEETS-1).
TANGO_SHEETS = 6
_TANGO_DIRS = ("apps", "categories", "devices", "places", "mimetypes", "status", "emotes")
#: Sheet backgrounds: white, light grey, a mid Tango blue, Tango's dark "aluminium 6".
_BACKGROUNDS = ((255, 255, 255), (238, 238, 236), (114, 159, 207), (46, 52, 54))
_VERSION = 1  # bump when a recipe changes, so stale renders are not reused


def _rsvg(svg: Path, out: Path, width: int, height: int | None = None) -> bool:
    """Render ``svg`` to the PNG ``out`` with rsvg-convert (aspect kept when ``height`` is None)."""
    cmd = ["rsvg-convert", "-w", str(width)] + (["-h", str(height)] if height else []) + ["-o", str(out),
                                                                                      str(svg)]
    return subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0 and out.is_file()


def _wallpapers(folder: Path) -> list[Path]:
    """The rendered wallpapers and login backgrounds (cached), one per distinct picture."""
    out = []
    for theme in sorted(DESKTOP_BASE.glob("*-theme")):
        if theme.is_symlink():  # active-theme points at one of the others
            continue
        name = theme.name.removesuffix("-theme")
        for tag, svg, size in (("wp", theme / "wallpaper/contents/images/1920x1080.svg", (1920, 1080)),
                               ("login", theme / "login/background.svg", (2560, None))):
            png = folder / f"{tag}-{name}.png"
            if svg.is_file() and (png.is_file() or _rsvg(svg, png, *size)):
                out.append(png)
    return out


def _icons() -> list[Path]:
    """Tango's scalable icons that are files, not aliases, sorted."""
    return sorted(p for d in _TANGO_DIRS for p in (TANGO / d).glob("*.svg") if not p.is_symlink())


def _tango_sheet(seed: int, icons: list[Path], tmp: Path) -> np.ndarray:
    """One sheet of icons on a flat background, laid out on a jittered grid (RGB uint8)."""
    rng = np.random.default_rng([_VERSION, 7, seed])
    w, h = SIZES[seed % len(SIZES)]
    sheet = Image.new("RGBA", (w, h), _BACKGROUNDS[seed % len(_BACKGROUNDS)] + (255,))
    cell = int(rng.integers(260, 520))
    for gy in range(h // cell):
        for gx in range(w // cell):
            if rng.random() < 0.25:  # leave some cells empty, as a layout does
                continue
            side = int(cell * rng.uniform(0.55, 0.9))
            png = tmp / f"{seed}-{gy}-{gx}.png"
            if not _rsvg(icons[int(rng.integers(len(icons)))], png, side, side):
                continue
            with Image.open(png) as icon:
                x = gx * cell + int(rng.integers(0, cell - side + 1))
                y = gy * cell + int(rng.integers(0, cell - side + 1))
                sheet.alpha_composite(icon.convert("RGBA"), (x, y))
    return np.asarray(sheet.convert("RGB"))


def _tango_sheets(folder: Path) -> list[Path]:
    """The rendered Tango sheets (cached)."""
    icons = _icons()
    if not icons:
        return []
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(TANGO_SHEETS):
            png = folder / f"tango-{seed:03d}.png"
            if not png.is_file():
                Image.fromarray(_tango_sheet(seed, icons, Path(tmp))).save(png, compress_level=1)
            out.append(png)
    return out


def art_images() -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 array) of every real-art image, rendering what is not cached; [] without
    rsvg-convert or the Debian packages."""
    if shutil.which("rsvg-convert") is None:
        return []
    folder = ART_CACHE / f"v{_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    out, seen = [], set()
    for png in _wallpapers(folder) + _tango_sheets(folder):
        with Image.open(png) as im:
            img = np.asarray(im.convert("RGB"))
        digest = hashlib.sha256(img.tobytes()).digest()
        if digest not in seen:  # joy and joy-inksplat ship the same login background
            seen.add(digest)
            out.append((png.stem, img))
    return out


def main() -> None:
    # Parse the (empty) command line first: ``--help`` must not start rendering the cache.
    argparse.ArgumentParser(description="Render (or reuse) the real-art cache, print a summary.").parse_args()
    items = art_images()
    if not items:
        print("no real art: install desktop-base, tango-icon-theme and librsvg2-bin")
    for name, img in items:
        print(f"{name:28s} {img.shape[1]}x{img.shape[0]} mean {img.mean():5.1f}")
    print(f"cache: {ART_CACHE}")


if __name__ == "__main__":
    main()
