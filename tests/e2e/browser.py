"""The browser of the e2e tier: Playwright for Python driving Debian's chromium.

Playwright's own browser download is impossible here (DESIGN §12): the tests launch
``/usr/bin/chromium`` (or ``RWA_CHROMIUM``) headless with ``--no-sandbox`` and
``--disable-background-networking``. Without it (or without the ``playwright`` package) a
test is a loud skip locally and a failure with ``CI=true``.

Screenshots go to ``tests/e2e/artifacts/web/`` (git-ignored; ``RWA_E2E_ARTIFACTS`` overrides
it). ``axe_violations`` runs the vendored axe-core (``tests/e2e/vendor``) in the page.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.harness.common import missing_service

CHROMIUM = Path(os.environ.get("RWA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
VENDOR = Path(__file__).parent / "vendor"
AXE_SOURCE = VENDOR / "axe.min.js"
ARTIFACTS = Path(os.environ.get("RWA_E2E_ARTIFACTS", Path(__file__).parent / "artifacts")) / "web"
SERIOUS = ("serious", "critical")


def artifact_dir(name: str) -> Path:
    path = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Debian chromium under Playwright (use it in a module-scoped fixture)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("the playwright package (dev extras) is not installed")
    if not CHROMIUM.exists():
        missing_service(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class PageLog:
    """What a page said on its console, its uncaught errors, and requests to other origins."""

    def __init__(self, page: Any, origin: str) -> None:
        self.messages: list[str] = []
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        def on_request(request: Any) -> None:
            url = str(request.url)
            if not url.startswith((origin, origin.replace("http", "ws", 1), "data:")):
                self.foreign.append(url)

        page.on("request", on_request)

    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m]

    def check(self) -> None:
        assert not self.errors, f"uncaught errors in the page: {self.errors}"
        assert not self.csp_violations(), f"CSP violations: {self.csp_violations()}"
        assert not self.foreign, f"requests to other origins: {self.foreign}"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated over the DevTools protocol: the page's CSP (script-src 'self') stays on
        page.evaluate(AXE_SOURCE.read_text(encoding="utf-8") + "\n;true")
    results = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in results
        if v.get("impact") in SERIOUS
    ]


def assert_accessible(page: Any, what: str, out: Path) -> None:
    violations = axe_violations(page)
    (out / f"axe-{what}.json").write_text(json.dumps(violations, indent=2))
    assert not violations, f"axe-core: serious or critical violations on {what}: {violations}"
