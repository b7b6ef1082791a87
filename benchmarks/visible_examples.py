"""Render the example pictures of docs/visible/ (one per position, plus the star field).

Run: ``.venv/bin/python benchmarks/visible_examples.py``. Labels are drawn at full resolution, then the
picture is scaled to 480 px wide and stored as a 64-colour PNG (small enough to commit).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from labeler.media import read_image
from labeler.visible import POSITIONS, add_image_label

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "visible"
CORPUS = ROOT.parent / "shared" / "corpus"


def save_small(pixels: np.ndarray, path: Path, width: int = 480) -> None:
    """Scale to ``width`` px (area filter) and save as an adaptive-palette PNG."""
    height = round(pixels.shape[0] * width / pixels.shape[1])
    small = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    Image.fromarray(small).quantize(64, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> None:
    # Parse the (empty) command line first: ``--help`` must not overwrite the committed pictures.
    argparse.ArgumentParser(description="Render the example pictures of docs/visible/.").parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    # Public domain photos: the corpus coffee cup (scikit-image) compresses far better than the star field.
    coffee = CORPUS / "images" / "skimage-coffee.png"
    photo = read_image(coffee if coffee.is_file() else ROOT / "samples" / "photo.jpg").pixels
    texts = dict(zip(POSITIONS, ("AI生成", "人工智能生成", "AI合成", "AI-generated", "本内容由人工智能生成",
                                 "人工智能合成"), strict=True))
    for position in POSITIONS:
        save_small(add_image_label(photo, texts[position], position=position), OUT / f"{position}.png")
    # The star field is dark everywhere: light text on a dark plate.
    stars = read_image(ROOT / "samples" / "photo.jpg").pixels
    save_small(add_image_label(stars), OUT / "stars-light-text.png")
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT), path.stat().st_size)


if __name__ == "__main__":
    main()
