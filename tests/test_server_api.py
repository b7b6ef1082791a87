"""`aigc serve`'s HTTP API through Starlette's test client: every status path, several media, clean-up.

One process pool (one worker) serves every app of this module. Each test points :mod:`tempfile` at a
private folder and checks that it is empty afterwards (uploads, request folders, spooled parts); the
worker's own temporary folder (TMPDIR, inherited at spawn) is checked once at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import server_support  # noqa: E402
from server_support import TestClient, left_in, make_client  # noqa: E402

from detectors import verify  # noqa: E402
from tests.conftest import PRODUCER, SAMPLES  # noqa: E402

# the shared fixtures, registered in this module (server_support)
pool, private_tmp = server_support.pool, server_support.private_tmp
TOKEN = "s3cret-token-for-tests-0123456789"
KEY = bytes(range(32))


def _client(pool: object, **config: object) -> TestClient:
    return make_client(pool, **config)


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _cli_json(path: Path, name: str, key: bytes | None = None) -> dict:
    """What `aigc verify --json` prints for the file (Report.to_json), with the upload's name as file."""
    report = verify(path, key=key)
    report.file = name
    return json.loads(report.to_json())


def _error(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "detail"}
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    return body["detail"]


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "speech.mp3", "clip.mp4"])
def test_verify_is_the_cli_report(pool: object, name: str) -> None:
    with _client(pool) as client:
        response = client.post("/v1/verify", files={"file": (name, _sample(name))})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == _cli_json(SAMPLES / name, name)


def test_several_files_give_a_list_in_order(pool: object, private_tmp: Path) -> None:
    files = [("file", ("a.png", _sample("photo.png"))), ("file", ("bad.bin", b"not media at all")),
             ("file", ("b.mp3", _sample("speech.mp3")))]
    with _client(pool) as client:
        response = client.post("/v1/verify", files=files)
    assert response.status_code == 200
    reports = response.json()
    assert [r["file"] for r in reports] == ["a.png", "bad.bin", "b.mp3"]
    assert [r["verdict"] for r in reports] == ["none", None, "none"]
    assert reports[1]["errors"] and reports[1]["format"] is None


def test_label_then_verify_with_the_box(pool: object) -> None:
    fields = {"producer": PRODUCER, "produce_id": "srv-1", "layers": "watermark,visible,metadata"}
    with _client(pool, keys=(KEY,)) as client:
        labeled = client.post("/v1/label", files={"file": ("photo.jpg", _sample("photo.jpg"))}, data=fields)
        assert labeled.status_code == 200, labeled.text
        assert labeled.headers["content-type"] == "image/jpeg"
        assert labeled.headers["content-disposition"] == 'attachment; filename="photo.labeled.jpg"'
        summary_text = labeled.headers["x-aigc-label-result"]
        assert summary_text.isascii()
        summary = json.loads(summary_text)
        assert summary["format"] == "jpeg" and set(summary["layers"]) == {"watermark", "visible", "metadata"}
        assert "src" not in summary and "dst" not in summary  # no server paths leak
        checked = client.post("/v1/verify?boxes=1", files={"file": ("x.jpg", labeled.content)})
    report = checked.json()
    assert summary["warnings"] == []  # the mark was read back from the output
    assert report["verdict"] == "confirmed"
    assert report["layers"]["watermark"]["present"] and report["layers"]["watermark"]["matches_metadata"]
    assert report["layers"]["metadata"]["fields"]["ProduceID"] == "srv-1"
    (box,) = json.loads(checked.headers["x-aigc-visible-boxes"])
    assert box["width"] == 1000 and box["x"] > 500 and box["y"] > 500 and box["w"] > 50


@pytest.mark.parametrize(("name", "mime"), [("photo.png", "image/png"), ("speech.mp3", "audio/mpeg"),
                                            ("clip.mp4", "video/mp4")])
def test_label_content_type_from_the_content(pool: object, name: str, mime: str) -> None:
    fields = {"producer": PRODUCER, "produce_id": f"srv-{name}"}
    with _client(pool, keys=(KEY,)) as client:
        # The declared type and the name lie; the answer follows the bytes.
        response = client.post("/v1/label", files={"file": ("upload.txt", _sample(name), "text/plain")},
                               data=fields)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == mime
    assert verify(response.content).metadata.fields["ProduceID"] == f"srv-{name}"


