"""``aigc serve``: a local verification page for people and a labeling/verification HTTP API.

Needs the ``serve`` extra (``pip install 'aigc-labeler[serve]'``: Starlette, uvicorn, python-multipart).

=========================  ==========================================================================
module                     job
=========================  ==========================================================================
:mod:`.app`                the app factory :func:`create_app`, security headers, error handlers
:mod:`.config`             :class:`ServerConfig`: the server's keys, signer, anchors, token, limits
:mod:`.routes_verify`      ``POST /v1/verify``
:mod:`.routes_label`       ``POST /v1/label``
:mod:`.routes_propagate`   ``POST /v1/propagate`` (a platform's propagation, Labeling Measures Art. 6)
:mod:`.routes_health`      ``GET /v1/health``
:mod:`.routes_page`        ``GET /`` (the page), ``/static``, ``/docs``, ``/v1/openapi.json``
:mod:`.openapi`            the hand-written OpenAPI document
:mod:`.uploads`            per-request private folder, multipart files, clean-up
:mod:`.limits`             body size limit (413) and concurrency gate (503)
:mod:`.auth`               bearer token for ``/v1/label`` and ``/v1/propagate``
:mod:`.jobs`               the process pool and the label / verify / propagate jobs, with timeouts
:mod:`.errors`             JSON errors and the status of each toolkit error
=========================  ==========================================================================

Details: ``docs/server.md``.
"""

from __future__ import annotations

from labeler.server.app import create_app
from labeler.server.config import ServerConfig

__all__ = ["create_app", "ServerConfig"]
