"""The price-feed contract: every ``PriceFeed`` adapter runs it. A subclass provides
``feed_setup``: a feed pricing ``XAU`` and ``BTC``, and a way to set a symbol's price."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.ports.price_feed import PriceFeed, PriceFeedError

SetPrice = Callable[[str, Decimal, datetime], Awaitable[None]]
T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


class PriceFeedContract:
    @pytest.fixture
    async def feed_setup(self) -> AsyncIterator[tuple[PriceFeed, SetPrice]]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def test_the_latest_price_is_exact_with_its_time(
        self, feed_setup: tuple[PriceFeed, SetPrice]
    ) -> None:
        feed, set_price = feed_setup
        assert feed.symbols() == ["BTC", "XAU"]
        await set_price("XAU", Decimal("2034.15"), T0)
        await set_price("BTC", Decimal("98765.43210987"), T0 + timedelta(seconds=7))
        xau = await feed.latest("XAU")
        assert (xau.symbol, xau.price, xau.observed_at, xau.source) == (
            "XAU",
            Decimal("2034.15"),
            T0,
            feed.source,
        )
        btc = await feed.latest("BTC")
        assert btc.price == Decimal("98765.43210987")
        assert btc.observed_at == T0 + timedelta(seconds=7)
        await set_price("XAU", Decimal("2040"), T0 + timedelta(minutes=1))
        again = await feed.latest("XAU")
        assert (again.price, again.observed_at) == (Decimal("2040"), T0 + timedelta(minutes=1))

    async def test_an_unknown_symbol_is_a_price_feed_error(
        self, feed_setup: tuple[PriceFeed, SetPrice]
    ) -> None:
        feed, _ = feed_setup
        with pytest.raises(PriceFeedError):
            await feed.latest("NOPE")

    async def test_a_price_that_is_not_positive_is_refused(
        self, feed_setup: tuple[PriceFeed, SetPrice]
    ) -> None:
        feed, set_price = feed_setup
        await set_price("XAU", Decimal(0), T0)
        with pytest.raises(PriceFeedError, match="positive"):
            await feed.latest("XAU")
