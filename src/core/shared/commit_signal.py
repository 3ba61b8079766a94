"""A storage decorator that tells listeners after each commit (to wake the outbox relay)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.ports.storage import Storage, UnitOfWork

log = logging.getLogger(__name__)

Listener = Callable[[], None]


class _SignallingUnitOfWork(UnitOfWork):
    def __init__(self, inner: UnitOfWork, listeners: list[Listener]) -> None:
        self._inner = inner
        self._listeners = listeners

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _begin(self) -> None:
        await self._inner.__aenter__()

    async def _end(self) -> None:
        await self._inner.__aexit__(None, None, None)

    async def commit(self) -> None:
        await self._inner.commit()
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a listener never breaks a commit that happened
                log.exception("commit listener failed")


class SignallingStorage(Storage):
    """Wraps any ``Storage``; ``on_commit`` listeners run after every successful commit."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self._listeners: list[Listener] = []

    def on_commit(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        inner = self.inner.unit_of_work(read_only=read_only)
        return inner if read_only else _SignallingUnitOfWork(inner, self._listeners)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
