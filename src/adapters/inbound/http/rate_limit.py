"""Per-client request limits on the API (429 with ``Retry-After``), through the rate-limit port.

The client is the connection's peer address, unless the peer is a trusted proxy
(``RWA_TRUSTED_PROXIES``): then ``X-Forwarded-For`` is read from the right, past every trusted
hop, and the first untrusted address is the client. An untrusted peer's ``X-Forwarded-For``
is ignored, so a client cannot pick its own key.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Iterable, Sequence

import attrs
from quart import Quart, Response, request

from adapters.inbound.http.errors import error_response
from core.ports.rate_limit import RateLimiter

log = logging.getLogger(__name__)

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
FORWARDED_FOR = "X-Forwarded-For"
MAX_FORWARDED_HOPS = 32

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> IpAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IpNetwork]
) -> str:
    """The client's address: ``peer``, or when ``peer`` is a trusted proxy, the rightmost
    ``X-Forwarded-For`` entry that is not itself a trusted proxy. An entry that is not an
    address stops the walk at the last trusted hop (which then stands for the client)."""
    if not peer:
        return "unknown"
    current = _address(peer)
    if current is None or not trusted:
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",")][-MAX_FORWARDED_HOPS:]
    while any(current in network for network in trusted) and hops:
        found = _address(hops.pop())
        if found is None:
            break
        current = found
    return str(current)


@attrs.frozen
class HttpRateLimit:
    """``limit`` requests per ``window_seconds`` for each client address."""

    limiter: RateLimiter
    limit: int
    window_seconds: float
    trusted_proxies: tuple[IpNetwork, ...] = ()


def install_rate_limit(app: Quart, config: HttpRateLimit) -> None:
    @app.before_request
    async def limit_requests() -> Response | None:
        if request.path in EXEMPT_PATHS or not request.path.startswith("/api/"):
            return None
        client = client_address(
            request.remote_addr, request.headers.getlist(FORWARDED_FOR), config.trusted_proxies
        )
        key = f"http:{client}"
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
