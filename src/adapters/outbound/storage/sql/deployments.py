"""``deployment_transactions``: token deployments recorded before they are sent.

The database itself keeps the rules: the primary key refuses a second record of a hash, and a
partial unique index refuses a second open (signed, sent or mined) record of a (subject, step).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.tables import deployment_transactions as table
from core.ports.deployments import (
    UNMINED_STATES,
    DeploymentRecord,
    DeploymentRepository,
    DeploymentState,
    DuplicateDeployment,
)
from core.shared.errors import Conflict

_UNMINED = sorted(state.value for state in UNMINED_STATES)


def _row(record: DeploymentRecord) -> dict[str, Any]:
    return {
        "tx_hash": record.tx_hash,
        "subject": record.subject,
        "step": record.step,
        "market_id": record.market_id,
        "chain_id": record.chain_id,
        "signer": record.signer,
        "nonce": record.nonce,
        "raw_transaction": record.raw_transaction,
        "contract_address": record.contract_address,
        "holder": record.holder,
        "state": record.state.value,
        "block_number": record.block_number,
        "error": record.error,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _record(row: RowMapping) -> DeploymentRecord:
    return DeploymentRecord(
        tx_hash=row["tx_hash"],
        subject=row["subject"],
        step=row["step"],
        market_id=row["market_id"],
        chain_id=int(row["chain_id"]),
        signer=row["signer"],
        nonce=int(row["nonce"]),
        raw_transaction=row["raw_transaction"],
        contract_address=row["contract_address"],
        holder=row["holder"],
        state=DeploymentState(row["state"]),
        block_number=None if row["block_number"] is None else int(row["block_number"]),
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlDeploymentRepository(DeploymentRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, record: DeploymentRecord) -> None:
        try:
            await self._conn.execute(sa.insert(table), [_row(record)])
        except IntegrityError as exc:
            message = str(exc.orig)
            needles = ("uq_deployment_transactions_open_step", "pk_deployment_transactions")
            if any(n in message for n in needles) or "deployment_transactions." in message:
                raise DuplicateDeployment(record.subject, record.step, record.tx_hash) from exc
            raise

    async def get(self, tx_hash: str) -> DeploymentRecord | None:
        query = sa.select(table).where(table.c.tx_hash == tx_hash)
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def open_for(self, subject: str, step: str) -> DeploymentRecord | None:
        query = sa.select(table).where(
            table.c.subject == subject,
            table.c.step == step,
            table.c.state.in_(["signed", "sent", "mined"]),
        )
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def for_subject(self, subject: str) -> list[DeploymentRecord]:
        query = (
            sa.select(table)
            .where(table.c.subject == subject)
            .order_by(table.c.created_at, table.c.nonce)
        )
        return [_record(row) for row in (await self._conn.execute(query)).mappings().all()]

    async def update(self, record: DeploymentRecord, *, expected_state: DeploymentState) -> None:
        statement = (
            sa.update(table)
            .where(table.c.tx_hash == record.tx_hash, table.c.state == expected_state.value)
            .values(
                state=record.state.value,
                block_number=record.block_number,
                error=record.error,
                updated_at=record.updated_at,
            )
        )
        result = await self._conn.execute(statement)
        if result.rowcount != 1:
            raise Conflict(
                f"deployment {record.tx_hash} is not {expected_state.value}",
                details={"txHash": record.tx_hash},
            )

    async def unmined(self, signer: str, *, limit: int) -> list[DeploymentRecord]:
        if limit <= 0:
            return []
        query = (
            sa.select(table)
            .where(table.c.signer == signer, table.c.state.in_(_UNMINED))
            .order_by(table.c.nonce)
            .limit(limit)
        )
        return [_record(row) for row in (await self._conn.execute(query)).mappings().all()]

    async def latest_mined(self, *, limit: int) -> list[DeploymentRecord]:
        if limit <= 0:
            return []
        query = (
            sa.select(table)
            .where(table.c.state == DeploymentState.MINED.value)
            .order_by(table.c.block_number.desc())
            .limit(limit)
        )
        return [_record(row) for row in (await self._conn.execute(query)).mappings().all()]
