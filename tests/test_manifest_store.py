"""Durable credentials: label into a manifest store, strip by re-encoding, verify recovers the manifest."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest
from conftest import PRODUCER, SAMPLES, run_cli
from PIL import Image

from labeler.provenance.store import StoreError, open_store


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("store")
    run_cli("keygen", str(d / "wm.key"), check=True)
    run_cli("keys", "init", str(d / "pki"), check=True)
    return d


def _label(setup, src, dst, produce_id, layers="watermark,metadata,c2pa", store=True):
    d = setup
    extra = ["--manifest-store", str(d / "manifests.db")] if store else []
    return run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", produce_id,
                   "--layers", layers, "--key-file", str(d / "wm.key"), "--sign-cert",
                   str(d / "pki" / "signer-chain.pem"), "--sign-key", str(d / "pki" / "signer.key.pem"),
                   "--json", *extra, check=True)


def _verify(setup, path, *extra):
    d = setup
    proc = run_cli("verify", "--json", str(path), "--key-file", str(d / "wm.key"), "--trust-anchors",
                   str(d / "pki" / "trust-anchors.pem"), *extra)
    return json.loads(proc.stdout)


def test_stripped_jpeg_gets_its_manifest_back(setup, tmp_path):
    labeled = tmp_path / "labeled.jpg"
    result = json.loads(_label(setup, SAMPLES / "photo.jpg", labeled, "durable-1").stdout)
    assert result["layers"]["c2pa"]["manifest_store"] is True
    # A re-upload: decoded and re-encoded at q80, every metadata segment and the manifest gone.
    stripped = tmp_path / "reuploaded.jpg"
    with Image.open(labeled) as im:
        im.convert("RGB").save(stripped, "JPEG", quality=80)
    without = _verify(setup, stripped)
    assert without["layers"]["c2pa"]["present"] is False and without["layers"]["watermark"]["present"]
    report = _verify(setup, stripped, "--manifest-store", str(setup / "manifests.db"))
    c2pa = report["layers"]["c2pa"]
    assert c2pa["source"] == "store" and c2pa["state"] == "Trusted" and c2pa["hard_binding"] == "mismatch"
    assert c2pa["manifest_id"] == result["layers"]["c2pa"]["manifest"]
    assert c2pa["aigc_fields"]["ProduceID"] == "durable-1" and c2pa["ai_generated"] is True
    assert report["verdict"] == "confirmed" and report["confidence"] == "high"
    assert any("recovered from the manifest store" in r for r in report["reasons"])
    # The labeled file itself still reports its own, embedded manifest.
    assert _verify(setup, labeled, "--manifest-store", str(setup / "manifests.db"))["layers"]["c2pa"][
        "source"] == "embedded"


def test_a_manifest_for_another_payload_is_not_taken(setup, tmp_path):
    other = tmp_path / "other.jpg"
    _label(setup, SAMPLES / "photo.png", tmp_path / "o.png", "durable-other")
    _label(setup, SAMPLES / "photo.jpg", other, "durable-unstored", store=False)
    with Image.open(other) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=85)
    stripped = tmp_path / "s.jpg"
    stripped.write_bytes(buf.getvalue())
    report = _verify(setup, stripped, "--manifest-store", str(setup / "manifests.db"))
    assert report["layers"]["c2pa"]["present"] is False and report["layers"]["watermark"]["present"]


def test_bad_stores_are_a_warning_never_a_wrong_verdict(setup, tmp_path):
    labeled = tmp_path / "l.jpg"
    _label(setup, SAMPLES / "photo.jpg", labeled, "durable-bad")
    with Image.open(labeled) as im:
        im.convert("RGB").save(tmp_path / "s.jpg", "JPEG", quality=85)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database at all" * 100)
    for store, needle in ((tmp_path / "missing.db", "does not exist"), (corrupt, "manifest store")):
        report = _verify(setup, tmp_path / "s.jpg", "--manifest-store", str(store))
        assert report["verdict"] == "confirmed" and report["layers"]["c2pa"]["present"] is False
        assert any(needle in w for w in report["warnings"]), report["warnings"]


def test_label_without_watermark_stores_nothing_and_says_so(setup, tmp_path):
    proc = _label(setup, SAMPLES / "photo.jpg", tmp_path / "n.jpg", "durable-nowm", layers="metadata,c2pa")
    assert json.loads(proc.stdout)["layers"]["c2pa"]["manifest_store"] is False
    assert "manifest was not stored" in proc.stderr


def _put(path: str, i: int) -> None:
    open_store(path).put(alg="aigc-labeler.wm.dct.1", key_id="k", payload=i.to_bytes(8, "big"),
                         manifest_id=f"urn:c2pa:{i}", mime="image/jpeg", store=b"x" * 1000, label=None)


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    path = str(tmp_path / "m.db")
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_put, [path] * 200, range(200)))
        list(pool.map(_put, [path] * 50, range(50)))  # the same bindings again: no duplicates
    assert open_store(path).count() == 200
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_specs(tmp_path):
    with pytest.raises(StoreError, match="postgresql:// is not supported"):
        open_store("postgresql://localhost/x")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nope.db", readonly=True)
    assert open_store(f"sqlite:///{tmp_path}/x.db").path == tmp_path / "x.db"
    proc = subprocess.run([sys.executable, "-m", "labeler.cli", "label", str(SAMPLES / "photo.jpg"),
                           str(tmp_path / "o.jpg"), "--producer", "p", "--produce-id", "x", "--layers",
                           "metadata", "--manifest-store", str(tmp_path / "no" / "such" / "m.db")],
                          capture_output=True, text=True)
    assert proc.returncode == 0  # no c2pa layer: the store is not used at all


def test_audio_transcoded_to_mp3_gets_its_manifest_back(setup, tmp_path):
    from conftest import ffmpeg_exe

    labeled = tmp_path / "speech.wav"
    result = json.loads(_label(setup, SAMPLES / "speech.wav", labeled, "durable-audio").stdout)
    assert result["layers"]["c2pa"]["manifest_store"] is True
    stripped = tmp_path / "reuploaded.mp3"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(labeled), "-map_metadata", "-1",
                    "-c:a", "libmp3lame", "-b:a", "128k", str(stripped)], check=True)
    report = _verify(setup, stripped, "--manifest-store", str(setup / "manifests.db"))
    c2pa = report["layers"]["c2pa"]
    assert report["layers"]["metadata"]["present"] is False and report["layers"]["watermark"]["present"]
    assert c2pa["source"] == "store" and c2pa["state"] == "Trusted"
    assert c2pa["aigc_fields"]["ProduceID"] == "durable-audio" and report["verdict"] == "confirmed"
