"""The image detector's lattice gate: the rescale / rotation search runs where a lattice shows (issue #17)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from test_watermark import KEY, PAYLOAD, photo_like

import detectors.watermark as wm
import detectors.watermark_gate as gate
from labeler.watermark import embed
from labeler.watermark.lattice_evidence import lattice_evidence, lattice_scores
from labeler.watermark.transforms import luma_fast, prefilter_parts


def _evidence(img: np.ndarray) -> float:
    """The gate's read: the half-resolution prefiltered image's lattice evidence."""
    z = prefilter_parts(luma_fast(img))
    return lattice_evidence(z.half, 0.38 * 64, 2.2 * 64)


def _rotated(img: np.ndarray, deg: float) -> np.ndarray:
    r = np.asarray(Image.fromarray(img).rotate(deg, Image.BICUBIC))
    m = int(np.ceil(np.sin(np.radians(abs(deg))) * max(img.shape[:2]))) + 2
    return r[m:-m, m:-m]


def _resized(img: np.ndarray, f: float) -> np.ndarray:
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((round(w * f), round(h * f)), Image.BICUBIC))


@pytest.mark.parametrize(("method", "attack"), [("dct", "rot2"), ("dwt", "x1.4"), ("dct", "x0.85")])
def test_marked_and_resampled_image_passes_the_gate_and_is_read(method: str, attack: str) -> None:
    """A mark rescaled or rotated on a >= 1024 px image scores far above LATTICE_MIN and is decoded."""
    img = photo_like(1300, 1500, seed=5)
    marked = embed(img, PAYLOAD, key=KEY, method=method)
    out = _rotated(marked, 2.0) if attack == "rot2" else _resized(marked, float(attack[1:]))
    assert min(out.shape[:2]) >= 1024
    assert _evidence(out) >= 2 * gate.LATTICE_MIN
    r = wm.detect(out, key=KEY)
    assert r.found and r.payload == PAYLOAD


def test_unmarked_large_image_skips_the_search_with_the_same_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unmarked 1080p photo-like image shows no lattice: no geometry search, and the p-value still
    counts every read the search could have made."""
    img = photo_like(1080, 1920, seed=3)
    assert _evidence(img) < gate.LATTICE_MIN

    def no_search(*args: object, **kw: object) -> None:
        raise AssertionError("the geometry search ran")

    monkeypatch.setattr(wm._Search, "geometry", no_search)
    r = wm.detect(img, key=KEY)
    assert not r.found and r.trials == 2 * 128 * 128 * (2 + wm.scale_tries(1080, 1920))


def test_small_images_are_always_searched() -> None:
    """Below 1024 px a side the evidence cannot tell: the gate lets the search run."""
    z = prefilter_parts(luma_fast(photo_like(700, 1500, seed=4)))
    assert gate.lattice_shows(z, 128)


def test_degenerate_lattice_is_not_resampled() -> None:
    """A singular lattice fit (collinear peaks) is skipped, not divided by (it raised ZeroDivisionError on
    a 306 x 128 crop of the false-positive benchmark)."""
    y = np.full((200, 300), 100, np.float32)
    assert wm._resample(y, np.array([[0.5, 0.5], [0.5, 0.5]])) is None
    assert wm._resample(y, np.zeros((2, 2))) is None


