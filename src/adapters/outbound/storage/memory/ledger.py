"""The ledger of the memory storage: as strict as the SQL one.

A unit of work stages net balance changes; ``apply`` checks a whole posting set against the
committed balances plus what the unit staged before, and stages it only if every bucket stays
within ``0 .. 2**256 - 1``. ``MemoryState.apply`` checks the staged changes again against the
balances committed meanwhile (another unit may have spent the same funds) and refuses the
whole commit if any bucket would leave that range or any key was committed by someone else.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

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
    PostingSet,
    Supply,
    SupplyCounter,
    account_entry,
)
from core.ports.ledger import LedgerRepository
from core.shared.errors import ConcurrentModification
from core.shared.money import MAX_UINT256

_COUNTERS = tuple(SupplyCounter)


@attrs.define
class LedgerChanges:
    """What one unit of work staged: posting sets by key and their net effects."""

    applied: dict[str, AppliedPostingSet] = attrs.Factory(dict)
    accounts: dict[AccountRef, tuple[int, int]] = attrs.Factory(dict)  # (available, locked)
    supply: dict[str, dict[SupplyCounter, int]] = attrs.Factory(dict)


class MemoryLedgerState:
    """Committed accounts, supply counters and journal. Changed only through ``apply``,
    called by ``MemoryState.apply`` under its lock after ``check``."""

    def __init__(self) -> None:
        self.accounts: dict[AccountRef, tuple[int, int]] = {}
        self.supply: dict[str, dict[SupplyCounter, int]] = {}
        self.posting_sets: dict[str, AppliedPostingSet] = {}
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        """Journal sequence numbers are drawn at apply time (gaps allowed, like a sequence)."""
        return next(self._seq)

    def check(self, changes: LedgerChanges) -> None:
        for key in changes.applied:
            if key in self.posting_sets:
                raise ConcurrentModification(
                    f"posting set {key!r} was applied by another unit of work; retry",
                    details={"key": key},
                )
        for account, delta in sorted(changes.accounts.items()):
            _check_buckets(account, self.accounts.get(account, (0, 0)), delta)
        for token, counters in sorted(changes.supply.items()):
            _check_counters(token, self.supply.get(token, {}), counters)

    def apply(self, changes: LedgerChanges) -> None:
        for account, (available, locked) in changes.accounts.items():
            old_available, old_locked = self.accounts.get(account, (0, 0))
            self.accounts[account] = (old_available + available, old_locked + locked)
        for token, counters in changes.supply.items():
            stored = self.supply.setdefault(token, {})
            for counter, amount in counters.items():
                stored[counter] = stored.get(counter, 0) + amount
        self.posting_sets.update(changes.applied)


def _check_buckets(account: AccountRef, current: tuple[int, int], delta: tuple[int, int]) -> None:
    for bucket, value, change in zip(Bucket, current, delta, strict=True):
        if value + change < 0:
            raise InsufficientFunds(account, bucket, -change)
        if value + change > MAX_UINT256:
            raise BalanceOverflow(
                f"the {bucket.value} balance of {account.token} for {account.owner} "
                "would exceed 2**256 - 1",
                details={"owner": account.owner, "token": account.token},
            )


def _check_counters(
    token: str, current: dict[SupplyCounter, int], delta: dict[SupplyCounter, int]
) -> None:
    for counter, amount in delta.items():
        if current.get(counter, 0) + amount > MAX_UINT256:
            raise BalanceOverflow(
                f"the {counter.value} counter of {token} would exceed 2**256 - 1",
                details={"token": token, "counter": counter.value},
            )


class MemoryLedgerRepository(LedgerRepository):
    """Reads see committed state plus this unit's staged changes."""

    def __init__(self, state: MemoryLedgerState, changes: LedgerChanges) -> None:
        self._state = state
        self._changes = changes

    async def apply(self, posting_set: PostingSet) -> AppliedPostingSet:
        existing = await self.get(posting_set.key)
        if existing is not None:
            if existing.posting_set.fingerprint() != posting_set.fingerprint():
                raise IdempotencyConflict(posting_set.key)
            return attrs.evolve(existing, replayed=True)
        net = posting_set.net_changes()
        staged_accounts: dict[AccountRef, tuple[int, int]] = {}
        for account, delta in net.items():  # every check before any change: all or nothing
            if delta == (0, 0):  # as in SQL: lines that cancel out touch no account
                continue
            current = self._current(account)
            _check_buckets(account, current, delta)
            staged = self._changes.accounts.get(account, (0, 0))
            staged_accounts[account] = (staged[0] + delta[0], staged[1] + delta[1])
        staged_supply: dict[str, dict[SupplyCounter, int]] = {}
        for token, counters in posting_set.supply_changes().items():
            _check_counters(token, self._counters(token), counters)
            merged = dict(self._changes.supply.get(token, {}))
            for counter, amount in counters.items():
                merged[counter] = merged.get(counter, 0) + amount
            staged_supply[token] = merged
        applied = AppliedPostingSet(seq=self._state.next_seq(), posting_set=posting_set)
        self._changes.accounts.update(staged_accounts)
        self._changes.supply.update(staged_supply)
        self._changes.applied[posting_set.key] = applied
        return applied

    async def get(self, key: str) -> AppliedPostingSet | None:
        return self._changes.applied.get(key) or self._state.posting_sets.get(key)

    def _current(self, account: AccountRef) -> tuple[int, int]:
        available, locked = self._state.accounts.get(account, (0, 0))
        staged_available, staged_locked = self._changes.accounts.get(account, (0, 0))
        return available + staged_available, locked + staged_locked

    def _counters(self, token: str) -> dict[SupplyCounter, int]:
        committed = self._state.supply.get(token, {})
        staged = self._changes.supply.get(token, {})
        return {c: committed.get(c, 0) + staged.get(c, 0) for c in _COUNTERS}

    def _known(self) -> set[AccountRef]:
        return set(self._state.accounts) | set(self._changes.accounts)

    async def balance(self, account: AccountRef) -> Balance:
        available, locked = self._current(account)
        return Balance(account, available, locked)

    async def balances_of(self, accounts: Sequence[AccountRef]) -> list[Balance]:
        return [await self.balance(account) for account in accounts]

    async def balances(self, owner: str) -> list[Balance]:
        found = sorted(a for a in self._known() if a.owner == owner)
        return [await self.balance(account) for account in found]

    async def accounts(
        self, token: str, *, limit: int, after_owner: str | None = None
    ) -> list[Balance]:
        if limit <= 0:
            return []
        found = sorted(
            a
            for a in self._known()
            if a.token == token and (after_owner is None or a.owner > after_owner)
        )
        return [await self.balance(account) for account in found[:limit]]

    async def total(self, token: str) -> Balance:
        available = locked = 0
        for account in self._known():
            if account.token == token:
                current = self._current(account)
                available += current[0]
                locked += current[1]
        return Balance(AccountRef(token=token, owner=SYSTEM_OWNER), available, locked)

    async def history(
        self, account: AccountRef, *, limit: int, before_seq: int | None = None
    ) -> list[AccountEntry]:
        if limit <= 0:
            return []
        applied = [*self._state.posting_sets.values(), *self._changes.applied.values()]
        entries = [
            entry
            for entry in (account_entry(a, account) for a in applied)
            if entry is not None and (before_seq is None or entry.seq < before_seq)
        ]
        entries.sort(key=lambda entry: entry.seq, reverse=True)
        return entries[:limit]

    async def supply(self, token: str) -> Supply:
        counters = self._counters(token)
        return Supply(token, **{c.value: counters[c] for c in _COUNTERS})
