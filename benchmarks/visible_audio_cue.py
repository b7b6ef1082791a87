"""Audio rhythm cue: detection after MP3 128 kbit/s, and false alarms on unlabeled audio.

Usage::

    python benchmarks/visible_audio_cue.py           # corpus speech + music + samples/speech.wav
    python benchmarks/visible_audio_cue.py --quick   # samples/speech.wav only, 3 mixed-in offsets

Positives: the cue prepended, appended, and mixed in at several offsets, at the matched level and at a
forced -30 dBFS, each encoded to MP3 128k and decoded back. Negatives: each whole file (original and
MP3) and 40 random 1.5-8 s excerpts of each. Prints the counts (the numbers in docs/visible.md), the
coarse pass's margin (its lowest score at a found cue, its highest on the negatives, how many negatives
reached exact scoring) and the detection's CPU time per second of audio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attacks import mp3_round_trip  # noqa: E402

from detectors.visible import AUDIO_CUE_THRESHOLD, audio_cue, detect_audio_cue  # noqa: E402
from detectors.visible.common import (  # noqa: E402
    _COARSE_STEP,
    _analysis_geometry,
    _decimated,
    _mono_samples,
)
from labeler.media.audio import read_audio  # noqa: E402
from labeler.visible.audio import _matched_level, add_audio_cue, cue_length  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "audio"
CUT = audio_cue._COARSE_SHARE * AUDIO_CUE_THRESHOLD


def coarse_best(samples: np.ndarray, rate: int, onset: float | None = None) -> float:
    """The detector's coarse pass: its best score within 30 ms of ``onset`` (s), or anywhere."""
    work, low_rate = _decimated(_mono_samples(samples, rate), float(rate))
    coarse = audio_cue._coarse_pass(work, low_rate, None, *audio_cue.AUDIO_CUE_SEARCH_HZ)
    if onset is None:
        return float(coarse.max(initial=0.0))
    i = round(onset / (_COARSE_STEP * _analysis_geometry(low_rate)[1] / low_rate))
    return float(coarse[max(0, i - 3):i + 4].max(initial=0.0))


def timed(samples: np.ndarray, rate: int, per_second: list[float]) -> audio_cue.AudioCueResult:
    """``detect_audio_cue``, its CPU time per second of audio appended to ``per_second``."""
    started = time.process_time()
    result = detect_audio_cue(samples, rate)
    per_second.append((time.process_time() - started) / (len(samples) / rate))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    files = [ROOT / "samples" / "speech.wav"]
    if not args.quick:
        files += [p for p in (CORPUS / "speech-en.wav", CORPUS / "music-piano.wav") if p.exists()]
    offsets, excerpts = (3, 10) if args.quick else (10, 40)
    rng = np.random.default_rng(1)
    found = positives = alarms = negatives = exact_negatives = 0
    worst_hit, best_miss, coarse_hit, coarse_miss = 1.0, 0.0, 1.0, 0.0
    per_second: list[float] = []
    for path in files:
        audio = read_audio(path)
        x, sr = audio.samples, audio.sample_rate
        n = cue_length(sr)
        for level in ("match", -30.0):
            cases = []
            for where in ("start", "end"):
                y = add_audio_cue(x, sr, where=(where,), level=level)
                cases.append((y, where, 0.0 if where == "start" else (len(y) - n) / sr))
            mixed_level = _matched_level(x, sr, 880.0) if level == "match" else level
            silence = np.zeros((n, x.shape[1]), np.float32)
            cue = add_audio_cue(silence, sr, where=("middle",), level=mixed_level)
            for off in np.linspace(2.5, len(x) / sr - 3.7, offsets):
                y = x.copy()
                s = round(off * sr)
                y[s:s + n] = np.clip(y[s:s + n] + cue, -1, 1)
                cases.append((y, "middle", s / sr))
            for y, where, onset in cases:
                decoded = mp3_round_trip(y, sr)
                r = timed(decoded, sr, per_second)
                one = r.present and len(r.cues) == 1
                ok = one and r.cues[0][1] == where and abs(r.cues[0][0] - onset) < 0.05
                positives += 1
                found += ok
                worst_hit = min(worst_hit, r.score)
                if ok:
                    coarse_hit = min(coarse_hit, coarse_best(decoded, sr, onset))
        clean = [x, mp3_round_trip(x, sr)]
        for _ in range(excerpts):
            length = int(rng.integers(round(1.5 * sr), round(8 * sr)))
            start = int(rng.integers(0, max(1, len(x) - length)))
            clean += [clean[0][start:start + length], clean[1][start:start + length]]
        for t in clean:
            r = timed(t, sr, per_second)
            negatives += 1
            alarms += r.present
            best_miss = max(best_miss, r.score)
            coarse = coarse_best(t, sr)
            coarse_miss = max(coarse_miss, coarse)
            exact_negatives += coarse >= CUT
        print(f"{path.name}: done", flush=True)
    print(f"found {found}/{positives} (lowest score {worst_hit:.3f}); "
          f"false alarms {alarms}/{negatives} (highest score {best_miss:.3f})")
    print(f"coarse pass (cut {CUT:.2f}): lowest at a found cue {coarse_hit:.3f}; highest on negatives "
          f"{coarse_miss:.3f}, {exact_negatives}/{negatives} negatives scored exactly; "
          f"detection CPU median {1000 * float(np.median(per_second)):.1f} ms per second of audio")


if __name__ == "__main__":
    main()
