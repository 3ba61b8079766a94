"""The outbox relay: publishes committed events, stream by stream in order, and runs their
reactions.

How a pass goes (``pump``):

1. **Leadership.** One relay at a time publishes: the holder of the ``outbox-relay`` lease in
   storage. Every API process runs a relay; the others retry the lease every third of its
   lifetime, and one of them takes over when the leader stops (it releases the lease) or
   dies (its lease expires). One leader reading the outbox in position order keeps every
   stream's order across processes.
2. **Read** a batch of unfinished messages in a read-only unit of work, which is closed
   before anything is published: no transaction stays open while the bus or a reaction
   runs, so writers never wait for the relay.
3. **Deliver** each message: publish it on the bus unless it was already published, then run
   the reactions to its type unless they already ran. A reaction that fails holds back the
   rest of its stream for this pass (other streams go on); the message stays pending as
   published, so the next pass retries the reaction without publishing the event again.
4. **Mark** in one short write what went out (``published``) and what was reacted to
   (``reacted``).

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
from contextlib import AbstractContextManager
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
        reaction_context: Callable[[str | None], AbstractContextManager[object]] | None = None,
    ) -> None:
        """``reaction_context(correlation_id)`` wraps each message's reactions (the logging
        context of the request that wrote the event; nothing by default)."""
        self._storage = storage
        self._reaction_context = reaction_context or (lambda _: contextlib.nullcontext())
        self._bus = bus
        self._clock = clock or _WallClock()
        self._batch = batch_size
        self._interval = interval
        self._lease_seconds = lease_seconds
        self._retry_delay = retry_delay
        self.holder = holder or f"relay-{uuid.uuid4()}"
        self._reactions: dict[str, list[Reaction]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
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

    @property
    def is_leader(self) -> bool:
        return time.monotonic() < self._lease_until

    # -- one pass --------------------------------------------------------------------------

    async def pump(self) -> int:
        """Relay what is pending now, if this relay holds the lease; return how many
        messages were finished (published and reacted to). Stops early, leaving the rest
        for a later pass, when a reaction failed."""
        total = 0
        while await self._hold_lease():
            async with self._storage.unit_of_work(read_only=True) as uow:
                batch = await uow.outbox.pending(self._batch)
            if not batch:
                return total
            published, reacted, complete = await self._deliver(batch)
            if published or reacted:
                async with self._storage.unit_of_work() as uow:
                    await uow.outbox.mark_published(published)
                    await uow.outbox.mark_reacted(reacted)
                    await uow.commit()
            total += len(reacted)
            if not complete:
                self.failures += 1
                return total
        return total

    async def _deliver(self, batch: list[OutboxMessage]) -> tuple[list[int], list[int], bool]:
        """Publish and react in position order; return the positions published, the ones
        reacted to, and whether nothing was held back."""
        published: list[int] = []
        reacted: list[int] = []
        held_back: set[str] = set()
        for message in batch:
            event = message.event
            stream, seq = event.stream, event.seq
            if stream in held_back:
                continue
            if not self.is_leader:  # the lease ran out while we were busy: stop here
                held_back.add("*")
                break
            if not message.published:
                if seq is None or seq > self._published.get(stream, 0):
                    try:
                        await self._bus.publish(event)
                    except Exception as exc:
                        log.warning("outbox relay: publishing failed (%s)", describe(exc))
                        held_back.add("*")
                        break
                    if seq is not None:
                        self._published[stream] = seq
                published.append(message.position)
            if not message.reacted:
                new = seq is None or seq > self._reacted.get(stream, 0)
                if new and not await self._react(event, message.correlation_id):
                    held_back.add(stream)
                    continue
                if seq is not None:
                    self._reacted[stream] = max(seq, self._reacted.get(stream, 0))
                reacted.append(message.position)
        return published, reacted, not held_back

    async def _react(self, event: DomainEvent, correlation_id: str | None) -> bool:
        for reaction in self._reactions.get(event.type, []):
            try:
                with self._reaction_context(correlation_id):
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
        while not self._stopping:
            self._wake.clear()  # before pumping, so a commit during the pump is not missed
            failures = self.failures
            try:
                await self.pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: %s; will retry", describe(exc))
                failures = -1
            if self._stopping:
                return
            delay = self._retry_delay if self.failures != failures else self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

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
        self._wake.set()
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
