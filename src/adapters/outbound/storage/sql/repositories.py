"""The storage port over one SQLAlchemy Core connection (the unit of work's transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.outbound.storage.sql import codec
from adapters.outbound.storage.sql.prepared import Prepared
from adapters.outbound.storage.sql.tables import (
    OUTBOX_UNFINISHED,
    cursors,
    leases,
    market_assets,
    market_events,
    markets,
    outbox,
    processed_events,
)
from core.markets.model import TERMINAL_STATUSES, Market, MarketAsset
from core.ports.clock import Clock
from core.ports.inbox import (
    CursorRepository,
    DuplicateEvent,
    ProcessedEvent,
    ProcessedEventRepository,
    ProcessStatus,
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

_TERMINAL = sorted(status.value for status in TERMINAL_STATUSES)


def _violates(exc: IntegrityError, *needles: str) -> bool:
    message = str(exc.orig)
    return any(needle in message for needle in needles)


# Built once: the hottest reads (GET /markets/:id) skip building their statement each time.
_MARKET_BY_ID = sa.select(markets).where(markets.c.id == sa.bindparam("market_id"))
_ASSET_BY_MARKET_ID = sa.select(market_assets).where(
    market_assets.c.market_id == sa.bindparam("market_id")
)


class SqlMarketRepository(MarketRepository):
    """Markets and their assets in ``markets`` and ``market_assets``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, market: Market, asset: MarketAsset) -> None:
        # refused before any statement, as the memory adapter refuses them
        exact_json.check(market.allowed_countries, where="allowed_countries")
        exact_json.check(asset.regulatory_info, where="regulatory_info")
        exact_json.check(asset.attributes, where="attributes")
        if market.status not in TERMINAL_STATUSES and await self.live_symbol_taken(
            market.token_symbol
        ):
            raise DuplicateSymbol(market.token_symbol)
        try:
            await self._conn.execute(sa.insert(markets), [codec.market_to_row(market)])
        except IntegrityError as exc:
            self._translate(exc, market)
            raise
        await self._conn.execute(sa.insert(market_assets), [codec.asset_to_row(asset)])

    async def get(self, market_id: str) -> Market | None:
        result = await self._conn.execute(_MARKET_BY_ID, {"market_id": market_id})
        row = result.mappings().first()
        return None if row is None else codec.market_from_row(row)

    async def get_asset(self, market_id: str) -> MarketAsset | None:
        result = await self._conn.execute(_ASSET_BY_MARKET_ID, {"market_id": market_id})
        row = result.mappings().first()
        return None if row is None else codec.asset_from_row(row)

    async def save(self, market: Market) -> Market:
        saved = attrs.evolve(market, version=market.version + 1)
        values = codec.market_to_row(saved)
        del values["id"]
        statement = (
            sa.update(markets)
            .where(markets.c.id == market.id, markets.c.version == market.version)
            .values(values)
        )
        try:
            result = await self._conn.execute(statement)
        except IntegrityError as exc:
            self._translate(exc, market)
            raise
        if result.rowcount != 1:
            raise ConcurrentModification(
                f"market {market.id} is not at version {market.version}",
                details={"marketId": market.id, "expectedVersion": market.version},
            )
        return saved

    async def list(
        self, market_filter: MarketFilter, *, limit: int, before_id: str | None = None
    ) -> list[Market]:
        if limit <= 0:
            return []
        query = sa.select(markets)
        if market_filter.status is not None:
            query = query.where(markets.c.status == market_filter.status.value)
        if market_filter.asset_type is not None:
            query = query.where(markets.c.asset_type == market_filter.asset_type.value)
        if market_filter.issuer_id is not None:
            query = query.where(markets.c.issuer_id == market_filter.issuer_id)
        if before_id is not None:
            query = query.where(markets.c.id < before_id)
        query = query.order_by(markets.c.id.desc()).limit(limit)
        rows = (await self._conn.execute(query)).mappings().all()
        return [codec.market_from_row(row) for row in rows]

    async def live_symbol_taken(self, symbol: str) -> bool:
        query = (
            sa.select(markets.c.id)
            .where(markets.c.token_symbol == symbol, markets.c.status.not_in(_TERMINAL))
            .limit(1)
        )
        return (await self._conn.execute(query)).first() is not None

    @staticmethod
    def _translate(exc: IntegrityError, market: Market) -> None:
        """Raise the domain error an integrity error stands for; return if it is none of ours."""
        if _violates(exc, "token_symbol"):
            raise DuplicateSymbol(market.token_symbol) from exc
        if _violates(exc, "pk_markets", "markets.id"):
            raise Conflict(f"market {market.id} already exists") from exc


