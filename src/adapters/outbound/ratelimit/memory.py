"""In-process rate limiter (one process only): GCRA state in a dict."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.ports.rate_limit import RateLimitDecision, RateLimiter, gcra


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


class MemoryRateLimiter(RateLimiter):
    def __init__(
        self, *, now_us: Callable[[], int] = _wall_clock_us, sweep_above: int = 100_000
    ) -> None:
        self._now_us = now_us
        self._tat: dict[str, int] = {}
        self._sweep_above = sweep_above

    async def hit(self, key: str, limit: int, window_seconds: float) -> RateLimitDecision:
        now = self._now_us()
        step = gcra(now, self._tat.get(key), limit, window_seconds)
        if step.new_tat_us is not None:
            self._tat[key] = step.new_tat_us
            if len(self._tat) > self._sweep_above:
                self._sweep(now)
        return step.decision

    async def reset(self, key: str) -> None:
        self._tat.pop(key, None)

    def _sweep(self, now: int) -> None:
        """Drop keys whose state has run out (equivalent to a fresh key)."""
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]
