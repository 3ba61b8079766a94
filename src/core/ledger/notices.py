"""Balance notices: every commit that moved users' balances tells so on the event bus.

A storage decorator. Each unit of work notes the users (accounts whose owner is not a reserved
``@`` account) of every posting set it applied (replays change nothing and are not noted);
its commit first appends one ``balance.changed`` event naming them, then commits, so the
notice is in the outbox of the very transaction that moved the money (orders' locks and
unlocks, fills and fees in a trading batch, mints, transfers, deposits, withdrawals,
activation). Nothing else reads a ledger write, so no producer can forget it.

The event's stream is ``ledger:<id>`` with a fresh id per commit: a stream no other
transaction appends to, so two commits touching one user never contend on a stream's
``seq`` (a per-user stream would make concurrent trading batches of two pairs conflict).
The metadata is ``{"userIds": [...], "tokenIds": [...], "kinds": [...]}`` (sorted); the
WebSocket ``balances`` channel reads each named subscriber's balances again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.ledger.model import RESERVED_PREFIX, AppliedPostingSet, PostingSet
from core.ports.ledger import LedgerRepository
from core.ports.storage import Storage, UnitOfWork
from core.shared.events import DomainEvent
from core.shared.ids import new_id

BALANCE_CHANGED = "balance.changed"
LEDGER_STREAM_PREFIX = "ledger:"


class _NotingLedger:
    """The unit of work's ledger, noting who each applied posting set moved."""

    def __init__(self, inner: LedgerRepository, unit: _NoticeUnitOfWork) -> None:
        self.inner = inner
        self._unit = unit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def apply(self, posting_set: PostingSet) -> AppliedPostingSet:
        result = await self.inner.apply(posting_set)
        if not result.replayed:
            self._unit.note(posting_set)
        return result


class _NoticeUnitOfWork(UnitOfWork):
    def __init__(self, inner: UnitOfWork) -> None:
        self._inner = inner
        self._users: set[str] = set()
        self._tokens: set[str] = set()
        self._kinds: set[str] = set()
        self._at: datetime | None = None
        self._ledger: _NotingLedger | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "ledger":  # the inner unit's repositories exist once it has begun
            inner_ledger = self._inner.ledger
            if self._ledger is None or self._ledger.inner is not inner_ledger:
                self._ledger = _NotingLedger(inner_ledger, self)
            return self._ledger
        return getattr(self._inner, name)

    def note(self, posting_set: PostingSet) -> None:
        users = {
            p.account.owner
            for p in posting_set.postings
            if not p.account.owner.startswith(RESERVED_PREFIX)
        }
        if not users:
            return
        self._users |= users
        self._tokens |= {
            p.account.token
            for p in posting_set.postings
            if not p.account.owner.startswith(RESERVED_PREFIX)
        }
        self._kinds.add(posting_set.kind)
        self._at = posting_set.occurred_at

    async def _begin(self) -> None:
        await self._inner.__aenter__()

    async def _end(self) -> None:
        await self._inner.__aexit__(None, None, None)

    async def commit(self) -> None:
        if self._users:
            notice_id = new_id()
            await self._inner.events.append(
                [
                    DomainEvent(
                        type=BALANCE_CHANGED,
                        aggregate_id=notice_id,
                        actor_id="ledger",
                        actor_type="system",
                        occurred_at=self._at or datetime.now(UTC),
                        metadata={
                            "userIds": sorted(self._users),
                            "tokenIds": sorted(self._tokens),
                            "kinds": sorted(self._kinds),
                        },
                        stream=LEDGER_STREAM_PREFIX + notice_id,
                    )
                ]
            )
            self._users, self._tokens, self._kinds = set(), set(), set()
        await self._inner.commit()


class BalanceNoticeStorage(Storage):
    """Wraps any ``Storage`` so that every commit that moved users' balances carries one
    ``balance.changed`` event (see the module docstring)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        inner = self.inner.unit_of_work(read_only=read_only)
        return inner if read_only else _NoticeUnitOfWork(inner)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
