"""Repositories of the memory adapter: reads see committed state plus this unit's changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from adapters.outbound.storage.memory.state import (
    ChangeSet,
    Lease,
    MemoryState,
    copy_asset,
    copy_event,
    copy_message,
    copy_processed,
    is_live,
)
from core.markets.model import Market, MarketAsset
from core.ports.inbox import (
    CursorRepository,
    DuplicateEvent,
    ProcessedEvent,
    ProcessedEventRepository,
)
from core.ports.storage import (
    EventLog,
    LeaseRepository,
    MarketFilter,
    MarketRepository,
    Outbox,
    OutboxMessage,
)
from core.shared import exact_json
from core.shared.errors import ConcurrentModification, Conflict, DuplicateSymbol
from core.shared.events import DomainEvent, check_event
from logs import correlation_id


class MemoryMarketRepository(MarketRepository):
    """Markets and assets; the live-symbol rule is checked here and again at commit."""

    def __init__(self, state: MemoryState, changes: ChangeSet) -> None:
        self._state = state
        self._changes = changes

    async def add(self, market: Market, asset: MarketAsset) -> None:
        # what the SQL columns refuse (a float, a non-JSON value) is refused here too
        exact_json.check(market.allowed_countries, where="allowed_countries")
        exact_json.check(asset.regulatory_info, where="regulatory_info")
        exact_json.check(asset.attributes, where="attributes")
        if market.id in self._changes.markets or market.id in self._state.markets:
            raise Conflict(f"market {market.id} already exists")
        if is_live(market) and await self.live_symbol_taken(market.token_symbol):
            raise DuplicateSymbol(market.token_symbol)
        self._changes.markets[market.id] = market
        self._changes.new_ids.add(market.id)
        self._changes.assets[market.id] = copy_asset(asset)

    async def get(self, market_id: str) -> Market | None:
        staged = self._changes.markets.get(market_id)
        return staged if staged is not None else self._state.markets.get(market_id)

    async def get_asset(self, market_id: str) -> MarketAsset | None:
        asset = self._changes.assets.get(market_id) or self._state.assets.get(market_id)
        return None if asset is None else copy_asset(asset)

    async def save(self, market: Market) -> Market:
        current = await self.get(market.id)
        if current is None or current.version != market.version:
            raise ConcurrentModification(
                f"market {market.id} is not at version {market.version}",
                details={"marketId": market.id, "expectedVersion": market.version},
            )
        if market.id not in self._changes.new_ids:
            self._changes.base_versions.setdefault(market.id, current.version)
        saved = attrs.evolve(market, version=market.version + 1)
        self._changes.markets[market.id] = saved
        return saved

    async def list(
        self, market_filter: MarketFilter, *, limit: int, before_id: str | None = None
    ) -> list[Market]:
        if limit <= 0:
            return []
        merged = {**self._state.markets, **self._changes.markets}
        found = [
            market
            for market_id, market in merged.items()
            if (before_id is None or market_id < before_id) and _matches(market, market_filter)
        ]
        found.sort(key=lambda market: market.id, reverse=True)
        return found[:limit]

    async def live_symbol_taken(self, symbol: str) -> bool:
        staged = self._changes.markets
        if any(m.token_symbol == symbol and is_live(m) for m in staged.values()):
            return True
        holder = self._state.live_symbols.get(symbol)
        return holder is not None and holder not in staged


def _matches(market: Market, market_filter: MarketFilter) -> bool:
    return (
        (market_filter.status is None or market.status == market_filter.status)
        and (market_filter.asset_type is None or market.asset_type == market_filter.asset_type)
        and (market_filter.issuer_id is None or market.issuer_id == market_filter.issuer_id)
    )


class MemoryEventLog(EventLog):
    """Appended events become history and outbox messages when the unit commits."""

    def __init__(self, state: MemoryState, changes: ChangeSet) -> None:
        self._state = state
        self._changes = changes

    async def append(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        for event in events:
            check_event(event)
        numbered = []
        changes = self._changes
        correlation = correlation_id()
        for event in events:
            head = changes.stream_heads.get(event.stream)
            if head is None:
                head = self._state.stream_head(event.stream)
                changes.stream_bases[event.stream] = head
            changes.stream_heads[event.stream] = head + 1
            stored = attrs.evolve(copy_event(event), seq=head + 1)
            changes.events.append(
                OutboxMessage(self._state.next_position(), stored, correlation_id=correlation)
            )
            numbered.append(copy_event(stored))
        return numbered

    async def for_aggregate(self, aggregate_id: str) -> list[DomainEvent]:
        committed = list(self._state.history.get(aggregate_id, ()))
        staged = [m.event for m in self._changes.events if m.event.aggregate_id == aggregate_id]
        return [copy_event(event) for event in committed + staged]


class MemoryOutbox(Outbox):
    """Committed unpublished messages plus this unit's own, minus what it marked published."""

    def __init__(self, state: MemoryState, changes: ChangeSet) -> None:
        self._state = state
        self._changes = changes

    async def pending(self, limit: int) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        changes = self._changes
        candidates = self._state.pending(limit + len(changes.published | changes.reacted)) + [
            copy_message(m) for m in changes.events
        ]
        candidates.sort(key=lambda message: message.position)
        found = []
        for message in candidates:
            published = message.published or message.position in changes.published
            reacted = message.reacted or message.position in changes.reacted
            if not (published and reacted):
                found.append(attrs.evolve(message, published=published, reacted=reacted))
        return found[:limit]

    async def mark_published(self, positions: Sequence[int]) -> None:
        self._changes.published.update(positions)

    async def mark_reacted(self, positions: Sequence[int]) -> None:
        self._changes.reacted.update(positions)


