"""verify chooses what to examine: ``layers=`` / ``--layers`` / ``--quick``, and the report's ``examined``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key

from detectors import QUICK_LAYERS, VERIFY_LAYERS, parse_verify_layers, verify
from labeler import AIGCLabel, label_file
from labeler.errors import InvalidArgument, LabelerError
from labeler.watermark.keyfile import write_key_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> tuple[Path, Path, bytes]:
    """samples/photo.jpg with watermark, visible mark and metadata; the key file and key."""
    out = tmp_path_factory.mktemp("layers")
    key_file = out / "key.txt"
    key = write_key_file(key_file, seeded_key("test_verify_layers-1"))
    dst = out / "photo.jpg"
    label_file(SAMPLES / "photo.jpg", dst, AIGCLabel(PRODUCER, "layers-1"),
               layers=("watermark", "visible", "metadata"), key=key)
    return dst, key_file, key


def _schema_valid(report: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report, json.loads((ROOT / "docs" / "report.schema.json").read_text()))


def test_parse_verify_layers() -> None:
    assert parse_verify_layers(None) == VERIFY_LAYERS
    assert parse_verify_layers("quick") == QUICK_LAYERS == ("metadata", "c2pa", "watermark")
    assert parse_verify_layers("visible, metadata") == ("metadata", "visible")  # report order
    assert parse_verify_layers(["c2pa"]) == ("c2pa",)
    for bad in ("metadata,nope", "", " , "):
        with pytest.raises(InvalidArgument) as info:
            parse_verify_layers(bad)
        assert isinstance(info.value, LabelerError) and "\n" not in str(info.value)


def test_default_examines_every_layer(labeled) -> None:
    path, _, key = labeled
    report = verify(path, key=key).to_dict()
    assert report["examined"] == ["metadata", "c2pa", "watermark", "visible"]
    assert set(report["layers"]) == {"metadata", "c2pa", "watermark", "visible"}
    assert report["verdict"] == "confirmed"
    _schema_valid(report)
    # Without a key the watermark is not examined, and the report says so.
    assert verify(path).examined == ["metadata", "c2pa", "visible"]


def test_quick_skips_the_visible_search_and_says_so(labeled) -> None:
    path, _, key = labeled
    full, quick = verify(path, key=key), verify(path, key=key, layers="quick")
    assert quick.examined == ["metadata", "c2pa", "watermark"]
    assert quick.visible is None and "visible" not in quick.to_dict()["layers"]
    # The verdict rules are unchanged for what was examined: metadata + watermark confirm it alone.
    assert (quick.verdict, quick.watermark["present"]) == (full.verdict, True) == ("confirmed", True)
    assert "not examined: visible" in quick.summary()
    _schema_valid(quick.to_dict())


def test_visible_false_still_means_not_examined(labeled) -> None:
    path, _, key = labeled
    report = verify(path, key=key, visible=False)
    assert report.examined == ["metadata", "c2pa", "watermark"] and report.visible is None
    # visible=False wins over a layers list naming it.
    assert "visible" not in verify(path, layers="metadata,visible", visible=False).examined


def test_metadata_not_examined_is_not_reported_absent(labeled) -> None:
    path, _, _ = labeled
    report = verify(path, layers="c2pa")
    assert report.examined == ["c2pa"] and report.metadata is None
    assert "metadata" not in report.to_dict()["layers"]
    assert report.verdict == "none"  # nothing examined shows a label...
    # ...and the line says what was skipped
    assert "not examined: metadata, watermark, visible" in report.summary()
    only_visible = verify(path, layers=["visible"])
    assert only_visible.examined == ["visible"] and only_visible.visible["present"]


def test_layers_on_bytes_arrays_and_audio(labeled) -> None:
    path, _, key = labeled
    data = path.read_bytes()
    assert verify(data, key=key, layers="quick").examined == ["metadata", "c2pa", "watermark"]
    from labeler.media import read_image

    pixels = read_image(path).pixels
    assert verify(pixels, key=key, layers="quick").examined == ["watermark"]  # no container
    audio = verify(SAMPLES / "speech.wav", layers="metadata,visible")
    assert audio.examined == ["metadata", "visible"] and audio.c2pa is None
    unreadable = verify(SAMPLES / "does-not-exist.jpg", layers="quick")
    assert unreadable.errors and unreadable.examined == []


def test_cli_layers_and_quick(labeled, tmp_path) -> None:
    path, key_file, _ = labeled
    quick = run_cli("verify", "--json", "--quick", "--key-file", str(key_file), str(path), check=True)
    report = json.loads(quick.stdout)
    assert report["examined"] == ["metadata", "c2pa", "watermark"] and report["verdict"] == "confirmed"
    chosen = json.loads(run_cli("verify", "--json", "--layers", "metadata,visible", str(path),
                                check=True).stdout)
    assert chosen["examined"] == ["metadata", "visible"]
    for args, needle in ((("--layers", "watermark"), "needs --key-file"),
                         (("--layers", "nope"), "unknown layer 'nope'"),
                         (("--quick", "--layers", "metadata"), "exclusive")):
        proc = run_cli("verify", *args, str(path))
        assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.count("\n") == 1


def test_cli_batch_verify_quick(labeled, tmp_path) -> None:
    path, key_file, _ = labeled
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(path.read_bytes())
    (src / "b.wav").write_bytes((SAMPLES / "speech.wav").read_bytes())
    report = tmp_path / "report.jsonl"
    run_cli("batch", "verify", str(src), "--report", str(report), "--quick", "--key-file", str(key_file),
            "--workers", "1", "--no-progress", check=True)
    records = {r["batch"]["path"]: r for r in map(json.loads, report.read_text().splitlines())}
    assert records["a.jpg"]["examined"] == ["metadata", "c2pa", "watermark"]
    assert records["b.wav"]["examined"][:2] == ["metadata", "c2pa"]
    assert all("visible" not in r["layers"] for r in records.values())


def test_quick_reads_the_watermark_as_given_and_says_so(labeled) -> None:
    """--quick is triage: no rescale search, and a mark it did not find is "not searched", not "absent"."""
    import cv2

    from detectors import QUICK_WATERMARK_NOTE
    from labeler.media import read_image

    path, _, key = labeled
    pixels = read_image(path).pixels
    as_given = verify(pixels, key=key, layers="quick").watermark
    assert as_given["present"] and "note" not in as_given  # found as given: nothing to qualify
    h, w = pixels.shape[:2]
    smaller = cv2.resize(pixels, (round(w * 0.75), round(h * 0.75)), interpolation=cv2.INTER_AREA)
    full, quick = verify(smaller, key=key).watermark, verify(smaller, key=key, layers="quick").watermark
    assert full["present"] and "note" not in full  # the lattice search undoes the resize
    assert not quick["present"] and quick["checked"] and quick["note"] == QUICK_WATERMARK_NOTE
    # an explicit list of the same layers is not triage: the watermark is searched in full
    assert verify(smaller, key=key, layers=QUICK_LAYERS).watermark["present"]


def test_quick_reads_a_large_jpeg_at_half_size(labeled, tmp_path, monkeypatch) -> None:
    """--quick on a JPEG of >= 512 px a side decodes its luma at half size (libjpeg's DCT scaling) and
    makes detect_half's one read per method: the mark is found with that read's p-value (2 x 16,384
    hypotheses); the full-size luma is never decoded. A PNG, or a small JPEG, takes the full-size path."""
    import cv2
    import numpy as np

    import detectors.watermark as wm_detector
    import labeler.media.image as image_io
    from detectors import QUICK_WATERMARK_NOTE
    from labeler.media import read_image

    path, _, key = labeled
    full_decodes: list[object] = []
    halves: list[object] = []
    real, real_half = image_io.read_luma_image, wm_detector.detect_half
    def half(*args: object, **kw: object) -> object:
        halves.append(real_half(*args, **kw))
        return halves[-1]

    monkeypatch.setattr(image_io, "read_luma_image", lambda *a, **k: full_decodes.append(a) or real(*a, **k))
    monkeypatch.setattr(wm_detector, "detect_half", half)
    wm = verify(path, key=key, layers="quick").watermark
    assert wm["present"] and wm["p_value"] <= 1e-6 and wm["matches_metadata"] is True and not full_decodes
    assert len(halves) == 1 and halves[0].trials == 2 * 128 * 128
    clean = verify(SAMPLES / "photo.jpg", key=key, layers="quick").watermark
    assert not clean["present"] and clean["note"] == QUICK_WATERMARK_NOTE and not full_decodes
    pixels = read_image(path).pixels
    png = tmp_path / "photo.png"
    cv2.imwrite(str(png), np.ascontiguousarray(pixels[..., ::-1]))
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), np.ascontiguousarray(pixels[:400, :500, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    for other in (png, small):
        assert verify(other, key=key, layers="quick").watermark["present"]  # the full-size path
    assert len(full_decodes) == 2 and len(halves) == 2
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    # a third of the file: the half-size read fails, the full decode reads what is there (a watermark is in
    # every tile) and says the file is damaged
    report = verify(bad, key=key, layers="quick")
    assert report.watermark is not None and report.watermark["present"]
    assert any("truncated" in w for w in report.warnings)


def test_read_luma_half_sizes_and_refusals(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from labeler.media.image import HALF_MIN_SIDE, read_luma_half, read_luma_pixels

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (601, 1023, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "odd.jpg", quality=95)
    read = read_luma_half(tmp_path / "odd.jpg")
    half = read.pixels
    assert half.shape == (301, 512) and half.dtype == np.uint8 and read.orientation == 1
    full = read_luma_pixels(tmp_path / "odd.jpg").astype(np.float32)
    block = full[:600, :1022].reshape(300, 2, 511, 2).mean(axis=(1, 3))
    assert np.corrcoef(block.ravel(), half[:300, :511].astype(np.float32).ravel())[0, 1] > 0.9
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.jpg")
    assert read_luma_half(tmp_path / "grey.jpg").pixels.shape == (301, 512)
    Image.fromarray(rgb[: HALF_MIN_SIDE - 1]).save(tmp_path / "small.jpg")
    Image.fromarray(rgb).save(tmp_path / "odd.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert read_luma_half(tmp_path / "small.jpg") is None
    assert read_luma_half(tmp_path / "odd.png") is None
    assert read_luma_half(tmp_path / "cmyk.jpg") is None
    with pytest.raises(LabelerError):
        read_luma_half(b"\xff\xd8\xff\xe0" + b"\x00" * 40)


def test_what_needs_a_key_says_so(tmp_path) -> None:
    """Asking for the watermark, or for manifest recovery, without a key is a caller's mistake, said in one
    line, not a silent 'none'; without asking, no key just means the watermark is not read."""
    photo = str(SAMPLES / "photo.jpg")
    with pytest.raises(InvalidArgument, match="needs a key"):
        verify(photo, layers="watermark")
    with pytest.raises(InvalidArgument, match="manifest store needs"):
        verify(photo, manifest_store=str(tmp_path / "m.db"))
    assert verify(photo).examined == ["metadata", "c2pa", "visible"]
    done = run_cli("verify", "--manifest-store", str(tmp_path / "m.db"), photo)
    assert done.returncode == 2 and "--manifest-store needs the watermark layer and --key-file" in done.stderr
    assert not (tmp_path / "m.db").exists()
    labeled = run_cli("label", photo, str(tmp_path / "x.jpg"), "--producer", "P", "--produce-id", "x",
                      "--manifest-store", str(tmp_path / "m.db"))
    assert labeled.returncode == 0 and "without the c2pa layer there is none to keep" in labeled.stderr


def test_verify_refuses_arguments_that_cannot_be_used(tmp_path) -> None:
    """A key or trust anchor that cannot be used is the caller's mistake: InvalidArgument up front, not an
    'internal error' warning inside a layer (a bad anchor used to drop the whole C2PA layer)."""
    from detectors import verify
    from labeler.errors import InvalidArgument

    photo = SAMPLES / "photo.jpg"
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    for kw, words in ((dict(key="secret"), "not str"), (dict(key=b""), "empty"),
                      (dict(trust_anchors=str(tmp_path / "missing.pem")), "missing.pem"),
                      (dict(trust_anchors=[str(not_pem)]), "no PEM certificate")):
        with pytest.raises(InvalidArgument, match=words):
            verify(photo, **kw)
    assert verify(photo, key=memoryview(bytes(range(32)))).errors == []  # any bytes-like key


def test_label_and_parse_refuse_wrong_types() -> None:
    from labeler import label
    from labeler.errors import InvalidArgument
    from labeler.record import LabelParseError, parse_label
    from labeler.watermark import payload_from_produce_id

    with pytest.raises(InvalidArgument, match="AIGCLabel"):
        label((SAMPLES / "photo.jpg").read_bytes(), None)
    with pytest.raises(InvalidArgument, match="str"):
        payload_from_produce_id(None)
    with pytest.raises(LabelParseError):
        parse_label(None)
