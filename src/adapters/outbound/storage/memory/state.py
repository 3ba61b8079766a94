"""The committed contents of a ``MemoryStorage``, changed only by applying a whole change set."""

from __future__ import annotations

import copy
import heapq
import itertools
import threading
from datetime import datetime

import attrs

from adapters.outbound.storage.memory.audit import AuditChanges, MemoryAuditState
from adapters.outbound.storage.memory.deployments import DeploymentChanges, MemoryDeploymentState
from adapters.outbound.storage.memory.ledger import LedgerChanges, MemoryLedgerState
from adapters.outbound.storage.memory.marketdata import MarketDataChanges, MemoryMarketDataState
from adapters.outbound.storage.memory.operations import MemoryOperationState, OperationChanges
from adapters.outbound.storage.memory.tokens import MemoryTokenState, TokenChanges
from adapters.outbound.storage.memory.trading import MemoryTradingState, TradingChanges
from adapters.outbound.storage.memory.wallets import MemoryWalletState, WalletChanges
from core.markets.model import TERMINAL_STATUSES, Market, MarketAsset
from core.ports.inbox import DuplicateEvent, ProcessedEvent
from core.ports.storage import OutboxMessage
from core.shared.errors import ConcurrentModification, Conflict, DuplicateSymbol
from core.shared.events import DomainEvent


def is_live(market: Market) -> bool:
    """Whether the market holds its token symbol (neither rejected nor archived)."""
    return market.status not in TERMINAL_STATUSES


def copy_asset(asset: MarketAsset) -> MarketAsset:
    """Frozen attrs objects are shared; the mutable free-form dicts are copied."""
    return attrs.evolve(
        asset,
        attributes=copy.deepcopy(asset.attributes),
        regulatory_info=copy.deepcopy(asset.regulatory_info),
    )


def copy_event(event: DomainEvent) -> DomainEvent:
    return attrs.evolve(event, metadata=copy.deepcopy(event.metadata))


def copy_message(message: OutboxMessage) -> OutboxMessage:
    return attrs.evolve(message, event=copy_event(message.event))


def copy_processed(record: ProcessedEvent) -> ProcessedEvent:
    return attrs.evolve(
        record, payload=copy.deepcopy(record.payload), context=copy.deepcopy(record.context)
    )


@attrs.frozen
class Lease:
    holder: str
    expires_at: datetime


@attrs.define
class ChangeSet:
    """What one unit of work staged, applied all at once by ``MemoryState.apply``."""

    markets: dict[str, Market] = attrs.Factory(dict)  # staged values, by id
    new_ids: set[str] = attrs.Factory(set)  # ids added (not saved) by this unit of work
    base_versions: dict[str, int] = attrs.Factory(dict)  # committed versions we built on
    assets: dict[str, MarketAsset] = attrs.Factory(dict)
    events: list[OutboxMessage] = attrs.Factory(list)  # with positions drawn at append
    stream_bases: dict[str, int] = attrs.Factory(dict)  # committed stream heads we built on
    stream_heads: dict[str, int] = attrs.Factory(dict)  # heads after this unit's appends
    published: set[int] = attrs.Factory(set)
    reacted: set[int] = attrs.Factory(set)
    leases: dict[str, Lease | None] = attrs.Factory(dict)  # staged: taken, renewed or freed
    lease_bases: dict[str, Lease | None] = attrs.Factory(dict)  # committed leases we read
    lease_holds: dict[str, tuple[str, datetime]] = attrs.Factory(dict)  # fences: (holder, now)
    processed: dict[str, ProcessedEvent] = attrs.Factory(dict)  # staged inbox records
    new_processed: set[str] = attrs.Factory(set)  # event ids added (not replaced) here
    processed_base: dict[str, int] = attrs.Factory(dict)  # committed attempts we built on
    cursors: dict[str, tuple[str, datetime]] = attrs.Factory(dict)  # key -> (value, set at)
    ledger: LedgerChanges = attrs.Factory(LedgerChanges)  # staged posting sets
    deployments: DeploymentChanges = attrs.Factory(DeploymentChanges)
    audit: AuditChanges = attrs.Factory(AuditChanges)
    wallets: WalletChanges = attrs.Factory(WalletChanges)
    tokens: TokenChanges = attrs.Factory(TokenChanges)  # tokens and compliance records
    operations: OperationChanges = attrs.Factory(OperationChanges)  # mints, withdrawals...
    trading: TradingChanges = attrs.Factory(TradingChanges)  # pairs, orders, trades
    marketdata: MarketDataChanges = attrs.Factory(MarketDataChanges)  # candles, prices...


