"""verify on damaged files: a layer that could not be examined is said to be so (never read as "looked
and found nothing"), and a JPEG cut short is read as far as its data goes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli

from detectors import verify
from labeler import AIGCLabel, label_file
from labeler.propagate import propagate_file
from labeler.watermark import payload_from_produce_id

KEY = bytes(range(32))
RECORD = AIGCLabel("001191110102MACQD9K64010000", "damaged-1")


@pytest.fixture(scope="module")
def marked_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "marked.jpg"
    label_file(SAMPLES / "photo.jpg", out, RECORD, layers="watermark", key=KEY)
    return out


@pytest.mark.parametrize("keep", [0.99, 0.5])
def test_truncated_jpeg_is_read_as_far_as_it_goes(marked_jpeg: Path, tmp_path: Path, keep: float) -> None:
    data = marked_jpeg.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: int(len(data) * keep)])
    for layers in (None, "quick"):
        report = verify(cut, key=KEY, layers=layers).to_dict()
        wm = report["layers"]["watermark"]
        assert wm["present"] and wm["payload"] == payload_from_produce_id("damaged-1").hex()
        assert report["verdict"] == "confirmed"
        assert any("truncated" in w and "part of the picture that is there" in w for w in report["warnings"])
    # the file itself is not changed, and labeling a damaged JPEG is still refused
    assert cut.read_bytes() == data[: int(len(data) * keep)]
    done = run_cli("label", str(cut), str(tmp_path / "out.jpg"), "--producer", "P", "--produce-id", "x",
                   "--layers", "visible")
    assert done.returncode == 2 and "truncated" in done.stderr and not (tmp_path / "out.jpg").exists()


@pytest.fixture(scope="module")
def marked_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "marked.png"
    label_file(SAMPLES / "photo.png", out, RECORD, layers="watermark,metadata", key=KEY)
    return out


@pytest.mark.parametrize("keep", [0.99, 0.7])
def test_truncated_png_is_read_as_far_as_it_goes(marked_png: Path, tmp_path: Path, keep: float) -> None:
    """A PNG cut in its picture data (an interrupted download) was unreadable ("png is truncated"),
    where a JPEG cut the same way is read: now its label chunks before the cut and its rows are read."""
    data = marked_png.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: int(len(data) * keep)])
    report = verify(cut, key=KEY).to_dict()
    assert report["layers"]["metadata"]["fields"]["ProduceID"] == "damaged-1"
    wm = report["layers"]["watermark"]
    assert wm["present"] and wm["payload"] == payload_from_produce_id("damaged-1").hex()
    assert report["verdict"] == "confirmed" and report["errors"] == []
    assert any("truncated" in w and "part of the picture that is there" in w for w in report["warnings"])
    done = run_cli("label", str(cut), str(tmp_path / "out.png"), "--producer", "P", "--produce-id", "x",
                   "--layers", "metadata")
    assert done.returncode == 2 and "truncated" in done.stderr and not (tmp_path / "out.png").exists()


def test_png_cut_before_its_picture_data_stays_unreadable(marked_png: Path, tmp_path: Path) -> None:
    data = marked_png.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: data.index(b"IDAT") - 2])
    report = verify(cut, key=KEY).to_dict()
    assert report["verdict"] is None and any("truncated" in e for e in report["errors"])


def test_unreadable_samples_are_not_examined_not_absent(tmp_path: Path) -> None:
    """A FLAC whose audio breaks off: the metadata is read, the sample layers cannot be, and the report
    (text and JSON) and propagate say so instead of a bare "none"."""
    src = tmp_path / "speech.labeled.flac"
    label_file(SAMPLES / "speech.flac", src, RECORD, layers="watermark", key=KEY)
    data = src.read_bytes()
    bad = tmp_path / "broken.flac"
    bad.write_bytes(data[: len(data) // 3] + bytes(4096) + data[len(data) // 3 + 4096 :])
    report = verify(bad, key=KEY).to_dict()
    if report["layers"]["watermark"]["checked"]:
        pytest.skip("this libsndfile decodes past the damage")
    assert report["verdict"] == "none"
    assert any(w.startswith("the watermark layer could not be examined: ") for w in report["warnings"])
    text = run_cli("verify", "--key-file", str(_key_file(tmp_path)), str(bad))
    assert "warning: the watermark layer could not be examined" in text.stdout
    result = propagate_file(bad, tmp_path / "pub.flac", propagator="PX", propagate_id="p1", key=KEY)
    assert result.action == "copied"
    assert any("could not be examined" in w and "traces this check did not see" in w for w in result.warnings)


def test_a_clean_readable_file_gets_no_such_warning(tmp_path: Path) -> None:
    report = verify(SAMPLES / "photo.jpg", key=KEY).to_dict()
    assert report["verdict"] == "none" and report["warnings"] == []


def _key_file(folder: Path) -> Path:
    from labeler.watermark.keyfile import write_key_file

    path = folder / "k.key"
    write_key_file(path, KEY)
    return path