def test_jpeg_declared_as_mp4_is_a_jpeg(pool: object) -> None:
    with _client(pool) as client:
        response = client.post("/v1/verify", files={"file": ("photo.jpg", _sample("photo.jpg"), "video/mp4")})
    assert response.status_code == 200
    assert response.json()["format"] == "jpeg" and response.json()["medium"] == "image"


def test_a_path_as_file_name_is_only_a_name(pool: object, tmp_path: Path) -> None:
    with _client(pool) as client:
        response = client.post("/v1/verify", files={"file": ("../../etc/passwd", _sample("photo.png"))})
    assert response.status_code == 200
    assert response.json()["file"] == "passwd"
    assert response.json()["format"] == "png"


def test_name_extension_that_lies_is_warned_about_as_by_the_cli(pool: object, tmp_path: Path) -> None:
    lying = tmp_path / "photo.mp4"
    lying.write_bytes(_sample("photo.jpg"))
    with _client(pool) as client:
        response = client.post("/v1/verify", files={"file": ("photo.mp4", lying.read_bytes())})
    assert response.json() == _cli_json(lying, "photo.mp4")
    assert any(".mp4 does not match" in w for w in response.json()["warnings"])


def test_400_bad_requests(pool: object) -> None:
    with _client(pool) as client:
        assert "multipart" in _error(client.post("/v1/verify"), 400)
        assert "multipart" in _error(client.post("/v1/verify", json={"file": "x"}), 400)
        assert "'file'" in _error(client.post("/v1/verify", files={"upload": ("a.jpg", b"\xff\xd8")}), 400)
        assert "empty" in _error(client.post("/v1/verify", files={"file": ("a.jpg", b"")}), 400)
        assert "not text" in _error(client.post("/v1/verify", data={"file": "just text"},
                                                files={"x": ("a.bin", b"1")}), 400)


def test_400_label_fields(pool: object) -> None:
    jpg = {"file": ("a.jpg", _sample("photo.jpg"))}
    with _client(pool, keys=(KEY,)) as client:
        assert "produce_id" in _error(client.post("/v1/label", files=jpg, data={"producer": PRODUCER}), 400)
        assert "server's own" in _error(client.post("/v1/label", files=jpg, data={
            "producer": PRODUCER, "produce_id": "a", "key": "00" * 32}), 400)
        assert "c2pa" in _error(client.post("/v1/label", files=jpg, data={
            "producer": PRODUCER, "produce_id": "a", "layers": "metadata,c2pa"}), 400)
        unknown = _error(client.post("/v1/label", files=jpg, data={
            "producer": PRODUCER, "produce_id": "a", "colour": "red"}), 400)
        assert "unknown field" in unknown and "produce_id" in unknown
        # the list of fields names what may be sent, not the secrets that are always refused
        assert not any(secret in unknown for secret in ("key_file", "sign_key", "token"))
        assert "quality" in _error(client.post("/v1/label", files=jpg, data={
            "producer": PRODUCER, "produce_id": "a", "quality": "200"}), 400)
        assert "label" in _error(client.post("/v1/label", files=jpg, data={
            "producer": PRODUCER, "produce_id": "a", "label": "7"}), 400)


