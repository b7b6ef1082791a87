"""Bearer-token check for ``/v1/label`` (when ``--token-file`` is given)."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from labeler.server.errors import ApiError


def require_token(request: Request, token: str | None) -> None:
    """Refuse (401) a request without ``Authorization: Bearer <token>``; no-op when ``token`` is None.

    Checked before the body is read, so an unauthenticated client cannot make the server store data.
    """
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "labeling needs the server's token: send 'Authorization: Bearer <token>'",
                       {"WWW-Authenticate": 'Bearer realm="aigc"'})
