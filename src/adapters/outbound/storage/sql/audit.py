"""``audit_log``: append-only entries in the unit of work's transaction.

This repository only inserts and selects; the table's triggers (migration 0007) refuse an
``UPDATE`` or ``DELETE`` from anyone, so even SQL written by hand cannot rewrite an entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql.prepared import Prepared
from adapters.outbound.storage.sql.tables import audit_log as table
from core.ports.audit import AuditEntry, AuditFilter, AuditLog, check_audit_entry
from core.shared.errors import Conflict


def _entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        seq=int(row["seq"]),
        actor_id=row["actor_id"],
        actor_type=row["actor_type"],
        action=row["action"],
        subject=row["subject"],
        before=row["before"],
        after=row["after"],
        at=row["at"],
    )


_INSERT = Prepared.insert(table)


def _values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "actor_id": entry.actor_id,
        "actor_type": entry.actor_type,
        "action": entry.action,
        "subject": entry.subject,
        "before": entry.before,
        "after": entry.after,
        "at": entry.at,
    }


def _refuse_duplicate(exc: IntegrityError, ids: str) -> NoReturn:
    if "uq_audit_log_id" in str(exc.orig) or "audit_log.id" in str(exc.orig):
        raise Conflict(f"audit entry {ids} already exists") from exc
    raise exc


class SqlAuditLog(AuditLog):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def append(self, entry: AuditEntry) -> AuditEntry:
        check_audit_entry(entry)
        try:
            async with self._conn.begin_nested():
                result = await self._conn.execute(
                    sa.insert(table).values(**_values(entry)).returning(table.c.seq)
                )
        except IntegrityError as exc:
            _refuse_duplicate(exc, entry.id)
        seq = int(result.scalar_one())
        return attrs.evolve(entry, seq=seq)

    async def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditEntry]:
        """One executemany INSERT in one savepoint, then the seqs in one read (RETURNING
        in parameter order would make SQLAlchemy insert row by row on SQLite)."""
        if not entries:
            return []
        for entry in entries:
            check_audit_entry(entry)
        try:
            async with self._conn.begin_nested():
                await _INSERT.run(self._conn, [_values(e) for e in entries])
        except IntegrityError as exc:
            _refuse_duplicate(exc, ", ".join(e.id for e in entries))
        query = sa.select(table.c.id, table.c.seq).where(table.c.id.in_([e.id for e in entries]))
        seqs = {row[0]: int(row[1]) for row in (await self._conn.execute(query)).all()}
        return [attrs.evolve(e, seq=seqs[e.id]) for e in entries]

    async def query(
        self, audit_filter: AuditFilter, *, limit: int, before_seq: int | None = None
    ) -> list[AuditEntry]:
        if limit <= 0:
            return []
        query = sa.select(table).order_by(table.c.seq.desc()).limit(limit)
        if audit_filter.actor_id is not None:
            query = query.where(table.c.actor_id == audit_filter.actor_id)
        if audit_filter.action is not None:
            query = query.where(table.c.action == audit_filter.action)
        if audit_filter.since is not None:
            query = query.where(table.c.at >= audit_filter.since)
        if before_seq is not None:
            query = query.where(table.c.seq < before_seq)
        rows = (await self._conn.execute(query)).mappings().all()
        return [_entry(row) for row in rows]
