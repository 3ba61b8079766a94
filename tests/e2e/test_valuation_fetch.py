"""``update-token-metadata`` end to end on the embedded profile: a real ``rwa-market serve``
(SQLite, the in-process EVM, the in-process job queue) with ``RWA_VALUATION_SOURCE_URL``
pointing at a JSON server on loopback and a one-second schedule. Two markets are registered,
approved and activated over HTTP; the scheduled runs record the first one's valuations (seen
over ``GET /api/v1/markets/:id/valuations``, by the system actor, and live on the ``ticker``
channel of a real WebSocket client), while the second one's source answers hostile things in
turn (huge, 4,000-digit, negative, NaN, a fraction, not JSON, too slow): each is refused and
counted, nothing is recorded for it, and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.e2e.api import MarketsApi, data_of, market_body, unique_symbol
from tests.e2e.server import RwaServer, start_server
from tests.harness.valuation_server import ValuationServer

SYSTEM_ACTOR = "update-token-metadata"


@pytest.fixture(scope="module")
def source() -> Iterator[ValuationServer]:
    server = ValuationServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, source: ValuationServer
) -> Iterator[RwaServer]:
    running = start_server(
        Path(tmp_path_factory.mktemp("rwa-valuations")),
        env={
            "RWA_VALUATION_FETCH_SECONDS": "1",
            "RWA_VALUATION_SOURCE_URL": source.template,
            "RWA_VALUATION_TIMEOUT_SECONDS": "1",
            "RWA_VALUATION_MAX_CHANGE_BPS": "1000",
        },
    )
    try:
        yield running
    finally:
        running.stop()


def answer(valuation: str, as_of: datetime, currency: str = "USD") -> dict[str, str]:
    return {"valuation": valuation, "currency": currency, "asOf": as_of.isoformat()}


def activate(api: MarketsApi, symbol: str) -> str:
    market = api.register(market_body(tokenSymbol=symbol))  # valued 1000.00 USD
    api.approve(market["id"])
    settled = api.wait_settled(market["id"])
    assert settled["status"] == "active", (settled, api.server.log_tail())
    return str(market["id"])


def history(http: httpx.Client, market_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data_of(http.get(f"/api/v1/markets/{market_id}/valuations"), 200)
    return found


def wait_for(check: Any, what: str, server: RwaServer, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what}; log:\n{server.log_tail()}"
        time.sleep(0.2)


def asked(source: ValuationServer, symbol: str) -> int:
    return sum(f"/valuations/{symbol}?" in r for r in source.requests)


async def ticker_valuation(server: RwaServer, pair: str, version: int) -> dict[str, Any]:
    """The ticker's valuation once it reaches ``version`` (snapshot or a later update)."""
    async with connect(f"ws://127.0.0.1:{server.port}/api/v1/ws") as ws:
        await ws.send(json.dumps({"op": "subscribe", "channel": "ticker", "pair": pair}))
        deadline = time.monotonic() + 60
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame.get("channel") == "ticker" and frame["type"] in ("snapshot", "update"):
                valuation: dict[str, Any] | None = frame["ticker"]["valuation"]
                if valuation is not None and valuation["version"] >= version:
                    return valuation
            assert time.monotonic() < deadline, f"ticker never showed version {version}"


def test_scheduled_runs_record_valuations_and_refuse_hostile_ones(
    server: RwaServer, source: ValuationServer
) -> None:
    good, hostile = unique_symbol("VG"), unique_symbol("VH")
    first_as_of = datetime.now(UTC) + timedelta(seconds=5)  # after both registrations
    source.set_json(good, answer("1050.00", first_as_of))
    source.set_json(hostile, answer("1000.50", first_as_of, currency="EUR"))
    with server.client(timeout=30) as http:
        api = MarketsApi(server, http, issuer_id="issuer-valuations")
        good_id, hostile_id = activate(api, good), activate(api, hostile)

        found = wait_for(lambda: len(h := history(http, good_id)) == 2 and h, "valuation", server)
        assert [(v["version"], v["valuation"], v["currency"], v["actorId"]) for v in found] == [
            (1, "1000.00", "USD", "issuer-valuations"),
            (2, "1050.00", "USD", SYSTEM_ACTOR),
        ]
        assert found[1]["source"] == source.url.removeprefix("http://")
        assert datetime.fromisoformat(found[1]["effectiveAt"]) == first_as_of.replace(
            microsecond=first_as_of.microsecond // 1000 * 1000
        )
        ticker = asyncio.run(ticker_valuation(server, f"{good}-USDC", 2))
        assert (ticker["valuation"], ticker["currency"]) == ("1050.00", "USD")

        # a newer valuation reaches a client that is already subscribed
        async def live() -> dict[str, Any]:
            waiting = asyncio.create_task(ticker_valuation(server, f"{good}-USDC", 3))
            await asyncio.sleep(1.0)
            source.set_json(good, answer("1100.00", first_as_of + timedelta(seconds=30)))
            return await waiting

        assert asyncio.run(live())["valuation"] == "1100.00"

        hostile_answers: list[tuple[bytes, dict[str, Any]]] = [
            (json.dumps(answer("1" + "0" * 30, first_as_of)).encode(), {}),
            (b'{"valuation": ' + b"9" * 4000 + b', "currency": "USD", "asOf": "2026-01-01Z"}', {}),
            (json.dumps(answer("-1000.00", first_as_of)).encode(), {}),
            (json.dumps(answer("NaN", first_as_of)).encode(), {}),
            (b'{"valuation": NaN, "currency": "USD", "asOf": "2026-11-23T00:00:00Z"}', {}),
            (b'{"valuation": 1000.5, "currency": "USD", "asOf": "2026-11-23T00:00:00Z"}', {}),
            (b"<html>not json</html>", {}),
            (json.dumps(answer("1000.10", datetime.now(UTC))).encode(), {"delay": 3.0}),
        ]
        for body, how in hostile_answers:
            before = asked(source, hostile)
            source.set_raw(hostile, body, **how)
            # two more requests: the second one surely saw this answer
            wait_for(lambda b=before: asked(source, hostile) >= b + 2, "request", server)
        assert [v["version"] for v in history(http, hostile_id)] == [1]  # the registration's
        assert http.get("/healthz").status_code == 200
        assert [v["version"] for v in history(http, good_id)] == [1, 2, 3]  # nothing twice

        metrics = http.get("/metrics").text
        assert 'rwa_valuation_fetches_total{outcome="recorded"} 2.0' in metrics
        assert 'rwa_valuation_fetches_total{outcome="unavailable"}' in metrics
        assert 'rwa_valuation_fetches_total{outcome="wrong_currency"}' in metrics
        assert 'rwa_valuation_fetches_total{outcome="repeated"}' in metrics
        log = server.log_text()
        assert f"({hostile}) refused (unavailable)" in log
        assert "no answer within 1 s" in log
        audit = data_of(
            http.get(
                f"/api/v1/audit?actorId={SYSTEM_ACTOR}&action=asset.valuation_update",
                headers={"Authorization": f"Bearer {api.admin}"},
            ),
            200,
        )
        assert {e["subject"] for e in audit} == {f"market:{good_id}"} and len(audit) == 2
