"""Frames written below ASGI (``ws/raw_write.py``): the frame bytes equal wsproto's; the pinned
hypercorn and wsproto internals it relies on (a changed one fails here, loudly); the sender's
batches (order, size, the fallback to ASGI, a blocked write that ends as a slow consumer); and
both paths against hypercorn on loopback with real clients: raw writes with compression
declined, ASGI sends with the setting off or with permessage-deflate negotiated, and a client
that stops reading, closed with 1008 while the others get everything."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import inspect
import json
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from importlib import metadata
from typing import Any

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.protocol import ws_stream
from quart import Quart
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from wsproto.connection import Connection as WsprotoConnection
from wsproto.connection import ConnectionType
from wsproto.events import TextMessage

from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.ws import raw_write
from adapters.inbound.ws.channels import Channel, ChannelRegistry
from adapters.inbound.ws.compression import DeclinedPerMessageDeflate
from adapters.inbound.ws.gateway import RAW_WRITE_BYTES, Connection, Gateway, WsLimits
from adapters.inbound.ws.protocol import SubscribeRequest
from adapters.inbound.ws.route import install_ws
from adapters.inbound.ws.send_queue import Outgoing, text_frame
from adapters.outbound.events.memory import MemoryEventBus
from core.shared.events import Actor, DomainEvent
from tests.harness.common import free_port
from tests.unit.conftest import SECRET
from tests.unit.ws.test_ws_gateway import event, until

# -- the frame -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_a_text_frame_is_the_frame_wsproto_makes(size: int) -> None:
    for text in ("x" * size, ("é" * size)[: max(0, size // 2)]):
        wsproto = WsprotoConnection(ConnectionType.SERVER)
        assert text_frame(text) == wsproto.send(TextMessage(data=text))


def test_an_outgoing_frames_its_text_once() -> None:
    message = Outgoing({"type": "update", "seq": 1})
    assert message.frame is message.frame
    assert message.frame == text_frame(message.text)


# -- the pinned internals --------------------------------------------------------------------

# sha256 (first 16 hex digits) of the source of everything raw_write.py relies on
FINGERPRINTS = {
    "hypercorn.protocol.ws_stream:WSStream.app_send": "a6dd1160bfc416e7",
    "hypercorn.protocol.ws_stream:WSStream._send_wsproto_event": "3a4df3f0d2dfd314",
    "hypercorn.protocol.ws_stream:WSStream._accept": "144623ad2e13fc56",
    "hypercorn.protocol.ws_stream:WSStream.handle": "743209f49012b8c7",
    "hypercorn.protocol.ws_stream:Handshake.accept": "e163533bf7919793",
    "hypercorn.protocol.h11:H11Protocol.stream_send": "56a36254a368d71a",
    "hypercorn.protocol.h11:H11Protocol._create_stream": "a2338a57ab343908",
    "hypercorn.asyncio.tcp_server:TCPServer.protocol_send": "06144915fc094c1b",
    "hypercorn.asyncio.tcp_server:TCPServer.run": "9437d01a916d887b",
    "hypercorn.asyncio.tcp_server:TCPServer.__init__": "95a6f196b96bfa92",
    "hypercorn.asyncio.task_group:TaskGroup.spawn_app": "6606faaadfc368e3",
    "wsproto.connection:Connection.__init__": "2aa4c1439d32bd59",
    "wsproto.connection:Connection.send": "f24770b66cf8fcb5",
    "wsproto.frame_protocol:FrameProtocol.__init__": "037e847db237d081",
    "wsproto.frame_protocol:FrameProtocol.send_data": "123f604b2533c711",
    "wsproto.frame_protocol:FrameProtocol._serialize_frame": "54db7d4e9bb11d8f",
    "quart.app:Quart.__call__": "342e73e5a6ad7ad0",
}


def _source_digest(name: str) -> str:
    module, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def test_hypercorn_and_wsproto_are_what_raw_write_was_written_for() -> None:
    """An upgrade of hypercorn, wsproto or Quart fails here, not silently in production:
    read raw_write.py's docstring against the new code (every function listed here), then
    update SUPPORTED there and the fingerprints here."""
    installed = {name: metadata.version(name) for name in raw_write.SUPPORTED}
    assert installed == raw_write.SUPPORTED, (
        f"hypercorn/wsproto changed ({installed}): review src/adapters/inbound/ws/raw_write.py"
    )
    assert raw_write.VERSIONS_SUPPORTED
    changed = {
        name: digest
        for name, expected in FINGERPRINTS.items()
        if (digest := _source_digest(name)) != expected
    }
    assert not changed, (
        f"code that raw_write.py relies on changed: {sorted(changed)}; review "
        "src/adapters/inbound/ws/raw_write.py, then update FINGERPRINTS"
    )


# -- the sender's batches, without a server --------------------------------------------------


class Sized(Channel):
    """Updates of every ``test:*`` stream, padded to the size the event asks for."""

    name = "sized"

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        return "test:*"

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        return {"type": "snapshot", "channel": self.name}

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        pad = "x" * int(event.metadata.get("pad", 0))
        return Outgoing({"type": "update", "seq": event.seq, "pad": pad})


def padded(seq: int, pad: int) -> DomainEvent:
    base = event(seq)
    return DomainEvent(
        type=base.type,
        aggregate_id=base.aggregate_id,
        stream=base.stream,
        seq=seq,
        actor_id=base.actor_id,
        actor_type=base.actor_type,
        occurred_at=base.occurred_at,
        metadata={"pad": pad},
    )


def parse_frames(data: bytes) -> list[str]:
    """Whole unmasked server text frames -> their texts (asserting the framing)."""
    texts, at = [], 0
    while at < len(data):
        assert data[at] == 0x81, data[at : at + 2]
        size, at = data[at + 1], at + 2
        assert size & 0x80 == 0  # unmasked
        if size == 126:
            (size,), at = struct.unpack_from("!H", data, at), at + 2
        elif size == 127:
            (size,), at = struct.unpack_from("!Q", data, at), at + 8
        texts.append(data[at : at + size].decode())
        at += size
    return texts


class Writer:
    """A ``FrameWrite`` that records its writes; ``blocked`` makes them wait (a full socket
    whose drain never returns); ``closing`` makes them refuse (a stream no longer open)."""

    def __init__(self, *, blocked: bool = False, closing: bool = False) -> None:
        self.writes: list[bytes] = []
        self.sent: list[str] = []
        self.unblock = asyncio.Event()
        if not blocked:
            self.unblock.set()
        self.closing = closing

    async def write(self, data: bytes) -> bool:
        if self.closing:
            return False
        self.writes.append(data)
        await self.unblock.wait()
        return True

    async def send(self, text: str) -> None:
        self.sent.append(text)

    @property
    def texts(self) -> list[str]:
        return [t for data in self.writes for t in parse_frames(data)] + self.sent


async def gateway_with(limits: WsLimits) -> tuple[MemoryEventBus, Gateway]:
    bus = MemoryEventBus(queue_size=100_000)
    gateway = Gateway(bus, ChannelRegistry([Sized()]), TokenIssuer(SECRET), limits)
    await gateway.start()
    await asyncio.wait_for(gateway.ready.wait(), 3)
    return bus, gateway


async def joined(gateway: Gateway, writer: Writer) -> tuple[Connection, asyncio.Task[None]]:
    conn = gateway.open(writer.send, writer.write)
    sender = asyncio.create_task(conn.run_sender())
    await conn.receive(json.dumps({"op": "subscribe", "channel": "sized"}))
    return conn, sender


async def test_queued_frames_go_out_in_few_writes_in_order_and_bounded() -> None:
    bus, gateway = await gateway_with(WsLimits(send_queue=4096, heartbeat_seconds=30))
    writer = Writer()
    conn, sender = await joined(gateway, writer)
    assert conn.writes_raw
    await until(lambda: len(writer.texts) == 2)  # subscribed, snapshot
    for seq in range(1, 1001):  # a thousand events in one loop turn: batches
        gateway.dispatch(padded(seq, 300))
    await until(lambda: len(writer.texts) == 1002)
    assert [json.loads(t).get("seq") for t in writer.texts[2:]] == list(range(1, 1001))
    assert writer.sent == []
    assert len(writer.writes) < 1002 // 10  # about 200 frames of 330 bytes a write
    assert max(len(data) for data in writer.writes) < RAW_WRITE_BYTES + 400
    assert gateway.counters.raw_writes == len(writer.writes)
    assert gateway.counters.messages_out == 1002
    sender.cancel()
    await gateway.close(conn)
    await gateway.stop()
    del bus


async def test_a_stream_that_can_no_longer_take_raw_writes_falls_back_to_asgi() -> None:
    bus, gateway = await gateway_with(WsLimits(heartbeat_seconds=30))
    writer = Writer(closing=True)
    conn, sender = await joined(gateway, writer)
    for seq in range(1, 11):
        gateway.dispatch(padded(seq, 10))
    await until(lambda: len(writer.sent) == 12)
    assert not conn.writes_raw and writer.writes == []
    assert [json.loads(t).get("seq") for t in writer.sent[2:]] == list(range(1, 11))
    sender.cancel()
    await gateway.close(conn)
    await gateway.stop()
    del bus


async def test_a_blocked_raw_write_fills_the_queue_and_ends_as_a_slow_consumer() -> None:
    bus, gateway = await gateway_with(WsLimits(send_queue=64, heartbeat_seconds=30))
    slow, fast = Writer(), Writer()
    slow_conn, slow_sender = await joined(gateway, slow)
    fast_conn, fast_sender = await joined(gateway, fast)
    await until(lambda: len(slow.writes) == 1 and len(fast.texts) == 2)
    slow.unblock.clear()  # from now on its writes never drain
    for seq in range(1, 501):  # 1 KB each: one write holds at most about 64 of them
        gateway.dispatch(padded(seq, 1000))
        if seq % 10 == 0:
            await asyncio.sleep(0)
    await until(lambda: len(fast.texts) == 502)
    assert slow_conn.close_request is not None
    assert slow_conn.close_request[:2] == (1008, "slow_consumer")
    # the slow one's sender waits in its second write, which holds at most a batch
    assert len(slow.writes) == 2 and len(slow.writes[1]) < RAW_WRITE_BYTES + 1100
    assert fast_conn.close_request is None
    assert [json.loads(t).get("seq") for t in fast.texts[2:]] == list(range(1, 501))
    for sender in (slow_sender, fast_sender):
        sender.cancel()
    for conn in (slow_conn, fast_conn):
        await gateway.close(conn)
    await gateway.stop()
    del bus


# -- the gateway's flush (``FrameWriteNow``), without a server -------------------------------


class NowWriter(Writer):
    """A ``Writer`` that also writes at once: ``full`` stands for a transport buffer above its
    high-water mark, ``refuse`` for a transport whose end was written."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.now: list[bytes] = []  # the synchronous writes
        self.full = False
        self.refuse = False

    def writable_now(self) -> bool:
        return not self.full and not self.closing

    def write_now(self, frames: bytes) -> bool:
        if self.refuse:
            return False
        self.now.append(frames)
        return True

    @property
    def texts(self) -> list[str]:
        return [t for data in self.now + self.writes for t in parse_frames(data)] + self.sent


