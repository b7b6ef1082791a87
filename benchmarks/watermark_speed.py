"""Watermark throughput, single thread: embed and detect beside Pillow JPEG encode/decode and the anchors.

Usage::

    python benchmarks/watermark_speed.py            # 512x512 to 7680x4320; anchors up to 4K; 7 repeats
    python benchmarks/watermark_speed.py --quick    # same sizes, 3 repeats, anchors only at 1920x1080
    python benchmarks/watermark_speed.py --write    # also write the table into RESULTS.md

Single thread: BLAS/OpenMP thread counts are set to 1 before numpy loads and ``cv2.setNumThreads(1)``.
Times are medians of in-process calls on a photo-like image (a corpus photo resized, or a synthetic
one). Embed is the default (``strength=None``: the per-image budget; for ``dct`` that is a ``dct`` mark in
texture plus a ``dwt`` mark in smooth areas). Every detect is ``method=None`` (both methods, what
``verify`` does; a budget ``dct`` mark may be read by its ``dwt`` share). "detect" reads a marked image
as embedded (offset search included: it is one FFT); "detect, scale search" reads a 0.75x-resized copy,
which fails at scale 1 and runs the rescale search; "detect, unmarked" is the worst case (every attempt
of both methods fails; "unmarked / dec" is the ratio issue #17 budgets). JPEG: Pillow quality 90, 4:2:0.

On a shared machine use ``--cpu`` (process CPU time instead of wall time, pinned to one core) and
``--sizes`` to pick sizes, e.g. ``--cpu --no-anchors --sizes 1080x1920,1440x2560 --quick``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from attacks import resize  # noqa: E402
from PIL import Image  # noqa: E402
from results import write_section  # noqa: E402
from watermark_common import KEY, anchors, corpus_images, synthetic_photo  # noqa: E402

from detectors.watermark import detect  # noqa: E402
from labeler.watermark import embed  # noqa: E402

SIZES = [(512, 512), (1080, 1920), (2160, 3840), (4320, 7680)]
PAYLOAD = bytes.fromhex("0011223344556677")


#: The clock :func:`timeit` reads: wall time, or process CPU time with ``--cpu``.
CLOCK: list[Callable[[], float]] = [time.perf_counter]


def timeit(fn: Callable[[], object], repeats: int) -> float:
    """Median time in ms (wall, or CPU with ``--cpu``; one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = CLOCK[0]()
        fn()
        times.append(CLOCK[0]() - t0)
    return 1e3 * statistics.median(times)


def _steady_allocator() -> None:
    """Fix glibc's mmap and trim thresholds (256 / 512 MiB), as ``benchmarks/verify_throughput.py`` does:
    freed arrays are reused instead of re-faulted, the steady state of a long-running worker (without it
    one 1080p decode measured 11 or 30 ms depending on what ran before)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD


def test_image(h: int, w: int, content: str | None = None) -> np.ndarray:
    if content:  # a generated image of benchmarks/content_corpus.py (flat, gradient, text)
        from content_corpus import load

        return np.asarray(Image.fromarray(load(content, 0)).resize((w, h), Image.LANCZOS))
    photos = corpus_images()
    if photos:
        big = max(photos, key=lambda p: p[1].size)[1]
        return np.asarray(Image.fromarray(big).resize((w, h), Image.LANCZOS))
    return synthetic_photo(h, w)


def _measure(h: int, w: int, content: str | None, repeats: int, anchor_list: list, quick: bool) -> dict:
    """Times (ms) of JPEG encode/decode, our embed/detect per method and the anchors at one size."""
    img = test_image(h, w, content)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    data = buf.getvalue()

    def enc(img: np.ndarray = img) -> None:
        Image.fromarray(img).save(io.BytesIO(), "JPEG", quality=90)

    def dec(data: bytes = data) -> None:
        with Image.open(io.BytesIO(data)) as im:
            np.asarray(im.convert("RGB"))

    row: dict = {"size": f"{w}x{h}", "jpeg_enc": timeit(enc, repeats), "jpeg_dec": timeit(dec, repeats)}
    for method in ("dct", "dwt"):
        marked = embed(img, PAYLOAD, key=KEY, method=method)
        scaled = resize(0.75)(marked, None)
        row[f"{method}_embed"] = timeit(
            lambda m=method, i=img: embed(i, PAYLOAD, key=KEY, method=m), repeats)
        row[f"{method}_detect"] = timeit(lambda x=marked: detect(x, key=KEY), repeats)
        row[f"{method}_scale"] = timeit(lambda x=scaled: detect(x, key=KEY), repeats)
        row[f"{method}_unmarked"] = timeit(lambda i=img: detect(i, key=KEY), repeats)
    for a in anchor_list:
        if (quick and (h, w) != (1080, 1920)) or h * w > 9_000_000:  # anchors: minutes at 8K
            continue
        bits = np.random.default_rng(0).integers(0, 2, a.bits).astype(np.uint8)
        try:
            marked = a.embed(img, bits)
            row[f"{a.name}_embed"] = timeit(
                lambda a=a, b=bits, i=img: a.embed(i, b), max(1, repeats // 2))
            row[f"{a.name}_detect"] = timeit(lambda a=a, x=marked: a.extract(x), max(1, repeats // 2))
        except Exception as exc:  # noqa: BLE001 - report, do not abort the run
            print(f"{a.name} failed at {w}x{h}: {exc}")
    return row


def _tables(rows: list[tuple[float, dict]], anchor_list: list, cpu: bool) -> str:
    """The Markdown tables of the run: ours per size and method, then the anchors."""
    lines = [("CPU m" if cpu else "M") + "illiseconds, single thread, median. Ratios are to Pillow JPEG "
             "q90 encode (embed) and decode (detect) of the same image.", "",
             "| size | JPEG enc | JPEG dec | method | embed | detect | detect, 0.75x (scale search) | "
             "detect, unmarked | embed / enc | detect / dec | unmarked / dec | embed MP/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for mp, r in rows:
        for m in ("dct", "dwt"):
            lines.append(
                f"| {r['size']} | {r['jpeg_enc']:.1f} | {r['jpeg_dec']:.1f} | {m} | {r[m + '_embed']:.1f} | "
                f"{r[m + '_detect']:.1f} | {r[m + '_scale']:.1f} | {r[m + '_unmarked']:.1f} | "
                f"{r[m + '_embed'] / r['jpeg_enc']:.2f} | {r[m + '_detect'] / r['jpeg_dec']:.2f} | "
                f"{r[m + '_unmarked'] / r['jpeg_dec']:.2f} | {mp / r[m + '_embed'] * 1e3:.0f} |")
    if anchor_list:
        lines += ["", "Anchors (32 bits; PyPI packages, same images):", "",
                  "| size | system | embed ms | decode ms | our dct embed speed-up | "
                  "our dct detect speed-up |",
                  "|---|---|---|---|---|---|"]
        for _, r in rows:
            for a in anchor_list:
                if f"{a.name}_embed" in r:
                    e, d = r[f"{a.name}_embed"], r[f"{a.name}_detect"]
                    lines.append(f"| {r['size']} | {a.name} | {e:.1f} | {d:.1f} | "
                                 f"{e / r['dct_embed']:.1f}x | {d / r['dct_detect']:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--no-anchors", action="store_true")
    ap.add_argument("--content", default=None, help="a generated class (flat, gradient, text): 1080p only")
    ap.add_argument("--section", default="watermark:speed")
    ap.add_argument("--cpu", action="store_true", help="CPU time on one pinned core (shared machines)")
    ap.add_argument("--sizes", default=None, help="HxW,HxW,... instead of 512x512 to 7680x4320")
    args = ap.parse_args()
    _steady_allocator()
    cv2.setNumThreads(1)
    if args.cpu:
        CLOCK[0] = time.process_time
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")] if args.sizes else SIZES
    repeats = 3 if args.quick else 7
    anchor_list = [] if args.no_anchors else anchors(32)
    rows = []
    for h, w in ([(1080, 1920)] if args.content else sizes):
        row = _measure(h, w, args.content, repeats, anchor_list, args.quick)
        rows.append((h * w / 1e6, row))
        print(row, flush=True)
    text = _tables(rows, anchor_list, args.cpu)
    print(text)
    if args.write:
        write_section(args.section, (f"Image: generated `{args.content}` seed 0, resized.\n\n" if args.content
                                     else "") + text)


if __name__ == "__main__":
    main()
