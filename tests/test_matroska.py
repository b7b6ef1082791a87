"""MKV / WebM: the format rows, the ``AIGC`` SimpleTag carrier, hostile EBML, the C2PA refusal."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SAMPLES, decoded_digest, ffmpeg_exe, run_ffmpeg

from labeler.errors import LabelerError, UnsupportedFormat, UnsupportedLayer
from labeler.formats import format_info, sniff, sniff_file
from labeler.metadata import ebml, matroska, read_labels, write_label

V1 = ('{"Label":"1","ContentProducer":"x","ProduceID":"first","ReservedCode1":"","ContentPropagator":"x",'
      '"PropagateID":"first","ReservedCode2":""}')
V2 = V1.replace("first", "second-and-longer-than-the-first")


def _format_tags(path: Path) -> dict[str, str]:
    # ffmpeg's own reader: the banner of "-i" lists the format tags; ffmpeg -f ffmetadata prints them.
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                         capture_output=True, check=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines()[1:] if "=" in line)


def _ids(path: Path) -> list[int]:
    with path.open("rb") as f:
        return [c.id for c in matroska.layout(f).children]


@pytest.mark.parametrize("name, fmt, mime", [("clip.mkv", "mkv", "video/x-matroska"),
                                             ("clip.webm", "webm", "video/webm")])
def test_rows_sniff_from_the_doctype(name, fmt, mime):
    assert sniff_file(SAMPLES / name) == fmt
    assert format_info(fmt).mime == mime and format_info(fmt).medium == "video"
    assert sniff((SAMPLES / name).read_bytes()[:64]) == fmt
    odd = ebml.element(matroska.EBML, ebml.element(matroska.DOCTYPE, b"ogg-like"))
    with pytest.raises(UnsupportedFormat):
        sniff(odd + bytes(64))


@pytest.mark.parametrize("name", ["clip.mkv", "clip.webm"])
def test_grown_tags_move_to_the_end_and_the_seekhead_follows(tmp_path, name):
    src, out = SAMPLES / name, tmp_path / name
    before = _ids(src)
    result = write_label(src, out, V1)
    assert result.carrier == "mkv-tag"
    after = _ids(out)
    # The samples' Tags sits right before the first Cluster: its place becomes a Void, Tags goes last.
    assert after[before.index(matroska.TAGS)] == ebml.VOID and after[-1] == matroska.TAGS
    assert after.count(matroska.TAGS) == 1
    assert _format_tags(out)["AIGC"] == V1  # ffmpeg finds it through the SeekHead
    assert _format_tags(out)["title"] == "aigc-labeler sample clip"  # the other tags are kept
    assert decoded_digest(out) == decoded_digest(src)
    # Relabeling replaces it in place: one copy, the new value, nothing appended.
    again = tmp_path / f"again-{name}"
    write_label(out, again, V2)
    assert [(f.raw, f.standard) for f in read_labels(again)[1]] == [(V2, True)]
    assert _format_tags(again)["AIGC"] == V2
    if shutil.which("mkvextract"):
        xml = subprocess.run(["mkvextract", str(again), "tags", "-"], capture_output=True, text=True).stdout
        assert xml.count("<Name>AIGC</Name>") == 1 and "second-and-longer" in xml


def test_a_shorter_label_is_rewritten_in_place(tmp_path):
    long_, short = tmp_path / "long.mkv", tmp_path / "short.mkv"
    write_label(SAMPLES / "clip.mkv", long_, V2)
    write_label(long_, short, V1)
    assert short.stat().st_size == long_.stat().st_size
    with long_.open("rb") as a, short.open("rb") as b:
        old, new = matroska.layout(a).children, matroska.layout(b).children
    clusters = [c.offset for c in old if c.id == matroska.CLUSTER]
    assert clusters == [c.offset for c in new if c.id == matroska.CLUSTER]
    assert [f.raw for f in read_labels(short)[1]] == [V1]


def test_label_written_by_ffmpeg_is_read_and_replaced(tmp_path):
    by_ffmpeg, ours = tmp_path / "ffmpeg.mkv", tmp_path / "ours.mkv"
    run_ffmpeg("-i", str(SAMPLES / "clip.mkv"), "-map", "0", "-c", "copy", "-metadata", f"AIGC={V1}",
               str(by_ffmpeg))
    assert [(f.raw, f.standard) for f in read_labels(by_ffmpeg)[1]] == [(V1, True)]
    write_label(by_ffmpeg, ours, V2)
    assert [(f.raw, f.standard) for f in read_labels(ours)[1]] == [(V2, True)]
    assert _format_tags(ours)["AIGC"] == V2


def test_a_track_tag_is_reported_not_taken(tmp_path):
    tagged, out = tmp_path / "track.mkv", tmp_path / "out.mkv"
    run_ffmpeg("-i", str(SAMPLES / "clip.mkv"), "-map", "0", "-c", "copy", "-metadata:s:v:0", f"AIGC={V1}",
               str(tagged))
    found = read_labels(tagged)[1]
    assert [(f.raw, f.standard) for f in found] == [(V1, False)]
    result = write_label(tagged, out, V2)
    assert [(f.raw, f.standard) for f in read_labels(out)[1]] == [(V2, True), (V1, False)]
    assert [f.raw for f in result.other_copies] == [V1]


def test_unknown_size_segment_from_a_pipe(tmp_path):
    live, out = tmp_path / "live.webm", tmp_path / "out.webm"
    with live.open("wb") as f:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(SAMPLES / "clip.webm"), "-map", "0",
                        "-c", "copy", "-f", "webm", "pipe:1"], stdout=f, check=True)
    with live.open("rb") as f:
        assert matroska.layout(f).segment.size is None
    write_label(live, out, V1)
    assert _format_tags(out)["AIGC"] == V1
    assert decoded_digest(out) == decoded_digest(live)


def _file(*segment_children: bytes, segment_size: bytes | None = None) -> bytes:
    header = ebml.element(matroska.EBML, ebml.element(matroska.DOCTYPE, b"matroska"))
    body = b"".join(segment_children)
    size = segment_size if segment_size is not None else ebml.encode_size(len(body))
    return header + ebml.encode_id(matroska.SEGMENT) + size + body


def test_hostile_ebml_is_refused_quickly():
    deep = ebml.element(matroska.SIMPLE_TAG, b"")
    for _ in range(200):
        deep = ebml.element(matroska.SIMPLE_TAG, deep)
    nested = _file(ebml.element(matroska.TAGS, ebml.element(matroska.TAG, deep)))
    huge = _file(ebml.encode_id(matroska.TAGS) + ebml.encode_size(1 << 40) + b"x" * 16)
    long_id = _file(b"\x08\x00\x00\x00\x00\x81\x00")
    # Nested SimpleTags are never recursed into: the deep one is read past and kept as it is.
    assert matroska.read(io.BytesIO(nested)) == []
    labeled = io.BytesIO()
    matroska.write(io.BytesIO(nested), labeled, V1)
    assert deep in labeled.getvalue() and [f.raw for f in matroska.read(labeled)] == [V1]
    for data in (huge, long_id):
        with pytest.raises(LabelerError):
            matroska.read(io.BytesIO(data))
        with pytest.raises(LabelerError):
            matroska.write(io.BytesIO(data), io.BytesIO(), V1)
    # Many tiny elements: the walk is bounded by MAX_ELEMENTS, never by the file's say-so.
    voids = _file(ebml.void(2) * 1000)
    assert matroska.read(io.BytesIO(voids)) == []


def test_truncated_file_keeps_the_labels_before_the_cut(tmp_path):
    out = tmp_path / "l.mkv"
    run_ffmpeg("-i", SAMPLES / "clip.mkv", "-map", "0", "-c", "copy", "-metadata", f"AIGC={V1}", out)
    data = out.read_bytes()
    cut = data[: len(data) // 2]
    assert [f.raw for f in matroska.read(io.BytesIO(cut))] == [V1]
    with pytest.raises(LabelerError):
        matroska.write(io.BytesIO(cut), io.BytesIO(), V2)


@pytest.mark.parametrize("name", ["clip.mkv", "clip.webm"])
def test_c2pa_layer_is_a_one_line_unsupported_layer(tmp_path, name):
    from labeler.pipeline import label_file
    from labeler.record import AIGCLabel

    with pytest.raises(UnsupportedLayer, match=r"^the c2pa layer supports .* not (mkv|webm)$"):
        label_file(SAMPLES / name, tmp_path / name, AIGCLabel("x", "id"), layers=("metadata", "c2pa"))
    assert not (tmp_path / name).exists()


def test_json_value_round_trips_unicode(tmp_path):
    value = json.dumps({"Label": "1", "ContentProducer": "生成器", "ProduceID": "ü"}, ensure_ascii=False)
    out = tmp_path / "u.webm"
    write_label(SAMPLES / "clip.webm", out, value)
    assert read_labels(out)[1][0].raw == value
