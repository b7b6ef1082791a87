"""Why the labeled video loses more PSNR than the mark's own energy (issue #15): a breakdown.

    nice -n 10 .venv/bin/python benchmarks/video_watermark_encoder_cost.py [--clips fast screen]
    nice -n 10 .venv/bin/python benchmarks/video_watermark_encoder_cost.py --moving-only --size 1920x1080

One second (``--seconds``) of a 720p (``--size``) clip (the fast pan and ``testsrc2`` of
``benchmarks/video_watermark.py``) is decoded to raw ``yuv420p``; the video mark
(:class:`labeler.watermark.video.VideoPattern`, the per-video budget) is added to the luma in NumPy,
and the plain and the marked frames are each encoded with x264 CRF 18 medium through the same pipe,
under x264 tool variants (mb-tree, adaptive quantisation, psy off) and mark variants (amplitude, zoom
i.e. spatial frequency, a sign that alternates every frame, a mark that moves with the picture's
global motion). Per row: mean luma PSNR of each against the source, the difference, and the mean
squared error split as ``marked = plain + mark + excess`` (levels^2): "excess" is what x264 adds on
top of the plain encode's error and the mark's energy. Bytes: marked / plain stream size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeler.media.ffmpeg import ffmpeg_exe  # noqa: E402
from labeler.watermark import _scheme, payload_from_produce_id  # noqa: E402
from labeler.watermark.video import VideoPattern, budget_strength, zoom_for  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "images"
W, H, N, FPS = 1280, 720, 30, 30
CLIPS = ("fast", "screen")


def _clip_args(name: str) -> list[str]:
    """ffmpeg input options of a clip at the current ``W`` x ``H`` (``--size``)."""
    if name == "screen":
        return ["-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={FPS}:d={N / FPS}", "-vf", "format=yuv420p"]
    return ["-loop", "1", "-framerate", str(FPS), "-t", str(N / FPS), "-i", str(CORPUS / "mate-LadyBird.jpg"),
            "-vf", f"scale={int(W * 1.6)}:-2,crop={W}:{H}:x='mod(t*700,iw-{W})':y='t*60',format=yuv420p"]
X264 = {"default": [], "mbtree=0": ["-x264-params", "mbtree=0"], "aq-mode=0": ["-x264-params", "aq-mode=0"],
        "psy=0": ["-x264-params", "psy=0"], "all three off": ["-x264-params", "mbtree=0:aq-mode=0:psy=0"]}


def _ff(args: list[str], data: bytes | None = None) -> bytes:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], input=data,
                          capture_output=True, check=True).stdout


def _encode_mse(frames: np.ndarray, src_y: np.ndarray, params: list[str]) -> tuple[np.ndarray, int]:
    """Per-frame luma MSE (levels^2) of ``frames`` after x264 CRF 18 medium, and the stream's bytes."""
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-"]
    out = _ff([*raw, "-c:v", "libx264", "-preset", "medium", "-crf", "18", *params, "-f", "h264", "-"],
              frames.tobytes())
    dec = _ff(["-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], out)
    y = np.frombuffer(dec, np.uint8).reshape(N, -1)[:, : W * H].astype(np.float32)
    return ((y - src_y) ** 2).mean(axis=1), len(out)


def _marked(src: np.ndarray, change: np.ndarray, alternate: bool) -> np.ndarray:
    out = src.copy()
    signs = np.where(np.arange(N) % 2 == 1, -1, 1) if alternate else np.ones(N, int)
    y = out[:, : W * H].reshape(N, H, W)
    y[:] = np.clip(y.astype(np.int16) + signs[:, None, None] * change[None], 0, 255)
    return out


def _global_shifts(src: np.ndarray) -> list[tuple[int, int]]:
    """Cumulative global motion of the picture, (dy, dx) pixels per frame from frame 0, rounded: phase
    correlation of consecutive luma frames (what an embedder could measure as it streams)."""
    ys = src[:, : W * H].reshape(N, H, W).astype(np.float32)
    cy = cx = 0.0
    out = [(0, 0)]
    for a, b in zip(ys[:-1], ys[1:], strict=True):
        (dx, dy), _ = cv2.phaseCorrelate(a, b)
        cy, cx = cy + dy, cx + dx
        out.append((round(cy), round(cx)))
    return out


def _moving(src: np.ndarray, strength: float, payload: bytes, key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Frames with the mark carried along by the picture's global motion (mark at frame t = P(x - c_t)),
    so x264's motion compensation predicts it from the previous frame; and frame 0's change."""
    zoom = zoom_for(H, W)
    period = _scheme("dwt").tile_px * zoom
    big = VideoPattern.build(H + period, W + period, payload, key, strength=strength, zoom=zoom).rounded
    out = src.copy()
    y = out[:, : W * H].reshape(N, H, W)
    for t, (cy, cx) in enumerate(_global_shifts(src)):
        oy, ox = (-cy) % period, (-cx) % period
        y[t] = np.clip(y[t].astype(np.int16) + big[oy : oy + H, ox : ox + W], 0, 255)
    return out, big[:H, :W]


def _psnr(mse: np.ndarray) -> float:
    return float(np.mean(10 * np.log10(255.0**2 / mse)))


def breakdown(name: str, moving_only: bool = False, source_crf: int | None = None) -> list[str]:
    """Markdown rows for one clip: x264 variants at the budget, then mark variants with x264 default.

    ``source_crf``: the source is the clip after x264 at this CRF (veryfast), decoded, as the sources
    of ``benchmarks/video_watermark.py`` are (CRF 16), instead of the filter's raw frames.
    """
    raw = _ff([*_clip_args(name), "-frames:v", str(N), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
    if source_crf is not None:
        raw_in = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-"]
        coded = _ff([*raw_in, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(source_crf), "-f", "h264",
                     "-"], raw)
        raw = _ff(["-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], coded)
    src = np.frombuffer(raw, np.uint8).reshape(N, -1)
    src_y = src[:, : W * H].astype(np.float32)
    budget = budget_strength(src[0, : W * H].reshape(H, W).copy())
    payload, key = payload_from_produce_id("encoder-cost"), bytes(range(32))
    rows: list[str] = []
    plain_cache: dict[tuple[str, ...], tuple[np.ndarray, int]] = {}

    def row(label: str, params: list[str], strength: float, zoom: int | None, alternate: bool,
            moving: bool = False) -> None:
        if moving:
            frames, change = _moving(src, strength, payload, key)
        else:
            change = VideoPattern.build(H, W, payload, key, strength=strength, zoom=zoom).rounded
            frames = _marked(src, change, alternate)
        if tuple(params) not in plain_cache:
            plain_cache[tuple(params)] = _encode_mse(src, src_y, params)
        mse_p, b_p = plain_cache[tuple(params)]
        mse_m, b_m = _encode_mse(frames, src_y, params)
        mark = float(np.mean(change.astype(np.float32) ** 2))
        excess = float(mse_m.mean() - mse_p.mean()) - mark
        p_plain, p_marked = _psnr(mse_p), _psnr(mse_m)
        rows.append(f"| {name} | {label} | {float(np.sqrt(mark)):.2f} | {p_plain:.2f} | {p_marked:.2f} | "
                    f"{p_marked - p_plain:+.2f} | {mse_p.mean():.2f} + {mark:.2f} + {excess:.2f} | "
                    f"{b_m / b_p:.2f} |")
        print(rows[-1], flush=True)

    if not moving_only:
        for label, params in X264.items():
            row(f"x264 {label}", params, budget, None, False)
        for s in (0.5, 0.35):
            row(f"amplitude {s}", [], s, None, False)
        row("zoom 1 (2x the spatial frequency)", [], budget, 1, False)
        row("zoom 3 (lower frequency)", [], budget, 3, False)
        row("sign alternating every frame", [], budget, None, True)
    else:
        row("x264 default (static mark)", [], budget, None, False)
    row("mark moving with the picture", [], budget, None, False, moving=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", choices=sorted(CLIPS), default=["fast", "screen"])
    ap.add_argument("--moving-only", action="store_true",
                    help="only the static mark and the mark moving with the picture (x264 default)")
    ap.add_argument("--size", default="1280x720", help="frame size WxH (default 1280x720)")
    ap.add_argument("--seconds", type=float, default=1.0, help="clip length (default 1 s)")
    ap.add_argument("--source-crf", type=int, default=None,
                    help="use the clip after x264 at this CRF as the source (the label benchmark's is 16)")
    args = ap.parse_args()
    global W, H, N
    W, H = (int(v) for v in args.size.split("x"))
    N = round(args.seconds * FPS)
    print("| clip | variant | mark RMS | plain dB | marked dB | diff | MSE plain + mark + excess | bytes x |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.clips:
        breakdown(name, args.moving_only, args.source_crf)


if __name__ == "__main__":
    main()
