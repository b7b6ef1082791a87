"""The API's OpenAPI 3.1 description, written by hand (Starlette has no schema generator we want).

Served at ``/v1/openapi.json`` and rendered by the offline page ``/docs``. ``tests/test_server_api.py``
checks that every route of the app is described here and nothing else.
"""

from __future__ import annotations

from typing import Any

from labeler import __version__
from labeler.server.config import MAX_FILES_PER_REQUEST
from labeler.server.routes_label import LABEL_FIELDS, RESULT_HEADER
from labeler.server.routes_propagate import PROPAGATE_FIELDS
from labeler.server.routes_propagate import RESULT_HEADER as PROPAGATE_HEADER
from labeler.server.routes_verify import BOXES_HEADER

_ERROR = {"$ref": "#/components/schemas/Error"}
_REPORT = {"$ref": "#/components/schemas/Report"}


def _errors(*codes: int) -> dict[str, Any]:
    words = {400: "bad request: not multipart, no or empty file, wrong field, bad option",
             401: "no or wrong bearer token (when the server has --token-file)",
             403: "labeling disabled: the server has no watermark key or C2PA signer",
             408: "the upload did not arrive within the server's --timeout (the connection is closed)",
             413: "upload over the server's --max-upload-mb",
             415: "the content is no format this toolkit reads (sniffed, never the name or Content-Type)",
             422: "recognised but unreadable or unfit (truncated, damaged, too large to decode, layer n/a)",
             503: "the server is handling its --max-concurrent requests already (see Retry-After)",
             504: "the job took longer than the server's timeout"}
    answers: dict[str, Any] = {
        str(c): {"description": words[c], "content": {"application/json": {"schema": _ERROR}}} for c in codes}
    if "503" in answers:
        answers["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                     "description": "seconds to wait before trying again"}}
    if "401" in answers:
        answers["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return answers


def _upload(many: bool, fields: dict[str, str] | None = None,
            required: tuple[str, ...] = ("producer", "produce_id")) -> dict[str, Any]:
    file_schema = {"type": "string", "format": "binary"}
    many_files = {"type": "array", "items": file_schema, "maxItems": MAX_FILES_PER_REQUEST}
    props: dict[str, Any] = {"file": many_files if many else file_schema}
    for name, text in (fields or {}).items():
        props[name] = {"type": "string", "description": text}
    names = ["file"] + (list(required) if fields else [])
    return {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": props, "required": names}}}}


def _file_answer(what: str, header: str, summary: str) -> dict[str, Any]:
    """The 200 of an endpoint that answers with a file: its format's Content-Type, the name, a summary."""
    return {"description": f"{what}, same format; Content-Type from the content",
            "headers": {header: {"schema": {"type": "string"}, "description": summary},
                        "Content-Disposition": {
                            "schema": {"type": "string"},
                            "description": "attachment; filename=\"NAME.labeled.EXT\" (and filename*=UTF-8'' "
                                           "for other characters)"}},
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (a fresh dict each call)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "aigc-labeler", "version": __version__,
                 "description": "Label AI-generated media (GB 45438-2025) and verify labels. Reports are "
                                "those of `aigc verify --json` (docs/report.md)."},
        "paths": {
            "/v1/verify": {"post": {
                "summary": "Verify one or more files",
                "parameters": [{"name": "boxes", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["0", "1", "false", "true"]},
                                "description": f"1 or true: add the {BOXES_HEADER} header (visible label "
                                               "boxes)"}],
                "requestBody": _upload(True),
                "responses": {"200": {"description": "one report (one file) or a list (several files)",
                                      "headers": {BOXES_HEADER: {
                                          "schema": {"type": "string"},
                                          "description": "with ?boxes=1: JSON list, per file null or "
                                                         "{x, y, w, h, width, height}"}},
                                      "content": {"application/json": {"schema": {"oneOf": [
                                          _REPORT, {"type": "array", "items": _REPORT}]}}}},
                              **_errors(400, 408, 413, 415, 422, 503, 504)}}},
            "/v1/label": {"post": {
                "summary": "Label a file with the server's key and signer",
                "security": [{"bearer": []}],
                "requestBody": _upload(False, LABEL_FIELDS),
                "responses": {"200": _file_answer("the labeled file", RESULT_HEADER, "JSON summary (ASCII)"),
                              **_errors(400, 401, 403, 408, 413, 415, 422, 503, 504)}}},
            "/v1/propagate": {"post": {
                "summary": "A distribution platform's upload step (Labeling Measures Art. 6), as `aigc "
                           "propagate`",
                "description": "A labeled file keeps the producer's fields and gets the platform's "
                               "propagator fields; an unlabeled one gets Label 2 (declared_ai) or 3 "
                               "(traces found with the server's keys and trust anchors); else it comes "
                               "back unchanged. docs/verdicts.md, Propagation.",
                "security": [{"bearer": []}],
                "requestBody": _upload(False, PROPAGATE_FIELDS, ("propagator", "propagate_id")),
                "responses": {"200": _file_answer(
                    "the file with the platform's label (or unchanged)", PROPAGATE_HEADER,
                    "JSON result (ASCII): action (propagated, labeled, copied), notice (what the platform "
                    "shows: AI-generated, possibly AI-generated, suspected AI-generated, or null), verdict "
                    "(the upload's), reasons, before, label, carrier, format, warnings, seconds"),
                              **_errors(400, 401, 403, 408, 413, 415, 422, 503, 504)}}},
            "/v1/health": {"get": {"summary": "Alive, and what this server offers",
                                   "responses": {"200": {"description": "health document",
                                                         "content": {"application/json": {}}}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "detail"],
                          "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}},
                "Report": {"type": "object", "description": "docs/report.schema.json (aigc-verify/1)"},
            },
        },
    }