async def flushed(gateway: Gateway, writer: NowWriter) -> tuple[Connection, asyncio.Task[None]]:
    conn = gateway.open(writer.send, writer.write, writer)
    sender = asyncio.create_task(conn.run_sender())
    await conn.receive(json.dumps({"op": "subscribe", "channel": "sized"}))
    return conn, sender


async def test_the_gateway_flushes_a_connection_at_once_without_its_sender() -> None:
    bus, gateway = await gateway_with(WsLimits(send_queue=4096, heartbeat_seconds=30))
    writer = NowWriter()
    conn, sender = await flushed(gateway, writer)
    await until(lambda: len(writer.texts) == 2)  # subscribed, snapshot
    sender.cancel()  # from here on nothing but the gateway's flush can write
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    before = len(writer.now), len(writer.writes), gateway.counters.flushed_writes
    for seq in range(1, 1001):  # a thousand events in one loop turn: one flush, few writes
        gateway.dispatch(padded(seq, 300))
    assert len(writer.now) == before[0]  # nothing before the turn ends
    await asyncio.sleep(0)
    flushed_now = writer.now[before[0] :]
    texts = [t for data in flushed_now for t in parse_frames(data)]
    assert [json.loads(t)["seq"] for t in texts] == list(range(1, 1001))
    assert len(writer.writes) == before[1] and writer.sent == []
    total = sum(len(data) for data in flushed_now)  # in writes of up to RAW_WRITE_BYTES
    assert total // RAW_WRITE_BYTES <= len(flushed_now) <= total // RAW_WRITE_BYTES + 1
    assert max(len(data) for data in flushed_now) < RAW_WRITE_BYTES + 400
    assert gateway.counters.flushed_writes - before[2] == len(flushed_now)
    assert gateway.counters.messages_out == 1002 and len(conn.queue) == 0
    await gateway.close(conn)
    await gateway.stop()
    del bus


