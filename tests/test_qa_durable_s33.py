"""QA (durable credentials): which stored manifest a stripped file gets back, and whose key it names;
a store path that names someone else's database; the resolution API's answers per its OpenAPI 1.0."""

from __future__ import annotations

import base64
import io
import sqlite3
import warnings
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, seeded_key
from PIL import Image

from detectors import verify
from labeler import AIGCLabel, label_file
from labeler.provenance.c2pa_sign import local_signer
from labeler.provenance.pki import init_test_pki
from labeler.provenance.store import StoreError, open_store
from labeler.watermark import payload_from_produce_id
from labeler.watermark.keyfile import key_id

ALG = "aigc-labeler.wm.dct.1"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """Two PKIs (only the first trusted), two watermark keys, a signer for each PKI."""
    d = tmp_path_factory.mktemp("durable-s33")
    trusted, other = init_test_pki(d / "pki"), init_test_pki(d / "pki-other")
    return {"dir": d, "anchors": [str(trusted.trust_anchor)],
            "signer": local_signer(trusted.chain, trusted.signer_key),
            "other_signer": local_signer(other.chain, other.signer_key),
            "key": seeded_key("qa-durable-s33-a"), "other_key": seeded_key("qa-durable-s33-b")}


def _label(env: dict, src: Path, dst: Path, produce_id: str, *, store: Path | None, key: bytes | None = None,
           signer: object = None, producer: str = PRODUCER) -> str:
    result = label_file(src, dst, AIGCLabel(producer, produce_id), layers="watermark,metadata,c2pa",
                        key=key or env["key"], signer=signer or env["signer"],
                        manifest_store=str(store) if store else None)
    return result.layers["c2pa"]["manifest"]


def _stripped(labeled: Path, dst: Path) -> Path:
    # A platform re-upload: decoded, re-encoded at q85, every metadata segment and the manifest gone.
    with Image.open(labeled) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=85)
    dst.write_bytes(buf.getvalue())
    return dst


def test_a_manifest_naming_another_watermark_key_is_not_taken(env, tmp_path):
    """A conforming resolution service ignores our keyId, and a payload is the hash of a ProduceID, so a
    lookup can be answered with a manifest whose soft binding names another key: it was recovered and
    reported Trusted for a mark it never described (18.10.5: the binding must be the one found)."""
    foreign_db = tmp_path / "foreign.db"
    _label(env, SAMPLES / "photo.png", tmp_path / "b.png", "s33-shared-id", store=foreign_db,
           key=env["other_key"])
    foreign = open_store(foreign_db).find(alg=ALG, key_id=key_id(env["other_key"]),
                                          payload=payload_from_produce_id("s33-shared-id"))
    assert len(foreign) == 1
    # The store answers the lookup for key A with key B's manifest (what a keyId-blind service does).
    db = tmp_path / "m.db"
    open_store(db).put(alg=ALG, key_id=key_id(env["key"]), payload=payload_from_produce_id("s33-shared-id"),
                       manifest_id=foreign[0].manifest_id, mime="image/png", store=foreign[0].store)
    _label(env, SAMPLES / "photo.png", tmp_path / "a.png", "s33-shared-id", store=None)
    report = verify(_stripped(tmp_path / "a.png", tmp_path / "a.jpg"), key=env["key"],
                    trust_anchors=env["anchors"], manifest_store=str(db))
    assert report.watermark["present"] and report.watermark["key_id"] == key_id(env["key"])
    assert report.c2pa["present"] is False, report.c2pa


def test_two_manifests_for_one_payload_the_trusted_one_wins_and_the_count_is_reported(env, tmp_path):
    """The same ProduceID labeled twice (two manifests for one watermark payload): the newest was taken
    whatever its state, so a later copy signed by an untrusted signer hid the trusted one, and nothing
    said another manifest existed."""
    db = tmp_path / "m.db"
    first = _label(env, SAMPLES / "photo.png", tmp_path / "1.png", "s33-twice", store=db)
    second = _label(env, SAMPLES / "photo.png", tmp_path / "2.png", "s33-twice", store=db,
                    signer=env["other_signer"])
    assert len(open_store(db).find(alg=ALG, key_id=key_id(env["key"]),
                                   payload=payload_from_produce_id("s33-twice"))) == 2
    stripped = _stripped(tmp_path / "1.png", tmp_path / "1.jpg")
    report = verify(stripped, key=env["key"], trust_anchors=env["anchors"], manifest_store=str(db))
    assert report.c2pa["source"] == "store" and report.c2pa["candidates"] == 2
    assert report.c2pa["manifest_id"] == first and report.c2pa["state"] == "Trusted"
    # With both signers untrusted the newest one is reported (documented), still with the count.
    plain = verify(stripped, key=env["key"], manifest_store=str(db))
    assert plain.c2pa["manifest_id"] == second and plain.c2pa["candidates"] == 2
    assert plain.c2pa["state"] == "Valid"
    assert "recovered from the manifest store (1 of 2 stored manifests for this mark)" in report.summary()


