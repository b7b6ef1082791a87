"""detectors.verify on files carrying labels in the shapes seen in the wild (digest section 5)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, ffmpeg_exe
from PIL import Image, PngImagePlugin

from detectors import verify
from labeler import AIGCLabel, label_file

LABEL = AIGCLabel(PRODUCER, "wild-1")
BARE = LABEL.to_json()
TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"


def xmp_packet(body: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{body}</rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
    ).encode()


def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def element(value: str) -> str:
    return (f'<rdf:Description rdf:about="" xmlns:TC260="{TC260}"><TC260:AIGC>{escaped(value)}</TC260:AIGC>'
            "</rdf:Description>")


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        # Doubao: the bare object, XML-escaped, in the element form.
        (element(BARE), "bare"),
        # The wrapped Appendix E b) form inside the element.
        (element(LABEL.to_json(wrapped=True)), "wrapped"),
        # Attribute form with another prefix bound to the TC260 URI.
        (f'<rdf:Description rdf:about="" xmlns:C260="{TC260}" C260:AIGC="{escaped(BARE)}"/>', "bare"),
    ],
    ids=["element-escaped", "element-wrapped", "attribute-C260-prefix"],
)
def test_xmp_shapes_in_jpeg(tmp_path: Path, body: str, shape: str):
    path = tmp_path / "wild.jpg"
    image().save(path, quality=90, xmp=xmp_packet(body))
    report = verify(path)
    assert report.verdict == "confirmed"
    assert report.metadata.carrier == "xmp-tc260"
    assert report.metadata.shape == shape
    assert report.metadata.fields == LABEL.as_dict()
    assert report.metadata.valid


def test_png_text_chunk(tmp_path: Path):
    info = PngImagePlugin.PngInfo()
    info.add_text("AIGC", BARE)
    path = tmp_path / "text.png"
    image().save(path, pnginfo=info)
    report = verify(path)
    assert (report.verdict, report.metadata.carrier) == ("confirmed", "png-text")


def test_exif_usercomment_wrapped_json(tmp_path: Path):
    # The Tencent-entity generator's shape: EXIF UserComment, ASCII prefix, the wrapped object.
    wrapped = AIGCLabel("001191440300708461136T1308L", "tx-1").to_json(wrapped=True)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + wrapped.encode()
    path = tmp_path / "uc.jpg"
    image().save(path, exif=exif.tobytes())
    report = verify(path)
    assert (report.verdict, report.metadata.carrier) == ("confirmed", "exif-usercomment")
    assert report.metadata.fields["ContentProducer"] == "001191440300708461136T1308L"
    assert report.metadata.warnings == []


def test_vendor_declaration_is_reported_not_taken_for_a_label(tmp_path: Path):
    exif = Image.Exif()
    vendor = {"ServiceProvider": "cloudX", "ServiceUser": "u1", "ContentId": "c-9", "AIGC": "1"}
    exif[0x010E] = json.dumps(vendor)
    path = tmp_path / "vendor.jpg"
    image().save(path, exif=exif.tobytes())
    report = verify(path)
    assert report.metadata.present is False
    assert report.verdict == "possible"
    assert [d["carrier"] for d in report.metadata.declarations] == ["exif-imagedescription"]
    assert "non-standard AI declaration" in report.reasons[0]


def test_minimax_values_are_evidence_but_invalid(tmp_path: Path):
    info = PngImagePlugin.PngInfo()
    info.add_text("AIGC", '{"Label":"AIGC","ContentProducer":"Mini Max","ProduceID":"m-1"}')
    path = tmp_path / "mm.png"
    image().save(path, pnginfo=info)
    report = verify(path)
    assert report.metadata.present and not report.metadata.valid
    assert report.verdict == "possible"
    assert any("Label is 'AIGC'" in p for p in report.metadata.problems)
    assert any("ContentProducer has characters outside" in p for p in report.metadata.problems)


@pytest.mark.parametrize("label_value", ["2", "3"])
def test_label_values_map_to_verdicts(tmp_path: Path, label_value: str):
    out = tmp_path / f"l{label_value}.png"
    label_file(Path(__file__).resolve().parents[1] / "samples" / "photo.png", out,
               AIGCLabel(PRODUCER, "v", label=label_value))
    assert verify(out).verdict == {"2": "possible", "3": "suspected"}[label_value]


def _png_with_two_copies(path: Path, xmp_value: str, text_value: str) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(element(xmp_value)).decode())
    info.add_text("AIGC", text_value)
    image().save(path, pnginfo=info)


def test_identical_copies_warn_and_differing_copies_conflict(tmp_path: Path):
    same, differ = tmp_path / "same.png", tmp_path / "differ.png"
    _png_with_two_copies(same, BARE, BARE)
    _png_with_two_copies(differ, BARE, LABEL.replace(produce_id="other").to_json())
    r_same, r_differ = verify(same), verify(differ)
    assert r_same.metadata.valid and any("identical label copy" in w for w in r_same.metadata.warnings)
    assert not r_differ.metadata.valid
    problems = r_differ.metadata.problems
    assert any("conflicting label copy in png-text" in p and "ProduceID" in p for p in problems)
    # Relabeling such a file leaves exactly one label.
    fixed = tmp_path / "fixed.png"
    label_file(differ, fixed, LABEL)
    report = verify(fixed)
    assert report.metadata.valid and len(report.metadata.copies) == 1


def test_mp4_labeled_by_ffmpeg_itself(tmp_path: Path):
    # Kling-style: the bare object in the mdta AIGC key, written by ffmpeg with use_metadata_tags.
    src = Path(__file__).resolve().parents[1] / "samples" / "clip.mp4"
    out = tmp_path / "ff.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-c", "copy", "-map", "0", "-metadata",
                    f"AIGC={BARE}", "-movflags", "use_metadata_tags", str(out)], check=True)
    report = verify(out)
    assert (report.verdict, report.metadata.carrier) == ("confirmed", "mp4-keys")
    assert report.metadata.fields == LABEL.as_dict()


def test_mp4_without_use_metadata_tags_has_no_label(tmp_path: Path):
    # The digest's trap: without -movflags use_metadata_tags ffmpeg drops the tag and exits 0.
    src = Path(__file__).resolve().parents[1] / "samples" / "clip.mp4"
    out = tmp_path / "dropped.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-c", "copy", "-metadata", f"AIGC={BARE}",
                    str(out)], check=True)
    assert verify(out).verdict == "none"


def test_a_failing_detector_costs_only_its_layer(tmp_path: Path, monkeypatch):
    import detectors.visible

    def broken(*args, **kwargs):
        raise RuntimeError("simulated detector bug")

    monkeypatch.setattr(detectors.visible, "detect_image_label", broken)
    out = tmp_path / "l.png"
    label_file(Path(__file__).resolve().parents[1] / "samples" / "photo.png", out, LABEL)
    report = verify(out)
    assert report.verdict == "confirmed" and report.errors == []
    assert report.visible is None and "visible" not in report.to_dict()["layers"]
    assert report.warnings == [
        "the visible layer failed: internal error (RuntimeError: simulated detector bug); please report it"
    ]
