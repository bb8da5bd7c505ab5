"""The web channel: a chat page at / and the embeddable widget at /widget.js (no CDN, no build step)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["web"])


def _asset(name: str) -> str:
    return resources.files("rag.api").joinpath("static", name).read_text(encoding="utf-8")


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-cache"})


@router.api_route("/widget.js", methods=["GET", "HEAD"], include_in_schema=False)
def widget() -> Response:
    return Response(
        _asset("widget.js"),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )
