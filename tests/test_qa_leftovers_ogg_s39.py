"""A damaged Ogg page is an error, not a silently shorter (or concealed) read (QA, December 2026).

libsndfile drops a page that fails its CRC check without a word: a Vorbis stream read a second short
(the rest moved up), an Opus one came out full length with the gap concealed. ``aigc label`` with a
layer that re-encodes the samples then wrote a copy lacking part of the sound, exit 0.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from conftest import PRODUCER, ffmpeg_exe, run_cli

from detectors import verify
from labeler.media.audio import read_audio
from labeler.watermark.keyfile import write_key_file

CODECS = {"vorbis": ("libvorbis", ".ogg"), "opus": ("libopus", ".opus")}


def _make(folder: Path, codec: str) -> Path:
    """6 s of a rising tone over noise (not a steady tone, which a decoder's concealment rebuilds)."""
    encoder, ext = CODECS[codec]
    path = folder / f"speechlike{ext}"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "aevalsrc='0.3*sin(2*PI*(200+80*t)*t)+0.05*(random(0)-0.5)':s=48000:d=6",
                    "-c:a", encoder, "-page_duration", "200000", str(path)],
                   check=True, capture_output=True)
    return path


def _pages(data: bytes) -> list[int]:
    starts, at = [], data.find(b"OggS")
    while at >= 0:
        starts.append(at)
        at = data.find(b"OggS", at + 4)
    return starts


def _damaged(src: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    starts = _pages(bytes(data))
    assert len(starts) > 8
    mid = starts[len(starts) // 2]
    if how == "crc":
        body = mid + 27 + data[mid + 26]  # past the header and the segment table
        data[body + 10:body + 20] = bytes(b ^ 0xFF for b in data[body + 10:body + 20])
    else:  # a whole page gone: every CRC passes, the sequence numbers jump
        del data[mid:starts[len(starts) // 2 + 1]]
    out = src.with_name(f"{how}-{src.name}")
    out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module", params=sorted(CODECS))
def source(request, tmp_path_factory) -> Path:
    return _make(tmp_path_factory.mktemp(request.param), request.param)


@pytest.mark.parametrize("how", ["crc", "missing-page"])
def test_labeling_a_damaged_ogg_is_refused_in_one_line(source, tmp_path, how):
    bad = _damaged(source, how)
    before = bad.read_bytes()
    key = tmp_path / "wm.key"
    write_key_file(key)
    for layers in ("watermark", "visible"):
        dst = tmp_path / f"out-{layers}{source.suffix}"
        done = run_cli("label", str(bad), str(dst), "--producer", PRODUCER, "--produce-id", "ogg-s39",
                       "--layers", layers, "--key-file", str(key))
        assert done.returncode != 0, done.stdout
        assert "damaged ogg file" in done.stderr and "offset" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not dst.exists()
    assert bad.read_bytes() == before
    # the metadata layer copies the pages as they are: nothing is lost, so it still labels
    done = run_cli("label", str(bad), str(tmp_path / f"meta{source.suffix}"), "--producer", PRODUCER,
                   "--produce-id", "ogg-s39")
    assert done.returncode == 0, done.stderr


def test_verify_examines_what_decodes_and_says_the_file_is_damaged(source, tmp_path):
    """Readers are not writers: verify reads the sound as it decodes (an investigator still wants the
    watermark and the cue looked for) and its report names the damaged page."""
    bad = _damaged(source, "crc")
    assert len(read_audio(bad).samples) > 0  # no error: libsndfile's read, as far as it goes
    key = tmp_path / "wm.key"
    write_key_file(key)
    done = run_cli("verify", "--json", str(bad), "--key-file", str(key))
    report = json.loads(done.stdout)
    text = " ".join(report["warnings"])
    assert "damaged" in text and "fails its CRC check" in text and "as it decodes" in text, report
    assert "watermark" in report["examined"]
    report = verify(bad.read_bytes(), layers="visible")
    assert any("fails its CRC check" in w for w in report.warnings), report.warnings
    # the intact file reads whole and warns of nothing; bytes after its last page are no damage
    assert len(read_audio(source).samples) == 6 * 48000
    assert not any("damaged" in w for w in verify(source).warnings)
    padded = source.with_name(f"padded{source.suffix}")
    padded.write_bytes(source.read_bytes() + b"TAG" + bytes(125))
    assert len(read_audio(io.BytesIO(padded.read_bytes()).getvalue()).samples) == 6 * 48000
    assert not any("damaged" in w for w in verify(padded).warnings)
