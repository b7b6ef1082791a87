"""The verdict table of docs/verdicts.md, row by row, and a few rows end to end on real files.

Metadata layers come from real files labeled here (read back with the real readers and judged with
detectors.metadata.judge_metadata); watermark, C2PA and visible layers are built with the detectors' own
result classes (or, for the watermark, in exactly the shape detectors.watermark_layer produces).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import PRODUCER, ROOT, SAMPLES, seeded_key
from PIL import Image, PngImagePlugin

from detectors import CONFIDENCES, VERDICTS, decide, verify
from detectors.c2pa import C2paLayer
from detectors.metadata import MetadataLayer, judge_metadata
from detectors.visible import AudioCueResult, VisibleResult
from labeler import AIGCLabel, label_file, read_labels, write_label
from labeler.watermark import payload_from_produce_id

ID = "row-test-1"
KEY_ID = "0123456789abcdef"
TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"
DOC = ROOT / "docs" / "verdicts.md"


def _small_image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def md(tmp_path_factory) -> dict[str, MetadataLayer]:
    """Metadata layers judged from real labeled files, one per metadata class of the table."""
    folder = tmp_path_factory.mktemp("verdict-md")
    paths: dict[str, Path] = {}
    for value in ("1", "2", "3"):
        paths[value] = folder / f"label{value}.png"
        label_file(SAMPLES / "photo.png", paths[value], AIGCLabel(PRODUCER, ID, label=value))
    # Real-world shapes (labeling spec section 5): Doubao-like with fields missing, MiniMax-like Label.
    paths["noncompliant"] = folder / "noncompliant.png"
    write_label(SAMPLES / "photo.png", paths["noncompliant"], f'{{"Label":"1","ContentProducer":"doubao",'
                f'"ProduceID":"{ID}"}}')
    paths["bad"] = folder / "bad.png"
    write_label(SAMPLES / "photo.png", paths["bad"], '{"Label":"AIGC","ContentProducer":"Mini Max",'
                f'"ProduceID":"{ID}"}}')
    exif = Image.Exif()
    exif[0x010E] = json.dumps({"ServiceProvider": "cloudX", "ServiceUser": "u1", "ContentId": "c-9"})
    paths["declaration"] = folder / "vendor.jpg"
    _small_image().save(paths["declaration"], exif=exif.tobytes())
    # Two copies that disagree: XMP (the label) and a PNG tEXt chunk with another ProduceID.
    info = PngImagePlugin.PngInfo()
    body = AIGCLabel(PRODUCER, ID).to_json().replace("&", "&amp;").replace('"', "&quot;")
    info.add_itxt("XML:com.adobe.xmp",
                  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  f'<rdf:Description rdf:about="" xmlns:TC260="{TC260}"><TC260:AIGC>{body}</TC260:AIGC>'
                  "</rdf:Description></rdf:RDF></x:xmpmeta>")
    info.add_text("AIGC", AIGCLabel(PRODUCER, "another-id").to_json())
    paths["conflict"] = folder / "conflict.png"
    _small_image().save(paths["conflict"], pnginfo=info)
    paths["none"] = SAMPLES / "photo.png"
    layers = {name: judge_metadata(read_labels(path)[1]) for name, path in paths.items()}
    # The fixture is only useful if each file really is what its name says.
    assert [layers[v].label_value for v in ("1", "2", "3")] == ["1", "2", "3"]
    assert layers["1"].valid and not layers["noncompliant"].valid
    assert layers["noncompliant"].label_value == "1"
    assert layers["bad"].present and layers["bad"].label_value == "AIGC"
    assert not layers["declaration"].present and layers["declaration"].declarations
    assert layers["conflict"].label_value == "1"
    assert any("conflicting" in p for p in layers["conflict"].problems)
    assert not layers["none"].present and not layers["none"].declarations
    return layers


def wm(produce_id: str = ID, matches: bool | None = True) -> dict[str, Any]:
    """A found watermark, in the shape of detectors.watermark_layer."""
    return {"present": True, "checked": True, "payload": payload_from_produce_id(produce_id).hex(),
            "p_value": 3.1e-14, "method": "dct", "matches_metadata": matches, "key_id": KEY_ID}


def c2pa(state: str = "Valid", ai: bool | None = True, fields: dict[str, Any] | None = None,
         binding: str | None = None) -> dict[str, Any]:
    layer = C2paLayer(present=True, state=state, ai_generated=ai, signer="aigc-labeler test signer",
                      issuer="aigc-labeler test CA",
                      codes=[] if state == "Trusted" else ["signingCredential.untrusted"],
                      aigc_fields=fields,
                      soft_binding={"alg": "aigc-labeler.wm.dct.1", "method": "dct", "key_id": KEY_ID,
                                    "payload": binding} if binding else None)
    if state == "Invalid":
        layer.codes.insert(0, "assertion.dataHash.mismatch")
    return layer.to_dict()


def fields(label: str = "1", produce_id: str = ID) -> dict[str, Any]:
    return AIGCLabel(PRODUCER, produce_id, label=label).as_dict()


IMAGE_MARK = VisibleResult(True, kind="image-text", position="bottom-right", height_ratio=0.061, score=0.91,
                           text="AI生成").to_dict()
VIDEO_MARK = {**VisibleResult(True, kind="video-text", position="top-left", height_ratio=0.07, score=0.8,
                              text="AI生成", seconds=2.5).to_dict()}
AUDIO_CUE = AudioCueResult(True, position="start", seconds=0.25, score=0.83).to_dict()
AUDIO_VOICE = VisibleResult(True, kind="audio-voice", position="start", seconds=0.0, score=0.7,
                            text="本内容由人工智能生成").to_dict()


@dataclass(frozen=True)
class Row:
    row: int
    layers: Callable[[dict[str, MetadataLayer]], tuple[Any, Any, Any, Any]]
    verdict: str
    confidence: str | None
    reason: str  # the first reason starts with this
    warnings: tuple[str, ...] = ()
    more: str = ""  # a later reason contains this


WM_MISMATCH = "the watermark payload does not match the metadata label's ProduceID"
NOT_AI_LABEL = "the C2PA manifest does not declare AI generation but the metadata label says Label="
NOT_AI_WM = "the C2PA manifest does not declare AI generation but the pixels carry the watermark"
AIGC_NO_MD = "the C2PA manifest carries an AIGC assertion but the file has no metadata label"
L1 = "metadata label in xmp-tc260 says Label=1 (AI-generated)"
WM = "dct watermark (key 0123456789abcdef, p=3.1e-14)"


def SIGNED(state: str) -> str:  # noqa: N802 - reads as a constant in the table
    return f"C2PA manifest ({state}, signer aigc-labeler test signer)"


ROWS = [
    # the metadata label decides
    Row(1, lambda m: (m["1"], None, None, None), "confirmed", "medium", L1),
    Row(2, lambda m: (m["2"], None, None, None), "possible", "medium",
        "metadata label in xmp-tc260 says Label=2 (possibly AI-generated)"),
    Row(3, lambda m: (m["3"], None, None, None), "suspected", "medium",
        "metadata label in xmp-tc260 says Label=3 (suspected AI-generated)"),
    Row(4, lambda m: (m["noncompliant"], None, None, None), "confirmed", "medium", L1,
        more="does not fully comply with GB 45438 Appendix E"),
    Row(5, lambda m: (m["1"], wm(), None, None), "confirmed", "high", L1,
        more="carries the payload of the label's ProduceID"),
    Row(6, lambda m: (m["1"], wm("other-id", False), None, None), "confirmed", "low", L1, (WM_MISMATCH,),
        more="payload does not match the label's ProduceID"),
    Row(7, lambda m: (m["3"], wm(), None, None), "suspected", "high",
        "metadata label in xmp-tc260 says Label=3",
        more="the watermark says AI-generated although the label says Label=3"),
    Row(8, lambda m: (m["1"], None, c2pa("Trusted", True, fields()), None), "confirmed", "high", L1,
        more=SIGNED("Trusted") + " declares AI-generated content"),
    Row(9, lambda m: (m["1"], None, c2pa("Valid", True, fields()), None), "confirmed", "high", L1,
        more="C2PA manifest (Valid"),
    Row(9, lambda m: (m["1"], None, c2pa("Valid", True, {**fields(), "ContentPropagator": "platformX",
                                                          "PropagateID": "px-1"}), None), "confirmed", "high",
        L1, ("the metadata label's propagator fields (ContentPropagator, PropagateID) differ from the C2PA "
             "AIGC assertion: the label was propagated after signing",), more="C2PA manifest (Valid"),
    Row(10, lambda m: (m["1"], None, c2pa("Valid", True, fields("1", "other-id")), None), "confirmed", "low",
        L1, ("the C2PA AIGC assertion differs from the metadata label in ProduceID, PropagateID",)),
    Row(11, lambda m: (m["1"], None, c2pa("Invalid", True, fields()), None), "confirmed", "medium", L1,
        more="C2PA manifest (Invalid"),
    Row(12, lambda m: (m["1"], None, c2pa("Valid", False), None), "confirmed", "low", L1,
        (NOT_AI_LABEL + "1",), more="declares a non-AI digital source type"),
    Row(13, lambda m: (m["2"], None, c2pa("Trusted", False), None), "possible", "low",
        "metadata label in xmp-tc260 says Label=2", (NOT_AI_LABEL + "2",)),
    Row(14, lambda m: (m["1"], wm(), c2pa("Trusted", True, fields(), binding="00" * 8), None), "confirmed",
        "low", L1, ("the C2PA soft binding names another watermark payload than the one in the pixels",)),
    Row(15, lambda m: (m["conflict"], None, None, None), "confirmed", "low",
        "metadata label in xmp-tc260 says Label=1", more="does not fully comply"),
    Row(16, lambda m: (m["1"], None, None, IMAGE_MARK), "confirmed", "medium", L1,
        more="visible label 'AI生成' at bottom-right"),
    # no usable metadata label: the watermark decides
    Row(17, lambda m: (m["none"], wm(matches=None), None, None), "confirmed", "medium",
        "watermark only: " + WM + " found but no metadata label (stripped?)"),
    Row(18, lambda m: (m["none"], wm(matches=None), c2pa("Valid", True), None), "confirmed", "high",
        WM + " found but no metadata label", more="C2PA manifest (Valid"),
    Row(19, lambda m: (m["bad"], wm(matches=True), None, None), "confirmed", "medium",
        WM + " found; the AIGC metadata has no usable Label value",
        more="its Label value is 'AIGC', not 1/2/3"),
    Row(20, lambda m: (m["none"], wm(matches=None), c2pa("Valid", False), None), "confirmed", "low",
        "watermark only", (NOT_AI_WM,)),
    # no label, no watermark: a C2PA declaration decides
    Row(21, lambda m: (m["none"], None, c2pa("Trusted", True, fields()), None), "confirmed", "high",
        SIGNED("Trusted") + " declares AI-generated content", (AIGC_NO_MD,)),
    Row(22, lambda m: (m["none"], None, c2pa("Valid", True), None), "confirmed", "medium",
        SIGNED("Valid") + " declares AI-generated content"),
    Row(23, lambda m: (m["none"], None, c2pa("Valid", True, fields("3")), None), "suspected", "medium",
        SIGNED("Valid") + " declares AI-generated content "
        "(its AIGC assertion says Label=3)", (AIGC_NO_MD,)),
    Row(24, lambda m: (m["none"], None, c2pa("Invalid", True), None), "possible", "low",
        SIGNED("Invalid") + " declares AI-generated content"),
    Row(25, lambda m: (m["bad"], None, c2pa("Valid", True, fields()), None), "confirmed", "low",
        "C2PA manifest (Valid", ("the C2PA AIGC assertion differs from the metadata label in Label, "
                                 "ContentProducer, ReservedCode1, ContentPropagator, PropagateID, "
                                 "ReservedCode2",),
        more="its Label value is 'AIGC'"),
    # only weak evidence
    Row(26, lambda m: (m["bad"], None, None, None), "possible", "low",
        "AIGC metadata in xmp-tc260 but its Label value is 'AIGC', not 1/2/3"),
    Row(27, lambda m: (m["declaration"], None, None, None), "possible", "low",
        "non-standard AI declaration (exif-imagedescription), not a GB 45438 label"),
    Row(28, lambda m: (m["none"], None, None, IMAGE_MARK), "possible", "low",
        "visible label 'AI生成' at bottom-right, but no machine-readable label"),
    Row(28, lambda m: (m["none"], None, None, VIDEO_MARK), "possible", "low",
        "visible label 'AI生成' at top-left, but no machine-readable label"),
    Row(29, lambda m: (m["none"], None, None, AUDIO_CUE), "possible", "low",
        "audio rhythm cue (Morse AI) at start (0.25 s), but no machine-readable label"),
    Row(30, lambda m: (m["none"], None, None, AUDIO_VOICE), "possible", "low",
        "audio voice prompt '本内容由人工智能生成' at start (0.0 s), but no machine-readable label"),
    # nothing that says AI
    Row(31, lambda m: (m["none"], None, c2pa("Trusted", False), None), "none", None, "no AIGC label found",
        more=SIGNED("Trusted") + " declares a non-AI digital source type"),
    Row(32, lambda m: (m["none"], None, None, None), "none", None, "no AIGC label found"),
]


def _ids(rows: list[Row]) -> list[str]:
    # A row may have several cases (row 28: image and video); the ids stay unique.
    seen: dict[int, int] = {}
    out = []
    for r in rows:
        seen[r.row] = seen.get(r.row, 0) + 1
        out.append(f"row{r.row}" + ("" if seen[r.row] == 1 else chr(ord("a") + seen[r.row] - 1)))
    return out


@pytest.mark.parametrize("row", ROWS, ids=_ids(ROWS))
def test_verdict_table_row(md, row: Row):
    metadata, watermark, c2pa_layer, visible = row.layers(md)
    decision = decide(metadata, watermark, c2pa_layer, visible)
    assert (decision.verdict, decision.confidence) == (row.verdict, row.confidence)
    assert decision.reasons[0].startswith(row.reason), decision.reasons
    assert decision.warnings == row.warnings
    if row.more:
        assert any(row.more in r for r in decision.reasons[1:]), decision.reasons
    # Every contradiction is explained (a warning or a metadata problem) and is what made it "low".
    assert set(decision.warnings) >= set(decision.contradictions) - {
        "conflicting label copies in the metadata (see layers.metadata.problems)"}
    if decision.contradictions:
        assert decision.confidence == "low"


def _doc_rows() -> dict[int, tuple[str, str | None]]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("<!-- verdict-table -->"):text.index("<!-- /verdict-table -->")]
    rows: dict[int, tuple[str, str | None]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].isdigit():
            verdict, confidence = (c.strip("`") for c in cells[2:4])
            rows[int(cells[0])] = (verdict, None if confidence in ("—", "null") else confidence)
    return rows


def test_docs_table_matches_the_code():
    documented = _doc_rows()
    tested = {r.row: (r.verdict, r.confidence) for r in ROWS}
    assert documented == tested
    assert list(documented) == list(range(1, len(documented) + 1))  # numbered 1..N without gaps
    assert {v for v, _ in documented.values()} == set(VERDICTS)
    assert {c for _, c in documented.values()} == {*CONFIDENCES, None}


def test_odd_layer_contents_never_raise():
    # A manifest without state or signer, a watermark without p-value, a visible layer of a new kind.
    odd_c2pa = {"present": True, "state": None, "ai_generated": True, "aigc_fields": {"Label": None}}
    odd_wm = {"present": True, "payload": None, "p_value": None, "method": None, "matches_metadata": None}
    decision = decide(MetadataLayer(), odd_wm, odd_c2pa, {"present": True, "kind": "future-kind"})
    assert (decision.verdict, decision.confidence) == ("confirmed", "medium")
    assert decision.reasons[0] == "None watermark (key None, p=?) found but no metadata label"
    assert "C2PA manifest (not validated, signer None) declares AI-generated content" in decision.reasons


# -- end to end, on real files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> dict[str, Any]:
    """photo.jpg with watermark and metadata (ProduceID wm-e2e), and the key."""

    folder = tmp_path_factory.mktemp("verdict-e2e")
    key = seeded_key("test_verdict-1")
    out = folder / "marked.jpg"
    label_file(SAMPLES / "photo.jpg", out, AIGCLabel(PRODUCER, "wm-e2e"), layers="watermark,metadata",
               key=key)
    return {"path": out, "key": key, "folder": folder}


def test_e2e_stripped_file_is_confirmed_by_the_watermark_only(marked):
    stripped = marked["folder"] / "stripped.png"
    with Image.open(marked["path"]) as im:  # a screenshot-like copy: resized, no metadata at all
        Image.fromarray(np.asarray(im.resize((850, 741), Image.Resampling.BICUBIC))).save(stripped)
    report = verify(stripped, key=marked["key"], visible=False)
    assert report.metadata is not None and report.metadata.present is False
    assert (report.verdict, report.confidence) == ("confirmed", "medium")
    assert report.reasons[0].startswith("watermark only: ") and report.warnings == []


def test_e2e_label_with_a_watermark_of_another_produce_id(marked):
    relabeled = marked["folder"] / "relabeled.jpg"
    label_file(marked["path"], relabeled, AIGCLabel(PRODUCER, "changed-id"))  # metadata only: pixels kept
    report = verify(relabeled, key=marked["key"], visible=False)
    assert report.watermark is not None and report.watermark["matches_metadata"] is False
    assert (report.verdict, report.confidence) == ("confirmed", "low")
    assert report.warnings == [WM_MISMATCH]
    both = verify(marked["path"], key=marked["key"], visible=False)
    assert (both.verdict, both.confidence, both.warnings) == ("confirmed", "high", [])


def test_e2e_c2pa_signed_labeled_file(tmp_path):
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path / "pki")
    out = tmp_path / "signed.png"
    label_file(SAMPLES / "photo.png", out, AIGCLabel(PRODUCER, "c2pa-e2e"), layers="metadata,c2pa",
               signer=local_signer(pki.chain, pki.signer_key))
    trusted = verify(out, trust_anchors=[str(pki.trust_anchor)], visible=False)
    assert trusted.c2pa is not None and trusted.c2pa["state"] == "Trusted"
    assert (trusted.verdict, trusted.confidence, trusted.warnings) == ("confirmed", "high", [])
    # Untrusted signer: still two intact layers that agree (metadata + a Valid manifest with equal fields).
    valid = verify(out, visible=False)
    assert valid.c2pa is not None and valid.c2pa["state"] == "Valid"
    assert (valid.verdict, valid.confidence) == ("confirmed", "high")
    assert any(r.startswith("C2PA manifest (Valid") for r in valid.reasons)
    # JSON form: confidence right after verdict, and the report still matches the schema.
    as_dict = valid.to_dict()
    keys = list(as_dict)
    assert keys[keys.index("verdict") + 1] == "confidence"
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    jsonschema.validate(as_dict, schema)
