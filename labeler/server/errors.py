"""The API's errors: ``{"error": ..., "detail": ...}`` with the right status, never a stack trace.

A :class:`~labeler.errors.LabelerError` from the toolkit is the client's problem (its file or its
fields), so its one-line message is the ``detail``; anything else is a bug, reported as a 500 whose
detail names the exception type only.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from labeler.errors import (
    CorruptFile,
    InvalidArgument,
    InvalidLabel,
    LabelerError,
    UnsafeInput,
    UnsupportedFormat,
    UnsupportedLayer,
)

#: The ``error`` word for each status we send.
ERROR_WORDS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    408: "request timeout",
    413: "content too large",
    415: "unsupported media type",
    422: "unprocessable content",
    500: "internal error",
    503: "server busy",
    504: "timeout",
}

#: Headers every API response carries: the answer is about one upload, never to be cached.
NO_STORE = {"Cache-Control": "no-store"}


class ApiError(LabelerError):
    """An error with its HTTP status; ``str()`` is the one-line detail."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.headers = headers or {}


class UploadTooLarge(UnsafeInput):
    """The request body passed the server's upload limit (raised while it streams in)."""


def status_for(exc: BaseException) -> int:
    """HTTP status of a toolkit error: what the client can change decides between 4xx codes."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, UnsupportedFormat):
        return 415
    if isinstance(exc, (CorruptFile, UnsupportedLayer, UnsafeInput)):
        return 422
    if isinstance(exc, (InvalidLabel, InvalidArgument, LabelerError)):
        return 400
    return 500


def one_line(text: str, limit: int = 500) -> str:
    """First line of ``text``, at most ``limit`` characters: a detail never spans lines."""
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body for ``status``."""
    body: dict[str, Any] = {"error": ERROR_WORDS.get(status, "error"), "detail": one_line(detail)}
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def response_for(exc: BaseException) -> JSONResponse:
    """The JSON error for an exception raised while handling a request."""
    status = status_for(exc)
    if status == 500:
        # A bug: the type says where to look in the server log; the message could leak paths.
        return error_response(500, f"internal error ({type(exc).__name__}); see the server log")
    return error_response(status, str(exc), getattr(exc, "headers", None))