async def test_a_full_transport_hands_the_connection_to_its_sender_and_may_end_it() -> None:
    """Above the high-water mark the sender waits for the drain, the queue fills and conflates
    as before, and a client that never drains is closed as a slow consumer; another
    connection keeps getting everything from the flush meanwhile."""
    bus, gateway = await gateway_with(WsLimits(send_queue=64, heartbeat_seconds=30))
    slow, fast = NowWriter(), NowWriter()
    slow_conn, slow_sender = await flushed(gateway, slow)
    fast_conn, fast_sender = await flushed(gateway, fast)
    await until(lambda: len(slow.texts) == 2 and len(fast.texts) == 2)
    slow.full = True
    slow.unblock.clear()  # its awaited writes never drain either
    writes_before = len(slow.writes)
    for seq in range(1, 501):
        gateway.dispatch(padded(seq, 1000))
        if seq % 10 == 0:
            await asyncio.sleep(0)
    await until(lambda: len(fast.texts) == 502)
    assert slow_conn.close_request is not None
    assert slow_conn.close_request[:2] == (1008, "slow_consumer")
    assert len(slow.writes) == writes_before + 1  # the sender's one write, stuck in its drain
    assert fast_conn.close_request is None
    assert [json.loads(t).get("seq") for t in fast.texts[2:]] == list(range(1, 501))
    for sender in (slow_sender, fast_sender):
        sender.cancel()
    for conn in (slow_conn, fast_conn):
        await gateway.close(conn)
    await gateway.stop()
    del bus


