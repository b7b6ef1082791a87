"""`POST /v1/propagate` through Starlette's test client: what `aigc propagate` does, over HTTP, in one call.

One process pool (one worker) serves every app of this module. Each test points :mod:`tempfile` at a
private folder and checks that it is empty afterwards (uploads, request folders, spooled parts); the
worker's own temporary folder (TMPDIR, inherited at spawn) is checked once at the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import server_support  # noqa: E402
from server_support import TestClient, left_in, make_client  # noqa: E402

from detectors import verify  # noqa: E402
from labeler import AIGCLabel, label_file, write_label  # noqa: E402
from labeler.server.routes_label import RESULT_HEADER_MAX  # noqa: E402
from labeler.server.routes_propagate import propagate_header  # noqa: E402
from tests.conftest import PRODUCER, SAMPLES, seeded_key  # noqa: E402

# the shared fixtures, registered in this module (server_support)
pool, private_tmp = server_support.pool, server_support.private_tmp
PLATFORM = "001191110102MACQD9K64020001"
TOKEN = "s3cret-token-for-tests-0123456789"
KEY = seeded_key("test_server_propagate")
OLD_KEY = seeded_key("test_server_propagate-old")
PLATFORM_FIELDS = {"propagator": PLATFORM, "propagate_id": "up-42"}
PNG = (SAMPLES / "photo.png").read_bytes()


def _client(pool: object, **config: object) -> TestClient:
    config.setdefault("keys", (KEY,))
    return make_client(pool, **config)


def _error(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.text.count("\n") == 0  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "detail"}
    assert "Traceback" not in body["detail"]
    return body["detail"]


def _result(response: object) -> dict:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    text = response.headers["x-aigc-propagate-result"]  # type: ignore[attr-defined]
    assert text.isascii()
    return json.loads(text)


def _metadata(tmp_path: Path, name: str, body: bytes) -> dict | None:
    """The label fields read back from the answer's bytes (as `aigc verify` reads them)."""
    out = tmp_path / name
    out.write_bytes(body)
    report = verify(out)
    return report.metadata.fields if report.metadata is not None and report.metadata.present else None


def test_labeled_file_keeps_the_producers_fields_and_gets_the_propagator(pool: object,
                                                                         tmp_path: Path) -> None:
    src = tmp_path / "labeled.jpg"
    label_file(SAMPLES / "photo.jpg", src, AIGCLabel(PRODUCER, "img-7", reserved_code1="producer-sig",
                                                      reserved_code2="old-platform-sig"))
    with _client(pool, token=TOKEN) as client:
        response = client.post("/v1/propagate", files={"file": ("render.jpg", src.read_bytes())},
                               data={**PLATFORM_FIELDS, "reserved2": "plat-sig"},
                               headers={"Authorization": f"Bearer {TOKEN}"})
    result = _result(response)
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"] == 'attachment; filename="render.propagated.jpg"'
    assert response.headers["cache-control"] == "no-store"
    assert result["action"] == "propagated" and result["notice"] == "AI-generated"
    assert result["verdict"] == "confirmed" and result["carrier"] and result["format"] == "jpeg"
    assert "src" not in result and "dst" not in result  # no server paths leak
    assert result["before"]["ReservedCode2"] == "old-platform-sig"
    expected = {"Label": "1", "ContentProducer": PRODUCER, "ProduceID": "img-7",
                "ReservedCode1": "producer-sig", "ContentPropagator": PLATFORM, "PropagateID": "up-42",
                "ReservedCode2": "plat-sig"}
    assert result["label"] == expected
    assert _metadata(tmp_path, "out.jpg", response.content) == expected


