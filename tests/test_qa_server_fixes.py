"""QA fixes of `aigc serve`'s API: video soft bindings resolve, a bounded result header, a metadata-only
label with ``c2pa_thumbnail``, the Content-Length 413's body, a deadline on stalled uploads, and the
megapixel check that called a truncated JPEG or any HEIC "too large to decode"."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
pytest.importorskip("multipart", reason="the serve extra (python-multipart) is not installed")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from PIL import Image  # noqa: E402

# the API tests' autouse fixture (a private temp folder that must be empty after each test)
from test_server_api import private_tmp  # noqa: E402, F401

from labeler import AIGCLabel, label_file  # noqa: E402
from labeler.server import ServerConfig, create_app  # noqa: E402
from labeler.server.jobs import make_pool  # noqa: E402
from labeler.server.limits import FORM_OVERHEAD  # noqa: E402
from labeler.server.routes_label import RESULT_HEADER_MAX, result_header  # noqa: E402
from tests.conftest import PRODUCER, SAMPLES, aigc_serve, make_heic  # noqa: E402

KEY = bytes(range(32))
VIDEO_ALG = "aigc-labeler.wm.video.1"


@pytest.fixture(scope="module")
def pool() -> Iterator[object]:
    executor = make_pool(1)
    yield executor
    executor.shutdown(wait=True)


def test_a_watermarked_video_resolves_through_the_api(tmp_path: Path) -> None:
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path / "pki")
    db = tmp_path / "manifests.db"
    result = label_file(SAMPLES / "clip.mp4", tmp_path / "labeled.mp4",
                        AIGCLabel(PRODUCER, "resolve-video-1"), layers="watermark,metadata,c2pa", key=KEY,
                        signer=local_signer(pki.chain, pki.signer_key), manifest_store=str(db))
    # The value a verifier sends: base64 of the payload the mark carries (what verify reports).
    value = base64.b64encode(bytes.fromhex(result.layers["watermark"]["payload"])).decode()
    with TestClient(create_app(ServerConfig(manifest_store=str(db)), executor=None)) as client:
        algs = client.get("/services/supportedAlgorithms").json()["watermarks"]
        assert {"alg": VIDEO_ALG} in algs
        found = client.get("/matches/byBinding", params={"alg": VIDEO_ALG, "value": value}).json()
        manifest = result.layers["c2pa"]["manifest"]
        assert found == {"matches": [{"manifestId": manifest, "similarityScore": 100}]}
        posted = client.post("/matches/byBinding", json={"alg": VIDEO_ALG, "value": value}).json()
        assert posted == found


def test_metadata_only_label_of_a_large_image_ignores_the_thumbnail_option(pool: object, tmp_path: Path
                                                                         ) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (2000, 2000), (40, 90, 160)).save(big)  # 4 megapixels, over the limit of 2
    config = ServerConfig(keys=(KEY,), max_pixels=2_000_000)
    with TestClient(create_app(config, executor=pool)) as client:  # type: ignore[arg-type]
        fields = {"producer": PRODUCER, "produce_id": "big-1", "layers": "metadata", "c2pa_thumbnail": "true"}
        response = client.post("/v1/label", files={"file": ("big.png", big.read_bytes())}, data=fields)
        assert response.status_code == 200, response.text[:300]
        # A layer that decodes is still refused.
        refused = client.post("/v1/label", files={"file": ("big.png", big.read_bytes())},
                              data={**fields, "layers": "watermark,metadata"})
        assert refused.status_code == 422 and "megapixels" in refused.json()["detail"]


def test_the_megapixel_check_refuses_only_large_pictures(pool: object, tmp_path: Path) -> None:
    from labeler.server.jobs import pixels_problem

    # A header Pillow cannot read (a JPEG cut short, a HEIC: Pillow has no HEIF decoder) is no size
    # problem: the reader says what is wrong, as `aigc verify` does.
    cut = (SAMPLES / "photo.jpg").read_bytes()[:1000]
    heic = make_heic(tmp_path / "camera.heic")  # 256 x 192, its size in the ispe property
    assert pixels_problem(str(heic), 50_000_000) is None
    assert "256 x 192" in (pixels_problem(str(heic), 40_000) or "")
    with TestClient(create_app(ServerConfig(), executor=pool)) as client:  # type: ignore[arg-type]
        detail = _error_detail(client.post("/v1/verify", files={"file": ("cut.jpg", cut)}), 422)
        assert "truncated" in detail and "megapixels" not in detail
        response = client.post("/v1/verify", files={"file": ("camera.heic", heic.read_bytes())})
        assert response.status_code == 200, response.text[:300]
        assert response.json()["format"] == "heic" and response.json()["verdict"] == "none"


def _error_detail(response: object, status: int) -> str:
    assert response.status_code == status, response.text[:300]  # type: ignore[attr-defined]
    return response.json()["detail"]  # type: ignore[attr-defined]


def test_result_header_is_bounded_and_says_what_was_cut(pool: object) -> None:
    long_producer = "P" * 30_000
    with TestClient(create_app(ServerConfig(keys=(KEY,)), executor=pool)) as client:  # type: ignore[arg-type]
        response = client.post("/v1/label", files={"file": ("p.png", (SAMPLES / "photo.png").read_bytes())},
                               data={"producer": long_producer, "produce_id": "long-1", "layers": "metadata"})
        assert response.status_code == 200
        header = response.headers["x-aigc-label-result"]
        assert len(header) <= RESULT_HEADER_MAX
        summary = json.loads(header)
        assert summary["format"] == "png" and "layers.metadata.value" in summary["truncated"]
        assert summary["layers"]["metadata"]["value"].endswith("...")
        # The labeled file has the whole field.
        verified = client.post("/v1/verify", files={"file": ("l.png", response.content)}).json()
        assert verified["layers"]["metadata"]["fields"]["ContentProducer"] == long_producer

        normal = client.post("/v1/label", files={"file": ("p.png", (SAMPLES / "photo.png").read_bytes())},
                             data={"producer": PRODUCER, "produce_id": "normal-1", "layers": "metadata"})
        header = normal.headers["x-aigc-label-result"]
        assert "truncated" not in json.loads(header)


def test_result_header_unchanged_for_normal_sizes_and_bounded_when_everything_is_long() -> None:
    summary = {"format": "png", "layers": {"metadata": {"value": "x" * 300}}, "seconds": 0.5, "warnings": []}
    assert result_header(summary) == json.dumps(summary, separators=(",", ":"))
    many = {"format": "png", "layers": {"metadata": {}}, "seconds": 0.5, "warnings": ["w" * 250] * 100}
    header = result_header(many)
    assert len(header) <= RESULT_HEADER_MAX
    assert json.loads(header) == {"format": "png", "layers": {"metadata": {}}, "seconds": 0.5,
                                  "truncated": ["*"]}


def test_413_by_content_length_is_compact_and_states_the_body_limit(pool: object) -> None:
    with TestClient(create_app(ServerConfig(max_upload_bytes=100_000), executor=pool)) as client:  # type: ignore[arg-type]
        body = b"x" * (100_000 + FORM_OVERHEAD + 1)
        response = client.post("/v1/verify", content=body,
                               headers={"Content-Type": "multipart/form-data; boundary=B"})
        assert response.status_code == 413
        assert response.content.startswith(b'{"error":"content too large","detail":"')
        detail = response.json()["detail"]
        assert f"at most {100_000 + FORM_OVERHEAD} bytes" in detail and str(len(body)) in detail


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`aigc serve` admitting one request at a time, with a 2-second timeout."""
    yield from aigc_serve(tmp_path_factory, "--max-concurrent", "1", "--timeout", "2")


def _stall(url: str) -> socket.socket:
    """Send the headers and part of a multipart body, then nothing."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    part = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + b"\xff" * 5000)
    sock.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                 + f"Content-Length: {len(part) + 100_000}\r\n\r\n".encode() + part)
    return sock


def _verify_status(url: str, pad: int = 0) -> int:
    """POST photo.jpg (plus ``pad`` bytes after its end) to verify with urllib; the HTTP status."""
    boundary = "aigcboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n\r\n"
            ).encode() + (SAMPLES / "photo.jpg").read_bytes() + b"\0" * pad
    form += f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/v1/verify", data=form, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_stalled_upload_is_answered_408_and_frees_its_slot(slow_server: str) -> None:
    sock = _stall(slow_server)
    try:
        time.sleep(0.5)
        # The stalled upload holds the only slot. 8 MB more than any socket buffer holds: the server
        # reads and discards a refused body, so urllib gets the 503, not a broken pipe (CI flake).
        assert _verify_status(slow_server, pad=8 << 20) == 503
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert time.monotonic() - started < 10
    finally:
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert json.loads(body)["error"] == "request timeout" and b"\n" not in body.strip()
    deadline = time.monotonic() + 10
    while (status := _verify_status(slow_server)) == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 200
