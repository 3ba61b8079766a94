"""Trade settlements in the memory storage: kept beside the trades (absent means PENDING);
changes are checked at commit against the status they were made from, like SQL's
conditional updates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.outbound.storage.memory.trading import MemoryTradingState, TradingChanges
from core.ports.settlement import SettlementRepository, SettlementStatus, TradeSettlement
from core.shared.errors import ConcurrentModification
from core.trading.orders import Trade


class MemorySettlementRepository(SettlementRepository):
    def __init__(self, state: MemoryTradingState, changes: TradingChanges) -> None:
        self._state = state
        self._changes = changes

    def _current(self, trade_id: str) -> TradeSettlement | None:
        staged = self._changes.settlements.get(trade_id)
        if staged is not None:
            return staged[1]
        return self._state.settlements.get(trade_id)

    def _status(self, trade_id: str) -> SettlementStatus:
        found = self._current(trade_id)
        return SettlementStatus.PENDING if found is None else found.status

    def _trades(self, pair_id: str) -> list[Trade]:
        staged = [t for t in self._changes.trades if t.pair_id == pair_id]
        return [*self._state.trades.get(pair_id, []), *staged]

    def _stage(self, settlement: TradeSettlement) -> None:
        staged = self._changes.settlements.get(settlement.trade_id)
        expected = staged[0] if staged else self._state.settlement_status(settlement.trade_id)
        self._changes.settlements[settlement.trade_id] = (expected, settlement)

    async def get(self, trade_id: str) -> TradeSettlement | None:
        found = self._current(trade_id)
        if found is not None:
            return found
        for trades in self._state.trades.values():
            for trade in trades:
                if trade.id == trade_id:
                    return TradeSettlement(trade.id, trade.pair_id, SettlementStatus.PENDING)
        return None

    async def trade(self, trade_id: str) -> Trade | None:
        for trades in self._state.trades.values():
            for trade in trades:
                if trade.id == trade_id:
                    return trade
        return None

    async def pending(self, pair_id: str, *, limit: int) -> list[Trade]:
        found = [t for t in self._trades(pair_id) if self._status(t.id) is SettlementStatus.PENDING]
        return sorted(found, key=lambda t: t.seq)[:limit]

    async def unfinished_batches(self, pair_id: str) -> list[str]:
        batches: list[str] = []
        for trade in sorted(self._trades(pair_id), key=lambda t: t.seq):
            found = self._current(trade.id)
            if (
                found is not None
                and found.batch_id is not None
                and found.status in (SettlementStatus.SENT, SettlementStatus.FAILED)
                and found.batch_id not in batches
            ):
                batches.append(found.batch_id)
        return batches

    def _batch_ids(self, batch_id: str) -> list[str]:
        ids = {tid for tid, s in self._state.settlements.items() if s.batch_id == batch_id}
        ids |= {tid for tid, (_, s) in self._changes.settlements.items() if s.batch_id == batch_id}
        return [tid for tid in ids if (c := self._current(tid)) and c.batch_id == batch_id]

    async def batch(self, batch_id: str) -> list[Trade]:
        ids = set(self._batch_ids(batch_id))
        if not ids:
            return []
        pair_id = next(s.pair_id for tid in ids if (s := self._current(tid)))
        return sorted((t for t in self._trades(pair_id) if t.id in ids), key=lambda t: t.seq)

    async def claim(self, trade_ids: Sequence[str], batch_id: str, now: datetime) -> None:
        pairs = {t.id: t.pair_id for ts in self._state.trades.values() for t in ts}
        pairs.update({t.id: t.pair_id for t in self._changes.trades})
        for trade_id in trade_ids:
            if trade_id not in pairs or self._status(trade_id) is not SettlementStatus.PENDING:
                raise ConcurrentModification(f"trade {trade_id} is not pending settlement")
        for trade_id in trade_ids:
            self._stage(
                TradeSettlement(
                    trade_id, pairs[trade_id], SettlementStatus.SENT, batch_id, updated_at=now
                )
            )

    async def mark(
        self,
        batch_id: str,
        status: SettlementStatus,
        now: datetime,
        *,
        tx_hash: str | None = None,
        error: str | None = None,
    ) -> int:
        changed = 0
        for trade_id in self._batch_ids(batch_id):
            current = self._current(trade_id)
            if current is None or current.status is SettlementStatus.SETTLED:
                continue
            self._stage(
                TradeSettlement(
                    trade_id,
                    current.pair_id,
                    status,
                    batch_id,
                    tx_hash=tx_hash or current.tx_hash,
                    error=error,
                    updated_at=now,
                )
            )
            changed += 1
        return changed
