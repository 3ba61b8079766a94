"""The ``aggregate-candles`` job: trade events in, stored trades and candles out, idempotently.

The trading engine appends one ``trade.executed`` event per trade to the pair's stream
``pair:<pairId>`` (``aggregate_id`` is the pair id). Its payload (the event's ``metadata``),
as ``TradeExecuted`` reads it:

=============  ==========================================================================
``tradeId``    the trade's id (string)
``price``      decimal string, quote per whole base token (``"101.25"``; never a number)
``quantity``   decimal string, whole base tokens (``"0.5"``)
``takerSide``  ``"BUY"`` or ``"SELL"``
``executedAt`` optional ISO-8601 time with a zone; default: the event's ``occurred_at``
=============  ==========================================================================

Other keys are ignored. Delivery is at least once and may reorder: every event is applied
once per ``(stream, seq)`` (the trade is stored under ``(pairId, seq)`` in the same unit of
work as its candles, so a redelivered event finds it and changes nothing), and a trade that
arrives after later ones still lands in the right candle as its open or close.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from core.marketdata.candles import ALL_INTERVALS, apply_trade
from core.marketdata.model import TAKER_SIDES, MarketTrade
from core.ports.storage import Storage, UnitOfWork
from core.shared.events import DomainEvent

log = logging.getLogger(__name__)

TRADE_EXECUTED = "trade.executed"
PAIR_STREAM_PREFIX = "pair:"


class InvalidTradeEvent(ValueError):
    """A ``trade.executed`` event market data cannot read; the reason names the field."""


def _decimal(payload: Mapping[str, Any], name: str) -> Decimal:
    value = payload.get(name)
    if not isinstance(value, str):
        raise InvalidTradeEvent(f"{name} must be a decimal string")
    try:
        parsed = Decimal(value)
    except InvalidOperation as exc:
        raise InvalidTradeEvent(f"{name} is not a decimal: {value[:40]!r}") from exc
    if not parsed.is_finite() or parsed <= 0:
        raise InvalidTradeEvent(f"{name} must be positive")
    return parsed


@attrs.frozen
class TradeExecuted:
    """The payload of a ``trade.executed`` event (see the module docstring)."""

    trade_id: str
    price: Decimal
    quantity: Decimal
    taker_side: str
    executed_at: datetime | None = None

    def to_metadata(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "tradeId": self.trade_id,
            "price": format(self.price, "f"),
            "quantity": format(self.quantity, "f"),
            "takerSide": self.taker_side,
        }
        if self.executed_at is not None:
            payload["executedAt"] = self.executed_at.isoformat()
        return payload

    @classmethod
    def from_metadata(cls, payload: Mapping[str, Any]) -> TradeExecuted:
        trade_id = payload.get("tradeId")
        if not isinstance(trade_id, str) or not trade_id:
            raise InvalidTradeEvent("tradeId must be a non-empty string")
        side = payload.get("takerSide")
        if side not in TAKER_SIDES:
            raise InvalidTradeEvent("takerSide must be BUY or SELL")
        executed_at = None
        raw_time = payload.get("executedAt")
        if raw_time is not None:
            try:
                executed_at = datetime.fromisoformat(str(raw_time))
            except ValueError as exc:
                raise InvalidTradeEvent("executedAt is not an ISO-8601 time") from exc
            if executed_at.tzinfo is None:
                raise InvalidTradeEvent("executedAt has no time zone")
        return cls(
            trade_id=trade_id,
            price=_decimal(payload, "price"),
            quantity=_decimal(payload, "quantity"),
            taker_side=str(side),
            executed_at=executed_at,
        )


def market_trade(event: DomainEvent) -> MarketTrade:
    """The trade a stored ``trade.executed`` event describes; ``InvalidTradeEvent`` when the
    event has no ``seq``, is not on its pair's stream, or its payload is malformed."""
    if event.type != TRADE_EXECUTED:
        raise InvalidTradeEvent(f"not a {TRADE_EXECUTED} event: {event.type}")
    if event.seq is None:
        raise InvalidTradeEvent("the event has no seq (it was never stored)")
    if event.stream != PAIR_STREAM_PREFIX + event.aggregate_id:
        raise InvalidTradeEvent(f"stream {event.stream} is not pair:{event.aggregate_id}")
    payload = TradeExecuted.from_metadata(event.metadata)
    return MarketTrade(
        pair_id=event.aggregate_id,
        seq=event.seq,
        trade_id=payload.trade_id,
        price=payload.price,
        quantity=payload.quantity,
        taker_side=payload.taker_side,
        time=payload.executed_at or event.occurred_at,
    )


@attrs.frozen
class AggregationReport:
    applied: int = 0  # trades stored and folded into their candles
    duplicates: int = 0  # events already applied (same stream and seq)
    ignored: int = 0  # events of other types
    invalid: tuple[tuple[str, int | None, str], ...] = ()  # (stream, seq, reason), skipped


