"""The visible layer through the CLI: label, re-encode, verify (the renderer itself: test_visible.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, run_cli, tagged_photo
from PIL import Image


def verify_json(*paths: Path) -> list[dict]:
    proc = run_cli("verify", "--json", *map(str, paths))
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("position", ["bottom-right", "top-left", "bottom-center"])
def test_visible_label_found_after_jpeg_and_resize(tmp_path, position):
    out = tmp_path / "v.jpg"
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(out), "--producer", PRODUCER, "--produce-id", "v",
                   "--layers", "visible,metadata", "--position", position)
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as im:
        half = im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        half.save(buf, "JPEG", quality=70)
    stripped = tmp_path / "stripped.jpg"
    stripped.write_bytes(buf.getvalue())
    labeled, copy, plain = verify_json(out, stripped, SAMPLES / "photo.jpg")
    assert labeled["verdict"] == "confirmed"
    assert labeled["layers"]["visible"]["present"] and labeled["layers"]["visible"]["position"] == position
    assert labeled["layers"]["visible"]["height_ratio"] >= 0.045
    assert copy["verdict"] == "possible" and copy["layers"]["visible"]["position"] == position
    assert plain["verdict"] == "none" and plain["layers"]["visible"]["present"] is False


def test_visible_layer_refuses_gif_and_bad_wording(tmp_path):
    gif = tmp_path.parent / f"{tmp_path.name}-in.gif"
    Image.open(SAMPLES / "photo.png").convert("P").save(gif)
    proc = run_cli("label", str(gif), str(tmp_path / "a.gif"), "--producer", PRODUCER,
                   "--produce-id", "x", "--layers", "visible,metadata")
    assert proc.returncode == 2 and "visible layer does not support gif" in proc.stderr
    proc = run_cli("label", str(SAMPLES / "photo.png"), str(tmp_path / "b.png"), "--producer", PRODUCER,
                   "--produce-id", "x", "--layers", "visible", "--text", "hello")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_visible_reports_match_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    out = tmp_path / "v.png"
    run_cli("label", str(SAMPLES / "photo.png"), str(out), "--producer", PRODUCER, "--produce-id", "v",
            "--layers", "visible,metadata", check=True)
    for report in verify_json(out, SAMPLES / "photo.png"):
        jsonschema.validate(report, schema)


def test_video_visible_label_through_cli(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    out = tmp_path / "v.mp4"
    proc = run_cli("label", str(SAMPLES / "clip.mp4"), str(out), "--producer", PRODUCER,
                   "--produce-id", "vid", "--layers", "visible,metadata", "--duration", "2",
                   "--position", "top-right")
    assert proc.returncode == 0, proc.stderr
    report, plain = verify_json(out, SAMPLES / "clip.mp4")
    visible = report["layers"]["visible"]
    assert report["verdict"] == "confirmed"
    assert (visible["kind"], visible["position"], visible["seconds"]) == ("video-text", "top-right", 2.0)
    assert plain["layers"]["visible"]["present"] is False
    for r in (report, plain):
        jsonschema.validate(r, schema)
    too_short = run_cli("label", str(SAMPLES / "clip.mp4"), str(tmp_path / "w.mp4"), "--producer", PRODUCER,
                        "--produce-id", "vid", "--layers", "visible", "--duration", "1")
    assert too_short.returncode == 2 and not (tmp_path / "w.mp4").exists()


@pytest.mark.parametrize("name", ["speech.wav", "speech.mp3"])
def test_audio_cue_through_cli(tmp_path, name):
    out = tmp_path / name
    proc = run_cli("label", str(SAMPLES / name), str(out), "--producer", PRODUCER, "--produce-id", "cue",
                   "--layers", "visible,metadata", "--cue", "start")
    assert proc.returncode == 0, proc.stderr
    report, plain = verify_json(out, SAMPLES / name)
    cue = report["layers"]["visible"]
    assert (cue["present"], cue["kind"], cue["position"]) == (True, "audio-rhythm", "start")
    assert cue["seconds"] < 0.05
    assert report["verdict"] == "confirmed"
    assert plain["layers"]["visible"]["present"] is False
    if name.endswith(".mp3"):  # re-encoded, but the source's tags are kept
        import mutagen

        assert str(mutagen.File(out)["TIT2"]) == "aigc-labeler sample speech"
    bad = run_cli("label", str(SAMPLES / name), str(tmp_path / f"x-{name}"), "--producer", PRODUCER,
                  "--produce-id", "cue", "--layers", "visible", "--cue", "sideways")
    assert bad.returncode == 2 and "--cue takes" in bad.stderr


def test_no_visible_skips_the_layer(tmp_path):
    out = tmp_path / "v.png"
    run_cli("label", str(SAMPLES / "photo.png"), str(out), "--producer", PRODUCER, "--produce-id", "v",
            "--layers", "visible,metadata", check=True)
    report = json.loads(run_cli("verify", "--json", "--no-visible", str(out)).stdout)
    assert "visible" not in report["layers"] and report["verdict"] == "confirmed"


@pytest.mark.parametrize(("fmt", "options"), [("webp", {"lossless": True}), ("png", {})])
def test_lossless_sources_stay_lossless_after_a_pixel_layer(tmp_path, fmt, options):
    from labeler.media.image import read_image

    src = tmp_path / f"src.{fmt}"
    with Image.open(SAMPLES / "photo.png") as im:
        im.convert("RGB").save(src, fmt.upper(), **options)
    out = tmp_path / f"out.{fmt}"
    proc = run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "x", "--layers",
                   "visible", "--json", check=True)
    assert read_image(out).lossless == read_image(src).lossless == (fmt == "webp")
    before, after = read_image(src).pixels, read_image(out).pixels
    # Outside the label's box nothing changed at all: a lossy re-encode changes pixels everywhere.
    x, y, w, h = json.loads(proc.stdout)["layers"]["visible"]["box"]
    mask = np.ones(before.shape[:2], bool)
    mask[max(0, y - 4):y + h + 4, max(0, x - 4):x + w + 4] = False
    assert np.array_equal(before[mask], after[mask])


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_visible_label_upright_on_a_photo_stored_sideways(tmp_path, orientation):
    """A phone photo is stored sideways with an EXIF Orientation tag: the label is drawn as a viewer shows
    the picture (upright, in the corner asked for), the tag is kept, and verify reads it the same way."""
    from PIL import ImageOps

    from detectors.visible import detect_image_label

    src = tagged_photo(tmp_path / "phone.jpg", orientation, (600, 400))
    out = tmp_path / "labeled.jpg"
    proc = run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "o",
                   "--layers", "visible,metadata", "--position", "bottom-right", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["layers"]["visible"]["orientation"] == orientation
    with Image.open(out) as im:
        assert im.getexif().get(274) == orientation
        assert im.size == (600, 400)  # stored pixels keep their layout
        shown = np.asarray(ImageOps.exif_transpose(im).convert("L"))
    found = detect_image_label(shown)
    assert found.present and found.position == "bottom-right"
    (report,) = verify_json(out)
    visible = report["layers"]["visible"]
    assert visible["present"] and visible["position"] == "bottom-right"
