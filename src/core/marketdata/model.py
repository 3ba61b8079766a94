"""Market data values: trades as market data sees them, candles, exact decimal arithmetic.

Prices and quantities are ``Decimal`` in whole units (price: quote per whole base token,
quantity: whole base tokens), exactly as on the wire; never floats. Every sum and product
goes through ``EXACT``, a context that traps on any rounding, so a result is either exact or
an error (never silently rounded).
"""

from __future__ import annotations

import decimal
import enum
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs

EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[
        decimal.Inexact,
        decimal.Rounded,
        decimal.InvalidOperation,
        decimal.Overflow,
        decimal.DivisionByZero,
    ],
)

ZERO = Decimal(0)

BUY = "BUY"
SELL = "SELL"
TAKER_SIDES = frozenset((BUY, SELL))

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Interval(enum.Enum):
    """Candle intervals. Buckets are aligned on the Unix epoch in UTC: a 1d candle opens at
    00:00 UTC, a 4h candle at 00:00, 04:00, ... UTC, a 1m candle on the minute."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"

    @property
    def seconds(self) -> int:
        return _SECONDS[self]

    def open_time(self, at: datetime) -> datetime:
        """Start of the bucket holding ``at`` (an aware time), in UTC."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("naive datetime: market data times are timezone-aware")
        delta = at.astimezone(UTC) - _EPOCH
        whole = delta.days * 86_400 + delta.seconds  # floor to the second (µs dropped)
        return _EPOCH + timedelta(seconds=whole - whole % self.seconds)

    @classmethod
    def parse(cls, text: str) -> Interval:
        """``"1m"`` ... ``"1d"``; ``ValueError`` names the allowed values otherwise."""
        for interval in cls:
            if interval.value == text:
                return interval
        raise ValueError(f"interval must be one of {', '.join(i.value for i in cls)}")


_SECONDS = {
    Interval.M1: 60,
    Interval.M5: 300,
    Interval.M15: 900,
    Interval.H1: 3_600,
    Interval.H4: 14_400,
    Interval.D1: 86_400,
}


def _positive(_: object, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive finite Decimal, got {value!r}")


def _aware(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware")


@attrs.frozen
class MarketTrade:
    """One executed trade of a pair, as market data keeps it.

    ``seq`` is the trade event's sequence number in the pair's stream (``pair:<pair_id>``):
    ``(pair_id, seq)`` identifies the trade for idempotency, and ``(time, seq)`` orders trades
    (a later ``seq`` breaks ties between trades of the same instant)."""

    pair_id: str
    seq: int
    trade_id: str
    price: Decimal = attrs.field(validator=_positive)
    quantity: Decimal = attrs.field(validator=_positive)
    taker_side: str = attrs.field(validator=attrs.validators.in_(TAKER_SIDES))
    time: datetime = attrs.field(validator=_aware)

    @property
    def key(self) -> tuple[datetime, int]:
        return (self.time, self.seq)

    @property
    def quote_amount(self) -> Decimal:
        return EXACT.multiply(self.price, self.quantity)


@attrs.frozen
class Candle:
    """One interval's OHLCV of a pair. ``first_*``/``last_*`` name the earliest and latest
    trade (by ``(time, seq)``) so that a trade arriving out of order still lands right.
    ``version`` counts the stored writes of this candle (1 when first stored)."""

    pair_id: str
    interval: Interval
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    first_time: datetime
    first_seq: int
    last_time: datetime
    last_seq: int
    version: int = 1

    @property
    def close_time(self) -> datetime:
        return self.open_time + timedelta(seconds=self.interval.seconds)

    def same_values(self, other: Candle) -> bool:
        """Equal in everything but ``version`` (how many writes it took)."""
        return attrs.evolve(self, version=0) == attrs.evolve(other, version=0)


@attrs.frozen
class ReferencePrice:
    """An accepted external price of ``symbol`` (quote per whole token) from ``source``:
    ``observed_at`` is the source's own time of the value, ``fetched_at`` ours."""

    id: str
    symbol: str
    source: str
    price: Decimal = attrs.field(validator=_positive)
    observed_at: datetime = attrs.field(validator=_aware)
    fetched_at: datetime = attrs.field(validator=_aware)


@attrs.frozen
class AssetValuation:
    """One valuation of a market's real-world asset. Valuations are only ever appended:
    ``version`` is 1 for the market's first, then 2, 3, ... (the history is never rewritten);
    the current valuation is the one with the highest ``version``."""

    id: str
    market_id: str
    version: int
    valuation: Decimal = attrs.field(validator=_positive)
    currency: str
    effective_at: datetime = attrs.field(validator=_aware)
    recorded_at: datetime = attrs.field(validator=_aware)
    actor_id: str
    source: str | None = None
    note: str | None = None
