"""Regenerate the derived samples (photo.png, speech.wav/.mp3/.flac, clip.mp4) from photo.jpg.

Run from the repository root: ``python samples/make_samples.py``. Needs espeak-ng
(Debian package ``espeak-ng``) for the speech; ffmpeg comes from imageio-ffmpeg.
The committed files were made with this script; re-running it gives equivalent
(not byte-identical) files, because encoders and espeak-ng versions vary.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import soundfile
from PIL import Image

HERE = Path(__file__).resolve().parent
TEXT = (
    "This short recording was made for the test samples of an open source toolkit. "
    "It reads and writes labels on generated media."
)


def main() -> None:
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    photo = Image.open(HERE / "photo.jpg")
    small = photo.resize((480, round(480 * photo.height / photo.width)), Image.Resampling.LANCZOS)
    small.save(HERE / "photo.png", optimize=True)
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(HERE / "speech.wav"), TEXT], check=True
    )
    subprocess.run(
        [ffmpeg, "-y", "-v", "error", "-i", str(HERE / "speech.wav"), "-c:a", "libmp3lame", "-b:a", "64k",
         "-metadata", "title=aigc-labeler sample speech", "-id3v2_version", "3", str(HERE / "speech.mp3")],
        check=True,
    )
    samples, rate = soundfile.read(HERE / "speech.wav", dtype="int16")
    soundfile.write(HERE / "speech.flac", samples, rate, subtype="PCM_16")
    # A 4 s 320x240 H.264 + AAC clip: a slow zoom over the photo with the speech as sound track.
    subprocess.run(
        [ffmpeg, "-y", "-v", "error", "-loop", "1", "-i", str(HERE / "photo.jpg"),
         "-i", str(HERE / "speech.wav"),
         "-filter_complex",
         "[0:v]scale=640:-2,zoompan=z='1+0.002*on':d=100:s=320x240:fps=25,format=yuv420p[v]",
         "-map", "[v]", "-map", "1:a", "-t", "4", "-c:v", "libx264", "-preset", "medium", "-crf", "26",
         "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart",
         "-metadata", "title=aigc-labeler sample clip",
         str(HERE / "clip.mp4")],
        check=True,
    )
    # The same clip as MKV (streams copied) and as WebM (VP9 + Opus), for the Matroska carrier and stages.
    subprocess.run([ffmpeg, "-y", "-v", "error", "-i", str(HERE / "clip.mp4"), "-map", "0", "-c", "copy",
                    "-metadata", "title=aigc-labeler sample clip", str(HERE / "clip.mkv")], check=True)
    subprocess.run([ffmpeg, "-y", "-v", "error", "-i", str(HERE / "clip.mp4"), "-map", "0",
                    "-c:v", "libvpx-vp9", "-crf", "36", "-b:v", "0", "-row-mt", "1", "-deadline", "good",
                    "-cpu-used", "4", "-c:a", "libopus", "-b:a", "32k",
                    "-metadata", "title=aigc-labeler sample clip", str(HERE / "clip.webm")], check=True)


if __name__ == "__main__":
    main()
