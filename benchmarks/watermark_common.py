"""Shared pieces of the watermark benchmarks: corpus loading, anchors, quality metrics.

The attacks (JPEG/WebP re-encode, resize, crop, rotation, blur, noise, ...) live in ``benchmarks/attacks.py``,
shared with the other benchmarks and the tests. The anchors are the PyPI packages
``invisible-watermark`` (module ``imwatermark``) and ``blind-watermark``, imported only here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus" / "images"
KEY = bytes.fromhex("6f1d3a5c2b7e9081a4c6e8f0123456789abcdef00112233445566778899aabbc")


def corpus_images(limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 array) for every corpus photo (grey ones converted to RGB); [] when absent."""
    if not CORPUS.is_dir():
        return []
    out = []
    for p in sorted(CORPUS.iterdir()):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
            with Image.open(p) as im:
                out.append((p.stem, np.asarray(im.convert("RGB"))))
    return out[:limit] if limit else out


def synthetic_photo(h: int = 1080, w: int = 1920, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image (smooth shading, edges, 1/f texture) for runs without the corpus."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w)) ** 1.1
    planes = []
    for _ in range(3):
        spec = amp * np.exp(2j * np.pi * rng.random(amp.shape))
        x = np.fft.irfft2(spec, s=(h, w))
        planes.append((x - x.mean()) / x.std())
    base = np.stack(planes, -1)
    img = 128 + 40 * base[..., :1] + 12 * base
    img[h // 3 : h // 2, w // 4 : w // 2] += 50  # a hard-edged object
    return np.clip(img, 0, 255).astype(np.uint8)


# --- quality -----------------------------------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all channels (8-bit peak)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma planes (Wang et al., IEEE TIP 13(4) 2004: Gaussian window sigma 1.5,
    K1 = 0.01, K2 = 0.03, L = 255)."""
    import cv2

    def gray(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        return x if x.ndim == 2 else x[..., :3] @ np.array([0.299, 0.587, 0.114])

    x, y = gray(a), gray(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(v: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(v, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


# --- anchors -----------------------------------------------------------------------------------------


class Anchor:
    """A PyPI watermarking package behind one interface: embed bits, extract bits (0/1 arrays)."""

    name = "anchor"
    bits = 32

    def embed(self, rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class InvisibleWatermark(Anchor):
    """``invisible-watermark`` (imwatermark), the library Stable Diffusion ships; BGR in, BGR out."""

    def __init__(self, method: str, bits: int = 32) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self.method, self.bits, self.name = method, bits, f"invisible-watermark {method}"
        self._enc, self._dec_cls = WatermarkEncoder(), WatermarkDecoder

    def embed(self, rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
        self._enc.set_watermark("bits", [int(b) for b in bits])
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        return np.ascontiguousarray(self._enc.encode(bgr, self.method)[..., ::-1])

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        dec = self._dec_cls("bits", self.bits)
        return np.asarray(dec.decode(np.ascontiguousarray(rgb[..., ::-1]), self.method), dtype=np.uint8)


class BlindWatermark(Anchor):
    """``blind-watermark`` (DWT + DCT + SVD), bits mode; single process."""

    def __init__(self, bits: int = 32) -> None:
        import importlib.util

        # The package is imported lazily (its import prints notes), so check here that it is there: a
        # missing one must be skipped by :func:`anchors`, not listed and then fail at every embed.
        if importlib.util.find_spec("blind_watermark") is None:
            raise ModuleNotFoundError("No module named 'blind_watermark'", name="blind_watermark")
        self.bits, self.name = bits, "blind-watermark"

    def _wm(self):  # noqa: ANN202 - third-party type
        import contextlib
        import os

        from blind_watermark import WaterMark, bw_notes

        with contextlib.suppress(Exception):
            bw_notes.close()
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            return WaterMark(password_img=1, password_wm=1, processes=1)

    def embed(self, rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
        wm = self._wm()
        wm.read_img(img=np.ascontiguousarray(rgb[..., ::-1]))
        wm.read_wm([bool(b) for b in bits], mode="bit")
        out = wm.embed()
        return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8)[..., ::-1])

    def extract(self, rgb: np.ndarray) -> np.ndarray:
        wm = self._wm()
        bits = wm.extract(embed_img=np.ascontiguousarray(rgb[..., ::-1]), wm_shape=self.bits, mode="bit")
        return (np.asarray(bits) > 0.5).astype(np.uint8)


def anchors(bits: int = 32) -> list[Anchor]:
    """The anchors that import; a missing package is skipped with a note on stderr."""
    out: list[Anchor] = []
    for make in (lambda: InvisibleWatermark("dwtDct", bits), lambda: InvisibleWatermark("dwtDctSvd", bits),
                 lambda: BlindWatermark(bits)):
        try:
            out.append(make())
        except Exception as exc:  # noqa: BLE001 - optional dependency of the benchmark only
            print(f"anchor unavailable: {exc}", file=sys.stderr)
    return out
