"""A cache that counts its hits and misses (``rwa_cache_requests_total``) around another."""

from __future__ import annotations

from core.ports.cache import Cache
from core.ports.metrics import Metrics


class MeteredCache(Cache):
    def __init__(self, inner: Cache, metrics: Metrics, *, name: str = "default") -> None:
        self._inner = inner
        self._metrics = metrics
        self._name = name

    async def get(self, key: str) -> bytes | None:
        value = await self._inner.get(key)
        self._metrics.cache_hit(self._name, hit=value is not None)
        return value

    async def set(self, key: str, value: bytes | str, *, ttl_seconds: float | None = None) -> None:
        await self._inner.set(key, value, ttl_seconds=ttl_seconds)

    async def delete(self, key: str) -> bool:
        return await self._inner.delete(key)

    async def ping(self) -> None:
        await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()
