"""The gateway without Quart: the send queue's conflation, a slow consumer that is closed
without delaying the others, a bus overflow answered with a gap notice and a fresh snapshot,
and the token bucket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.ws.channels import Channel, ChannelRegistry
from adapters.inbound.ws.gateway import Connection, Gateway, WsLimits
from adapters.inbound.ws.protocol import ClientError, SubscribeRequest, decode_frame
from adapters.inbound.ws.rate import TokenBucket
from adapters.inbound.ws.send_queue import Outgoing, SendQueue
from adapters.outbound.events.memory import MemoryEventBus
from core.shared.events import Actor, DomainEvent
from tests.unit.conftest import SECRET


def merge_levels(older: Mapping[str, Any], newer: Mapping[str, Any]) -> Mapping[str, Any]:
    """A book-style merge: the newer size of a level wins, the newest seq is kept."""
    return {**newer, "levels": {**older["levels"], **newer["levels"]}}


def book(seq: int, **levels: str) -> Outgoing:
    return Outgoing({"seq": seq, "levels": levels}, key=("book", "X-Y"), merge=merge_levels)


def test_a_send_queue_conflates_only_when_full_and_only_by_key() -> None:
    queue = SendQueue(3)
    assert queue.offer(book(1, a="1"))
    assert queue.offer(Outgoing({"n": 1}))
    assert queue.offer(book(2, b="2"))  # room left: queued as it is, no merge
    assert queue.offer(book(3, a="0", c="3"))  # full: merged into the waiting book(2)
    assert not queue.offer(Outgoing({"n": 2}))  # full, no key: does not fit
    assert not queue.offer(Outgoing({"n": 3}, key="ticker"))  # full, key not waiting
    assert queue.conflated == 1
    sent = [queue.pop() for _ in range(3)]
    assert [m.payload for m in sent if m is not None] == [
        {"seq": 1, "levels": {"a": "1"}},
        {"n": 1},
        {"seq": 3, "levels": {"b": "2", "a": "0", "c": "3"}},
    ]
    assert queue.pop() is None
    # the key of a sent message no longer conflates
    for n in range(3):
        assert queue.offer(Outgoing({"n": n}))
    assert not queue.offer(book(4, d="4"))


def test_a_send_queue_hands_out_frames_by_the_write() -> None:
    queue = SendQueue(5)
    heartbeat = Outgoing({"type": "heartbeat"})
    messages = [book(1, a="1"), Outgoing({"n": "x" * 100}), heartbeat, book(2, b="2")]
    for message in messages:
        assert queue.offer(message)
    # the first reaches the size with the second
    data, count, skipped = queue.take_frames(len(messages[0].frame) + 1, heartbeat)
    assert (data, count, skipped) == (messages[0].frame + messages[1].frame, 2, 0)
    assert queue.take_frames(1, heartbeat) == (heartbeat.frame, 1, 1)  # at least one
    assert queue.take_frames(10_000, heartbeat) == (messages[3].frame, 1, 0)
    assert queue.take_frames(10_000, heartbeat) == (b"", 0, 0)
    # what was taken no longer conflates: the queue, full again, refuses a book
    for n in range(5):
        assert queue.offer(Outgoing({"n": n}))
    assert not queue.offer(book(3, c="3"))


def test_a_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 3, now=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_deep_json_is_refused_not_a_crash() -> None:
    # nesting this deep overflows the C stack once py-evm has raised the recursion limit
    with pytest.raises(ClientError) as info:
        decode_frame("[" * 100_000 + "]" * 100_000)
    assert info.value.code == "bad_frame"
    assert decode_frame('{"op": "ping", "a": ' + "[" * 200 + "]" * 200 + "}")["op"] == "ping"


class Everything(Channel):
    """A test channel over every ``test:*`` stream, with a snapshot counter."""

    name = "everything"

    def __init__(self) -> None:
        self.snapshots = 0

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        return "test:*"

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        self.snapshots += 1
        return {"type": "snapshot", "channel": self.name, "n": self.snapshots}

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        return Outgoing({"type": "update", "stream": event.stream, "seq": event.seq})


def event(seq: int, stream: str = "test:1") -> DomainEvent:
    return DomainEvent(
        type="test.happened",
        aggregate_id=stream,
        stream=stream,
        seq=seq,
        actor_id="system",
        actor_type="system",
        occurred_at=datetime.now(UTC),
    )


class Client:
    """What a connection sends to; ``blocked`` makes every send wait (a client that stopped
    reading, whose TCP window is full)."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.frames: list[dict[str, Any]] = []
        self.unblock = asyncio.Event()
        if not blocked:
            self.unblock.set()

    async def send(self, text: str) -> None:
        await self.unblock.wait()
        self.frames.append(json.loads(text))


