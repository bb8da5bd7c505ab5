"""Interactive API docs at /docs (Swagger UI), served from this server: the assets come from the
`fastapi-offline` package, so the docs work with no internet access (FastAPI's default loads them from a CDN
and shows a blank page offline). ReDoc is not offered: it fetches its logo from the internet and needs a
`blob:` worker that the Content-Security-Policy does not allow."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

_ASSET_TYPES = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RAG support bot - API docs</title>
<link rel="icon" type="image/png" href="docs/assets/favicon.png">
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/docs.js"></script>
</body>
</html>
"""


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return HTMLResponse(_SWAGGER_PAGE, headers={"Cache-Control": "no-cache"})


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    """A fixed list of files, never a path: nothing else on disk can be asked for."""
    if name == "docs.js":
        body, media_type = _read("rag.api", name), "application/javascript; charset=utf-8"
    elif name in _ASSET_TYPES:
        body, media_type = _read("fastapi_offline", name), _ASSET_TYPES[name]
    else:
        raise HTTPException(404, f"No docs asset {name!r}")
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@lru_cache(maxsize=8)
def _read(package: str, name: str) -> bytes:
    return resources.files(package).joinpath("static", name).read_bytes()
