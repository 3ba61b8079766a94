"""``/api/v1/ws`` on a real ``rwa-market serve`` (hypercorn, embedded profile) with real
WebSocket clients (the ``websockets`` package): ops and answers, market lifecycle events from
real HTTP registrations, private channels per user, the frame size limit, and a client that
stops reading while the others keep their latency. Every test runs twice: with frames written
below ASGI (the default, ``ws/raw_write.py``) and with ``RWA_WS_RAW_WRITES=false`` (one ASGI
``websocket.send`` per frame)."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.api import bearer, market_body
from tests.e2e.server import API, RwaServer, start_server

SEND_QUEUE = 32


@pytest.fixture(scope="module", params=["raw writes", "ASGI sends"])
def ws_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RwaServer]:
    server = start_server(
        Path(tmp_path_factory.mktemp("rwa-ws")),
        env={
            "RWA_WS_RAW_WRITES": "true" if request.param == "raw writes" else "false",
            "RWA_WS_SEND_QUEUE": str(SEND_QUEUE),
            "RWA_WS_MAX_MESSAGE_BYTES": "4096",
            "RWA_WS_RATE_PER_SECOND": "1000",
            "RWA_WS_RATE_BURST": "1000",
            "RWA_WS_HEARTBEAT_SECONDS": "1",
            "RWA_HTTP_RATE_LIMIT": "0",
        },
    )
    try:
        yield server
    finally:
        server.stop()


def ws_url(server: RwaServer) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/ws"


@pytest.fixture
async def http(ws_server: RwaServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ws_server.base_url, timeout=30) as client:
        yield client


async def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] != "heartbeat":
            return frame


async def ask(ws: ClientConnection, frame: dict[str, Any] | str) -> dict[str, Any]:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return await recv(ws)


async def register(http: httpx.AsyncClient, server: RwaServer) -> str:
    token = server.token("issuer-ws", "issuer")
    response = await http.post(f"{API}/register", json=market_body(), headers=bearer(token))
    assert response.status_code == 201, response.text
    market_id: str = response.json()["data"]["market"]["id"]
    return market_id


def sending_path(server: RwaServer) -> str:
    """How the server says it sends to its connections: ``raw writes`` or ``ASGI sends``."""
    paths = {"raw writes", "ASGI sends"}
    found = {path for path in paths if f"open, {path})" in server.log_text()}
    assert len(found) == 1, server.log_tail()
    return found.pop()


async def test_ops_answers_and_bad_input_over_a_real_connection(
    ws_server: RwaServer, request: pytest.FixtureRequest
) -> None:
    async with connect(ws_url(ws_server)) as ws:
        assert await ask(ws, {"op": "ping", "reqId": "a"}) == {"type": "pong", "reqId": "a"}
        assert sending_path(ws_server) == request.node.callspec.params["ws_server"]
        for frame, code in (
            ("{oops", "bad_json"),
            ("[]", "bad_frame"),
            ({"op": "warp"}, "unknown_op"),
            ({"op": "subscribe", "channel": "balances"}, "auth_required"),
            ({"op": "subscribe", "channel": "book", "pair": "HVO-USDC"}, "pair_not_found"),
            ({"op": "subscribe", "channel": "ticker"}, "invalid_params"),
            ({"op": "subscribe", "channel": "ticker", "pair": "HVO-USDC"}, "pair_not_found"),
            (
                {"op": "subscribe", "channel": "book", "pair": "HVO-USDC", "depth": 5},
                "invalid_params",
            ),
            ({"op": "order.submit", "reqId": 1}, "auth_required"),
        ):
            answer = await ask(ws, frame)
            assert answer["type"] == "error" and answer["code"] == code, (frame, answer)
        await ws.send(b"\x00\x01")
        assert (await recv(ws))["code"] == "bad_frame"
        # idle: a heartbeat within the interval (1 s here)
        started = time.monotonic()
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame == {"type": "heartbeat"} and time.monotonic() - started < 3
        assert await ask(ws, {"op": "ping", "reqId": 2}) == {"type": "pong", "reqId": 2}


async def test_permessage_deflate_is_declined(ws_server: RwaServer) -> None:
    """The client offers it (``websockets`` does by default); the server answers without it
    (RWA_WS_COMPRESSION is off), and frames flow uncompressed."""
    async with connect(ws_url(ws_server)) as ws:
        offered = ws.request.headers.get("Sec-WebSocket-Extensions") if ws.request else None
        assert offered is not None and "permessage-deflate" in offered
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert ws.protocol.extensions == []
        assert await ask(ws, {"op": "ping", "reqId": 1}) == {"type": "pong", "reqId": 1}


async def test_a_frame_over_the_limit_closes_with_1009(ws_server: RwaServer) -> None:
    async with connect(ws_url(ws_server)) as ws:
        await ws.send(json.dumps({"op": "ping", "reqId": "x" * 5000}))
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_markets_channel_streams_lifecycle_events_of_real_registrations(
    ws_server: RwaServer, http: httpx.AsyncClient
) -> None:
    existing = await register(http, ws_server)
    async with connect(ws_url(ws_server)) as ws:
        assert (await ask(ws, {"op": "subscribe", "channel": "markets", "reqId": 1}))[
            "type"
        ] == "subscribed"
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot"
        assert existing in [m["id"] for m in snapshot["markets"]]
        new = await register(http, ws_server)
        updates = [await recv(ws), await recv(ws)]
        assert [(u["stream"], u["seq"]) for u in updates] == [
            (f"market:{new}", 1),
            (f"market:{new}", 2),
        ]
        assert [u["event"]["eventType"] for u in updates] == [
            "market.registered",
            "market.approval_requested",
        ]


async def test_private_channels_are_per_user(ws_server: RwaServer) -> None:
    async with connect(ws_url(ws_server)) as alice, connect(ws_url(ws_server)) as bob:
        for ws, user in ((alice, "ws-alice"), (bob, "ws-bob")):
            token = ws_server.token(user, "trader")
            assert await ask(ws, {"op": "auth", "token": token}) == {
                "type": "authenticated",
                "userId": user,
            }
            assert (await ask(ws, {"op": "subscribe", "channel": "balances"}))["type"] == (
                "subscribed"
            )
            assert (await recv(ws))["balances"] == []
        # one connection is one user: bob's token on alice's connection is refused
        other = await ask(alice, {"op": "auth", "token": ws_server.token("ws-bob", "trader")})
        assert other["code"] == "already_authenticated"
        for ws in (alice, bob):
            # order entry is live (tests/e2e/test_websocket_trading.py): a cancel naming no order
            assert (await ask(ws, {"op": "order.cancel", "reqId": 9}))["code"] == "invalid_params"


def small_socket(port: int) -> socket.socket:
    """A client socket with a small receive buffer, so a client that stops reading fills its
    TCP window quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


