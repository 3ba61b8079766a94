"""The private ``balances`` channel updates: two users, each sees an update whenever their own
available or locked changes (mint, order lock, cancel unlock, fill with its fee), equal to
``GET /tokens/balances/:userId``; neither ever sees the other's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bootstrap import Runtime
from core.ledger.notices import BALANCE_CHANGED
from core.shared.events import DomainEvent
from tests.unit.trading_helpers import ETH, TRADING, USD, fund, make_pair, place, trader

WS = "/api/v1/ws"


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[Any]:
    async with runtime.http_app().test_app() as test_app:
        yield test_app


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.receive(), timeout))
        if frame["type"] != "heartbeat":
            return frame


async def nothing_more(ws: Any) -> None:
    """Nothing but heartbeats for a little while."""
    with pytest.raises(TimeoutError):
        await recv(ws, timeout=0.3)


class Client:
    def __init__(self, ws: Any, user: str) -> None:
        self.ws, self.user = ws, user
        self.seq = 0
        self.balances: dict[str, dict[str, Any]] = {}

    async def subscribe(self, runtime: Runtime) -> None:
        tok = runtime.container.token_issuer().issue(self.user, ["trader"])
        await self.ws.send(json.dumps({"op": "auth", "token": tok}))
        assert (await recv(self.ws))["type"] == "authenticated"
        await self.ws.send(json.dumps({"op": "subscribe", "channel": "balances"}))
        assert (await recv(self.ws))["type"] == "subscribed"
        snapshot = await recv(self.ws)
        assert snapshot["type"] == "snapshot" and snapshot["channel"] == "balances"
        self.seq = snapshot["seq"]
        self.balances = {b["tokenId"]: b for b in snapshot["balances"]}

    async def updates(self, n: int) -> list[dict[str, Any]]:
        got = []
        for _ in range(n):
            update = await recv(self.ws)
            assert update["type"] == "update" and update["channel"] == "balances", update
            assert update["seq"] == self.seq + 1
            self.seq = update["seq"]
            self.balances[update["balance"]["tokenId"]] = update["balance"]
            got.append(update["balance"])
        return got

    async def equals_http(self, client: Any, runtime: Runtime) -> None:
        response = await client.get(
            f"/api/v1/tokens/balances/{self.user}", headers=trader(runtime, self.user)
        )
        http = {b["tokenId"]: b for b in (await response.get_json())["data"]}
        assert self.balances.keys() == http.keys()
        for token_id, view in self.balances.items():
            assert view == {k: http[token_id][k] for k in view}


async def test_each_user_sees_their_own_balance_changes(app: Any, runtime: Runtime) -> None:
    client = app.test_client()
    pair = await make_pair(client, runtime)
    base, quote = pair["baseTokenId"], pair["quoteTokenId"]
    async with client.websocket(WS) as ann_ws, client.websocket(WS) as ben_ws:
        ann, ben = Client(ann_ws, "ann"), Client(ben_ws, "ben")
        await ann.subscribe(runtime)
        await ben.subscribe(runtime)
        assert ann.balances == {} and ben.balances == {}

        # mint: ann's quote, ben's base
        await fund(runtime, "ann", quote, 1_000 * USD)
        [got] = await ann.updates(1)
        assert (got["symbol"], got["available"], got["locked"]) == ("USDC", "1000", "0")
        await fund(runtime, "ben", base, 2 * ETH)
        [got] = await ben.updates(1)
        assert (got["symbol"], got["available"]) == ("WETH", "2")
        await nothing_more(ann_ws)  # ben's mint is not ann's business

        # an order locks ann's quote (price x quantity + the maximum fee)
        order = await place(
            client, runtime, "ann", side="BUY", type="LIMIT", price="100.00", quantity="1"
        )
        assert order.status_code == 201
        [got] = await ann.updates(1)
        assert (got["available"], got["locked"]) == ("899.8", "100.2")
        await nothing_more(ben_ws)
        await ann.equals_http(client, runtime)

        # cancel unlocks it
        order_id = (await order.get_json())["data"]["id"]
        cancelled = await client.delete(
            f"{TRADING}/orders/{order_id}", headers=trader(runtime, "ann")
        )
        assert cancelled.status_code == 200
        [got] = await ann.updates(1)
        assert (got["available"], got["locked"]) == ("1000", "0")

        # a fill: ann buys 0.5 from ben at 100; fees 0.10 (maker ben) and 0.10 (taker ann)
        sell = await place(
            client, runtime, "ben", side="SELL", type="LIMIT", price="100.00", quantity="0.5"
        )
        assert sell.status_code == 201
        [got] = await ben.updates(1)
        assert (got["symbol"], got["available"], got["locked"]) == ("WETH", "1.5", "0.5")
        buy = await place(
            client, runtime, "ann", side="BUY", type="LIMIT", price="100.00", quantity="0.5"
        )
        assert buy.status_code == 201
        ann_got = {b["symbol"]: b for b in await ann.updates(2)}
        assert (ann_got["USDC"]["available"], ann_got["USDC"]["locked"]) == ("949.9", "0")
        assert ann_got["WETH"]["available"] == "0.5"
        ben_got = {b["symbol"]: b for b in await ben.updates(2)}
        assert (ben_got["WETH"]["available"], ben_got["WETH"]["locked"]) == ("1.5", "0")
        assert ben_got["USDC"]["available"] == "49.95"
        for user in (ann, ben):
            await user.equals_http(client, runtime)
        await nothing_more(ann_ws)
        await nothing_more(ben_ws)


async def test_a_notice_naming_another_user_sends_nothing(app: Any, runtime: Runtime) -> None:
    """A ``balance.changed`` notice is only a hint: the channel reads the subscriber's own
    ledger, so a notice naming them with nothing changed, or naming others, sends nothing."""
    from datetime import UTC, datetime

    client = app.test_client()
    async with client.websocket(WS) as ws:
        ann = Client(ws, "ann")
        await ann.subscribe(runtime)
        for users in (["ann"], ["ben"]):
            await runtime.container.event_bus().publish(
                DomainEvent(
                    type=BALANCE_CHANGED,
                    aggregate_id="n",
                    actor_id="ledger",
                    actor_type="system",
                    occurred_at=datetime.now(UTC),
                    metadata={"userIds": users},
                    stream="ledger:n" + users[0],
                    seq=1,
                )
            )
        await nothing_more(ws)
