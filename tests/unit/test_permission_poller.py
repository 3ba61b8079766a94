"""The polling fallback against the stand-in Entity Permissions Core over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

import bootstrap
from adapters.inbound.pollers.permissions import PermissionEventPoller
from adapters.inbound.webhooks.signatures import sign
from adapters.outbound.chain.memory import MemoryChain
from adapters.outbound.clock.system import SystemClock
from adapters.outbound.permissions.feed import HttpPermissionEventFeed
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from bootstrap import Settings
from core.markets.model import MarketStatus
from core.markets.permission_events import (
    FEED_CURSOR_KEY,
    PermissionEventProcessor,
    PermissionFeedSync,
)
from core.markets.registration import RegisterMarket
from core.markets.use_cases import MarketUseCases
from core.ports.inbox import ProcessStatus
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.events import Actor
from tests.harness.permissions_core import TEST_API_KEY, PermissionsCore, approval_event

ISSUER = Actor(id="iss-1", roles=("issuer",))
_symbols = iter(range(1, 10**6))


@attrs.define
class Wired:
    storage: Storage
    markets: MarketUseCases
    processor: PermissionEventProcessor
    feed: HttpPermissionEventFeed
    sync: PermissionFeedSync
    poller: PermissionEventPoller

    async def close(self) -> None:
        await self.poller.stop()
        await self.feed.close()


def wire(
    storage: Storage, core: PermissionsCore, *, page_size: int = 100, interval: float = 0.05
) -> Wired:
    clock = SystemClock()
    markets = MarketUseCases(storage, Authorizer(MemoryPermissions()), clock)
    processor = PermissionEventProcessor(storage, markets, clock)
    feed = HttpPermissionEventFeed(core.base_url, api_key=TEST_API_KEY, timeout_seconds=0.5)
    sync = PermissionFeedSync(feed, processor, storage, clock, page_size=page_size)
    poller = PermissionEventPoller(sync, interval_seconds=interval, max_backoff_seconds=0.4)
    return Wired(storage, markets, processor, feed, sync, poller)


@pytest.fixture
async def wired(permissions_core: PermissionsCore) -> AsyncIterator[Wired]:
    made = wire(MemoryStorage(), permissions_core)
    yield made
    await made.close()


async def pending_market(markets: MarketUseCases) -> str:
    market = await markets.register(
        ISSUER,
        RegisterMarket(
            name="Polled Tower",
            asset_type="real_estate",
            token_symbol=f"PL{next(_symbols)}",
            token_name="Polled Tower Token",
            total_supply=1000,
        ),
    )
    return market.id


async def status_of(storage: Storage, market_id: str) -> MarketStatus:
    async with storage.unit_of_work() as uow:
        market = await uow.markets.get(market_id)
    assert market is not None
    return market.status


async def cursor_of(storage: Storage) -> str | None:
    async with storage.unit_of_work() as uow:
        return await uow.cursors.get(FEED_CURSOR_KEY)


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_a_poll_applies_events_and_stores_the_cursor(
    wired: Wired, permissions_core: PermissionsCore
) -> None:
    approved, rejected = await pending_market(wired.markets), await pending_market(wired.markets)
    permissions_core.publish(approval_event("evt-p1", approved, actor_id="core-7"))
    permissions_core.publish(approval_event("evt-p2", rejected, decision="reject", reason="no"))
    permissions_core.publish({"event_id": "evt-p3", "event_type": "entity.created", "payload": {}})
    assert await wired.poller.poll_once() == wired.poller.interval
    assert await status_of(wired.storage, approved) is MarketStatus.ACTIVATING
    assert await status_of(wired.storage, rejected) is MarketStatus.REJECTED
    report = wired.poller.last_report
    assert report is not None and report.fetched == 3 and report.cursor == "c3"
    assert [o.status for o in report.outcomes] == ["success", "success", "skipped"]
    assert await cursor_of(wired.storage) == "c3"
    async with wired.storage.unit_of_work() as uow:
        record = await uow.processed_events.get("evt-p1")
        decided = await uow.markets.get(approved)
    assert record is not None and record.source == "poller"
    assert record.status is ProcessStatus.SUCCESS
    assert decided is not None and decided.approved_by == "core-7"
    # the next poll asks from the stored cursor and finds nothing new
    assert await wired.poller.poll_once() == wired.poller.interval
    last = permissions_core.requests_to("/api/v1/events")[-1]
    assert last.query["after"] == "c3" and last.headers["x-api-key"] == TEST_API_KEY
    assert wired.poller.last_report is not None and wired.poller.last_report.fetched == 0


async def test_a_full_page_is_followed_at_once(permissions_core: PermissionsCore) -> None:
    wired = wire(MemoryStorage(), permissions_core, page_size=2)
    try:
        for i in range(3):
            permissions_core.publish(approval_event(f"evt-f{i}", f"missing-{i}"))
        assert await wired.poller.poll_once() == 0.0
        assert await wired.poller.poll_once() == wired.poller.interval
        assert await cursor_of(wired.storage) == "c3"
    finally:
        await wired.close()


async def test_the_cursor_survives_a_restart(
    permissions_core: PermissionsCore, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'poller.db'}"
    await upgrade_async(url)
    first = wire(SqlStorage(url), permissions_core)
    markets = [await pending_market(first.markets) for _ in range(3)]
    permissions_core.publish(approval_event("evt-r1", markets[0]))
    permissions_core.publish(approval_event("evt-r2", markets[1]))
    await first.poller.poll_once()
    assert await cursor_of(first.storage) == "c2"
    await first.close()
    await first.storage.close()

    permissions_core.publish(approval_event("evt-r3", markets[2]))
    second = wire(SqlStorage(url), permissions_core)  # a new process on the same database
    try:
        await second.poller.poll_once()
        assert permissions_core.requests_to("/api/v1/events")[-1].query["after"] == "c2"
        report = second.poller.last_report
        assert report is not None
        assert [o.event_id for o in report.outcomes] == ["evt-r3"]
        assert await cursor_of(second.storage) == "c3"
        for market_id in markets:
            assert await status_of(second.storage, market_id) is MarketStatus.ACTIVATING
    finally:
        await second.close()
        await second.storage.close()


async def test_a_lost_cursor_only_replays_duplicates(
    wired: Wired, permissions_core: PermissionsCore
) -> None:
    market_id = await pending_market(wired.markets)
    permissions_core.publish(approval_event("evt-replay", market_id))
    await wired.poller.poll_once()
    async with wired.storage.unit_of_work() as uow:
        await uow.cursors.set(FEED_CURSOR_KEY, "c0", SystemClock().now())
        await uow.commit()
    await wired.poller.poll_once()
    report = wired.poller.last_report
    assert report is not None and [o.status for o in report.outcomes] == ["duplicate"]
    async with wired.storage.unit_of_work() as uow:
        history = [e.type for e in await uow.events.for_aggregate(market_id)]
    assert history.count("market.approved") == 1


@pytest.mark.parametrize("outage", ["500", "down", "slow", "garbage"])
async def test_errors_back_off_exponentially_up_to_a_cap(
    wired: Wired, permissions_core: PermissionsCore, outage: str
) -> None:
    market_id = await pending_market(wired.markets)
    permissions_core.publish(approval_event("evt-b1", market_id))
    if outage == "500":
        permissions_core.fail_status = 500
    elif outage == "down":
        permissions_core.down()
    elif outage == "slow":
        permissions_core.delay_seconds = 1.0
    else:
        permissions_core.malformed = True
    delays = [await wired.poller.poll_once() for _ in range(5)]
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert wired.poller.failures == 5
    assert "ServiceUnavailable" in (wired.poller.last_error or "")
    assert await cursor_of(wired.storage) is None
    assert await status_of(wired.storage, market_id) is MarketStatus.PENDING_APPROVAL
    # the Core recovers: the delay resets and the waiting event is applied
    permissions_core.fail_status = None
    permissions_core.delay_seconds = 0
    permissions_core.malformed = False
    permissions_core.up()
    assert await wired.poller.poll_once() == 0.05
    assert wired.poller.failures == 0 and wired.poller.last_error is None
    assert await status_of(wired.storage, market_id) is MarketStatus.ACTIVATING


def test_backoff_arithmetic() -> None:
    poller = PermissionEventPoller(
        PermissionFeedSync.__new__(PermissionFeedSync),
        interval_seconds=10,
        max_backoff_seconds=300,
    )
    assert [poller.backoff(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    with pytest.raises(ValueError):
        PermissionEventPoller(PermissionFeedSync.__new__(PermissionFeedSync), interval_seconds=0)


async def test_a_malformed_feed_event_is_passed_over(
    wired: Wired, permissions_core: PermissionsCore
) -> None:
    market_id = await pending_market(wired.markets)
    permissions_core.publish({"event_type": "market.approved", "payload": {}})  # no id
    permissions_core.publish(approval_event("evt-after-bad", market_id))
    await wired.poller.poll_once()
    report = wired.poller.last_report
    assert report is not None and report.malformed == 1 and report.fetched == 2
    assert await cursor_of(wired.storage) == "c2"
    assert await status_of(wired.storage, market_id) is MarketStatus.ACTIVATING


async def test_the_loop_polls_until_stopped(
    wired: Wired, permissions_core: PermissionsCore
) -> None:
    market_id = await pending_market(wired.markets)
    wired.poller.start()
    assert wired.poller.running
    permissions_core.publish(approval_event("evt-loop", market_id))

    async def approved() -> bool:
        return await status_of(wired.storage, market_id) is MarketStatus.ACTIVATING

    await eventually(approved)
    started = asyncio.get_running_loop().time()
    await wired.poller.stop()
    assert asyncio.get_running_loop().time() - started < 1.0
    assert not wired.poller.running
    assert wired.poller.steps >= 1


async def test_the_poller_and_the_webhook_share_one_path(
    permissions_core: PermissionsCore,
) -> None:
    """An event that came by webhook is a duplicate when the poller sees it, and back."""
    secret = "shared-path-secret"
    runtime = bootstrap.build(
        Settings(profile="test", jwt_secret="x" * 40, webhook_secrets=(secret,))
    )
    feed = HttpPermissionEventFeed(permissions_core.base_url, api_key=TEST_API_KEY)
    runtime.container.permission_feed.override(feed)
    poller = runtime.container.permission_poller()
    markets = runtime.container.market_use_cases()
    storage = runtime.container.storage()
    by_webhook, by_poll = await pending_market(markets), await pending_market(markets)
    first = approval_event("evt-shared-1", by_webhook)
    second = approval_event("evt-shared-2", by_poll)
    app = runtime.http_app()
    async with app.test_app() as test_app:
        client = test_app.test_client()
        raw = json.dumps(first).encode()
        response = await client.post(
            "/api/v1/webhooks/entity-permissions",
            data=raw,
            headers={"Content-Type": "application/json", "X-Signature": sign(raw, secret, _now())},
        )
        assert (await response.get_json())["data"]["status"] == "success"
        permissions_core.publish(first)
        permissions_core.publish(second)
        await poller.poll_once()
        report = poller.last_report
        assert report is not None
        assert [(o.event_id, o.status) for o in report.outcomes] == [
            ("evt-shared-1", "duplicate"),
            ("evt-shared-2", "success"),
        ]
        raw = json.dumps(second).encode()
        response = await client.post(
            "/api/v1/webhooks/entity-permissions",
            data=raw,
            headers={"Content-Type": "application/json", "X-Signature": sign(raw, secret, _now())},
        )
        assert (await response.get_json())["data"]["status"] == "duplicate"
    for market_id in (by_webhook, by_poll):
        async with storage.unit_of_work() as uow:
            history = [e.type for e in await uow.events.for_aggregate(market_id)]
        assert history.count("market.approved") == 1
    await feed.close()


def _now() -> int:
    return int(time.time())


async def test_the_embedded_runtime_polls_when_the_core_is_configured(
    permissions_core: PermissionsCore, tmp_path: Path
) -> None:
    settings = Settings(
        profile="embedded",
        data_dir=tmp_path,
        jwt_secret="x" * 40,
        permissions_base_url=permissions_core.base_url,
        permissions_api_key=TEST_API_KEY,
        permissions_poll_seconds=0.05,
        deploy_backoff_seconds=0.01,
    )
    assert settings.poll_permissions_in_process
    await asyncio.to_thread(bootstrap.migrate, settings)
    runtime = bootstrap.build(settings)
    runtime.container.chain.override(MemoryChain())
    await runtime.start()
    try:
        assert runtime.container.permission_poller().running
        market_id = await pending_market(runtime.container.market_use_cases())
        # registration was authorized by the Core, over HTTP, with the API key
        [authorize] = permissions_core.requests_to("/api/v1/authorize")
        assert authorize.body["action"] == "market.register"
        assert authorize.headers["x-api-key"] == TEST_API_KEY
        permissions_core.publish(approval_event("evt-embedded", market_id))
        storage = runtime.container.storage()

        async def active() -> bool:
            return await status_of(storage, market_id) is MarketStatus.ACTIVE

        await eventually(active, timeout=10)
    finally:
        await runtime.stop()
    assert not runtime.container.permission_poller().running
