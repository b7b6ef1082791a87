"""QA pass s33: the platform step (``aigc propagate``, ``labeler.propagate.propagate_file``) on every kind
of upload a distribution platform gets (Labeling Measures Art. 6; docs/verdicts.md, "Propagation").

Two defects are pinned here: a producer's label without the propagator fields (what production services
write: Doubao leaves them out, Kling leaves them empty) was refused as "not compliant" although those are
the very fields the platform fills; and what the verifier warned about the upload (a truncated picture,
layers that contradict each other) never reached the platform. The rest checks the rules row by row on
real media: the fields written, pixels and samples untouched, what ``aigc verify`` says of the output.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, PRODUCER, SAMPLES, decoded_digest, ffmpeg_exe, run_cli, seeded_key

from detectors import verify
from labeler import AIGCLabel, label_file, write_label
from labeler.errors import LabelerError
from labeler.propagate import propagate_file

PLATFORM = "001191110102MACQD9K64020001"
SECOND = "001191440300708461136T20002"
FULL = {"Label": "1", "ContentProducer": "kling", "ProduceID": "KLingMuse-1", "ReservedCode1": "3045ab",
        "ContentPropagator": "kling", "PropagateID": "KLingMuse-1", "ReservedCode2": ""}


def _json(fields: dict[str, str]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def _raw_image_data(path: Path) -> bytes:
    """The coded picture of a JPEG (tables and scan), PNG (IHDR, PLTE, IDAT) or WebP (VP8/VP8L/ALPH):
    what a metadata-only rewrite must leave byte for byte."""
    data = path.read_bytes()
    out = []
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos < len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xDA:  # start of scan: the rest is entropy-coded data up to EOI
                out.append(data[pos:])
                break
            length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD):
                out.append(data[pos:pos + 2 + length])
            pos += 2 + length
    elif data[:4] == b"\x89PNG":
        pos = 8
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            if kind in (b"IHDR", b"PLTE", b"tRNS", b"IDAT"):
                out.append(data[pos:pos + 12 + length])
            pos += 12 + length
    elif data[8:12] == b"WEBP":
        pos = 12
        while pos + 8 <= len(data):
            kind, length = struct.unpack("<4sI", data[pos:pos + 8])
            if kind in (b"VP8 ", b"VP8L", b"ALPH"):
                out.append(data[pos:pos + 8 + length])
            pos += 8 + length + (length & 1)
    assert out, f"no coded picture found in {path.name}"
    return b"".join(out)


def _assert_untouched(src: Path, dst: Path) -> None:
    assert decoded_digest(dst) == decoded_digest(src)
    if dst.suffix in (".jpg", ".png", ".webp"):
        assert _raw_image_data(dst) == _raw_image_data(src)


# -- defect 1: production labels without the propagator fields ---------------------------------------


@pytest.mark.parametrize(("sample", "stored"), [
    # Doubao's XMP form: the propagator pair left out
    ("photo.jpg", '{"Label":"1","ContentProducer":"doubao","ProduceID":"2025abc"}'),
    # Kling's MP4 tag: the pair present but empty
    ("clip.mp4", _json({**FULL, "ContentPropagator": "", "PropagateID": ""})),
    # the pair in another letter case, a stale ReservedCode2 with a space: all replaced by the platform
    ("speech.mp3", '{"Label":"1","ContentProducer":"kling","ProduceID":"KLingMuse-1","ReservedCode1":"3045ab"'
     ',"contentpropagator":"kling","propagateid":"KLingMuse-1","ReservedCode2":"old sig"}'),
])
def test_a_label_missing_only_the_propagator_fields_is_propagated(tmp_path, sample, stored):
    src = tmp_path / f"upload{Path(sample).suffix}"
    write_label(SAMPLES / sample, src, stored)
    before = src.read_bytes()
    assert verify(src).metadata.valid is False  # the input is what production services upload
    out = tmp_path / f"published{src.suffix}"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="px-1")
    assert result.action == "propagated" and result.verdict == "confirmed"
    producer = json.loads(stored)
    assert result.label == {
        "Label": "1", "ContentProducer": producer["ContentProducer"], "ProduceID": producer["ProduceID"],
        "ReservedCode1": producer.get("ReservedCode1", ""), "ContentPropagator": PLATFORM,
        "PropagateID": "px-1", "ReservedCode2": "",
    }
    report = verify(out)
    assert report.verdict == "confirmed"
    assert report.metadata.valid and report.metadata.fields == result.label  # now a compliant label
    assert src.read_bytes() == before
    _assert_untouched(src, out)


def test_the_cli_propagates_a_doubao_style_label(tmp_path):
    src = tmp_path / "doubao.png"
    write_label(SAMPLES / "photo.png", src, '{"Label":"1","ContentProducer":"doubao","ProduceID":"d-9"}')
    out = tmp_path / "pub.png"
    proc = run_cli("propagate", str(src), str(out), "--propagator", PLATFORM, "--propagate-id", "px-2",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"]["ContentPropagator"] == PLATFORM


@pytest.mark.parametrize(("stored", "needle"), [
    # a producer field in the wrong case: renaming it would rewrite the producer's label
    ('{"label":"1","ContentProducer":"x","ProduceID":"y","ContentPropagator":"x","PropagateID":"y"}',
     "key 'label'"),
    ('{"Label":"1","ContentProducer":"x","ContentPropagator":"x","PropagateID":"y"}', "ProduceID is missing"),
    ('{"Label":"1","ContentProducer":"Mini Max","ProduceID":"y"}', "ContentProducer has characters"),
    ('{"Label":"AIGC","ContentProducer":"x","ProduceID":"y"}', "Label is 'AIGC'"),
])
def test_problems_in_the_producers_fields_are_still_refused(tmp_path, stored, needle):
    src = tmp_path / "bad.png"
    write_label(SAMPLES / "photo.png", src, stored)
    out = tmp_path / "out.png"
    with pytest.raises(LabelerError, match="not compliant") as err:
        propagate_file(src, out, propagator=PLATFORM, propagate_id="p")
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()
    proc = run_cli("propagate", str(src), str(out), "--propagator", PLATFORM, "--propagate-id", "p")
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert not out.exists()


# -- defect 2: the verifier's warnings about the upload ----------------------------------------------


def test_a_truncated_upload_is_propagated_with_the_verifiers_warning(tmp_path):
    labeled = tmp_path / "labeled.jpg"
    label_file(SAMPLES / "photo.jpg", labeled, AIGCLabel(PRODUCER, "cut-1"))
    src = tmp_path / "cut.jpg"
    src.write_bytes(labeled.read_bytes()[:-40000])
    assert any(w.startswith("damaged jpeg file") for w in verify(src).warnings)
    out = tmp_path / "pub.jpg"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="px-3")
    assert result.action == "propagated"
    assert any(w.startswith("damaged jpeg file") for w in result.warnings)
    proc = run_cli("propagate", str(src), str(tmp_path / "pub2.jpg"), "--propagator", PLATFORM,
                   "--propagate-id", "px-3")
    assert proc.returncode == 0 and "warning: " in proc.stderr and "damaged jpeg file" in proc.stderr


def test_a_label_contradicted_by_the_watermark_is_propagated_with_the_contradiction(tmp_path):
    key = seeded_key("test_qa_propagate_s33-1")
    marked = tmp_path / "marked.png"
    label_file(SAMPLES / "photo.png", marked, AIGCLabel(PRODUCER, "wm-1"), layers=("watermark", "metadata"),
               key=key)
    forged = tmp_path / "forged.png"  # the label replaced by one naming other content
    write_label(marked, forged, AIGCLabel(PRODUCER, "other-9").to_json())
    result = propagate_file(forged, tmp_path / "pub.png", propagator=PLATFORM, propagate_id="px", key=key)
    assert result.action == "propagated"
    assert "the watermark payload does not match the metadata label's ProduceID" in result.warnings
    # a file that could not be examined keeps its one warning, with the note, not twice
    clean = propagate_file(marked, tmp_path / "ok.png", propagator=PLATFORM, propagate_id="px", key=key)
    assert clean.warnings == []


# -- the rules, row by row, on every medium ----------------------------------------------------------


@pytest.mark.parametrize("sample", ["photo.jpg", "photo.png", "speech.mp3", "speech.wav", "speech.flac",
                                    "clip.mp4", "clip.mkv", "clip.webm"])
def test_our_label_is_kept_and_a_second_platform_replaces_the_first(tmp_path, sample):
    src = tmp_path / f"in{Path(sample).suffix}"
    label_file(SAMPLES / sample, src, AIGCLabel(PRODUCER, "id-1", reserved_code1="sig"))
    first = tmp_path / f"first{src.suffix}"
    one = propagate_file(src, first, propagator=PLATFORM, propagate_id="p-1", reserved_code2="plat1")
    second = tmp_path / f"second{src.suffix}"
    two = propagate_file(first, second, propagator=SECOND, propagate_id="p-2")
    assert one.action == two.action == "propagated"
    assert two.before == one.label
    assert two.label == {"Label": "1", "ContentProducer": PRODUCER, "ProduceID": "id-1",
                         "ReservedCode1": "sig", "ContentPropagator": SECOND, "PropagateID": "p-2",
                         "ReservedCode2": ""}
    report = verify(second)
    assert (report.verdict, report.confidence) == ("confirmed", "medium") and report.warnings == []
    assert report.metadata.fields == two.label and report.metadata.valid
    _assert_untouched(src, second)


@pytest.mark.parametrize("sample", ["photo.jpg", "speech.flac", "clip.webm"])
def test_unlabeled_uploads_declared_or_not(tmp_path, sample):
    src = SAMPLES / sample
    copied = tmp_path / f"copy{src.suffix}"
    assert propagate_file(src, copied, propagator=PLATFORM, propagate_id="u").action == "copied"
    assert copied.read_bytes() == src.read_bytes()
    declared = tmp_path / f"declared{src.suffix}"
    result = propagate_file(src, declared, propagator=PLATFORM, propagate_id="u-1", declared_ai=True)
    assert result.action == "labeled" and result.label is not None
    assert result.label == {"Label": "2", "ContentProducer": PLATFORM, "ProduceID": "u-1",
                            "ReservedCode1": "", "ContentPropagator": PLATFORM, "PropagateID": "u-1",
                            "ReservedCode2": ""}
    assert verify(declared).verdict == "possible"
    _assert_untouched(src, declared)


def test_a_label_in_a_comment_field_gives_label_3_and_stays(tmp_path):
    src = tmp_path / "comment.mp3"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(SAMPLES / "speech.mp3"), "-c", "copy",
                    "-metadata", f"comment={_json(FULL)}", str(src)], check=True, timeout=60)
    assert verify(src).verdict == "possible"
    out = tmp_path / "pub.mp3"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="c-1")
    assert result.action == "labeled" and result.label is not None and result.label["Label"] == "3"
    assert any("a non-standard AI declaration remains" in w for w in result.warnings)
    assert verify(out).verdict == "suspected"
    _assert_untouched(src, out)


def test_a_stripped_watermarked_picture_needs_the_key(tmp_path):
    key = seeded_key("test_qa_propagate_s33-2")
    src = tmp_path / "stripped.png"
    label_file(SAMPLES / "photo.png", src, AIGCLabel(PRODUCER, "wm-2"), layers=("watermark",), key=key)
    blind = propagate_file(src, tmp_path / "blind.png", propagator=PLATFORM, propagate_id="w")
    assert blind.action == "copied"
    out = tmp_path / "pub.png"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="w-1", key=key)
    assert result.action == "labeled" and result.label is not None and result.label["Label"] == "3"
    assert verify(out).verdict == "suspected"
    _assert_untouched(src, out)


def test_a_corpus_photo_keeps_its_coded_picture(tmp_path):
    photo = CORPUS / "images" / "mate-Aqua.jpg"
    if not photo.exists():
        pytest.skip("corpus not available")
    src = tmp_path / "aqua.jpg"
    label_file(photo, src, AIGCLabel(PRODUCER, "aqua-1"))
    out = tmp_path / "pub.jpg"
    assert propagate_file(src, out, propagator=PLATFORM, propagate_id="a").action == "propagated"
    assert _raw_image_data(out) == _raw_image_data(src)


def test_an_unreadable_upload_is_one_line_and_writes_nothing(tmp_path):
    src = tmp_path / "cut.mp4"
    src.write_bytes((SAMPLES / "clip.mp4").read_bytes()[:20000])
    out = tmp_path / "pub.mp4"
    proc = run_cli("propagate", str(src), str(out), "--propagator", PLATFORM, "--propagate-id", "p", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("aigc: error: ")
    assert not out.exists()


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path_factory.mktemp("pki") / "keys")
    return local_signer(pki.chain, pki.signer_key), str(pki.trust_anchor)


@pytest.mark.parametrize(("sample", "layers"), [("photo.jpg", ("metadata", "c2pa")),
                                                ("photo.png", ("c2pa",))])
def test_a_signed_upload_keeps_its_manifest_and_is_warned(tmp_path, signer, sample, layers):
    from labeler import label

    sign, anchor = signer
    src = tmp_path / f"signed{Path(sample).suffix}"
    label(SAMPLES / sample, AIGCLabel(PRODUCER, "c-1"), dst=src, layers=layers, signer=sign)
    assert verify(src, trust_anchors=[anchor]).c2pa["state"] == "Trusted"
    out = tmp_path / f"pub{src.suffix}"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="px", trust_anchors=[anchor])
    # with the metadata label: propagated; a manifest alone is a trace: Label 3 (Art. 6 (3))
    assert (result.action, result.label["Label"]) == (("propagated", "1") if "metadata" in layers
                                                      else ("labeled", "3"))
    assert any("C2PA manifest will no longer match its bytes" in w for w in result.warnings)
    report = verify(out, trust_anchors=[anchor])
    assert report.c2pa["present"] and report.c2pa["state"] == "Invalid"  # kept, not removed or re-signed
    assert report.verdict == ("confirmed" if "metadata" in layers else "suspected")
    _assert_untouched(src, out)


def test_an_unreadable_label_is_refused_as_unreadable_not_as_non_compliant(tmp_path):
    # AIGC metadata with no readable value: "not compliant ... rewriting the producer's fields" named
    # fields nobody could read
    src = tmp_path / "blob.png"
    write_label(SAMPLES / "photo.png", src, "AIGC")
    out = tmp_path / "pub.png"
    with pytest.raises(LabelerError, match=r"^the file's label could not be read \(.*not a JSON object\)"):
        propagate_file(src, out, propagator=PLATFORM, propagate_id="p")
    assert not out.exists()


def test_a_copied_signed_upload_keeps_a_valid_manifest_and_gets_no_warning(tmp_path):
    # a manifest that declares no AI: verdict "none", so the upload is copied byte for byte and its
    # manifest still verifies; it was warned all the same that the metadata change breaks it
    src = CORPUS / "provenance" / "C.jpg"
    if not src.exists():
        pytest.skip("corpus not available")
    out = tmp_path / "pub.jpg"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="p")
    assert result.action == "copied" and out.read_bytes() == src.read_bytes()
    assert verify(out).c2pa["state"] == verify(src).c2pa["state"] == "Valid"
    assert not any("C2PA" in w for w in result.warnings)


def test_a_damaged_tiff_gives_our_lines_not_pillows_warnings(tmp_path):
    """Pillow's own UserWarnings (``Tag data larger than file``) reached the terminal as two raw lines of
    source location; every stderr line is now ours."""
    from PIL import Image

    whole = tmp_path / "whole.tiff"
    exif = Image.Exif()
    exif[0x010E] = "desc"
    with Image.open(SAMPLES / "photo.png") as im:
        im.save(whole, exif=exif)
    cut = tmp_path / "cut.tiff"
    cut.write_bytes(whole.read_bytes()[:200])  # inside the ICC profile's data
    out = str(tmp_path / "out.tiff")
    for args in (["propagate", str(cut), out, "--propagator", "p", "--propagate-id", "1"],
                 ["verify", str(cut)]):
        proc = run_cli(*args)
        assert "UserWarning" not in proc.stderr and "warnings.warn" not in proc.stderr, proc.stderr
        assert all(line.startswith("aigc:") for line in proc.stderr.splitlines()), proc.stderr
