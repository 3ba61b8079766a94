"""The offline docs page, its vendored assets, and the ``Allow`` header of a 405."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path
from typing import Any

from adapters.inbound.http.docs import ASSETS, DISTRIBUTION, STATIC_PREFIX, assets_dir

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = re.compile(r"""(?:https?:)?//[^\s"'<>]+""")


def _pinned(requirements: str, name: str) -> str | None:
    wanted = name.lower().replace("_", "-")
    for line in requirements.splitlines():
        found = re.match(r"\s*\"?([A-Za-z0-9_.\-]+)==([^\s\";,]+)", line)
        if found and found.group(1).lower().replace("_", "-") == wanted:
            return found.group(2)
    return None


async def test_docs_page_references_only_its_own_assets(client: Any) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = (await response.get_data()).decode()
    assert EXTERNAL.findall(html) == []
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in policy
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert f"{STATIC_PREFIX}/swagger-ui-bundle.js" in referenced
    assert f"{STATIC_PREFIX}/swagger-ui.css" in referenced
    for path in referenced:
        assert path.startswith(f"{STATIC_PREFIX}/"), path
        asset = await client.get(path)
        assert asset.status_code == 200, path
        assert len(await asset.get_data()) > 0, path


async def test_init_script_points_at_the_openapi_document_and_no_validator(client: Any) -> None:
    script = (await (await client.get(f"{STATIC_PREFIX}/init.js")).get_data()).decode()
    assert 'url: "/openapi.json"' in script
    assert "validatorUrl: null" in script
    assert EXTERNAL.findall(script) == []
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    assert (await spec.get_json())["openapi"].startswith("3.")


async def test_assets_are_the_installed_distribution_files_with_caching(client: Any) -> None:
    folder = assets_dir()
    for name, content_type in ASSETS.items():
        response = await client.get(f"{STATIC_PREFIX}/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == content_type
        assert await response.get_data() == (folder / name).read_bytes()
        etag = response.headers["ETag"]
        again = await client.get(f"{STATIC_PREFIX}/{name}", headers={"If-None-Match": etag})
        assert again.status_code == 304
    bundle = (folder / "swagger-ui-bundle.js").read_bytes()
    assert b"SwaggerUIBundle" in bundle
    assert b"Apache License" in (folder / "LICENSE").read_bytes()


async def test_only_known_assets_are_served(client: Any) -> None:
    for name in ("swagger-ui.js.map", "..%2Fcore.py", "index.html", "nothing"):
        response = await client.get(f"{STATIC_PREFIX}/{name}")
        assert response.status_code == 404, name
        assert (await response.get_json())["error"]["code"] == "not_found"


def test_the_vendored_ui_is_the_pinned_one() -> None:
    installed = importlib.metadata.version(DISTRIBUTION)
    assert _pinned((ROOT / "constraints.txt").read_text(), DISTRIBUTION) == installed
    assert _pinned((ROOT / "pyproject.toml").read_text(), DISTRIBUTION) == installed


async def test_docs_routes_are_not_api_operations(client: Any) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert not [path for path in spec["paths"] if path.startswith("/docs")]


async def test_method_not_allowed_names_the_allowed_methods(client: Any) -> None:
    response = await client.delete("/api/v1/markets/m-1/approve")
    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"
    listing = await client.put("/api/v1/markets")
    assert listing.status_code == 405
    assert set(listing.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
