"""Storage port: repositories, the event history and the outbox, under one unit of work."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType

import attrs

from core.markets.model import AssetType, Market, MarketAsset, MarketStatus
from core.ports.audit import AuditLog
from core.ports.deployments import DeploymentRepository
from core.ports.inbox import CursorRepository, ProcessedEventRepository
from core.ports.ledger import LedgerRepository
from core.ports.marketdata import (
    MarketDataRepository,
    ReferencePriceRepository,
    ValuationRepository,
)
from core.ports.operations import (
    DepositRepository,
    MintRepository,
    TransferRepository,
    WithdrawalRepository,
)
from core.ports.settlement import SettlementRepository
from core.ports.tokens import ComplianceRepository, TokenRepository
from core.ports.trading import OrderRepository, PairRepository, TradeRepository
from core.ports.wallets import WalletRepository
from core.shared.events import DomainEvent


@attrs.frozen
class MarketFilter:
    status: MarketStatus | None = None
    asset_type: AssetType | None = None
    issuer_id: str | None = None


@attrs.frozen
class OutboxMessage:
    """An event the relay has not finished with. ``position`` orders all messages globally
    (and each stream's messages in ``seq`` order). ``published``: it went out on the event
    bus; ``reacted``: every reaction to it ran. A message is done when both are true."""

    position: int
    event: DomainEvent
    published: bool = False
    reacted: bool = False
    # the request, connection or job that wrote it: its reactions (and the jobs they enqueue)
    # log with this correlation id
    correlation_id: str | None = None


class MarketRepository(abc.ABC):
    """Markets and their assets."""

    @abc.abstractmethod
    async def add(self, market: Market, asset: MarketAsset) -> None:
        """Store a new market; ``DuplicateSymbol`` if a live market already has its symbol."""

    @abc.abstractmethod
    async def get(self, market_id: str) -> Market | None: ...

    @abc.abstractmethod
    async def get_asset(self, market_id: str) -> MarketAsset | None: ...

    @abc.abstractmethod
    async def save(self, market: Market) -> Market:
        """Replace a stored market whose stored version equals ``market.version``.

        Returns the market with its version bumped; ``ConcurrentModification`` when the
        stored version differs.
        """

    @abc.abstractmethod
    async def list(
        self, market_filter: MarketFilter, *, limit: int, before_id: str | None = None
    ) -> list[Market]:
        """Newest first; with ``before_id``, only markets created before that one."""

    @abc.abstractmethod
    async def live_symbol_taken(self, symbol: str) -> bool:
        """Whether a market that is neither rejected nor archived uses ``symbol``."""


class EventLog(abc.ABC):
    """Append-only history of domain events; appending also fills the outbox."""

    @abc.abstractmethod
    async def append(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """Store ``events`` and return them numbered: each gets the next ``seq`` of its stream.

        ``InvalidEvent`` (nothing written) for metadata that is not plain JSON or a naive
        time. Two units of work that append to one stream at once cannot both commit: the
        second gets ``ConcurrentModification`` (``(stream, seq)`` is unique).
        """

    @abc.abstractmethod
    async def for_aggregate(self, aggregate_id: str) -> list[DomainEvent]:
        """Every event of one aggregate, oldest first."""


class Outbox(abc.ABC):
    """Events written with the change that caused them, waiting for the relay."""

    @abc.abstractmethod
    async def pending(self, limit: int) -> list[OutboxMessage]:
        """Messages not yet both published and reacted to, in position order. Locks nothing:
        the relay reads them in a read-only unit of work (one relay leader at a time)."""

    @abc.abstractmethod
    async def mark_published(self, positions: Sequence[int]) -> None:
        """These messages went out on the bus (never published again). Repeats are harmless."""

    @abc.abstractmethod
    async def mark_reacted(self, positions: Sequence[int]) -> None:
        """Every reaction to these messages ran. Repeats are harmless."""


class LeaseRepository(abc.ABC):
    """Named leases: at most one holder at a time until the lease expires (the outbox relay
    leader, for one). Times come from the caller's clock."""

    @abc.abstractmethod
    async def acquire(self, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
        """Take or renew ``name`` for ``holder`` until ``until`` when it is free, expired
        (``expires_at <= now``) or already ``holder``'s; False when someone else holds it.
        Takes effect at ``commit()``; two units of work racing for it cannot both commit
        a take (the loser gets ``ConcurrentModification`` or sees False)."""

    @abc.abstractmethod
    async def hold(self, name: str, holder: str, *, now: datetime) -> bool:
        """A fence: whether ``holder`` holds ``name`` at ``now`` (unexpired). When True, no
        other holder's take of the lease commits before this unit of work ends (SQL locks the
        row), or this unit's ``commit()`` fails with ``ConcurrentModification`` (memory)."""

    @abc.abstractmethod
    async def holders(self, prefix: str, *, now: datetime) -> dict[str, str]:
        """The leases whose name starts with ``prefix`` and that have not expired at
        ``now``, as committed: name -> holder."""

    @abc.abstractmethod
    async def release(self, name: str, holder: str) -> None:
        """Give the lease up if ``holder`` holds it; otherwise do nothing."""


class UnitOfWork(abc.ABC):
    """One atomic transaction. Leaving the block without ``commit()`` rolls everything back."""

    markets: MarketRepository
    events: EventLog
    outbox: Outbox
    processed_events: ProcessedEventRepository
    cursors: CursorRepository
    ledger: LedgerRepository
    leases: LeaseRepository
    deployments: DeploymentRepository
    audit: AuditLog
    wallets: WalletRepository
    tokens: TokenRepository
    compliance: ComplianceRepository
    mints: MintRepository
    transfers: TransferRepository
    withdrawals: WithdrawalRepository
    deposits: DepositRepository
    pairs: PairRepository
    orders: OrderRepository
    trades: TradeRepository
    settlements: SettlementRepository  # each trade's on-chain settlement
    market_data: MarketDataRepository
    reference_prices: ReferencePriceRepository
    valuations: ValuationRepository

    async def __aenter__(self) -> UnitOfWork:
        await self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._end()

    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _end(self) -> None:
        """Roll back whatever was not committed and release the transaction."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Apply the unit's changes; ``ReadOnlyUnitOfWork`` in a read-only unit."""


URGENT_WRITES: ContextVar[bool] = ContextVar("urgent_writes", default=False)
"""Set (in its own task) by a writer whose callers wait for its commit (a pair's single
writer): a storage that queues writers (SQLite: one at a time) lets its units of work in
before the others'. Background work (relay marks, candles, jobs) keeps arrival order."""


class ReadOnlyUnitOfWork(RuntimeError):
    """``commit()`` in a unit of work opened with ``read_only=True``: a programming error."""


class Storage(abc.ABC):
    """Hands out units of work and answers health checks."""

    @abc.abstractmethod
    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work. ``read_only=True``: a snapshot for reads that never takes the
        write lock (SQLite: a deferred transaction, not ``BEGIN IMMEDIATE``; Postgres: a
        READ ONLY transaction), so reads run side by side with each other and with the
        single writer; its ``commit()`` raises ``ReadOnlyUnitOfWork``."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