class MemoryState:
    """Committed markets, assets, event history and outbox, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.markets: dict[str, Market] = {}
        self.assets: dict[str, MarketAsset] = {}
        self.live_symbols: dict[str, str] = {}  # symbol -> id of the live market holding it
        self.history: dict[str, list[DomainEvent]] = {}  # by aggregate id, oldest first
        self.unfinished: dict[int, OutboxMessage] = {}  # outbox rows not yet done
        self.stream_heads: dict[str, int] = {}  # the last seq of every stream
        self.leases: dict[str, Lease] = {}
        self.processed: dict[str, ProcessedEvent] = {}  # the inbox, by event id
        self.cursors: dict[str, tuple[str, datetime]] = {}  # key -> (value, set at)
        self.ledger = MemoryLedgerState()  # accounts, supply counters, posting sets
        self.deployments = MemoryDeploymentState()  # deployment transactions by hash
        self.audit = MemoryAuditState()  # append-only audit entries
        self.wallets = MemoryWalletState()  # user numbers, external addresses, challenges
        self.tokens = MemoryTokenState()  # tokens and compliance records
        self.operations = MemoryOperationState()  # mints, transfers, withdrawals, deposits
        self.trading = MemoryTradingState()  # pairs, orders, trades
        self.marketdata = MemoryMarketDataState()  # trades, candles, prices, valuations
        self._positions = itertools.count(1)

    def next_position(self) -> int:
        """Outbox positions are drawn at append time, like a database sequence (gaps allowed)."""
        with self.lock:
            return next(self._positions)

    def pending(self, limit: int) -> list[OutboxMessage]:
        with self.lock:
            positions = heapq.nsmallest(limit, self.unfinished)
            return [copy_message(self.unfinished[p]) for p in positions]

    def stream_head(self, stream: str) -> int:
        with self.lock:
            return self.stream_heads.get(stream, 0)

    def lease(self, name: str) -> Lease | None:
        with self.lock:
            return self.leases.get(name)

    def live_leases(self, prefix: str, now: datetime) -> dict[str, str]:
        with self.lock:
            return {
                name: lease.holder
                for name, lease in self.leases.items()
                if name.startswith(prefix) and lease.expires_at > now
            }

    def apply(self, changes: ChangeSet) -> None:
        """Check versions and the live-symbol rule, then apply everything, or nothing."""
        with self.lock:
            self._check(changes)
            self.ledger.check(changes.ledger)
            self.deployments.check(changes.deployments)
            self.audit.check(changes.audit)
            self.wallets.check(changes.wallets)
            self.tokens.check(changes.tokens)
            self.operations.check(changes.operations)
            self.trading.check(changes.trading)
            self.marketdata.check(changes.marketdata)
            for market_id in changes.markets:
                old = self.markets.get(market_id)
                if old is not None and self.live_symbols.get(old.token_symbol) == market_id:
                    del self.live_symbols[old.token_symbol]
            for market_id, market in changes.markets.items():
                self.markets[market_id] = market
                if is_live(market):
                    self.live_symbols[market.token_symbol] = market_id
            self.assets.update(changes.assets)
            for message in changes.events:
                event = message.event
                self.history.setdefault(event.aggregate_id, []).append(event)
                self.unfinished[message.position] = message
            self.stream_heads.update(changes.stream_heads)
            for position in changes.published | changes.reacted:
                unfinished = self.unfinished.get(position)
                if unfinished is None:
                    continue
                marked = attrs.evolve(
                    unfinished,
                    published=unfinished.published or position in changes.published,
                    reacted=unfinished.reacted or position in changes.reacted,
                )
                if marked.published and marked.reacted:
                    del self.unfinished[position]
                else:
                    self.unfinished[position] = marked
            for name, lease in changes.leases.items():
                if lease is None:
                    self.leases.pop(name, None)
                else:
                    self.leases[name] = lease
            self.processed.update(changes.processed)
            self.cursors.update(changes.cursors)
            self.ledger.apply(changes.ledger)
            self.deployments.apply(changes.deployments)
            self.audit.apply(changes.audit)
            self.wallets.apply(changes.wallets)
            self.tokens.apply(changes.tokens)
            self.operations.apply(changes.operations)
            self.trading.apply(changes.trading)
            self.marketdata.apply(changes.marketdata)

    def _check(self, changes: ChangeSet) -> None:
        for stream, base in changes.stream_bases.items():
            if self.stream_heads.get(stream, 0) != base:
                raise ConcurrentModification(
                    f"stream {stream} was appended to meanwhile", details={"stream": stream}
                )
        for name, lease_base in changes.lease_bases.items():
            if self.leases.get(name) != lease_base:
                raise ConcurrentModification(
                    f"lease {name} changed meanwhile", details={"lease": name}
                )
        for name, (fenced, at) in changes.lease_holds.items():
            held = changes.leases.get(name, self.leases.get(name))
            if held is None or held.holder != fenced or held.expires_at <= at:
                raise ConcurrentModification(
                    f"lease {name} is no longer held by {fenced}", details={"lease": name}
                )
        for event_id in changes.processed:
            committed = self.processed.get(event_id)
            if event_id in changes.new_processed:
                if committed is not None:
                    raise DuplicateEvent(event_id)
            elif committed is None or committed.attempts != changes.processed_base[event_id]:
                raise DuplicateEvent(event_id)
        for market_id in changes.markets:
            stored = self.markets.get(market_id)
            if market_id in changes.new_ids:
                if stored is not None:
                    raise Conflict(f"market {market_id} already exists")
            elif stored is None or stored.version != changes.base_versions[market_id]:
                raise ConcurrentModification(
                    f"market {market_id} changed since it was read",
                    details={"marketId": market_id},
                )
        claimed: dict[str, str] = {}
        for market in changes.markets.values():
            if not is_live(market):
                continue
            symbol = market.token_symbol
            if claimed.setdefault(symbol, market.id) != market.id:
                raise DuplicateSymbol(symbol)
            holder = self.live_symbols.get(symbol)
            if holder is not None and holder != market.id and holder not in changes.markets:
                raise DuplicateSymbol(symbol)
