"""QA fixes in what ``detectors.verify`` says about its layers: a layer not examined is never called absent
(D); a C2PA soft binding is compared with the watermark only under the key it names (E); C2PA that could
not look says so, and a type C2PA defines no manifest for is not examined (F); ``layers=["quick"]`` is
``layers="quick"`` (G).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import PRODUCER, ROOT, SAMPLES, seeded_key

from detectors import QUICK_WATERMARK_NOTE, decide, verify
from detectors.c2pa import C2paLayer
from detectors.metadata import MetadataLayer, judge_metadata
from labeler import AIGCLabel, label_file, read_labels
from labeler.errors import InvalidArgument
from labeler.watermark import payload_from_produce_id

ID = "qa-wording-1"
KEY_ID = "0123456789abcdef"
AIGC_NO_MD = "the C2PA manifest carries an AIGC assertion but the file has no metadata label"
SOFT = "the C2PA soft binding names another watermark payload than the one in the pixels"
MARK = {"present": True, "kind": "image-text", "position": "bottom-right", "text": "AI生成", "score": 0.9}


def wm(produce_id: str = ID, key_id: str = KEY_ID, matches: bool | None = None) -> dict[str, Any]:
    """A found watermark, in the shape of detectors.watermark_layer."""
    return {"present": True, "checked": True, "payload": payload_from_produce_id(produce_id).hex(),
            "p_value": 3.1e-14, "method": "dct", "matches_metadata": matches, "key_id": key_id}


def c2pa(fields: dict[str, Any] | None = None, binding: dict[str, Any] | None = None) -> dict[str, Any]:
    return C2paLayer(present=True, state="Trusted", ai_generated=True, signer="s", issuer="i",
                     aigc_fields=fields, soft_binding=binding).to_dict()


@pytest.fixture(scope="module")
def label1(tmp_path_factory: pytest.TempPathFactory) -> MetadataLayer:
    path = tmp_path_factory.mktemp("qa-wording") / "label1.png"
    label_file(SAMPLES / "photo.png", path, AIGCLabel(PRODUCER, ID))
    return judge_metadata(read_labels(path)[1])


# -- D: not examined is not absent -----------------------------------------------------------------------


def test_watermark_with_metadata_not_examined_is_not_called_stripped() -> None:
    everything = decide(MetadataLayer(), wm())
    chosen = decide(MetadataLayer(), wm(), examined=["watermark"])
    assert (chosen.verdict, chosen.confidence) == (everything.verdict, everything.confidence)
    assert chosen.reasons[0] == "dct watermark (key 0123456789abcdef, p=3.1e-14) found; metadata not " \
                                "examined; C2PA not examined"
    assert not any("no metadata label" in r or "stripped" in r for r in chosen.reasons)
    # metadata read (and empty), C2PA not examined
    no_c2pa = decide(MetadataLayer(), wm(), examined=["metadata", "watermark"])
    assert no_c2pa.reasons[0].endswith("found but no metadata label (stripped?); C2PA not examined")


def test_c2pa_aigc_assertion_without_examined_metadata_is_no_notice(label1) -> None:
    manifest = c2pa(AIGCLabel(PRODUCER, ID).as_dict())
    assert decide(MetadataLayer(), None, manifest).warnings == (AIGC_NO_MD,)  # row 21
    chosen = decide(MetadataLayer(), None, manifest, examined=["c2pa"])
    assert chosen.warnings == () and (chosen.verdict, chosen.confidence) == ("confirmed", "high")


def test_visible_only_names_what_was_not_examined() -> None:
    decision = decide(MetadataLayer(), None, None, MARK, examined=["visible"])
    assert (decision.verdict, decision.confidence) == ("possible", "low")
    assert decision.reasons[0] == ("visible label 'AI生成' at bottom-right, but no machine-readable label "
                                   "found (metadata not examined; watermark not examined; C2PA not examined)")
    looked = decide(MetadataLayer(), None, None, MARK, examined=["metadata", "c2pa", "visible"])
    assert looked.reasons[0].endswith("but no machine-readable label found (watermark not examined)")


def test_unreadable_metadata_is_not_called_absent() -> None:
    unreadable = MetadataLayer(problems=["the metadata could not be read: xmp packet is not well-formed"])
    decision = decide(unreadable, wm(), c2pa(AIGCLabel(PRODUCER, ID).as_dict()))
    assert decision.reasons[0].endswith("found; the metadata could not be read")
    assert AIGC_NO_MD not in decision.warnings


@pytest.fixture(scope="module")
def labeled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("qa-wording-e2e") / "photo.jpg"
    key = seeded_key("test_qa_verify_layer_wording-1")
    label_file(SAMPLES / "photo.jpg", path, AIGCLabel(PRODUCER, ID), layers="watermark,visible,metadata",
               key=key)
    return path, key


def test_end_to_end_layers_watermark_and_visible(labeled) -> None:
    path, key = labeled
    report = verify(path, key=key, layers="watermark")
    assert (report.verdict, report.confidence) == ("confirmed", "medium")
    assert "metadata not examined" in report.reasons[0] and "stripped" not in report.reasons[0]
    visible = verify(path, layers="visible")
    assert visible.verdict == "possible" and "metadata not examined" in visible.reasons[0]
    # every layer examined: the documented wording is unchanged
    assert verify(path, key=key).reasons[0].startswith("metadata label in xmp-tc260 says Label=1")


# -- E: the soft binding of another key -------------------------------------------------------------------


def test_soft_binding_of_another_key_is_not_a_contradiction(label1) -> None:
    fields = AIGCLabel(PRODUCER, ID).as_dict()
    other = {"alg": "aigc-labeler.wm.dct.1", "method": "dct", "key_id": "9439ceb7d9675b30",
             "payload": payload_from_produce_id("another-id").hex()}
    decision = decide(label1, wm(matches=True), c2pa(fields, other))
    assert SOFT not in decision.warnings and decision.confidence == "high"
    assert any("soft binding names a watermark of key 9439ceb7d9675b30, not of the key given "
               "(0123456789abcdef): not checked" in r for r in decision.reasons)
    # the same key and another payload still contradicts (docs/verdicts.md row 14)
    same = decide(label1, wm(matches=True), c2pa(fields, {**other, "key_id": KEY_ID}))
    assert SOFT in same.warnings and same.confidence == "low"
    # another vendor's binding names no key of ours: nothing to compare
    foreign = {"alg": "com.example.mark", "method": None, "key_id": None, "payload": "00" * 8}
    assert SOFT not in decide(label1, wm(matches=True), c2pa(fields, foreign)).warnings


# -- F: C2PA that could not look --------------------------------------------------------------------------


def test_c2pa_that_could_not_parse_the_file_says_so(tmp_path: Path) -> None:
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path / "pki")
    signed = tmp_path / "signed.wav"
    label_file(SAMPLES / "speech.wav", signed, AIGCLabel(PRODUCER, "qa-wav"), layers="metadata,c2pa",
               signer=local_signer(pki.chain, pki.signer_key))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(signed.read_bytes()[:200000])  # the manifest chunk was at the end
    report = verify(cut, layers="metadata,c2pa").to_dict()
    assert report["examined"] == ["metadata", "c2pa"] and report["layers"]["c2pa"]["present"] is False
    assert "the c2pa layer could not be examined: asset could not be parsed: Invalid RIFF format" in report[
        "warnings"]
    # an intact file without a manifest: looked, found nothing, no warning
    assert verify(SAMPLES / "speech.wav", layers="metadata,c2pa").warnings == []


@pytest.mark.parametrize("name", ["clip.mkv", "clip.webm"])
def test_types_c2pa_defines_no_manifest_for_are_not_examined(name: str) -> None:
    report = verify(SAMPLES / name, visible=False).to_dict()
    assert report["examined"] == ["metadata"] and "c2pa" not in report["layers"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report, json.loads((ROOT / "docs" / "report.schema.json").read_text()))
    assert report["warnings"] == [] and report["verdict"] == "none"
    asked = verify(SAMPLES / name, layers="c2pa").to_dict()
    assert asked["examined"] == [] and asked["verdict"] == "none"
    assert asked["warnings"] == [f"none of the layers asked for could be examined: C2PA defines no manifest "
                                 f"for {name.split('.')[1]} files"]


# -- G: layers=["quick"] ----------------------------------------------------------------------------------


def test_quick_as_a_sequence(labeled) -> None:
    path, key = labeled
    assert verify(SAMPLES / "photo.png", layers=["quick"]).examined == ["metadata", "c2pa"]  # no key needed
    as_list = verify(SAMPLES / "photo.png", key=key, layers=[" quick "]).to_dict()
    as_str = verify(SAMPLES / "photo.png", key=key, layers="quick").to_dict()
    assert as_list == as_str and as_list["layers"]["watermark"]["note"] == QUICK_WATERMARK_NOTE
    tupled = verify(path, key=key, layers=("quick",)).to_dict()
    assert tupled == verify(path, key=key, layers="quick").to_dict()
    for bad in ([1], 5):
        with pytest.raises(InvalidArgument):
            verify(SAMPLES / "photo.png", layers=bad)


@pytest.mark.parametrize(("name", "says_c2pa"), [("clip.mkv", False), ("clip.webm", False),
                                                 ("clip.mp4", True), ("photo.jpg", True)])
def test_c2pa_is_not_called_unexamined_where_c2pa_defines_no_manifest(name: str, says_c2pa: bool) -> None:
    # Matroska, WebM, Ogg and FLV have no C2PA manifest to look at: "not examined: c2pa" on every such
    # file (until 2026-12-07) read as a layer the user could ask for. Where C2PA applies it is still said.
    line = verify(SAMPLES / name, layers=("metadata",)).summary()
    assert line.endswith("not examined: " + ("c2pa, " if says_c2pa else "") + "watermark, visible"), line
