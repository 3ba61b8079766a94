"""A hostile client against ``/api/v1/ws`` (DESIGN §6): every op and every field with
hand-picked nasty values and generated frames, as text and as binary frames. Each bad frame
gets an error frame with a code and a message (never ``internal_error``, never a traceback in
the log) and the connection goes on; a refused ``order.submit`` leaves no order, no lock and
nothing in the book."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bootstrap
from bootstrap import Runtime
from core.shared.text import text_problem
from settings import Settings
from tests.unit.conftest import SECRET
from tests.unit.trading_helpers import (
    ETH,
    USD,
    assert_no_trace,
    fund,
    make_pair,
)

WS = "/api/v1/ws"
OPS = ["auth", "subscribe", "unsubscribe", "order.submit", "order.cancel", "ping"]
NASTY: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**53,
    10**19,
    -(10**19),
    1.5,
    -0.0,
    1e300,
    "",
    " ",
    "\u200b",
    "\ud800",
    "a\udfff",
    "\x00",
    "\x1b[31m",
    "x\n",
    "\n",
    "\u202e",
    "\U0001f4a9",
    "1" * 1000,
    "10.00\n",
    "1e999",
    "NaN",
    "WETH-USDC\n",
    "weth-usdc",
    "../x",
    [],
    {},
    [1, [2, [3]]],
    {"op": "ping"},
]
ORDER = {
    "tradingPairId": "WETH-USDC",
    "side": "BUY",
    "type": "LIMIT",
    "price": "10.00",
    "quantity": "1.000",
}
ORDER_FIELDS = [*ORDER, "stopPrice", "quoteAmount", "timeInForce", "postOnly", "clientOrderId"]
FIELDS_OF = {
    "auth": ["token"],
    "subscribe": ["channel", "pair", "depth", "interval"],
    "unsubscribe": ["channel", "pair", "depth", "interval"],
    "order.submit": ORDER_FIELDS,
    "order.cancel": ["orderId", "clientOrderId"],
    "ping": [],
}


@pytest.fixture
def runtime() -> Runtime:
    settings = Settings(
        profile="test",
        jwt_secret=SECRET,
        deploy_backoff_seconds=0.01,
        ws_rate_per_second=100_000,
        ws_rate_burst=100_000,
        order_rate_limit=0,
    )
    return bootstrap.build(settings)


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[Any]:
    async with runtime.http_app().test_app() as test_app:
        yield test_app


@pytest.fixture
async def pair(app: Any, runtime: Runtime) -> dict[str, Any]:
    made = await make_pair(app.test_client(), runtime)
    await fund(runtime, "alice", made["baseTokenId"], 10 * ETH)
    await fund(runtime, "alice", made["quoteTokenId"], 100_000 * USD)
    return made


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.receive(), timeout))
        if frame["type"] != "heartbeat":
            return frame


async def ask(ws: Any, frame: Any) -> dict[str, Any]:
    await ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
    return await recv(ws)


def is_error(answer: dict[str, Any]) -> None:
    assert answer["type"] == "error", answer
    assert isinstance(answer["code"], str) and answer["code"] != "internal_error", answer
    assert isinstance(answer["message"], str) and answer["message"], answer
    assert text_problem(answer["message"]) is None, answer  # client text only escaped


async def still_alive(ws: Any) -> None:
    assert await ask(ws, {"op": "ping", "reqId": "alive"}) == {"type": "pong", "reqId": "alive"}


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def authed(ws: Any, runtime: Runtime, user: str = "alice") -> None:
    tok = runtime.container.token_issuer().issue(user, ["trader"])
    assert (await ask(ws, {"op": "auth", "token": tok}))["type"] == "authenticated"


RAW_FRAMES: list[str | bytes] = [
    "",
    " ",
    "\n",
    "null",
    "[]",
    "1",
    '"op"',
    "true",
    "{",
    "}",
    '{"op": "ping"',
    '{"op": "ping"} {"op": "ping"}',
    '{"op": NaN}',
    '{"op": "ping", "reqId": Infinity}',
    '{"op": "ping", "reqId": -Infinity}',
    '{"op": "ping", "reqId": 1' + "0" * 500 + "}",
    '{"op": "ping", "reqId": 1e999999999}',
    '{"op": "ping", "reqId": 0.' + "0" * 500 + "1}",
    '{"op": "ping", "reqId": 1.0}',
    '{"op": "ping", "reqId": -0}',
    "[" * 5000,
    '{"a":' * 300 + "1" + "}" * 300,
    '{"op": "\\ud800"}',
    '{"\\ud800": 1, "op": "ping"}',
    '{"op": "ping", "reqId": "\\udfff"}',
    '{"op": "ping", "op": "subscribe"}',
    '{"op": "subscribe", "channel": "book", "pair": "WETH-USDC", "pair": "\\u0000"}',
    '{"op": "ping"}\x00',
    '\ufeff{"op": "ping"}',
    "{'op': 'ping'}",
    "\ud800",
    '{"op": "ping", "reqId": "\ud800"}',
    b'{"op": "ping"}',
    b"\xff\xfe\x00",
    b"\xed\xa0\x80",
    json.dumps({"op": "order.submit", **ORDER}).encode(),
]


@pytest.mark.parametrize("raw", RAW_FRAMES, ids=range(len(RAW_FRAMES)))
async def test_raw_frames_get_an_error_frame(app: Any, raw: str | bytes, caplog: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        answer = await ask(ws, raw)
        if answer["type"] == "pong":  # JSON that is fine after all (e.g. reqId -0 is 0)
            assert answer.get("reqId") in (None, 0), (raw, answer)
        else:
            is_error(answer)
        await still_alive(ws)
    no_errors_logged(caplog)


@pytest.mark.parametrize("op", OPS)
async def test_every_field_of_every_op_refuses_nasty_values(
    app: Any, runtime: Runtime, pair: dict[str, Any], op: str, caplog: Any
) -> None:
    base: dict[str, Any] = {"op": op}
    if op in ("subscribe", "unsubscribe"):
        base.update(channel="book", pair="WETH-USDC", depth=10)
    elif op == "order.submit":
        base.update(ORDER)
    elif op == "order.cancel":
        base.update(orderId="nope")
    async with app.test_client().websocket(WS) as ws:
        if op != "auth":
            await authed(ws, runtime)
        for field in [*FIELDS_OF[op], "reqId", "op", "x"]:
            for value in NASTY:
                frame = {**base, field: value}
                if op == "order.cancel" and field == "clientOrderId":
                    frame.pop("orderId")
                answer = await ask(ws, frame)
                if answer["type"] != "error":
                    assert field in ("reqId", "x") or (op, field) in ACCEPTING or value is None, (
                        frame,
                        answer,
                    )
                    await settle(ws, frame, answer)
                else:
                    is_error(answer)
            await still_alive(ws)
    no_errors_logged(caplog)
    await assert_no_trace(app.test_client(), runtime, pair)


ACCEPTING = {
    ("subscribe", "depth"),
    ("unsubscribe", "depth"),
    ("subscribe", "interval"),
    ("unsubscribe", "interval"),
    ("order.submit", "clientOrderId"),
    ("order.submit", "tradingPairId"),
    ("order.submit", "postOnly"),
}


async def settle(ws: Any, frame: dict[str, Any], answer: dict[str, Any]) -> None:
    """Undo what an accepted frame did: unsubscribe, cancel an open order."""
    if answer["type"] == "subscribed":
        while (await recv(ws))["type"] != "snapshot":
            pass
        undone = await ask(ws, {**frame, "op": "unsubscribe"})
        assert undone["type"] == "unsubscribed", undone
    if answer["type"] == "ack" and answer["order"]["status"] in ("OPEN", "PENDING_TRIGGER"):
        cancelled = await ask(ws, {"op": "order.cancel", "orderId": answer["order"]["id"]})
        assert cancelled["type"] == "ack", cancelled


REQ_IDS: list[Any] = [
    0,
    2**53 - 1,
    "r-1",
    "x" * 64,
]
BAD_REQ_IDS: list[Any] = [
    -1,
    2**53,
    10**19,
    1.5,
    True,
    False,
    [],
    {},
    "",
    " ",
    "x" * 65,
    "\ud800",
    "\x00",
    "a\nb",
    "\u202e",
]


async def test_req_ids_of_every_type(app: Any, runtime: Runtime, caplog: Any) -> None:
    async with app.test_client().websocket(WS) as ws:
        for req_id in REQ_IDS:
            assert await ask(ws, {"op": "ping", "reqId": req_id}) == {
                "type": "pong",
                "reqId": req_id,
            }
        for op in OPS:
            for req_id in BAD_REQ_IDS:
                answer = await ask(ws, {"op": op, "reqId": req_id})
                is_error(answer)
                assert "reqId" not in answer, answer
        await still_alive(ws)
    no_errors_logged(caplog)


frame_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.text(max_size=20),
    st.sampled_from(["WETH-USDC", "book", "trades", "ticker", "candles", "1m", "10.00", "1.000"]),
    st.sampled_from(["BUY", "SELL", "LIMIT", "MARKET", "STOP_LIMIT", "GTC", "IOC", "FOK"]),
    st.lists(st.integers(), max_size=2),
)
frames = st.fixed_dictionaries(
    {"op": st.sampled_from(OPS)},
    optional={
        name: frame_values
        for name in {"reqId", "token", "channel", "pair", "depth", "interval", "orderId"}
        | set(ORDER_FIELDS)
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=frames, binary=st.booleans())
async def test_generated_frames_get_an_answer_and_leave_no_trace(
    app: Any, runtime: Runtime, pair: dict[str, Any], frame: dict[str, Any], binary: bool
) -> None:
    async with app.test_client().websocket(WS) as ws:
        await authed(ws, runtime)
        text = json.dumps(frame)
        answer = await ask(ws, text.encode() if binary else text)
        assert answer["type"] != "error" or answer["code"] != "internal_error", (frame, answer)
        if binary:
            assert answer["type"] == "error" and answer["code"] == "bad_frame"
        await settle(ws, frame, answer)
        await still_alive(ws)
    await assert_no_trace(app.test_client(), runtime, pair)


async def test_an_empty_binary_frame_is_refused_like_any_binary_frame(
    app: Any, caplog: Any
) -> None:
    """Hypercorn hands an empty binary frame to Quart as ``{"bytes": b"", "text": None}``,
    which Quart's receive turns into ``None`` (its test client cannot send that shape)."""
    async with app.test_client().websocket(WS) as ws:
        await ws._send_queue.put({"type": "websocket.receive", "bytes": b"", "text": None})
        answer = await recv(ws)
        assert answer["type"] == "error" and answer["code"] == "bad_frame", answer
        await still_alive(ws)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records


