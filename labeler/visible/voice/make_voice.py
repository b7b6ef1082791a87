"""Build the voice prompt clips ``prompt-zh.flac`` and ``prompt-en.flac`` with espeak-ng.

Run from the repository root (a build-time step; the clips are committed, so users never run it)::

    apt-get install -y espeak-ng          # Debian/Ubuntu; this was run with espeak-ng 1.51
    .venv/bin/python labeler/visible/voice/make_voice.py [--check]

For each language: espeak-ng renders the text (22.05 kHz, 16-bit mono WAV on stdout); leading and
trailing silence is cut to :data:`MARGIN_S` around the voiced part (frames of 10 ms within 40 dB of
the loudest); the clip is resampled to 16 kHz (:func:`labeler.visible.voice_prompt.resample`), set to
:data:`TARGET_LUFS` (BS.1770, :func:`labeler.visible.audio.loudness`) with its peak kept at or below
-1 dBFS, faded in and out over 10 ms, and written as 16-bit FLAC. It prints each clip's voiced
duration and, for Chinese, the speaking rate in characters per minute, which must lie in the digest's
120-160 (section 2); ``--check`` only prints those numbers for the committed clips.

Mandarin is read from **pinyin with tone numbers** by the ``cmn-latn-pinyin`` voice: the ``cmn`` voice
of espeak-ng 1.51 (Debian ``cmn_dict``) lacks 本, 内, 容, 由, 人, 工 and 能 and spells them as pinyin
plus an English tone digit ("ben three ..."), as ``espeak-ng -v cmn -x 本内容由人工智能生成`` shows.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from labeler.visible.audio import loudness  # noqa: E402
from labeler.visible.voice_prompt import VOICE_RATE, VOICE_TEXTS, resample  # noqa: E402

#: What espeak-ng is given, its voice and its rate (-s, words per minute in espeak's own units).
SOURCES = {
    "zh": ("cmn-latn-pinyin", 120, "ben3 nei4 rong2 you2 ren2 gong1 zhi4 neng2 sheng1 cheng2"),
    "en": ("en", 150, VOICE_TEXTS["en"]),
}
#: espeak-ng amplitude (-a, 0-200; default 100 clips its loudest vowels at full scale).
AMPLITUDE = 60
#: Silence kept before the first and after the last voiced frame (s).
MARGIN_S = 0.05
#: Loudness of the shipped clips (LUFS); the labeler re-levels them anyway.
TARGET_LUFS = -20.0
FADE_S = 0.01


def voiced_span(x: np.ndarray, rate: int) -> tuple[int, int]:
    """First and one-past-last sample of the 10 ms frames within 40 dB of the loudest frame."""
    frame = round(0.01 * rate)
    n = len(x) // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) + 1e-12
    on = np.flatnonzero(20 * np.log10(rms / rms.max()) > -40.0)
    return int(on[0] * frame), int((on[-1] + 1) * frame)


def render(language: str) -> np.ndarray:
    voice, speed, text = SOURCES[language]
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-a", str(AMPLITUDE), "--stdout", text],
        check=True, capture_output=True,
    ).stdout
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    start, stop = voiced_span(x, rate)
    margin = round(MARGIN_S * rate)
    x = x[max(0, start - margin):stop + margin]
    y = resample(x, rate, VOICE_RATE)
    gain = 10 ** ((TARGET_LUFS - loudness(y, VOICE_RATE)) / 20)
    gain = min(gain, 10 ** (-1 / 20) / float(np.abs(y).max()))
    y = y * gain
    fade = round(FADE_S * VOICE_RATE)
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)
    y[:fade] *= ramp
    y[-fade:] *= ramp[::-1]
    return y


def report(language: str, y: np.ndarray) -> str:
    start, stop = voiced_span(y, VOICE_RATE)
    voiced = (stop - start) / VOICE_RATE
    line = (f"prompt-{language}.flac: {len(y) / VOICE_RATE:.2f} s, voiced {voiced:.2f} s, "
            f"{loudness(y, VOICE_RATE):.1f} LUFS, peak {20 * np.log10(np.abs(y).max()):.1f} dBFS")
    if language == "zh":
        line += f", {len(VOICE_TEXTS['zh']) * 60 / voiced:.0f} characters/min"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only measure the committed clips")
    args = parser.parse_args()
    for language in SOURCES:
        path = HERE / f"prompt-{language}.flac"
        if args.check:
            y = sf.read(path, dtype="float32")[0]
        else:
            y = render(language)
            sf.write(path, y, VOICE_RATE, format="FLAC", subtype="PCM_16")
        print(f"{report(language, y)}; {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
