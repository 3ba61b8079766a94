"""``HttpJsonPriceFeed``: reads prices from an HTTP JSON endpoint with httpx.

``GET {base_url}/prices/{symbol}`` (the path template is configurable) answers 200 with::

    {"symbol": "XAU", "price": "2034.15", "updatedAt": "2026-11-23T14:00:00Z"}

``price`` is a decimal string, or a JSON number read exactly (never through a float);
``updatedAt`` an ISO-8601 time with a zone, or whole Unix seconds; ``symbol``, when present,
must be the one asked for. Anything else (another status, a body over 64 KiB, a malformed,
non-positive or missing field, a timeout) is a ``PriceFeedError`` naming the cause.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from core.ports.price_feed import PriceFeed, PriceFeedError, PriceQuote
from core.shared import exact_json

MAX_BODY = 64 * 1024


class HttpJsonPriceFeed(PriceFeed):
    def __init__(
        self,
        base_url: str,
        symbols: list[str],
        *,
        source: str = "http",
        path: str = "/prices/{symbol}",
        timeout: float = 5.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        if "{symbol}" not in path:
            raise ValueError("the path template must contain {symbol}")
        self._path = path
        self._source = source
        self._symbols = sorted(symbols)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, headers=headers or {}
        )

    @property
    def source(self) -> str:
        return self._source

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def _fail(self, symbol: str, why: str) -> PriceFeedError:
        return PriceFeedError(f"{self._source}: {why} (price of {symbol})")

    async def latest(self, symbol: str) -> PriceQuote:
        url = self._path.format(symbol=quote(symbol, safe=""))
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise self._fail(symbol, f"status {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise self._fail(symbol, "the body is too large")
        except httpx.HTTPError as exc:
            raise self._fail(symbol, f"request failed ({type(exc).__name__})") from exc
        try:
            exact_json.check_nesting(bytes(body))
            document = exact_json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._fail(symbol, "the body is not JSON") from exc
        if not isinstance(document, dict):
            raise self._fail(symbol, "the body is not a JSON object")
        if "symbol" in document and document["symbol"] != symbol:
            raise self._fail(symbol, f"the answer is for {str(document['symbol'])[:20]!r}")
        return PriceQuote(
            symbol=symbol,
            price=self._price(symbol, document.get("price")),
            observed_at=self._time(symbol, document.get("updatedAt")),
            source=self._source,
        )

    def _price(self, symbol: str, value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise self._fail(symbol, "price must be a decimal string or an exact number")
        try:
            price = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
        except InvalidOperation as exc:
            raise self._fail(symbol, "price is not a decimal") from exc
        if not price.is_finite() or price <= 0:
            raise self._fail(symbol, "price must be positive")
        return price

    def _time(self, symbol: str, value: Any) -> datetime:
        if isinstance(value, int) and not isinstance(value, bool):
            if value <= 0:
                raise self._fail(symbol, "updatedAt must be positive")
            try:
                return datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError) as exc:  # beyond year 9999
                raise self._fail(symbol, "updatedAt is out of range") from exc
        if not isinstance(value, str):
            raise self._fail(symbol, "updatedAt must be an ISO-8601 time or Unix seconds")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise self._fail(symbol, "updatedAt is not an ISO-8601 time") from exc
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise self._fail(symbol, "updatedAt has no time zone")
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:  # 9999-12-31T23:59-01:00 is in year 10000 in UTC
            raise self._fail(symbol, "updatedAt is out of range") from exc

    async def close(self) -> None:
        await self._client.aclose()
