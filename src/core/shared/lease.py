"""A named lease in storage: at most one holder at a time (e.g. the one active poller).

``acquire()`` takes the lease, or renews it when this holder has it, for ``ttl_seconds``; it
answers False while another holder's lease runs. A holder that stops renewing (killed,
frozen) loses the lease when it expires and another takes over. ``release()`` hands it back
at once. Times come from the ``Clock`` port, so holders on several machines need clocks that
agree to well within ``ttl_seconds``.
"""

from __future__ import annotations

from datetime import timedelta

from core.ports.clock import Clock
from core.ports.storage import Storage
from core.shared.errors import ConcurrentModification


class StorageLease:
    def __init__(
        self, storage: Storage, clock: Clock, *, name: str, holder: str, ttl_seconds: float
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("a lease must last a positive time")
        self.name = name
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self._storage = storage
        self._clock = clock

    async def acquire(self) -> bool:
        """Take or renew the lease; False when another holder has it."""
        now = self._clock.now()
        until = now + timedelta(seconds=self.ttl_seconds)
        try:
            async with self._storage.unit_of_work() as uow:
                taken = await uow.leases.acquire(self.name, self.holder, now=now, until=until)
                if taken:
                    await uow.commit()
        except ConcurrentModification:  # another holder took it in the same instant
            return False
        return taken

    async def release(self) -> None:
        """Give the lease up if this holder has it."""
        async with self._storage.unit_of_work() as uow:
            await uow.leases.release(self.name, self.holder)
            await uow.commit()