async def record_trade(uow: UnitOfWork, trade: MarketTrade) -> bool:
    """Store ``trade`` and fold it into its six candles, in ``uow``; False (nothing written)
    when ``(pair, seq)`` was already applied."""
    if await uow.market_data.has_trade(trade.pair_id, trade.seq):
        return False
    await uow.market_data.add_trade(trade)
    for interval in ALL_INTERVALS:
        open_time = interval.open_time(trade.time)
        current = await uow.market_data.get_candle(trade.pair_id, interval, open_time)
        updated = apply_trade(current, trade, interval)
        base = 0 if current is None else current.version
        await uow.market_data.put_candle(attrs.evolve(updated, version=base + 1))
    return True


async def fold_new_trades(uow: UnitOfWork, events: Sequence[DomainEvent]) -> int:
    """Store the trades of freshly numbered ``trade.executed`` events and fold them into
    their candles, in ``uow`` (the pair writer's batch: one read and one write per candle
    touched, however many trades the batch holds). The events were numbered by this unit of
    work, so none of their trades can be stored yet. Returns how many trades were stored."""
    trades = [market_trade(event) for event in events if event.type == TRADE_EXECUTED]
    if not trades:
        return 0
    trades.sort(key=lambda trade: trade.key)
    await uow.market_data.add_trades(trades)
    for interval in ALL_INTERVALS:
        buckets: dict[tuple[str, datetime], list[MarketTrade]] = {}
        for trade in trades:
            buckets.setdefault((trade.pair_id, interval.open_time(trade.time)), []).append(trade)
        for (pair_id, open_time), bucket in buckets.items():
            current = await uow.market_data.get_candle(pair_id, interval, open_time)
            base = 0 if current is None else current.version
            for trade in bucket:
                current = apply_trade(current, trade, interval)
            assert current is not None
            await uow.market_data.put_candle(attrs.evolve(current, version=base + 1))
    return len(trades)


async def aggregate_candles(storage: Storage, events: Sequence[DomainEvent]) -> AggregationReport:
    """Apply a batch of delivered events in one unit of work (all or nothing: on a storage
    conflict, such as another aggregator writing the same candle, nothing is kept and the
    caller redelivers the batch). Malformed trade events are skipped and reported."""
    applied = duplicates = ignored = 0
    invalid: list[tuple[str, int | None, str]] = []
    async with storage.unit_of_work() as uow:
        for event in events:
            if event.type != TRADE_EXECUTED:
                ignored += 1
                continue
            try:
                trade = market_trade(event)
            except (InvalidTradeEvent, ValueError) as exc:
                invalid.append((event.stream, event.seq, str(exc)))
                continue
            if await record_trade(uow, trade):
                applied += 1
            else:
                duplicates += 1
        if applied:
            await uow.commit()
    return AggregationReport(applied, duplicates, ignored, tuple(invalid))


async def aggregate_pair_history(
    storage: Storage, pair_id: str, *, batch: int = 500
) -> AggregationReport:
    """Catch up from the durable event history: apply every ``trade.executed`` event the
    event log holds for ``pair_id`` (what a fresh deployment, or one that lost its market-data
    tables, runs once). Already applied events are counted as duplicates and change nothing."""
    async with storage.unit_of_work(read_only=True) as uow:
        history = [
            e
            for e in await uow.events.for_aggregate(pair_id)
            if e.type == TRADE_EXECUTED and e.stream == PAIR_STREAM_PREFIX + pair_id
        ]
    total = AggregationReport()
    for start in range(0, len(history), batch):
        part = await aggregate_candles(storage, history[start : start + batch])
        total = AggregationReport(
            total.applied + part.applied,
            total.duplicates + part.duplicates,
            total.ignored + part.ignored,
            total.invalid + part.invalid,
        )
    return total


class CandleAggregator:
    """``aggregate-candles`` as an outbox-relay reaction: wire it with
    ``relay.on(TRADE_EXECUTED, CandleAggregator(storage).on_trade_executed)``.

    The relay runs it after the trade's transaction committed, at least once per event and in
    stream order. A storage failure or a candle conflict raises, so the relay retries it on
    its next pass; a malformed event can never succeed, so it is logged and skipped (it
    would otherwise hold back its pair's stream for ever)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.skipped: list[tuple[str, int | None, str]] = []

    async def on_trade_executed(self, event: DomainEvent) -> None:
        try:
            trade = market_trade(event)
        except (InvalidTradeEvent, ValueError):
            trade = None  # aggregate_candles reports it
        if trade is not None:
            # the pair's writer folds its trades in its own batch: this is then only a read
            async with self._storage.unit_of_work(read_only=True) as uow:
                if await uow.market_data.has_trade(trade.pair_id, trade.seq):
                    return
        report = await aggregate_candles(self._storage, [event])
        for stream, seq, reason in report.invalid:
            log.warning("aggregate-candles skipped %s#%s: %s", stream, seq, reason)
            self.skipped.append((stream, seq, reason))
