"""The outbox relay: publishes committed events, stream by stream in order, and runs their
reactions.

How the relay goes (two lanes, one leader):

1. **Leadership.** One relay at a time publishes: the holder of the ``outbox-relay`` lease in
   storage. Every API process runs a relay; the others retry the lease every third of its
   lifetime, and one of them takes over when the leader stops (it releases the lease) or
   dies (its lease expires). One leader reading the outbox in position order keeps every
   stream's order across processes.
2. **Publishing lane** (``publish_pending``): read the messages not yet published in a
   read-only unit of work (closed before anything is published: no transaction stays open
   while the bus runs, so writers never wait for the relay), publish them in position order,
   and mark them ``published`` in one short write. It never waits behind a reaction: a trade
   reaches WebSocket clients while the reactions of earlier trades still run.
3. **Reaction lane** (``react_pending``): read the unfinished messages and run the reactions
   to each published one, stream by stream in order, then mark them ``reacted``. A reaction
   that fails holds back the reactions of the rest of its stream for this pass (other
   streams go on); the next pass retries it. A message the publishing lane has not sent yet
   waits for it: reactions never run before their event went out.

Delivery is at least once: a crash between publishing and marking publishes again. Each
event carries ``(stream, seq)``: subscriptions drop what they have already seen, reactions
must be idempotent, and this relay also remembers, per stream, the last seq it published and
reacted to, so a failed mark does not repeat either in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from core.ports.clock import Clock
from core.ports.event_bus import EventBus
from core.ports.storage import OutboxMessage, Storage
from core.shared.errors import ConcurrentModification
from core.shared.events import DomainEvent

log = logging.getLogger(__name__)

Reaction = Callable[[DomainEvent], Awaitable[None]]

LEASE = "outbox-relay"


class _WallClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    """One line for a log: the exception's type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class OutboxRelay:
    """Publishes the outbox to the bus and runs reactions; see the module docstring."""

    def __init__(
        self,
        storage: Storage,
        bus: EventBus,
        clock: Clock | None = None,
        *,
        batch_size: int = 100,
        interval: float = 0.1,
        lease_seconds: float = 5.0,
        retry_delay: float = 1.0,
        holder: str | None = None,
    ) -> None:
        self._storage = storage
        self._bus = bus
        self._clock = clock or _WallClock()
        self._batch = batch_size
        self._interval = interval
        self._lease_seconds = lease_seconds
        self._retry_delay = retry_delay
        self.holder = holder or f"relay-{uuid.uuid4()}"
        self._reactions: dict[str, list[Reaction]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a commit: the publishing lane has work
        self._wake_react = asyncio.Event()  # a publication: the reaction lane has work
        self._lease_lock = asyncio.Lock()  # the two lanes renew the lease one at a time
        self._waiting_publication = False  # the last reaction pass met unpublished messages
        self._stopping = False
        self._lease_until = 0.0  # monotonic time our lease runs out (0: not held)
        self._next_try = 0.0  # monotonic time a non-leader may try the lease again
        self._published: dict[str, int] = {}  # stream -> last seq published by this relay
        self._reacted: dict[str, int] = {}  # stream -> last seq reacted to by this relay
        self.failures = 0  # passes that left something to retry

    def on(self, event_type: str, reaction: Reaction) -> None:
        self._reactions.setdefault(event_type, []).append(reaction)

    def wake(self) -> None:
        self._wake.set()
        self._wake_react.set()

    @property
    def is_leader(self) -> bool:
        return time.monotonic() < self._lease_until

    # -- one pass --------------------------------------------------------------------------

    async def pump(self) -> int:
        """Publish what is pending now, then run its reactions, if this relay holds the
        lease; return how many messages were finished (published and reacted to). Stops
        early, leaving the rest for a later pass, when a reaction failed."""
        total = 0
        while True:
            failures = self.failures
            await self.publish_pending()
            total += await self.react_pending()
            if self.failures != failures or not self._waiting_publication:
                return total

    async def publish_pending(self) -> int:
        """The publishing lane: send every unpublished message in position order and mark
        it; return how many were marked. Stops at the first publication that fails."""
        total = 0
        while await self._hold_lease():
            async with self._storage.unit_of_work(read_only=True) as uow:
                batch = await uow.outbox.unpublished(self._batch)
            if not batch:
                return total
            published, complete = await self._publish(batch)
            if published:
                async with self._storage.unit_of_work() as uow:
                    await uow.outbox.mark_published(published)
                    await uow.commit()
                self._wake_react.set()
            total += len(published)
            if not complete:
                self.failures += 1
                return total
        return total

    async def react_pending(self) -> int:
        """The reaction lane: run the reactions of published messages, stream by stream in
        order, and mark them; return how many messages were finished."""
        total = 0
        self._waiting_publication = False
        while await self._hold_lease():
            async with self._storage.unit_of_work(read_only=True) as uow:
                batch = await uow.outbox.pending(self._batch)
            if not batch:
                return total
            reacted, failed, waiting = await self._react_batch(batch)
            if reacted:
                async with self._storage.unit_of_work() as uow:
                    await uow.outbox.mark_reacted(reacted)
                    await uow.commit()
            total += len(reacted)
            if failed:
                self.failures += 1
                return total
            self._waiting_publication = waiting
            if waiting:  # the publishing lane has not sent these yet: it wakes us when it has
                return total
        return total

    async def _publish(self, batch: list[OutboxMessage]) -> tuple[list[int], bool]:
        published: list[int] = []
        for message in batch:
            event = message.event
            stream, seq = event.stream, event.seq
            if not self.is_leader:  # the lease ran out while we were busy: stop here
                return published, False
            if seq is None or seq > self._published.get(stream, 0):
                try:
                    await self._bus.publish(event)
                except Exception as exc:
                    log.warning("outbox relay: publishing failed (%s)", describe(exc))
                    return published, False
                if seq is not None:
                    self._published[stream] = seq
            published.append(message.position)
        return published, True

    async def _react_batch(self, batch: list[OutboxMessage]) -> tuple[list[int], bool, bool]:
        """React in position order; return the positions reacted to, whether a reaction
        failed, and whether messages wait for their publication."""
        reacted: list[int] = []
        held_back: set[str] = set()
        failed = waiting = False
        for message in batch:
            event = message.event
            stream, seq = event.stream, event.seq
            if stream in held_back or message.reacted:
                continue
            if not self.is_leader:
                return reacted, True, waiting
            sent = message.published or (seq is not None and seq <= self._published.get(stream, 0))
            if not sent:
                held_back.add(stream)
                waiting = True
                continue
            new = seq is None or seq > self._reacted.get(stream, 0)
            if new and not await self._react(event):
                held_back.add(stream)
                failed = True
                continue
            if seq is not None:
                self._reacted[stream] = max(seq, self._reacted.get(stream, 0))
            reacted.append(message.position)
        return reacted, failed, waiting

    async def _react(self, event: DomainEvent) -> bool:
        for reaction in self._reactions.get(event.type, []):
            try:
                await reaction(event)
            except Exception:
                log.exception(
                    "outbox relay: a reaction to %s (%s #%s) failed; it will be retried",
                    event.type,
                    event.stream,
                    event.seq,
                )
                return False
        return True

    # -- the lease ---------------------------------------------------------------------------

    async def _hold_lease(self) -> bool:
        """Take or renew the lease when a third of its life is gone; True while held."""
        async with self._lease_lock:
            return await self._renew_lease()

    async def _renew_lease(self) -> bool:
        now_m = time.monotonic()
        if self._lease_until - now_m > self._lease_seconds * 2 / 3:
            return True
        if self._lease_until <= now_m and now_m < self._next_try:
            return False  # another relay leads; try again later
        now = self._clock.now()
        try:
            async with self._storage.unit_of_work() as uow:
                held = await uow.leases.acquire(
                    LEASE, self.holder, now=now, until=now + timedelta(seconds=self._lease_seconds)
                )
                if held:
                    await uow.commit()
        except ConcurrentModification:
            held = False
        was_leader = self.is_leader
        if held:
            self._lease_until = now_m + self._lease_seconds
            if not was_leader:
                log.info("outbox relay %s leads", self.holder)
        else:
            self._lease_until = 0.0
            self._next_try = now_m + self._lease_seconds / 3
        return held

    async def _release_lease(self) -> None:
        if self._lease_until == 0.0:
            return
        self._lease_until = 0.0
        async with self._storage.unit_of_work() as uow:
            await uow.leases.release(LEASE, self.holder)
            await uow.commit()

    # -- running -----------------------------------------------------------------------------

    async def _run(self) -> None:
        await asyncio.gather(
            self._lane(self.publish_pending, self._wake),
            self._lane(self.react_pending, self._wake_react),
        )

    async def _lane(self, work: Callable[[], Awaitable[int]], wake: asyncio.Event) -> None:
        while not self._stopping:
            wake.clear()  # before working, so a commit during the pass is not missed
            failures = self.failures
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: %s; will retry", describe(exc))
                failures = -1
            if self._stopping:
                return
            delay = self._retry_delay if self.failures != failures else self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the current pass, flush what is pending, give the lease up, and stop.

        A flush that fails (the database busy under load, say) logs one line: what was not
        marked stays pending, for this service's next start or another process's relay.
        """
        if self._task is None:
            return
        # A flag, not only cancel(): on Python 3.11 wait_for can swallow a cancellation.
        self._stopping = True
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5.0)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        try:
            await self.pump()  # flush what was committed before shutdown
        except Exception as exc:
            log.warning(
                "outbox relay: final flush failed (%s); unfinished messages stay pending",
                describe(exc),
            )
        try:
            await self._release_lease()
        except Exception as exc:
            log.warning(
                "outbox relay: could not release its lease (%s); it expires in %gs",
                describe(exc),
                self._lease_seconds,
            )
