"""Entity Permissions Core events on every storage adapter: applied once, atomically, also
when deliveries race each other or an HTTP approval (memory, SQLite and Postgres)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import bootstrap
from adapters.inbound.webhooks.signatures import sign
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.clock.system import SystemClock
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade, upgrade_async
from bootstrap import Settings
from core.markets.model import MarketStatus
from core.markets.permission_events import PermissionEventProcessor
from core.markets.registration import RegisterMarket
from core.markets.use_cases import MarketUseCases
from core.ports.inbox import ProcessStatus
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.errors import IllegalTransition
from core.shared.events import Actor
from core.shared.text import text_problem
from tests.harness.permissions_core import approval_event
from tests.harness.postgres import PostgresServer, unique_database_name

ISSUER = Actor(id="iss-1", roles=("issuer",))
ADMIN = Actor(id="admin-1", roles=("admin",))
_symbols = iter(range(1, 10**6))


@pytest.fixture(scope="session")
def inbox_postgres_template(postgres_server: PostgresServer) -> str:
    name = unique_database_name("rwa_inbox_template")
    upgrade(postgres_server.create_database(name))
    return name


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "memory":
        made: Storage = MemoryStorage()
    elif request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'events.db'}"
        await upgrade_async(url)
        made = SqlStorage(url)
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        template = request.getfixturevalue("inbox_postgres_template")
        name = unique_database_name()
        made = SqlStorage(server.create_database(name, template=template))
        request.addfinalizer(lambda: server.drop_database(name))
    yield made
    await made.close()


@pytest.fixture
def markets(storage: Storage) -> MarketUseCases:
    return MarketUseCases(storage, Authorizer(MemoryPermissions()), SystemClock())


@pytest.fixture
def processor(storage: Storage, markets: MarketUseCases) -> PermissionEventProcessor:
    return PermissionEventProcessor(storage, markets, SystemClock())


async def pending_market(markets: MarketUseCases) -> str:
    market = await markets.register(
        ISSUER,
        RegisterMarket(
            name="Race Tower",
            asset_type="real_estate",
            token_symbol=f"RC{next(_symbols)}",
            token_name="Race Tower Token",
            total_supply=1000,
        ),
    )
    return market.id


async def history(storage: Storage, market_id: str) -> list[str]:
    async with storage.unit_of_work() as uow:
        return [e.type for e in await uow.events.for_aggregate(market_id)]


async def test_concurrent_deliveries_apply_once(
    storage: Storage, markets: MarketUseCases, processor: PermissionEventProcessor
) -> None:
    market_id = await pending_market(markets)
    event = approval_event("evt-race", market_id)
    outcomes = await asyncio.gather(
        *(processor.handle(event, source=f"delivery-{i}") for i in range(6))
    )
    assert sorted(o.status for o in outcomes) == ["duplicate"] * 5 + ["success"]
    assert (await history(storage, market_id)).count("market.approved") == 1
    async with storage.unit_of_work() as uow:
        record = await uow.processed_events.get("evt-race")
        market = await uow.markets.get(market_id)
    assert record is not None and record.status is ProcessStatus.SUCCESS and record.attempts == 1
    winner = next(o for o in outcomes if o.status == "success")
    assert market is not None and market.status is MarketStatus.ACTIVATING
    assert winner.market_status == "activating"


async def test_an_event_racing_an_http_approval_decides_once(
    storage: Storage, markets: MarketUseCases, processor: PermissionEventProcessor
) -> None:
    market_id = await pending_market(markets)

    async def by_http() -> str:
        try:
            await markets.decide(ADMIN, market_id, "reject", reason="by hand")
        except IllegalTransition:
            return "refused"
        return "decided"

    http, outcome = await asyncio.gather(
        by_http(), processor.handle(approval_event("evt-vs-http", market_id), source="webhook")
    )
    decisions = [
        t for t in await history(storage, market_id) if t in {"market.approved", "market.rejected"}
    ]
    assert len(decisions) == 1
    if http == "decided":
        assert outcome.status == "skipped" and decisions == ["market.rejected"]
    else:
        assert outcome.status == "success" and decisions == ["market.approved"]
    async with storage.unit_of_work() as uow:
        record = await uow.processed_events.get("evt-vs-http")
    assert record is not None and record.status.value == outcome.status


async def test_the_record_and_the_decision_commit_together(
    storage: Storage,
    markets: MarketUseCases,
    processor: PermissionEventProcessor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    market_id = await pending_market(markets)
    original = MarketUseCases.decide_in

    async def decide_then_crash(self: MarketUseCases, *args: Any, **kwargs: Any) -> Any:
        await original(self, *args, **kwargs)
        raise RuntimeError("crash between the decision and the commit")

    monkeypatch.setattr(MarketUseCases, "decide_in", decide_then_crash)
    with pytest.raises(RuntimeError, match="crash"):
        await processor.handle(approval_event("evt-crash", market_id), source="webhook")
    async with storage.unit_of_work() as uow:
        assert await uow.processed_events.get("evt-crash") is None
        market = await uow.markets.get(market_id)
    assert market is not None and market.status is MarketStatus.PENDING_APPROVAL
    assert "market.approved" not in await history(storage, market_id)
    monkeypatch.setattr(MarketUseCases, "decide_in", original)
    outcome = await processor.handle(approval_event("evt-crash", market_id), source="webhook")
    assert outcome.status == "success"


async def test_concurrent_redeliveries_of_a_failed_event_apply_once(
    storage: Storage, markets: MarketUseCases, processor: PermissionEventProcessor
) -> None:
    event = approval_event("evt-fail-race", "not-yet")
    assert (await processor.handle(event, source="webhook")).status == "failed"
    market_id = await pending_market(markets)
    event["payload"]["market_id"] = market_id  # same id, now naming a real market
    outcomes = await asyncio.gather(*(processor.handle(event, source="poller") for _ in range(5)))
    assert sorted(o.status for o in outcomes) == ["duplicate"] * 4 + ["success"]
    assert (await history(storage, market_id)).count("market.approved") == 1


async def test_concurrent_http_deliveries_on_sqlite(tmp_path: Path) -> None:
    """The webhook end to end on the embedded profile's SQLite, with racing requests."""
    settings = Settings(
        profile="embedded",
        data_dir=tmp_path,
        jwt_secret="x" * 40,
        webhook_secrets=("sqlite-race-secret",),
        deploy_backoff_seconds=0.01,
    )
    await asyncio.to_thread(bootstrap.migrate, settings)
    runtime = bootstrap.build(settings)
    runtime.container.chain.override(MemoryChain())
    market_id = await pending_market(runtime.container.market_use_cases())
    raw = json.dumps(approval_event("evt-sqlite-race", market_id)).encode()
    app = runtime.http_app()
    async with app.test_app() as test_app:
        client = test_app.test_client()

        async def deliver() -> Any:
            headers = {
                "Content-Type": "application/json",
                "X-Signature": sign(raw, "sqlite-race-secret", int(time.time())),
            }
            return await client.post(
                "/api/v1/webhooks/entity-permissions", data=raw, headers=headers
            )

        responses = await asyncio.gather(*(deliver() for _ in range(6)))
        statuses = sorted([(await r.get_json())["data"]["status"] for r in responses])
    assert [r.status_code for r in responses] == [200] * 6
    assert statuses == ["duplicate"] * 5 + ["success"]
    storage = SqlStorage(settings.effective_database_url)
    try:
        assert (await history(storage, market_id)).count("market.approved") == 1
    finally:
        await storage.close()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda e: e["payload"].update(reason="ok\ud800"),
        lambda e: e["context"].update(actor_id="core\u0000admin"),
        lambda e: e["payload"].update(entity_id="e\u202e", note={"k\udc00": "\u0000"}),
        lambda e: e.update(event_type="market.approved\n"),
    ],
)
async def test_an_event_with_bad_text_is_stored_as_failed_on_every_storage(
    storage: Storage, markets: MarketUseCases, processor: PermissionEventProcessor, spoil: Any
) -> None:
    """Lone surrogates and NUL cannot go into Postgres text or JSONB: the record keeps them
    escaped, the market is untouched, and a redelivery is recorded again, never a crash."""
    market_id = await pending_market(markets)
    event = approval_event("evt-bad-text", market_id)
    spoil(event)
    raw = json.dumps(event)
    for attempt in (1, 2):
        outcome = await processor.handle(raw, source="webhook")
        assert outcome.status == "failed" and outcome.error is not None
        assert outcome.error.startswith("invalid_text: ")
        async with storage.unit_of_work() as uow:
            record = await uow.processed_events.get("evt-bad-text")
        assert record is not None and record.status is ProcessStatus.FAILED
        assert record.attempts == attempt
        assert all_text_clean([record.event_type, record.payload, record.context])
    assert await history(storage, market_id) == ["market.registered", "market.approval_requested"]


def all_text_clean(value: Any) -> bool:
    """No string (key or value) breaks the text rules."""
    if isinstance(value, str):
        return text_problem(value, multiline=True) is None
    if isinstance(value, dict):
        return all(all_text_clean(k) and all_text_clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(all_text_clean(item) for item in value)
    return True
