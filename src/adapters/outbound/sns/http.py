"""``HttpSnsGateway``: fetch SNS signing certificates (cached) and confirm subscriptions.

The webhook has already checked that every URL it passes is https on an SNS host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from core.ports.sns import SnsGateway
from core.shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
MAX_CERTIFICATE_BYTES = 64 * 1024


class HttpSnsGateway(SnsGateway):
    """Certificates are cached by URL for ``cache_seconds`` (SNS rotates them rarely)."""

    def __init__(
        self,
        *,
        timeout_seconds: float = 5.0,
        cache_seconds: float = 3600.0,
        max_cached: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._cache_seconds = cache_seconds
        self._max_cached = max_cached
        self._transport = transport
        self._cache: dict[str, tuple[float, bytes]] = {}
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0  # network fetches of certificates (the cache's misses)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                transport=self._transport,
                follow_redirects=False,
                headers={"User-Agent": "rwa-market"},
            )
            self._loop = loop
        return self._client

    async def _get(self, url: str, what: str) -> httpx.Response:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http().get(url)
        except (TimeoutError, httpx.HTTPError) as exc:
            raise self._unavailable(what, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise self._unavailable(what, f"HTTP {response.status_code}")
        return response

    async def fetch_certificate(self, url: str) -> bytes:
        cached = self._cache.get(url)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        response = await self._get(url, "certificate")
        self.fetches += 1
        pem = response.content
        if len(pem) > MAX_CERTIFICATE_BYTES or PEM_MARKER not in pem:
            raise self._unavailable("certificate", "the answer is not a PEM certificate")
        if len(self._cache) >= self._max_cached:
            self._cache.pop(min(self._cache, key=lambda key: self._cache[key][0]))
        self._cache[url] = (time.monotonic(), pem)
        return pem

    async def confirm_subscription(self, subscribe_url: str) -> None:
        await self._get(subscribe_url, "subscription confirmation")
        log.info("SNS subscription confirmed")

    @staticmethod
    def _unavailable(what: str, why: str) -> ServiceUnavailable:
        log.warning("SNS %s request failed: %s", what, why)
        return ServiceUnavailable(f"SNS cannot be reached ({what}): {why}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(RuntimeError):  # its loop is gone (a finished test)
                await client.aclose()