def _evidence_reference(z: np.ndarray, lo: float, hi: float) -> float:
    """lattice_evidence as first written: every lattice's 12 points gathered (those out of reach at lag 0
    and subtracted), float64 sums, the median and MAD by np.median."""
    from labeler.watermark.acf import whitened_acf
    from labeler.watermark.lattice import half_plane
    from labeler.watermark.lattice_evidence import _EVIDENCE_ANGLES, _EVIDENCE_REACH

    side = 512
    y0, x0 = (z.shape[0] - side) // 2, (z.shape[1] - side) // 2
    win = z[y0 : y0 + side, x0 : x0 + side]
    acf = cv2.dilate(whitened_acf(np.subtract(win, np.float32(win.mean()), dtype=np.float32)),
                     np.ones((3, 3), np.uint8))
    r = int(_EVIDENCE_REACH * side)
    region = np.concatenate([acf[: r + 1, : r + 1].ravel(), acf[side - r :, : r + 1].ravel()])[::13]
    med = float(np.median(region))
    mad = 1.4826 * float(np.median(np.abs(region - med))) + 1e-12
    periods = np.arange(lo, min(hi, _EVIDENCE_REACH * side), 0.25)
    m, n = half_plane(2)
    c, s = np.cos(_EVIDENCE_ANGLES), np.sin(_EVIDENCE_ANGLES)
    p = periods[None, :, None]
    dy = p * (c[None, None, :] * m[:, None, None] - s[None, None, :] * n[:, None, None])
    dx = p * (s[None, None, :] * m[:, None, None] + c[None, None, :] * n[:, None, None])
    ok = ((np.abs(dy) <= _EVIDENCE_REACH * side) & (np.abs(dx) <= _EVIDENCE_REACH * side)).reshape(m.size, -1)
    idx = (np.rint(dy).astype(np.int64) % side) * side + np.rint(dx).astype(np.int64) % side
    vals = np.where(ok, acf.ravel()[idx.reshape(m.size, -1)].astype(np.float64), 0.0)
    count = ok.sum(axis=0)
    score = (vals.sum(axis=0) - count * med) / (mad * np.sqrt(np.maximum(count, 1)))
    return float(np.where(count >= 2, score, -np.inf).max())


def test_lattice_evidence_equals_the_reference_reduction() -> None:
    """The grouped, de-duplicated gather (only points within reach, equal lattices once, float32 sums) and the
    one-partition median give the scores of the plain computation, unmarked and marked, at half and at full
    resolution."""
    img = photo_like(1200, 1300, seed=7)
    marked = _resized(embed(img, PAYLOAD, key=KEY, method="dct"), 0.9)
    for rgb in (img, marked):
        z = prefilter_parts(luma_fast(rgb))
        for win, lo, hi in ((z.half, 0.38 * 64, 2.2 * 64), (z.image(), 0.38 * 128, 2.2 * 128)):
            ref = _evidence_reference(win, lo, hi)
            assert abs(lattice_evidence(win, lo, hi) - ref) < 1e-4 * max(1.0, abs(ref))


def test_median_equals_numpy() -> None:
    """lattice_evidence._median (one single-index partition) is np.median, odd and even sizes, with ties."""
    from labeler.watermark.lattice_evidence import _median

    rng = np.random.default_rng(0)
    for size in (1, 2, 5, 8192, 8191):
        for _ in range(20):
            x = rng.standard_normal(size).astype(np.float32)
            x = np.round(x, 1) if size > 5 else x
            assert _median(x) == float(np.median(x))


