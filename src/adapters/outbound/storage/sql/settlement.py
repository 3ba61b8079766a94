"""Trade settlements in SQL: the ``settlement_*`` columns of ``trades`` (migration 0013).
Claiming trades into a batch is one conditional UPDATE (``WHERE settlement_status =
'PENDING'``): a trade gets into at most one batch even when two jobs race."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.tables import trades as trade_rows
from core.ports.settlement import SettlementRepository, SettlementStatus, TradeSettlement
from core.shared.errors import ConcurrentModification
from core.trading.orders import Trade

UNFINISHED = [SettlementStatus.SENT.value, SettlementStatus.FAILED.value]
_TRADE_COLUMNS = [trade_rows.c[f.name] for f in attrs.fields(Trade)]


def _trade(row: sa.RowMapping) -> Trade:
    values = {f.name: row[f.name] for f in attrs.fields(Trade)}
    values["seq"] = int(values["seq"])
    return Trade(**values)


class SqlSettlementRepository(SettlementRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, trade_id: str) -> TradeSettlement | None:
        c = trade_rows.c
        row = (
            (
                await self._conn.execute(
                    sa.select(
                        c.id,
                        c.pair_id,
                        c.settlement_status,
                        c.settlement_batch_id,
                        c.settlement_tx_hash,
                        c.settlement_error,
                        c.settlement_updated_at,
                    ).where(c.id == trade_id)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return TradeSettlement(
            trade_id=row["id"],
            pair_id=row["pair_id"],
            status=SettlementStatus(row["settlement_status"]),
            batch_id=row["settlement_batch_id"],
            tx_hash=row["settlement_tx_hash"],
            error=row["settlement_error"],
            updated_at=row["settlement_updated_at"],
        )

    async def _trades(self, query: sa.Select[tuple[object, ...]]) -> list[Trade]:
        return [_trade(r) for r in (await self._conn.execute(query)).mappings().all()]

    async def trade(self, trade_id: str) -> Trade | None:
        found = await self._trades(sa.select(*_TRADE_COLUMNS).where(trade_rows.c.id == trade_id))
        return found[0] if found else None

    async def pending(self, pair_id: str, *, limit: int) -> list[Trade]:
        c = trade_rows.c
        return await self._trades(
            sa.select(*_TRADE_COLUMNS)
            .where(c.pair_id == pair_id, c.settlement_status == SettlementStatus.PENDING.value)
            .order_by(c.seq)
            .limit(limit)
        )

    async def unfinished_batches(self, pair_id: str) -> list[str]:
        c = trade_rows.c
        query = (
            sa.select(c.settlement_batch_id, sa.func.min(c.seq).label("first"))
            .where(
                c.pair_id == pair_id,
                c.settlement_status.in_(UNFINISHED),
                c.settlement_batch_id.is_not(None),
            )
            .group_by(c.settlement_batch_id)
            .order_by(sa.text("first"))
        )
        return [str(r[0]) for r in (await self._conn.execute(query)).all()]

    async def batch(self, batch_id: str) -> list[Trade]:
        c = trade_rows.c
        return await self._trades(
            sa.select(*_TRADE_COLUMNS).where(c.settlement_batch_id == batch_id).order_by(c.seq)
        )

    async def claim(self, trade_ids: Sequence[str], batch_id: str, now: datetime) -> None:
        if not trade_ids:
            return
        c = trade_rows.c
        result = await self._conn.execute(
            sa.update(trade_rows)
            .where(c.id.in_(list(trade_ids)), c.settlement_status == SettlementStatus.PENDING.value)
            .values(
                settlement_status=SettlementStatus.SENT.value,
                settlement_batch_id=batch_id,
                settlement_updated_at=now,
            )
        )
        if result.rowcount != len(set(trade_ids)):
            raise ConcurrentModification("a trade of the batch is not pending settlement any more")

    async def mark(
        self,
        batch_id: str,
        status: SettlementStatus,
        now: datetime,
        *,
        tx_hash: str | None = None,
        error: str | None = None,
    ) -> int:
        c = trade_rows.c
        values: dict[str, object] = {
            "settlement_status": status.value,
            "settlement_error": error,
            "settlement_updated_at": now,
        }
        if tx_hash is not None:
            values["settlement_tx_hash"] = tx_hash
        result = await self._conn.execute(
            sa.update(trade_rows)
            .where(
                c.settlement_batch_id == batch_id,
                c.settlement_status != SettlementStatus.SETTLED.value,
            )
            .values(**values)
        )
        return int(result.rowcount)
