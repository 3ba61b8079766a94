"""E2E fixtures: a real ``rwa-market serve`` on the embedded profile, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import RwaServer, start_server


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RwaServer]:
    """One embedded-profile server (SQLite + in-process EVM) for every test of a module."""
    server = start_server(tmp_path_factory.mktemp("rwa-e2e"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http(embedded_server: RwaServer) -> Iterator[httpx.Client]:
    with embedded_server.client() as client:
        yield client