async def test_a_transport_that_drains_again_is_flushed_again() -> None:
    bus, gateway = await gateway_with(WsLimits(send_queue=4096, heartbeat_seconds=30))
    writer = NowWriter()
    conn, sender = await flushed(gateway, writer)
    await until(lambda: len(writer.texts) == 2)
    writer.full = True  # the sender takes these, its writes awaited
    writes_before = len(writer.writes)
    for seq in range(1, 11):
        gateway.dispatch(padded(seq, 10))
    await until(lambda: len(writer.texts) == 12)
    assert len(writer.writes) == writes_before + 1
    writer.full = False  # drained: the flush again
    await asyncio.sleep(0)
    for seq in range(11, 21):
        gateway.dispatch(padded(seq, 10))
    await until(lambda: len(writer.texts) == 22)
    assert len(writer.writes) == writes_before + 1
    updates = [
        json.loads(t)
        for data in writer.writes[writes_before:] + writer.now[-1:]
        for t in parse_frames(data)
    ]
    assert [u["seq"] for u in updates] == list(range(1, 21))
    sender.cancel()
    await gateway.close(conn)
    await gateway.stop()
    del bus


async def test_a_refused_flush_leaves_the_connection_to_its_sender_and_asgi() -> None:
    bus, gateway = await gateway_with(WsLimits(send_queue=4096, heartbeat_seconds=30))
    writer = NowWriter()
    conn, sender = await flushed(gateway, writer)
    await until(lambda: len(writer.texts) == 2)
    writer.refuse = True  # the transport's end was written: that batch goes with it
    gateway.dispatch(padded(1, 10))
    await asyncio.sleep(0)
    writer.closing = True  # and the stream is closing: ASGI from now on
    for seq in range(2, 6):
        gateway.dispatch(padded(seq, 10))
    await until(lambda: len(writer.sent) == 4)
    assert [json.loads(t).get("seq") for t in writer.sent] == [2, 3, 4, 5]
    assert not conn.writes_raw
    sender.cancel()
    await gateway.close(conn)
    await gateway.stop()
    del bus


