"""QA of the video watermark on hostile input (session 39): a source cut short in its soundtrack.

The watermark pass decodes the video stream with ``-xerror`` but copies the soundtrack. A file cut in
its last bytes (an interrupted download: the last bytes of an interleaved file are often audio) was
labeled with exit 0 and the soundtrack's end missing: ``watermark_video`` on an MP4 cut at 99.5 % wrote
44 of 45 AAC packets, and ``aigc label`` did the same for FLV and AVI, whose ends the label stage did
not check. Clips are made with ffmpeg inside the tests (320 x 240, 1 s).
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from labeler.errors import CorruptFile
from labeler.watermark import payload_from_produce_id
from labeler.watermark.video import watermark_video
from tests.conftest import run_ffmpeg, seeded_key_file

KEY = bytes(range(32))
PAYLOAD = payload_from_produce_id("qa-s39-video")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 1 s clip (H.264 + AAC) as a faststart MP4, an FLV and an AVI."""
    folder = tmp_path_factory.mktemp("qa_s39_cut")
    base = folder / "base.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-f", "lavfi",
               "-i", "sine=duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
               "-shortest", "-movflags", "+faststart", str(base))
    out = {".mp4": base}
    for suffix in (".flv", ".avi"):
        out[suffix] = folder / f"base{suffix}"
        run_ffmpeg("-i", str(base), "-c", "copy", str(out[suffix]))
    return out


def _cut(src: Path, dst: Path) -> Path:
    """``src`` without its last bytes: inside the last sample or tag (MP4: the ``mdat`` is last after
    faststart; FLV: half of the last tag, found from its PreviousTagSize; AVI: the index)."""
    data = src.read_bytes()
    if src.suffix == ".flv":
        last = struct.unpack(">I", data[-4:])[0] + 4
        keep = len(data) - last // 2
    else:
        keep = len(data) - 200
    dst.write_bytes(data[:keep])
    return dst


def _packets(path: Path, kind: str) -> int:
    """Packets of the first ``kind`` (``"a"``, ``"v"``) stream, as ffmpeg's demuxer reads them."""
    from tests.conftest import ffmpeg_exe

    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "verbose", "-i", str(path),
                           "-map", f"0:{kind}:0", "-c", "copy", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=60)
    found = re.findall(r"Input stream #0:\d+ \((?:audio|video)\): (\d+) packets read", done.stderr)
    assert found, done.stderr[-2000:]
    return int(found[0])


@pytest.mark.parametrize("suffix", [".mp4", ".flv", ".avi"])
def test_watermark_video_refuses_a_source_cut_in_its_soundtrack(clips: dict[str, Path], tmp_path: Path,
                                                                suffix: str) -> None:
    src = _cut(clips[suffix], tmp_path / f"cut{suffix}")
    before = src.read_bytes()
    dst = tmp_path / f"out{suffix}"
    with pytest.raises(CorruptFile, match="cut short") as info:
        watermark_video(src, dst, PAYLOAD, key=KEY)
    assert "\n" not in str(info.value)
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # no temporary file left
    assert src.read_bytes() == before


@pytest.mark.parametrize("suffix", [".flv", ".avi"])
def test_aigc_label_refuses_a_cut_flv_or_avi(clips: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    src = _cut(clips[suffix], tmp_path / f"cut{suffix}")
    key = seeded_key_file(tmp_path / "wm.key")
    dst = tmp_path / f"out{suffix}"
    done = subprocess.run([sys.executable, "-m", "labeler.cli", "label", "--layers", "watermark",
                           "--key-file", str(key), "--producer", "ACME", "--produce-id", "qa-s39",
                           str(src), str(dst)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut short" in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, key.name])


@pytest.mark.parametrize("suffix", [".mp4", ".flv", ".avi"])
def test_whole_sources_and_unknown_sizes_still_label(clips: dict[str, Path], tmp_path: Path,
                                                     suffix: str) -> None:
    """The check refuses only a cut: whole files label with every audio packet, and so does a file whose
    writer could not seek back to fill in its sizes (ffmpeg writing AVI or FLV to a pipe)."""
    src = clips[suffix]
    if suffix != ".mp4":  # written to a pipe: the AVI's RIFF size is left 0xFFFFFFFF
        piped = tmp_path / f"piped{suffix}"
        from tests.conftest import ffmpeg_exe

        with piped.open("wb") as out:
            subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(src), "-c", "copy",
                            "-f", suffix[1:], "pipe:1"], stdout=out, check=True, timeout=60)
        src = piped
    dst = tmp_path / f"out{suffix}"
    done = watermark_video(src, dst, PAYLOAD, key=KEY)
    assert done["watermark"]["frames"] == 25
    assert _packets(dst, "a") == _packets(src, "a") > 0
