"""`aigc serve`'s answers to damaged multipart uploads (QA, December 2026), and no upload kept after any.

A text field over 64 KB was answered "Part exceeded maximum size of 64KB." (which part?); a body that
stopped before its closing boundary (a client or proxy that cut the upload short) was answered "no file"
(the cut-off part is dropped by the parser), or labeled without its cut-off fields. A stalled upload is
answered 408 after ``--timeout`` (tested in test_qa_server_fixes.py); here its request folder must go too.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import server_support
from server_support import left_in, make_client

from tests.conftest import PRODUCER, aigc_serve, ffmpeg_exe

pool, private_tmp = server_support.pool, server_support.private_tmp
KEY = bytes(range(32))
BOUNDARY = "s39boundary"
HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("media") / "pattern.png"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x64",
                    "-frames:v", "1", str(path)], check=True, capture_output=True)
    return path.read_bytes()


def _body(parts: list[tuple[str, str | None, bytes]], *, closed: bool = True) -> bytes:
    out = b""
    for name, filename, data in parts:
        given = f'; filename="{filename}"' if filename else ""
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"{given}\r\n\r\n").encode()
        out += data + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if closed else b"")


def _no_request_left(folder: Path) -> None:
    # Between requests the app's own private folder may exist; nothing may be inside it.
    assert [p for p in left_in(folder) if p.count("/") > 0 or not p.startswith("aigc-serve-")] == []


@pytest.mark.parametrize("route", ["/v1/label", "/v1/verify"])
def test_a_text_field_over_64_kb_is_named(pool, private_tmp, png, route):
    with make_client(pool, keys=(KEY,)) as client:
        body = _body([("file", "a.png", png), ("produce_id", None, b"x" * 70_000)])
        answer = client.post(route, content=body, headers=HEADERS)
        assert answer.status_code == 400
        detail = answer.json()["detail"]
        assert "'produce_id'" in detail and "64 KB" in detail and "\n" not in detail
        _no_request_left(private_tmp)
        # the file sent as text, not as a file upload: the same limit, and the field named
        answer = client.post(route, content=_body([("file", None, b"\0" * 70_000)]), headers=HEADERS)
        assert answer.status_code == 400 and "'file'" in answer.json()["detail"]
        _no_request_left(private_tmp)


@pytest.mark.parametrize("cut", [0, 5, 300],
                         ids=["no-closing-boundary", "in-the-last-crlf", "inside-the-file"])
@pytest.mark.parametrize("route", ["/v1/label", "/v1/verify"])
def test_a_body_cut_before_its_closing_boundary_is_called_truncated(pool, private_tmp, png, route, cut):
    # A big enough file that its part is spooled to disk (over 1 MiB) when cut inside it.
    data = png + b"\0" * (2 << 20)
    fields = [("producer", None, PRODUCER.encode()), ("produce_id", None, b"clip-1")]
    fields = fields if "label" in route else []
    body = _body([*fields, ("file", "a.png", data)], closed=False)
    with make_client(pool, keys=(KEY,)) as client:
        answer = client.post(route, content=body[:len(body) - cut], headers=HEADERS)
        assert answer.status_code == 400
        detail = answer.json()["detail"]
        assert "truncated" in detail and "no file" not in detail
        _no_request_left(private_tmp)
        # the same body with its closing boundary is taken (not refused for some other reason)
        whole = client.post(route, content=_body([*fields, ("file", "a.png", png)]), headers=HEADERS)
        assert whole.status_code == 200, whole.text
        _no_request_left(private_tmp)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`aigc serve --timeout 2`, and its TMPDIR (aigc_serve checks it is empty once it stops)."""
    before = set(Path(tmp_path_factory.getbasetemp()).iterdir())
    server = aigc_serve(tmp_path_factory, "--timeout", "2")
    url = next(server)
    tmp = next(p for p in Path(tmp_path_factory.getbasetemp()).iterdir()
               if p not in before and p.name.startswith("serve-tmp"))
    yield url, tmp
    with pytest.raises(StopIteration):
        next(server)


def test_a_stalled_upload_keeps_nothing_once_answered_408(slow_server):
    url, tmp = slow_server
    host, port = url.rsplit("/", 1)[-1].split(":")
    # 2 MiB of the file: spooled to disk, then nothing more.
    part = f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
    part = part.encode()
    body = part + b"\x89" * (2 << 20)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: {HEADERS['Content-Type']}\r\n"
                     f"Content-Length: {len(body) + 100_000}\r\n\r\n".encode() + body)
        answer = b""
        while not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    kept = [p for p in tmp.rglob("*") if p.is_file() or p.name.startswith("aigc-request-")]
    assert kept == [], kept


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