async def test_a_flushed_connection_still_gets_heartbeats() -> None:
    bus, gateway = await gateway_with(WsLimits(send_queue=64, heartbeat_seconds=0.05))
    writer = NowWriter()
    conn, sender = await flushed(gateway, writer)
    await until(lambda: len(writer.texts) == 2)
    before = len(writer.now)
    gateway.dispatch(padded(1, 10))

    def flushed_types() -> list[str]:
        return [json.loads(t)["type"] for d in writer.now[before:] for t in parse_frames(d)]

    await until(lambda: "heartbeat" in flushed_types())  # written by the flush, idle 50 ms
    assert flushed_types()[0] == "update"
    sender.cancel()
    await gateway.close(conn)
    await gateway.stop()
    del bus


# -- against hypercorn on loopback -----------------------------------------------------------


@contextlib.asynccontextmanager
async def served(gateway: Gateway) -> AsyncIterator[str]:
    """``gateway`` at ``/api/v1/ws`` of a Quart app under hypercorn's asyncio worker, on
    127.0.0.1; yields the URL."""
    app = Quart("raw-write-test")
    install_ws(app, gateway)
    port = free_port()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                break
        await asyncio.wait_for(gateway.ready.wait(), 5)
        yield f"ws://127.0.0.1:{port}/api/v1/ws"
    finally:
        gateway.close_connections()
        stop.set()
        await asyncio.wait_for(server, 15)


async def subscribed(url: str, **kwargs: Any) -> ClientConnection:
    ws = await connect(url, max_queue=None, **kwargs).__aenter__()
    await ws.send(json.dumps({"op": "subscribe", "channel": "sized"}))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    assert json.loads(await ws.recv())["type"] == "snapshot"
    return ws


async def updates(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < n:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] == "update":
            got.append(frame)
    return got


SIZES = [10, 200, 5_000, 70_000]  # 7-bit, 16-bit and 64-bit frame lengths


