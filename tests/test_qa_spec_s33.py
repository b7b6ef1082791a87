"""QA pass s33: compliance of written and verified labels with the rules digest (labeling-spec.md).

Each test is a rule of the digest that the toolkit broke before this pass: a re-label that left a
second, conflicting label copy in EXIF UserComment (section 3, "only one metadata label per file"),
label values whose fields are ambiguous (one field twice with different values) or misnamed (Appendix
E field names in the wrong letter case), reported as compliant.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from detectors import verify
from labeler.metadata import read_labels
from labeler.record import parse_label
from tests.conftest import PRODUCER, SAMPLES, run_cli

OLD = {
    "Label": "3", "ContentProducer": "old", "ProduceID": "old-1", "ReservedCode1": "",
    "ContentPropagator": "old", "PropagateID": "old-1", "ReservedCode2": "",
}
BASE = {
    "Label": "1", "ContentProducer": PRODUCER, "ProduceID": "id-1", "ReservedCode1": "",
    "ContentPropagator": PRODUCER, "PropagateID": "id-1", "ReservedCode2": "",
}


def _exiftool(*args: str) -> None:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool not installed")
    subprocess.run(["exiftool", "-q", "-overwrite_original", *args], check=True, timeout=60)


def _with_user_comment_label(path: Path) -> Path:
    # The image guide's Annex B alternative, as a Tencent-entity generator writes it (digest section 5).
    _exiftool("-UserComment=" + json.dumps({"AIGC": OLD}, separators=(",", ":")), str(path))
    assert any(f.carrier == "exif-usercomment" for f in read_labels(path)[1])
    return path


def _image(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"in{suffix}"
    if suffix == ".jpg":
        shutil.copyfile(SAMPLES / "photo.jpg", path)
    else:
        Image.open(SAMPLES / "photo.png").convert("RGB").save(path)
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".tif", ".png"])
def test_relabel_leaves_one_label_not_a_conflicting_exif_copy(tmp_path, suffix):
    src = _with_user_comment_label(_image(tmp_path, suffix))
    before = src.read_bytes()
    out = tmp_path / f"out{suffix}"
    proc = run_cli("label", "--producer", PRODUCER, "--produce-id", "id-1", str(src), str(out))
    assert proc.returncode == 0, proc.stderr
    assert src.read_bytes() == before  # the input is never modified
    assert "another label copy remains" not in proc.stderr
    _, found = read_labels(out)
    assert [f.carrier for f in found if f.standard] == ["xmp-tc260"]
    layer = verify(out, layers=["metadata"]).to_dict()["layers"]["metadata"]
    assert layer["valid"], layer["problems"]
    assert layer["fields"]["ProduceID"] == "id-1"
    assert len(out.read_bytes()) - len(before) < 2048  # blanked in place: the EXIF block did not move
    with Image.open(out) as image:  # still a readable picture, same size
        assert image.size == Image.open(src).size


def test_relabel_keeps_a_user_comment_that_is_no_label(tmp_path):
    src = _image(tmp_path, ".jpg")
    _exiftool("-UserComment=taken on a sunny day", str(src))
    out = tmp_path / "out.jpg"
    run_cli("label", "--producer", PRODUCER, "--produce-id", "id-1", str(src), str(out), check=True)
    text = subprocess.run(["exiftool", "-s3", "-UserComment", str(out)], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert text == "taken on a sunny day"


def test_duplicated_field_with_conflicting_values_is_a_problem():
    raw = json.dumps(BASE)[:-1] + ',"Label":"3"}'  # a second "Label" key: readers disagree on which wins
    parsed = parse_label(raw)
    assert not parsed.valid
    assert any("Label" in p and "'1'" in p and "'3'" in p for p in parsed.problems), parsed.problems


def test_duplicated_field_under_two_spellings_is_a_problem():
    parsed = parse_label(dict(BASE, label="3"))
    assert not parsed.valid
    assert any("Label" in p and "'1'" in p and "'3'" in p for p in parsed.problems), parsed.problems


def test_identical_duplicate_field_is_a_warning_only():
    raw = json.dumps(BASE)[:-1] + ',"ProduceID":"id-1"}'
    parsed = parse_label(raw)
    assert parsed.valid, parsed.problems
    assert any("ProduceID" in w and "twice" in w for w in parsed.warnings), parsed.warnings


def test_field_names_in_the_wrong_case_are_not_compliant(tmp_path):
    value = json.dumps({k.lower(): v for k, v in BASE.items()}, separators=(",", ":"))
    src = tmp_path / "in.png"
    info = PngInfo()
    info.add_text("AIGC", value)  # the image guide's Annex B PNG text chunk
    Image.open(SAMPLES / "photo.png").save(src, pnginfo=info)
    report = verify(src, layers=["metadata"]).to_dict()
    layer = report["layers"]["metadata"]
    assert report["verdict"] == "confirmed"  # still read: the Label value decides
    assert layer["fields"]["Label"] == "1"
    assert not layer["valid"]
    assert any("'label'" in p and "case" in p for p in layer["problems"]), layer["problems"]


def test_keys_beside_the_wrapper_are_reported():
    parsed = parse_label({"AIGC": BASE, "Label": "3"})
    assert parsed.fields["Label"] == "1"
    assert any("beside" in w and "'Label'" in w for w in parsed.warnings), parsed.warnings


def test_bare_label_in_a_jpeg_comment_is_reported_as_misplaced(tmp_path):
    # The wrapped {"AIGC": ...} form in a COM segment was already a non-standard declaration; the bare
    # object (the form the guides put in AIGC-named carriers) in the same place was "no AIGC label".
    src = tmp_path / "com.jpg"
    shutil.copyfile(SAMPLES / "photo.jpg", src)
    _exiftool("-Comment=" + json.dumps(BASE, separators=(",", ":")), str(src))
    report = verify(src, layers=["metadata"]).to_dict()
    layer = report["layers"]["metadata"]
    assert report["verdict"] == "possible"
    assert not layer["present"]
    assert [d["carrier"] for d in layer["declarations"]] == ["app-blob"]


def test_plain_json_comment_is_no_declaration(tmp_path):
    src = tmp_path / "com.jpg"
    shutil.copyfile(SAMPLES / "photo.jpg", src)
    _exiftool('-Comment={"label":"cat","camera":"x"}', str(src))
    assert verify(src, layers=["metadata"]).to_dict()["verdict"] == "none"


def test_propagate_of_a_user_comment_label_gives_one_compliant_label(tmp_path):
    src = _with_user_comment_label(_image(tmp_path, ".jpg"))
    out = tmp_path / "out.jpg"
    run_cli("propagate", "--propagator", "plat", "--propagate-id", "P1", str(src), str(out), check=True)
    layer = verify(out, layers=["metadata"]).to_dict()["layers"]["metadata"]
    assert [c["carrier"] for c in layer["copies"]] == ["xmp-tc260"]
    assert layer["valid"], layer["problems"]
    assert (layer["fields"]["ProduceID"], layer["fields"]["PropagateID"]) == ("old-1", "P1")