def test_one_stored_manifest_reports_one_candidate(env, tmp_path):
    db = tmp_path / "m.db"
    manifest = _label(env, SAMPLES / "photo.png", tmp_path / "1.png", "s33-once", store=db)
    report = verify(_stripped(tmp_path / "1.png", tmp_path / "1.jpg"), key=env["key"],
                    trust_anchors=env["anchors"], manifest_store=str(db))
    assert report.c2pa["manifest_id"] == manifest and report.c2pa["candidates"] == 1
    assert report.verdict == "confirmed" and report.c2pa["state"] == "Trusted"


def _foreign_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'a')")
    conn.close()


def test_a_database_that_is_not_a_store_is_refused_and_left_alone(tmp_path):
    """`--manifest-store app.db` (a typo, the wrong file) added our tables to that application's
    database and switched it to WAL; it is refused now, unchanged."""
    app = tmp_path / "app.db"
    _foreign_db(app)
    before = app.read_bytes()
    with pytest.raises(StoreError, match="not a manifest store"):
        open_store(app).put(alg=ALG, key_id="k", payload=b"12345678", manifest_id="urn:c2pa:x",
                            mime="image/jpeg", store=b"x")
    with pytest.raises(StoreError, match="not a manifest store"):
        open_store(app, readonly=True).find(alg=ALG, key_id="k", payload=b"12345678")
    assert app.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    # An empty SQLite file (e.g. made by `touch` or `sqlite3 m.db ''`) becomes a store.
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    open_store(empty).put(alg=ALG, key_id="k", payload=b"12345678", manifest_id="urn:c2pa:x",
                          mime="image/jpeg", store=b"x")
    assert open_store(empty, readonly=True).count() == 1


def test_verify_with_a_foreign_database_as_store_warns_and_keeps_the_verdict(env, tmp_path):
    app = tmp_path / "app.db"
    _foreign_db(app)
    _label(env, SAMPLES / "photo.png", tmp_path / "1.png", "s33-foreign", store=None)
    report = verify(_stripped(tmp_path / "1.png", tmp_path / "1.jpg"), key=env["key"],
                    trust_anchors=env["anchors"], manifest_store=str(app))
    assert report.verdict == "confirmed" and report.c2pa["present"] is False
    assert any("not a manifest store" in w for w in report.warnings), report.warnings


def _client(db: Path):
    pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from labeler.server import ServerConfig, create_app

    return TestClient(create_app(ServerConfig(manifest_store=str(db)), executor=None))


def test_resolution_api_status_codes_follow_the_openapi_description(tmp_path):
    """OpenAPI 1.0 of the Soft Binding Resolution API: maxResults has a minimum (1) and no maximum, so
    a conforming client's larger one (e.g. 500) is served, capped, where it was refused with 400."""
    db = tmp_path / "m.db"
    for i in range(3):
        open_store(db).put(alg=ALG, key_id="k", payload=b"12345678", manifest_id=f"urn:c2pa:{i}",
                           mime="image/jpeg", store=b"x")
    value = base64.b64encode(b"12345678").decode()
    with _client(db) as client:
        many = client.get("/matches/byBinding", params={"alg": ALG, "value": value, "maxResults": "1000"})
        assert many.status_code == 200 and len(many.json()["matches"]) == 3
        two = client.get("/matches/byBinding", params={"alg": ALG, "value": value, "maxResults": "2"})
        assert len(two.json()["matches"]) == 2
        assert client.get("/matches/byBinding", params={"alg": ALG, "value": value, "maxResults": "0"}
                          ).status_code == 400
        posted = client.post("/matches/byBinding", params={"maxResults": "1000"},
                             json={"alg": ALG, "value": value})
        assert posted.status_code == 200 and len(posted.json()["matches"]) == 3


