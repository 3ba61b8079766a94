"""Mints, transfers, withdrawals and deposits in the memory storage, with the SQL rules.

A unit of work stages records; ``MemoryOperationState.check`` refuses at commit what the
database would: a record added twice, a unique key held by another record (a mint's
(token, Idempotency-Key), a deposit's (tx hash, log index)), an update built on a version
that is no longer the stored one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic

import attrs

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


@attrs.define
class RecordChanges(Generic[R]):
    staged: dict[str, R] = attrs.Factory(dict)
    new: set[str] = attrs.Factory(set)
    bases: dict[str, int] = attrs.Factory(dict)  # committed versions the updates built on


class RecordState(Generic[R]):
    def __init__(self, kind: str, unique: Callable[[R], Hashable | None] | None = None) -> None:
        self.kind = kind
        self.unique: Callable[[R], Hashable | None] | None = unique
        self.records: dict[str, R] = {}

    def check(self, changes: RecordChanges[R]) -> None:
        for record_id in changes.staged:
            stored = self.records.get(record_id)
            if record_id in changes.new:
                if stored is not None:
                    raise DuplicateOperation(f"{self.kind} {record_id} already exists")
            elif stored is None or stored.version != changes.bases[record_id]:
                raise ConcurrentModification(
                    f"{self.kind} {record_id} changed since it was read", details={"id": record_id}
                )
        if self.unique is not None and changes.new:
            self.check_unique({**self.records, **changes.staged})

    def check_unique(self, merged: dict[str, R]) -> None:
        assert self.unique is not None
        seen: dict[Hashable, str] = {}
        for record_id, record in merged.items():
            key = self.unique(record)
            if key is not None and seen.setdefault(key, record_id) != record_id:
                raise DuplicateOperation(f"another {self.kind} holds {key!r}")

    def apply(self, changes: RecordChanges[R]) -> None:
        self.records.update(changes.staged)


@attrs.define
class OperationChanges:
    mints: RecordChanges[Mint] = attrs.Factory(RecordChanges)
    transfers: RecordChanges[Transfer] = attrs.Factory(RecordChanges)
    withdrawals: RecordChanges[Withdrawal] = attrs.Factory(RecordChanges)
    deposits: RecordChanges[Deposit] = attrs.Factory(RecordChanges)


class MemoryOperationState:
    def __init__(self) -> None:
        self.mints: RecordState[Mint] = RecordState(
            "mint", lambda m: (m.token_id, m.idempotency_key)
        )
        self.transfers: RecordState[Transfer] = RecordState("transfer")
        self.withdrawals: RecordState[Withdrawal] = RecordState("withdrawal")
        self.deposits: RecordState[Deposit] = RecordState(
            "deposit", lambda d: (d.tx_hash, d.log_index)
        )

    def check(self, changes: OperationChanges) -> None:
        self.mints.check(changes.mints)
        self.transfers.check(changes.transfers)
        self.withdrawals.check(changes.withdrawals)
        self.deposits.check(changes.deposits)

    def apply(self, changes: OperationChanges) -> None:
        self.mints.apply(changes.mints)
        self.transfers.apply(changes.transfers)
        self.withdrawals.apply(changes.withdrawals)
        self.deposits.apply(changes.deposits)


class _Records(OperationRepository[R]):
    def __init__(self, state: RecordState[R], changes: RecordChanges[R]) -> None:
        self._state: RecordState[R] = state
        self._changes: RecordChanges[R] = changes

    def _all(self) -> dict[str, R]:
        return {**self._state.records, **self._changes.staged}

    async def add(self, record: R) -> None:
        current = self._all()
        if record.id in current:
            raise DuplicateOperation(f"{self._state.kind} {record.id} already exists")
        if record.version != 1:
            raise ValueError("a new record has version 1")
        if self._state.unique is not None:
            self._state.check_unique({**current, record.id: record})
        self._changes.staged[record.id] = record
        self._changes.new.add(record.id)

    async def get(self, record_id: str) -> R | None:
        return self._all().get(record_id)

    async def update(self, record: R) -> R:
        current = self._all().get(record.id)
        if current is None or current.version != record.version - 1:
            raise ConcurrentModification(
                f"{self._state.kind} {record.id} changed since it was read",
                details={"id": record.id},
            )
        if record.id not in self._changes.staged:
            self._changes.bases[record.id] = current.version
        self._changes.staged[record.id] = record
        return record

    def _newest(self, user_id: str, limit: int, before_id: str | None) -> list[R]:
        mine = [
            r
            for r in self._all().values()
            if getattr(r, "user_id", None) == user_id and (before_id is None or r.id < before_id)
        ]
        mine.sort(key=lambda r: r.id, reverse=True)
        return mine[:limit]


class MemoryMintRepository(_Records[Mint], MintRepository):
    async def by_key(self, token_id: str, idempotency_key: str) -> Mint | None:
        return next(
            (
                m
                for m in self._all().values()
                if m.token_id == token_id and m.idempotency_key == idempotency_key
            ),
            None,
        )

    async def pending(self, *, limit: int) -> list[Mint]:
        found = [m for m in self._all().values() if m.status is OperationStatus.PENDING]
        found.sort(key=lambda m: m.id)
        return found[:limit]


class MemoryTransferRepository(_Records[Transfer], TransferRepository):
    async def pending(self, *, limit: int) -> list[Transfer]:
        found = [t for t in self._all().values() if t.status is OperationStatus.PENDING]
        found.sort(key=lambda t: t.id)
        return found[:limit]


class MemoryWithdrawalRepository(_Records[Withdrawal], WithdrawalRepository):
    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Withdrawal]:
        return self._newest(user_id, limit, before_id)

    async def unfinished(self, *, limit: int) -> list[Withdrawal]:
        moving = (WithdrawalStatus.APPROVED, WithdrawalStatus.SENT)
        found = [w for w in self._all().values() if w.status in moving]
        found.sort(key=lambda w: w.id)
        return found[:limit]

    async def awaiting_approval(
        self, *, limit: int, after_id: str | None = None
    ) -> list[Withdrawal]:
        found = [
            w
            for w in self._all().values()
            if w.status is WithdrawalStatus.PENDING_APPROVAL
            and (after_id is None or w.id > after_id)
        ]
        found.sort(key=lambda w: w.id)
        return found[:limit]


class MemoryDepositRepository(_Records[Deposit], DepositRepository):
    async def by_event(self, tx_hash: str, log_index: int) -> Deposit | None:
        return next(
            (d for d in self._all().values() if d.tx_hash == tx_hash and d.log_index == log_index),
            None,
        )

    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Deposit]:
        return self._newest(user_id, limit, before_id)

    async def unswept(
        self, token_id: str, *, limit: int, after_id: str | None = None
    ) -> list[Deposit]:
        found = [
            d
            for d in self._all().values()
            if d.token_id == token_id
            and d.status is DepositStatus.CREDITED
            and d.sweep_tx_hash is None
            and (after_id is None or d.id > after_id)
        ]
        found.sort(key=lambda d: d.id)
        return found[: max(limit, 0)]
