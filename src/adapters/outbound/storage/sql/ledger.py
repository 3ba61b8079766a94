"""The ledger port over the unit of work's connection (SQLite or Postgres).

A posting set runs inside a SAVEPOINT: its journal row first (the unique key makes a second
application impossible; on Postgres a concurrent one waits for the first and then replays
it), then one statement per account it touches, in (token, owner) order so that concurrent
sets lock rows in the same order. A net debit is a conditional UPDATE,
``... WHERE available >= :needed``, and a rowcount of 0 means insufficient funds; a net
credit is an upsert. CHECK constraints keep every stored amount in 0 .. 2**256 - 1. On any
error the savepoint is rolled back, so nothing of the set stays and the unit of work goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql import uint
from adapters.outbound.storage.sql.prepared import Prepared
from adapters.outbound.storage.sql.tables import (
    ledger_accounts,
    ledger_posting_sets,
    ledger_postings,
    ledger_supply,
    ledger_supply_changes,
)
from core.ledger.model import (
    SYSTEM_OWNER,
    AccountEntry,
    AccountRef,
    AppliedPostingSet,
    Balance,
    BalanceOverflow,
    Bucket,
    IdempotencyConflict,
    InsufficientFunds,
    Posting,
    PostingSet,
    Side,
    Supply,
    SupplyChange,
    SupplyCounter,
)
from core.ports.ledger import LedgerRepository
from core.shared.errors import ConcurrentModification

_COUNTERS = tuple(SupplyCounter)
# Postgres gave up on this statement so another transaction could go on: retry the unit.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


class _DuplicateKey(Exception):
    """The journal already holds the key (another unit of work committed it meanwhile)."""


def _debit_row(
    account: AccountRef, available: int, locked: int, *, numeric: bool = False
) -> dict[str, Any]:
    """The parameters of ``_Statements.debit``: the deltas (signed, as text on SQLite, as
    NUMERIC on Postgres) and the amounts each bucket must hold."""
    delta: Any = Decimal if numeric else str
    return {
        "k_token": account.token,
        "k_owner": account.owner,
        "d_available": delta(available),
        "d_locked": delta(locked),
        "need_available": max(0, -available),
        "need_locked": max(0, -locked),
    }


def _credit_row(account: AccountRef, available: int, locked: int) -> dict[str, Any]:
    return {
        "token": account.token,
        "owner": account.owner,
        "available": available,
        "locked": locked,
    }


@attrs.frozen
class _Statements:
    """The per-account statements of a dialect, built once (building and caching a statement
    per account and posting set cost more than running it)."""

    debit: Prepared
    credit: Prepared

    @classmethod
    def build(cls, dialect: str) -> _Statements:
        table = ledger_accounts
        postgres = dialect == "postgresql"

        def plus(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[Any]:
            if postgres:
                return sa.type_coerce(column, sa.Numeric()) + sa.bindparam(name, type_=sa.Numeric())
            return sa.func.rwa_uint_add(column, sa.bindparam(name, type_=sa.String()))

        debit = (
            sa.update(table)
            .where(
                table.c.token == sa.bindparam("k_token"),
                table.c.owner == sa.bindparam("k_owner"),
                table.c.available >= sa.bindparam("need_available", type_=uint.Uint256()),
                table.c.locked >= sa.bindparam("need_locked", type_=uint.Uint256()),
            )
            .values(
                available=plus(table.c.available, "d_available"),
                locked=plus(table.c.locked, "d_locked"),
            )
        )
        insert = (postgresql if postgres else sqlite).insert(table)
        credit = insert.on_conflict_do_update(
            index_elements=[table.c.token, table.c.owner],
            set_={
                "available": uint.add_columns_in(
                    dialect, table.c.available, insert.excluded.available
                ),
                "locked": uint.add_columns_in(dialect, table.c.locked, insert.excluded.locked),
            },
        )
        return cls(debit=Prepared(debit), credit=Prepared(credit))


_BUILT: dict[str, _Statements] = {}
_SET_BY_KEY = Prepared(
    sa.select(ledger_posting_sets).where(ledger_posting_sets.c.key == sa.bindparam("key"))
)
_INSERT_SET = Prepared.insert(ledger_posting_sets)
_INSERT_POSTINGS = Prepared.insert(ledger_postings)
_INSERT_SUPPLY_CHANGES = Prepared.insert(ledger_supply_changes)


def _statements(dialect: str) -> _Statements:
    built = _BUILT.get(dialect)
    if built is None:
        built = _BUILT[dialect] = _Statements.build(dialect)
    return built


class SqlLedgerRepository(LedgerRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection
        self._dialect = connection.dialect

    # -- writing -----------------------------------------------------------------------------

    async def apply(self, posting_set: PostingSet) -> AppliedPostingSet:
        existing = await self.get(posting_set.key)
        if existing is not None:
            return _replay(existing, posting_set)
        await uint.install_sqlite_functions(self._conn)
        savepoint = await self._conn.begin_nested()
        try:
            seq = await self._insert_set(posting_set)
            await self._move_all(posting_set.net_changes())
            for token, counters in posting_set.supply_changes().items():
                await self._grow_supply(token, counters)
            await self._journal(seq, posting_set)
        except _DuplicateKey:
            await savepoint.rollback()
            existing = await self.get(posting_set.key)
            if existing is None:  # the other unit rolled back after all: let the caller retry
                raise ConcurrentModification(
                    f"posting set {posting_set.key!r} was being applied concurrently; retry",
                    details={"key": posting_set.key},
                ) from None
            return _replay(existing, posting_set)
        except (IntegrityError, DataError) as exc:
            await savepoint.rollback()
            raise BalanceOverflow(
                f"posting set {posting_set.key!r} would take a balance or a supply counter "
                "beyond 2**256 - 1",
                details={"key": posting_set.key},
            ) from exc
        except DBAPIError as exc:
            await savepoint.rollback()
            if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
                raise ConcurrentModification(
                    f"posting set {posting_set.key!r} collided with a concurrent unit of work "
                    "(deadlock); roll back and retry",
                    details={"key": posting_set.key},
                ) from exc
            raise
        except BaseException:
            if savepoint.is_active:
                await savepoint.rollback()
            raise
        await savepoint.commit()
        return AppliedPostingSet(seq=seq, posting_set=posting_set)

    async def _insert_set(self, posting_set: PostingSet) -> int:
        row = {
            "key": posting_set.key,
            "kind": posting_set.kind,
            "reference": posting_set.reference,
            "fingerprint": posting_set.fingerprint(),
            "occurred_at": posting_set.occurred_at,
        }
        try:
            return await _INSERT_SET.insert_id(self._conn, row)
        except IntegrityError as exc:
            raise _DuplicateKey from exc

    async def _move_all(self, changes: dict[AccountRef, tuple[int, int]]) -> None:
        """Every account's net change. Postgres: one statement per account, in account order
        (the order concurrent sets lock rows in). SQLite (one writer at a time, no row locks):
        all debits in one executemany, then all credits in another; if a debit finds too
        little, that attempt is undone and the per-account path names the short account."""
        if self._dialect.name != "sqlite":
            for account, (available, locked) in changes.items():
                await self._move(account, available, locked)
            return
        debits: list[dict[str, Any]] = []
        credits: list[dict[str, Any]] = []
        for account, (available, locked) in changes.items():
            if available == 0 and locked == 0:
                continue
            if available >= 0 and locked >= 0:
                credits.append(_credit_row(account, available, locked))
            else:
                debits.append(_debit_row(account, available, locked))
        if debits:
            attempt = await self._conn.begin_nested()
            if await _statements("sqlite").debit.run(self._conn, debits) == len(debits):
                await attempt.commit()
            else:
                await attempt.rollback()
                for account, (available, locked) in changes.items():
                    if available < 0 or locked < 0:
                        await self._move(account, available, locked)  # raises for the short one
                raise AssertionError("a debit was refused in a batch but not alone")
        if credits:
            await _statements("sqlite").credit.run(self._conn, credits)

    async def _move(self, account: AccountRef, available: int, locked: int) -> None:
        if available == 0 and locked == 0:
            return
        statements = _statements(self._dialect.name)
        if available >= 0 and locked >= 0:
            row = _credit_row(account, available, locked)
            await statements.credit.run(self._conn, row)
            return
        row = _debit_row(account, available, locked, numeric=self._dialect.name == "postgresql")
        if await statements.debit.run(self._conn, row) == 1:
            return
        # Refused by the database; read the row only to say which bucket was short.
        current = await self.balance(account)
        if current.available + available < 0:
            raise InsufficientFunds(account, Bucket.AVAILABLE, -available)
        raise InsufficientFunds(account, Bucket.LOCKED, -locked)

    async def _grow_supply(self, token: str, counters: dict[SupplyCounter, int]) -> None:
        table = ledger_supply
        values = {c.value: counters.get(c, 0) for c in _COUNTERS}
        insert = self._insert(table).values(token=token, **values)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.token],
            set_={
                c.value: uint.add_columns(self._dialect, table.c[c.value], insert.excluded[c.value])
                for c in _COUNTERS
                if c in counters
            },
        )
        await self._conn.execute(statement)

    def _insert(self, table: sa.Table) -> Any:
        dialect = postgresql if self._dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    async def _journal(self, seq: int, posting_set: PostingSet) -> None:
        await _INSERT_POSTINGS.run(
            self._conn,
            [
                {
                    "posting_set_seq": seq,
                    "line": line,
                    "token": p.account.token,
                    "owner": p.account.owner,
                    "bucket": p.bucket.value,
                    "side": p.side.value,
                    "amount": p.amount,
                }
                for line, p in enumerate(posting_set.postings)
            ],
        )
        if posting_set.supply:
            await _INSERT_SUPPLY_CHANGES.run(
                self._conn,
                [
                    {
                        "posting_set_seq": seq,
                        "line": line,
                        "token": s.token,
                        "counter": s.counter.value,
                        "amount": s.amount,
                    }
                    for line, s in enumerate(posting_set.supply)
                ],
            )

    # -- reading -----------------------------------------------------------------------------

    async def get(self, key: str) -> AppliedPostingSet | None:
        rows = await _SET_BY_KEY.rows(self._conn, {"key": key})
        if not rows:
            return None
        row = rows[0]
        seq = row["seq"]
        postings = (
            await self._conn.execute(
                sa.select(ledger_postings)
                .where(ledger_postings.c.posting_set_seq == seq)
                .order_by(ledger_postings.c.line)
            )
        ).mappings()
        supply = (
            await self._conn.execute(
                sa.select(ledger_supply_changes)
                .where(ledger_supply_changes.c.posting_set_seq == seq)
                .order_by(ledger_supply_changes.c.line)
            )
        ).mappings()
        posting_set = PostingSet(
            key=row["key"],
            kind=row["kind"],
            occurred_at=row["occurred_at"],
            reference=row["reference"],
            postings=tuple(
                Posting(
                    AccountRef(token=p["token"], owner=p["owner"]),
                    Bucket(p["bucket"]),
                    Side(p["side"]),
                    p["amount"],
                )
                for p in postings
            ),
            supply=tuple(
                SupplyChange(s["token"], SupplyCounter(s["counter"]), s["amount"]) for s in supply
            ),
        )
        return AppliedPostingSet(seq=int(seq), posting_set=posting_set)

    async def balance(self, account: AccountRef) -> Balance:
        table = ledger_accounts
        query = sa.select(table.c.available, table.c.locked).where(
            table.c.token == account.token, table.c.owner == account.owner
        )
        row = (await self._conn.execute(query)).first()
        return Balance(account) if row is None else Balance(account, row[0], row[1])

    async def balances_of(self, accounts: Sequence[AccountRef]) -> list[Balance]:
        if not accounts:
            return []
        table = ledger_accounts
        pairs = sorted({(a.token, a.owner) for a in accounts})
        query = sa.select(table.c.token, table.c.owner, table.c.available, table.c.locked).where(
            sa.tuple_(table.c.token, table.c.owner).in_(pairs)
        )
        found = {(r[0], r[1]): (r[2], r[3]) for r in (await self._conn.execute(query)).all()}
        return [
            Balance(a, *found[(a.token, a.owner)]) if (a.token, a.owner) in found else Balance(a)
            for a in accounts
        ]

    async def balances(self, owner: str) -> list[Balance]:
        table = ledger_accounts
        query = (
            sa.select(table).where(table.c.owner == owner).order_by(self._ordered(table.c.token))
        )
        return _balances((await self._conn.execute(query)).mappings().all())

    async def accounts(
        self, token: str, *, limit: int, after_owner: str | None = None
    ) -> list[Balance]:
        if limit <= 0:
            return []
        table = ledger_accounts
        query = sa.select(table).where(table.c.token == token)
        if after_owner is not None:
            query = query.where(self._ordered(table.c.owner) > after_owner)
        query = query.order_by(self._ordered(table.c.owner)).limit(limit)
        return _balances((await self._conn.execute(query)).mappings().all())

    async def total(self, token: str) -> Balance:
        table = ledger_accounts
        label = AccountRef(token=token, owner=SYSTEM_OWNER)
        if self._dialect.name == "postgresql":  # exact NUMERIC sums in the database
            query = sa.select(
                sa.func.coalesce(sa.func.sum(table.c.available), 0),
                sa.func.coalesce(sa.func.sum(table.c.locked), 0),
            ).where(table.c.token == token)
            available, locked = (await self._conn.execute(query)).one()
            return Balance(label, int(available), int(locked))
        # SQLite's SUM would turn the 78-digit texts into floats: add them up exactly here.
        query = sa.select(table.c.available, table.c.locked).where(table.c.token == token)
        available = locked = 0
        for row in await self._conn.execute(query):
            available += row[0]
            locked += row[1]
        return Balance(label, available, locked)

    async def history(
        self, account: AccountRef, *, limit: int, before_seq: int | None = None
    ) -> list[AccountEntry]:
        if limit <= 0:
            return []
        lines, sets = ledger_postings, ledger_posting_sets
        mine = (lines.c.token == account.token, lines.c.owner == account.owner)
        page = sa.select(lines.c.posting_set_seq).where(*mine)
        if before_seq is not None:
            page = page.where(lines.c.posting_set_seq < before_seq)
        page = (
            page.group_by(lines.c.posting_set_seq)
            .order_by(lines.c.posting_set_seq.desc())
            .limit(limit)
        )
        seqs = [row[0] for row in await self._conn.execute(page)]
        if not seqs:
            return []
        net: dict[int, list[int]] = {seq: [0, 0] for seq in seqs}
        query = sa.select(lines).where(*mine, lines.c.posting_set_seq.in_(seqs))
        for line in (await self._conn.execute(query)).mappings():
            sign = 1 if line["side"] == Side.CREDIT.value else -1
            bucket = 0 if line["bucket"] == Bucket.AVAILABLE.value else 1
            net[line["posting_set_seq"]][bucket] += sign * line["amount"]
        query = sa.select(sets).where(sets.c.seq.in_(seqs)).order_by(sets.c.seq.desc())
        return [
            AccountEntry(
                seq=row["seq"],
                key=row["key"],
                kind=row["kind"],
                reference=row["reference"],
                occurred_at=row["occurred_at"],
                available=net[row["seq"]][0],
                locked=net[row["seq"]][1],
            )
            for row in (await self._conn.execute(query)).mappings()
        ]

    async def supply(self, token: str) -> Supply:
        query = sa.select(ledger_supply).where(ledger_supply.c.token == token)
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            return Supply(token)
        return Supply(token, **{c.value: row[c.value] for c in _COUNTERS})

    def _ordered(self, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        """Code-point order on every database (Postgres would use the locale's collation)."""
        return column.collate("C") if self._dialect.name == "postgresql" else column


def _balances(rows: Sequence[sa.RowMapping]) -> list[Balance]:
    return [
        Balance(AccountRef(token=r["token"], owner=r["owner"]), r["available"], r["locked"])
        for r in rows
    ]


def _replay(existing: AppliedPostingSet, posting_set: PostingSet) -> AppliedPostingSet:
    if existing.posting_set.fingerprint() != posting_set.fingerprint():
        raise IdempotencyConflict(posting_set.key)
    return attrs.evolve(existing, replayed=True)
