"""A value shared by every subscriber of one request (a pair's ticker, a pair's candles of one
interval), re-read from storage when an event says it may have changed, and pushed to every
subscriber as one message with the value's own ``seq``.

- **Triggers** come from the bus events of the subscription's topic (``trigger``) and, for
  values that change with time alone, from a timer while someone is subscribed. Triggers
  coalesce: one read at a time per value, and one more after it if anything came meanwhile;
  with ``min_interval`` at most one read per interval (the ticker: 100 ms).
- **After a trade** the read waits (up to ``catch_up_seconds``) until market data has stored
  that trade (the ``aggregate-candles`` reaction runs after the event is published), so the
  value read is the one the HTTP endpoints answer.
- **seq**: each message that changes the value takes the next ``seq``; a snapshot carries the
  current one, so the gateway drops updates the snapshot already holds. The value is read
  whole each time (never patched), so a subscriber that joins later, or a value that went
  unread while nobody was subscribed, needs nothing replayed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from adapters.inbound.ws.protocol import SubscribeRequest
from adapters.inbound.ws.send_queue import Outgoing

log = logging.getLogger(__name__)

Deliver = Callable[[Outgoing], None]
HasTrade = Callable[[str, int], Awaitable[bool]]


class LiveValue(abc.ABC):
    """One request's shared value (see the module docstring)."""

    def __init__(
        self,
        request: SubscribeRequest,
        deliver: Deliver,
        *,
        has_trade: HasTrade | None = None,
        refresh_seconds: float = 0.0,
        catch_up_seconds: float = 2.0,
        min_interval: float = 0.0,
    ) -> None:
        self.request = request
        self.seq = 0
        self.subscribers = 0
        self.pair_id: str | None = None
        self._deliver = deliver
        self._has_trade = has_trade
        self._refresh_seconds = refresh_seconds
        self._catch_up_seconds = catch_up_seconds
        self._min_interval = min_interval
        self._last_read = 0.0
        self._lock = asyncio.Lock()
        self._dirty = False
        self._trade_seq = 0  # the newest trade event seen: reads wait until it is stored
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None

    # -- what a kind of value reads and sends --------------------------------------------------

    @abc.abstractmethod
    async def read(self) -> list[Mapping[str, Any]]:
        """Read the value; the update payloads (without ``seq``) of what changed since the
        last read, oldest first (nothing when it did not change)."""

    @abc.abstractmethod
    def snapshot_payload(self) -> dict[str, Any]:
        """The snapshot of the value as last read (without ``seq``)."""

    def outgoing(self, payload: Mapping[str, Any]) -> Outgoing:
        return Outgoing(payload)

    # -- triggers --------------------------------------------------------------------------------

    def trigger(self, trade_seq: int | None = None) -> None:
        """Something changed: read again soon (after trade ``trade_seq`` is stored)."""
        if trade_seq is not None and trade_seq > self._trade_seq:
            self._trade_seq = trade_seq
        self._dirty = True
        if self.subscribers > 0 and (self._task is None or self._task.done()):
            # shared by every subscriber: not in the context (log ids) of the one who started it
            self._task = asyncio.create_task(
                self._run(), name="ws-live-value", context=contextvars.Context()
            )

    def attached(self) -> None:
        self.subscribers += 1
        if self._refresh_seconds > 0 and (self._timer is None or self._timer.done()):
            self._timer = asyncio.create_task(
                self._tick(), name="ws-live-timer", context=contextvars.Context()
            )

    def detached(self) -> None:
        self.subscribers = max(0, self.subscribers - 1)
        if self.subscribers == 0:
            for task in (self._timer, self._task):
                if task is not None:
                    task.cancel()
            self._timer = self._task = None

    async def snapshot(self) -> dict[str, Any]:
        """Read the value now (current subscribers get what changed first) and return the
        snapshot with its ``seq``."""
        async with self._lock:
            await self._read_and_send()
            return {**self.snapshot_payload(), "seq": self.seq}

    # -- inside ----------------------------------------------------------------------------------

    async def _read_and_send(self) -> None:
        for payload in await self.read():
            self.seq += 1
            self._deliver(self.outgoing({**payload, "seq": self.seq}))

    async def _run(self) -> None:
        while self._dirty and self.subscribers > 0:
            wait = self._last_read + self._min_interval - time.monotonic()
            if wait > 0:  # at most one read per min_interval: changes meanwhile coalesce
                await asyncio.sleep(wait)
            self._dirty = False
            self._last_read = time.monotonic()
            await self._wait_for_trade(self._trade_seq)
            try:
                async with self._lock:
                    await self._read_and_send()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ws: reading the %s value failed", self.request.channel)
                await asyncio.sleep(1.0)
                self._dirty = True

    async def _wait_for_trade(self, seq: int) -> None:
        if seq <= 0 or self.pair_id is None or self._has_trade is None:
            return
        deadline = time.monotonic() + self._catch_up_seconds
        delay = 0.002
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if await self._has_trade(self.pair_id, seq):
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        log.warning("ws: market data has not stored trade %d of pair %s yet", seq, self.pair_id)

    async def _tick(self) -> None:
        while self.subscribers > 0:
            await asyncio.sleep(self._refresh_seconds)
            self.trigger()