def _dense_texture(h: int, w: int, seed: int) -> np.ndarray:
    """Grain-like texture over the whole picture (blurred Gaussian noise, RMS 40 levels): no flat area."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.3)
    grey = np.clip(128 + 40 * noise / noise.std(), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def test_dense_texture_is_searched_though_no_lattice_shows() -> None:
    """On dense texture a rescaled mark leaves no lattice evidence (the autocorrelation grows with the
    square of the mark's share of the local residual), yet the keyed search decodes it: the gate must
    not skip the search where its window is not mostly flat."""
    marked = embed(_dense_texture(1440, 2560, seed=6), PAYLOAD, key=KEY)
    out = _resized(marked, 0.75)
    z = prefilter_parts(luma_fast(out))
    assert _evidence(out) < gate.LATTICE_MIN and gate.dense_share(luma_fast(out)) >= gate.GATE_DENSE_SHARE
    assert gate.lattice_shows(z, 128)
    r = wm.detect(out, key=KEY)
    assert r.found and r.payload == PAYLOAD and r.scale != (1.0, 1.0)


def _illustration(seed: int) -> np.ndarray:
    """Flat vector-like art at 2560 x 1440 (fills with thick dark outlines, test_watermark_content's)."""
    from test_watermark_content import illustration

    return illustration(1440, 2560, seed=seed)


@pytest.mark.parametrize("seed", [3, 5])
def test_flat_art_outlines_do_not_open_the_gate(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The outlines of unmarked flat art lift the window-standardised evidence over LATTICE_MIN (their
    autocorrelation rings near the origin), but not the ring-standardised score: no search (it cost ~4-8x
    the image's decode on such pictures), and the p-value still counts every read it could have made."""
    img = _illustration(seed)
    z = prefilter_parts(luma_fast(img))
    scores = lattice_scores(z.half, 0.38 * 64, 2.2 * 64)
    assert scores.total >= 2 * gate.LATTICE_MIN and scores.ring_total < gate.LATTICE_RING_MIN / 2
    assert gate.dense_share(luma_fast(img)) < gate.GATE_DENSE_SHARE
    assert not gate.lattice_shows(z, 128)

    def no_search(*args: object, **kw: object) -> None:
        raise AssertionError("the geometry search ran")

    monkeypatch.setattr(wm._Search, "geometry", no_search)
    r = wm.detect(img, key=KEY)
    assert not r.found and r.trials == 2 * 128 * 128 * (2 + wm.scale_tries(1440, 2560))


@pytest.mark.parametrize(("factor", "turn"), [(0.75, 0.0), (1.0, 2.0)])
def test_rescaled_or_rotated_mark_on_flat_art_passes_both_scores(factor: float, turn: float) -> None:
    """A mark on the same art, rescaled or rotated, stands out of its rings: the gate opens and the
    search decodes it."""
    marked = embed(_illustration(4), PAYLOAD, key=KEY)
    out = _resized(marked, factor) if factor != 1.0 else _rotated(marked, turn)
    z = prefilter_parts(luma_fast(out))
    assert lattice_scores(z.half, 0.38 * 64, 2.2 * 64).ring_total >= 3 * gate.LATTICE_RING_MIN
    assert gate.lattice_shows(z, 128)
    r = wm.detect(out, key=KEY)
    assert r.found and r.payload == PAYLOAD


def test_ring_score_is_skipped_below_its_cut() -> None:
    """``ring_above``: the ring score is worked out only where the window-standardised one reaches it."""
    z = prefilter_parts(luma_fast(photo_like(1080, 1920, seed=3)))
    low = lattice_scores(z.half, 0.38 * 64, 2.2 * 64, ring_above=np.inf)
    both = lattice_scores(z.half, 0.38 * 64, 2.2 * 64)
    assert np.isnan(low.ring_total) and np.isfinite(both.ring_total) and low.total == both.total


def _text_page(size: int = 20, seed: int = 0) -> np.ndarray:
    """A 2560 x 1440 page of dark text lines on light ground (Pillow's default font at ``size`` px)."""
    from PIL import ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (2560, 1440), (250, 250, 250))
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size)
    words = ["label", "generated", "content", "image", "watermark", "verify", "report", "layer", "AIGC"]
    for y in range(20, 1440 - 30, int(size * 1.5)):
        draw.text((30, y), " ".join(rng.choice(words, 14)), fill=(20, 20, 20), font=font)
    return np.asarray(im)


def test_text_glyphs_are_not_dense_texture() -> None:
    """Glyph blocks are edges on flat ground (a flat quarter each), not texture: a text page's dense share
    stays under the cut (its flat share, under 0.75, still sends it to the search)."""
    y = luma_fast(_text_page(size=24))
    assert gate.dense_share(y) < gate.GATE_DENSE_SHARE
    assert gate.flat_share(prefilter_parts(y).weight) < gate.GATE_FLAT_SHARE


def _pixel_art(h: int, w: int, seed: int = 1, k: int = 8) -> np.ndarray:
    """Pixel art: an 8-colour field with sprites, upscaled k x by nearest neighbour (hard block edges)."""
    rng = np.random.default_rng(seed)
    sh, sw = h // k + 1, w // k + 1
    palette = rng.integers(0, 256, (8, 3))
    field = cv2.GaussianBlur(rng.normal(0, 1, (sh, sw)).astype(np.float32), (0, 0), 3)
    small = palette[np.digitize(field, np.quantile(field, np.linspace(0, 1, 9)[1:-1]))].astype(np.uint8)
    for _ in range(30):
        y, x = int(rng.integers(0, sh - 8)), int(rng.integers(0, sw - 8))
        small[y : y + 8, x : x + 8] = palette[rng.integers(0, 8, (8, 8))]
    return np.ascontiguousarray(np.repeat(np.repeat(small, k, 0), k, 1)[:h, :w])


def test_upscaled_pixel_art_is_searched_though_not_dense_texture() -> None:
    """Nearest-neighbour pixel art hides a rescaled mark's lattice (its block edges take most of the local
    residual) without being dense texture: its flat share sends it to the search, which decodes the mark.
    With the dense share alone (a few hours on 2026-12-07) the gate shut it out."""
    marked = embed(_pixel_art(810, 1440), PAYLOAD, key=KEY, method="dwt")
    out = codec_jpeg(_resized(marked, 1.3), 85)
    y = luma_fast(out)
    z = prefilter_parts(y)
    assert min(out.shape[:2]) >= 1024
    assert gate.dense_share(y) < gate.GATE_DENSE_SHARE and _evidence(out) < gate.LATTICE_MIN
    assert gate.flat_share(z.weight) < gate.GATE_FLAT_SHARE and gate.lattice_shows(z, 128)
    r = wm.detect(out, key=KEY)
    assert r.found and r.payload == PAYLOAD and r.scale != (1.0, 1.0)


def codec_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` through Pillow's JPEG encoder at ``quality`` and back."""
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def test_marked_text_page_rescaled_is_searched_and_read() -> None:
    """The same page marked and rescaled: the evidence opens the gate and the search decodes the mark."""
    out = _resized(embed(_text_page(), PAYLOAD, key=KEY), 0.8)
    z = prefilter_parts(luma_fast(out))
    assert gate.lattice_shows(z, 128)
    r = wm.detect(out, key=KEY)
    assert r.found and r.payload == PAYLOAD and r.scale != (1.0, 1.0)


def test_dense_share_of_texture_photo_and_text() -> None:
    """Dense grain is dense texture everywhere; a photo-like image and a text page hardly any."""
    assert gate.dense_share(luma_fast(_dense_texture(1080, 1920, seed=1))) > 0.9
    assert gate.dense_share(luma_fast(photo_like(1080, 1920, seed=3))) < gate.GATE_DENSE_SHARE
    assert gate.dense_share(luma_fast(_text_page())) < gate.GATE_DENSE_SHARE


def test_dense_share_reads_alternate_block_rows_of_the_window() -> None:
    """dense_share counts blocks textured in all four quarters (not an edge's), in the centred window, on
    every other row of blocks: a known layout gives a known share."""
    y = np.full((1200, 1200), 128, np.uint8)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (1024, 1024), dtype=np.uint8)
    y[88:1112, 88:1112] = np.where(np.arange(1024)[None, :] < 256, noise, 128)  # a quarter of the window
    assert abs(gate.dense_share(y) - 0.25) < 1e-9
    y[88:1112, 88:1112] = 128
    y[88:1112, 88::8] = 0  # an edge every 8 px: every block has an edge, but flat quarters
    assert gate.dense_share(y) == 0.0
    assert gate.dense_share(np.zeros((12, 400), np.uint8)) == 0.0  # not one row of blocks