async def connect(gateway: Gateway, client: Client) -> tuple[Connection, asyncio.Task[None]]:
    conn = gateway.open(client.send)
    sender = asyncio.create_task(conn.run_sender())
    await conn.receive(json.dumps({"op": "subscribe", "channel": "everything"}))
    return conn, sender


async def until(condition: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - polls plain state, no event to wait on
            await asyncio.sleep(0.005)


async def test_a_slow_consumer_is_closed_and_the_others_get_everything() -> None:
    bus = MemoryEventBus()
    gateway = Gateway(
        bus,
        ChannelRegistry([Everything()]),
        TokenIssuer(SECRET),
        WsLimits(send_queue=16, heartbeat_seconds=30),
    )
    await gateway.start()
    await asyncio.wait_for(gateway.ready.wait(), 3)
    slow = Client(blocked=True)
    fast = [Client() for _ in range(3)]
    slow_conn, slow_sender = await connect(gateway, slow)
    fast_conns = [await connect(gateway, c) for c in fast]
    for seq in range(1, 201):
        await bus.publish(event(seq))
        if seq % 10 == 0:
            await asyncio.sleep(0)  # let the pump and the senders run
    await until(lambda: all(len(c.frames) >= 202 for c in fast))
    for client in fast:
        assert [f["type"] for f in client.frames[:2]] == ["subscribed", "snapshot"]
        assert [f["seq"] for f in client.frames[2:]] == list(range(1, 201))
    assert slow_conn.close_request is not None
    code, reason, frame = slow_conn.close_request
    assert (code, reason) == (1008, "slow_consumer")
    assert frame is not None and frame["code"] == "slow_consumer"
    assert gateway.counters.slow_consumer_closes == 1
    assert all(conn.close_request is None for conn, _ in fast_conns)
    slow_sender.cancel()
    for conn, sender in [(slow_conn, slow_sender), *fast_conns]:
        sender.cancel()
        await gateway.close(conn)
    assert gateway.counters.connections_open == 0
    await gateway.stop()


async def test_a_bus_overflow_gives_a_gap_notice_and_a_fresh_snapshot() -> None:
    bus = MemoryEventBus(queue_size=4)
    channel = Everything()
    gateway = Gateway(
        bus, ChannelRegistry([channel]), TokenIssuer(SECRET), WsLimits(heartbeat_seconds=30)
    )
    await gateway.start()
    await asyncio.wait_for(gateway.ready.wait(), 3)
    client = Client()
    conn, sender = await connect(gateway, client)
    await until(lambda: len(client.frames) == 2)
    for seq in range(1, 11):  # published faster than the pump runs: the queue overflows
        await bus.publish(event(seq))
    await until(lambda: any(f["type"] == "snapshot" and f["n"] == 2 for f in client.frames))
    await asyncio.sleep(0.05)
    types = [f["type"] for f in client.frames]
    assert types[:2] == ["subscribed", "snapshot"]
    gap = types.index("gap")
    assert client.frames[gap]["channel"] == "everything" and client.frames[gap]["dropped"] > 0
    assert types[gap + 1] == "snapshot" and client.frames[gap + 1]["n"] == 2
    # what fitted in the bus queue came before the gap; 5 to 10 were dropped there
    assert [f["seq"] for f in client.frames[2:gap]] == [1, 2, 3, 4]
    assert len(client.frames) == gap + 2
    await bus.publish(event(11))  # after the fresh snapshot, updates go on
    await until(lambda: len(client.frames) == gap + 3)
    assert client.frames[-1] == {"type": "update", "stream": "test:1", "seq": 11}
    assert gateway.counters.bus_gaps == 1
    sender.cancel()
    await gateway.close(conn)
    await gateway.stop()
