"""Fixtures and helpers shared by the HTTP API tests (``test_server_*.py``): one process pool per module
whose worker's own temporary folder must be empty at the end, and a private :mod:`tempfile` folder per test
that must be empty after it (uploads, request folders, spooled parts). A test module imports the fixtures
fixtures as module attributes (``pool, private_tmp = server_support.pool, server_support.private_tmp``),
which registers them there. Importing this module skips the importing test module where the serve extra
is not installed.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
pytest.importorskip("multipart", reason="the serve extra (python-multipart) is not installed")

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx is what the test extra has
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from labeler.server import ServerConfig, create_app  # noqa: E402
from labeler.server.jobs import make_pool  # noqa: E402

__all__ = ["TestClient", "left_in", "make_client", "pool", "private_tmp"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One worker process for the module's apps, started with a TMPDIR of its own."""
    worker_tmp = tmp_path_factory.mktemp("worker-tmp")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(worker_tmp)  # the spawned worker's tempfile folder
    executor = make_pool(1)
    executor.submit(int).result(timeout=120)  # started with this TMPDIR
    if old is None:
        os.environ.pop("TMPDIR")
    else:
        os.environ["TMPDIR"] = old
    yield executor
    executor.shutdown(wait=True)
    assert list(worker_tmp.iterdir()) == [], "the worker left temporary files"


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The server's temporary folder for one test; empty again when the test ends."""
    folder = tmp_path / "server-tmp"
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert left_in(folder) == [], "the server left files behind"


def make_client(pool: object, **config: object) -> TestClient:
    """A test client of an app with ``ServerConfig(**config)`` served by ``pool``."""
    return TestClient(create_app(ServerConfig(**config), executor=pool))  # type: ignore[arg-type]


def left_in(folder: Path) -> list[str]:
    """Every path under ``folder``, relative and sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
