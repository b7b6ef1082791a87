"""The seven-field label: validation, first-write rule, serialization, tolerant parsing."""

from __future__ import annotations

import json

import pytest

from labeler.errors import InvalidLabel
from labeler.record import FIELD_NAMES, AIGCLabel, LabelParseError, is_label_json, parse_label

CODE = "001191110102MACQD9K64010000"


def test_first_write_rule_and_standard_order():
    rec = AIGCLabel(content_producer=CODE, produce_id="img-42")
    assert rec.content_propagator == CODE and rec.propagate_id == "img-42"
    assert list(json.loads(rec.to_json())) == list(FIELD_NAMES)
    assert rec.to_json() == (
        '{"Label":"1","ContentProducer":"001191110102MACQD9K64010000","ProduceID":"img-42",'
        '"ReservedCode1":"","ContentPropagator":"001191110102MACQD9K64010000","PropagateID":"img-42",'
        '"ReservedCode2":""}'
    )
    # GB 45438 Appendix E b) shows the wrapped form with a space after "AIGC":
    assert rec.to_json(wrapped=True).startswith('{"AIGC": {"Label":"1",')
    assert rec.problems() == [] and rec.warnings() == []


def test_explicit_propagator_kept():
    rec = AIGCLabel(CODE, "a", content_propagator="platformX", propagate_id="p-9", label="2")
    assert rec.as_dict()["ContentPropagator"] == "platformX"
    assert rec.as_dict()["PropagateID"] == "p-9"
    assert rec.replace(propagate_id="p-10").propagate_id == "p-10"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"label": "4"}, "Label is '4'"),
        ({"label": ""}, "Label is ''"),
        ({"content_producer": ""}, "ContentProducer is empty"),
        ({"produce_id": ""}, "ProduceID is empty"),
        ({"produce_id": "has space"}, "ProduceID has characters outside"),
        ({"produce_id": "back\\slash"}, "ProduceID has characters outside"),
        ({"reserved_code1": "中文"}, "ReservedCode1 has characters outside"),
    ],
)
def test_check_rejects(kwargs, needle):
    base = {"content_producer": CODE, "produce_id": "x"}
    base.update(kwargs)
    rec = AIGCLabel(**base)
    with pytest.raises(InvalidLabel, match=needle):
        rec.check()


def test_quote_allowed_as_escaped():
    rec = AIGCLabel(CODE, 'id"q').check()
    assert '\\"' in rec.to_json()
    assert parse_label(rec.to_json()).fields["ProduceID"] == 'id"q'


def test_soft_warning_for_names():
    assert AIGCLabel("doubao", "x").problems() == []
    assert "not a 27-character TC260 provider code" in AIGCLabel("doubao", "x").warnings()[0]


STANDARD = AIGCLabel(CODE, "img-42").to_json()


@pytest.mark.parametrize(
    ("raw", "shape"),
    [
        (STANDARD, "bare"),
        ('{"AIGC": ' + STANDARD + "}", "wrapped"),
        (STANDARD.replace('"', "&quot;"), "bare+xml-escaped"),
        (('{"AIGC": ' + STANDARD + "}").replace('"', "&quot;"), "wrapped+xml-escaped"),
        (json.dumps(STANDARD), "bare+double-encoded"),
        ("AIGC" + STANDARD, "bare+prefixed"),
        ("AIGC=" + STANDARD, "bare+prefixed"),
        ("ASCII\x00\x00\x00" + '{"AIGC": ' + STANDARD + "}", "wrapped+embedded"),
        ("\ufeff  " + STANDARD + "\x00", "bare"),
        ('{"AIGC": ' + json.dumps(STANDARD) + "}", "wrapped+double-encoded"),
    ],
)
def test_parse_wild_shapes(raw, shape):
    parsed = parse_label(raw)
    assert parsed.shape == shape
    assert parsed.fields["ProduceID"] == "img-42"
    assert parsed.valid, parsed.problems


def test_parse_mapping_and_case_insensitive_keys():
    parsed = parse_label({"AIGC": {"label": 1, "contentproducer": CODE, "ProduceID": "z"}})
    assert parsed.fields["Label"] == "1"
    assert parsed.fields["ContentProducer"] == CODE
    assert parsed.fields["ContentPropagator"] is None
    assert "ContentPropagator is missing" in parsed.problems
    assert any("number" in w for w in parsed.warnings)
    assert any("spelled 'ContentProducer'" in w for w in parsed.warnings)


def test_doubao_shape_missing_fields():
    raw = '{"Label":"1","ContentProducer":"doubao","ProduceID":"abc"}'.replace('"', "&quot;")
    parsed = parse_label(raw)
    assert parsed.fields["Label"] == "1" and parsed.fields["ProduceID"] == "abc"
    assert not parsed.valid
    assert parsed.to_label().content_propagator == ""


def test_minimax_nonconformant_values():
    parsed = parse_label('{"Label":"AIGC","ContentProducer":"Mini Max","ProduceID":"1"}')
    assert "Label is 'AIGC', must be '1', '2' or '3'" in parsed.problems
    assert any("ContentProducer has characters outside" in p for p in parsed.problems)


@pytest.mark.parametrize("raw", ["", "not json", "[1,2]", "AIGC", "{", "x" * (2 << 20)])
def test_parse_rejects_non_objects(raw):
    with pytest.raises(LabelParseError):
        parse_label(raw)


def test_unknown_keys_only_is_a_problem():
    parsed = parse_label('{"aigc_label_type": 1}')
    assert parsed.problems == ["no Appendix E fields in the AIGC value"]
    assert not is_label_json('{"aigc_label_type": 1}')
    assert is_label_json(STANDARD)


def test_deeply_nested_json_is_a_parse_error_not_a_crash():
    with pytest.raises(LabelParseError):
        parse_label('{"Label":' + "[" * 100_000 + "]" * 100_000 + "}")


def test_a_field_never_given_is_refused_not_written_as_none():
    # A None ProduceID used to be written as the text "None" (the CLI's required option was not enforced).
    record = AIGCLabel(content_producer="X", produce_id=None)
    assert record.as_dict()["ProduceID"] == ""
    with pytest.raises(InvalidLabel, match="ProduceID is empty"):
        record.check()
