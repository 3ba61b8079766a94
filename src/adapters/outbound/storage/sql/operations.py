"""``mints``, ``transfers``, ``withdrawals`` and ``blockchain_events`` in the unit of work's
transaction.

The database keeps the rules: the primary key and the unique constraints refuse a second
record with an id, a mint's (token, Idempotency-Key) or a deposit's (tx hash, log index);
an update is ``UPDATE ... WHERE id = :id AND version = :expected``, so of two writers built
on one version only one applies. Each insert runs in a SAVEPOINT, so a refusal leaves the
unit of work usable.
"""

from __future__ import annotations

import enum
from typing import Any, Generic

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.tables import blockchain_events, mints, transfers, withdrawals
from core.ports.operations import (
    DepositRepository,
    MintRepository,
    OperationRepository,
    R,
    TransferRepository,
    WithdrawalRepository,
)
from core.shared.errors import ConcurrentModification
from core.tokens.operations import (
    Deposit,
    DepositStatus,
    DuplicateOperation,
    Mint,
    OperationStatus,
    Transfer,
    Withdrawal,
    WithdrawalStatus,
)


class _SqlRecords(OperationRepository[R], Generic[R]):
    kind = ""
    table: sa.Table
    record_type: type[R]
    status_type: type[enum.StrEnum]

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    def _values(self, record: R) -> dict[str, Any]:
        values = attrs.asdict(record, recurse=False)
        values["status"] = record.status.value
        return values

    def _load(self, row: RowMapping) -> R:
        values = {f.name: row[f.name] for f in attrs.fields(self.record_type)}
        values["status"] = self.status_type(values["status"])
        values["amount"] = int(values["amount"])
        values["version"] = int(values["version"])
        return self.record_type(**values)

    async def _one(self, where: Any) -> R | None:
        query = sa.select(self.table).where(where)
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else self._load(row)

    async def _many(self, query: Any) -> list[R]:
        return [self._load(row) for row in (await self._conn.execute(query)).mappings().all()]

    async def add(self, record: R) -> None:
        if record.version != 1:
            raise ValueError("a new record has version 1")
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(sa.insert(self.table).values(**self._values(record)))
        except IntegrityError as exc:
            message = str(exc.orig).lower()
            if "unique" in message or "duplicate" in message:
                raise DuplicateOperation(
                    f"{self.kind} {record.id} or its key already exists"
                ) from exc
            raise

    async def get(self, record_id: str) -> R | None:
        return await self._one(self.table.c.id == record_id)

    async def update(self, record: R) -> R:
        values = self._values(record)
        del values["id"]  # never SET a key (see ``prepared.settable``)
        statement = (
            sa.update(self.table)
            .where(self.table.c.id == record.id, self.table.c.version == record.version - 1)
            .values(**values)
        )
        result = await self._conn.execute(statement)
        if result.rowcount != 1:
            raise ConcurrentModification(
                f"{self.kind} {record.id} changed since it was read", details={"id": record.id}
            )
        return record

    async def _newest(self, user_id: str, limit: int, before_id: str | None) -> list[R]:
        query = (
            sa.select(self.table)
            .where(self.table.c.user_id == user_id)
            .order_by(self.table.c.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(self.table.c.id < before_id)
        return await self._many(query)


class SqlMintRepository(_SqlRecords[Mint], MintRepository):
    kind = "mint"
    table = mints
    record_type = Mint
    status_type = OperationStatus

    async def by_key(self, token_id: str, idempotency_key: str) -> Mint | None:
        return await self._one(
            sa.and_(mints.c.token_id == token_id, mints.c.idempotency_key == idempotency_key)
        )

    async def pending(self, *, limit: int) -> list[Mint]:
        query = (
            sa.select(mints)
            .where(mints.c.status == OperationStatus.PENDING.value)
            .order_by(mints.c.id)
            .limit(limit)
        )
        return await self._many(query)


class SqlTransferRepository(_SqlRecords[Transfer], TransferRepository):
    kind = "transfer"
    table = transfers
    record_type = Transfer
    status_type = OperationStatus

    async def pending(self, *, limit: int) -> list[Transfer]:
        query = (
            sa.select(transfers)
            .where(transfers.c.status == OperationStatus.PENDING.value)
            .order_by(transfers.c.id)
            .limit(limit)
        )
        return await self._many(query)


class SqlWithdrawalRepository(_SqlRecords[Withdrawal], WithdrawalRepository):
    kind = "withdrawal"
    table = withdrawals
    record_type = Withdrawal
    status_type = WithdrawalStatus

    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Withdrawal]:
        return await self._newest(user_id, limit, before_id)

    async def unfinished(self, *, limit: int) -> list[Withdrawal]:
        moving = [WithdrawalStatus.APPROVED.value, WithdrawalStatus.SENT.value]
        query = (
            sa.select(withdrawals)
            .where(withdrawals.c.status.in_(moving))
            .order_by(withdrawals.c.id)
            .limit(limit)
        )
        return await self._many(query)

    async def awaiting_approval(
        self, *, limit: int, after_id: str | None = None
    ) -> list[Withdrawal]:
        query = sa.select(withdrawals).where(
            withdrawals.c.status == WithdrawalStatus.PENDING_APPROVAL.value
        )
        if after_id is not None:
            query = query.where(withdrawals.c.id > after_id)
        return await self._many(query.order_by(withdrawals.c.id).limit(limit))


class SqlDepositRepository(_SqlRecords[Deposit], DepositRepository):
    kind = "deposit"
    table = blockchain_events
    record_type = Deposit
    status_type = DepositStatus

    def _load(self, row: RowMapping) -> Deposit:
        deposit = super()._load(row)
        return attrs.evolve(
            deposit, log_index=int(deposit.log_index), block_number=int(deposit.block_number)
        )

    async def by_event(self, tx_hash: str, log_index: int) -> Deposit | None:
        return await self._one(
            sa.and_(
                blockchain_events.c.tx_hash == tx_hash, blockchain_events.c.log_index == log_index
            )
        )

    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Deposit]:
        return await self._newest(user_id, limit, before_id)

    async def unswept(
        self, token_id: str, *, limit: int, after_id: str | None = None
    ) -> list[Deposit]:
        table = blockchain_events
        query = (
            sa.select(table)
            .where(
                table.c.token_id == token_id,
                table.c.status == DepositStatus.CREDITED.value,
                table.c.sweep_tx_hash.is_(None),
            )
            .order_by(table.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(table.c.id > after_id)
        return await self._many(query)
