"""The HTTP client shared by the Entity Permissions Core adapters (authorize and event feed).

Every failure to get a usable answer (timeout, refused connection, 5xx, a 4xx such as a bad
API key, an answer that is not JSON) becomes the core's ``ServiceUnavailable``: callers fail
closed and the HTTP adapter answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import httpx

from core.shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
AUTHORIZE_PATH = "/api/v1/authorize"
EVENTS_PATH = "/api/v1/events"
HEALTH_PATH = "/api/v1/health"
DEFAULT_TIMEOUT_SECONDS = 3.0


class PermissionsCoreClient:
    """JSON over HTTP to one Entity Permissions Core, with an API key and a hard deadline.

    The ``httpx.AsyncClient`` is made lazily in the running event loop (and again if the
    loop changes, as it does between tests), and closed by ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the Entity Permissions Core URL must be http(s), not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout_seconds = timeout_seconds
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            headers = {"Accept": "application/json", "User-Agent": "rwa-market"}
            if self._api_key:
                headers[API_KEY_HEADER] = self._api_key
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout_seconds),
                transport=self._transport,
                follow_redirects=False,
            )
            self._loop = loop
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer of a 2xx response; ``ServiceUnavailable`` otherwise."""
        what = f"{method} {path}"
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._http().request(method, path, json=json_body, params=params)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._unavailable(what, f"no answer within {self.timeout_seconds:g}s") from exc
        except httpx.HTTPError as exc:
            raise self._unavailable(what, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise self._unavailable(what, f"answered HTTP {response.status_code}")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise self._unavailable(what, "answered something that is not JSON") from exc

    def _unavailable(self, what: str, why: str) -> ServiceUnavailable:
        log.warning("Entity Permissions Core %s: %s", what, why)
        return ServiceUnavailable(
            f"the Entity Permissions Core cannot answer: {why}",
            details={"dependency": "entity_permissions_core"},
        )

    def malformed(self, what: str, why: str) -> ServiceUnavailable:
        """An answer that parsed but does not say what it must."""
        return self._unavailable(what, f"malformed answer: {why}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(RuntimeError):  # its loop is gone (a finished test)
                await client.aclose()


def unwrap(body: Any) -> Any:
    """Accept both a bare object and the ``{"data": ...}`` envelope."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict | list):
        return body["data"]
    return body
