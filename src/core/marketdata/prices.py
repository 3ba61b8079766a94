"""The ``fetch-external-prices`` use case: ask every feed for its symbols' latest prices and
store the ones that pass, with their times; report the others with a reason.

Checks, in order, for each quote (``now`` from the clock):

1. ``unavailable``: the feed could not answer (``PriceFeedError``; its message is kept);
2. ``from_the_future``: ``observed_at`` is more than ``max_clock_skew`` after ``now``;
3. ``stale``: ``observed_at`` is more than ``max_age`` before ``now``;
4. ``not_newer``: the last price accepted from the same feed for the symbol was observed at
   the same time or later (nothing new; not stored again);
5. ``out_of_band``: the price deviates from the last accepted price of the symbol (any feed)
   by more than ``max_deviation_bps`` of that price, compared exactly:
   ``|price - last| * 10000 > max_deviation_bps * last``. The first price of a symbol has no
   band. A real move beyond the band keeps being refused until an operator widens the band
   (by design: a feed that jumps is not trusted on its own word).

Accepted prices of one run are stored in one unit of work; a later quote in the same run is
checked against the earlier ones of that run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar

import attrs

from core.marketdata.model import ReferencePrice
from core.ports.clock import Clock
from core.ports.jobs import Job
from core.ports.price_feed import PriceFeed, PriceFeedError, PriceQuote
from core.ports.storage import Storage, UnitOfWork
from core.shared.ids import new_id

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
FROM_THE_FUTURE = "from_the_future"
STALE = "stale"
NOT_NEWER = "not_newer"
OUT_OF_BAND = "out_of_band"


@attrs.frozen
class PricePolicy:
    max_age: timedelta = timedelta(hours=1)
    max_deviation_bps: int = 1_000  # 10 %
    max_clock_skew: timedelta = timedelta(seconds=30)

    def __attrs_post_init__(self) -> None:
        if self.max_age <= timedelta(0) or self.max_deviation_bps < 0:
            raise ValueError("max_age must be positive and max_deviation_bps not negative")


@attrs.frozen
class PriceRejection:
    source: str
    symbol: str
    reason: str  # one of the codes above
    message: str


@attrs.frozen
class PriceFetchReport:
    accepted: tuple[ReferencePrice, ...]
    rejected: tuple[PriceRejection, ...]


async def _check(
    uow: UnitOfWork, quote: PriceQuote, policy: PricePolicy, now: datetime
) -> PriceRejection | None:
    def reject(reason: str, message: str) -> PriceRejection:
        return PriceRejection(quote.source, quote.symbol, reason, message)

    if quote.observed_at > now + policy.max_clock_skew:
        return reject(FROM_THE_FUTURE, f"observed at {quote.observed_at.isoformat()}, after now")
    age = now - quote.observed_at
    if age > policy.max_age:
        return reject(
            STALE,
            f"{int(age.total_seconds())} s old; the maximum is "
            f"{int(policy.max_age.total_seconds())} s",
        )
    same_source = await uow.reference_prices.latest(quote.symbol, source=quote.source)
    if same_source is not None and quote.observed_at <= same_source.observed_at:
        return reject(NOT_NEWER, "no newer than the last price accepted from this feed")
    last = await uow.reference_prices.latest(quote.symbol)
    if last is not None:
        deviation = abs(quote.price - last.price)
        if deviation * 10_000 > policy.max_deviation_bps * last.price:
            return reject(
                OUT_OF_BAND,
                f"{quote.price} deviates from the last accepted {last.price} by more than "
                f"{policy.max_deviation_bps} bps",
            )
    return None


async def fetch_external_prices(
    storage: Storage,
    feeds: Sequence[PriceFeed],
    clock: Clock,
    policy: PricePolicy | None = None,
) -> PriceFetchReport:
    policy = policy or PricePolicy()
    quotes: list[PriceQuote | PriceRejection] = []
    for feed in feeds:
        for symbol in feed.symbols():
            try:
                quotes.append(await feed.latest(symbol))
            except PriceFeedError as exc:
                quotes.append(PriceRejection(feed.source, symbol, UNAVAILABLE, exc.message))
    now = clock.now()
    accepted: list[ReferencePrice] = []
    rejected: list[PriceRejection] = []
    async with storage.unit_of_work() as uow:
        for quote in quotes:
            if isinstance(quote, PriceRejection):
                rejected.append(quote)
                continue
            rejection = await _check(uow, quote, policy, now)
            if rejection is not None:
                rejected.append(rejection)
                continue
            price = ReferencePrice(
                id=new_id(),
                symbol=quote.symbol,
                source=quote.source,
                price=quote.price,
                observed_at=quote.observed_at,
                fetched_at=now,
            )
            await uow.reference_prices.add(price)
            accepted.append(price)
        if accepted:
            await uow.commit()
    return PriceFetchReport(tuple(accepted), tuple(rejected))


@attrs.frozen
class FetchExternalPricesJob(Job):
    """``fetch-external-prices``: ask every configured feed, store what passes (scheduled
    every ``RWA_PRICE_FETCH_SECONDS`` by the API's job scheduler, run by a worker)."""

    name: ClassVar[str] = "fetch-external-prices"
    reason: str = "scheduled"


class PriceFetching:
    """The ``fetch-external-prices`` job handler over the configured feeds."""

    def __init__(
        self,
        storage: Storage,
        feeds: Sequence[PriceFeed],
        clock: Clock,
        policy: PricePolicy | None = None,
    ) -> None:
        self._storage = storage
        self._feeds = list(feeds)
        self._clock = clock
        self._policy = policy
        self.last_report: PriceFetchReport | None = None

    async def handle(self, job: FetchExternalPricesJob) -> None:
        report = await fetch_external_prices(self._storage, self._feeds, self._clock, self._policy)
        self.last_report = report
        for rejection in report.rejected:
            log.warning(
                "fetch-external-prices: %s %s refused (%s)",
                rejection.source,
                rejection.symbol,
                rejection.reason,
            )
        log.info(
            "fetch-external-prices: %d accepted, %d refused",
            len(report.accepted),
            len(report.rejected),
        )

    async def close(self) -> None:
        for feed in self._feeds:
            await feed.close()
