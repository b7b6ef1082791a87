"""``GET /v1/health``: alive, and what this server offers (the page reads it)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from labeler import __version__
from labeler.server.errors import NO_STORE


def health_info(state: Any) -> dict[str, Any]:
    """The health document: no secrets (key IDs are public, paths are not shown)."""
    from labeler.watermark.keyfile import key_id

    config = state.config
    return {
        "status": "ok",
        "version": __version__,
        "labeling": {
            "enabled": config.labeling_enabled,
            "layers": list(config.labeling_layers) if config.labeling_enabled else [],
            "token_required": config.token is not None,
            "reason": None if config.labeling_enabled else
            "no watermark key or C2PA signer configured (aigc serve --key-file, or --sign-cert/--sign-key)",
        },
        "verify": {
            "watermark_keys": [key_id(k) for k in config.keys],
            "trust_anchors": len(config.trust_anchors),
        },
        "limits": {
            "max_upload_bytes": config.max_upload_bytes,
            "max_concurrent": config.max_concurrent,
            "active": state.gate.active,
            "workers": config.workers,
            "timeout_s": config.timeout_s,
            "max_pixels": config.max_pixels,
        },
    }


async def health(request: Request) -> JSONResponse:
    """``GET /v1/health``."""
    return JSONResponse(health_info(request.app.state.server), headers=NO_STORE)


routes = [Route("/v1/health", health, methods=["GET"])]
