"""``/api/v1/ws`` through Quart's test client on the test profile: every op and answer, the
live channels (``markets``, private ``balances``), the placeholders of the trading channels,
and bad input that is answered with an error frame or the close code of DESIGN §6."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from quart.testing.connections import WebsocketDisconnectError

import bootstrap
from bootstrap import Runtime
from core.ledger.model import AccountRef
from core.ledger.operations import mint
from core.shared.events import DomainEvent
from settings import Settings
from tests.unit.conftest import SECRET, bearer
from tests.unit.test_http_markets import REGISTER, body

WS = "/api/v1/ws"


@pytest.fixture
def runtime() -> Runtime:
    settings = Settings(
        profile="test",
        jwt_secret=SECRET,
        deploy_backoff_seconds=0.01,
        ws_rate_per_second=50,
        ws_rate_burst=20,
        ws_max_message_bytes=1024,
        ws_heartbeat_seconds=0.3,
    )
    return bootstrap.build(settings)


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[Any]:
    quart_app = runtime.http_app()
    async with quart_app.test_app() as test_app:
        yield test_app


def token(runtime: Runtime, sub: str, *roles: str) -> str:
    return runtime.container.token_issuer().issue(sub, roles)


async def recv(ws: Any, timeout: float = 3.0, *, skip_heartbeats: bool = True) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.receive(), timeout))
        if not (skip_heartbeats and frame["type"] == "heartbeat"):
            return frame


async def ask(ws: Any, frame: dict[str, Any] | str) -> dict[str, Any]:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return await recv(ws)


async def closed_with(ws: Any) -> tuple[int, list[dict[str, Any]]]:
    """Read until the server closes: the close code and the frames before it."""
    frames: list[dict[str, Any]] = []
    with pytest.raises(WebsocketDisconnectError) as info:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.receive(), 3.0)))
    return int(info.value.args[0]), frames


# -- ops and answers ---------------------------------------------------------------------------


async def test_ping_answers_pong_with_the_req_id(app: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        assert await ask(ws, {"op": "ping", "reqId": "r-1"}) == {"type": "pong", "reqId": "r-1"}
        assert await ask(ws, {"op": "ping", "reqId": 42}) == {"type": "pong", "reqId": 42}
        assert await ask(ws, {"op": "ping"}) == {"type": "pong"}


async def test_an_idle_connection_gets_heartbeats(app: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        started = time.monotonic()
        assert await recv(ws, skip_heartbeats=False) == {"type": "heartbeat"}
        assert time.monotonic() - started >= 0.25  # only after the idle interval (0.3 s)
        assert await recv(ws, skip_heartbeats=False) == {"type": "heartbeat"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('"ping"', "bad_frame"),
        ("null", "bad_frame"),
        ('{"op": NaN}', "bad_json"),
        ('{"op": "ping", "reqId": 1' + "0" * 30 + "}", "bad_json"),
        ("[" * 500 + "]" * 500, "bad_frame"),
        ("{}", "invalid_request"),
        ('{"op": 7}', "unknown_op"),
        ('{"op": "launch"}', "unknown_op"),
        ('{"op": "PING"}', "unknown_op"),
        ('{"op": "ping", "reqId": true}', "invalid_request"),
        ('{"op": "ping", "reqId": -1}', "invalid_request"),
        ('{"op": "ping", "reqId": "a\\u0000b"}', "invalid_request"),
        ('{"op": "ping", "reqId": "\\u202e"}', "invalid_request"),
        ('{"op": "auth"}', "invalid_request"),
        ('{"op": "auth", "token": "not-a-jwt"}', "invalid_token"),
        ('{"op": "subscribe"}', "invalid_params"),
        ('{"op": "subscribe", "channel": "nope"}', "unknown_channel"),
        ('{"op": "subscribe", "channel": "Markets\\n"}', "unknown_channel"),
        ('{"op": "subscribe", "channel": "markets", "pair": "HVO-USDC"}', "invalid_params"),
        ('{"op": "subscribe", "channel": "markets", "extra": 1}', "invalid_params"),
        (
            '{"op": "subscribe", "channel": "book", "pair": "HVO-USDC", "depth": 7}',
            "invalid_params",
        ),
        (
            '{"op": "subscribe", "channel": "book", "pair": "HVO-USDC", "depth": 10.0}',
            "invalid_params",
        ),
        ('{"op": "subscribe", "channel": "book", "pair": "hvo-usdc"}', "invalid_params"),
        ('{"op": "subscribe", "channel": "book"}', "invalid_params"),
        (
            '{"op": "subscribe", "channel": "candles", "pair": "HVO-USDC", "interval": "7m"}',
            "invalid_params",
        ),
        ('{"op": "unsubscribe", "channel": "markets"}', "not_subscribed"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_connection_goes_on(
    app: Any, frame: str, code: str
) -> None:
    async with app.test_client().websocket(WS) as ws:
        answer = await ask(ws, frame)
        assert answer["type"] == "error" and answer["code"] == code, answer
        assert isinstance(answer["message"], str) and answer["message"]
        assert await ask(ws, {"op": "ping", "reqId": 1}) == {"type": "pong", "reqId": 1}


async def test_error_frames_carry_the_req_id_and_never_echo_client_text(app: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        answer = await ask(ws, {"op": "launch\u202e\n", "reqId": "q-9"})
        assert answer == {
            "type": "error",
            "reqId": "q-9",
            "code": "unknown_op",
            "message": "op is not a known op",
        }
        answer = await ask(ws, {"op": "subscribe", "channel": "markets", "x\u202ey\n": 1})
        assert answer["code"] == "invalid_params"
        assert "\u202e" not in answer["message"] and "\n" not in answer["message"]
        assert "\\u202e" in answer["message"]  # named, escaped


async def test_binary_frames_are_refused(app: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        await ws.send(b'{"op": "ping"}')
        answer = await recv(ws)
        assert answer["code"] == "bad_frame"


async def test_client_text_reaches_no_log_unescaped(
    app: Any, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    evil = "x\n2026-01-01 CRITICAL forged\u202e\x1b[31m"
    async with app.test_client().websocket(WS) as ws:
        for frame in (
            {"op": evil},
            {"op": "subscribe", "channel": evil},
            {"op": "auth", "token": evil},
            {"op": "ping", "reqId": evil},
        ):
            assert (await ask(ws, frame))["type"] == "error"
        await ws.send(evil)
        assert (await recv(ws))["code"] == "bad_json"
    for record in caplog.records:
        text = record.getMessage()
        assert "forged" not in text and "\x1b" not in text and "\u202e" not in text


# -- auth and private channels -----------------------------------------------------------------


async def test_private_channels_and_order_ops_need_auth_first(app: Any, runtime: Runtime) -> None:
    async with app.test_client().websocket(WS) as ws:
        for channel in ("balances", "orders", "fills"):
            answer = await ask(ws, {"op": "subscribe", "channel": channel, "reqId": channel})
            assert answer["code"] == "auth_required" and answer["reqId"] == channel
        for op in ("order.submit", "order.cancel"):
            answer = await ask(ws, {"op": op, "reqId": 5})
            assert answer["code"] == "auth_required" and answer["reqId"] == 5
        answer = await ask(ws, {"op": "auth", "token": token(runtime, "u-1", "trader"), "reqId": 1})
        assert answer == {"type": "authenticated", "userId": "u-1", "reqId": 1}
        # past auth the order ops and private channels are live (tests/unit/ws/test_ws_trading.py)
        answer = await ask(ws, {"op": "order.cancel", "reqId": 6})
        assert answer["code"] == "invalid_params" and answer["reqId"] == 6
        for channel in ("orders", "fills"):
            answer = await ask(ws, {"op": "subscribe", "channel": channel})
            assert answer["type"] == "subscribed"
            assert (await recv(ws))["type"] == "snapshot"


async def test_auth_refuses_bad_and_expired_tokens_and_a_second_user(
    app: Any, runtime: Runtime
) -> None:
    now = int(time.time())
    expired = jwt.encode({"sub": "u-1", "roles": [], "exp": now - 60}, SECRET, "HS256")
    forged = jwt.encode({"sub": "u-1", "roles": [], "exp": now + 60}, "x" * 40, "HS256")
    async with app.test_client().websocket(WS) as ws:
        assert (await ask(ws, {"op": "auth", "token": expired}))["code"] == "token_expired"
        assert (await ask(ws, {"op": "auth", "token": forged}))["code"] == "invalid_token"
        assert (await ask(ws, {"op": "subscribe", "channel": "balances"}))["code"] == (
            "auth_required"
        )
        ok = await ask(ws, {"op": "auth", "token": token(runtime, "u-1", "trader")})
        assert ok["type"] == "authenticated"
        other = await ask(ws, {"op": "auth", "token": token(runtime, "u-2", "trader")})
        assert other["code"] == "already_authenticated"
        again = await ask(ws, {"op": "auth", "token": token(runtime, "u-1", "trader")})
        assert again["type"] == "authenticated"


async def _fund(runtime: Runtime, user: str, amount: int, key: str = "1") -> str:
    usdc = await runtime.container.token_use_cases().get("USDC")
    async with runtime.container.storage().unit_of_work() as uow:
        await uow.ledger.apply(
            mint(f"ws-test-{user}-{key}", datetime.now(UTC), AccountRef.user(user, usdc.id), amount)
        )
        await uow.commit()
    return usdc.id


def balance_event(user: str, seq: int, available: str) -> DomainEvent:
    return DomainEvent(
        type="balance.changed",
        aggregate_id=f"user:{user}",
        stream=f"user:{user}",
        seq=seq,
        actor_id="system",
        actor_type="system",
        occurred_at=datetime.now(UTC),
        metadata={"symbol": "USDC", "available": available},
    )


async def test_a_user_sees_only_their_own_balances(app: Any, runtime: Runtime) -> None:
    await _fund(runtime, "alice", 2_500_000)
    client = app.test_client()
    async with client.websocket(WS) as alice, client.websocket(WS) as bob:
        for ws, user in ((alice, "alice"), (bob, "bob")):
            assert (await ask(ws, {"op": "auth", "token": token(runtime, user, "trader")}))[
                "type"
            ] == "authenticated"
            sub = await ask(ws, {"op": "subscribe", "channel": "balances", "reqId": "b"})
            assert sub == {"type": "subscribed", "channel": "balances", "reqId": "b"}
        alice_snapshot = await recv(alice)
        assert alice_snapshot["type"] == "snapshot" and alice_snapshot["channel"] == "balances"
        [usdc] = alice_snapshot["balances"]
        assert usdc["symbol"] == "USDC" and usdc["available"] == "2.5" and usdc["locked"] == "0"
        assert (await recv(bob))["balances"] == []  # bob holds nothing: none of alice's
        # balance changes of both users, interleaved, and of a third user nobody here is
        bus = runtime.container.event_bus()
        await bus.publish(balance_event("bob", 1, "9"))  # a hint only: bob's ledger is unchanged
        await _fund(runtime, "alice", 100_000, key="2")
        await _fund(runtime, "carol", 7_000_000)
        await _fund(runtime, "alice", 200_000, key="3")
        got_alice = [await recv(alice)]  # reads coalesce: 2.6 may be skipped for 2.8
        while got_alice[-1]["balance"]["available"] != "2.8":
            got_alice.append(await recv(alice))
        assert all(m["type"] == "update" and m["channel"] == "balances" for m in got_alice)
        assert [m["balance"]["available"] for m in got_alice] in (["2.6", "2.8"], ["2.8"])
        assert [m["seq"] for m in got_alice] == list(
            range(got_alice[0]["seq"], got_alice[0]["seq"] + len(got_alice))
        )
        # nothing else is waiting for either (the next frame is a heartbeat)
        assert (await recv(alice, skip_heartbeats=False))["type"] == "heartbeat"
        assert (await recv(bob, skip_heartbeats=False))["type"] == "heartbeat"


async def test_an_expired_token_ends_private_subscriptions(app: Any, runtime: Runtime) -> None:
    short = jwt.encode(
        {"sub": "dave", "roles": ["trader"], "exp": int(time.time()) + 2}, SECRET, "HS256"
    )
    async with app.test_client().websocket(WS) as ws:
        assert (await ask(ws, {"op": "auth", "token": short}))["type"] == "authenticated"
        assert (await ask(ws, {"op": "subscribe", "channel": "balances"}))["type"] == "subscribed"
        assert (await recv(ws))["type"] == "snapshot"
        await asyncio.sleep(2.5)
        await runtime.container.event_bus().publish(balance_event("dave", 1, "1"))
        error = await recv(ws)
        assert error["code"] == "token_expired"
        assert await recv(ws) == {"type": "unsubscribed", "channel": "balances"}
        balances = runtime.container.ws_gateway().registry.get("balances")
        assert balances is not None and balances.watched_users == []  # type: ignore[attr-defined]
        assert (await ask(ws, {"op": "subscribe", "channel": "balances"}))["code"] == (
            "auth_required"
        )


# -- the markets channel -----------------------------------------------------------------------


async def test_markets_snapshot_then_lifecycle_updates_then_unsubscribe(
    app: Any, runtime: Runtime
) -> None:
    client = app.test_client()
    issuer = bearer(runtime, "iss-1", "issuer")
    first = await client.post(REGISTER, json=body(), headers=issuer)
    assert first.status_code == 201
    first_id = (await first.get_json())["data"]["market"]["id"]
    async with client.websocket(WS) as ws:
        assert await ask(ws, {"op": "subscribe", "channel": "markets", "reqId": 3}) == {
            "type": "subscribed",
            "channel": "markets",
            "reqId": 3,
        }
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and snapshot["complete"] is True
        assert [m["id"] for m in snapshot["markets"]] == [first_id]
        assert snapshot["markets"][0]["status"] == "pending_approval"
        second = await client.post(
            REGISTER, json=body(tokenSymbol="HVT", name="Second"), headers=issuer
        )
        second_id = (await second.get_json())["data"]["market"]["id"]
        updates = [await recv(ws), await recv(ws)]
        assert [(u["type"], u["channel"]) for u in updates] == [("update", "markets")] * 2
        assert [u["stream"] for u in updates] == [f"market:{second_id}"] * 2
        assert [u["seq"] for u in updates] == [1, 2]
        assert [u["event"]["eventType"] for u in updates] == [
            "market.registered",
            "market.approval_requested",
        ]
        assert updates[0]["event"]["marketId"] == second_id
        again = await ask(ws, {"op": "subscribe", "channel": "markets"})
        assert again["code"] == "already_subscribed"
        assert await ask(ws, {"op": "unsubscribe", "channel": "markets", "reqId": 4}) == {
            "type": "unsubscribed",
            "channel": "markets",
            "reqId": 4,
        }
        await client.post(REGISTER, json=body(tokenSymbol="HVX", name="Third"), headers=issuer)
        assert (await recv(ws, skip_heartbeats=False))["type"] == "heartbeat"


async def test_trading_channels_refuse_unknown_pairs_and_bad_params(app: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        for frame in (
            {"channel": "book", "pair": "HVO-USDC", "depth": 25},
            {"channel": "trades", "pair": "HVO-USDC"},
            {"channel": "ticker", "pair": "HVO-USDC"},
            {"channel": "candles", "pair": "HVO-USDC", "interval": "1h"},
        ):  # live channels: a pair that does not exist
            answer = await ask(ws, {"op": "subscribe", **frame})
            assert answer["code"] == "pair_not_found", frame
        for frame in (
            {"channel": "book", "pair": "HVO-USDC", "depth": 7},
            {"channel": "ticker"},
            {"channel": "candles", "pair": "HVO-USDC"},
            {"channel": "candles", "pair": "HVO-USDC", "interval": "1h", "depth": 10},
        ):
            answer = await ask(ws, {"op": "subscribe", **frame})
            assert answer["code"] == "invalid_params", frame


# -- protection --------------------------------------------------------------------------------


async def test_an_oversized_frame_closes_with_1009(app: Any, runtime: Runtime) -> None:
    gateway = runtime.container.ws_gateway()
    async with app.test_client().websocket(WS) as ws:
        assert await ask(ws, {"op": "ping"}) == {"type": "pong"}
        await ws.send(json.dumps({"op": "ping", "reqId": "x" * 2000}))
        code, frames = await closed_with(ws)
    assert code == 1009 and frames == []
    assert gateway.counters.oversized_closes == 1


async def test_a_flood_of_frames_closes_with_1008(app: Any, runtime: Runtime) -> None:
    gateway = runtime.container.ws_gateway()
    async with app.test_client().websocket(WS) as ws:
        for n in range(60):  # burst 20, 50/s
            await ws.send(json.dumps({"op": "ping", "reqId": n}))
        code, frames = await closed_with(ws)
    assert code == 1008
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "rate_limited"
    assert sum(f["type"] == "pong" for f in frames) < 60
    assert gateway.counters.rate_limited_closes == 1


async def test_connections_are_counted(app: Any, runtime: Runtime) -> None:
    gateway = runtime.container.ws_gateway()
    client = app.test_client()
    async with client.websocket(WS) as one, client.websocket(WS) as two:
        await ask(one, {"op": "ping"})
        await ask(two, {"op": "ping"})
        assert gateway.counters.connections_open == 2
    for _ in range(50):
        if gateway.counters.connections_open == 0:
            break
        await asyncio.sleep(0.02)
    counters = gateway.counters.as_dict()
    assert counters["connections_open"] == 0 and counters["connections_total"] == 2
    assert counters["messages_in"] == 2 and counters["messages_out"] >= 2
