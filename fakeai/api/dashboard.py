"""The live dashboard: ``GET /dashboard`` and its assets under ``/dashboard/...`` (docs/dashboard.md).

The page and its assets ship in the package (``fakeai/static/dashboard``, the chart library
vendored under ``vendor/`` with its licence); nothing is fetched from elsewhere. They are read
once, on the first request. The page names each asset with a ``?v=`` of its content hash, so
assets are cached for good (``immutable``) and a new release is fetched at once; the page itself
is revalidated on every load (``no-cache`` with an ``ETag``, answered 304 when unchanged).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from .body import path_doc
from .errors import APIError

router = APIRouter(tags=["dashboard"], include_in_schema=False)

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".md": "text/markdown; charset=utf-8",
          ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
_LICENCE = "text/plain; charset=utf-8"  # vendor/*.LICENSE
_PAGE_CACHE = "no-cache"
_ASSET_CACHE = "public, max-age=31536000, immutable"


class _Asset:
    __slots__ = ("body", "etag", "media_type")

    def __init__(self, body: bytes, media_type: str) -> None:
        self.body, self.media_type = body, media_type
        self.etag = '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'


@lru_cache(maxsize=1)
def _assets() -> tuple[_Asset, dict[str, _Asset]]:
    """(the page, {relative path: asset}), the page's ``{{v:PATH}}`` marks filled with hashes."""
    root = resources.files("fakeai").joinpath("static", "dashboard")
    files: dict[str, _Asset] = {}

    def walk(node, prefix: str) -> None:
        for entry in node.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                walk(entry, name + "/")
                continue
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            media = _TYPES.get(suffix) or (_LICENCE if entry.name.endswith("LICENSE") else None)
            if media is not None:
                files[name] = _Asset(entry.read_bytes(), media)

    walk(root, "")
    page = files.pop("index.html").body.decode()
    for name, asset in files.items():
        page = page.replace("{{v:" + name + "}}", asset.etag.strip('"'))
    return _Asset(page.encode(), _TYPES[".html"]), files


def _send(request: Request, asset: _Asset, cache: str) -> Response:
    headers = {"etag": asset.etag, "cache-control": cache, "x-content-type-options": "nosniff"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    response = Response(body, media_type=asset.media_type, headers=headers)
    if request.method == "HEAD":
        response.headers["content-length"] = str(len(asset.body))
    return response


@router.api_route("/dashboard", methods=["GET", "HEAD"])
async def dashboard(request: Request):
    return _send(request, _assets()[0], _PAGE_CACHE)


@router.api_route("/dashboard/", methods=["GET", "HEAD"])
async def dashboard_slash(request: Request):
    return RedirectResponse("/dashboard", status_code=308)


@router.api_route("/dashboard/{path:path}", methods=["GET", "HEAD"], openapi_extra=path_doc("path"))
async def dashboard_asset(request: Request):
    path = request.path_params["path"]
    asset = _assets()[1].get(path)
    if asset is None:  # only the files shipped: no path reaches outside the folder
        raise APIError(404, f"No dashboard asset '{path}'.", param="path", code="not_found")
    versioned = request.query_params.get("v") == asset.etag.strip('"')  # an old hash is not cached for good
    return _send(request, asset, _ASSET_CACHE if versioned else _PAGE_CACHE)
