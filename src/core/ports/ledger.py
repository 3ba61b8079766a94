"""Ledger port: balances per (owner, token) changed only by atomic, idempotent posting sets.

It is part of the storage unit of work (``uow.ledger``), so postings commit or roll back
together with the orders, trades, audit entries and outbox messages written beside them.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from core.ledger.model import (
    AccountEntry,
    AccountRef,
    AppliedPostingSet,
    Balance,
    PostingSet,
    Supply,
)


class LedgerRepository(abc.ABC):
    """Accounts, supply counters and the journal of applied posting sets."""

    @abc.abstractmethod
    async def apply(self, posting_set: PostingSet) -> AppliedPostingSet:
        """Apply every posting of the set, or none.

        Debits are conditional in the store itself: a bucket never goes below zero
        (``InsufficientFunds``) nor above ``2**256 - 1`` (``BalanceOverflow``). On either
        error nothing of the set stays in the unit of work, which remains usable. SQL stores
        decide at ``apply`` (Postgres waits for a concurrent writer of the same row); the
        memory store decides at ``apply`` and again at ``commit()``, which raises the same
        error, applying nothing, when another unit spent the funds in between.

        A key applied before (committed, or earlier in this unit of work) with the same
        content returns the original result with ``replayed=True`` and changes nothing; with
        different content it raises ``IdempotencyConflict``. A key whose first application
        failed was never used. Two units of work applying one key at once: one applies it;
        the other replays it, or, where the store cannot wait for the first (memory), fails
        at commit with a ``Conflict`` and a retry replays it.
        """

    @abc.abstractmethod
    async def get(self, key: str) -> AppliedPostingSet | None:
        """The posting set applied under ``key`` (``replayed`` is False), or None."""

    @abc.abstractmethod
    async def balance(self, account: AccountRef) -> Balance:
        """The account's buckets; zero for an account that never held anything."""

    @abc.abstractmethod
    async def balances_of(self, accounts: Sequence[AccountRef]) -> list[Balance]:
        """``balance`` of each account, in the order given, in one read (zero for an account
        that never held anything)."""

    @abc.abstractmethod
    async def balances(self, owner: str) -> list[Balance]:
        """Every account of ``owner``, by token."""

    @abc.abstractmethod
    async def accounts(
        self, token: str, *, limit: int, after_owner: str | None = None
    ) -> list[Balance]:
        """Accounts of ``token`` ordered by owner, ``limit`` at a time, after ``after_owner``."""

    @abc.abstractmethod
    async def total(self, token: str) -> Balance:
        """Sums of ``available`` and ``locked`` over every account of ``token`` (the
        returned ``account`` is the token's system account, as a label)."""

    @abc.abstractmethod
    async def history(
        self, account: AccountRef, *, limit: int, before_seq: int | None = None
    ) -> list[AccountEntry]:
        """One entry per posting set with a line on ``account``, newest (highest ``seq``)
        first, ``limit`` at a time, below ``before_seq``."""

    @abc.abstractmethod
    async def supply(self, token: str) -> Supply:
        """The token's counters; zero for a token never minted or deposited."""
