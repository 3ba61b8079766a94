"""Where the order books live, by profile: in process (embedded, test) or in ``rwa-market
engine`` processes reached over Redis Streams (production); the engine settings and command
line. Nothing here connects to Redis or Postgres."""

from __future__ import annotations

import asyncio

import pytest

import bootstrap
import cli
from adapters.outbound.routing.redis_streams import RedisOrderRouter
from bootstrap import ConfigurationError, Container, Settings
from core.trading.engine_host import EngineHost

REDIS = "redis://127.0.0.1:1/3"
POSTGRES = "postgresql+asyncpg://rwa:rwa@127.0.0.1:1/rwa"


def container(**settings: object) -> Container:
    return Container(settings=Settings(**settings))  # type: ignore[arg-type]


def test_production_routes_orders_to_engines_and_reads_books_from_storage() -> None:
    c = container(
        profile="production",
        redis_url=REDIS,
        database_url=POSTGRES,
        engine_lease_seconds=3,
        engine_reply_timeout_seconds=7,
    )
    router = c.order_router()
    assert isinstance(router, RedisOrderRouter)
    trading = c.trading()
    assert trading._router is router
    assert trading._reply_timeout == 7
    host = c.engine_host()
    assert isinstance(host, EngineHost)
    assert host._router is router and host._lease_seconds == 3


@pytest.mark.parametrize("profile", ["embedded", "test"])
def test_other_profiles_run_the_books_in_process(profile: str) -> None:
    c = container(profile=profile, redis_url=REDIS)  # Redis alone does not move the books
    assert c.order_router() is None
    assert c.trading()._router is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RWA_ENGINE_LEASE_SECONDS": "0"}, "RWA_ENGINE_LEASE_SECONDS"),
        ({"RWA_ENGINE_REPLY_TIMEOUT_SECONDS": "-1"}, "RWA_ENGINE_REPLY_TIMEOUT_SECONDS"),
        ({"RWA_ENGINE_LEASE_SECONDS": "soon"}, "RWA_ENGINE_LEASE_SECONDS"),
    ],
)
def test_bad_engine_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_the_engine_command_needs_the_production_profile(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("RWA_"):
            monkeypatch.delenv(name)
    assert cli.main(["engine"]) == 2
    assert "production profile" in capsys.readouterr().err
    runtime = bootstrap.build(Settings(profile="test"))
    with pytest.raises(ConfigurationError, match="production profile"):
        asyncio.run(runtime.run_engine(asyncio.Event()))
