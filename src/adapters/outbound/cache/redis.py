"""Cache on Redis, shared by every process: ``{namespace}:cache:{key}`` with ``PX`` expiry."""

from __future__ import annotations

import math

from redis.asyncio import Redis

from core.ports.cache import Cache, check_ttl, encode_value


class RedisCache(Cache):
    def __init__(self, url: str, *, namespace: str = "rwa") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = f"{namespace}:cache:"

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes | str, *, ttl_seconds: float | None = None) -> None:
        check_ttl(ttl_seconds)
        data = encode_value(value)
        px = None if ttl_seconds is None else max(1, math.ceil(ttl_seconds * 1000))
        await self._redis.set(self._prefix + key, data, px=px)

    async def delete(self, key: str) -> bool:
        return bool(await self._redis.delete(self._prefix + key))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
