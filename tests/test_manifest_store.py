"""Durable credentials: label into a manifest store, strip by re-encoding, verify recovers the manifest."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key_file
from PIL import Image

from labeler.provenance.store import StoreError, open_store


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("store")
    seeded_key_file(d / "wm.key", "test_manifest_store-1")
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
    embedded = _verify(setup, labeled)["layers"]["c2pa"]["soft_binding"]
    assert embedded["method"] == "dct" and embedded["timespan_ms"] is None  # an image: no timespan
    without = _verify(setup, stripped)
    assert without["layers"]["c2pa"]["present"] is False and without["layers"]["watermark"]["present"]
    report = _verify(setup, stripped, "--manifest-store", str(setup / "manifests.db"))
    c2pa = report["layers"]["c2pa"]
    assert c2pa["source"] == "store" and c2pa["state"] == "Trusted" and c2pa["hard_binding"] == "mismatch"
    assert c2pa["manifest_id"] == result["layers"]["c2pa"]["manifest"]
    assert c2pa["aigc_fields"]["ProduceID"] == "durable-1" and c2pa["ai_generated"] is True
    assert report["verdict"] == "confirmed" and report["confidence"] == "high"
    assert any("recovered from the manifest store" in r for r in report["reasons"])
    # The human line says so too: "c2pa Trusted" alone reads as a manifest embedded in the file.
    line = run_cli("verify", str(stripped), "--key-file", str(setup / "wm.key"), "--trust-anchors",
                   str(setup / "pki" / "trust-anchors.pem"), "--manifest-store",
                   str(setup / "manifests.db")).stdout
    assert " - c2pa Trusted recovered from the manifest store signer=" in line
    assert "recovered" not in run_cli("verify", str(labeled), "--manifest-store",
                                      str(setup / "manifests.db")).stdout
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


def test_lookup_writes_nothing_beside_the_store(tmp_path):
    """A lookup is a read: `verify --manifest-store` left m.db-shm and m.db-wal beside the store and, on
    read-only media, failed ("attempt to write a readonly database"), losing the recovery (QA). With no
    writer at work the store is read as it is (immutable); with one, through its WAL."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    path = folder / "m.db"
    for i in range(3):
        _put(str(path), i)
    before = sorted(p.name for p in folder.iterdir())
    assert before == ["m.db"]  # the writer's last close checkpointed and removed its WAL
    found = open_store(path, readonly=True).find(alg="aigc-labeler.wm.dct.1", key_id="k",
                                                 payload=(1).to_bytes(8, "big"))
    assert [m.manifest_id for m in found] == ["urn:c2pa:1"]
    assert sorted(p.name for p in folder.iterdir()) == before
    writer = sqlite3.connect(path)  # a writer at work: its WAL holds what it committed
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("INSERT INTO manifests VALUES ('urn:c2pa:9', 'image/jpeg', x'00', NULL, 1e10)")
        writer.execute("INSERT INTO bindings VALUES ('aigc-labeler.wm.dct.1', 'k', ?, 'urn:c2pa:9')",
                       ((9).to_bytes(8, "big"),))
        writer.commit()
        assert (folder / "m.db-wal").exists()
        found = open_store(path, readonly=True).find(alg="aigc-labeler.wm.dct.1", key_id="k",
                                                     payload=(9).to_bytes(8, "big"))
        assert [m.manifest_id for m in found] == ["urn:c2pa:9"]
    finally:
        writer.close()


def test_store_specs(tmp_path):
    with pytest.raises(StoreError, match="ftp:// is not supported"):
        open_store("ftp://resolver.example/v1")
    with pytest.raises(StoreError, match="must be https://"):
        open_store("http://resolver.example/v1")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nope.db", readonly=True)
    assert open_store(f"sqlite:///{tmp_path}/x.db").path == tmp_path / "x.db"
    proc = subprocess.run([sys.executable, "-m", "labeler.cli", "label", str(SAMPLES / "photo.jpg"),
                           str(tmp_path / "o.jpg"), "--producer", "p", "--produce-id", "x", "--layers",
                           "metadata", "--manifest-store", str(tmp_path / "no" / "such" / "m.db")],
                          capture_output=True, text=True)
    assert proc.returncode == 0  # no c2pa layer: the store is not used at all


def test_audio_transcoded_to_mp3_gets_its_manifest_back(setup, tmp_path):
    import numpy as np
    import soundfile as sf
    from conftest import ffmpeg_exe

    # The sample twice (16.6 s): the audio mark wants >= ~10 s of speech to carry its payload reliably
    # through a lossy codec (docs/watermark-audio.md); 8.3 s passes only for some keys.
    speech, rate = sf.read(SAMPLES / "speech.wav", dtype="int16")
    source = tmp_path / "source.wav"
    sf.write(source, np.concatenate([speech, speech]), rate, subtype="PCM_16")
    labeled = tmp_path / "speech.wav"
    result = json.loads(_label(setup, source, labeled, "durable-audio").stdout)
    assert result["layers"]["c2pa"]["manifest_store"] is True
    stripped = tmp_path / "reuploaded.mp3"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(labeled), "-map_metadata", "-1",
                    "-c:a", "libmp3lame", "-b:a", "128k", str(stripped)], check=True)
    report = _verify(setup, stripped, "--manifest-store", str(setup / "manifests.db"))
    c2pa = report["layers"]["c2pa"]
    assert report["layers"]["metadata"]["present"] is False and report["layers"]["watermark"]["present"]
    assert c2pa["source"] == "store" and c2pa["state"] == "Trusted"
    assert c2pa["aigc_fields"]["ProduceID"] == "durable-audio" and report["verdict"] == "confirmed"
    # The soft binding's scope is the programme's timespan (ms from the start), as C2PA 2.x defines it.
    start, end = c2pa["soft_binding"]["timespan_ms"]
    assert start == 0 and 16500 < end < 16800


