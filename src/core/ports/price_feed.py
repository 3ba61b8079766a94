"""Price-feed port: external reference prices (a Chainlink-style on-chain aggregator, an HTTP
JSON source, ...). A feed only reads; ``fetch-external-prices`` decides what to keep."""

from __future__ import annotations

import abc
from datetime import datetime
from decimal import Decimal

import attrs

from core.shared.errors import ServiceUnavailable


class PriceFeedError(ServiceUnavailable):
    """The feed could not give a usable price: unreachable, unknown symbol, a malformed or
    non-positive answer. ``message`` says which."""

    code = "price_feed_error"


@attrs.frozen
class PriceQuote:
    """``price`` (a positive exact Decimal, quote per whole token) of ``symbol`` as the source
    last set it, at ``observed_at`` (the source's own time, timezone-aware)."""

    symbol: str
    price: Decimal
    observed_at: datetime
    source: str


class PriceFeed(abc.ABC):
    @property
    @abc.abstractmethod
    def source(self) -> str:
        """A short stable name of this feed (stored with every accepted price)."""

    @abc.abstractmethod
    def symbols(self) -> list[str]:
        """The symbols this feed is configured to price."""

    @abc.abstractmethod
    async def latest(self, symbol: str) -> PriceQuote:
        """The source's latest price of ``symbol``; ``PriceFeedError`` when there is none."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
