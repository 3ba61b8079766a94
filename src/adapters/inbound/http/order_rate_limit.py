"""Per-user limit on order submission (``POST /api/v1/trading/orders``): 429 with
``Retry-After`` and the error envelope, through the rate-limit port.

The key is the authenticated user, so it holds across addresses and behind proxies; it is
checked after authentication and before the body is read. If the limiter's store cannot be
reached the order is let through (the writer's own checks still apply), like the per-address
limit.
"""

from __future__ import annotations

import logging
import math

import attrs
from quart import Response

from adapters.inbound.http.errors import error_response
from core.ports.rate_limit import RateLimiter

log = logging.getLogger(__name__)


@attrs.frozen
class OrderRateLimit:
    """``limit`` order submissions per ``window_seconds`` for each user."""

    limiter: RateLimiter
    limit: int
    window_seconds: float


def order_key(user_id: str) -> str:
    return f"orders:{user_id}"


async def refuse_if_over(config: OrderRateLimit | None, user_id: str) -> Response | None:
    """Count one submission of ``user_id``; the 429 answer when over the limit, else None."""
    if config is None:
        return None
    try:
        decision = await config.limiter.hit(order_key(user_id), config.limit, config.window_seconds)
    except Exception:  # the limiter's store is down: accept rather than refuse every order
        log.warning("order rate limiter unavailable; order allowed", exc_info=True)
        return None
    if decision.allowed:
        return None
    retry_after = max(1, math.ceil(decision.retry_after_seconds))
    response = error_response(
        429,
        "rate_limited",
        f"more than {config.limit} orders in {config.window_seconds:g} s from this user; slow down",
        {"retryAfterSeconds": retry_after, "limit": config.limit, "scope": "user"},
    )
    response.headers["Retry-After"] = str(retry_after)
    return response
