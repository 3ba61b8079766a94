"""Trade settlements in SQL: the ``settlement_*`` columns of ``trades`` (migration 0013).
Claiming trades into a batch is one conditional UPDATE (``WHERE settlement_status =
'PENDING'``): a trade gets into at most one batch even when two jobs race."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.prepared import Prepared
from adapters.outbound.storage.sql.tables import trades as trade_rows
from core.ports.settlement import SettlementRepository, SettlementStatus, TradeSettlement
from core.shared.errors import ConcurrentModification
from core.trading.orders import Trade

UNFINISHED = [SettlementStatus.SENT.value, SettlementStatus.FAILED.value]
_TRADE_COLUMNS = [trade_rows.c[f.name] for f in attrs.fields(Trade)]


def _trade(row: Mapping[Any, Any]) -> Trade:
    values = {f.name: row[f.name] for f in attrs.fields(Trade)}
    values["seq"] = int(values["seq"])
    return Trade(**values)


# Built once: the settlement job reads and marks a pair's trades after every batch of trades.
_c = trade_rows.c
_TRADE = Prepared(sa.select(*_TRADE_COLUMNS).where(_c.id == sa.bindparam("trade_id")))
_PENDING = Prepared(
    sa.select(*_TRADE_COLUMNS)
    .where(
        _c.pair_id == sa.bindparam("pair_id"),
        _c.settlement_status == sa.bindparam("pending"),
    )
    .order_by(_c.seq)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)
_UNFINISHED_BATCHES = Prepared(
    sa.select(_c.settlement_batch_id, sa.func.min(_c.seq).label("first"))
    .where(
        _c.pair_id == sa.bindparam("pair_id"),
        sa.or_(*(_c.settlement_status == status for status in UNFINISHED)),
        _c.settlement_batch_id.is_not(None),
    )
    .group_by(_c.settlement_batch_id)
    .order_by(sa.text("first"))
)
_BATCH = Prepared(
    sa.select(*_TRADE_COLUMNS)
    .where(_c.settlement_batch_id == sa.bindparam("batch_id"))
    .order_by(_c.seq)
)


def _mark_statement(with_hash: bool) -> Prepared:
    values: dict[str, Any] = {
        "settlement_status": sa.bindparam("status"),
        "settlement_error": sa.bindparam("error"),
        "settlement_updated_at": sa.bindparam("now", type_=_c.settlement_updated_at.type),
    }
    if with_hash:
        values["settlement_tx_hash"] = sa.bindparam("tx_hash")
    return Prepared(
        sa.update(trade_rows)
        .where(
            _c.settlement_batch_id == sa.bindparam("batch_id"),
            _c.settlement_status != SettlementStatus.SETTLED.value,
        )
        .values(values)
    )


_MARK = {False: _mark_statement(False), True: _mark_statement(True)}


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

    async def trade(self, trade_id: str) -> Trade | None:
        found = await _TRADE.rows(self._conn, {"trade_id": trade_id})
        return _trade(found[0]) if found else None

    async def pending(self, pair_id: str, *, limit: int) -> list[Trade]:
        if limit <= 0:
            return []
        params = {"pair_id": pair_id, "pending": SettlementStatus.PENDING.value, "limit": limit}
        return [_trade(row) for row in await _PENDING.rows(self._conn, params)]

    async def unfinished_batches(self, pair_id: str) -> list[str]:
        rows = await _UNFINISHED_BATCHES.rows(self._conn, {"pair_id": pair_id})
        return [str(row["settlement_batch_id"]) for row in rows]

    async def batch(self, batch_id: str) -> list[Trade]:
        return [_trade(row) for row in await _BATCH.rows(self._conn, {"batch_id": batch_id})]

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
        values: dict[str, object] = {
            "batch_id": batch_id,
            "status": status.value,
            "error": error,
            "now": now,
        }
        if tx_hash is not None:
            values["tx_hash"] = tx_hash
        return await _MARK[tx_hash is not None].run(self._conn, values)
