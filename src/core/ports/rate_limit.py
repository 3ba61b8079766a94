"""Rate-limit port: may this key act once more now?

The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
timestamp): ``limit`` actions per ``window_seconds``, as a burst of up to ``limit`` and then
evenly spaced at one per ``window_seconds / limit``. A refused hit is not counted. Every
adapter implements the same arithmetic (``gcra``), so they agree to the millisecond.
"""

from __future__ import annotations

import abc
import math

import attrs


@attrs.frozen
class RateLimitDecision:
    allowed: bool
    remaining: int  # hits still allowed right now, after this one
    retry_after_seconds: float  # 0 when allowed; else when the next hit would be allowed
    limit: int


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def hit(self, key: str, limit: int, window_seconds: float) -> RateLimitDecision:
        """Count one action of ``key`` if the limit allows it, and say so."""

    @abc.abstractmethod
    async def reset(self, key: str) -> None:
        """Forget what ``key`` did."""

    async def ping(self) -> None:  # noqa: B027 - in-process limiters are always reachable
        """Raise if the store cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


@attrs.frozen
class GcraStep:
    decision: RateLimitDecision
    new_tat_us: int | None  # the state to store when allowed; None when refused


def check_limit_arguments(limit: int, window_seconds: float) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if not window_seconds > 0 or math.isinf(window_seconds):
        raise ValueError(f"window_seconds must be a positive number, not {window_seconds}")


def window_micros(limit: int, window_seconds: float) -> int:
    """The window in whole microseconds, after checking the arguments."""
    check_limit_arguments(limit, window_seconds)
    return max(1, round(window_seconds * 1_000_000))


def gcra(now_us: int, tat_us: int | None, limit: int, window_seconds: float) -> GcraStep:
    """One GCRA step in integer microseconds (exact, also in Lua's doubles).

    ``tat_us``: the stored theoretical arrival time, or None for a fresh key.
    """
    window_us = window_micros(limit, window_seconds)
    interval_us = max(1, window_us // limit)
    tat = now_us if tat_us is None or tat_us < now_us else tat_us
    new_tat = tat + interval_us
    allow_at = new_tat - window_us
    if now_us < allow_at:
        retry = (allow_at - now_us) / 1_000_000
        return GcraStep(RateLimitDecision(False, 0, retry, limit), None)
    remaining = (window_us - (new_tat - now_us)) // interval_us
    return GcraStep(RateLimitDecision(True, max(0, remaining), 0.0, limit), new_tat)
