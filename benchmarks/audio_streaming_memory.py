"""Peak memory of streaming the audio watermark through a long file (issue 14: a 1-hour podcast must
not need its whole decoded PCM in memory).

Usage::

    python benchmarks/audio_streaming_memory.py [minutes] [detect minutes]    # default 60 and 5

Generates 44.1 kHz stereo in 1 s blocks (pink-ish noise with a level envelope and a tone, made per
block, never the whole file), pushes them through ``embed_audio_blocks`` and drops the output, then
feeds *unmarked* blocks to ``AudioDetector`` (the worst case: no window decodes, every one is read).
Peak memory is NumPy's traced allocations (``tracemalloc``; NumPy reports its buffers to it), so the
interpreter and the imported modules do not count; the whole file as float32 PCM is given for scale.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from detectors.watermark_audio import AudioDetector
from labeler.watermark.audio import embed_audio_blocks

FS = 44100
KEY = b"benchmark-audio-key-0123456789ab"


def blocks(seconds: int, seed: int):
    """1 s float32 (FS, 2) blocks of a speech-like level envelope over filtered noise plus a tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(FS) / FS
    for i in range(seconds):
        w = np.cumsum(rng.normal(0, 1, (FS, 2)), axis=0)
        w -= np.linspace(w[0], w[-1], FS)  # no drift across the block
        env = 0.5 + 0.5 * np.sin(2 * np.pi * (1.5 * t + rng.random()))
        x = 0.002 * w * env[:, None] + 0.05 * np.sin(2 * np.pi * 220 * (1 + i % 7 / 10) * t)[:, None]
        yield x.astype(np.float32)


def main() -> None:
    # argparse, so that ``--help`` prints the usage instead of a ValueError traceback from float().
    ap = argparse.ArgumentParser(description="Peak memory of streaming the audio watermark through a file.")
    ap.add_argument("minutes", nargs="?", type=float, default=60.0, help="minutes to embed [default: 60]")
    ap.add_argument("det_minutes", nargs="?", type=float, default=5.0,
                    help="unmarked minutes to detect [default: 5]")
    args = ap.parse_args()
    minutes, det_minutes = args.minutes, args.det_minutes
    n = int(minutes * 60)
    tracemalloc.start()
    c0 = time.process_time()
    total = 0
    for out in embed_audio_blocks(blocks(n, 1), FS, 2, bytes(8), key=KEY):
        total += out.shape[0]
    _, peak_e = tracemalloc.get_traced_memory()
    ce = time.process_time() - c0
    tracemalloc.reset_peak()
    c0 = time.process_time()
    det = AudioDetector(FS, key=KEY)
    for b in blocks(int(det_minutes * 60), 2):
        if det.push(b) is not None:
            break
    r = det.result()
    _, peak_d = tracemalloc.get_traced_memory()
    cd = time.process_time() - c0
    whole = n * FS * 2 * 4 / 2 ** 20
    print(f"embed {minutes:g} min 44.1 kHz stereo in 1 s blocks: {total / FS / 60:.1f} min out, "
          f"peak traced {peak_e / 2 ** 20:.1f} MiB (whole file as float32: {whole:.0f} MiB), "
          f"{ce:.0f} s CPU incl. generating")
    print(f"detect {det_minutes:g} min unmarked, streaming: found={r.found}, peak traced "
          f"{peak_d / 2 ** 20:.1f} MiB, {cd:.0f} s CPU incl. generating")


if __name__ == "__main__":
    main()