def test_unlabeled_file_declared_ai_gets_label_2(pool: object, tmp_path: Path) -> None:
    with _client(pool) as client:
        response = client.post("/v1/propagate", files={"file": ("photo.png", PNG)},
                               data={**PLATFORM_FIELDS, "declared_ai": "true"})
    result = _result(response)
    assert response.headers["content-type"] == "image/png"
    assert result["action"] == "labeled" and result["verdict"] == "none" and result["before"] is None
    assert result["notice"] == "possibly AI-generated"
    fields = _metadata(tmp_path, "out.png", response.content)
    assert fields is not None and fields["Label"] == "2"
    assert fields["ContentProducer"] == PLATFORM and fields["ContentPropagator"] == PLATFORM
    assert fields["ProduceID"] == "up-42" and fields["PropagateID"] == "up-42"


def test_nothing_found_comes_back_unchanged(pool: object) -> None:
    upload = (SAMPLES / "speech.mp3").read_bytes()
    with _client(pool) as client:
        response = client.post("/v1/propagate", files={"file": ("speech.mp3", upload)},
                               data={**PLATFORM_FIELDS, "declared_ai": "false"})
    result = _result(response)
    assert response.headers["content-type"] == "audio/mpeg"
    assert result["action"] == "copied" and result["notice"] is None and result["label"] is None
    assert response.content == upload


def test_a_watermark_of_an_older_server_key_is_a_trace(pool: object, tmp_path: Path) -> None:
    """Key rotation, as /v1/verify does it: each of the server's keys is tried before "nothing found"."""
    marked = tmp_path / "marked.png"
    label_file(SAMPLES / "photo.png", marked, AIGCLabel(PRODUCER, "wm-1"), layers=("watermark",), key=OLD_KEY)
    files = {"file": ("marked.png", marked.read_bytes())}
    with _client(pool, keys=(KEY,)) as client:  # a server that never had the old key: no trace
        assert _result(client.post("/v1/propagate", files=files, data=PLATFORM_FIELDS))["action"] == "copied"
    with _client(pool, keys=(KEY, OLD_KEY)) as client:
        response = client.post("/v1/propagate", files=files, data=PLATFORM_FIELDS)
    result = _result(response)
    assert result["action"] == "labeled" and result["notice"] == "suspected AI-generated"
    assert result["label"]["Label"] == "3"
    assert (_metadata(tmp_path, "out.png", response.content) or {}).get("Label") == "3"


@pytest.mark.parametrize(("data", "needle"), [
    ({"propagate_id": "up-1"}, "missing field(s): propagator"),
    ({"propagator": " ", "propagate_id": "up-1"}, "missing field(s): propagator"),
    ({"propagator": PLATFORM}, "missing field(s): propagate_id"),
    ({"propagator": "plat form", "propagate_id": "up-1"}, "invalid propagator values"),
    ({**PLATFORM_FIELDS, "reserved2": "sig\\x"}, "invalid propagator values"),
    ({**PLATFORM_FIELDS, "declared_ai": "maybe"}, "declared_ai must be true or false"),
    ({**PLATFORM_FIELDS, "key": "00" * 32}, "server's own"),
    ({**PLATFORM_FIELDS, "token": TOKEN}, "server's own"),
    ({**PLATFORM_FIELDS, "producer": PRODUCER}, "unknown field 'producer'"),
])
def test_400_bad_fields(pool: object, data: dict, needle: str) -> None:
    with _client(pool) as client:
        detail = _error(client.post("/v1/propagate", files={"file": ("a.png", PNG)}, data=data), 400)
    assert needle in detail
    if "unknown field" in needle:  # the list of fields names what may be sent, not the refused secrets
        assert "propagate_id" in detail and not any(s in detail for s in ("key_file", "sign_key", "token"))


def test_file_errors_415_and_422(pool: object, tmp_path: Path) -> None:
    bad_label = tmp_path / "bad.png"
    write_label(SAMPLES / "photo.png", bad_label, '{"Label":"AIGC","ContentProducer":"x","ProduceID":"y"}')
    with _client(pool) as client:
        def post(name: str, body: bytes) -> object:
            return client.post("/v1/propagate", files={"file": (name, body)}, data=PLATFORM_FIELDS)

        assert "unrecognised" in _error(post("a.jpg", b"%PDF-1.7 not an image"), 415)
        assert "moov" in _error(post("cut.mp4", (SAMPLES / "clip.mp4").read_bytes()[:5000]), 422)
        # a producer's label that may not be propagated is the file's problem, not the request's
        assert "not compliant" in _error(post("bad.png", bad_label.read_bytes()), 422)
        assert "empty" in _error(post("zero.png", b""), 400)


