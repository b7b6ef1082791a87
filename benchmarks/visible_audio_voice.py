"""Audio voice prompt: detection after MP3 128k / 64k at each position, and false alarms.

Usage::

    python benchmarks/visible_audio_voice.py           # corpus speech + music + samples/speech.wav
    python benchmarks/visible_audio_voice.py --quick   # samples/speech.wav only, fewer trials
    python benchmarks/visible_audio_voice.py --write   # also write the section into benchmarks/RESULTS.md

Positives: each language's prompt prepended, appended, and mixed in (programme ducked 10 dB) at
several offsets, at the matched level, each encoded to MP3 128k and 64k and decoded; found = one prompt
of the right language at the right position with its onset within 20 ms. Negatives: each whole file
(original, MP3 128k, 64k), and random 1.5-20 s excerpts of each, at a random gain of -30..+6 dB
(clipped), the original or its MP3. Prints the counts and the score extremes (docs/visible.md), the
coarse pass's margin (its lowest score at a found prompt, its highest on the negatives, how many negatives
reached exact scoring) and the detection's CPU time per second of audio (the decode and the MP3 round
trip not counted).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from attacks import mp3_round_trip  # noqa: E402

from detectors.visible import VOICE_THRESHOLD, detect_voice_prompt, voice  # noqa: E402
from detectors.visible.common import _COARSE_STEP, _analysis_geometry, _decimated, _mono_samples  # noqa: E402
from labeler.media.audio import read_audio  # noqa: E402
from labeler.visible.audio import loudness  # noqa: E402
from labeler.visible.voice_prompt import LANGUAGES, add_voice_prompt, voice_clip  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "audio"
CUT = min(voice._COARSE_THRESHOLD, VOICE_THRESHOLD)


def coarse_best(samples: np.ndarray, rate: int, language: str | None = None, onset: float = 0.0) -> float:
    """The coarse pass: best score for ``language`` within 30 ms of ``onset`` (s); without it, anywhere."""
    work, low_rate = _decimated(_mono_samples(samples, rate), float(rate))
    coarse = voice._coarse_pass(work, low_rate, rate, None)
    if language is None:
        return max(float(c.max(initial=0.0)) for c in coarse.values())
    i = round(onset / (_COARSE_STEP * _analysis_geometry(low_rate)[1] / low_rate))
    return float(coarse[language][max(0, i - 3):i + 4].max(initial=0.0))


class Tally:
    """What the positives and the negatives give, gathered over the files."""

    def __init__(self, bitrates: tuple[str, ...]) -> None:
        self.hits = {(b, w): [0, 0] for b in bitrates for w in ("start", "middle", "end")}
        self.worst_hit, self.best_miss, self.alarms, self.negatives, self.seconds = 1.0, 0.0, 0, 0, 0.0
        self.coarse_hit, self.coarse_miss, self.exact_negatives = 1.0, 0.0, 0
        self.detect_time: list[float] = []

    def timed(self, samples: np.ndarray, rate: int) -> voice.VoicePromptResult:
        """Run the detector, keeping its CPU time per second of audio."""
        started = time.process_time()
        r = detect_voice_prompt(samples, rate)
        self.detect_time.append((time.process_time() - started) / (len(samples) / rate))
        return r

    def table(self) -> str:
        lines = ["| set | result |", "|---|---|"]
        for (bitrate, where), (ok, total) in self.hits.items():
            lines.append(f"| MP3 {bitrate}, {where} (both languages) | {ok} / {total} found |")
        lines.append(f"| lowest positive score | {self.worst_hit:.3f} (threshold {VOICE_THRESHOLD}) |")
        lines.append(f"| unlabeled: whole files (clean, MP3 128k, 64k) and random excerpts x gain | "
                     f"**{self.alarms} / {self.negatives} false alarms** ({self.seconds / 60:.1f} min of "
                     f"audio), highest score {self.best_miss:.3f} |")
        lines.append(f"| coarse pass (cut {CUT}) | lowest at a found prompt {self.coarse_hit:.3f}; "
                     f"highest on the unlabeled {self.coarse_miss:.3f}, {self.exact_negatives} / "
                     f"{self.negatives} of them scored exactly |")
        per_second = 1000 * float(np.median(self.detect_time))
        lines.append(f"| detection time | median {per_second:.1f} ms CPU per second of audio (one thread) |")
        return "\n".join(lines)


def labeled_cases(x: np.ndarray, sr: int, language: str, offsets: int) -> list[tuple[np.ndarray, str, int]]:
    """``x`` with the prompt at the start, the end and ``offsets`` places in the middle: (samples, where,
    onset in samples)."""
    n = len(voice_clip(language, sr))
    gap = round(0.3 * sr)
    cases = [(add_voice_prompt(x, sr, language=language, where=("start",)), "start", 0),
             (add_voice_prompt(x, sr, language=language, where=("end",)), "end", len(x) + gap)]
    # "middle" = more than 2 s from either edge (the detector's rule); none fit in a short file.
    last = len(x) / sr - n / sr - 2.1
    target = loudness(x, sr)
    for off in np.linspace(2.1, last, offsets) if last > 2.1 else ():
        s = round(off * sr)
        y = x.copy()
        y[s:s + n] = add_voice_prompt(x[s:s + n], sr, language=language, where=("middle",), level=target)
        cases.append((y, "middle", s))
    return cases


def positives(tally: Tally, x: np.ndarray, sr: int, offsets: int, bitrates: tuple[str, ...]) -> None:
    for language in LANGUAGES:
        for y, where, onset in labeled_cases(x, sr, language, offsets):
            for bitrate in bitrates:
                decoded = mp3_round_trip(y, sr, bitrate)
                r = tally.timed(decoded, sr)
                ok = (r.present and len(r.prompts) == 1 and r.prompts[0][1] == where
                      and r.prompts[0][2] == language and abs(r.prompts[0][0] - onset / sr) < 0.02)
                tally.hits[bitrate, where][0] += ok
                tally.hits[bitrate, where][1] += 1
                tally.worst_hit = min(tally.worst_hit, r.score)
                if ok:
                    tally.coarse_hit = min(tally.coarse_hit, coarse_best(decoded, sr, language, onset / sr))


def negatives(tally: Tally, x: np.ndarray, sr: int, excerpts: int, bitrates: tuple[str, ...],
              rng: np.random.Generator) -> None:
    clean = [x] + [mp3_round_trip(x, sr, b) for b in bitrates]
    trials = list(clean)
    for _ in range(excerpts):
        length = int(rng.integers(round(1.5 * sr), round(20 * sr)))
        start = int(rng.integers(0, max(1, len(x) - length)))
        gain = 10 ** (rng.uniform(-30, 6) / 20)
        source = clean[int(rng.integers(0, len(clean)))]
        trials.append(np.clip(source[start:start + length] * gain, -1, 1))
    for t in trials:
        r = tally.timed(t, sr)
        coarse = coarse_best(t, sr)
        tally.coarse_miss = max(tally.coarse_miss, coarse)
        tally.exact_negatives += coarse >= CUT
        tally.negatives += 1
        tally.alarms += r.present
        tally.best_miss = max(tally.best_miss, r.score)
        tally.seconds += len(t) / sr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    files = [ROOT / "samples" / "speech.wav"]
    if not args.quick:
        files += [p for p in (CORPUS / "speech-en.wav", CORPUS / "music-piano.wav") if p.exists()]
    offsets, excerpts = (2, 6) if args.quick else (4, 40)
    bitrates = ("128k", "64k")
    rng = np.random.default_rng(7)
    tally = Tally(bitrates)
    for path in files:
        audio = read_audio(path)
        positives(tally, audio.samples, audio.sample_rate, offsets, bitrates)
        negatives(tally, audio.samples, audio.sample_rate, excerpts, bitrates, rng)
        print(f"{path.name}: done", flush=True)
    table = tally.table()
    print(table)
    if args.write:
        from results import write_section

        mode = " (--quick)" if args.quick else ""
        files_list = ", ".join(p.name for p in files)
        title = f"## Audio voice prompt (`benchmarks/visible_audio_voice.py{mode} --write`)"
        write_section("visible:voice", f"{title}\n\nFiles: {files_list}.\n\n{table}")


if __name__ == "__main__":
    main()
