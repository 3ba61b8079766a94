"""The gateway: one event-bus subscription per process fanned out to the connections'
subscriptions, and each connection's state (auth, subscriptions, send queue, rate limit).

Nothing a connection does can hold up another: the bus pump only routes events into bounded
send queues (``SendQueue.offer`` never waits); each connection has its own sender task. A
connection whose queue is full (and cannot conflate) is closed as a slow consumer.

Connections written below ASGI with a ``FrameWriteNow`` skip their sender task while their
socket keeps up: the gateway flushes every connection with queued frames once per loop turn,
one synchronous transport write each (no task wake-up per connection and message). A
connection whose transport buffer is above its high-water mark (or whose stream is closing)
is handed to its sender task, which waits for the drain as before: conflation, the slow
consumer's close and the ASGI fallback are the sender's, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol

import attrs
import jwt

from adapters.inbound.http.auth import AuthError, TokenIssuer
from adapters.inbound.ws.channels import Channel, ChannelRegistry
from adapters.inbound.ws.protocol import (
    ClientError,
    ReqId,
    SubscribeRequest,
    decode_frame,
    error_frame,
    op_of,
    req_id_of,
    subscribe_request,
    token_of,
)
from adapters.inbound.ws.rate import TokenBucket
from adapters.inbound.ws.send_queue import Outgoing, SendQueue
from core.ports.event_bus import EventBus, StreamGap, Subscription
from core.ports.metrics import NO_METRICS, Metrics
from core.shared.errors import DomainError
from core.shared.events import Actor, DomainEvent
from core.shared.text import escape

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008  # slow consumer, rate limit
CLOSE_TOO_BIG = 1009
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011
HEARTBEAT = Outgoing({"type": "heartbeat"})  # not counted in the ``ws_messages`` metric
# a raw write carries whole frames up to about this many bytes (asyncio's default high-water
# mark: the transport's drain waits above it, as it does for one frame through ASGI)
RAW_WRITE_BYTES = 64 * 1024


@attrs.frozen
class WsLimits:
    """Per-connection protection (settings ``RWA_WS_*``)."""

    send_queue: int = 1024  # messages waiting to be sent
    max_message_bytes: int = 16 * 1024  # a larger client frame closes with 1009
    rate_per_second: float = 20.0  # client frames a second, sustained
    rate_burst: int = 50  # client frames at once
    heartbeat_seconds: float = 5.0
    max_subscriptions: int = 50
    close_timeout_seconds: float = 1.0  # for the last error frame and the close
    raw_writes: bool = True  # a drained batch in one write below ASGI when allowed (raw_write.py)


@attrs.define
class GatewayCounters:
    """For metrics: read with ``as_dict``."""

    connections_open: int = 0
    connections_total: int = 0
    messages_in: int = 0  # client frames received
    messages_out: int = 0  # frames sent, heartbeats included
    raw_writes: int = 0  # socket writes of whole frames below ASGI (``FrameWrite``)
    flushed_writes: int = 0  # of them, written by the gateway's flush (``FrameWriteNow``)
    raw_connections: int = 0  # connections opened with a ``FrameWrite``
    slow_consumer_closes: int = 0
    rate_limited_closes: int = 0
    oversized_closes: int = 0
    error_frames: int = 0
    conflated: int = 0
    bus_gaps: int = 0

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


def topic_family(stream: str) -> str:
    """``market:42`` -> ``market:*``: the topic of a channel that listens to every stream of
    a kind."""
    kind, sep, _ = stream.partition(":")
    return f"{kind}:*" if sep else stream


class ChannelSubscription:
    """One subscription of one connection. While its snapshot is being read, updates are
    held back, then sent after it (an update may repeat what the snapshot shows; none is
    lost)."""

    def __init__(
        self, conn: Connection, channel: Channel, request: SubscribeRequest, topic: str
    ) -> None:
        self.conn = conn
        self.channel = channel
        self.request = request
        self.topic = topic
        self.held: list[Outgoing] | None = None
        self.held_dropped = 0
        self.active = True
        self.seq: int | None = None  # the last seq sent, for a sequenced channel
        self.sequenced = channel.sequenced
        self.actor: Actor | None = None  # the connection's user when it was attached

    def deliver(self, message: Outgoing) -> None:
        if not self.active:
            return
        if self.held is not None:
            if len(self.held) < self.conn.limits.send_queue:
                self.held.append(message)
            else:
                self.held_dropped += 1
            return
        if self.sequenced and not self.in_sequence(message):
            return
        self.conn.enqueue(message)

    def in_sequence(self, message: Outgoing) -> bool:
        """Whether ``message`` follows the last seq sent; an older one is dropped (the
        snapshot holds it) and a jump asks for a fresh snapshot."""
        sequence = message.sequence
        if sequence is None or self.seq is None:
            return True
        first, seq = sequence
        if seq <= self.seq:
            return False
        if first > self.seq + 1:
            self.conn.resnapshot(self)
            return False
        self.seq = seq
        return True


SendText = Callable[[str], Awaitable[None]]
# Writes whole server text frames (``Outgoing.frame``) at once, below ASGI; False when it can
# no longer (nothing written: the caller sends them with ``SendText``). See ``raw_write.py``.
FrameWrite = Callable[[bytes], Awaitable[bool]]


class FrameWriteNow(Protocol):
    """Writes whole server frames synchronously, below ASGI (``raw_write.RawFrameWriter``)."""

    def writable_now(self) -> bool:
        """Whether a write now would neither wait for a drain nor hit a closing stream."""

    def write_now(self, frames: bytes) -> bool:
        """Write ``frames`` (whole frames) at once; False if the transport refused them."""


GroupKey = tuple[Channel, SubscribeRequest]
# An op past ``auth`` (``order.submit``): the actor and the frame; its answer (``reqId`` added)
OpHandler = Callable[[Actor, dict[str, Any]], Awaitable[Mapping[str, Any]]]


class Connection:
    """The protocol state of one WebSocket connection (no Quart in here: ``send`` is given)."""

    def __init__(
        self,
        gateway: Gateway,
        number: int,
        send: SendText,
        write: FrameWrite | None = None,
        write_now: FrameWriteNow | None = None,
    ) -> None:
        self.gateway = gateway
        self.number = number
        self.limits = gateway.limits
        self._send = send
        self._write = write
        self._write_now = write_now if write is not None else None
        self._sender_busy = False  # the sender task is writing: it owns the queue until idle
        self.queue = SendQueue(self.limits.send_queue)
        self._wake = asyncio.Event()
        self.bucket = TokenBucket(self.limits.rate_per_second, self.limits.rate_burst)
        self.actor: Actor | None = None
        self.auth_expires_at: float | None = None
        self.subs: dict[tuple[str, str | None, str | None], ChannelSubscription] = {}
        self.close_request: tuple[int, str, dict[str, Any] | None] | None = None
        self.close_requested = asyncio.Event()
        self._snapshot_lock = asyncio.Lock()
        self._pending_gap = 0
        self._resync_task: asyncio.Task[None] | None = None
        self._idle_since: float | None = None  # loop time the sender found its queue empty
        self._heartbeat: asyncio.TimerHandle | None = None

    # -- sending -----------------------------------------------------------------------------

    def enqueue(self, message: Outgoing | Mapping[str, Any]) -> None:
        """Queue a frame; a full queue that cannot conflate closes the connection (1008)."""
        if self.close_request is not None:
            return
        if not isinstance(message, Outgoing):
            message = Outgoing(message)
        queue = self.queue
        if queue.offer(message):
            if self._write_now is None or self._sender_busy:
                self._wake.set()
            elif len(queue) == 1:  # the first since the last flush: this turn's flush takes it
                self.gateway.flush_soon(self)
            return
        self.gateway.counters.slow_consumer_closes += 1
        self.gateway.metrics.ws_slow_consumer_closes()
        log.warning(
            "ws connection %d: send queue full (%d messages), closing as a slow consumer",
            self.number,
            len(self.queue),
        )
        self.request_close(
            CLOSE_POLICY,
            "slow_consumer",
            error_frame("slow_consumer", "the connection fell too far behind; reconnect"),
        )

    def send_error(self, error: ClientError) -> None:
        self.gateway.counters.error_frames += 1
        self.enqueue(error_frame(error.code, error.message, error.req_id))

    def request_close(self, code: int, reason: str, frame: dict[str, Any] | None) -> None:
        if self.close_request is None:
            self.close_request = (code, reason, frame)
            self.queue.clear()
            self.close_requested.set()

    @property
    def writes_raw(self) -> bool:
        """Whether the sender writes frames below ASGI (``FrameWrite``)."""
        return self._write is not None

    def flush_now(self, now: float) -> int:
        """Write the queued frames at once (the gateway's flush, once a loop turn; ``now`` is
        the loop's time), in writes of up to ``RAW_WRITE_BYTES``, while the transport takes
        them without waiting; what it cannot take now is left to the sender task. The number
        of messages written, heartbeats not counted."""
        writer = self._write_now
        queue = self.queue
        if writer is None or self._sender_busy or self.close_request is not None:
            if queue and self.close_request is None:
                self._wake.set()
            return 0
        counters = self.gateway.counters
        sent = 0
        while queue and writer.writable_now():
            frames, count, heartbeats = queue.take_frames(RAW_WRITE_BYTES, HEARTBEAT)
            counters.messages_out += count
            if not writer.write_now(frames):
                # the transport is going away: what was popped is lost with the connection,
                # as hypercorn drops what a closing stream is sent
                self._write_now = None
                break
            counters.raw_writes += 1
            counters.flushed_writes += 1
            sent += count - heartbeats
        if queue:  # a full transport buffer or a closing stream: the sender waits on it
            self._wake.set()
            return sent
        self._idle_since = now
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().call_at(
                now + self.limits.heartbeat_seconds, self._heartbeat_due
            )
        return sent

    async def run_sender(self) -> None:
        """Send queued frames in order, all that wait at each wake-up (an enqueue wakes the
        sender at most once a loop turn, however many messages come); a heartbeat after
        ``heartbeat_seconds`` of silence (a timer of its own, see ``_heartbeat_due``, not a
        timeout around every wait). With a ``FrameWrite``, the waiting frames go out in
        writes of up to ``RAW_WRITE_BYTES``, each awaited like one ASGI send (the transport
        drains), else one ``send`` per frame."""
        loop = asyncio.get_running_loop()
        counters, metrics = self.gateway.counters, self.gateway.metrics
        try:
            while True:
                sent = 0
                self._sender_busy = True
                message = self.queue.pop()
                while message is not None:
                    self._idle_since = None
                    if self._write is not None:
                        sent += await self._write_batch(message)
                        if self.queue:  # more than a batch, or more came: others first
                            await asyncio.sleep(0)
                        message = self.queue.pop()
                        continue
                    counters.messages_out += 1
                    await self._send(message.text)
                    if message is not HEARTBEAT:
                        sent += 1
                    message = self.queue.pop()
                if sent:
                    metrics.ws_messages("out", sent)
                self._sender_busy = False
                self._idle_since = loop.time()
                if self._heartbeat is None:
                    self._heartbeat = loop.call_at(
                        self._idle_since + self.limits.heartbeat_seconds, self._heartbeat_due
                    )
                self._wake.clear()
                await self._wake.wait()
        finally:
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                self._heartbeat = None

    async def _write_batch(self, first: Outgoing) -> int:
        """``first`` and the frames waiting after it, up to ``RAW_WRITE_BYTES``, in one
        ``FrameWrite``; through ``SendText`` one by one if it can no longer write. The number
        of messages sent, heartbeats not counted."""
        assert self._write is not None
        batch = [first]
        size = len(first.frame)
        while size < RAW_WRITE_BYTES:
            message = self.queue.pop()
            if message is None:
                break
            batch.append(message)
            size += len(message.frame)
        counters = self.gateway.counters
        counters.messages_out += len(batch)
        if await self._write(b"".join([message.frame for message in batch])):
            counters.raw_writes += 1
        else:  # the stream is closing: ASGI from now on (hypercorn drops what it must)
            self._write = None
            for message in batch:
                await self._send(message.text)
        return len(batch) - batch.count(HEARTBEAT)

    def _heartbeat_due(self) -> None:
        """The heartbeat timer: a heartbeat once the sender has been idle for
        ``heartbeat_seconds`` (the token's expiry is checked then too), else the timer is set
        again for the current idle period."""
        self._heartbeat = None
        if self.close_request is not None or self._idle_since is None:
            return  # busy: the sender sets the timer again when it goes idle
        loop = asyncio.get_running_loop()
        due = self._idle_since + self.limits.heartbeat_seconds
        if loop.time() < due:
            self._heartbeat = loop.call_at(due, self._heartbeat_due)
            return
        self.check_auth_expiry()
        self.enqueue(HEARTBEAT)

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self, data: str | bytes) -> None:
        """Handle one client frame. Never raises for anything the client sent: an error frame
        is queued, or a close is requested."""
        self.gateway.counters.messages_in += 1
        self.gateway.metrics.ws_messages("in")
        size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
        if size > self.limits.max_message_bytes:
            self.gateway.counters.oversized_closes += 1
            self.request_close(
                CLOSE_TOO_BIG, f"frames are at most {self.limits.max_message_bytes} bytes", None
            )
            return
        if not self.bucket.take():
            self.gateway.counters.rate_limited_closes += 1
            log.warning("ws connection %d: over its message rate, closing", self.number)
            self.request_close(
                CLOSE_POLICY,
                "rate_limited",
                error_frame(
                    "rate_limited",
                    f"at most {self.limits.rate_per_second:g} messages a second "
                    f"(bursts of {self.limits.rate_burst})",
                ),
            )
            return
        req_id: ReqId | None = None
        try:
            frame = decode_frame(data)
            req_id = req_id_of(frame)
            await self._handle(op_of(frame), frame, req_id)
        except ClientError as exc:
            if exc.req_id is None:
                exc.req_id = req_id
            self.send_error(exc)
        except DomainError as exc:
            self.send_error(ClientError(exc.code, str(exc), req_id=req_id))
        except Exception:
            log.exception("ws connection %d: a frame failed", self.number)
            self.send_error(ClientError("internal_error", "the request failed", req_id=req_id))

    async def _handle(self, op: str, frame: dict[str, Any], req_id: ReqId | None) -> None:
        if op == "ping":
            self.enqueue(_with_req_id({"type": "pong"}, req_id))
        elif op == "auth":
            self._auth(token_of(frame), req_id)
        elif op == "subscribe":
            await self._subscribe(subscribe_request(frame), req_id)
        elif op == "unsubscribe":
            self._unsubscribe(subscribe_request(frame), req_id)
        elif op in self.gateway.ops:
            if self.actor is None:
                raise ClientError("auth_required", f"{op} needs an auth op first")
            answer = await self.gateway.ops[op](self.actor, frame)
            self.enqueue(_with_req_id(dict(answer), req_id))
        else:
            raise ClientError("unknown_op", f"unknown op {escape(op, max_length=32)}")

    def _auth(self, token: str, req_id: ReqId | None) -> None:
        try:
            actor = self.gateway.tokens.verify(token)
        except AuthError as exc:
            raise ClientError(exc.code, exc.message) from None
        if self.actor is not None and actor.id != self.actor.id:
            raise ClientError(
                "already_authenticated", "this connection is authenticated as another user"
            )
        claims = jwt.decode(token, options={"verify_signature": False})
        self.actor = actor
        self.auth_expires_at = float(claims["exp"])
        self.enqueue(_with_req_id({"type": "authenticated", "userId": actor.id}, req_id))

    def check_auth_expiry(self) -> None:
        """Past the token's ``exp``: private subscriptions end (the client sends a new
        ``auth`` and subscribes again)."""
        if self.auth_expires_at is None or time.time() < self.auth_expires_at:
            return
        self.actor = None
        self.auth_expires_at = None
        ended = [key for key, sub in self.subs.items() if sub.channel.private]
        for key in ended:
            sub = self.subs.pop(key)
            self.gateway.detach(sub)
        self.send_error(ClientError("token_expired", "the bearer token has expired"))
        for key in ended:
            self.enqueue({"type": "unsubscribed", "channel": key[0]})

    async def _subscribe(self, request: SubscribeRequest, req_id: ReqId | None) -> None:
        channel = self.gateway.registry.get(request.channel)
        if channel is None:
            raise ClientError("unknown_channel", "channel is not a known channel")
        if channel.private and self.actor is None:
            raise ClientError(
                "auth_required", f"channel {channel.name} is private: send an auth op first"
            )
        request = channel.check(request)
        if request.key in self.subs:
            raise ClientError("already_subscribed", "this subscription exists already")
        if len(self.subs) >= self.limits.max_subscriptions:
            raise ClientError(
                "too_many_subscriptions",
                f"at most {self.limits.max_subscriptions} subscriptions a connection",
            )
        topic = await channel.resolve_topic(request, self.actor)
        sub = ChannelSubscription(self, channel, request, topic)
        sub.held = []
        self.subs[request.key] = sub
        self.gateway.attach(sub)
        self.enqueue(_with_req_id({"type": "subscribed", **request.describe()}, req_id))
        await self._load_snapshot(sub, gap=None, req_id=req_id)

    def _unsubscribe(self, request: SubscribeRequest, req_id: ReqId | None) -> None:
        sub = self.subs.pop(request.key, None)
        if sub is None:
            raise ClientError("not_subscribed", "there is no such subscription")
        self.gateway.detach(sub)
        answer = {"type": "unsubscribed", **sub.request.describe()}
        answer.pop("depth", None)
        self.enqueue(_with_req_id(answer, req_id))

    async def _load_snapshot(
        self, sub: ChannelSubscription, *, gap: int | None, req_id: ReqId | None = None
    ) -> None:
        """Hold updates back, read the snapshot, send it (after a gap notice when ``gap``),
        then the held updates."""
        async with self._snapshot_lock:
            if not sub.active:
                return
            if sub.held is None:
                sub.held = []
            try:
                snapshot = await sub.channel.snapshot(sub.request, self.actor)
            except (ClientError, DomainError) as exc:
                self._drop(sub)
                code = exc.code
                self.send_error(ClientError(code, str(exc), req_id=req_id))
                return
            except Exception:
                log.exception("ws connection %d: a snapshot failed", self.number)
                self._drop(sub)
                self.send_error(ClientError("internal_error", "the snapshot failed", req_id=req_id))
                return
            if not sub.active:
                return
            if gap is not None:
                self.enqueue({"type": "gap", **sub.request.describe(), "dropped": gap})
            self.enqueue(Outgoing({**snapshot, **_pair_fields(sub.request)}))
            seq = snapshot.get("seq")
            sub.seq = seq if sub.channel.sequenced and isinstance(seq, int) else None
            held, sub.held = sub.held or [], None
            for message in held:
                if not sub.channel.sequenced or sub.in_sequence(message):
                    self.enqueue(message)
                if sub.held is not None:  # a jump: a fresh snapshot is coming
                    break
            if sub.held_dropped:
                dropped, sub.held_dropped = sub.held_dropped, 0
                self.resync(dropped)

    def _drop(self, sub: ChannelSubscription) -> None:
        self.subs.pop(sub.request.key, None)
        self.gateway.detach(sub)
        self.enqueue({"type": "unsubscribed", **sub.request.describe()})

    def resnapshot(self, sub: ChannelSubscription) -> None:
        """A seq jump on one subscription: hold its updates and send it a fresh snapshot."""
        if sub.held is None:
            sub.held = []
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.create_task(self._resync())

    def resync(self, dropped: int) -> None:
        """Events were lost (the bus overflowed or reconnected): every subscription gets a
        ``gap`` notice and a fresh snapshot, in a task of this connection's own."""
        if not self.subs or self.close_request is not None:
            return
        for sub in self.subs.values():
            if sub.held is None:
                sub.held = []  # from now on, updates wait for the fresh snapshot
        self._pending_gap += dropped
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = asyncio.create_task(self._resync())

    async def _resync(self) -> None:
        while True:
            waiting = [s for s in self.subs.values() if s.held is not None]
            if not waiting:
                return
            dropped, self._pending_gap = self._pending_gap, 0
            for sub in waiting:
                await self._load_snapshot(sub, gap=dropped)

    async def close(self) -> None:
        """Detach everything (the route calls this when the connection ends)."""
        for sub in list(self.subs.values()):
            self.gateway.detach(sub)
        self.subs.clear()
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._resync_task
        self.gateway.counters.conflated += self.queue.conflated


def _with_req_id(frame: dict[str, Any], req_id: ReqId | None) -> dict[str, Any]:
    if req_id is not None:
        frame["reqId"] = req_id
    return frame


def _pair_fields(request: SubscribeRequest) -> dict[str, Any]:
    return {"pair": request.pair} if request.pair is not None else {}


class Gateway:
    """Routes bus events to subscriptions; owns the counters and the limits."""

    def __init__(
        self,
        bus: EventBus,
        registry: ChannelRegistry,
        tokens: TokenIssuer,
        limits: WsLimits | None = None,
        *,
        ops: Mapping[str, OpHandler] | None = None,
        retry_seconds: float = 1.0,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.bus = bus
        self.metrics = metrics
        self.registry = registry
        self.tokens = tokens
        self.limits = limits or WsLimits()
        self.ops: dict[str, OpHandler] = dict(ops or {})
        self.counters = GatewayCounters()
        # topic -> (channel, request) -> its subscriptions (a dict: ordered, O(1) removal):
        # an event is turned into a message once per group, then handed to each subscription
        self._topics: dict[str, dict[GroupKey, dict[ChannelSubscription, None]]] = {}
        self._connections: set[Connection] = set()
        self._numbers = itertools.count(1)
        self._pump_task: asyncio.Task[None] | None = None
        self._bus_subscription: Subscription | None = None
        self._retry_seconds = retry_seconds
        self.ready = asyncio.Event()  # set once the bus subscription is live
        self._dirty: dict[Connection, None] = {}  # connections to flush at the turn's end
        self._flush_handle: asyncio.Handle | None = None
        for channel in registry.channels():
            channel.bind(self.publish)
        self._observers = [c for c in registry.channels() if c.observes_all]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._pump_task is None:
            self.ready = asyncio.Event()
            self._pump_task = asyncio.create_task(self._pump(), name="ws-gateway-pump")

    def close_connections(self) -> None:
        """Close every connection with 1001 (the server is going away): called when a
        shutdown begins, so the server's grace period does not wait on open WebSockets."""
        for conn in list(self._connections):
            conn.request_close(CLOSE_GOING_AWAY, "server shutting down", None)

    async def stop(self) -> None:
        self.close_connections()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None

    async def _pump(self) -> None:
        connected_before = False
        while True:
            try:
                subscription = await self.bus.subscribe("")
            except Exception as exc:
                log.warning("ws gateway: event bus subscribe failed: %s", type(exc).__name__)
                await asyncio.sleep(self._retry_seconds)
                continue
            self._bus_subscription = subscription
            self.ready.set()
            if connected_before:  # events published while we were away are missing
                self.gap(0)
            connected_before = True
            try:
                async for item in subscription:
                    if isinstance(item, StreamGap):
                        self.gap(item.dropped)
                    else:
                        self.dispatch(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("ws gateway: event bus subscription ended: %s", type(exc).__name__)
                await asyncio.sleep(self._retry_seconds)
            finally:
                self._bus_subscription = None
                with contextlib.suppress(Exception):
                    await subscription.close()

    # -- connections and subscriptions --------------------------------------------------------

    def open(
        self,
        send: SendText,
        write: FrameWrite | None = None,
        write_now: FrameWriteNow | None = None,
    ) -> Connection:
        """A new connection sending with ``send`` (one frame at a time), or with ``write``
        (whole frames at once) when given and ``limits.raw_writes`` allows it, flushed by the
        gateway with ``write_now`` while its transport keeps up."""
        if not self.limits.raw_writes:
            write = write_now = None
        conn = Connection(self, next(self._numbers), send, write, write_now)
        self._connections.add(conn)
        if write is not None:
            self.counters.raw_connections += 1
        self.counters.connections_open += 1
        self.counters.connections_total += 1
        self.metrics.ws_connection(opened=True)
        return conn

    async def close(self, conn: Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self.counters.connections_open -= 1
            self.metrics.ws_connection(opened=False)
        await conn.close()

    def flush_soon(self, conn: Connection) -> None:
        """Flush ``conn`` once the current loop turn's callbacks have run (with every other
        connection that got frames in the meantime)."""
        self._dirty[conn] = None
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        dirty, self._dirty = self._dirty, {}
        now = asyncio.get_running_loop().time()
        sent = 0
        for conn in dirty:
            try:
                sent += conn.flush_now(now)
            except Exception:  # one connection's failure must not keep the others waiting
                log.exception("ws connection %d: flush failed", conn.number)
                conn.request_close(CLOSE_INTERNAL_ERROR, "internal error", None)
        if sent:
            self.metrics.ws_messages("out", sent)

    def attach(self, sub: ChannelSubscription) -> None:
        groups = self._topics.setdefault(sub.topic, {})
        groups.setdefault((sub.channel, sub.request), {})[sub] = None
        sub.actor = sub.conn.actor  # detached with the same actor, even after auth expired
        sub.channel.attached(sub.request, sub.actor)

    def detach(self, sub: ChannelSubscription) -> None:
        sub.active = False
        groups = self._topics.get(sub.topic)
        key = (sub.channel, sub.request)
        subs = None if groups is None else groups.get(key)
        if groups is not None and subs is not None and sub in subs:
            del subs[sub]
            if not subs:
                del groups[key]
                if not groups:
                    del self._topics[sub.topic]
            sub.channel.detached(sub.request, sub.actor)

    def publish(
        self, topic: str, channel: Channel, request: SubscribeRequest, message: Outgoing
    ) -> None:
        """Send ``message`` to every subscription of ``request`` on ``channel`` listening to
        ``topic`` (a channel with state of its own, such as ``ticker``, pushes updates here)."""
        subs = self._topics.get(topic, {}).get((channel, request))
        if subs:
            for sub in tuple(subs):
                sub.deliver(message)

    def _groups(self, stream: str) -> Iterator[tuple[GroupKey, tuple[ChannelSubscription, ...]]]:
        for topic in (stream, topic_family(stream)):
            groups = self._topics.get(topic)
            if groups:
                yield from [(key, tuple(subs)) for key, subs in groups.items()]

    def dispatch(self, event: DomainEvent) -> None:
        """Route one event to every subscription of its stream or stream family. A public
        channel's message is built (and later encoded) once per (channel, request) and the
        same ``Outgoing`` goes to each of its subscriptions; a private channel's once per
        user."""
        for channel in self._observers:
            try:
                channel.observe(event)
            except Exception:
                log.exception("ws gateway: channel %s failed observing an event", channel.name)
        for (channel, request), subs in self._groups(event.stream):
            if channel.private:
                self._dispatch_private(channel, request, subs, event)
                continue
            try:
                message = channel.update_for(request, event, None)
            except Exception:
                log.exception("ws gateway: channel %s failed on an event", channel.name)
                continue
            if message is not None:
                for sub in subs:
                    sub.deliver(message)

    def _dispatch_private(
        self,
        channel: Channel,
        request: SubscribeRequest,
        subs: tuple[ChannelSubscription, ...],
        event: DomainEvent,
    ) -> None:
        made: dict[str | None, Outgoing | None] = {}
        for sub in subs:
            sub.conn.check_auth_expiry()
            if not sub.active:
                continue
            actor = sub.conn.actor
            user = None if actor is None else actor.id
            if user not in made:
                try:
                    made[user] = channel.update_for(request, event, actor)
                except Exception:
                    log.exception("ws gateway: channel %s failed on an event", channel.name)
                    made[user] = None
            message = made[user]
            if message is not None:
                sub.deliver(message)

    def gap(self, dropped: int) -> None:
        self.counters.bus_gaps += 1
        log.warning("ws gateway: %d events lost on the bus; resyncing subscriptions", dropped)
        for conn in list(self._connections):
            conn.resync(dropped)

    @property
    def connections(self) -> int:
        return len(self._connections)
