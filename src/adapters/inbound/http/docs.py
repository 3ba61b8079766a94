"""``/docs``: Swagger UI served by the app itself, so the page works with no network.

The assets come from the pinned PyPI distribution ``swagger-ui-py`` (its ``swagger_ui/static``
folder holds the upstream ``swagger-ui-dist`` build and its Apache-2.0 licence). Only the files
the page needs are served, read once from the installed distribution; its Python code is never
imported. The page's own start-up script is served from here too, so the Content-Security-Policy
allows no inline script and no other origin.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from functools import cache
from pathlib import Path

from quart import Blueprint, Response, abort, request
from quart_schema import hide

DISTRIBUTION = "swagger-ui-py"
STATIC_DIR = "swagger_ui/static"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}
OPENAPI_PATH = "/openapi.json"
STATIC_PREFIX = "/docs/static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>RWA tokenization and trading API</title>
  <link rel="stylesheet" type="text/css" href="{STATIC_PREFIX}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{STATIC_PREFIX}/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="{STATIC_PREFIX}/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <noscript>This page needs JavaScript; the raw document is at {OPENAPI_PATH}.</noscript>
  <script src="{STATIC_PREFIX}/swagger-ui-bundle.js"></script>
  <script src="{STATIC_PREFIX}/init.js"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to an online validator.
INIT_SCRIPT = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{OPENAPI_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    persistAuthorization: false
  }});
}});
"""

docs = Blueprint("docs", __name__)


class AssetsMissing(RuntimeError):
    """The swagger-ui-py distribution is not installed, or lacks a file the page needs."""


def assets_dir() -> Path:
    """The installed distribution's static folder (its files are checked to be there)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise AssetsMissing(f"the {DISTRIBUTION} distribution is not installed") from exc
    folder = Path(str(dist.locate_file(STATIC_DIR)))
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise AssetsMissing(f"{DISTRIBUTION} lacks {', '.join(missing)} under {STATIC_DIR}")
    return folder


@cache
def _asset(name: str) -> tuple[bytes, str]:
    content = (assets_dir() / name).read_bytes()
    return content, hashlib.sha256(content).hexdigest()[:32]


def _static(content: bytes, content_type: str, etag: str) -> Response:
    if etag in request.if_none_match:
        response = Response(b"", status=304)
    else:
        response = Response(content, content_type=content_type)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@docs.get("/docs")
@hide
async def page() -> Response:
    """The Swagger UI page for ``/openapi.json``."""
    response = Response(PAGE, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@docs.get(f"{STATIC_PREFIX}/init.js")
@hide
async def init_script() -> Response:
    content = INIT_SCRIPT.encode()
    etag = hashlib.sha256(content).hexdigest()[:32]
    return _static(content, "text/javascript; charset=utf-8", etag)


@docs.get(f"{STATIC_PREFIX}/<name>")
@hide
async def asset(name: str) -> Response:
    """One of the vendored Swagger UI files; anything else is 404."""
    content_type = ASSETS.get(name)
    if content_type is None:
        abort(404)
    content, etag = _asset(name)
    return _static(content, content_type, etag)
