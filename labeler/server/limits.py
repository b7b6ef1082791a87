"""Bounds every request: the body size (413) and how many label/verify requests run at once (503).

Both act before the body is read, so a client over a limit costs the server neither disk nor a worker.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labeler.server.errors import ERROR_WORDS, UploadTooLarge

#: Room for the multipart framing and the form fields around the file(s), on top of the file limit.
FORM_OVERHEAD = 1 << 20


class BodyLimit:
    """ASGI middleware: refuse a request body larger than ``limit`` bytes.

    A ``Content-Length`` over the limit is answered 413 at once, unread. A body without one (chunked)
    or that lies about it is counted as it streams; the receive call that passes the limit raises
    :class:`UploadTooLarge`, which stops the multipart parser (it closes its spooled files) and
    reaches the endpoint, which answers 413 and removes the request's folder.

    Parameters
    ----------
    app : ASGI app
    limit : int
        Largest body in bytes.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            # The limit applied here is the whole body's (the file limit plus FORM_OVERHEAD): state that
            # one, so a client is not told a smaller number than the one that refused it.
            await _send_413(send, f"the request body is {declared} bytes; this server takes a request body "
                                  f"of at most {self.limit} bytes")
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Callable[[], Awaitable[Message]]:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise UploadTooLarge(f"the request body passed {self.limit} bytes, this server's "
                                         "limit for a request body")
            return message

        return counted


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, detail: str) -> None:
    # Compact, as every other error body (errors.error_response) is.
    body = json.dumps({"error": ERROR_WORDS[413], "detail": detail}, separators=(",", ":")).encode()
    # Connection: close - the client may still be sending the body we will not read.
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """A non-blocking counter of admitted requests: full means 503 now, not a queue.

    The event loop runs one coroutine at a time, so a plain integer is enough. A request that timed
    out keeps its place until its job really ends (a worker process cannot be interrupted), so the
    pool is never handed more work than the limit.

    Parameters
    ----------
    limit : int
        Requests admitted at once; 0 admits none.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        """Take a place if one is free."""
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        """Give a place back."""
        self.active = max(0, self.active - 1)
