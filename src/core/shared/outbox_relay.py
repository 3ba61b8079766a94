"""The outbox relay: publishes committed events in order and runs their reactions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from core.ports.event_bus import EventBus
from core.ports.storage import Storage
from core.shared.events import DomainEvent

log = logging.getLogger(__name__)

Reaction = Callable[[DomainEvent], Awaitable[None]]


class OutboxRelay:
    """At-least-once: a message is marked published only after the bus and every reaction
    for its type succeeded, so a crash or an error means it is delivered again later."""

    def __init__(
        self, storage: Storage, bus: EventBus, *, batch_size: int = 100, interval: float = 0.1
    ) -> None:
        self._storage = storage
        self._bus = bus
        self._batch = batch_size
        self._interval = interval
        self._reactions: dict[str, list[Reaction]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def on(self, event_type: str, reaction: Reaction) -> None:
        self._reactions.setdefault(event_type, []).append(reaction)

    def wake(self) -> None:
        self._wake.set()

    async def pump(self) -> int:
        """Relay everything pending now; return how many messages went out.

        A batch is read, published and marked in one unit of work, so relays in several
        processes take disjoint batches where the store locks rows (Postgres SKIP LOCKED).
        """
        total = 0
        while True:
            async with self._storage.unit_of_work() as uow:
                batch = await uow.outbox.pending(self._batch)
                if not batch:
                    return total
                done: list[int] = []
                try:
                    for message in batch:
                        await self._bus.publish(message.event)
                        for reaction in self._reactions.get(message.event.type, []):
                            await reaction(message.event)
                        done.append(message.position)
                finally:
                    if done:  # what went out is marked even when a later message failed
                        await uow.outbox.mark_published(done)
                        await uow.commit()
                total += len(done)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before pumping, so a commit during the pump is not missed
            try:
                await self.pump()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay: publishing failed; will retry")
                await asyncio.sleep(1.0)
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the current pass, flush what is pending, and stop."""
        if self._task is not None:
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
            except Exception:
                log.exception("outbox relay: final flush failed; messages stay pending")