# One statement per event, built once: the INSERT computes the stream's next seq itself.
_APPEND_EVENT = (
    sa.insert(market_events)
    .values(
        stream_seq=sa.select(sa.func.coalesce(sa.func.max(market_events.c.stream_seq), 0) + 1)
        .where(market_events.c.stream == sa.bindparam("next_seq_of"))
        .scalar_subquery()
    )
    .returning(market_events.c.stream_seq)
)
_LAST_STREAM_SEQ = Prepared(
    sa.select(sa.func.coalesce(sa.func.max(market_events.c.stream_seq), 0).label("last")).where(
        market_events.c.stream == sa.bindparam("stream")
    )
)
_INSERT_EVENT = Prepared.insert(market_events)
_INSERT_OUTBOX = Prepared.insert(outbox)


class SqlEventLog(EventLog):
    """Appends to the ``market_events`` history and the ``outbox`` in the same transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def append(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        for event in events:
            check_event(event)
        if len(events) > 1:
            return await self._append_many(events)
        numbered = []
        for event in events:
            row = codec.event_to_row(event)
            del row["stream_seq"]
            row["next_seq_of"] = event.stream
            try:
                seq = (await self._conn.execute(_APPEND_EVENT, row)).scalar_one()
            except IntegrityError as exc:
                if _violates(exc, "stream_seq"):  # another unit of work appended to the stream
                    raise ConcurrentModification(
                        f"event stream {event.stream} was appended to meanwhile",
                        details={"stream": event.stream},
                    ) from exc
                raise
            numbered.append(attrs.evolve(event, seq=seq))
        if not numbered:
            return []
        correlation = correlation_id()
        await _INSERT_OUTBOX.run(self._conn, [codec.outbox_row(e, correlation) for e in numbered])
        return numbered

    async def _append_many(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """A batch (a pair's writer appends dozens): each stream's last seq read once, then
        one multi-row INSERT into the history and one into the outbox. The unique
        ``(stream, stream_seq)`` still refuses a concurrent append to a stream."""
        last: dict[str, int] = {}
        for stream in sorted({event.stream for event in events}):
            found = await _LAST_STREAM_SEQ.rows(self._conn, {"stream": stream})
            last[stream] = int(found[0]["last"])
        numbered = []
        for event in events:
            last[event.stream] += 1
            numbered.append(attrs.evolve(event, seq=last[event.stream]))
        try:
            await _INSERT_EVENT.run(self._conn, [codec.event_to_row(e) for e in numbered])
        except IntegrityError as exc:
            if _violates(exc, "stream_seq"):
                raise ConcurrentModification(
                    "an event stream was appended to meanwhile",
                    details={"streams": sorted(last)},
                ) from exc
            raise
        correlation = correlation_id()
        await _INSERT_OUTBOX.run(self._conn, [codec.outbox_row(e, correlation) for e in numbered])
        return numbered

    async def for_aggregate(self, aggregate_id: str) -> list[DomainEvent]:
        query = (
            sa.select(market_events)
            .where(market_events.c.aggregate_id == aggregate_id)
            .order_by(market_events.c.seq)
        )
        rows = (await self._conn.execute(query)).mappings().all()
        return [codec.event_from_row(row) for row in rows]


class SqlOutbox(Outbox):
    """Unfinished rows of ``outbox`` in position order; the bus publication stamps
    ``published_at``, the reactions ``reacted_at``."""

    def __init__(self, connection: AsyncConnection, clock: Clock) -> None:
        self._conn = connection
        self._clock = clock

    async def pending(self, limit: int) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        rows = await _UNFINISHED_OUTBOX.rows(self._conn, {"limit": limit})
        return [
            OutboxMessage(
                position=row["position"],
                event=codec.event_from_row(row, id_column="event_id"),
                published=row["published_at"] is not None,
                reacted=row["reacted_at"] is not None,
                correlation_id=row["correlation_id"],
            )
            for row in rows
        ]

    async def mark_published(self, positions: Sequence[int]) -> None:
        await self._stamp(outbox.c.published_at, positions)

    async def mark_reacted(self, positions: Sequence[int]) -> None:
        await self._stamp(outbox.c.reacted_at, positions)

    async def _stamp(self, column: sa.Column[Any], positions: Sequence[int]) -> None:
        now = self._clock.now()
        params = [{"k_position": position, "now": now} for position in positions]
        await _STAMP[column.name].run(self._conn, params, counted=False)


def _stamp_statement(column: sa.Column[Any]) -> Prepared:
    return Prepared(
        sa.update(outbox)
        .where(outbox.c.position == sa.bindparam("k_position"), column.is_(None))
        .values({column.name: sa.bindparam("now", type_=column.type)})
    )


# Built once: the relay reads and stamps the outbox after every batch of events.
_UNFINISHED_OUTBOX = Prepared(
    sa.select(outbox)
    .where(sa.text(OUTBOX_UNFINISHED))
    .order_by(outbox.c.position)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)
_STAMP = {
    column.name: _stamp_statement(column) for column in (outbox.c.published_at, outbox.c.reacted_at)
}


class SqlLeaseRepository(LeaseRepository):
    """``leases``: one conditional UPDATE (or an INSERT that a concurrent one makes fail), so
    two units of work can never both take a lease."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def acquire(self, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
        taken = await self._conn.execute(
            sa.update(leases)
            .where(
                leases.c.name == name,
                sa.or_(leases.c.holder == holder, leases.c.expires_at <= now),
            )
            .values(holder=holder, expires_at=until)
        )
        if taken.rowcount == 1:
            return True
        exists = sa.select(leases.c.name).where(leases.c.name == name)
        if (await self._conn.execute(exists)).first() is not None:
            return False
        try:
            await self._conn.execute(
                sa.insert(leases), [{"name": name, "holder": holder, "expires_at": until}]
            )
        except IntegrityError as exc:
            raise ConcurrentModification(
                f"lease {name} was taken meanwhile", details={"lease": name}
            ) from exc
        return True

    async def hold(self, name: str, holder: str, *, now: datetime) -> bool:
        # an UPDATE that changes nothing still locks the row (Postgres) until the
        # transaction ends, so no other holder's acquire can commit before this one; SQLite
        # writes one transaction at a time anyway
        held = await self._conn.execute(
            sa.update(leases)
            .where(leases.c.name == name, leases.c.holder == holder, leases.c.expires_at > now)
            .values(holder=leases.c.holder)
        )
        return held.rowcount == 1

    async def holders(self, prefix: str, *, now: datetime) -> dict[str, str]:
        query = sa.select(leases.c.name, leases.c.holder).where(
            leases.c.name.startswith(prefix, autoescape=True), leases.c.expires_at > now
        )
        return {row.name: row.holder for row in await self._conn.execute(query)}

    async def release(self, name: str, holder: str) -> None:
        await self._conn.execute(
            sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder)
        )