def test_401_without_the_token(pool: object) -> None:
    fields = {"producer": PRODUCER, "produce_id": "tok-1"}
    with _client(pool, keys=(KEY,), token=TOKEN) as client:
        files = {"file": ("a.png", _sample("photo.png"))}
        response = client.post("/v1/label", files=files, data=fields)
        _error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        _error(client.post("/v1/label", files=files, data=fields,
                           headers={"Authorization": "Bearer wrong-token-0000000000"}), 401)
        good = client.post("/v1/label", files=files, data=fields,
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and good.headers["content-type"] == "image/png"
        # Verifying needs no token.
        assert client.post("/v1/verify", files=files).status_code == 200


def test_403_when_labeling_is_disabled(pool: object) -> None:
    with _client(pool) as client:
        health = client.get("/v1/health").json()
        assert health["labeling"]["enabled"] is False and "key" in health["labeling"]["reason"]
        detail = _error(client.post("/v1/label", files={"file": ("a.png", _sample("photo.png"))},
                                    data={"producer": PRODUCER, "produce_id": "x"}), 403)
    assert "disabled" in detail


def test_413_over_the_limit(pool: object) -> None:
    with _client(pool, max_upload_bytes=100_000) as client:
        _error(client.post("/v1/verify", files={"file": ("a.jpg", _sample("photo.jpg"))}), 413)  # 420 kB

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
            for _ in range(40):
                yield b"\xff" * 65536

        response = client.post("/v1/verify", content=chunks(),
                               headers={"Content-Type": "multipart/form-data; boundary=B"})
        _error(response, 413)
        small = client.post("/v1/verify", files={"file": ("s.png", _sample("photo.png")[:50_000])})
        assert small.status_code in (200, 422)  # under the limit: served


def test_413_limit_between_part_and_body(pool: object) -> None:
    # The body limit has room for the multipart framing; the file itself is held to the limit.
    with _client(pool, max_upload_bytes=300_000) as client:
        response = client.post("/v1/verify", files={"file": ("a.png", _sample("photo.png"))})
        assert "limit" in _error(response, 413)


def test_415_unsupported_content(pool: object) -> None:
    with _client(pool) as client:
        detail = _error(client.post("/v1/verify", files={"file": ("a.jpg", b"%PDF-1.7 not an image")}), 415)
    assert detail.startswith("a.jpg: unrecognised file content")


def test_422_truncated_mp4(pool: object) -> None:
    with _client(pool) as client:
        response = client.post("/v1/verify", files={"file": ("cut.mp4", _sample("clip.mp4")[:5000])})
        detail = _error(response, 422)
    assert detail.startswith("cut.mp4: ")


def test_label_warns_when_its_watermark_cannot_be_read_back(pool: object) -> None:
    """On pure noise the invisible mark has nothing to ride on: the result header says so."""
    import io

    import numpy as np
    from PIL import Image

    from detectors.read_back import UNREAD_WATERMARK_NOTE

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(buf, "PNG")
    with _client(pool, keys=(KEY,)) as client:
        labeled = client.post("/v1/label", files={"file": ("noise.png", buf.getvalue())},
                              data={"producer": PRODUCER, "produce_id": "noise", "layers": "watermark"})
    assert labeled.status_code == 200
    assert UNREAD_WATERMARK_NOTE in json.loads(labeled.headers["x-aigc-label-result"])["warnings"]


def test_422_too_small_for_the_watermark(pool: object) -> None:
    """A 1 x 1 picture is a valid image that cannot carry the mark: unfit for the layer (422), like
    a picture over the megapixel limit, not a bad request (400)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(buf, "PNG")
    with _client(pool, keys=(KEY,)) as client:
        detail = _error(client.post("/v1/label", files={"file": ("dot.png", buf.getvalue())},
                                    data={"producer": PRODUCER, "produce_id": "dot", "layers": "watermark"}),
                        422)
    assert "needs at least 128x128 pixels" in detail


def test_503_when_full(pool: object) -> None:
    with _client(pool, max_concurrent=0) as client:
        response = client.post("/v1/verify", files={"file": ("a.png", _sample("photo.png"))})
        _error(response, 503)
        assert response.headers["retry-after"] == "5"
        assert client.get("/v1/health").status_code == 200  # still serving


def test_504_and_clean_up_after_the_job(pool: object, private_tmp: Path) -> None:
    with _client(pool, timeout_s=0.01) as client:
        _error(client.post("/v1/verify", files={"file": ("a.mp4", _sample("clip.mp4"))}), 504)
        state = client.app.state.server  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while state.gate.active and time.monotonic() < deadline:  # the job runs on, then cleans up
            time.sleep(0.1)
        assert state.gate.active == 0
        assert left_in(Path(state.root)) == []


def test_client_disconnect_mid_upload_leaves_nothing(pool: object, private_tmp: Path) -> None:
    with _client(pool) as client:
        app = client.app
        part = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
                + _sample("photo.jpg") * 4)  # > 1 MiB: the parser has spilled to disk
        messages = [{"type": "http.request", "body": part, "more_body": True}, {"type": "http.disconnect"}]
        sent: list[dict] = []

        async def receive() -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/verify", "raw_path": b"/v1/verify", "query_string": b"",
                 "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000),
                 "headers": [(b"content-type", b"multipart/form-data; boundary=B")]}
        client.portal.call(app, scope, receive, send)  # type: ignore[attr-defined]
        assert client.app.state.server.gate.active == 0  # type: ignore[attr-defined]
        assert left_in(Path(client.app.state.server.root)) == []  # type: ignore[attr-defined]
        assert client.get("/v1/health").status_code == 200


def test_errors_are_json_everywhere(pool: object) -> None:
    with _client(pool) as client:
        _error(client.get("/nowhere"), 404)
        _error(client.get("/v1/verify"), 405)


def test_health_openapi_page_and_docs(pool: object) -> None:
    with _client(pool, keys=(KEY,), token=TOKEN, max_upload_bytes=5 << 20) as client:
        health = client.get("/v1/health").json()
        assert health["labeling"] == {"enabled": True, "layers": ["watermark", "metadata", "visible"],
                                      "token_required": True, "reason": None}
        assert health["limits"]["max_upload_bytes"] == 5 << 20
        assert TOKEN not in json.dumps(health)
        spec = client.get("/v1/openapi.json").json()
        assert set(spec["paths"]) == {"/v1/verify", "/v1/label", "/v1/propagate", "/v1/health"}
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "http://" not in page.text and "https://" not in page.text  # no CDN
        script = client.get("/static/app.js")
        assert script.status_code == 200 and "innerHTML" not in script.text
        for asset in ("app.js", "style.css", "docs.js", "docs.html"):  # nothing loads from elsewhere
            text = client.get(f"/static/{asset}").text
            assert "http://" not in text and "https://" not in text and "//cdn" not in text, asset
        assert client.get("/fonts/label-cjk.otf").content[:4] == b"OTTO"
        assert client.get("/docs").status_code == 200
        assert client.get("/static/../config.py").status_code == 404


def test_bomb_png_is_answered(pool: object, tmp_path: Path) -> None:
    # 100 megapixels of one colour: 290 kB of PNG that decodes to 300 MB (1.9 GB peak in verify).
    import zlib

    width = height = 10_000
    row = b"\x00" + b"\x00" * (width * 3)
    data = zlib.compress(row * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big")
                                        + bytes([8, 2, 0, 0, 0]))
           + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    with _client(pool, keys=(KEY,)) as client:
        detail = _error(client.post("/v1/verify", files={"file": ("bomb.png", png)}), 422)
        assert "10000 x 10000 = 100 megapixels" in detail
        listed = client.post("/v1/verify", files=[("file", ("bomb.png", png)), ("file", ("b.png", png))])
        assert [r["verdict"] for r in listed.json()] == [None, None]
        fields = {"producer": PRODUCER, "produce_id": "bomb-1"}
        detail = _error(client.post("/v1/label", files={"file": ("bomb.png", png)},
                                    data={**fields, "layers": "visible,metadata"}), 422)
        assert "megapixels" in detail
        # The metadata layer never decodes the pixels: allowed.
        assert client.post("/v1/label", files={"file": ("bomb.png", png)}, data=fields).status_code == 200
        assert client.get("/v1/health").status_code == 200


def test_fifty_parallel_uploads_get_200_or_503(pool: object, private_tmp: Path) -> None:
    import io
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 30, 200)).save(buffer, "PNG")
    small = buffer.getvalue()
    with _client(pool, max_concurrent=2) as client:
        def post(i: int) -> int:
            return client.post("/v1/verify", files={"file": (f"{i}.png", small)}).status_code

        with ThreadPoolExecutor(50) as threads:
            codes = list(threads.map(post, range(50)))
        assert set(codes) == {200, 503}, codes  # some served, the rest refused at once
        state = client.app.state.server  # type: ignore[attr-defined]
        assert state.gate.active == 0 and left_in(Path(state.root)) == []
        assert client.get("/v1/health").status_code == 200


def test_verify_body_is_byte_for_byte_the_cli_line(pool: object, tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "speech.mp3").write_bytes(_sample("speech.mp3"))
    cli = subprocess.run([sys.executable, "-m", "labeler.cli", "verify", "--json", "speech.mp3"],
                         cwd=tmp_path, capture_output=True, timeout=120, check=True)
    with _client(pool) as client:
        response = client.post("/v1/verify", files={"file": ("speech.mp3", _sample("speech.mp3"))})
    assert response.content + b"\n" == cli.stdout


def test_video_box_on_the_first_frame(pool: object) -> None:
    fields = {"producer": PRODUCER, "produce_id": "srv-video", "layers": "visible,metadata"}
    with _client(pool, keys=(KEY,)) as client:
        labeled = client.post("/v1/label", files={"file": ("clip.mp4", _sample("clip.mp4"))}, data=fields)
        assert labeled.status_code == 200, labeled.text
        checked = client.post("/v1/verify?boxes=1", files={"file": ("clip.mp4", labeled.content)})
    assert checked.json()["verdict"] == "confirmed" and checked.json()["layers"]["visible"]["present"]
    (box,) = json.loads(checked.headers["x-aigc-visible-boxes"])
    assert box is not None and box["x"] > box["width"] / 2 and box["y"] > box["height"] / 2  # bottom-right


def test_download_name_keeps_the_uploads_extension_of_the_same_format():
    from labeler.server.routes_label import _download_name

    assert _download_name("song.opus", "ogg") == "song.labeled.opus"  # not .ogg: players look at it
    assert _download_name("photo.JPEG", "jpeg") == "photo.labeled.jpeg"
    # A name whose extension says another format gets the canonical one of what the content is.
    assert _download_name("photo.png", "jpeg") == "photo.labeled.jpg"
    assert _download_name("upload", "ogg") == "upload.labeled.ogg"


def test_label_field_errors_name_the_form_field(pool: object) -> None:
    """The 400s named the CLI's option ("--cue takes ...") and the library's parameter ("pass
    check_wording=False"), neither of which an HTTP client has."""
    fields = {"producer": PRODUCER, "produce_id": "srv-fields"}
    with _client(pool, keys=(KEY,)) as client:
        cue = _error(client.post("/v1/label", files={"file": ("s.mp3", _sample("speech.mp3"))},
                                 data={**fields, "layers": "visible,metadata", "cue": "foo"}), 400)
        assert cue.startswith("cue must be start, end and/or middle") and "--" not in cue and "'foo'" in cue
        text = _error(client.post("/v1/label", files={"file": ("p.png", _sample("photo.png"))},
                                  data={**fields, "layers": "visible,metadata", "text": "hello"}), 400)
        assert text.startswith("text must contain 'AI'") and "check_wording" not in text and "'hello'" in text
        # the wording matters only where the visible layer draws it
        ok = client.post("/v1/label", files={"file": ("p.png", _sample("photo.png"))},
                         data={**fields, "text": "hello"})
        assert ok.status_code == 200, ok.text


def test_non_ascii_upload_name_is_kept_in_the_download_name(pool: object) -> None:
    """``照片 1.png`` was offered as ``1.labeled.png``: the name now travels as RFC 6266 ``filename*``
    (UTF-8, percent-encoded), with the ASCII name as the fallback for old clients."""
    fields = {"producer": PRODUCER, "produce_id": "srv-name"}
    with _client(pool, keys=(KEY,)) as client:
        labeled = client.post("/v1/label", files={"file": ("照片 1.png", _sample("photo.png"))}, data=fields)
    assert labeled.status_code == 200, labeled.text
    assert labeled.headers["content-disposition"] == (
        "attachment; filename=\"1.labeled.png\"; filename*=UTF-8''%E7%85%A7%E7%89%87%201.labeled.png")


def test_download_name_keeps_no_separator_or_format_character():
    from labeler.server.routes_label import content_disposition

    header = content_disposition("evil\u202egnp.exe.png", "png")  # U+202E would show "evilgnp.exe" reversed
    assert "%E2%80%AE" not in header and header.isascii()
    assert content_disposition("photo.png", "png") == 'attachment; filename="photo.labeled.png"'


def test_serve_on_a_port_in_use_is_one_line_and_exit_2() -> None:
    """uvicorn printed the banner, then "ERROR: [Errno 98] ..." and exited 3."""
    import socket

    from tests.conftest import run_cli

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = run_cli("serve", "--port", str(port))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"aigc: error: port {port} is already in use")
    assert proc.stderr.count("\n") == 1 and "aigc serve:" not in proc.stderr
