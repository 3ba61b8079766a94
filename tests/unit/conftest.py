"""Unit-tier fixtures: the whole service wired with the test profile (everything in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import bootstrap
from bootstrap import Runtime, Settings

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def runtime() -> Runtime:
    settings = Settings(profile="test", jwt_secret=SECRET, deploy_backoff_seconds=0.01)
    return bootstrap.build(settings)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[Any]:
    app = runtime.http_app()
    async with app.test_app() as test_app:
        yield test_app.test_client()


def bearer(runtime: Runtime, sub: str, *roles: str, **claims: Any) -> dict[str, str]:
    token = runtime.container.token_issuer().issue(sub, roles, **claims)
    return {"Authorization": f"Bearer {token}"}
