"""Storage port: repositories, the event history and the outbox, under one unit of work."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from types import TracebackType

import attrs

from core.markets.model import AssetType, Market, MarketAsset, MarketStatus
from core.ports.inbox import CursorRepository, ProcessedEventRepository
from core.ports.ledger import LedgerRepository
from core.shared.events import DomainEvent


@attrs.frozen
class MarketFilter:
    status: MarketStatus | None = None
    asset_type: AssetType | None = None
    issuer_id: str | None = None


@attrs.frozen
class OutboxMessage:
    """An event waiting to be published. ``position`` orders all messages globally."""

    position: int
    event: DomainEvent


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
    async def append(self, events: Sequence[DomainEvent]) -> None: ...

    @abc.abstractmethod
    async def for_aggregate(self, aggregate_id: str) -> list[DomainEvent]:
        """Every event of one aggregate, oldest first."""


class Outbox(abc.ABC):
    """Events written with the change that caused them, waiting for the relay."""

    @abc.abstractmethod
    async def pending(self, limit: int) -> list[OutboxMessage]:
        """Unpublished messages in position order. Where the store can, the rows stay locked
        for this unit of work and other units of work skip them."""

    @abc.abstractmethod
    async def mark_published(self, positions: Sequence[int]) -> None: ...


class UnitOfWork(abc.ABC):
    """One atomic transaction. Leaving the block without ``commit()`` rolls everything back."""

    markets: MarketRepository
    events: EventLog
    outbox: Outbox
    processed_events: ProcessedEventRepository
    cursors: CursorRepository
    ledger: LedgerRepository

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
    async def commit(self) -> None: ...


class Storage(abc.ABC):
    """Hands out units of work and answers health checks."""

    @abc.abstractmethod
    def unit_of_work(self) -> UnitOfWork: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
