"""The page for people (``GET /``), its static files, and the API's documentation (``/docs``)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from labeler.server.openapi import openapi_document

#: The page's HTML, CSS and JavaScript, shipped in the package (no CDN: it works offline).
STATIC = Path(__file__).with_name("static")


#: The page and its files are revalidated on each load (ETag / Last-Modified, a 304 when unchanged):
#: without it a browser keeps a heuristically fresh ``app.js`` after the package was upgraded.
REVALIDATE = {"Cache-Control": "no-cache"}


class _Static(StaticFiles):
    def file_response(self, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers.update(REVALIDATE)
        return response


async def page(request: Request) -> Response:
    """``GET /``: the verification page."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=REVALIDATE)


async def docs(request: Request) -> Response:
    """``GET /docs``: the API's documentation, rendered from the OpenAPI document by our own script."""
    return FileResponse(STATIC / "docs.html", media_type="text/html; charset=utf-8", headers=REVALIDATE)


async def label_font(request: Request) -> Response:
    """``GET /fonts/label-cjk.otf``: the package's CJK subset, so the label wordings show everywhere."""
    from labeler.visible.image import font_path

    return FileResponse(font_path(), media_type="font/otf")


async def openapi(request: Request) -> JSONResponse:
    """``GET /v1/openapi.json``."""
    return JSONResponse(openapi_document())


routes = [
    Route("/", page, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/v1/openapi.json", openapi, methods=["GET"]),
    Route("/fonts/label-cjk.otf", label_font, methods=["GET"]),
    Mount("/static", app=_Static(directory=STATIC), name="static"),
]
