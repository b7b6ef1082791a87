"""The C2PA Soft Binding Resolution API of `aigc serve`, and `verify` using such a service over HTTP."""

from __future__ import annotations

import base64
import json
import urllib.request
import warnings
from collections.abc import Iterator

import pytest

pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
pytest.importorskip("multipart", reason="the serve extra (python-multipart) is not installed")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from conftest import PRODUCER, SAMPLES, aigc_serve, free_port  # noqa: E402
from PIL import Image  # noqa: E402

from detectors import verify  # noqa: E402
from labeler import AIGCLabel, label_file  # noqa: E402
from labeler.provenance.c2pa_sign import local_signer  # noqa: E402
from labeler.provenance.pki import init_test_pki  # noqa: E402
from labeler.server import ServerConfig, create_app  # noqa: E402
from labeler.watermark import payload_from_produce_id  # noqa: E402
from labeler.watermark.keyfile import key_id, read_key_file, write_key_file  # noqa: E402

TOKEN = "resolution-token-0123456789abcdef"
ALG = "aigc-labeler.wm.dct.1"


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> dict:
    """A JPEG labeled into a manifest store, and its re-encoded (stripped) copy."""
    d = tmp_path_factory.mktemp("resolution")
    pki = init_test_pki(d / "pki")
    write_key_file(d / "wm.key")
    key = read_key_file(d / "wm.key")
    db = d / "manifests.db"
    signer = local_signer(pki.chain, pki.signer_key)
    result = label_file(SAMPLES / "photo.jpg", d / "labeled.jpg", AIGCLabel(PRODUCER, "resolve-1"),
                        layers="watermark,metadata,c2pa", key=key, signer=signer, manifest_store=str(db))
    with Image.open(d / "labeled.jpg") as im:
        im.convert("RGB").save(d / "stripped.jpg", "JPEG", quality=80)
    return {"dir": d, "db": db, "key": key, "key_file": d / "wm.key", "anchors": pki.trust_anchor,
            "manifest": result.layers["c2pa"]["manifest"]}


def _client(stored: dict, **config: object) -> TestClient:
    return TestClient(create_app(ServerConfig(manifest_store=str(stored["db"]), **config),
                                 executor=None))


def _value(produce_id: str) -> str:
    return base64.b64encode(payload_from_produce_id(produce_id)).decode()


def test_matches_manifests_and_algorithms(stored):
    with _client(stored) as client:
        got = client.get("/matches/byBinding", params={"alg": ALG, "value": _value("resolve-1")})
        assert got.status_code == 200
        assert got.json() == {"matches": [{"manifestId": stored["manifest"], "similarityScore": 100}]}
        posted = client.post("/matches/byBinding", json={"alg": ALG, "value": _value("resolve-1"),
                                                          "keyId": key_id(stored["key"])})
        assert posted.json() == got.json()
        assert client.get("/matches/byBinding", params={"alg": ALG, "value": _value("other")}).json() == {
            "matches": []}
        assert client.post("/matches/byBinding", json={"alg": ALG, "value": _value("resolve-1"),
                                                        "keyId": "0" * 16}).json() == {"matches": []}
        manifest = client.get(f"/manifests/{stored['manifest']}")
        assert manifest.status_code == 200 and manifest.headers["content-type"] == "application/c2pa"
        assert manifest.content[4:8] == b"jumb"  # a JUMBF superbox: the C2PA manifest store
        algs = client.get("/services/supportedAlgorithms").json()
        assert {"alg": ALG} in algs["watermarks"] and algs["fingerprints"] == []


def test_status_codes(stored):
    with _client(stored) as client:
        for params in ({"alg": ALG}, {"alg": ALG, "value": "not base64!"},
                       {"alg": ALG, "value": _value("x"), "maxResults": "0"}):
            bad = client.get("/matches/byBinding", params=params)
            assert bad.status_code == 400 and set(bad.json()) == {"error", "detail"}
        assert client.post("/matches/byBinding", content=b"[1, 2").status_code == 400
        assert client.get("/manifests/urn:c2pa:no-such-manifest").status_code == 404
    with _client(stored, token=TOKEN) as client:
        assert client.get("/services/supportedAlgorithms").status_code == 401
        ok = client.get("/services/supportedAlgorithms", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
    with TestClient(create_app(ServerConfig())) as client:
        assert client.get("/services/supportedAlgorithms").status_code == 404


@pytest.fixture(scope="module")
def service(stored, tmp_path_factory) -> Iterator[str]:
    """`aigc serve --manifest-store` on a free loopback port."""
    yield from aigc_serve(tmp_path_factory, "--manifest-store", str(stored["db"]))


def test_verify_recovers_through_a_resolution_service(stored, service):
    report = verify(stored["dir"] / "stripped.jpg", key=stored["key"], trust_anchors=[str(stored["anchors"])],
                    manifest_store=service)
    c2pa = report.c2pa
    assert c2pa is not None and c2pa.get("source") == "store", (report.watermark, report.warnings)
    assert c2pa["state"] == "Trusted"
    assert c2pa["manifest_id"] == stored["manifest"] and report.verdict == "confirmed"
    # The page's server verifies with its own store too.
    with open(stored["dir"] / "stripped.jpg", "rb") as f:
        body = f.read()
    boundary = "aigcboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{service}/v1/verify", data=form, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        served = json.load(answer)
    # That server has no watermark key: it cannot find the mark, so there is nothing to look up.
    assert served["layers"]["c2pa"]["present"] is False


def test_a_service_that_is_down_is_a_warning(stored):
    down = f"http://127.0.0.1:{free_port()}"
    report = verify(stored["dir"] / "stripped.jpg", key=stored["key"], manifest_store=down)
    assert report.verdict == "confirmed" and report.c2pa is not None and report.c2pa["present"] is False
    assert any(w.startswith("manifest store http://127.0.0.1:") for w in report.warnings), report.warnings
