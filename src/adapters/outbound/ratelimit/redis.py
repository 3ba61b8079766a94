"""Rate limiter on Redis, shared by every API process.

The GCRA step of ``core.ports.rate_limit.gcra`` runs as one Lua script, so read, decide
and write are atomic, and it takes "now" from Redis ``TIME``, so hosts with skewed clocks
share one limit. The state is one integer per key (``{namespace}:rl:{key}``), expiring by
itself when it no longer restricts anything.
"""

from __future__ import annotations

from redis.asyncio import Redis

from core.ports.rate_limit import RateLimitDecision, RateLimiter, window_micros

# KEYS[1] state key; ARGV[1] limit, ARGV[2] window in microseconds.
# Returns {allowed 0/1, remaining, retry after in microseconds}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = math.max(1, math.floor(window / limit))
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if now < allow_at then
  return {0, 0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat),
           'PX', math.floor((new_tat - now) / 1000) + 1)
return {1, math.floor((window - (new_tat - now)) / interval), 0}
"""


class RedisRateLimiter(RateLimiter):
    def __init__(self, url: str, *, namespace: str = "rwa") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = f"{namespace}:rl:"
        self._script = self._redis.register_script(_GCRA)

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateLimitDecision:
        window_us = window_micros(limit, window_seconds)
        allowed, remaining, retry_us = await self._script(
            keys=[self._prefix + key], args=[limit, window_us]
        )
        return RateLimitDecision(
            allowed=bool(allowed),
            remaining=max(0, int(remaining)),
            retry_after_seconds=int(retry_us) / 1_000_000,
            limit=limit,
        )

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
