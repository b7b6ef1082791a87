"""AVI: the label as a ``LIST``/``INFO`` ``AIGC`` entry, the movie data never moved, ffmpeg reads it back.

Before 2026-12-06 an AVI file was refused as unrecognised content, although the digest names its carrier.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import PRODUCER, assert_carrier_fails_cleanly, ffmpeg_exe, label_json, run_cli, seeded_key_file

from labeler.errors import UnsupportedFormat
from labeler.formats import sniff_file
from labeler.media import ffmpeg as ff
from labeler.metadata import avi

VALUE = label_json("avi-1")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s of MPEG-4 Part 2 + MP3 in AVI, as ffmpeg writes it (INFO with a title, then ~1 KB of JUNK)."""
    path = tmp_path_factory.mktemp("avi") / "clip.avi"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                    "-f", "lavfi", "-i", "sine=d=2", "-t", "2", "-c:v", "mpeg4", "-c:a", "libmp3lame",
                    "-metadata", "title=kept title", str(path)], check=True, capture_output=True)
    return path


def _top(data: bytes) -> list[tuple[bytes, int, int]]:
    """(id or LIST type, offset, size) of the first form's top-level chunks."""
    _, _, chunks = avi._form(io.BytesIO(data))
    return [(data[c.start:c.start + 4] if c.cid == b"LIST" else c.cid, c.offset, c.size) for c in chunks]


def _decoded(data: bytes, tmp: Path) -> bytes:
    path = tmp / "probe.avi"
    path.write_bytes(data)
    return subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray",
                           "-"], capture_output=True, check=True).stdout


def _relabel_twice(data: bytes) -> tuple[bytes, bytes]:
    once, twice = io.BytesIO(), io.BytesIO()
    avi.write(io.BytesIO(data), once, VALUE)
    avi.write(io.BytesIO(once.getvalue()), twice, VALUE.replace("avi-1", "avi-2"))
    return once.getvalue(), twice.getvalue()


def test_label_in_place_of_junk(clip, tmp_path):
    original = clip.read_bytes()
    assert sniff_file(clip) == "avi" and avi.read(io.BytesIO(original)) == []
    once, twice = _relabel_twice(original)
    movi = [c for c in _top(original) if c[0] == b"movi"]
    assert [c for c in _top(twice) if c[0] == b"movi"] == movi  # the movie data did not move
    assert len(once) == len(twice) == len(original)
    assert [f.raw for f in avi.read(io.BytesIO(twice))] == [VALUE.replace("avi-1", "avi-2")]
    path = tmp_path / "labeled.avi"
    path.write_bytes(twice)
    tags = ff.probe(path).metadata  # ffmpeg's AVI demuxer reads INFO entries as format tags
    assert tags["AIGC"] == VALUE.replace("avi-1", "avi-2") and tags["title"] == "kept title"
    assert _decoded(twice, tmp_path) == _decoded(original, tmp_path)


def _without_top_junk(data: bytes) -> bytes:
    """The AVI without its top-level JUNK chunks (idx1 offsets are relative to movi: still valid)."""
    out = bytearray(data[:12])
    for kind, offset, size in _top(data):
        if kind != b"JUNK":
            out += data[offset:offset + 8 + size + (size & 1)]
    struct.pack_into("<I", out, 4, len(out) - 8)
    return bytes(out)


def test_appended_after_the_index_when_there_is_no_room(clip, tmp_path):
    tight = _without_top_junk(clip.read_bytes())
    once, twice = _relabel_twice(tight)
    assert [c[0] for c in _top(twice)][-2:] == [b"idx1", b"INFO"]
    assert len(twice) == len(once) and b"avi-1" not in twice
    assert [f.raw for f in avi.read(io.BytesIO(twice))] == [VALUE.replace("avi-1", "avi-2")]
    assert _decoded(twice, tmp_path) == _decoded(tight, tmp_path)
    # an OpenDML file (an AVIX form after the first) with no room is refused, not rewritten
    avix = tight + b"RIFF" + struct.pack("<I", 12) + b"AVIX" + b"LIST" + struct.pack("<I", 4) + b"movi"
    with pytest.raises(UnsupportedFormat):
        avi.write(io.BytesIO(avix), io.BytesIO(), VALUE)


def test_damaged_files_fail_cleanly(clip):
    assert_carrier_fails_cleanly(avi, clip.read_bytes()[:12000], seed=5)


def test_every_layer_on_avi(clip, tmp_path):
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_avi-1")
    out = tmp_path / "labeled.avi"
    run_cli("label", str(clip), str(out), "--producer", PRODUCER, "--produce-id", "avi-cli", "--layers",
            "watermark,visible,metadata", "--key-file", str(key), check=True)
    report = json.loads(run_cli("verify", "--json", str(out), "--key-file", str(key)).stdout)
    assert report["format"] == "avi" and report["verdict"] == "confirmed"
    assert report["layers"]["watermark"]["matches_metadata"] is True
    assert report["layers"]["visible"]["present"] is True
