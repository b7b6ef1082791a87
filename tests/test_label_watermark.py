"""The watermark layer through the CLI: label, strip the metadata, verify with and without the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key_file, tagged_photo
from PIL import Image

from labeler.watermark import payload_from_produce_id


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    good, other = folder / "good.key", folder / "other.key"
    seeded_key_file(good, "test_label_watermark-1")
    seeded_key_file(other, "test_label_watermark-2")
    return good, other


@pytest.fixture(scope="module")
def marked(tmp_path_factory, keys) -> Path:
    out = tmp_path_factory.mktemp("marked") / "photo.jpg"
    run_cli("label", str(SAMPLES / "photo.jpg"), str(out), "--producer", PRODUCER, "--produce-id", "wm-1",
            "--layers", "watermark,metadata", "--key-file", str(keys[0]), check=True)
    return out


def verify_json(path: Path, *args: str) -> dict:
    proc = run_cli("verify", "--json", str(path), *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_label_and_verify_with_key(marked, keys):
    report = verify_json(marked, "--key-file", str(keys[0]))
    wm = report["layers"]["watermark"]
    assert report["verdict"] == "confirmed"
    assert wm["present"] and wm["matches_metadata"] is True
    assert wm["payload"] == payload_from_produce_id("wm-1").hex()
    assert wm["p_value"] < 1e-6
    # ICC and EXIF of the input survive the pixel re-encode.
    with Image.open(SAMPLES / "photo.jpg") as a, Image.open(marked) as b:
        assert a.info["icc_profile"] == b.info["icc_profile"]
        assert a.getexif() == b.getexif()
        assert a.size == b.size


def test_stripped_metadata_still_confirmed_by_watermark(marked, keys, tmp_path):
    stripped = tmp_path / "screenshot.png"
    with Image.open(marked) as im:
        small = im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.Resampling.BICUBIC)
    Image.fromarray(np.asarray(small)).save(stripped)  # no metadata at all
    report = verify_json(stripped, "--key-file", str(keys[0]))
    assert report["layers"]["metadata"]["present"] is False
    assert report["verdict"] == "confirmed"
    assert report["reasons"][0].startswith("watermark only")
    assert report["layers"]["watermark"]["matches_metadata"] is None


def test_wrong_key_and_no_key(marked, keys, tmp_path):
    stripped = tmp_path / "plain.png"
    Image.open(marked).save(stripped)
    report = verify_json(stripped, "--key-file", str(keys[1]))
    assert report["verdict"] == "none" and report["layers"]["watermark"]["present"] is False
    assert "watermark" not in verify_json(stripped)["layers"]


def test_relabeled_with_other_id_is_flagged(marked, keys, tmp_path):
    forged = tmp_path / "forged.jpg"
    run_cli("label", str(marked), str(forged), "--producer", PRODUCER, "--produce-id", "other-id", check=True)
    report = verify_json(forged, "--key-file", str(keys[0]))
    assert report["layers"]["watermark"]["matches_metadata"] is False
    assert report["warnings"] == ["the watermark payload does not match the metadata label's ProduceID"]


@pytest.mark.parametrize(
    ("src", "extra", "needle"),
    [
        ("photo.jpg", [], "needs a key"),
        # GIF's 256-colour palette would ruin the mark and the picture: no stage takes it.
        ("anim.gif", ["--key-file", "KEY"], "the watermark layer supports jpeg, png, webp, tiff, avif, wav"),
    ],
)
def test_watermark_layer_errors(keys, tmp_path, src, extra, needle):
    extra = [str(keys[0]) if a == "KEY" else a for a in extra]
    source = SAMPLES / src
    if src == "anim.gif":
        source = tmp_path.parent / f"{tmp_path.name}-anim.gif"
        with Image.open(SAMPLES / "photo.png") as im:
            im.convert("P").save(source)
    out = tmp_path / src
    proc = run_cli("label", str(source), str(out), "--producer", PRODUCER, "--produce-id", "x",
                   "--layers", "watermark,metadata", *extra)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_bad_key_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("nope\n")
    proc = run_cli("verify", "--key-file", str(bad), str(SAMPLES / "photo.jpg"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "holds no key" in proc.stderr


def test_watermark_reports_match_schema(marked, keys):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "report.schema.json").read_text())
    proc = run_cli("verify", "--json", "--key-file", str(keys[0]), str(marked), str(SAMPLES / "speech.wav"),
                   str(SAMPLES / "clip.mp4"))
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    for report in reports:
        jsonschema.validate(report, schema)
    image, audio, video = (r["layers"]["watermark"] for r in reports)
    assert image["checked"] is True and image["present"] is True
    assert audio["checked"] is True and audio["present"] is False and audio["p_value"] > 1e-3  # unmarked
    assert video["checked"] is True and video["present"] is False and video["frames_read"] > 0  # unmarked


def test_watermark_and_visible_in_one_encode(keys, tmp_path):
    out, wm_only = tmp_path / "both.jpg", tmp_path / "wm.jpg"
    common = ["--producer", PRODUCER, "--produce-id", "both", "--key-file", str(keys[0])]
    proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(out), *common,
                   "--layers", "visible,watermark,metadata", "--json", check=True)
    x, y, w, h = json.loads(proc.stdout)["layers"]["visible"]["box"]
    report = verify_json(out, "--key-file", str(keys[0]))
    assert report["layers"]["watermark"]["present"] and report["layers"]["watermark"]["matches_metadata"]
    assert report["layers"]["visible"]["present"]
    # One JPEG generation: outside the label's 8x8 blocks the pixels equal those of the watermark-only
    # output (a second decode/encode pass differs by about 0.5 levels on average there).
    run_cli("label", str(SAMPLES / "photo.jpg"), str(wm_only), *common, "--layers", "watermark", check=True)
    with Image.open(wm_only) as a, Image.open(out) as b:
        diff = np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))
    diff[(y // 8) * 8 - 8:y + h + 16, (x // 8) * 8 - 8:x + w + 16] = 0
    assert float(diff.mean()) < 0.01


def test_small_picture_is_marked_with_a_warning_and_an_unread_payload_is_noted(tmp_path) -> None:
    """Under 256 x 256 pixels the payload may not read back: the label says so; and a verify whose pilot
    shows past the threshold without a readable payload says that, instead of a bare 'absent'."""
    from detectors import verify
    from labeler import AIGCLabel, label_file
    from labeler.media import read_image
    from labeler.media.image_write import write_image
    from labeler.watermark import embed

    key = bytes(range(32))
    photo = read_image(SAMPLES / "photo.png").pixels
    rec = AIGCLabel("001191110102MACQD9K64010000", "small")
    for (h, w), warned in (((160, 160), True), ((300, 400), False)):
        src = tmp_path / f"{h}x{w}.png"
        write_image(src, np.ascontiguousarray(photo[:h, :w]))
        res = label_file(src, tmp_path / f"out{h}.png", rec, layers="watermark", key=key)
        assert any("may not read back" in x for x in res.warnings) == warned, res.warnings
    # a flipped, column-dropped copy of a 256 x 128 crop: pilot found, CRC fails (p 9.7e-14 measured)
    small = np.ascontiguousarray(photo[:256][::-1, ::2][:, :128])
    key2 = bytes([2]) * 32
    layer = verify(embed(small, payload_from_produce_id("x"), key=key2), key=key2).watermark
    assert layer["present"] is False and layer["p_value"] <= 1e-6
    assert "payload could not be read" in layer["note"]


@pytest.mark.parametrize("orientation", [6, 3, 5])
def test_mark_on_a_tagged_photo_survives_a_baked_rotation(keys, tmp_path, orientation):
    """A phone photo stored sideways with an EXIF Orientation tag is marked as shown, so the mark is still
    read after an upload path bakes the rotation into the pixels and drops the tag (most do); the tagged
    file is read turned the same way, by the full and the quick read, with the p-value of two reads."""
    from PIL import ImageOps

    from detectors import verify
    from labeler.watermark.keyfile import read_key_file

    src = tagged_photo(tmp_path / "phone.jpg", orientation, (900, 600))
    out = tmp_path / "labeled.jpg"
    proc = run_cli("label", str(src), str(out), "--producer", PRODUCER, "--produce-id", "turned",
                   "--layers", "watermark", "--key-file", str(keys[0]), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["layers"]["watermark"]["orientation"] == orientation
    key = read_key_file(keys[0])
    want = payload_from_produce_id("turned").hex()
    for layers in ("watermark", "quick"):
        found = verify(out, key=key, layers=layers).watermark
        assert found["present"] and found["payload"] == want, (layers, found)
    baked = tmp_path / "baked.jpg"
    with Image.open(out) as im:
        upright = ImageOps.exif_transpose(im)
        upright.save(baked, "JPEG", quality=85)  # no EXIF: the tag is gone, the pixels are turned
    with Image.open(baked) as im:
        assert im.getexif().get(274) is None and im.size == upright.size
    found = verify(baked, key=key, layers="watermark").watermark
    assert found["present"] and found["payload"] == want


def test_mark_on_the_stored_pixels_of_a_tagged_photo_is_read_second(keys, tmp_path):
    """A mark made on a tagged file's stored pixels (the array API, another tool, a file labeled before
    marks followed the tag) is found by the second read; the p-value then counts both reads."""
    from detectors import verify
    from detectors.watermark import detect, detect_as_shown
    from labeler.watermark import embed
    from labeler.watermark.keyfile import read_key_file

    key = read_key_file(keys[0])
    with Image.open(SAMPLES / "photo.jpg") as im:
        stored = np.asarray(im.convert("RGB").resize((900, 600)))
    payload = payload_from_produce_id("stored")
    marked = embed(stored, payload, key=key)
    exif = Image.Exif()
    exif[274] = 6
    path = tmp_path / "tagged.jpg"
    Image.fromarray(marked).save(path, "JPEG", quality=92, exif=exif)
    found = verify(path, key=key, layers="watermark").watermark
    assert found["present"] and found["payload"] == payload.hex()
    with Image.open(path) as im:
        pixels = np.asarray(im)
    once = detect(pixels, key=key)
    both = detect_as_shown(pixels, 6, lambda image, threshold: detect(image, key=key, threshold=threshold))
    assert once.found and both.found and both.payload == payload
    assert both.p_value == pytest.approx(2 * once.p_value) and both.trials == 2 * once.trials


@pytest.mark.parametrize("value", ["2", "3"])
def test_watermark_refused_for_possibly_or_suspected_labels(keys, tmp_path, value):
    """A Label 2/3 file marked with the watermark verified as 'suspected'; stripped of its metadata the
    watermark alone made it 'confirmed' (QA). The watermark is for content the caller generated."""
    out = tmp_path / "out.jpg"
    args = ("label", str(SAMPLES / "photo.jpg"), str(out), "--producer", PRODUCER, "--produce-id", "l23")
    proc = run_cli(*args, "--label", value, "--layers", "watermark,metadata", "--key-file", str(keys[0]))
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.count("\n") == 1 and "Label 1" in proc.stderr and "metadata" in proc.stderr
    done = run_cli(*args, "--label", value, "--layers", "metadata")
    assert done.returncode == 0, done.stderr
