"""The platform step: keep the producer's label and fill the propagator fields, or add a Label 2/3."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, decoded_digest, seeded_key

from detectors import verify
from labeler import AIGCLabel, label_file, write_label
from labeler.errors import LabelerError
from labeler.propagate import propagate_file

PLATFORM = "001191110102MACQD9K64020001"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def labeled(tmp_path: Path) -> Path:
    out = tmp_path / "labeled.jpg"
    label = AIGCLabel(PRODUCER, "img-7", reserved_code1="producer-sig", reserved_code2="old-platform-sig")
    label_file(SAMPLES / "photo.jpg", out, label)
    return out


@pytest.mark.parametrize("sample", ["photo.jpg", "speech.mp3"])
def test_keeps_producer_fields_and_fills_propagator(tmp_path, sample):
    src = tmp_path / f"in{Path(sample).suffix}"
    label_file(SAMPLES / sample, src, AIGCLabel(PRODUCER, "id-1", label="1", reserved_code1="sig",
                                                 reserved_code2="old"))
    before = sha(src)
    out = tmp_path / f"out{src.suffix}"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="up-42")
    assert result.action == "propagated"
    assert result.label == {"Label": "1", "ContentProducer": PRODUCER, "ProduceID": "id-1",
                            "ReservedCode1": "sig", "ContentPropagator": PLATFORM, "PropagateID": "up-42",
                            "ReservedCode2": ""}
    assert result.before is not None and result.before["ReservedCode2"] == "old"
    report = verify(out)
    assert report.verdict == "confirmed"
    assert report.metadata is not None and report.metadata.fields == result.label
    assert sha(src) == before
    assert decoded_digest(out) == decoded_digest(src)


def test_reserved_code2_is_the_propagators(labeled, tmp_path):
    out = tmp_path / "out.jpg"
    result = propagate_file(labeled, out, propagator=PLATFORM, propagate_id="p1", reserved_code2="plat-sig")
    assert result.label is not None and result.label["ReservedCode2"] == "plat-sig"
    assert result.label["ReservedCode1"] == "producer-sig"


def test_declared_ai_on_unlabeled_file_gives_label_2(tmp_path):
    src = tmp_path / "photo.png"
    shutil.copy(SAMPLES / "photo.png", src)
    before = sha(src)
    out = tmp_path / "out.png"
    result = propagate_file(src, out, propagator=PLATFORM, propagate_id="up-1", declared_ai=True)
    assert result.action == "labeled" and result.verdict == "none"
    assert result.label is not None
    assert result.label["Label"] == "2"
    assert result.label["ContentProducer"] == PLATFORM and result.label["ProduceID"] == "up-1"
    assert verify(out).verdict == "possible"
    assert sha(src) == before
    assert decoded_digest(out) == decoded_digest(src)


def test_traces_without_label_give_label_3(tmp_path):

    key = seeded_key("test_propagate-1")
    marked = tmp_path / "marked.png"
    # A watermark but no metadata label: traces of AI generation without a label.
    label_file(SAMPLES / "photo.png", marked, AIGCLabel(PRODUCER, "wm-1"), layers=("watermark",), key=key)
    out = tmp_path / "out.png"
    result = propagate_file(marked, out, propagator=PLATFORM, propagate_id="up-3", key=key)
    assert result.action == "labeled" and result.verdict == "confirmed"
    assert result.label is not None and result.label["Label"] == "3"
    # The declaration comes first (Art. 6 (2) before (3)).
    out2 = tmp_path / "out2.png"
    result = propagate_file(marked, out2, propagator=PLATFORM, propagate_id="up-3", key=key, declared_ai=True)
    assert result.label is not None and result.label["Label"] == "2"


def test_nothing_found_is_an_unchanged_copy(tmp_path):
    out = tmp_path / "out.wav"
    result = propagate_file(SAMPLES / "speech.wav", out, propagator=PLATFORM, propagate_id="x")
    assert result.action == "copied" and result.label is None
    assert sha(out) == sha(SAMPLES / "speech.wav")


def test_non_compliant_label_is_refused(tmp_path):
    src = tmp_path / "bad.png"
    write_label(SAMPLES / "photo.png", src, '{"Label":"AIGC","ContentProducer":"x","ProduceID":"y"}')
    out = tmp_path / "out.png"
    with pytest.raises(LabelerError, match="not compliant") as err:
        propagate_file(src, out, propagator=PLATFORM, propagate_id="p")
    assert "\n" not in str(err.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"propagator": "plat form", "propagate_id": "p"}, "invalid propagator values"),
        ({"propagator": PLATFORM, "propagate_id": ""}, "PropagateID is empty"),
    ],
)
def test_bad_propagator_values(labeled, tmp_path, kwargs, needle):
    with pytest.raises(LabelerError, match=needle):
        propagate_file(labeled, tmp_path / "o.jpg", **kwargs)


def test_refusals(labeled, tmp_path):
    with pytest.raises(LabelerError, match="input file"):
        propagate_file(labeled, labeled, propagator=PLATFORM, propagate_id="p")
    existing = tmp_path / "exists.jpg"
    existing.write_bytes(b"x")
    with pytest.raises(LabelerError, match="exists"):
        propagate_file(labeled, existing, propagator=PLATFORM, propagate_id="p")
    assert existing.read_bytes() == b"x"
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    with pytest.raises(LabelerError, match="unrecognised"):
        propagate_file(text, tmp_path / "t.jpg", propagator=PLATFORM, propagate_id="p")
    with pytest.raises(LabelerError, match="no such file"):
        propagate_file(tmp_path / "missing.jpg", tmp_path / "m.jpg", propagator=PLATFORM, propagate_id="p")
