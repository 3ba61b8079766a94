"""Every market lifecycle decision is audited in its own transaction, and ``GET /api/v1/audit``
shows the log to admins only, newest first, filtered and paginated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import bootstrap
from bootstrap import Runtime
from core.markets.registration import RegisterMarket
from core.ports.audit import AuditEntry, AuditFilter
from core.shared.errors import IllegalTransition
from core.shared.events import Actor
from settings import Settings
from tests.unit.conftest import SECRET, bearer
from tests.unit.doubles import FlakyChain

ADMIN = Actor(id="admin-1", roles=("admin",))
ISSUER = Actor(id="issuer-1", roles=("issuer",))
AUDIT = "/api/v1/audit"


def registration(symbol: str) -> RegisterMarket:
    return RegisterMarket(
        name="Gold Vault",
        asset_type="commodity",
        token_symbol=symbol,
        token_name="Vaulted Gold",
        total_supply="250000",
    )


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    rt = bootstrap.build(Settings(profile="test", jwt_secret=SECRET, deploy_backoff_seconds=0.01))
    rt.container.chain.override(FlakyChain())
    await rt.start()
    yield rt
    await rt.stop()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[Any]:
    app = runtime.http_app()
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def settle(rt: Runtime) -> None:
    for _ in range(20):
        await rt.container.relay().pump()
        await rt.container.jobs().join(timeout=10)
        async with rt.container.storage().unit_of_work() as uow:
            if not await uow.outbox.pending(1):
                return


async def entries(rt: Runtime, **wanted: Any) -> list[AuditEntry]:
    async with rt.container.storage().unit_of_work(read_only=True) as uow:
        return await uow.audit.query(AuditFilter(**wanted), limit=100)


async def test_every_lifecycle_decision_is_audited(runtime: Runtime) -> None:
    uc = runtime.container.market_use_cases()
    market = await uc.register(ISSUER, registration("GLD1"))
    await uc.decide(ADMIN, market.id, "approve", reason="documents checked")
    await settle(runtime)
    await uc.pause(ADMIN, market.id, "maintenance")
    await uc.resume(ADMIN, market.id)
    await uc.archive(ADMIN, market.id, "matured")
    everything = list(reversed(await entries(runtime)))  # oldest first
    # activation also registers the market's token and mints its supply to the issuer
    assert {e.action for e in everything if e.subject.startswith("token:")} == {
        "token.create",
        "token.mint",
    }
    found = [e for e in everything if e.subject == f"market:{market.id}"]
    assert [e.action for e in found] == [
        "market.register",
        "market.submit",
        "market.approve",
        "market.start_activation",
        "market.complete_activation",
        "market.pause",
        "market.resume",
        "market.archive",
    ]
    assert {e.subject for e in found} == {f"market:{market.id}"}
    assert [e.actor_id for e in found[:4]] == ["issuer-1", "issuer-1", "admin-1", "admin-1"]
    assert found[4].actor_type == "system"
    register, _, approve, _, activated, pause, _, archive = found
    assert register.before is None
    assert register.after["tokenSymbol"] == "GLD1" and register.after["totalSupply"] == "250000"
    assert approve.before == {"status": "pending_approval", "approvedBy": None, "approvedAt": None}
    assert approve.after["status"] == "approved" and approve.after["approvedBy"] == "admin-1"
    assert approve.after["decision"] == "approve"
    assert approve.after["reason"] == "documents checked"
    assert datetime.fromisoformat(approve.after["approvedAt"]).tzinfo is not None
    assert activated.after["status"] == "active"
    assert activated.after["contractAddress"].startswith("0x")
    assert pause.after == {"status": "paused", "reason": "maintenance"}
    assert archive.before == {"status": "active"}


async def test_rejection_and_a_failed_activation_are_audited(runtime: Runtime) -> None:
    uc = runtime.container.market_use_cases()
    rejected = await uc.register(ISSUER, registration("REJ1"))
    await uc.decide(ADMIN, rejected.id, "reject", reason="missing deed")
    (reject,) = await entries(runtime, action="market.reject")
    assert reject.after == {
        "status": "rejected",
        "rejectedBy": "admin-1",
        "rejectedAt": reject.after["rejectedAt"],
        "rejectedReason": "missing deed",
        "decision": "reject",
        "reason": "missing deed",
    }
    chain = runtime.container.chain()
    chain.failures = 5
    failing = await uc.register(ISSUER, registration("FAIL1"))
    await uc.decide(ADMIN, failing.id, "approve")
    await settle(runtime)
    (failed,) = await entries(runtime, action="market.fail_activation")
    assert failed.before["status"] == "activating" and failed.after["status"] == "approved"
    assert failed.after["activationError"]


async def test_a_refused_decision_writes_no_entry(runtime: Runtime) -> None:
    uc = runtime.container.market_use_cases()
    market = await uc.register(ISSUER, registration("NOPE1"))
    before = await entries(runtime)
    with pytest.raises(IllegalTransition):
        await uc.pause(ADMIN, market.id)
    assert await entries(runtime) == before


async def test_only_admins_read_the_log(client: Any, runtime: Runtime) -> None:
    assert (await client.get(AUDIT)).status_code == 401
    for role in ("trader", "issuer", "nobody"):
        response = await client.get(AUDIT, headers=bearer(runtime, "u", role))
        assert response.status_code == 403
        assert (await response.get_json())["error"]["code"] == "forbidden"
    response = await client.get(AUDIT, headers=bearer(runtime, "a", "admin"))
    assert response.status_code == 200
    assert await response.get_json() == {
        "data": [],
        "pagination": {"limit": 20, "nextCursor": None, "hasMore": False},
    }


async def test_filters_and_pages_over_http(client: Any, runtime: Runtime) -> None:
    uc = runtime.container.market_use_cases()
    start = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(3):
        market = await uc.register(ISSUER, registration(f"PG{n}"))
        await uc.decide(ADMIN, market.id, "reject", reason="no")
    admin = bearer(runtime, "a", "admin")
    everything = await entries(runtime)
    seen: list[dict[str, Any]] = []
    url = f"{AUDIT}?limit=4"
    while True:
        page = await (await client.get(url, headers=admin)).get_json()
        seen += page["data"]
        assert page["pagination"]["limit"] == 4
        if not page["pagination"]["hasMore"]:
            assert page["pagination"]["nextCursor"] is None
            break
        url = f"{AUDIT}?limit=4&cursor={page['pagination']['nextCursor']}"
    assert [e["id"] for e in seen] == [e.id for e in everything]
    assert len(seen) == 9  # register, submit, reject for each
    first = seen[-1]
    assert set(first) == {"id", "actorId", "actorType", "action", "subject", "before", "after"} | {
        "at"
    }
    assert first["at"].endswith("Z")
    rejects = await client.get(f"{AUDIT}?action=market.reject", headers=admin)
    assert [e["action"] for e in (await rejects.get_json())["data"]] == ["market.reject"] * 3
    by_issuer = await client.get(f"{AUDIT}?actorId=issuer-1", headers=admin)
    assert len((await by_issuer.get_json())["data"]) == 6
    since = start.isoformat().replace("+00:00", "Z")
    recent = await client.get(f"{AUDIT}?since={since}&limit=100", headers=admin)
    assert len((await recent.get_json())["data"]) == 9
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    none = await client.get(AUDIT, query_string={"since": future}, headers=admin)
    assert (await none.get_json())["data"] == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "cursor=not-a-cursor",
        "cursor=YXVkaXQ6eA",  # "audit:x"
        "since=yesterday",
        "since=2026-01-01T00:00:00",  # no zone
        "since=0001-01-01T00:00:00%2B01:00",  # before year 1 in UTC
        "actorId=%00",
        "action=" + "x" * 101,
    ],
)
async def test_bad_queries_are_422(client: Any, runtime: Runtime, query: str) -> None:
    response = await client.get(f"{AUDIT}?{query}", headers=bearer(runtime, "a", "admin"))
    assert response.status_code == 422, query
    assert (await response.get_json())["error"]["code"] == "validation_failed"