def test_platform_strips_of_a_png_all_recover_the_manifest(env, tmp_path):
    """The ways platforms strip a picture (exiftool -all=, WebP, a 0.9x screenshot PNG) each lose the
    manifest, or break it (exiftool 12 keeps a PNG's caBX chunk but drops the XMP and ICC chunks the
    hard binding covers: Invalid); verify finds it again through the watermark, as recovered."""
    import shutil
    import subprocess

    db = tmp_path / "m.db"
    manifest = _label(env, SAMPLES / "photo.png", tmp_path / "l.png", "s33-platform", store=db)
    copies = []
    with Image.open(tmp_path / "l.png") as im:
        rgb = im.convert("RGB")
        rgb.save(tmp_path / "w.webp", "WEBP", quality=80)
        rgb.resize((round(rgb.width * 0.9), round(rgb.height * 0.9)), Image.BILINEAR).save(tmp_path / "s.png")
    copies += [tmp_path / "w.webp", tmp_path / "s.png"]
    if shutil.which("exiftool"):
        shutil.copy(tmp_path / "l.png", tmp_path / "e.png")
        subprocess.run(["exiftool", "-q", "-q", "-all=", "-overwrite_original", str(tmp_path / "e.png")],
                       check=True)
        copies.append(tmp_path / "e.png")
    for copy in copies:
        embedded = verify(copy, key=env["key"], trust_anchors=env["anchors"]).c2pa
        assert not embedded["present"] or embedded["state"] == "Invalid", copy
        report = verify(copy, key=env["key"], trust_anchors=env["anchors"], manifest_store=str(db))
        assert report.c2pa["source"] == "store" and report.c2pa["manifest_id"] == manifest, copy
        assert report.c2pa["state"] == "Trusted" and report.c2pa["hard_binding"] == "mismatch"
        assert report.verdict == "confirmed", copy


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_store_that_cannot_take_the_manifest_leaves_no_output(env, tmp_path, overwrite):
    """The manifest was signed into the output before the store was written: a store that refused it
    (here another application's database) failed the label call but left a signed output behind, or
    replaced an existing one. Nothing is written (or replaced) now, and no staging folder is left."""
    app = tmp_path / "app.db"
    _foreign_db(app)
    out = tmp_path / "out.png"
    if overwrite:
        out.write_bytes(b"an earlier output")
    with pytest.raises(StoreError, match="not a manifest store"):
        label_file(SAMPLES / "photo.png", out, AIGCLabel(PRODUCER, "s33-no-output"),
                   layers="watermark,metadata,c2pa", key=env["key"], signer=env["signer"],
                   manifest_store=str(app), overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["app.db", "out.png"] if overwrite else ["app.db"])
    if overwrite:
        assert out.read_bytes() == b"an earlier output"


def test_an_invalid_embedded_manifest_replaced_by_the_stored_one_is_reported(env, tmp_path):
    """A signed JPEG whose picture changed after signing: its embedded manifest is Invalid, the stored
    copy of the same manifest is what the report shows; a warning keeps the embedded result in sight."""
    store = tmp_path / "m.db"
    out = tmp_path / "signed.jpg"
    label_file(SAMPLES / "photo.jpg", out, AIGCLabel(PRODUCER, "s33-tampered"),
               layers="watermark,metadata,c2pa", key=env["key"], signer=env["signer"],
               manifest_store=str(store))
    data = bytearray(out.read_bytes())
    at = len(data) - 200  # inside the entropy-coded scan, before EOI: the data hash no longer matches
    data[at] ^= 0x01
    out.write_bytes(bytes(data))
    embedded = verify(out, key=env["key"], trust_anchors=env["anchors"]).to_dict()["layers"]["c2pa"]
    assert embedded["state"] == "Invalid"
    report = verify(out, key=env["key"], trust_anchors=env["anchors"], manifest_store=str(store)).to_dict()
    assert report["layers"]["c2pa"]["source"] == "store"
    assert any(w.startswith("the file's embedded C2PA manifest is Invalid (")
               and "recovered from the store" in w for w in report["warnings"]), report["warnings"]
