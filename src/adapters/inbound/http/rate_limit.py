"""Per-client request limits on the API (429 with ``Retry-After``), through the rate-limit port."""

from __future__ import annotations

import logging
import math

import attrs
from quart import Quart, Response, request

from adapters.inbound.http.errors import error_response
from core.ports.rate_limit import RateLimiter

log = logging.getLogger(__name__)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


@attrs.frozen
class HttpRateLimit:
    """``limit`` requests per ``window_seconds`` for each client address."""

    limiter: RateLimiter
    limit: int
    window_seconds: float


def install_rate_limit(app: Quart, config: HttpRateLimit) -> None:
    @app.before_request
    async def limit_requests() -> Response | None:
        if request.path in EXEMPT_PATHS or not request.path.startswith("/api/"):
            return None
        key = f"http:{request.remote_addr or 'unknown'}"
        try:
            decision = await config.limiter.hit(key, config.limit, config.window_seconds)
        except Exception:  # the limiter's store is down: serve rather than refuse everyone
            log.warning("rate limiter unavailable; request allowed", exc_info=True)
            return None
        if decision.allowed:
            return None
        retry_after = max(1, math.ceil(decision.retry_after_seconds))
        response = error_response(
            429,
            "rate_limited",
            f"more than {config.limit} requests in {config.window_seconds:g} s; slow down",
            {"retryAfterSeconds": retry_after, "limit": config.limit},
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
