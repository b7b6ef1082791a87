"""``POST /v1/label``: a file and the label's fields in, the labeled file out.

The watermark key and the C2PA signer are the server's (``aigc serve --key-file``, ``--sign-cert``);
a request that tries to send one is refused. The options are those of ``aigc label``, as form fields.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from labeler.errors import InvalidArgument, LabelerError
from labeler.formats import EXTENSIONS, format_info
from labeler.options import LabelOptions
from labeler.record import AIGCLabel
from labeler.server.auth import require_token
from labeler.server.errors import NO_STORE, ApiError, error_response, response_for
from labeler.server.jobs import label_job, run_job
from labeler.server.uploads import Work, admitted, read_form

#: Header with the JSON summary of what was written (ASCII only: non-ASCII is \\u-escaped).
RESULT_HEADER = "X-AIGC-Label-Result"
#: Longest ``RESULT_HEADER`` value in bytes. Form fields may be 64 KB each and the metadata value repeats
#: them all; clients and proxies refuse long header lines (Node 16 KiB, nginx's proxy buffer 4-8 KiB),
#: after the file was labeled. docs/server.md documents this bound.
RESULT_HEADER_MAX = 8192
#: A string in an over-long summary is cut to this many characters, then ``CUT_MARK``.
CUT_CHARS = 256
CUT_MARK = "..."
#: The form fields (besides ``file``) and what they mean; the same names and values as ``aigc label``.
LABEL_FIELDS = {
    "producer": "ContentProducer (required): 27-char TC260 code, or a name",
    "produce_id": "ProduceID (required): the provider's unique ID for this content",
    "label": "1 AI-generated (default), 2 possibly, 3 suspected",
    "propagator": "ContentPropagator (default: the producer)",
    "propagate_id": "PropagateID (default: the produce ID)",
    "reserved1": "ReservedCode1", "reserved2": "ReservedCode2",
    "layers": "comma-separated: watermark, visible, metadata, c2pa (default metadata)",
    "text": "visible label wording (default AI生成)", "position": "where the visible label goes",
    "quality": "JPEG/WebP quality 1-100 when a pixel layer re-encodes (default 95)",
    "watermark_method": "dct (default) or dwt",
    "watermark_strength": "0.25-16, a fixed image/video strength (default: the per-image budget)",
    "duration": "video: seconds the visible label shows (>= 2, default 3)",
    "whole": "video: show the visible label for the whole duration (true/false)",
    "video_at": "video: start[,middle][,end]", "cue": "audio: start, end and/or middle",
    "audio_label": "audio: rhythm (default), voice or both", "voice_language": "zh (default) or en",
    "c2pa_thumbnail": "embed a claim thumbnail in the C2PA manifest (true/false)",
}
#: Form fields that would carry a secret: refused, the server uses its own (never a client's).
SECRET_FIELDS = ("key", "key_file", "sign_cert", "sign_key", "signer", "tsa", "token")


async def label_endpoint(request: Request) -> Response:
    """``POST /v1/label``: 200 with the labeled bytes; 400/401/403/413/415/422/503/504 with a JSON error."""
    state = request.app.state.server
    config = state.config
    try:
        require_token(request, config.token)
        if not config.labeling_enabled:
            raise ApiError(403, "labeling is disabled on this server: it has no watermark key or C2PA signer")
        async with admitted(state, request) as work:
            await read_form(request, work, max_files=1, max_bytes=config.max_upload_bytes,
                            allowed_fields=frozenset(LABEL_FIELDS), refused_fields=frozenset(SECRET_FIELDS),
                            deadline_s=config.timeout_s)
            record, options = _label_request(work.fields, config)
            body, summary = await _label(state, work, record, options)
    except ClientDisconnect:
        return error_response(400, "the client went away before the upload ended")
    except LabelerError as exc:
        return response_for(exc)
    except ValueError as exc:  # a label option out of range (e.g. --video-at's parser)
        return error_response(400, str(exc))
    fmt = summary["format"]
    headers = {**NO_STORE, RESULT_HEADER: result_header(summary),
               "Content-Disposition": content_disposition(work.uploads[0].name, fmt)}
    return Response(body, media_type=format_info(fmt).mime, headers=headers)


async def _label(state: Any, work: Work, record: AIGCLabel, options: dict[str, Any]) -> tuple[bytes, dict]:
    started = time.monotonic()
    done = await run_job(state, work.pending, state.config.timeout_s, label_job, str(work.uploads[0].path),
                         record, options, state.config.max_pixels)
    summary = done["result"]
    summary["seconds"] = round(time.monotonic() - started, 3)
    # Read before the folder goes (admitted's exit): the response never depends on a file on disk.
    return await asyncio.to_thread(Path(done["output"]).read_bytes), summary


def _compact(summary: Any) -> str:
    return json.dumps(summary, ensure_ascii=True, separators=(",", ":"))


def result_header(summary: dict[str, Any]) -> str:
    """The ``X-AIGC-Label-Result`` value: the summary as compact ASCII JSON, at most ``RESULT_HEADER_MAX``.

    A summary that fits is sent whole. Otherwise every string over ``CUT_CHARS`` characters is cut to
    that many followed by ``CUT_MARK``, and ``"truncated"`` lists the cut values' paths (such as
    ``layers.metadata.value``); if even that is too long, only ``format``, the layers' names,
    ``seconds`` and ``"truncated": ["*"]`` remain.

    Parameters
    ----------
    summary : dict
        ``LabelResult.to_dict()`` plus ``seconds``.

    Returns
    -------
    str
    """
    whole = _compact(summary)
    if len(whole) <= RESULT_HEADER_MAX:
        return whole
    cut: list[str] = []
    shortened = _cut_strings(summary, "", cut)
    shortened["truncated"] = cut
    header = _compact(shortened)
    if len(header) <= RESULT_HEADER_MAX:
        return header
    layers = summary.get("layers")
    return _compact({"format": summary.get("format"), "layers": {name: {} for name in layers or {}},
                     "seconds": summary.get("seconds"), "truncated": ["*"]})


def _cut_strings(value: Any, path: str, cut: list[str]) -> Any:
    """``value`` with each string over ``CUT_CHARS`` cut (paths appended to ``cut``); a copy."""
    if isinstance(value, dict):
        return {k: _cut_strings(v, f"{path}.{k}" if path else str(k), cut) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cut_strings(v, f"{path}[{i}]", cut) for i, v in enumerate(value)]
    if isinstance(value, str) and len(value) > CUT_CHARS:
        cut.append(path)
        return value[:CUT_CHARS] + CUT_MARK
    return value


def _label_request(fields: dict[str, str], config: Any) -> tuple[AIGCLabel, LabelOptions]:
    """The record and ``label_file`` options from the form; 400 on anything missing or wrong."""
    from labeler.options import parse_cue_places as _cue_positions  # one parser with `aigc label`
    from labeler.options import parse_video_places as _video_at
    from labeler.pipeline import parse_layers

    sent = [name for name in SECRET_FIELDS if name in fields]
    if sent:
        raise ApiError(400, f"{', '.join(sent)}: the watermark key, the signer and the token are the "
                            "server's own; a client never sends them")
    missing = [name for name in ("producer", "produce_id") if not fields.get(name, "").strip()]
    if missing:
        raise ApiError(400, f"missing field(s): {', '.join(missing)}")
    record = AIGCLabel(
        content_producer=fields["producer"], produce_id=fields["produce_id"],
        label=_choice(fields, "label", ("1", "2", "3"), "1"),
        reserved_code1=fields.get("reserved1", ""), content_propagator=fields.get("propagator") or None,
        propagate_id=fields.get("propagate_id") or None, reserved_code2=fields.get("reserved2", ""),
    ).check()
    layers = parse_layers(fields.get("layers", "metadata"))
    refused = [name for name in layers if name not in config.labeling_layers]
    if refused:
        raise ApiError(400, f"layer(s) {', '.join(refused)} not available on this server "
                            f"(it offers {', '.join(config.labeling_layers)})")
    return record, _options(fields, config, layers, _cue_positions, _video_at)


def _options(fields: dict[str, str], config: Any, layers: tuple[str, ...], cue: Any, video_at: Any
             ) -> LabelOptions:
    from labeler.options import VISIBLE_POSITIONS

    whole = form_flag(fields, "whole")
    return LabelOptions.build(**{
        "layers": layers,
        "key": config.keys[0] if config.keys and "watermark" in layers else None,
        "signer": config.signer if "c2pa" in layers else None,
        "watermark_method": _choice(fields, "watermark_method", ("dct", "dwt"), "dct"),
        "watermark_strength": _number(fields, "watermark_strength", 0.25, 16.0, None),
        "quality": int(_number(fields, "quality", 1, 100, 95, integer=True)),
        "text": _text(fields, layers),
        "position": _choice(fields, "position", VISIBLE_POSITIONS, "bottom-right"),
        "visible_seconds": None if whole else _number(fields, "duration", 2.0, 86400.0, 3.0),
        "cue_positions": _cue(fields, cue),
        "video_at": video_at(fields.get("video_at") or "start"),
        "audio_label": _choice(fields, "audio_label", ("rhythm", "voice", "both"), "rhythm"),
        "voice_language": _choice(fields, "voice_language", ("zh", "en"), "zh"),
        "c2pa_thumbnail": form_flag(fields, "c2pa_thumbnail"),
        "manifest_store": config.manifest_store if "c2pa" in layers else None,
    })


def _text(fields: dict[str, str], layers: tuple[str, ...]) -> str:
    """The visible label's wording, checked here so the 400 names the form field (the library's message
    points to its ``check_wording=False`` parameter, which the API does not have)."""
    from labeler.visible.image import check_wording

    text = fields.get("text") or "AI生成"
    if "visible" in layers:
        try:
            check_wording(text)
        except LabelerError:
            raise ApiError(400, f"text must contain 'AI' or '人工智能' and '生成' or '合成' (GB 45438 "
                                f"section 5), not {text[:40]!r}") from None
    return text


def _cue(fields: dict[str, str], parse: Any) -> tuple[str, ...]:
    """The audio cue's places; the 400 names the form field, not the CLI's ``--cue``."""
    spec = fields.get("cue") or "start"
    try:
        return parse(spec)  # type: ignore[no-any-return]
    except InvalidArgument:
        raise ApiError(400, f"cue must be start, end and/or middle (comma-separated), not {spec[:40]!r}") \
            from None


def _choice(fields: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = fields.get(name) or default
    if value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}, not {value[:40]!r}")
    return value


def _number(fields: dict[str, str], name: str, low: float, high: float, default: float | None, *,
            integer: bool = False) -> float | None:
    text = fields.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a{'n integer' if integer else ' number'}, not {text[:40]!r}") \
            from None
    if not low <= value <= high:  # also refuses nan
        raise ApiError(400, f"{name} must be in [{low:g}, {high:g}], not {text[:40]!r}")
    return value


def form_flag(fields: dict[str, str], name: str) -> bool:
    """The form field ``name`` as a boolean (absent: False); 400 for a value that is not one."""
    value = fields.get(name, "").strip().lower()
    if value not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ApiError(400, f"{name} must be true or false, not {value[:40]!r}")
    return value in ("1", "true", "yes", "on")


def _download_name(name: str, fmt: str, *, ascii_only: bool = True, suffix: str = "labeled") -> str:
    """The returned file's name: ``STEM.SUFFIX.EXT``. ``ascii_only``: letters, digits, dot, dash and
    underscore only (the ``filename=`` fallback); else the upload's own characters, less the ones no
    file name should have (separators, quotes, control characters)."""
    stem = name.rsplit(".", 1)[0]
    if ascii_only:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    else:
        # format characters too (U+202E turns "x\u202egnp.exe" into "xexe.png" on screen)
        stem = re.sub(r'[/\\:"*?<>|]+', "_", "".join(
            "_" if unicodedata.category(c)[0] == "C" or c in "\u2028\u2029" else c for c in stem))
    stem = stem.strip("._ ")[:80] or "upload"
    # The upload's own extension when it is one of the format's (song.opus stays .opus, not .ogg).
    ext = "." + name.rsplit(".", 1)[1].lower() if "." in name else ""
    return f"{stem}.{suffix}{ext if ext in EXTENSIONS[fmt] else EXTENSIONS[fmt][0]}"


def content_disposition(name: str, fmt: str, suffix: str = "labeled") -> str:
    """``attachment`` with an ASCII ``filename`` and, for a name that has other characters, the whole
    name as ``filename*=UTF-8''...`` (RFC 6266 section 4.3, RFC 8187): browsers prefer the latter, so
    ``照片 1.png`` downloads as ``照片 1.labeled.png`` rather than ``1.labeled.png``."""
    fallback = _download_name(name, fmt, suffix=suffix)
    full = _download_name(name, fmt, ascii_only=False, suffix=suffix)
    header = f'attachment; filename="{fallback}"'
    if full != fallback:
        header += f"; filename*=UTF-8''{quote(full, safe='')}"
    return header


routes = [Route("/v1/label", label_endpoint, methods=["POST"])]