class MemoryLeaseRepository(LeaseRepository):
    """Leases staged in the unit of work; the commit fails if one changed since it was read."""

    def __init__(self, state: MemoryState, changes: ChangeSet) -> None:
        self._state = state
        self._changes = changes

    def _current(self, name: str) -> Lease | None:
        if name in self._changes.leases:
            return self._changes.leases[name]
        lease = self._state.lease(name)
        self._changes.lease_bases.setdefault(name, lease)
        return lease

    async def acquire(self, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
        current = self._current(name)
        if current is not None and current.holder != holder and current.expires_at > now:
            return False
        self._changes.leases[name] = Lease(holder=holder, expires_at=until)
        return True

    async def hold(self, name: str, holder: str, *, now: datetime) -> bool:
        staged = name in self._changes.leases
        current = self._changes.leases[name] if staged else self._state.lease(name)
        if current is None or current.holder != holder or current.expires_at <= now:
            return False
        self._changes.lease_holds[name] = (holder, now)  # checked again at commit
        return True

    async def holders(self, prefix: str, *, now: datetime) -> dict[str, str]:
        return self._state.live_leases(prefix, now)

    async def release(self, name: str, holder: str) -> None:
        current = self._current(name)
        if current is not None and current.holder == holder:
            self._changes.leases[name] = None


class MemoryProcessedEventRepository(ProcessedEventRepository):
    """The inbox; a duplicate id is refused at ``add`` and again at commit."""

    def __init__(self, state: MemoryState, changes: ChangeSet) -> None:
        self._state = state
        self._changes = changes

    async def get(self, event_id: str) -> ProcessedEvent | None:
        found = self._changes.processed.get(event_id) or self._state.processed.get(event_id)
        return None if found is None else copy_processed(found)

    async def add(self, record: ProcessedEvent) -> None:
        if await self.get(record.event_id) is not None:
            raise DuplicateEvent(record.event_id)
        self._changes.processed[record.event_id] = copy_processed(record)
        self._changes.new_processed.add(record.event_id)

    async def replace(self, record: ProcessedEvent, *, expected_attempts: int) -> None:
        current = await self.get(record.event_id)
        if current is None or current.attempts != expected_attempts:
            raise DuplicateEvent(record.event_id)
        if record.event_id not in self._changes.new_processed:
            self._changes.processed_base.setdefault(record.event_id, current.attempts)
        self._changes.processed[record.event_id] = copy_processed(record)


class MemoryCursorRepository(CursorRepository):
    def __init__(self, state: MemoryState, changes: ChangeSet) -> None:
        self._state = state
        self._changes = changes

    async def get(self, key: str) -> str | None:
        found = self._changes.cursors.get(key) or self._state.cursors.get(key)
        return None if found is None else found[0]

    async def set(self, key: str, value: str, at: datetime) -> None:
        self._changes.cursors[key] = (value, at)
