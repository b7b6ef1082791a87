"""Manifest store QA (s38): a resolution service that does not speak HTTP, and a read-only store file.

Both were found by hand: ``verify --manifest-store http://127.0.0.1:PORT/`` against a peer answering
non-HTTP bytes ended with ``aigc: error: internal error (BadStatusLine: ...)`` and no report (the docs
promise a warning), and labeling into an existing store file that cannot be written left ``-wal`` and
``-shm`` files beside it, which later lookups took for a writer at work.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key_file

from labeler.provenance.store import StoreError, open_store

ALG = "aigc-labeler.wm.dct.1"


def _garbage_server(answer: bytes) -> tuple[socket.socket, threading.Thread]:
    """A loopback TCP server that answers every connection with ``answer`` (not HTTP) and closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed by the fixture
                return
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(params=[b"GARBAGE NOT HTTP\r\n\r\n", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n"],
                ids=["bad-status-line", "header-too-long"])
def garbage_url(request) -> Iterator[str]:
    server, thread = _garbage_server(request.param)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    finally:
        # shutdown wakes the accept() of the serving thread (close alone leaves it blocked on Linux).
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(5)


def test_a_service_that_does_not_speak_http_is_a_store_error(garbage_url):
    with pytest.raises(StoreError, match="not an HTTP answer"):
        open_store(garbage_url).find(alg=ALG, key_id="k", payload=b"12345678")


def test_verify_against_such_a_service_reports_a_warning(garbage_url, tmp_path):
    seeded_key_file(tmp_path / "wm.key", "test_qa_store_s38")
    marked = tmp_path / "marked.png"
    run_cli("label", str(SAMPLES / "photo.png"), str(marked), "--producer", PRODUCER, "--produce-id",
            "s38-remote", "--layers", "watermark", "--key-file", str(tmp_path / "wm.key"), check=True)
    proc = run_cli("verify", "--json", str(marked), "--key-file", str(tmp_path / "wm.key"),
                   "--manifest-store", garbage_url)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert report["layers"]["watermark"]["present"] and report["layers"]["c2pa"]["present"] is False
    assert any(w.startswith("manifest store http://127.0.0.1") and "not an HTTP answer" in w
               for w in report["warnings"]), report["warnings"]


def _make_read_only(path: Path) -> bool:
    """Make ``path`` unwritable even for root (chattr +i), else by its mode; False when neither holds."""
    chattr = shutil.which("chattr")
    if os.geteuid() == 0 and chattr:
        subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False)
    else:
        path.chmod(0o444)
    try:
        with open(path, "r+b"):
            return False
    except OSError:
        return True


def _undo_read_only(path: Path) -> None:
    chattr = shutil.which("chattr")
    if os.geteuid() == 0 and chattr:
        subprocess.run([chattr, "-i", str(path)], capture_output=True, check=False)
    path.chmod(0o644)


def test_a_read_only_store_is_refused_and_nothing_is_left_beside_it(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "m.db"
    open_store(path).put(alg=ALG, key_id="k", payload=b"12345678", manifest_id="urn:c2pa:1",
                         mime="image/jpeg", store=b"x" * 100)
    assert sorted(p.name for p in folder.iterdir()) == ["m.db"]
    if not _make_read_only(path):
        pytest.skip("cannot make a file read-only here")
    try:
        with pytest.raises(StoreError, match="cannot be written"):
            open_store(path).put(alg=ALG, key_id="k", payload=b"87654321", manifest_id="urn:c2pa:2",
                                 mime="image/jpeg", store=b"y" * 100)
        # Nothing beside the store: a -wal there made every later lookup read "a writer at work".
        assert sorted(p.name for p in folder.iterdir()) == ["m.db"]
        found = open_store(path, readonly=True).find(alg=ALG, key_id="k", payload=b"12345678")
        assert [m.manifest_id for m in found] == ["urn:c2pa:1"]
    finally:
        _undo_read_only(path)