async def test_cancel_by_client_order_id_reads_it_as_submit_does(
    app: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    """The submit stores the NFC form of ``clientOrderId``; a cancel that sends the very same
    (decomposed) text finds the order."""
    decomposed = "cafe\u0301-1"
    async with app.test_client().websocket(WS) as ws:
        await authed(ws, runtime)
        placed = await ask(ws, {"op": "order.submit", **ORDER, "clientOrderId": decomposed})
        assert placed["type"] == "ack" and placed["order"]["clientOrderId"] == "caf\u00e9-1"
        for bad in ("\ud800", "x\n", "\u202e", " ", "x" * 65, 5, ["a"]):
            is_error(await ask(ws, {"op": "order.cancel", "clientOrderId": bad}))
        cancelled = await ask(ws, {"op": "order.cancel", "clientOrderId": decomposed})
        assert cancelled["type"] == "ack", cancelled
        assert cancelled["order"]["status"] == "CANCELLED"
    no_errors_logged(caplog)
    await assert_no_trace(app.test_client(), runtime, pair)


CHANNELS = {  # a good subscription of each channel
    "book": {"pair": "WETH-USDC", "depth": 25},
    "trades": {"pair": "WETH-USDC"},
    "ticker": {"pair": "WETH-USDC"},
    "candles": {"pair": "WETH-USDC", "interval": "1m"},
    "markets": {},
    "orders": {},
    "fills": {},
    "balances": {},
}


@pytest.mark.parametrize("channel", sorted(CHANNELS))
async def test_every_channel_refuses_nasty_parameters(
    app: Any, runtime: Runtime, pair: dict[str, Any], channel: str, caplog: Any
) -> None:
    good = {"op": "subscribe", "channel": channel, **CHANNELS[channel]}
    async with app.test_client().websocket(WS) as ws:
        await authed(ws, runtime)
        for field in ("pair", "depth", "interval"):
            for value in [*NASTY, "NOPE-USDC", "WETH-USDT", 5, 10, 25, 100, "1m", "1d", "2m"]:
                frame = {**good, field: value}
                answer = await ask(ws, frame)
                if answer["type"] == "error":
                    is_error(answer)
                    assert answer["code"] not in ("already_subscribed",), (frame, answer)
                else:  # the value is one the channel takes
                    assert answer["type"] == "subscribed", (frame, answer)
                    await settle(ws, frame, answer)
                unsubscribed = await ask(ws, {**frame, "op": "unsubscribe"})
                if unsubscribed["type"] == "error":
                    is_error(unsubscribed)
        answer = await ask(ws, good)
        assert answer["type"] == "subscribed", answer
        await settle(ws, good, answer)
        await still_alive(ws)
    no_errors_logged(caplog)


async def test_order_ids_and_pairs_of_order_ops_follow_the_text_rules(
    app: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    async with app.test_client().websocket(WS) as ws:
        await authed(ws, runtime)
        for value in ("\x00", "x\n", "\u202e", " ", "\u200b", "\ud800"):
            answer = await ask(ws, {"op": "order.cancel", "orderId": value})
            assert answer["code"] == "invalid_params", answer
            answer = await ask(ws, {"op": "order.submit", **ORDER, "tradingPairId": value})
            assert answer["code"] == "validation_failed", answer
            assert "tradingPairId" in answer["message"]
    no_errors_logged(caplog)
    await assert_no_trace(app.test_client(), runtime, pair)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    raw=st.one_of(
        st.text(max_size=60),
        st.binary(min_size=1, max_size=60),  # b"": Quart's test client cannot send it (above)
        json_values.map(json.dumps),
        st.dictionaries(st.sampled_from(["op", "reqId", "channel"]), json_values).map(json.dumps),
    )
)
async def test_generated_raw_frames_never_break_the_connection(
    app: Any, raw: str | bytes, caplog: Any
) -> None:
    async with app.test_client().websocket(WS) as ws:
        answer = await ask(ws, raw)
        assert answer["type"] != "error" or answer["code"] != "internal_error", (raw, answer)
        if answer["type"] == "subscribed":
            await recv(ws)  # its snapshot
        await still_alive(ws)
    no_errors_logged(caplog)


async def test_unknown_order_fields_are_named_escaped(app: Any, runtime: Runtime) -> None:
    async with app.test_client().websocket(WS) as ws:
        await authed(ws, runtime)
        answer = await ask(ws, {"op": "order.submit", **ORDER, "\u202eevil\n\x1b[31m": 1})
        assert answer == {
            "type": "error",
            "code": "validation_failed",
            "message": "invalid order fields: \\u202eevil\\u000a\\u001b[31m",
        }
