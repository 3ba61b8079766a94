"""The scheduled ``update-token-metadata`` job: ask the valuation source for the current
valuation of every active market's asset and record the ones that pass through the same
append-only, audited path as ``POST /markets/:id/valuations`` (actor: the system
``update-token-metadata``; ``source``: the source's name; ``effectiveAt``: the source's
as-of time). The others are refused with a reason, logged and counted, and recorded nowhere.

Checks, in order, for each quote (``now`` from the clock; "current" is the market's latest
valuation, else the one it was registered with):

1. ``unavailable``: the source could not answer usably (``ValuationSourceError``: down, a
   timeout, a malformed, negative, oversized or fractional-number valuation...);
2. ``from_the_future``: ``as_of`` is more than ``max_clock_skew`` after ``now``;
3. ``stale``: ``as_of`` is more than ``max_age`` before ``now``;
4. ``repeated``: ``as_of`` is the current valuation's ``effectiveAt`` (already recorded:
   a second run, a retry or a redelivered job records nothing);
5. ``not_newer``: ``as_of`` is before the current valuation's ``effectiveAt`` (an older
   valuation never becomes current);
6. ``wrong_currency``: the currency is not the current valuation's (or the asset's);
7. ``out_of_band``: the valuation moves from the current one by more than
   ``max_change_bps`` of it, compared exactly: ``|new - current| * 10000 > bps * current``.
   The first valuation of an asset without any has no band.

Each market is checked and recorded in its own unit of work, the check reading the current
valuation in the same transaction as the write (two racing runs cannot both record: the
second sees ``repeated``, or the store refuses its version, ``conflict``; a rule of the
history refusing it is ``invalid``). One market's refusal never stops the others; a storage
outage fails the whole run (the job is retried, and records nothing twice). Markets that
stopped being active meanwhile are skipped (``not_active``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import ClassVar

import attrs

from core.marketdata.model import AssetValuation
from core.marketdata.valuations import append_valuation, current_valuation
from core.markets.model import Market, MarketStatus
from core.ports.clock import Clock
from core.ports.jobs import Job
from core.ports.storage import MarketFilter, Storage
from core.ports.valuation_source import ValuationQuote, ValuationSource, ValuationSourceError
from core.shared.errors import Conflict, ValidationFailed
from core.shared.events import Actor

log = logging.getLogger(__name__)

JOB_NAME = "update-token-metadata"
SYSTEM = Actor.system(JOB_NAME)
RECORDED = "recorded"
UNAVAILABLE = "unavailable"
FROM_THE_FUTURE = "from_the_future"
STALE = "stale"
REPEATED = "repeated"
NOT_NEWER = "not_newer"
WRONG_CURRENCY = "wrong_currency"
OUT_OF_BAND = "out_of_band"
NOT_ACTIVE = "not_active"
CONFLICT = "conflict"
INVALID = "invalid"
OUTCOMES = (
    RECORDED,
    UNAVAILABLE,
    FROM_THE_FUTURE,
    STALE,
    REPEATED,
    NOT_NEWER,
    WRONG_CURRENCY,
    OUT_OF_BAND,
    NOT_ACTIVE,
    CONFLICT,
    INVALID,
)
PAGE = 100


@attrs.frozen
class ValuationPolicy:
    max_age: timedelta = timedelta(days=7)
    max_change_bps: int = 2_000  # 20 %
    max_clock_skew: timedelta = timedelta(minutes=5)

    def __attrs_post_init__(self) -> None:
        if self.max_age <= timedelta(0) or self.max_change_bps < 0:
            raise ValueError("max_age must be positive and max_change_bps not negative")


@attrs.frozen
class ValuationRejection:
    market_id: str
    symbol: str
    reason: str  # one of the codes above
    message: str


@attrs.frozen
class ValuationFetchReport:
    recorded: tuple[AssetValuation, ...]
    rejected: tuple[ValuationRejection, ...]


def check_quote(
    quote: ValuationQuote,
    current: AssetValuation | None,
    expected_currency: str | None,
    policy: ValuationPolicy,
    now: datetime,
) -> tuple[str, str] | None:
    """Why ``quote`` is refused (reason, message), or None when it may be recorded."""
    if quote.as_of > now + policy.max_clock_skew:
        return FROM_THE_FUTURE, f"as of {quote.as_of.isoformat()}, after now"
    age = now - quote.as_of
    if age > policy.max_age:
        return STALE, (
            f"{int(age.total_seconds())} s old; the maximum is "
            f"{int(policy.max_age.total_seconds())} s"
        )
    if current is not None:
        if quote.as_of == current.effective_at:
            return REPEATED, f"the valuation as of {quote.as_of.isoformat()} is already recorded"
        if quote.as_of < current.effective_at:
            return NOT_NEWER, (
                f"as of {quote.as_of.isoformat()}, before the current valuation's "
                f"{current.effective_at.isoformat()}"
            )
    expected = current.currency if current is not None else expected_currency
    if expected is not None and quote.currency != expected:
        return WRONG_CURRENCY, f"in {quote.currency}, the asset is valued in {expected}"
    if current is not None:
        change = abs(quote.valuation - current.valuation)
        if change * 10_000 > policy.max_change_bps * current.valuation:
            return OUT_OF_BAND, (
                f"{quote.valuation} moves from the current {current.valuation} by more than "
                f"{policy.max_change_bps} bps"
            )
    return None


async def active_markets(storage: Storage) -> list[Market]:
    """Every active market, newest first."""
    found: list[Market] = []
    before: str | None = None
    while True:
        async with storage.unit_of_work(read_only=True) as uow:
            page = await uow.markets.list(
                MarketFilter(status=MarketStatus.ACTIVE), limit=PAGE, before_id=before
            )
        found.extend(page)
        if len(page) < PAGE:
            return found
        before = page[-1].id


async def _record(
    storage: Storage, quote: ValuationQuote, policy: ValuationPolicy, now: datetime
) -> AssetValuation | ValuationRejection:
    def reject(reason: str, message: str) -> ValuationRejection:
        return ValuationRejection(quote.market_id, quote.symbol, reason, message)

    async with storage.unit_of_work() as uow:
        market = await uow.markets.get(quote.market_id)
        if market is None or market.status is not MarketStatus.ACTIVE:
            return reject(NOT_ACTIVE, "the market is no longer active")
        asset = await uow.markets.get_asset(market.id)
        current = current_valuation(await uow.valuations.latest(market.id), market, asset, now)
        refused = check_quote(
            quote, current, asset.currency if asset is not None else None, policy, now
        )
        if refused is not None:
            return reject(*refused)
        record = await append_valuation(
            uow,
            SYSTEM,
            market,
            asset,
            valuation=quote.valuation,
            currency=quote.currency,
            effective_at=quote.as_of,
            source=quote.source,
            note=None,
            now=now,
        )
        await uow.commit()
    return record


async def fetch_valuations(
    storage: Storage,
    source: ValuationSource,
    clock: Clock,
    policy: ValuationPolicy | None = None,
) -> ValuationFetchReport:
    policy = policy or ValuationPolicy()
    recorded: list[AssetValuation] = []
    rejected: list[ValuationRejection] = []
    for market in await active_markets(storage):
        try:
            quote = await source.latest(market.id, market.token_symbol)
        except ValuationSourceError as exc:
            rejected.append(
                ValuationRejection(market.id, market.token_symbol, UNAVAILABLE, exc.message)
            )
            continue
        except Exception as exc:  # an adapter bug must not stop the other markets
            log.exception("%s: the source failed on %s", JOB_NAME, market.id)
            rejected.append(
                ValuationRejection(
                    market.id, market.token_symbol, UNAVAILABLE, f"{type(exc).__name__}"
                )
            )
            continue
        if (quote.market_id, quote.symbol) != (market.id, market.token_symbol):
            rejected.append(
                ValuationRejection(
                    market.id, market.token_symbol, UNAVAILABLE, "the answer is for another asset"
                )
            )
            continue
        try:
            outcome = await _record(storage, quote, policy, clock.now())
        except (Conflict, ValidationFailed) as exc:  # a racing run took the version first
            outcome = ValuationRejection(
                market.id,
                market.token_symbol,
                CONFLICT if isinstance(exc, Conflict) else INVALID,
                f"{type(exc).__name__}: {exc.message}",
            )
        if isinstance(outcome, ValuationRejection):
            rejected.append(outcome)
        else:
            recorded.append(outcome)
    return ValuationFetchReport(tuple(recorded), tuple(rejected))


@attrs.frozen
class UpdateTokenMetadataJob(Job):
    """``update-token-metadata``: fetch and record every active market's valuation
    (scheduled every ``RWA_VALUATION_FETCH_SECONDS`` by the API's job scheduler, run by a
    worker)."""

    name: ClassVar[str] = JOB_NAME
    reason: str = "scheduled"


class ValuationFetching:
    """The ``update-token-metadata`` job handler over the configured source; ``count`` is
    told each outcome (``recorded`` or a rejection reason), for a metric."""

    def __init__(
        self,
        storage: Storage,
        source: ValuationSource | None,
        clock: Clock,
        policy: ValuationPolicy | None = None,
        count: Callable[[str], None] | None = None,
    ) -> None:
        self._storage = storage
        self._source = source
        self._clock = clock
        self._policy = policy
        self._count = count or (lambda outcome: None)
        self.last_report: ValuationFetchReport | None = None

    async def handle(self, job: UpdateTokenMetadataJob) -> None:
        if self._source is None:
            log.info("%s: no valuation source is configured", JOB_NAME)
            return
        report = await fetch_valuations(self._storage, self._source, self._clock, self._policy)
        self.last_report = report
        for record in report.recorded:
            self._count(RECORDED)
            log.info(
                "%s: market %s valuation version %d recorded", JOB_NAME, record.market_id,
                record.version,
            )  # fmt: skip
        for rejection in report.rejected:
            self._count(rejection.reason)
            log.warning(
                "%s: market %s (%s) refused (%s): %s",
                JOB_NAME,
                rejection.market_id,
                rejection.symbol,
                rejection.reason,
                rejection.message,
            )
        log.info(
            "%s: %d recorded, %d refused", JOB_NAME, len(report.recorded), len(report.rejected)
        )

    async def close(self) -> None:
        if self._source is not None:
            await self._source.close()
