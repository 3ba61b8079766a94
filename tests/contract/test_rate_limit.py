"""Rate-limit port contract, run against the memory and the Redis limiter."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from adapters.outbound.ratelimit.memory import MemoryRateLimiter
from adapters.outbound.ratelimit.redis import RedisRateLimiter
from core.ports.rate_limit import RateLimiter, gcra


def key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


class RateLimiterContract:
    def make(self) -> RateLimiter:
        raise NotImplementedError

    async def test_a_burst_of_limit_then_refusal(self) -> None:
        limiter = self.make()
        k = key()
        decisions = [await limiter.hit(k, 5, 1.0) for _ in range(6)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
        assert all(d.retry_after_seconds == 0 for d in decisions[:5])
        # one slot frees every window/limit = 0.2 s
        assert 0.1 < decisions[5].retry_after_seconds <= 0.2
        assert decisions[5].limit == 5
        await limiter.close()

    async def test_waiting_retry_after_allows_one_more_and_refusals_do_not_count(self) -> None:
        limiter = self.make()
        k = key()
        for _ in range(3):
            await limiter.hit(k, 3, 0.6)
        refused = [await limiter.hit(k, 3, 0.6) for _ in range(5)]
        assert not any(d.allowed for d in refused)
        await asyncio.sleep(refused[-1].retry_after_seconds + 0.02)
        again = await limiter.hit(k, 3, 0.6)
        assert again.allowed
        assert again.remaining == 0
        assert not (await limiter.hit(k, 3, 0.6)).allowed
        await limiter.close()

    async def test_a_full_window_later_the_whole_burst_is_back(self) -> None:
        limiter = self.make()
        k = key()
        for _ in range(4):
            assert (await limiter.hit(k, 4, 0.3)).allowed
        await asyncio.sleep(0.35)
        assert [(await limiter.hit(k, 4, 0.3)).allowed for _ in range(5)] == [True] * 4 + [False]
        await limiter.close()

    async def test_keys_are_independent_and_reset_forgets(self) -> None:
        limiter = self.make()
        a, b = key(), key()
        assert (await limiter.hit(a, 1, 10)).allowed
        assert not (await limiter.hit(a, 1, 10)).allowed
        assert (await limiter.hit(b, 1, 10)).allowed
        await limiter.reset(a)
        assert (await limiter.hit(a, 1, 10)).allowed
        await limiter.close()

    async def test_concurrent_hits_never_exceed_the_limit(self) -> None:
        limiters = [self.make(), self.make()]  # for Redis: two processes sharing one limit
        k = key()
        decisions = await asyncio.gather(*(limiters[i % 2].hit(k, 10, 60) for i in range(50)))
        assert sum(d.allowed for d in decisions) == 10
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
        for limiter in limiters:
            await limiter.close()

    @pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (5, 0.0), (5, -1.0)])
    async def test_bad_arguments_are_refused(self, limit: int, window: float) -> None:
        limiter = self.make()
        with pytest.raises(ValueError):
            await limiter.hit(key(), limit, window)
        await limiter.close()

    async def test_ping(self) -> None:
        limiter = self.make()
        await limiter.ping()
        await limiter.close()


def test_gcra_arithmetic() -> None:
    step = gcra(1_000_000, None, 3, 1.0)
    assert step.decision.allowed and step.decision.remaining == 2
    assert step.new_tat_us == 1_333_333
    full = gcra(1_000_000, 1_999_999, 3, 1.0)
    assert not full.decision.allowed and full.new_tat_us is None
    assert full.decision.retry_after_seconds == pytest.approx(0.333332)


class TestMemoryRateLimiter(RateLimiterContract):
    def make(self) -> RateLimiter:
        if not hasattr(self, "shared"):
            self.shared = MemoryRateLimiter()
        return self.shared  # one process: the "two limiters" are the same object

    async def test_sweeps_spent_keys(self) -> None:
        now = [0]
        limiter = MemoryRateLimiter(now_us=lambda: now[0], sweep_above=10)
        for i in range(11):
            await limiter.hit(f"k{i}", 1, 1.0)
        now[0] = 5_000_000
        await limiter.hit("fresh", 1, 1.0)
        assert len(limiter._tat) == 1


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture(autouse=True)
    def _redis(self, clean_redis_url: str) -> None:
        self.url = clean_redis_url

    def make(self) -> RateLimiter:
        return RedisRateLimiter(self.url)

    async def test_state_expires_in_redis(self) -> None:
        from redis.asyncio import Redis

        limiter = self.make()
        k = key()
        await limiter.hit(k, 2, 0.2)
        client = Redis.from_url(self.url)
        ttl_ms = await client.pttl(f"rwa:rl:{k}")
        assert 0 < ttl_ms <= 101
        await asyncio.sleep(0.15)
        assert await client.exists(f"rwa:rl:{k}") == 0
        await client.aclose()
        await limiter.close()
