"""One contract, every carrier: each format of the table reads and writes its label the same way."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from conftest import SAMPLES, make_heic, run_ffmpeg
from PIL import Image

from labeler.errors import LabelerError
from labeler.formats import FORMAT_TABLE, sniff_bytes
from labeler.metadata import Carrier, carrier_module

VALUE = ('{"Label":"1","ContentProducer":"x","ProduceID":"contract","ReservedCode1":"",'
         '"ContentPropagator":"x","PropagateID":"contract","ReservedCode2":""}')


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory) -> dict[str, bytes]:
    """One unlabeled file of every format in the table, made from samples/."""
    d = tmp_path_factory.mktemp("contract")
    made = {"jpeg": SAMPLES / "photo.jpg", "png": SAMPLES / "photo.png", "wav": SAMPLES / "speech.wav",
            "flac": SAMPLES / "speech.flac", "mp3": SAMPLES / "speech.mp3", "mp4": SAMPLES / "clip.mp4",
            "mkv": SAMPLES / "clip.mkv", "webm": SAMPLES / "clip.webm"}
    with Image.open(SAMPLES / "photo.png") as im:
        small = im.convert("RGB").resize((64, 48))
        for fmt, pil in (("webp", "WEBP"), ("tiff", "TIFF"), ("gif", "GIF")):
            made[fmt] = d / f"x.{fmt}"
            small.save(made[fmt], pil)
    made["m4a"] = d / "x.m4a"
    run_ffmpeg("-i", str(SAMPLES / "speech.wav"), "-t", "1", "-c:a", "aac", "-b:a", "64k", str(made["m4a"]))
    made["ogg"] = d / "x.ogg"
    run_ffmpeg("-i", str(SAMPLES / "speech.wav"), "-t", "1", "-c:a", "libvorbis", str(made["ogg"]))
    made["avif"] = d / "x.avif"
    small.save(made["avif"], "AVIF")
    made["heic"] = make_heic(d / "x.heic")
    made["flv"] = d / "x.flv"
    run_ffmpeg("-i", str(SAMPLES / "clip.mp4"), "-c:v", "copy", "-c:a", "aac", str(made["flv"]))
    made["avi"] = d / "x.avi"
    run_ffmpeg("-i", str(SAMPLES / "clip.mp4"), "-c:v", "mpeg4", "-c:a", "libmp3lame", str(made["avi"]))
    made["mov"] = d / "x.mov"
    run_ffmpeg("-i", str(SAMPLES / "clip.mp4"), "-c", "copy", str(made["mov"]))
    # Audio-only Matroska and WebM (a browser's recorded voice note is the latter)
    made["mka"] = d / "x.mka"
    run_ffmpeg("-i", str(SAMPLES / "speech.wav"), "-t", "1", "-c:a", "libvorbis", str(made["mka"]))
    made["weba"] = d / "x.webm"
    run_ffmpeg("-i", str(SAMPLES / "speech.wav"), "-t", "1", "-c:a", "libopus", str(made["weba"]))
    assert set(made) == {f.name for f in FORMAT_TABLE}, "a format of the table has no contract sample"
    return {fmt: Path(p).read_bytes() for fmt, p in made.items()}


@pytest.mark.parametrize("fmt", [f.name for f in FORMAT_TABLE])
def test_carrier_contract(unlabeled, fmt):
    module = carrier_module(fmt)
    assert isinstance(module, Carrier)
    original = unlabeled[fmt]
    assert sniff_bytes(original) == fmt  # the sample is what the row says (audio-only: by its tracks)
    assert [f for f in module.read(io.BytesIO(original)) if f.standard] == []
    once = io.BytesIO()
    module.write(io.BytesIO(original), once, VALUE)
    found = module.read(io.BytesIO(once.getvalue()))
    assert [(f.raw, f.standard) for f in found] == [(VALUE, True)]
    # Writing again replaces: still one standard copy, with the new value.
    twice = io.BytesIO()
    module.write(io.BytesIO(once.getvalue()), twice, VALUE.replace("contract", "again"))
    assert [f.raw for f in module.read(io.BytesIO(twice.getvalue())) if f.standard] == [
        VALUE.replace("contract", "again")]
    # A damaged container is a LabelerError or a clean empty read, never another exception.
    for cut in (len(original) // 2, 16):
        with contextlib.suppress(LabelerError):
            module.read(io.BytesIO(original[:cut]))


@pytest.mark.parametrize("fmt", [f.name for f in FORMAT_TABLE])
def test_report_matches_the_documented_schema(unlabeled, fmt, tmp_path):
    """verify's report on a labeled file of every format validates against docs/report.schema.json."""
    jsonschema = pytest.importorskip("jsonschema")
    from detectors import verify
    from labeler.formats import EXTENSIONS

    path = tmp_path / f"labeled{EXTENSIONS[fmt][0]}"
    with open(path, "wb") as out:
        carrier_module(fmt).write(io.BytesIO(unlabeled[fmt]), out, VALUE)
    report = verify(path, visible=False).to_dict()
    assert report["format"] == fmt and report["layers"]["metadata"]["present"]
    jsonschema.validate(report, json.loads((SAMPLES.parent / "docs" / "report.schema.json").read_text()))
