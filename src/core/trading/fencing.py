"""A storage whose write units of work commit only while a lease is held (fencing).

The engine gives each pair's ``PairWriter`` a ``FencedStorage`` for the pair's lease. Every
``commit()`` of a writing unit of work first asks ``uow.leases.hold(name, holder, now)`` in
the same transaction: when the lease expired or another engine took it, the commit is refused
(``LeaseLost``), the writer rolls back and rebuilds, and its callers get ``BatchFailed``. When
the lease is held, no other engine's take commits before this transaction ends, so a new owner
rebuilds from a state that includes every batch its predecessor committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.ports.clock import Clock
from core.ports.storage import Storage, UnitOfWork
from core.shared.errors import ServiceUnavailable


class LeaseLost(ServiceUnavailable):
    """The pair's lease is no longer this engine's: nothing of the batch was committed."""

    code = "lease_lost"


class _FencedUnitOfWork(UnitOfWork):
    def __init__(self, inner: UnitOfWork, fence: FencedStorage) -> None:
        self._inner = inner
        self._fence = fence

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _begin(self) -> None:
        await self._inner.__aenter__()

    async def _end(self) -> None:
        await self._inner.__aexit__(None, None, None)

    async def commit(self) -> None:
        fence = self._fence
        if not await self._inner.leases.hold(fence.name, fence.holder, now=fence.clock.now()):
            fence.on_lost()
            raise LeaseLost(f"lease {fence.name} is no longer held by this engine")
        await self._inner.commit()


class FencedStorage(Storage):
    """Wraps ``inner``; writes commit only while ``holder`` holds the lease ``name``.
    ``on_lost`` runs when a commit finds the lease gone (the engine stops the pair)."""

    def __init__(
        self,
        inner: Storage,
        clock: Clock,
        *,
        name: str,
        holder: str,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.inner = inner
        self.clock = clock
        self.name = name
        self.holder = holder
        self.on_lost = on_lost

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        inner = self.inner.unit_of_work(read_only=read_only)
        return inner if read_only else _FencedUnitOfWork(inner, self)

    async def ping(self) -> None:
        await self.inner.ping()