@pytest.mark.parametrize(
    ("case", "declined", "raw_writes"),
    [
        ("raw writes", True, True),
        ("setting off", True, False),
        ("permessage-deflate negotiated", False, True),
    ],
)
async def test_both_paths_deliver_every_frame_over_hypercorn(
    monkeypatch: pytest.MonkeyPatch, case: str, declined: bool, raw_writes: bool
) -> None:
    pmd = DeclinedPerMessageDeflate if declined else ws_stream.PerMessageDeflate
    monkeypatch.setattr(ws_stream, "PerMessageDeflate", pmd)
    bus = MemoryEventBus(queue_size=100_000)
    gateway = Gateway(
        bus,
        ChannelRegistry([Sized()]),
        TokenIssuer(SECRET),
        WsLimits(send_queue=4096, heartbeat_seconds=30, raw_writes=raw_writes),
    )
    async with served(gateway) as url:
        clients = [await subscribed(url) for _ in range(3)]  # each offers permessage-deflate
        try:
            assert all(bool(ws.protocol.extensions) is not declined for ws in clients)
            conns = list(gateway._connections)
            expect_raw = declined and raw_writes
            assert [c.writes_raw for c in conns] == [expect_raw] * 3, case
            seq = 0
            for _ in range(20):  # several events a loop turn: batches
                for size in SIZES:
                    seq += 1
                    gateway.dispatch(padded(seq, size))
                await asyncio.sleep(0)
            for ws in clients:
                got = await updates(ws, seq)
                assert [f["seq"] for f in got] == list(range(1, seq + 1))
                assert [len(f["pad"]) for f in got] == SIZES * 20
            if expect_raw:
                assert 0 < gateway.counters.raw_writes < gateway.counters.messages_out
                assert 0 < gateway.counters.flushed_writes <= gateway.counters.raw_writes
            else:
                assert gateway.counters.raw_writes == 0
            # ops still answer, and the close is hypercorn's own
            await clients[0].send(json.dumps({"op": "ping", "reqId": 1}))
            assert json.loads(await clients[0].recv()) == {"type": "pong", "reqId": 1}
        finally:
            for ws in clients:
                await ws.close()


def small_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_a_client_that_stops_reading_is_closed_and_the_others_get_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ws_stream, "PerMessageDeflate", DeclinedPerMessageDeflate)
    bus = MemoryEventBus(queue_size=100_000)
    gateway = Gateway(
        bus,
        ChannelRegistry([Sized()]),
        TokenIssuer(SECRET),
        WsLimits(send_queue=32, heartbeat_seconds=30),
    )
    async with served(gateway) as url:
        port = int(url.split(":")[2].split("/")[0])
        fast = [await subscribed(url) for _ in range(3)]
        slow = await subscribed(url, sock=small_socket(port), max_size=None)
        slow.transport.pause_reading()  # the client stops reading: its TCP window fills
        try:
            assert all(c.writes_raw for c in gateway._connections)
            received = [asyncio.create_task(updates(ws, 2000)) for ws in fast]
            seq = 0
            while gateway.counters.slow_consumer_closes == 0 and seq < 20_000:
                seq += 1
                gateway.dispatch(padded(seq, 2000))
                if seq % 10 == 0:
                    await asyncio.sleep(0.001)
            assert gateway.counters.slow_consumer_closes == 1, seq
            while seq < 2000:
                seq += 1
                gateway.dispatch(padded(seq, 2000))
                if seq % 10 == 0:
                    await asyncio.sleep(0.001)
            for task in received:  # every one, in order, with the slow one stuck
                got = await asyncio.wait_for(task, 30)
                assert [f["seq"] for f in got] == list(range(1, 2001))
            assert all(c.close_request is None for c in gateway._connections if c.writes_raw)
            # reading again: its backlog, the slow_consumer error, a 1008 close
            slow.transport.resume_reading()
            frames: list[dict[str, Any]] = []
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    frames.append(json.loads(await asyncio.wait_for(slow.recv(), 10)))
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
            assert frames[-1]["type"] == "error" and frames[-1]["code"] == "slow_consumer"
            seqs = [f["seq"] for f in frames if f["type"] == "update"]
            assert seqs == list(range(1, len(seqs) + 1))  # a prefix, no frame damaged
        finally:
            for ws in [*fast, slow]:
                with contextlib.suppress(Exception):
                    await ws.close()
