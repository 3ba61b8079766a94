"""The admin page's reconciliation view against a real drift.

A server makes its stablecoin; stopped, the embedded chain gets 1.5 USDC minted to the
omnibus outside the ledger (``tests.harness.outside_mint``) and ``rwa-market reconcile``
finds it (exit 1, audit entries); restarted, the admin's page shows the latest run with that
drift, exact in base units, and ``GET /api/v1/reconciliation`` says the same.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.api import bearer
from tests.e2e.browser import artifact_dir, assert_accessible, launch_chromium
from tests.e2e.server import rwa_market_command, start_server
from tests.e2e.test_web_app import Session

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


def test_admin_sees_the_latest_reconciliation_and_its_drift(tmp_path: Path, chromium: Any) -> None:
    out = artifact_dir("reconciliation")
    data_dir = tmp_path / "data"
    server = start_server(tmp_path / "first", data_dir=data_dir)
    try:
        admin_headers = bearer(server.token("admin-rec", "admin"))
        with server.client() as http:
            never = http.get("/api/v1/reconciliation", headers=admin_headers)
            assert never.status_code == 404, never.text
        env = server.env
    finally:
        server.stop()

    minted = subprocess.run(
        [sys.executable, "-m", "tests.harness.outside_mint", "1500000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert minted.returncode == 0, minted.stderr[-2000:]
    reconciled = subprocess.run(
        [*rwa_market_command(), "reconcile"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reconciled.returncode == 1, reconciled.stdout + reconciled.stderr[-2000:]

    server = start_server(tmp_path / "second", data_dir=data_dir)
    admin = Session(chromium, server, "admin-rec", "admin")
    try:
        with server.client() as http:
            latest = http.get("/api/v1/reconciliation", headers=admin_headers).json()["data"]
        assert latest["driftCount"] == 1, latest
        [drift] = latest["drifts"]
        assert (drift["symbol"], drift["scope"], drift["difference"]) == (
            "USDC",
            "total",
            "1500000",
        )

        admin.sign_in_by_link()
        page = admin.page
        page.wait_for_selector("#admin-title")
        summary = page.locator("#reconciliation-summary[data-drift-count='1']")
        summary.wait_for()
        assert "1 drift" in summary.inner_text()
        row = page.locator("#reconciliation tr[data-symbol='USDC'][data-difference='1500000']")
        row.wait_for()
        cells = row.locator("td").all_inner_texts()
        assert cells[1:3] == ["total", "*"] and cells[-1] == "+1500000"
        assert cells[-2] == drift["chain"] and cells[-3] == drift["ledger"]
        assert_accessible(page, "admin-reconciliation", out)
        admin.shot(out, "01-admin-drift")
    finally:
        admin.close(out)
        server.stop()
