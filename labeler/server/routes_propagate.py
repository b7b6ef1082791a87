"""``POST /v1/propagate``: a distribution platform's upload step (Labeling Measures Art. 6) over HTTP.

What ``aigc propagate`` does for one file (:func:`labeler.propagate.propagate_file`, rules in
docs/verdicts.md, "Propagation"): the upload and the platform's fields in; the resulting file out, with
what was done and what the platform must show its users in :data:`RESULT_HEADER`, so one call is enough.
Token, limits, clean-up and errors are those of ``/v1/label``; the watermark keys and trust anchors that
decide whether an unlabeled upload carries traces are the server's.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from labeler.errors import LabelerError
from labeler.formats import format_info
from labeler.record import LABEL_MEANINGS
from labeler.server.auth import require_token
from labeler.server.errors import NO_STORE, ApiError, error_response, response_for
from labeler.server.jobs import propagate_job, run_job
from labeler.server.routes_label import SECRET_FIELDS, content_disposition, form_flag, result_header
from labeler.server.uploads import admitted, read_form

#: Header with the JSON result (ASCII only), at most ``routes_label.RESULT_HEADER_MAX`` bytes.
RESULT_HEADER = "X-AIGC-Propagate-Result"
#: The form fields (besides ``file``); the same meanings as ``aigc propagate``'s options.
PROPAGATE_FIELDS = {
    "propagator": "ContentPropagator (required): the platform's 27-char TC260 code, or its name",
    "propagate_id": "PropagateID (required): the platform's ID for this content",
    "reserved2": "ReservedCode2: the platform's protection data (default empty)",
    "declared_ai": "the uploader declares the content AI-generated (true/false, default false): "
                   "an unlabeled file then gets Label 2",
}
#: What a result that had to be cut to its minimum still says: enough to act on (the file carries the rest).
_ESSENTIALS = ("action", "notice", "verdict", "carrier", "format", "seconds")


async def propagate_endpoint(request: Request) -> Response:
    """``POST /v1/propagate``: 200 with the resulting file; 400/401/403/413/415/422/503/504 as JSON."""
    state = request.app.state.server
    config = state.config
    try:
        require_token(request, config.token)
        # It writes labels as /v1/label does; a verification-only server writes none.
        if not config.labeling_enabled:
            raise ApiError(403, "labeling is disabled on this server: it has no watermark key or C2PA signer")
        async with admitted(state, request) as work:
            await read_form(request, work, max_files=1, max_bytes=config.max_upload_bytes,
                            allowed_fields=frozenset(PROPAGATE_FIELDS),
                            refused_fields=frozenset(SECRET_FIELDS),
                            deadline_s=config.timeout_s)
            fields = propagate_fields(work.fields)
            started = time.monotonic()
            done = await run_job(state, work.pending, config.timeout_s, propagate_job,
                                 str(work.uploads[0].path), fields, config.keys, config.trust_anchors,
                                 config.max_pixels)
            # Read before the folder goes (admitted's exit): the response never depends on a file on disk.
            body = await asyncio.to_thread(Path(done["output"]).read_bytes)
    except ClientDisconnect:
        return error_response(400, "the client went away before the upload ended")
    except LabelerError as exc:
        return response_for(exc)
    summary = done["result"]
    summary["notice"] = platform_notice(summary)
    summary["seconds"] = round(time.monotonic() - started, 3)
    fmt = done["format"]
    headers = {**NO_STORE, RESULT_HEADER: propagate_header(summary),
               "Content-Disposition": content_disposition(work.uploads[0].name, fmt, "propagated")}
    return Response(body, media_type=format_info(fmt).mime, headers=headers)


def propagate_fields(fields: dict[str, str]) -> dict[str, Any]:
    """``propagate_file``'s keyword arguments from the form; 400 on anything missing or wrong.

    The platform's values are checked here, before the job, so that a bad value is a 400 naming it and
    every refusal the job raises is about the file (422).
    """
    from labeler.propagate import check_platform_values  # the check `aigc propagate` makes first

    sent = [name for name in SECRET_FIELDS if name in fields]
    if sent:
        raise ApiError(400, f"{', '.join(sent)}: the watermark key, the signer and the token are the "
                            "server's own; a client never sends them")
    missing = [name for name in ("propagator", "propagate_id") if not fields.get(name, "").strip()]
    if missing:
        raise ApiError(400, f"missing field(s): {', '.join(missing)}")
    values = {"propagator": fields["propagator"], "propagate_id": fields["propagate_id"],
              "reserved_code2": fields.get("reserved2", "")}
    try:
        check_platform_values(**values)
    except LabelerError as exc:
        raise ApiError(400, str(exc)) from None
    return {**values, "declared_ai": form_flag(fields, "declared_ai")}


def platform_notice(result: dict[str, Any]) -> str | None:
    """What Art. 6 has the platform show its users for this file, from the label now in it.

    ``"AI-generated"``, ``"possibly AI-generated"`` or ``"suspected AI-generated"`` (the written
    label's ``Label``: the producer's kept one, or the platform's 2 or 3); None for an unchanged copy.
    """
    label = result.get("label") or {}
    return LABEL_MEANINGS.get(label.get("Label") or "")


def propagate_header(summary: dict[str, Any]) -> str:
    """The :data:`RESULT_HEADER` value: as ``/v1/label``'s (compact ASCII JSON, long strings cut to fit
    ``RESULT_HEADER_MAX``), but the last resort keeps :data:`_ESSENTIALS` rather than label layers."""
    header = result_header(summary)
    if json.loads(header).get("truncated") != ["*"]:
        return header
    least = {name: summary.get(name) for name in _ESSENTIALS}
    return json.dumps({**least, "truncated": ["*"]}, ensure_ascii=True, separators=(",", ":"))


routes = [Route("/v1/propagate", propagate_endpoint, methods=["POST"])]
