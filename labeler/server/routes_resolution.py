"""The C2PA Soft Binding Resolution API over the server's manifest store (``aigc serve --manifest-store``).

``GET``/``POST /matches/byBinding`` find the manifests stored for a soft binding (``alg`` and the
base64 ``value``; our services also take ``keyId`` to narrow to one watermark key), ``GET
/manifests/{manifestId}`` returns a manifest store (``application/c2pa``), ``GET
/services/supportedAlgorithms`` lists our algorithms. Paths, parameters and result shapes follow
the API's OpenAPI description (C2PA Soft Binding Resolution API 1.0). With ``--token-file`` every
endpoint needs the bearer token, as ``/v1/label`` does. Without a store the endpoints answer 404.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from labeler.provenance.store import StoreError, open_store
from labeler.server.auth import require_token
from labeler.server.errors import NO_STORE, ApiError, response_for

#: Our soft-binding algorithms (docs/durable-credentials.md, "Soft-binding algorithms"): every
#: ``c2pa_manifest`` alg a label can store. A video's binding holds the same 8-byte payload as an
#: image's, so it is looked up the same way.
ALGORITHMS = ("aigc-labeler.wm.dct.1", "aigc-labeler.wm.dwt.1", "aigc-labeler.wm.audio.1",
              "aigc-labeler.wm.video.1")
#: Largest value accepted (base64 characters): our payloads are 8 bytes.
MAX_VALUE_CHARS = 4096
#: Most matches returned per query: a larger maxResults is served up to this (the API sets no maximum).
MAX_RESULTS = 100


Handler = Callable[[Request], Awaitable[Response]]


def _json_errors(handler: Handler) -> Handler:
    """Every failure as the API's JSON error with its status (as the /v1 routes answer)."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - response_for maps ApiError/LabelerError; a bug is a 500
            return response_for(exc)

    return wrapped


def _store(request: Request) -> Any:
    config = request.app.state.server.config
    require_token(request, config.token)
    if not config.manifest_store:
        raise ApiError(404, "this server has no manifest store (aigc serve --manifest-store)")
    return config.manifest_store


def _query(alg: Any, value: Any, key_id: Any, max_results: Any) -> tuple[str, bytes, str | None, int]:
    if not isinstance(alg, str) or not alg or not isinstance(value, str) or not value:
        raise ApiError(400, "a query needs alg and value (base64)")
    if len(value) > MAX_VALUE_CHARS:
        raise ApiError(400, f"value is over {MAX_VALUE_CHARS} characters")
    try:
        payload = base64.b64decode(value, validate=True)
        limit = int(max_results) if max_results is not None else 10
    except (binascii.Error, ValueError, TypeError):
        raise ApiError(400, "value must be base64 and maxResults an integer") from None
    if limit < 1:
        raise ApiError(400, "maxResults must be at least 1")
    # OpenAPI 1.0 gives maxResults a minimum and no maximum: a conforming client's 500 is a valid query.
    return alg, payload, key_id if isinstance(key_id, str) and key_id else None, min(limit, MAX_RESULTS)


async def _matches(spec: str, alg: str, payload: bytes, key_id: str | None, limit: int) -> JSONResponse:
    if alg not in ALGORITHMS:
        return JSONResponse({"matches": []}, headers=NO_STORE)
    try:
        found = await run_in_threadpool(lambda: open_store(spec, readonly=True).find(
            alg=alg, key_id=key_id, payload=payload))
    except StoreError as exc:
        raise ApiError(500, str(exc)) from None
    # An exact watermark payload match: the strongest match there is.
    matches = [{"manifestId": m.manifest_id, "similarityScore": 100} for m in found[:limit]]
    return JSONResponse({"matches": matches}, headers=NO_STORE)


@_json_errors
async def matches_get(request: Request) -> JSONResponse:
    """``GET /matches/byBinding?alg=...&value=...[&maxResults=N][&keyId=...]``."""
    spec = _store(request)
    q = request.query_params
    return await _matches(spec, *_query(q.get("alg"), q.get("value"), q.get("keyId"), q.get("maxResults")))


@_json_errors
async def matches_post(request: Request) -> JSONResponse:
    """``POST /matches/byBinding`` with ``{"alg": ..., "value": ...}`` (for values too long for a URL)."""
    spec = _store(request)
    body = await request.body()
    if len(body) > MAX_VALUE_CHARS + 1024:
        raise ApiError(413, "the query document is too large")
    try:
        doc = json.loads(body)
        alg, value, key_id = doc.get("alg"), doc.get("value"), doc.get("keyId")
    except (ValueError, AttributeError):
        raise ApiError(400, "the body must be a JSON object with alg and value") from None
    limit = request.query_params.get("maxResults")
    return await _matches(spec, *_query(alg, value, key_id, limit))


@_json_errors
async def manifest(request: Request) -> Response:
    """``GET /manifests/{manifestId}``: the whole manifest store, ``application/c2pa``."""
    spec = _store(request)
    manifest_id = request.path_params["manifest_id"]
    if not manifest_id or len(manifest_id) > 512:
        raise ApiError(400, "invalid manifest identifier")
    try:
        stored = await run_in_threadpool(lambda: open_store(spec, readonly=True).get(manifest_id))
    except StoreError as exc:
        raise ApiError(500, str(exc)) from None
    if stored is None:
        raise ApiError(404, f"no manifest {manifest_id[:200]!r} in this store")
    return Response(stored.store, media_type="application/c2pa", headers=NO_STORE)


@_json_errors
async def supported(request: Request) -> JSONResponse:
    """``GET /services/supportedAlgorithms``."""
    _store(request)
    return JSONResponse({"watermarks": [{"alg": alg} for alg in ALGORITHMS], "fingerprints": []},
                        headers=NO_STORE)


routes = [
    Route("/matches/byBinding", matches_get, methods=["GET"]),
    Route("/matches/byBinding", matches_post, methods=["POST"]),
    Route("/manifests/{manifest_id:path}", manifest, methods=["GET"]),
    Route("/services/supportedAlgorithms", supported, methods=["GET"]),
]
