"""Where each trade's on-chain settlement stands (in the unit of work: ``uow.settlements``).

A trade starts ``PENDING`` (stored with it). The ``execute-blockchain-settlement`` job puts up
to N pending trades of a pair into one batch (``SENT``, the batch's id on each; a
conditional change: a trade is in at most one batch, ever), sends the batch's one
transaction through ``RecordedTransactions`` and ends it ``SETTLED`` with the transaction's
hash, or ``FAILED`` (the transaction was refused or reverted: nothing moved) until the same
batch is tried again.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from datetime import datetime

import attrs

from core.trading.orders import Trade


class SettlementStatus(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    SETTLED = "SETTLED"
    FAILED = "FAILED"


@attrs.frozen
class TradeSettlement:
    trade_id: str
    pair_id: str
    status: SettlementStatus
    batch_id: str | None = None
    tx_hash: str | None = None
    error: str | None = None
    updated_at: datetime | None = None


class SettlementRepository(abc.ABC):
    @abc.abstractmethod
    async def get(self, trade_id: str) -> TradeSettlement | None:
        """The trade's settlement; None for an unknown trade."""

    @abc.abstractmethod
    async def trade(self, trade_id: str) -> Trade | None:
        """The trade itself (committed), whatever its settlement."""

    @abc.abstractmethod
    async def pending(self, pair_id: str, *, limit: int) -> list[Trade]:
        """Up to ``limit`` of the pair's ``PENDING`` trades, oldest (lowest seq) first."""

    @abc.abstractmethod
    async def unfinished_batches(self, pair_id: str) -> list[str]:
        """Ids of the pair's batches whose trades are ``SENT`` or ``FAILED``, oldest first."""

    @abc.abstractmethod
    async def batch(self, batch_id: str) -> list[Trade]:
        """The trades of a batch, in seq order."""

    @abc.abstractmethod
    async def claim(self, trade_ids: Sequence[str], batch_id: str, now: datetime) -> None:
        """Put ``PENDING`` trades into ``batch_id`` (``SENT``). ``ConcurrentModification``
        (nothing changed) when one of them is not ``PENDING`` any more."""

    @abc.abstractmethod
    async def mark(
        self,
        batch_id: str,
        status: SettlementStatus,
        now: datetime,
        *,
        tx_hash: str | None = None,
        error: str | None = None,
    ) -> int:
        """Set the status (and hash or error) of every trade of the batch that is not
        ``SETTLED``; how many changed. A settled trade never changes again."""
