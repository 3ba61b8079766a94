"""Cache port contract, run against the memory and the Redis cache."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from adapters.outbound.cache.memory import MemoryCache
from adapters.outbound.cache.redis import RedisCache
from core.ports.cache import Cache


def key() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


class CacheContract:
    def make(self) -> Cache:
        raise NotImplementedError

    async def test_missing_is_none(self) -> None:
        cache = self.make()
        assert await cache.get(key()) is None
        assert await cache.get_text(key()) is None
        await cache.close()

    async def test_bytes_round_trip_exactly(self) -> None:
        cache = self.make()
        k = key()
        value = bytes(range(256)) + b"\x00tail"
        await cache.set(k, value)
        assert await cache.get(k) == value
        await cache.close()

    async def test_str_is_stored_as_utf8(self) -> None:
        cache = self.make()
        k = key()
        await cache.set(k, "Lisboa \u2013 \u20ac")
        assert await cache.get(k) == "Lisboa \u2013 \u20ac".encode()
        assert await cache.get_text(k) == "Lisboa \u2013 \u20ac"
        await cache.close()

    async def test_overwrite_and_delete(self) -> None:
        cache = self.make()
        k = key()
        await cache.set(k, b"one")
        await cache.set(k, b"two")
        assert await cache.get(k) == b"two"
        assert await cache.delete(k) is True
        assert await cache.get(k) is None
        assert await cache.delete(k) is False
        await cache.close()

    async def test_ttl_expires(self) -> None:
        cache = self.make()
        short, forever = key(), key()
        await cache.set(short, b"x", ttl_seconds=0.15)
        await cache.set(forever, b"y")
        assert await cache.get(short) == b"x"
        await asyncio.sleep(0.3)
        assert await cache.get(short) is None
        assert await cache.delete(short) is False
        assert await cache.get(forever) == b"y"
        await cache.close()

    async def test_set_without_ttl_clears_an_earlier_ttl(self) -> None:
        cache = self.make()
        k = key()
        await cache.set(k, b"a", ttl_seconds=0.15)
        await cache.set(k, b"b")
        await asyncio.sleep(0.3)
        assert await cache.get(k) == b"b"
        await cache.close()

    @pytest.mark.parametrize("ttl", [0, -1.0])
    async def test_bad_ttl_is_refused(self, ttl: float) -> None:
        cache = self.make()
        with pytest.raises(ValueError):
            await cache.set(key(), b"x", ttl_seconds=ttl)
        await cache.close()

    async def test_other_value_types_are_refused(self) -> None:
        cache = self.make()
        with pytest.raises(TypeError):
            await cache.set(key(), 12)  # type: ignore[arg-type]
        await cache.close()

    async def test_ping(self) -> None:
        cache = self.make()
        await cache.ping()
        await cache.close()


class TestMemoryCache(CacheContract):
    def make(self) -> Cache:
        return MemoryCache()

    async def test_bounded_least_recently_used_goes_first(self) -> None:
        cache = MemoryCache(max_entries=2)
        await cache.set("a", b"1")
        await cache.set("b", b"2")
        assert await cache.get("a") == b"1"
        await cache.set("c", b"3")
        assert await cache.get("b") is None
        assert await cache.get("a") == b"1"


class TestRedisCache(CacheContract):
    @pytest.fixture(autouse=True)
    def _redis(self, clean_redis_url: str) -> None:
        self.url = clean_redis_url

    def make(self) -> Cache:
        return RedisCache(self.url)

    async def test_two_processes_share_the_cache(self) -> None:
        one, two = self.make(), self.make()
        k = key()
        await one.set(k, b"shared", ttl_seconds=5)
        assert await two.get(k) == b"shared"
        await one.close()
        await two.close()
