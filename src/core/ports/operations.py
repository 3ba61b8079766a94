"""Storage of token operations (part of the unit of work): ``uow.mints``, ``uow.transfers``,
``uow.withdrawals``, ``uow.deposits``.

Every record changes optimistically: ``update`` writes a record whose ``version`` is the
stored one + 1, and raises ``ConcurrentModification`` otherwise (someone changed it since it
was read; with the memory store possibly only at ``commit()``). Unique keys are enforced by
the store itself: a mint's (token, ``Idempotency-Key``) and a deposit's (tx hash, log index)
are stored at most once (``DuplicateOperation``, possibly only at ``commit()``), so two
requests or two sync runs racing cannot both write one.
"""

from __future__ import annotations

import abc
from typing import Generic, TypeVar

from core.tokens.operations import Deposit, Mint, Transfer, Withdrawal

R = TypeVar("R", Mint, Transfer, Withdrawal, Deposit)


class OperationRepository(abc.ABC, Generic[R]):
    @abc.abstractmethod
    async def add(self, record: R) -> None:
        """Store a new record (``version`` 1); ``DuplicateOperation`` for a taken id or key."""

    @abc.abstractmethod
    async def get(self, record_id: str) -> R | None: ...

    @abc.abstractmethod
    async def update(self, record: R) -> R:
        """Replace the stored record of ``record.version - 1``; ``ConcurrentModification``
        when the stored version differs or nothing is stored."""


class MintRepository(OperationRepository[Mint]):
    @abc.abstractmethod
    async def by_key(self, token_id: str, idempotency_key: str) -> Mint | None: ...

    @abc.abstractmethod
    async def pending(self, *, limit: int) -> list[Mint]:
        """Mints not yet minted and credited (``PENDING``), oldest first."""


class TransferRepository(OperationRepository[Transfer]):
    @abc.abstractmethod
    async def pending(self, *, limit: int) -> list[Transfer]:
        """Transfers not yet mirrored on chain, oldest first."""


class WithdrawalRepository(OperationRepository[Withdrawal]):
    @abc.abstractmethod
    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Withdrawal]:
        """The user's withdrawals, newest first, below ``before_id``."""

    @abc.abstractmethod
    async def unfinished(self, *, limit: int) -> list[Withdrawal]:
        """Approved withdrawals not yet completed or failed (``APPROVED``, ``SENT``), oldest
        first: what ``process-withdrawal`` still has to finish."""

    @abc.abstractmethod
    async def awaiting_approval(
        self, *, limit: int, after_id: str | None = None
    ) -> list[Withdrawal]:
        """Withdrawals of every user waiting for an admin (``PENDING_APPROVAL``), oldest
        first, above ``after_id``: the admins' queue."""


class DepositRepository(OperationRepository[Deposit]):
    @abc.abstractmethod
    async def by_event(self, tx_hash: str, log_index: int) -> Deposit | None: ...

    @abc.abstractmethod
    async def for_user(
        self, user_id: str, *, limit: int, before_id: str | None = None
    ) -> list[Deposit]:
        """The user's deposits, newest first, below ``before_id``."""

    @abc.abstractmethod
    async def unswept(
        self, token_id: str, *, limit: int, after_id: str | None = None
    ) -> list[Deposit]:
        """The token's ``CREDITED`` deposits without a sweep transaction yet, oldest first,
        above ``after_id`` (what the sweep still has to move into the omnibus address)."""