# -- PostgreSQL: a real server, started here when Debian's postgresql is installed -----------------


def _as_postgres():
    import pwd

    user = pwd.getpwnam("postgres")

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return user, drop


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (Debian package postgresql)")
    try:
        user, drop = _as_postgres()
    except KeyError:
        pytest.skip("no postgres system user to run the server as")
    if os.geteuid() not in (0, user.pw_uid):
        pytest.skip("the server must run as the postgres user: run the tests as root or as postgres")
    # Not under pytest's own temp folder: that one is private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="aigc-pg-"))
    data, sock = folder / "data", folder / "sock"
    sock.mkdir()
    for path in (folder, sock):
        os.chown(path, user.pw_uid, user.pw_gid)
    run = {"preexec_fn": drop if os.geteuid() == 0 else None, "capture_output": True, "text": True}
    subprocess.run([initdb, "-D", str(data), "-A", "trust", "-U", "aigc"], check=True, **run)
    port = 20000 + os.getpid() % 20000
    subprocess.run([pg_ctl, "-D", str(data), "-w", "-l", str(folder / "log"), "-o",
                    f"-k {sock} -p {port} -c listen_addresses=''", "start"], check=True, **run)
    try:
        yield f"postgresql://aigc@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "fast", "stop"], **run)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_store_round_trip_and_concurrent_writers(postgres_url):
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_put, [postgres_url] * 100, range(100)))
        list(pool.map(_put, [postgres_url] * 30, range(30)))
    store = open_store(postgres_url)
    assert store.count() == 100
    found = store.find(alg="aigc-labeler.wm.dct.1", key_id="k", payload=(7).to_bytes(8, "big"))
    assert [f.manifest_id for f in found] == ["urn:c2pa:7"] and found[0].store == b"x" * 1000


def test_postgres_store_end_to_end(setup, postgres_url, tmp_path):
    labeled = tmp_path / "pg.jpg"
    d = setup
    run_cli("label", str(SAMPLES / "photo.jpg"), str(labeled), "--producer", PRODUCER, "--produce-id", "pg-1",
            "--layers", "watermark,metadata,c2pa", "--key-file", str(d / "wm.key"), "--sign-cert",
            str(d / "pki" / "signer-chain.pem"), "--sign-key", str(d / "pki" / "signer.key.pem"),
            "--manifest-store", postgres_url, check=True)
    with Image.open(labeled) as im:
        im.convert("RGB").save(tmp_path / "s.jpg", "JPEG", quality=80)
    report = _verify(setup, tmp_path / "s.jpg", "--manifest-store", postgres_url)
    assert report["layers"]["c2pa"]["source"] == "store" and report["layers"]["c2pa"]["state"] == "Trusted"


def test_postgres_server_down_is_a_warning(setup, tmp_path):
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    labeled = tmp_path / "l.jpg"
    _label(setup, SAMPLES / "photo.jpg", labeled, "pg-down")
    with Image.open(labeled) as im:
        im.convert("RGB").save(tmp_path / "s.jpg", "JPEG", quality=85)
    down = f"postgresql://aigc:secret@/postgres?host={tmp_path}&port=1"
    report = _verify(setup, tmp_path / "s.jpg", "--manifest-store", down)
    assert report["verdict"] == "confirmed" and report["layers"]["c2pa"]["present"] is False
    warnings = report["warnings"]
    assert any(w.startswith("manifest store postgresql://aigc@") for w in warnings), warnings
    assert not any("secret" in w for w in report["warnings"])


def test_video_reencoded_gets_its_manifest_back(setup, tmp_path):
    from conftest import ffmpeg_exe

    ff = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y"]
    src = tmp_path / "gen.mp4"
    subprocess.run([*ff, "-f", "lavfi", "-i", "testsrc2=s=1280x720:d=2:r=25", "-c:v", "libx264", "-crf", "18",
                    "-pix_fmt", "yuv420p", str(src)], check=True)
    labeled = tmp_path / "labeled.mp4"
    result = json.loads(_label(setup, src, labeled, "durable-video").stdout)
    assert result["layers"]["watermark"]["method"] == "video" and result["layers"]["c2pa"]["manifest_store"]
    stripped = tmp_path / "reuploaded.mp4"  # a platform's re-encode: H.264 CRF 28, no metadata
    subprocess.run([*ff, "-i", str(labeled), "-map_metadata", "-1", "-c:v", "libx264", "-crf", "28",
                    str(stripped)], check=True)
    report = _verify(setup, stripped, "--manifest-store", str(setup / "manifests.db"))
    assert report["layers"]["metadata"]["present"] is False and report["layers"]["watermark"]["present"]
    c2pa = report["layers"]["c2pa"]
    assert c2pa["source"] == "store" and c2pa["state"] == "Trusted" and c2pa["hard_binding"] == "mismatch"
    assert c2pa["aigc_fields"]["ProduceID"] == "durable-video" and report["verdict"] == "confirmed"
