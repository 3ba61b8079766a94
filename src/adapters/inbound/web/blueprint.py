"""``/`` and ``/app/<file>``: the web app's page and its static files.

Only files that exist under ``static/`` are served (no directory listings, no path outside
it); unknown ones are 404. The page needs JavaScript and talks to ``/api/v1`` and
``/api/v1/ws`` on the same origin.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, abort
from quart_schema import hide

STATIC_DIR = Path(__file__).resolve().parent / "static"
APP_PREFIX = "/app"

# 'self' covers same-origin ws: and wss: in CSP Level 3 browsers; no inline script or style.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}

web = Blueprint("web", __name__)


def _file_response(path: Path) -> Response:
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None:
        abort(404)
    response = Response(path.read_bytes(), status=200, content_type=content_type)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


def static_file(name: str) -> Path | None:
    """The file ``name`` under ``STATIC_DIR``, or None when it is not one of its files."""
    candidate = (STATIC_DIR / name).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or not candidate.is_file():
        return None
    return candidate


@web.get("/")
@hide
async def index() -> Response:
    return _file_response(STATIC_DIR / "index.html")


@web.get(f"{APP_PREFIX}/<path:name>")
@hide
async def asset(name: str) -> Response:
    path = static_file(name)
    if path is None:
        abort(404)
    return _file_response(path)
