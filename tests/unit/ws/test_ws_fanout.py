"""Fan-out without Quart: one encoding per message shared by every subscriber, per-connection
seq and conflation on a real ``book`` channel (a consumer behind gets merged deltas that give
the exact book), a slow consumer closed with 1008 while many others get everything, the
heartbeat timer, and permessage-deflate declined in hypercorn's handshake."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from hypercorn.protocol import ws_stream

from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.ws.channels import ChannelRegistry
from adapters.inbound.ws.compression import (
    DeclinedPerMessageDeflate,
    decline_permessage_deflate,
    permessage_deflate_declined,
)
from adapters.inbound.ws.gateway import Connection, Gateway, WsLimits
from adapters.inbound.ws.protocol import SubscribeRequest
from adapters.inbound.ws.trading import BookChannel
from adapters.outbound.events.memory import MemoryEventBus
from core.shared.events import Actor, DomainEvent
from core.trading.service import TradingService
from tests.unit.conftest import SECRET
from tests.unit.ws.test_ws_gateway import Everything, event, until

PAIR = "AB-CD"
BOOK = {"op": "subscribe", "channel": "book", "pair": PAIR, "depth": 10}


class RawClient:
    """Keeps the very ``str`` objects the gateway sends; ``blocked`` makes sends wait."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.texts: list[str] = []
        self.unblock = asyncio.Event()
        if not blocked:
            self.unblock.set()

    async def send(self, text: str) -> None:
        await self.unblock.wait()
        self.texts.append(text)

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.texts]


class StubBook(BookChannel):
    """The real ``book`` channel (its updates, key and merge) over a fixed snapshot at seq 0
    and the stream ``pair:1``."""

    def __init__(self) -> None:
        super().__init__(cast(TradingService, None))

    async def resolve_topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        return "pair:1"

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        return {"type": "snapshot", "channel": "book", "seq": 0, "bids": [], "asks": []}


def book_event(seq: int, changes: list[tuple[str, str, str]]) -> DomainEvent:
    return DomainEvent(
        type="book.changed",
        aggregate_id="1",
        stream="pair:1",
        seq=seq,
        actor_id="system",
        actor_type="system",
        occurred_at=datetime.now(UTC),
        metadata={"seq": seq, "changes": [list(c) for c in changes], "checksum": seq},
    )


async def started(gateway: Gateway) -> Gateway:
    await gateway.start()
    await asyncio.wait_for(gateway.ready.wait(), 3)
    return gateway


async def join(
    gateway: Gateway, client: RawClient, frame: Mapping[str, Any]
) -> tuple[Connection, asyncio.Task[None]]:
    conn = gateway.open(client.send)
    sender = asyncio.create_task(conn.run_sender())
    await conn.receive(json.dumps(frame))
    return conn, sender


async def leave(gateway: Gateway, conns: list[tuple[Connection, asyncio.Task[None]]]) -> None:
    for conn, sender in conns:
        sender.cancel()
        await gateway.close(conn)
    await gateway.stop()


async def test_every_subscriber_gets_the_same_text_encoded_once() -> None:
    bus = MemoryEventBus()
    gateway = await started(
        Gateway(bus, ChannelRegistry([Everything()]), TokenIssuer(SECRET), WsLimits())
    )
    clients = [RawClient() for _ in range(20)]
    conns = [await join(gateway, c, {"op": "subscribe", "channel": "everything"}) for c in clients]
    for seq in range(1, 31):
        await bus.publish(event(seq))
    await until(lambda: all(len(c.texts) == 32 for c in clients))
    for n in range(2, 32):  # after "subscribed" and the snapshot, each update
        texts = [c.texts[n] for c in clients]
        assert len({id(t) for t in texts}) == 1  # one str object: encoded once for all
        assert json.loads(texts[0]) == {"type": "update", "stream": "test:1", "seq": n - 1}
    await leave(gateway, conns)


def apply(book: dict[str, dict[str, str]], frame: Mapping[str, Any]) -> None:
    for side in ("bids", "asks"):
        for price, size in frame[side]:
            if size == "0":
                book[side].pop(price, None)
            else:
                book[side][price] = size


