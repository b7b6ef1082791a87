"""FLV: the label in ``onMetaData`` key ``AIGC`` (read back by ffprobe), seek offsets kept, all layers on FLV.

Before 2026-12-06 an FLV file was refused as unrecognised content, although the digest names its carrier.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import PRODUCER, assert_carrier_fails_cleanly, ffmpeg_exe, label_json, run_cli, seeded_key_file

from labeler.formats import sniff_file
from labeler.media import ffmpeg as ff
from labeler.metadata import flv

VALUE = label_json("flv-1")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """4 s of H.264 + AAC in FLV with a keyframe index (seek offsets inside onMetaData) and a title."""
    path = tmp_path_factory.mktemp("flv") / "clip.flv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                    "-f", "lavfi", "-i", "sine=d=4", "-t", "4", "-c:v", "libx264", "-g", "25", "-c:a", "aac",
                    "-flvflags", "add_keyframe_index", "-metadata", "title=kept title", str(path)],
                   check=True, capture_output=True)
    return path


def _tags_of(path: Path) -> dict[str, str]:
    """The global tags ffmpeg's FLV demuxer reads (what ffprobe shows as format tags)."""
    return ff.probe(path).metadata


def _decoded(path: Path) -> bytes:
    return subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v", "-f", "rawvideo",
                           "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout


def _index(data: bytes) -> tuple[list[float], float]:
    """The keyframe file positions and filesize onMetaData holds."""
    tag = flv._script(io.BytesIO(data), flv._tags(io.BytesIO(data), 13, len(data)))
    assert tag is not None
    meta = tag[1]
    props = {p.key: p for p in flv._metadata(meta)[2]}
    size = struct.unpack_from(">d", meta, props["filesize"].value + 1)[0]
    kf = props["keyframes"]
    inner = {q.key: q for q in flv._props(meta, kf.value + 1, 1)[0]}
    arr = inner["filepositions"].value
    count = int.from_bytes(meta[arr + 1:arr + 5], "big")
    return [struct.unpack_from(">d", meta, arr + 5 + 9 * i + 1)[0] for i in range(count)], size


def test_write_read_replace_keeps_seek_offsets(clip, tmp_path):
    original = clip.read_bytes()
    assert sniff_file(clip) == "flv" and flv.read(io.BytesIO(original)) == []
    out = tmp_path / "labeled.flv"
    once = io.BytesIO()
    flv.write(io.BytesIO(original), once, VALUE)
    twice = io.BytesIO()
    flv.write(io.BytesIO(once.getvalue()), twice, VALUE.replace("flv-1", "flv-2"))
    data = twice.getvalue()
    out.write_bytes(data)
    relabeled = VALUE.replace("flv-1", "flv-2")
    assert [(f.raw, f.standard) for f in flv.read(io.BytesIO(data))] == [(relabeled, True)]
    assert len(data) == len(once.getvalue()) > len(original)
    tags = _tags_of(out)
    assert tags["AIGC"] == relabeled and tags["title"] == "kept title"
    positions, size = _index(data)
    old_positions, _ = _index(original)
    assert size == len(data) and len(positions) == len(old_positions) >= 4
    delta = len(data) - len(original)
    assert positions == [p + delta for p in old_positions]
    for pos in positions:  # each still points at a video key frame's tag header
        assert data[int(pos)] & 0x1F == 9 and data[int(pos) + 11] >> 4 == 1
    assert _decoded(out) == _decoded(clip)


def test_file_without_onmetadata_gets_one(clip, tmp_path):
    data = clip.read_bytes()
    first = flv._tags(io.BytesIO(data), 13, len(data))[0]
    assert first.kind == 18
    bare = data[:13] + data[first.end:]
    out = io.BytesIO()
    flv.write(io.BytesIO(bare), out, VALUE)
    path = tmp_path / "bare-labeled.flv"
    path.write_bytes(out.getvalue())
    assert [f.raw for f in flv.read(io.BytesIO(out.getvalue()))] == [VALUE]
    assert _tags_of(path)["AIGC"] == VALUE
    (tmp_path / "bare.flv").write_bytes(bare)
    assert _decoded(path) == _decoded(tmp_path / "bare.flv")


def test_other_aigc_keys_are_non_standard(tmp_path):
    path = tmp_path / "vendor.flv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                    "-t", "1", "-c:v", "libx264", "-metadata", "aigc_label_type=1", str(path)],
                   check=True, capture_output=True)
    found = flv.read(io.BytesIO(path.read_bytes()))
    assert [(f.raw, f.standard) for f in found] == [("1", False)]


def test_damaged_files_fail_cleanly(clip):
    assert_carrier_fails_cleanly(flv, clip.read_bytes()[:4096], seed=11, rounds=400)


def test_every_layer_on_flv(clip, tmp_path):
    key = tmp_path / "wm.key"
    seeded_key_file(key, "test_flv-1")
    out = tmp_path / "labeled.flv"
    run_cli("label", str(clip), str(out), "--producer", PRODUCER, "--produce-id", "flv-cli", "--layers",
            "watermark,visible,metadata", "--key-file", str(key), check=True)
    proc = run_cli("verify", "--json", str(out), "--key-file", str(key))
    report = json.loads(proc.stdout)
    assert report["format"] == "flv" and report["verdict"] == "confirmed"
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)  # a video watermark's method, an FLV carrier
    assert report["layers"]["watermark"]["matches_metadata"] is True
    assert report["layers"]["visible"]["present"] is True
    assert [s.codec for s in ff.probe(out).streams] == ["h264", "aac"]
