"""The app factory: one Starlette app serving the page and the ``/v1`` API.

Starlette rather than FastAPI: the API is four endpoints whose bodies are files and whose answers
are the CLI's report, so FastAPI's model layer (pydantic) would add a large dependency and nothing
to check; and its built-in documentation page loads Swagger UI from a CDN, which breaks the
offline rule. The OpenAPI document is written by hand (:mod:`labeler.server.openapi`) and rendered
by our own page.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labeler.server import (
    routes_health,
    routes_label,
    routes_page,
    routes_propagate,
    routes_resolution,
    routes_verify,
)
from labeler.server.config import ServerConfig
from labeler.server.errors import error_response, response_for
from labeler.server.jobs import make_pool
from labeler.server.limits import FORM_OVERHEAD, BodyLimit, Gate

#: Prefix of the server's private temporary folder (each request's folder is made inside it).
SERVER_PREFIX = "aigc-serve-"
#: Sent with every response. The page loads nothing from elsewhere and runs no inline script.
SECURITY_HEADERS = {
    b"content-security-policy": b"default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                                b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                b"form-action 'self'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
}


class ServerState:
    """What the endpoints share: the configuration, the gate, the private folder and the pool."""

    def __init__(self, config: ServerConfig, executor: Executor | None) -> None:
        self.config = config
        self.gate = Gate(config.max_concurrent)
        self.root: str | None = None
        self.pool: Any = executor
        self.owns_pool = executor is None

    def renew_pool(self) -> None:
        """Replace a broken pool (a worker died) with a fresh one; only a pool the app made."""
        if not self.owns_pool:
            return
        old, self.pool = self.pool, make_pool(self.config.workers)
        old.shutdown(wait=False, cancel_futures=True)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + list(SECURITY_HEADERS.items())
            await send(message)

        await self.app(scope, receive, sending)


def create_app(config: ServerConfig | None = None, *, executor: Executor | None = None) -> Starlette:
    """Build the app.

    Parameters
    ----------
    config : ServerConfig, optional
        Keys, signer, limits (defaults: verify only, 200 MB, one worker).
    executor : concurrent.futures.Executor, optional
        Runs the jobs; by default the app starts a process pool of ``config.workers`` at startup and
        stops it at shutdown. A given executor (tests: one pool for many apps) is left running.

    Returns
    -------
    starlette.applications.Starlette
    """
    config = config or ServerConfig()
    state = ServerState(config, executor)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Private (mode 0700) and ours alone; every request's folder goes inside and leaves with it.
        state.root = tempfile.mkdtemp(prefix=SERVER_PREFIX, dir=config.temp_dir)
        if state.owns_pool:
            state.pool = make_pool(config.workers)
        try:
            yield
        finally:
            if state.owns_pool and state.pool is not None:
                state.pool.shutdown(wait=True, cancel_futures=True)
            shutil.rmtree(state.root, ignore_errors=True)

    app = Starlette(
        routes=[*routes_page.routes, *routes_health.routes, *routes_verify.routes, *routes_label.routes,
                *routes_propagate.routes, *routes_resolution.routes],
        middleware=[Middleware(SecurityHeaders),
                    Middleware(BodyLimit, limit=config.max_upload_bytes + FORM_OVERHEAD)],
        exception_handlers={HTTPException: _http_error, Exception: _any_error},
        lifespan=lifespan,
    )
    app.state.server = state
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    # Routing's 404 and 405 (and any HTTPException): the same JSON shape as every other error.
    assert isinstance(exc, HTTPException)
    detail = str(exc.detail) if exc.status_code != 404 else f"no such page: {request.url.path[:200]}"
    return error_response(exc.status_code, detail, dict(exc.headers or {}))


async def _any_error(request: Request, exc: Exception) -> Response:
    # Last resort (a bug): a JSON 500 for the client; the traceback goes only to the server's log.
    return response_for(exc)
