"""The web app's files: served with a self-only CSP, every module and asset they name
resolves, nothing points at another origin, and the vendored npm files are exactly the
pinned and locked packages' files, with their licences beside them."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.inbound.web import STATIC_DIR
from tests.harness.common import missing_service

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
EXTERNAL = re.compile(r"""(?:https?|wss?)://""")
IMPORT = re.compile(r"""(?:import|from)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""")
OWN_FILES = [p for p in STATIC_DIR.rglob("*") if p.is_file() and "vendor" not in p.parts]
MANIFESTS = [
    STATIC_DIR / "vendor" / "VENDOR.json",
    ROOT / "tests" / "e2e" / "vendor" / "VENDOR.json",
]


def _lock() -> dict[str, Any]:
    lock: dict[str, Any] = json.loads((CONTRACTS / "package-lock.json").read_text())
    return lock


async def test_index_is_served_with_a_self_only_policy(client: Any) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy and "unsafe-inline" not in policy
    assert "http" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = (await response.get_data()).decode()
    assert '<html lang="en">' in html
    assert "<script>" not in html and " style=" not in html  # nothing inline for the CSP
    for path in re.findall(r'(?:src|href)="(/[^"#]*)"', html):
        if path == "/docs":
            continue
        asset = await client.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["Content-Security-Policy"] == policy


async def test_every_module_import_resolves_and_modules_are_javascript(client: Any) -> None:
    modules = sorted((STATIC_DIR / "js").glob("*.js"))
    assert {p.name for p in modules} >= {"main.js", "issuer.js", "admin.js", "trader.js"}
    for module in modules:
        response = await client.get(f"/app/js/{module.name}")
        assert response.status_code == 200, module.name
        assert response.headers["Content-Type"].startswith("text/javascript"), module.name
        for target in IMPORT.findall(module.read_text()):
            resolved = (module.parent / target).resolve()
            assert resolved.is_file(), f"{module.name} imports {target}, which does not exist"
            relative = resolved.relative_to(STATIC_DIR).as_posix()
            assert (await client.get(f"/app/{relative}")).status_code == 200, target


def test_own_files_name_no_other_origin_and_no_float_amounts() -> None:
    for path in OWN_FILES:
        text = path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert EXTERNAL.findall(text) == [], f"{path.name} names another origin"
        assert "innerHTML" not in text, f"{path.name} parses markup"
        assert "parseFloat" not in text, f"{path.name} turns amounts into floats"


async def test_unknown_and_escaping_paths_are_404(client: Any) -> None:
    for path in ("/app/nope.js", "/app/../blueprint.py", "/app/%2e%2e/blueprint.py", "/app/js"):
        assert (await client.get(path)).status_code == 404, path


async def test_the_app_is_not_in_the_openapi_document(client: Any) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert "/" not in spec["paths"]
    assert not any(p.startswith("/app") for p in spec["paths"])


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.parent.parent.name)
def test_vendored_files_are_the_pinned_packages_files(manifest: Path) -> None:
    package_json = json.loads((CONTRACTS / "package.json").read_text())
    lock = _lock()
    entries = json.loads(manifest.read_text())["files"]
    assert entries
    for entry in entries:
        name, version = entry["package"], entry["version"]
        vendored = manifest.parent / entry["file"]
        content = vendored.read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], vendored.name
        assert package_json["dependencies"][name] == version, f"{name} is not pinned exactly"
        locked = lock["packages"][f"node_modules/{name}"]
        assert locked["version"] == version, name
        assert locked["license"] == entry["license"], name
        licence = manifest.parent / entry["licenseFile"]
        assert licence.stat().st_size > 500, licence.name
        for bundled in entry.get("bundles", []):
            inner = lock["packages"][f"node_modules/{bundled['package']}"]
            assert inner["version"] == bundled["version"], bundled
            assert inner["license"] == bundled["license"], bundled
            assert (manifest.parent / bundled["licenseFile"]).is_file()
            assert (
                lock["packages"][f"node_modules/{name}"]["dependencies"][bundled["package"]]
                == bundled["version"]
            )
        installed = CONTRACTS / "node_modules" / name
        if not installed.is_dir():
            missing_service(f"contracts/node_modules/{name} (npm ci --prefix contracts)")
        installed_version = json.loads((installed / "package.json").read_text())["version"]
        assert installed_version == version, f"node_modules has {name} {installed_version}"
        assert (installed / entry["source"]).read_bytes() == content, (
            f"{vendored.name} differs from {name}/{entry['source']}: copy it again"
        )


def test_chart_library_is_the_pinned_version() -> None:
    chart = STATIC_DIR / "vendor" / "lightweight-charts.standalone.production.mjs"
    version = json.loads((CONTRACTS / "package.json").read_text())["dependencies"][
        "lightweight-charts"
    ]
    assert f"Lightweight Charts\u2122 v{version}" in chart.read_text()[:300]