def _processed_row(record: ProcessedEvent) -> dict[str, Any]:
    return {
        "event_id": record.event_id,
        "event_type": record.event_type,
        "source": record.source,
        "status": record.status.value,
        "error": record.error,
        "payload": dict(record.payload),
        "context": dict(record.context),
        "attempts": record.attempts,
        "received_at": record.received_at,
        "processed_at": record.processed_at,
    }


class SqlProcessedEventRepository(ProcessedEventRepository):
    """``processed_events``: the primary key on ``event_id`` refuses a second delivery."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, event_id: str) -> ProcessedEvent | None:
        query = sa.select(processed_events).where(processed_events.c.event_id == event_id)
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            return None
        return ProcessedEvent(
            event_id=row["event_id"],
            event_type=row["event_type"],
            source=row["source"],
            status=ProcessStatus(row["status"]),
            received_at=row["received_at"],
            processed_at=row["processed_at"],
            error=row["error"],
            payload=dict(row["payload"]),
            context=dict(row["context"]),
            attempts=row["attempts"],
        )

    async def add(self, record: ProcessedEvent) -> None:
        try:
            await self._conn.execute(sa.insert(processed_events), [_processed_row(record)])
        except IntegrityError as exc:
            if _violates(exc, "pk_processed_events", "processed_events.event_id"):
                raise DuplicateEvent(record.event_id) from exc
            raise

    async def replace(self, record: ProcessedEvent, *, expected_attempts: int) -> None:
        values = _processed_row(record)
        del values["event_id"]
        result = await self._conn.execute(
            sa.update(processed_events)
            .where(
                processed_events.c.event_id == record.event_id,
                processed_events.c.attempts == expected_attempts,
            )
            .values(values)
        )
        if result.rowcount != 1:
            raise DuplicateEvent(record.event_id)


class SqlCursorRepository(CursorRepository):
    """``cursors``: an upsert per key."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def get(self, key: str) -> str | None:
        query = sa.select(cursors.c.value).where(cursors.c.key == key)
        value = (await self._conn.execute(query)).scalar_one_or_none()
        return None if value is None else str(value)

    async def set(self, key: str, value: str, at: datetime) -> None:
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(cursors).values(key=key, value=value, updated_at=at)
        statement = statement.on_conflict_do_update(
            index_elements=[cursors.c.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
        await self._conn.execute(statement)