async def test_a_consumer_behind_gets_merged_book_deltas_that_give_the_exact_book() -> None:
    bus = MemoryEventBus(queue_size=10_000)
    gateway = await started(
        Gateway(bus, ChannelRegistry([StubBook()]), TokenIssuer(SECRET), WsLimits(send_queue=8))
    )
    behind, fast = RawClient(blocked=True), RawClient()
    conns = [await join(gateway, behind, BOOK), await join(gateway, fast, BOOK)]
    await until(lambda: len(fast.texts) == 2)
    rng = random.Random(7)
    expected: dict[str, dict[str, str]] = {"bids": {}, "asks": {}}
    for seq in range(1, 301):
        changes = [
            (
                rng.choice(["BUY", "SELL"]),
                f"{rng.randint(90, 110)}.00",
                rng.choice(["0", "1.5", "2", "3.25"]),
            )
            for _ in range(rng.randint(1, 3))
        ]
        for side, price, size in changes:
            levels = expected["bids" if side == "BUY" else "asks"]
            if size == "0":
                levels.pop(price, None)
            else:
                levels[price] = size
        await bus.publish(book_event(seq, changes))
        if seq % 4 == 0:  # the fast one's sender keeps up (its queue holds 8)
            await asyncio.sleep(0)
    await until(lambda: fast.frames[-1].get("seq") == 300)
    behind.unblock.set()
    await until(lambda: bool(behind.texts) and json.loads(behind.texts[-1]).get("seq") == 300)
    for client, conflated in ((fast, False), (behind, True)):
        book: dict[str, dict[str, str]] = {"bids": {}, "asks": {}}
        last = 0
        merged = 0
        for frame in client.frames[1:]:  # after "subscribed"
            if frame["type"] == "snapshot":
                last = frame["seq"]
                continue
            assert frame.get("fromSeq", frame["seq"]) == last + 1  # no gap for the client
            merged += "fromSeq" in frame
            last = frame["seq"]
            apply(book, frame)
        assert book == expected
        assert (merged > 0) == conflated
    assert conns[0][0].close_request is None  # book updates conflate: never a slow consumer
    assert conns[0][0].queue.conflated > 0
    # what the fast one got is the shared text; the merged ones are the slow one's own
    assert all(t in fast.texts for t in behind.texts if '"fromSeq"' not in t)
    await leave(gateway, conns)


async def test_a_slow_consumer_is_closed_with_1008_and_a_hundred_others_get_everything() -> None:
    bus = MemoryEventBus(queue_size=10_000)
    gateway = await started(
        Gateway(
            bus,
            ChannelRegistry([Everything()]),
            TokenIssuer(SECRET),
            WsLimits(send_queue=16, heartbeat_seconds=30),
        )
    )
    slow = RawClient(blocked=True)
    fast = [RawClient() for _ in range(100)]
    subscribe = {"op": "subscribe", "channel": "everything"}
    conns = [await join(gateway, slow, subscribe)]
    conns += [await join(gateway, c, subscribe) for c in fast]
    for seq in range(1, 101):
        await bus.publish(event(seq))
        if seq % 5 == 0:
            await asyncio.sleep(0)
    await until(lambda: all(len(c.texts) == 102 for c in fast))
    assert all(c.texts[2:] == fast[0].texts[2:] for c in fast)  # snapshots are numbered
    assert [f["seq"] for f in fast[0].frames[2:]] == list(range(1, 101))
    slow_conn = conns[0][0]
    assert slow_conn.close_request is not None
    assert slow_conn.close_request[:2] == (1008, "slow_consumer")
    assert gateway.counters.slow_consumer_closes == 1
    assert all(conn.close_request is None for conn, _ in conns[1:])
    await leave(gateway, conns)


async def test_heartbeats_come_after_silence_only() -> None:
    bus = MemoryEventBus()
    gateway = await started(
        Gateway(
            bus,
            ChannelRegistry([Everything()]),
            TokenIssuer(SECRET),
            WsLimits(heartbeat_seconds=0.2),
        )
    )
    client = RawClient()
    conns = [await join(gateway, client, {"op": "subscribe", "channel": "everything"})]
    for seq in range(1, 9):  # traffic every 0.05 s: no heartbeat meanwhile
        await bus.publish(event(seq))
        await asyncio.sleep(0.05)
    assert "heartbeat" not in [f["type"] for f in client.frames]
    await until(lambda: client.frames[-1]["type"] == "heartbeat")
    await until(lambda: [f["type"] for f in client.frames].count("heartbeat") == 2)
    assert gateway.counters.messages_out == len(client.texts)
    await leave(gateway, conns)


def test_hypercorn_declines_permessage_deflate_once_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws_stream, "PerMessageDeflate", ws_stream.PerMessageDeflate)
    offer = [
        (b"host", b"127.0.0.1"),
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
    ]

    def extensions() -> list[bytes]:
        _, headers, _ = ws_stream.Handshake(offer, "1.1").accept(None, [])
        return [v for k, v in headers if k == b"sec-websocket-extensions"]

    assert extensions() and extensions()[0].startswith(b"permessage-deflate")  # hypercorn's
    decline_permessage_deflate()
    assert permessage_deflate_declined()
    assert ws_stream.PerMessageDeflate is DeclinedPerMessageDeflate
    assert extensions() == []