UPDATES: dict[int, list[dict[str, Any]]] = {}  # the updates each fast client received


async def measure_pings(ws: ClientConnection, stop: asyncio.Event, rtts: list[float]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        started = time.perf_counter()
        await ws.send(json.dumps({"op": "ping", "reqId": n}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame.get("type") == "pong" and frame.get("reqId") == n:
                break
            if frame.get("type") == "update":
                UPDATES.setdefault(id(ws), []).append(frame)
        rtts.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def test_a_client_that_stops_reading_is_closed_and_never_delays_the_others(
    ws_server: RwaServer, http: httpx.AsyncClient
) -> None:
    for _ in range(20):  # snapshots of about 20 markets: large frames
        await register(http, ws_server)
    fast = [await connect(ws_url(ws_server)).__aenter__() for _ in range(3)]
    try:
        for ws in fast:
            await ask(ws, {"op": "subscribe", "channel": "markets"})
            assert (await recv(ws))["type"] == "snapshot"
        # the baseline: ping round trips with nobody misbehaving
        baseline: list[float] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(measure_pings(ws, stop, baseline)) for ws in fast]
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*tasks)
        # the slow client: subscribes, then keeps asking for snapshots and never reads
        slow = await connect(
            ws_url(ws_server), sock=small_socket(ws_server.port), max_queue=1
        ).__aenter__()
        during: list[float] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(measure_pings(ws, stop, during)) for ws in fast]
        # until the server gives up on it: its kernel buffers (megabytes on loopback) fill
        # first, then its bounded send queue
        sent = 0
        while "slow consumer" not in ws_server.log_text() and sent < 3000:
            try:  # once the server has closed it, it reads no more: the send would wait forever
                async with asyncio.timeout(2):
                    await slow.send(json.dumps({"op": "subscribe", "channel": "markets"}))
                    await slow.send(json.dumps({"op": "unsubscribe", "channel": "markets"}))
            except (TimeoutError, ConnectionClosed):
                break
            sent += 1
            if sent % 50 == 0:
                await register(http, ws_server)  # lifecycle events for everybody
            await asyncio.sleep(0.005)
        assert "slow consumer" in ws_server.log_text(), sent
        # the slow client, reading at last (soon: hypercorn drops a connection whose app has
        # ended after its keep-alive timeout, close frame unread or not): its backlog, the
        # slow_consumer error, a 1008 close
        frames: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                frames.append(json.loads(await asyncio.wait_for(slow.recv(), 10)))
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008, info.value
        assert frames[-1] == {
            "type": "error",
            "code": "slow_consumer",
            "message": frames[-1]["message"],
        }
        assert len(frames) < sent * 3  # it did not get everything it asked for
        registered_during = [await register(http, ws_server) for _ in range(3)]
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks)
        # the others kept their latency and got every lifecycle event
        assert len(during) > 50
        assert p99(during) < max(0.25, 5 * p99(baseline)), (p99(baseline), p99(during))
        for ws in fast:
            streams = {u["stream"] for u in UPDATES.get(id(ws), [])}
            assert {f"market:{m}" for m in registered_during} <= streams
        # the others are still connected and answer
        for ws in fast:
            assert (await ask(ws, {"op": "ping", "reqId": "end"}))["type"] in {"pong", "update"}
    finally:
        for ws in fast:
            await ws.close()


async def test_sigterm_closes_open_websockets_with_1001_at_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start_server(Path(tmp_path_factory.mktemp("rwa-ws-stop")))
    try:
        async with connect(ws_url(server)) as ws:
            assert (await ask(ws, {"op": "subscribe", "channel": "markets"}))["type"] == (
                "subscribed"
            )
            started = time.monotonic()
            assert await asyncio.to_thread(server.stop) == 0
            # well within hypercorn's 10 s grace period, which would wait on the socket
            assert time.monotonic() - started < 8
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    finally:
        server.stop()
