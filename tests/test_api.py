"""Library entry points for backends: labeler.label and detectors.verify on paths, bytes and arrays.

Round trips through the real writers and readers; no temporary files left behind (also after errors);
verify gives the same reports from 8 threads as serially.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, decoded_digest, seeded_key

import detectors
from detectors import verify
from labeler import AIGCLabel, LabelerError, LabelResult, label
from labeler.api import TEMP_PREFIX as LABEL_PREFIX
from labeler.media import read_image
from labeler.watermark import payload_from_produce_id

PREFIXES = (LABEL_PREFIX, detectors.TEMP_PREFIX)


@pytest.fixture
def no_leftovers(tmp_path, monkeypatch):
    # A private temporary folder for the test: other processes on the machine (a second test run)
    # may have their own aigc-* folders in the shared one at any moment.
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    yield
    left = {n for n in os.listdir(private) if n.startswith(PREFIXES)}
    assert left == set(), "temporary files left behind"
    assert os.listdir(private) == [], "temporary files left behind"


@pytest.fixture(scope="module")
def key() -> bytes:
    return seeded_key("test_api-1")


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "speech.mp3"])
def test_bytes_in_bytes_out(name, tmp_path, no_leftovers):
    source = bytearray((SAMPLES / name).read_bytes())
    original = bytes(source)
    rec = AIGCLabel(PRODUCER, f"api-{name}")
    labeled = label(source, rec)
    assert isinstance(labeled, bytes) and labeled != original
    assert bytes(source) == original  # the caller's buffer is not touched
    report = verify(memoryview(labeled), visible=False)
    assert report.file == "<bytes>" and report.size == len(labeled) and report.errors == []
    assert report.format == {"photo.jpg": "jpeg", "photo.png": "png", "speech.mp3": "mp3"}[name]
    assert (report.verdict, report.confidence) == ("confirmed", "medium")
    assert report.metadata is not None and report.metadata.fields is not None
    assert report.metadata.fields["ProduceID"] == f"api-{name}"
    # The same bytes as a file give the same report (but for the name), and the media is unchanged.
    on_disk = tmp_path / name
    on_disk.write_bytes(labeled)
    from_path = verify(on_disk, visible=False).to_dict()
    assert {**report.to_dict(), "file": None} == {**from_path, "file": None}
    assert decoded_digest(on_disk) == decoded_digest(SAMPLES / name)


def test_path_in_file_out(tmp_path, no_leftovers):
    out = tmp_path / "out.png"
    result = label(SAMPLES / "photo.png", AIGCLabel(PRODUCER, "api-path"), dst=out, fmt="png")
    assert isinstance(result, LabelResult) and result.layers["metadata"]["carrier"] == "xmp-tc260"
    assert verify(out, visible=False).verdict == "confirmed"


def test_array_in_array_out_with_the_watermark(key, no_leftovers):
    pixels = read_image(SAMPLES / "photo.png").pixels
    before = pixels.copy()
    rec = AIGCLabel(PRODUCER, "api-array")
    marked = label(pixels, rec, layers="watermark,visible", key=key)
    assert np.array_equal(pixels, before)  # input not modified
    assert (marked.shape, marked.dtype) == (pixels.shape, pixels.dtype)
    assert not np.array_equal(marked, pixels)
    report = verify(marked, key=key)
    assert (report.file, report.format, report.medium, report.size) == ("<array>", None, "image", None)
    assert report.metadata is None and report.c2pa is None
    assert set(report.to_dict()["layers"]) == {"watermark", "visible"}
    assert report.watermark is not None and report.watermark["present"]
    assert report.watermark["payload"] == payload_from_produce_id("api-array").hex()
    assert report.visible is not None and report.visible["present"]
    assert (report.verdict, report.confidence) == ("confirmed", "medium")
    assert report.reasons[0].startswith("watermark only")
    plain = verify(pixels, key=key)
    assert (plain.verdict, plain.watermark["present"], plain.visible["present"]) == ("none", False, False)
    # 16-bit grey works the same way.
    grey16 = (pixels[..., 0].astype(np.uint16) * 257)
    grey_marked = label(grey16, rec, layers="watermark", key=key)
    assert verify(grey_marked, key=key, visible=False).verdict == "confirmed"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda px, k: label(px, AIGCLabel(PRODUCER, "x"), key=k), "no container for the metadata layer"),
        (lambda px, k: label(px, AIGCLabel(PRODUCER, "x"), layers="watermark,c2pa", key=k), "c2pa layer"),
        (lambda px, k: label(px, AIGCLabel(PRODUCER, "x"), layers="watermark"), "needs a key"),
        (lambda px, k: label(px.astype(np.float32), AIGCLabel(PRODUCER, "x"), layers="visible"),
         "uint8 or uint16"),
        (lambda px, k: label(px, AIGCLabel(PRODUCER, "x"), layers="visible", quality=80),
         "quality: only for"),
        (lambda px, k: label(px, AIGCLabel(PRODUCER, "x"), layers="visible", position="middle"), "position"),
        (lambda px, k: label(b"not media at all", AIGCLabel(PRODUCER, "x")), "unrecognised file content"),
        (lambda px, k: label((SAMPLES / "photo.png").read_bytes(), AIGCLabel(PRODUCER, "x"), fmt="jpeg"),
         "does not match the content (png)"),
        (lambda px, k: label(SAMPLES / "photo.png", AIGCLabel(PRODUCER, "x")), "needs dst="),
        (lambda px, k: label(42, AIGCLabel(PRODUCER, "x")), "cannot label a int"),
    ],
    ids=["array-metadata", "array-c2pa", "array-no-key", "array-float", "array-file-option",
         "array-bad-position", "bytes-garbage", "bytes-wrong-fmt", "path-no-dst", "wrong-type"],
)
def test_label_errors_are_one_line(call, needle, key, no_leftovers):
    pixels = read_image(SAMPLES / "photo.png").pixels
    with pytest.raises(LabelerError) as info:
        call(pixels, key)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_no_temp_files_after_errors(monkeypatch, no_leftovers):
    data = (SAMPLES / "photo.jpg").read_bytes()
    # Fails inside label_file, after the temporary folder was made.
    with pytest.raises(LabelerError, match="needs a key"):
        label(data, AIGCLabel(PRODUCER, "x"), layers="watermark,metadata")
    # A reader that breaks while verify's temporary folder exists: reported, folder still removed.

    def broken(found):
        raise RuntimeError("simulated reader bug")

    monkeypatch.setattr(detectors, "judge_metadata", broken)
    report = verify(data)
    assert report.verdict is None and report.errors == [
        "internal error while reading (RuntimeError: simulated reader bug); please report it"
    ]
    monkeypatch.undo()
    assert verify(data[:100]).errors  # truncated: an error line, never an exception
    assert verify(np.zeros((4, 4, 7), np.uint8)).errors == ["pixel array must be (H, W) or (H, W, 1..4), "
                                                            "not (4, 4, 7)"]
    assert verify(3.5).errors == ["cannot verify a float: give a path, bytes or a NumPy array"]


def test_verify_from_8_threads_matches_serial(key, tmp_path, no_leftovers):
    rec = AIGCLabel(PRODUCER, "api-threads")
    pixels = read_image(SAMPLES / "photo.png").pixels
    marked = label(pixels, rec, layers="watermark", key=key)
    labeled_jpeg = label((SAMPLES / "photo.jpg").read_bytes(), rec)
    wav = tmp_path / "speech.wav"
    wav.write_bytes(label((SAMPLES / "speech.wav").read_bytes(), rec))
    jobs = [
        (marked, {"key": key}),
        (pixels, {"key": key}),
        (labeled_jpeg, {}),
        (labeled_jpeg, {"key": key}),
        (wav, {"visible": False}),  # the audio cue/voice search is slow and not what is tested here
        (SAMPLES / "photo.png", {}),
        (wav.read_bytes(), {"visible": False}),
        (marked, {"key": key, "visible": False}),
    ]

    def run(job):
        source, kwargs = job
        return verify(source, **kwargs).to_dict()

    serial = [run(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(run, jobs))
    assert threaded == serial
    verdicts = [r["verdict"] for r in serial]
    assert verdicts == ["confirmed", "none", "confirmed", "confirmed", "confirmed", "none", "confirmed",
                        "confirmed"]


def test_path_objects_and_strings_agree():
    assert verify(str(SAMPLES / "photo.png"), visible=False).to_dict() == {
        **verify(Path(SAMPLES / "photo.png"), visible=False).to_dict()}


def test_verify_of_image_bytes_makes_no_temporary_file(tmp_path, monkeypatch, key):
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path / "pki")
    signed = tmp_path / "signed.jpg"
    label(SAMPLES / "photo.jpg", AIGCLabel(PRODUCER, "api-c2pa"), dst=signed,
          layers="watermark,metadata,c2pa", key=key, signer=local_signer(pki.chain, pki.signer_key))
    from_path = verify(signed, key=key, trust_anchors=[str(pki.trust_anchor)]).to_dict()

    def no_temp(*args, **kwargs):
        raise AssertionError("verify(bytes) of an image made a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_temp)
    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_temp)
    from_bytes = verify(signed.read_bytes(), key=key, trust_anchors=[str(pki.trust_anchor)]).to_dict()
    assert from_bytes["layers"]["c2pa"]["state"] == "Trusted"
    assert {**from_bytes, "file": None} == {**from_path, "file": None}


@pytest.mark.parametrize("name", ["speech.wav", "speech.flac", "speech.mp3"])
def test_verify_of_audio_bytes_makes_no_temporary_file(tmp_path, monkeypatch, name):
    labeled = tmp_path / name
    label(SAMPLES / name, AIGCLabel(PRODUCER, f"api-{name}"), dst=labeled, layers="visible,metadata")
    from_path = verify(labeled).to_dict()

    def no_temp(*args, **kwargs):
        raise AssertionError("verify(bytes) of WAV/FLAC/MP3 made a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_temp)
    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    from_bytes = verify(labeled.read_bytes()).to_dict()
    assert from_bytes["errors"] == [] and from_bytes["verdict"] == "confirmed"
    assert from_bytes["layers"]["visible"]["kind"] == "audio-rhythm"
    assert {**from_bytes, "file": None} == {**from_path, "file": None}


@pytest.mark.parametrize(("name", "layers"), [("photo.jpg", "watermark,visible,metadata"),
                                              ("photo.png", "watermark,metadata"),
                                              ("speech.mp3", "metadata"), ("clip.mp4", "metadata")])
def test_label_of_bytes_stays_in_memory_and_equals_the_file_path(tmp_path, monkeypatch, key, name, layers):
    rec = AIGCLabel(PRODUCER, f"mem-{name}")
    on_disk = tmp_path / name
    label(SAMPLES / name, rec, dst=on_disk, layers=layers, key=key)

    def no_temp(*args, **kwargs):
        raise AssertionError("label(bytes) made a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_temp)
    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    assert label((SAMPLES / name).read_bytes(), rec, layers=layers, key=key) == on_disk.read_bytes()


@pytest.fixture(scope="module")
def pki_signer(tmp_path_factory):
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path_factory.mktemp("pki") / "keys")
    return local_signer(pki.chain, pki.signer_key), str(pki.trust_anchor)


def _sample_bytes(name: str) -> bytes:
    if name == "photo.webp":  # no WebP in samples/: the PNG photo encoded losslessly in memory
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.open(SAMPLES / "photo.png").save(buf, "WEBP", lossless=True)
        return buf.getvalue()
    return (SAMPLES / name).read_bytes()


@pytest.mark.parametrize(("name", "layers"), [("photo.jpg", "watermark,visible,metadata,c2pa"),
                                              ("photo.png", "metadata,c2pa"),
                                              ("photo.webp", "watermark,metadata,c2pa"),
                                              ("speech.wav", "metadata,c2pa"), ("speech.mp3", "c2pa"),
                                              ("speech.flac", "metadata,c2pa")])
def test_label_of_bytes_with_c2pa_makes_no_temporary_file(tmp_path, monkeypatch, key, pki_signer, name,
                                                           layers):
    # c2pa-python signs and reads back file-like streams, so the C2PA layer needs no file for these
    # formats (before: a private folder, a staging folder and two atomic outputs per call).
    import labeler.atomic

    signer, anchor = pki_signer
    rec = AIGCLabel(PRODUCER, f"mem-c2pa-{name}")
    data = _sample_bytes(name)
    # Named as label(bytes) titles its manifest, so the two manifests are the same size.
    on_disk = tmp_path / f"untitled{Path(name).suffix}"
    (tmp_path / f"in-{name}").write_bytes(data)
    label(tmp_path / f"in-{name}", rec, dst=on_disk, layers=layers, key=key, signer=signer)
    from_path = verify(on_disk, key=key, trust_anchors=[anchor]).to_dict()

    def no_temp(*args, **kwargs):
        raise AssertionError("label(bytes) with the c2pa layer made a temporary file")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_temp)
    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_temp)
    monkeypatch.setattr(labeler.atomic, "_create_beside", no_temp)
    labeled = label(data, rec, layers=layers, key=key, signer=signer)
    from_bytes = verify(labeled, key=key, trust_anchors=[anchor]).to_dict()
    assert from_bytes["layers"]["c2pa"]["state"] == "Trusted"
    assert from_bytes["layers"]["c2pa"]["aigc_fields"]["ProduceID"] == f"mem-c2pa-{name}"
    assert (from_bytes["verdict"], from_bytes["confidence"]) == ("confirmed", "high")
    # The same layers as labeling the file: the manifest differs only in its title and signature. An
    # unmarked MP3's watermark p-value is noise that moves with those bytes (ECDSA signatures differ on
    # every call, and the MP3 decoder does not skip the manifest's bytes identically: p 0.248 / 0.254).
    for report in (from_bytes, from_path):
        if not report["layers"].get("watermark", {"present": True})["present"]:
            report["layers"]["watermark"].pop("p_value")
    assert from_bytes["layers"] == from_path["layers"]


def test_option_groups_label_exactly_as_the_keywords(tmp_path, key):
    from labeler.options import LabelOptions, VisibleOptions, WatermarkOptions
    from labeler.pipeline import label_file

    rec = AIGCLabel(PRODUCER, "api-groups")
    flat = {"layers": "metadata,visible,watermark", "key": key, "watermark_method": "dwt",
            "text": "AI合成", "position": "top-left"}
    # Layers given out of order: the groups are put in application order, as the keywords are.
    groups = LabelOptions(layers=("metadata", "visible", "watermark"), watermark=WatermarkOptions(key, "dwt"),
                          visible=VisibleOptions("AI合成", "top-left"))
    by_keywords, by_groups = tmp_path / "k.jpg", tmp_path / "g.jpg"
    label_file(SAMPLES / "photo.jpg", by_keywords, rec, **flat)
    assert list(label_file(SAMPLES / "photo.jpg", by_groups, rec, options=groups).layers) == [
        "watermark", "visible", "metadata"]
    assert by_groups.read_bytes() == by_keywords.read_bytes()
    data = (SAMPLES / "photo.png").read_bytes()
    assert label(data, rec, options=groups) == label(data, rec, **flat)
    pixels = read_image(SAMPLES / "photo.png").pixels
    array_groups = LabelOptions(layers=("watermark",), watermark=WatermarkOptions(key))
    by_keywords_array = label(pixels, rec, layers="watermark", key=key)
    assert np.array_equal(label(pixels, rec, options=array_groups), by_keywords_array)
    # Both ways at once would leave one of them unread: refused.
    with pytest.raises(TypeError, match="not both"):
        label_file(SAMPLES / "photo.jpg", tmp_path / "x.jpg", rec, options=groups, quality=80)
    with pytest.raises(TypeError, match="not both"):
        label(data, rec, options=groups, text="AI生成内容")
    assert not (tmp_path / "x.jpg").exists()