def test_401_403_413_503(pool: object) -> None:
    files = {"file": ("a.jpg", (SAMPLES / "photo.jpg").read_bytes())}  # 420 kB
    with _client(pool, token=TOKEN) as client:
        response = client.post("/v1/propagate", files=files, data=PLATFORM_FIELDS)
        _error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    with _client(pool, keys=()) as client:  # a verification-only server writes no label
        assert "disabled" in _error(client.post("/v1/propagate", files=files, data=PLATFORM_FIELDS), 403)
    with _client(pool, max_upload_bytes=100_000) as client:
        assert "limit" in _error(client.post("/v1/propagate", files=files, data=PLATFORM_FIELDS), 413)
    with _client(pool, max_concurrent=0) as client:
        response = client.post("/v1/propagate", files=files, data=PLATFORM_FIELDS)
        _error(response, 503)
        assert response.headers["retry-after"] == "5"


def test_504_cleans_up_when_the_late_job_ends(pool: object) -> None:
    with _client(pool, timeout_s=0.01) as client:
        _error(client.post("/v1/propagate", files={"file": ("a.mp4", (SAMPLES / "clip.mp4").read_bytes())},
                           data=PLATFORM_FIELDS), 504)
        state = client.app.state.server  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while state.gate.active and time.monotonic() < deadline:  # the job runs on, then cleans up
            time.sleep(0.1)
        assert state.gate.active == 0
        assert left_in(Path(state.root)) == []


def test_client_disconnect_mid_upload_leaves_nothing(pool: object) -> None:
    with _client(pool) as client:
        app = client.app
        part = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
                + (SAMPLES / "photo.jpg").read_bytes() * 4)  # > 1 MiB: the parser has spilled to disk
        messages = [{"type": "http.request", "body": part, "more_body": True}, {"type": "http.disconnect"}]

        async def receive() -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            pass

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/propagate", "raw_path": b"/v1/propagate", "query_string": b"",
                 "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
                 "headers": [(b"content-type", b"multipart/form-data; boundary=B")]}
        client.portal.call(app, scope, receive, send)  # type: ignore[attr-defined]
        assert client.app.state.server.gate.active == 0  # type: ignore[attr-defined]
        assert left_in(Path(client.app.state.server.root)) == []  # type: ignore[attr-defined]


def test_openapi_describes_the_endpoint(pool: object) -> None:
    with _client(pool) as client:
        spec = client.get("/v1/openapi.json").json()
    operation = spec["paths"]["/v1/propagate"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file", "propagator", "propagate_id"]
    assert {"propagator", "propagate_id", "reserved2", "declared_ai"} <= set(schema["properties"])
    assert {"X-AIGC-Propagate-Result", "Content-Disposition"} <= set(operation["responses"]["200"]["headers"])
    assert {"400", "401", "403", "408", "413", "415", "422", "503", "504"} <= set(operation["responses"])


def test_a_result_cut_to_its_minimum_still_says_what_to_show() -> None:
    summary = {"action": "propagated", "verdict": "confirmed", "notice": "AI-generated", "reasons": [],
               "before": None, "label": None, "carrier": "xmp-tc260", "format": "jpeg", "seconds": 0.1,
               "warnings": [f"warning {i}: " + "x" * 300 for i in range(40)]}
    header = propagate_header(summary)
    assert len(header) <= RESULT_HEADER_MAX
    assert json.loads(header) == {"action": "propagated", "notice": "AI-generated",
                                  "verdict": "confirmed", "carrier": "xmp-tc260", "format": "jpeg",
                                  "seconds": 0.1, "truncated": ["*"]}
