"""Caller mistakes at the public entry points are one-line LabelerErrors (InvalidArgument), not raw
TypeErrors; a label value over the readers' limit is refused before anything is written, for every
format; output names up to NAME_MAX bytes work (the temporary name beside them fits too)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, seeded_key
from PIL import Image

from labeler import AIGCLabel, LabelerError, label, label_file, limits
from labeler.atomic import NAME_MAX, part_name
from labeler.errors import InvalidArgument
from labeler.metadata import check_value, write_label, write_label_bytes
from labeler.options import LabelOptions
from labeler.pipeline import parse_layers, resolve_options
from labeler.watermark.keyfile import key_id

REC = AIGCLabel(PRODUCER, "qa-args")
KEY = seeded_key("test_qa_api_arguments")
PNG = (SAMPLES / "photo.png").read_bytes()
JPG = (SAMPLES / "photo.jpg").read_bytes()


def _one_line(info: pytest.ExceptionInfo[BaseException]) -> None:
    assert "\n" not in str(info.value) and str(info.value)


@pytest.mark.parametrize(("call", "words"), [
    (lambda: label(PNG, REC, layers=None), "layers must be a str"),
    (lambda: label(PNG, REC, layers=["metadata", 1]), "holding int"),
    (lambda: label(PNG, REC, layers=5), "not int"),
    (lambda: label(PNG, REC, layers="metadata,nope"), "unknown layer"),
    (lambda: label(JPG, REC, layers="watermark", key=KEY, quality="95"), "quality must be an int"),
    (lambda: label(JPG, REC, layers="watermark", key=KEY, quality=90.5), "quality must be an int"),
    (lambda: label(JPG, REC, layers="watermark", key=KEY, quality=0), "1 to 100"),
    (lambda: label(JPG, REC, layers="watermark", key=KEY, quality=True), "quality must be an int"),
    (lambda: label(PNG, REC, layers="visible", text=None), "text must be a str"),
    (lambda: label(PNG, REC, layers="visible", position=3), "position must be a str"),
    (lambda: label(PNG, REC, layers="watermark", key="0011"), "key must be bytes"),
    (lambda: label(PNG, REC, layers="watermark", key=KEY, watermark_strength="2"), "watermark_strength"),
    (lambda: label(PNG, REC, options={}), "options must be a LabelOptions"),
    (lambda: label(PNG, REC, cue_positions=None), "cue_positions"),
    (lambda: label(PNG, REC, fmt=3), "fmt must be"),
    (lambda: label(PNG, REC, fmt="bmp"), "unknown format"),
    (lambda: label(3.5, REC), "cannot label a float"),
    (lambda: label(PNG, REC, dst="x.png"), "dst= is for labeling a file"),
    (lambda: label(SAMPLES / "photo.png", REC), "needs dst="),
    (lambda: resolve_options(LabelOptions(layers=("metadata",), output=LabelOptions().output.__class__(
        quality=200))), "1 to 100"),
    (lambda: parse_layers(None), "layers must be"),
    (lambda: key_id("abc"), "key must be bytes"),
    (lambda: key_id(None), "key must be bytes"),
])
def test_bad_arguments_are_invalid_argument(call, words):
    with pytest.raises(InvalidArgument, match=words) as info:
        call()
    _one_line(info)


def test_numpy_numbers_are_plain_numbers_to_the_encoder():
    # The type check takes NumPy scalars (a backend's numbers often are) and hands Pillow an int.
    import numpy as np

    out = label(JPG, REC, layers="watermark", key=KEY, quality=np.int64(90), watermark_strength=np.float32(2))
    assert out[:3] == b"\xff\xd8\xff"
    options = resolve_options(None, quality=np.int32(80), watermark_strength=2)
    assert type(options.output.quality) is int and options.watermark.strength == 2


def test_label_file_arguments(tmp_path):
    src = SAMPLES / "photo.png"
    for call, words in (
        (lambda: label_file(src, tmp_path / "z.png", "x"), "label must be an AIGCLabel"),
        (lambda: label_file(src, None, REC), "output path must be"),
        (lambda: label_file(None, tmp_path / "z.png", REC), "input path must be"),
        (lambda: label_file(src, tmp_path / "a\0.png", REC), "NUL"),
        (lambda: label(src, REC, dst=str(tmp_path / "a\0.png")), "NUL"),
    ):
        with pytest.raises(InvalidArgument, match=words) as info:
            call()
        _one_line(info)
    assert os.listdir(tmp_path) == []


def test_a_folder_as_the_output_is_refused_before_any_work(tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    for overwrite in (False, True):
        with pytest.raises(LabelerError, match="is a folder") as info:
            label(SAMPLES / "photo.png", REC, dst=folder, overwrite=overwrite)
        _one_line(info)
    assert sorted(os.listdir(tmp_path)) == ["adir"] and os.listdir(folder) == []


def test_an_impossible_output_name_is_one_line(tmp_path):
    with pytest.raises(LabelerError, match="File name too long") as info:
        label(SAMPLES / "photo.png", REC, dst=tmp_path / ("x" * 300 + ".png"))
    _one_line(info)
    assert os.listdir(tmp_path) == []


# ---- item 6: output names of 237-255 bytes ----------------------------------------------------------


@pytest.mark.parametrize("name", ["y" * 236 + ".png", "y" * 244 + ".png", "y" * 251 + ".png",
                                  "生" * 83 + ".png"])  # 83 x 3 + 4 = 253 bytes in UTF-8
@pytest.mark.parametrize("layers", ["metadata", "watermark,metadata"])
def test_long_output_names(name, layers, tmp_path):
    if len(os.fsencode(name)) > NAME_MAX:
        pytest.skip("the file system encoding makes the name too long")
    dst = tmp_path / name
    result = label(SAMPLES / "photo.png", REC, dst=dst, layers=layers, key=KEY)
    assert result.dst == str(dst) and dst.is_file()
    assert os.listdir(tmp_path) == [name]  # no temporary file left


def test_part_name_fits_and_keeps_its_shape():
    import re

    token = "0123456789ab"
    short = part_name("out.png", token)
    assert short == ".out.png.0123456789ab.part"
    for name in ("y" * 255, "生" * 85, "y" * 230 + "生" * 8):
        for suffix in ("", ".mp4"):
            temp = part_name(name, token, suffix)
            assert len(os.fsencode(temp)) <= NAME_MAX
            assert temp.startswith("." + name[:50]) and temp.endswith(f".{token}.part{suffix}")
    # the batch clean-up (labeler.batch.plan) knows partial outputs by this shape
    assert re.match(r"^\..+\.[0-9a-f]{12}\.part$", part_name("y" * 255, token))


# ---- item 3: the label value's size, the same refusal for every format -------------------------------


def _encoded(fmt: str) -> bytes:
    if fmt in ("png", "jpeg"):
        return PNG if fmt == "png" else JPG
    buf = io.BytesIO()
    image = Image.open(SAMPLES / "photo.png").convert("RGB")
    image.save(buf, {"webp": "WEBP", "tiff": "TIFF", "gif": "GIF"}[fmt])
    return buf.getvalue()


BIG = AIGCLabel("p", "i" * 600_000)  # valid by AIGCLabel.check, but 1.2 MB of JSON


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff", "gif", "jpeg"])
def test_a_value_over_the_reader_limit_is_refused_for_every_image_format(fmt, tmp_path):
    data = _encoded(fmt)
    size = len(BIG.to_json().encode())
    words = f"{size} bytes, over the {limits.MAX_TEXT_VALUE}-byte limit"
    with pytest.raises(InvalidArgument, match=words) as info:
        label(data, BIG)
    _one_line(info)
    with pytest.raises(InvalidArgument, match=words):
        write_label_bytes(data, BIG.to_json(), fmt)
    src = tmp_path / f"in.{fmt}"
    src.write_bytes(data)
    with pytest.raises(InvalidArgument, match=words):
        write_label(src, tmp_path / f"out.{fmt}", BIG.to_json())
    with pytest.raises(InvalidArgument, match=words):  # refused before the watermark pass runs
        label(src, BIG, dst=tmp_path / f"out2.{fmt}", layers="watermark,metadata", key=KEY)
    assert os.listdir(tmp_path) == [f"in.{fmt}"]  # nothing written, no staging folder left


@pytest.mark.parametrize("name", ["speech.wav", "speech.flac", "speech.mp3"])
def test_audio_refuses_the_same_way(name):
    with pytest.raises(InvalidArgument, match="over the 1048576-byte limit"):
        label((SAMPLES / name).read_bytes(), BIG)


def test_check_value_counts_utf8_bytes():
    check_value("x" * limits.MAX_TEXT_VALUE)
    with pytest.raises(InvalidArgument):
        check_value("x" * (limits.MAX_TEXT_VALUE + 1))
    with pytest.raises(InvalidArgument):  # fewer characters than the limit, more bytes
        check_value("生" * (limits.MAX_TEXT_VALUE // 3 + 1))
    with pytest.raises(InvalidArgument, match="must be a str"):
        check_value(b"{}")  # type: ignore[arg-type]


def test_a_value_under_the_limit_still_reads_back(tmp_path):
    from detectors import verify

    rec = AIGCLabel("p", "i" * 200_000)
    out = label(PNG, rec)
    report = verify(out, layers="metadata")
    assert report.metadata is not None and report.metadata.fields["ProduceID"] == "i" * 200_000


def test_write_label_refuses_before_opening(tmp_path):
    # The size check comes before any file is touched: a missing source is not even looked at.
    with pytest.raises(InvalidArgument, match="over the"):
        write_label(tmp_path / "missing.png", tmp_path / "out.png", "x" * (limits.MAX_TEXT_VALUE + 1))
    assert not Path(tmp_path / "out.png").exists()
