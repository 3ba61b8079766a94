"""``HttpJsonValuationSource``: reads each market's valuation from an HTTP JSON endpoint with
httpx.

``GET`` on a URL template (``RWA_VALUATION_SOURCE_URL``) where ``{symbol}`` is the market's
token symbol and ``{marketId}`` its id (each percent-encoded), for example
``https://valuer.example/v1/assets/{symbol}/valuation``; a 200 answer carries the document of
``adapters.outbound.valuations.answer``. Another status, a body over 64 KiB, a redirect, a
request that fails or takes longer than ``timeout`` seconds in all (however slowly the bytes
drip), and every malformed answer are a ``ValuationSourceError`` naming the cause.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlsplit

import httpx

from adapters.outbound.valuations.answer import MAX_BODY, fail, parse_answer
from core.marketdata.valuations import MAX_SOURCE
from core.ports.valuation_source import ValuationQuote, ValuationSource, ValuationSourceError


def fill(template: str, *, symbol: str, market_id: str) -> str:
    """``template`` with ``{symbol}`` and ``{marketId}`` replaced (as given: callers quote)."""
    return template.replace("{symbol}", symbol).replace("{marketId}", market_id)


def check_template(template: str) -> str:
    """``template`` if it is an http(s) URL with ``{symbol}`` or ``{marketId}`` and no other
    braces; ``ValueError`` saying what is wrong otherwise."""
    if not template.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    rest = fill(template, symbol="", market_id="")
    if rest == template:
        raise ValueError("must contain {symbol} or {marketId}")
    if "{" in rest or "}" in rest:
        raise ValueError("only {symbol} and {marketId} may appear in braces")
    if not urlsplit(rest).hostname:
        raise ValueError("has no host")
    return template


def source_name(template: str) -> str:
    """The host (and port) of ``template``: the default name of its valuations' source."""
    parts = urlsplit(fill(template, symbol="x", market_id="x"))
    host = parts.hostname or "http"
    return (f"{host}:{parts.port}" if parts.port else host)[:MAX_SOURCE]


class HttpJsonValuationSource(ValuationSource):
    def __init__(
        self,
        url_template: str,
        *,
        source: str | None = None,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._template = check_template(url_template)
        self._source = source or source_name(url_template)
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=timeout, headers=headers or {}, follow_redirects=False
        )

    @property
    def source(self) -> str:
        return self._source

    def url(self, market_id: str, symbol: str) -> str:
        return fill(
            self._template, symbol=quote(symbol, safe=""), market_id=quote(market_id, safe="")
        )

    async def latest(self, market_id: str, symbol: str) -> ValuationQuote:
        try:
            async with asyncio.timeout(self._timeout):
                body = await self._get(self.url(market_id, symbol), symbol)
        except TimeoutError as exc:
            raise fail(self._source, symbol, f"no answer within {self._timeout:g} s") from exc
        return parse_answer(body, source=self._source, market_id=market_id, symbol=symbol)

    async def _get(self, url: str, symbol: str) -> bytes:
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise fail(self._source, symbol, f"status {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise fail(self._source, symbol, "the body is too large")
        except ValuationSourceError:
            raise
        except httpx.TimeoutException as exc:
            raise fail(self._source, symbol, f"no answer within {self._timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise fail(self._source, symbol, f"request failed ({type(exc).__name__})") from exc
        return bytes(body)

    async def close(self) -> None:
        await self._client.aclose()
