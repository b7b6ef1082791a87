"""``POST /v1/verify``: one or more files in, the same JSON as ``aigc verify --json`` out."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from labeler.errors import LabelerError
from labeler.server.config import MAX_FILES_PER_REQUEST
from labeler.server.errors import NO_STORE, ApiError, error_response, one_line, response_for
from labeler.server.jobs import run_job, verify_job
from labeler.server.uploads import admitted, read_form

#: Header beside the report: per file, the visible label's box on the image (``?boxes=1``), for the page.
BOXES_HEADER = "X-AIGC-Visible-Boxes"


async def verify_endpoint(request: Request) -> Response:
    """``POST /v1/verify`` (multipart ``file``, repeatable; ``?boxes=1`` adds :data:`BOXES_HEADER`).

    One file: its report (200), or 415 when the content is no format we read, 422 when it could not be
    read (truncated, damaged). Several files: a list of reports in upload order (200), unreadable ones
    included with ``verdict: null`` and their ``errors``, as the CLI prints them.
    """
    state = request.app.state.server
    want_box = request.query_params.get("boxes", "") in ("1", "true")
    try:
        async with admitted(state, request) as work:
            await read_form(request, work, max_files=MAX_FILES_PER_REQUEST,
                            max_bytes=state.config.max_upload_bytes, deadline_s=state.config.timeout_s)
            outcomes = await _verify_all(state, work, want_box)
    except ClientDisconnect:
        return error_response(400, "the client went away before the upload ended")  # nobody reads it
    except LabelerError as exc:
        return response_for(exc)
    if len(outcomes) == 1:
        single = _single_error(outcomes[0])
        if single is not None:
            return single
    reports = [_as_json(o["report"]) for o in outcomes]
    body = reports[0] if len(outcomes) == 1 else "[" + ",".join(reports) + "]"
    headers = dict(NO_STORE)
    if want_box:
        headers[BOXES_HEADER] = json.dumps([o["box"] for o in outcomes], separators=(",", ":"))
    return Response(body, media_type="application/json", headers=headers)


async def _verify_all(state: Any, work: Any, want_box: bool) -> list[dict[str, Any]]:
    config = state.config
    deadline = time.monotonic() + config.timeout_s
    outcomes = []
    # One after the other: a request holds one worker; parallelism comes from parallel requests.
    for upload in work.uploads:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ApiError(504, f"the request took longer than {config.timeout_s:g} s")
        outcomes.append(await run_job(state, work.pending, left, verify_job, str(upload.path), upload.name,
                                      config.keys, config.trust_anchors, want_box, config.max_pixels,
                                      config.manifest_store))
    return outcomes


def _single_error(outcome: dict[str, Any]) -> Response | None:
    report = outcome["report"]
    if not report["errors"]:
        return None
    status = 415 if outcome["unsupported"] else 422
    return error_response(status, f"{report['file']}: {one_line(report['errors'][0])}")


def _as_json(report: dict[str, Any]) -> str:
    # Byte for byte what `aigc verify --json` prints for the file (Report.to_json's settings).
    return json.dumps(report, ensure_ascii=False, separators=(",", ":"))


routes = [Route("/v1/verify", verify_endpoint, methods=["POST"])]
