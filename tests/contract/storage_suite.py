"""The storage port's contract: one abstract suite that every storage adapter must pass.

A concrete test class subclasses ``StorageContract`` and provides a ``storage`` fixture
yielding an empty, ready ``Storage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from structlog.contextvars import bound_contextvars

from core.markets.model import (
    AssetType,
    ComplianceDocument,
    Market,
    MarketAsset,
    MarketStatus,
)
from core.ports.inbox import DuplicateEvent, ProcessedEvent, ProcessStatus
from core.ports.storage import MarketFilter, ReadOnlyUnitOfWork, Storage
from core.shared.errors import ConcurrentModification, Conflict, DuplicateSymbol
from core.shared.events import DomainEvent, InvalidEvent, market_stream
from core.shared.ids import new_id
from tests.contract.deployment_suite import DeploymentRecordsContract
from tests.contract.token_suite import TokenStorageContract

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))
_symbols = iter(range(1, 10**9))


def make_market(**overrides: Any) -> Market:
    fields: dict[str, Any] = {
        "id": new_id(),
        "name": "Harbour Tower",
        "asset_type": AssetType.REAL_ESTATE,
        "issuer_id": "issuer-1",
        "token_symbol": f"SYM{next(_symbols)}",
        "token_name": "Harbour Tower Token",
        "total_supply": 1_000_000,
        "status": MarketStatus.DRAFT,
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Market(**fields)


def make_asset(market: Market, **overrides: Any) -> MarketAsset:
    fields: dict[str, Any] = {"market_id": market.id, "id": market.id}
    fields.update(overrides)
    return MarketAsset(**fields)


def make_event(aggregate_id: str, event_type: str = "market.registered", **kw: Any) -> DomainEvent:
    fields: dict[str, Any] = {
        "type": event_type,
        "aggregate_id": aggregate_id,
        "actor_id": "user-1",
        "actor_type": "user",
        "occurred_at": T0,
    }
    fields.update(kw)
    return DomainEvent(**fields)


def numbered(events: list[DomainEvent], after: dict[str, int] | None = None) -> list[DomainEvent]:
    """``events`` as the storage returns them: each with the next seq of its stream."""
    heads = dict(after or {})
    result = []
    for event in events:
        heads[event.stream] = heads.get(event.stream, 0) + 1
        result.append(attrs.evolve(event, seq=heads[event.stream]))
    return result


def make_processed(event_id: str | None = None, **overrides: Any) -> ProcessedEvent:
    fields: dict[str, Any] = {
        "event_id": event_id or f"evt-{new_id()}",
        "event_type": "market.approved",
        "source": "webhook",
        "status": ProcessStatus.SUCCESS,
        "received_at": T0,
        "processed_at": T0,
        "payload": {"market_id": "m-1", "decision": "approve"},
        "context": {"actor_id": "core-user-1"},
    }
    fields.update(overrides)
    return ProcessedEvent(**fields)


def assert_aware(*values: datetime | None) -> None:
    for value in values:
        assert value is not None and value.tzinfo is not None and value.utcoffset() is not None


class StorageContract(DeploymentRecordsContract, TokenStorageContract):
    """Async tests of the storage port. Subclasses provide the ``storage`` fixture."""

    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def _add(self, storage: Storage, *markets: Market) -> None:
        async with storage.unit_of_work() as uow:
            for market in markets:
                await uow.markets.add(market, make_asset(market))
            await uow.commit()

    async def _get(self, storage: Storage, market_id: str) -> Market | None:
        async with storage.unit_of_work() as uow:
            return await uow.markets.get(market_id)

    async def _set_status(self, storage: Storage, market: Market, status: MarketStatus) -> Market:
        async with storage.unit_of_work() as uow:
            saved = await uow.markets.save(attrs.evolve(market, status=status))
            await uow.commit()
        return saved

    # -- markets ---------------------------------------------------------------------------

    async def test_ping(self, storage: Storage) -> None:
        await storage.ping()

    async def test_add_and_get_round_trip_every_field(self, storage: Storage) -> None:
        market = make_market(
            name="Zürich Office Park — Class A",
            description="Twelve floors\nwith a view",
            asset_type=AssetType.GOVERNMENT_BOND,
            entity_id="entity-7",
            total_supply=123_456_789_012_345_678_901_234_567_890,  # beyond int64
            status=MarketStatus.ACTIVE,
            created_at=datetime(2026, 1, 2, 5, 4, 5, 678901, tzinfo=PLUS_TWO),
            updated_at=T0 + timedelta(days=1),
            decimals=6,
            tick_size=Decimal("0.0001"),
            lot_size=Decimal("1.50"),
            contract_address="0x" + "ab" * 20,
            deployment_tx_hash="0x" + "cd" * 32,
            approved_by="admin-1",
            approved_at=T0 + timedelta(hours=1),
            activated_at=T0 + timedelta(hours=2),
            rejected_by="admin-2",
            rejected_at=T0 + timedelta(hours=3),
            rejected_reason="first papers were incomplete",
            activation_attempts=3,
            activation_error="nonce too low",
            version=7,
            maker_fee_bps=10,
            taker_fee_bps=25,
            accredited_investors_only=True,
            allowed_countries=("CH", "DE"),
        )
        asset = make_asset(
            market,
            valuation=Decimal("123456789012345678901234.0123456789"),
            currency="EUR",
            location="Zürich, CH",
            description="Office park",
            compliance_documents=(
                ComplianceDocument("Prospectus", "https://x.test/p.pdf", "ab" * 32, "prospectus"),
                ComplianceDocument("Deed", "https://x.test/d.pdf"),
                "doc-id-3",
            ),
            regulatory_info={"jurisdiction": "CH", "regulator": "FINMA", "tier": 2},
            attributes={
                "floors": 12,
                "green": True,
                "tags": ["a", "b"],
                "nested": {"x": None},
                "occupancyRate": Decimal("0.95"),
                "yield": Decimal("4.50"),
                "big": 10**40,
            },
        )
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, asset)
            await uow.commit()

        async with storage.unit_of_work() as uow:
            got = await uow.markets.get(market.id)
            got_asset = await uow.markets.get_asset(market.id)
        assert got == market
        assert got_asset == asset
        assert got is not None and got_asset is not None
        assert isinstance(got.total_supply, int)
        assert got.status is MarketStatus.ACTIVE and got.asset_type is AssetType.GOVERNMENT_BOND
        assert_aware(got.created_at, got.updated_at, got.approved_at, got.activated_at)
        assert_aware(got.rejected_at)
        assert got.created_at == T0
        assert got_asset.valuation is not None and got.lot_size is not None
        assert got_asset.valuation.as_tuple() == asset.valuation.as_tuple()  # type: ignore[union-attr]
        assert got.lot_size.as_tuple() == Decimal("1.50").as_tuple()
        assert isinstance(got_asset.compliance_documents, tuple)
        assert got.allowed_countries == ("CH", "DE") and got.accredited_investors_only is True
        # free-form numbers come back exactly: the same Decimal text, never a float
        rate = got_asset.attributes["occupancyRate"]
        assert isinstance(rate, Decimal) and str(rate) == "0.95"
        assert str(got_asset.attributes["yield"]) == "4.50"
        assert got_asset.attributes["big"] == 10**40

    async def test_free_form_json_refuses_floats_and_objects(self, storage: Storage) -> None:
        for attributes in ({"rate": 0.95}, {"when": T0}, {"set": {1}}):
            market = make_market()
            with pytest.raises(TypeError):
                async with storage.unit_of_work() as uow:
                    await uow.markets.add(market, make_asset(market, attributes=attributes))
                    await uow.commit()
            assert await self._get(storage, market.id) is None

    async def test_defaults_round_trip(self, storage: Storage) -> None:
        market = make_market()
        await self._add(storage, market)
        async with storage.unit_of_work() as uow:
            assert await uow.markets.get(market.id) == market
            assert await uow.markets.get_asset(market.id) == make_asset(market)

    async def test_get_unknown_is_none(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            assert await uow.markets.get(new_id()) is None
            assert await uow.markets.get_asset(new_id()) is None

    async def test_add_twice_the_same_id_conflicts(self, storage: Storage) -> None:
        market = make_market()
        await self._add(storage, market)
        with pytest.raises(Conflict):
            async with storage.unit_of_work() as uow:
                await uow.markets.add(
                    attrs.evolve(market, token_symbol="OTHER"), make_asset(market)
                )
                await uow.commit()

    async def test_save_bumps_version_and_persists(self, storage: Storage) -> None:
        market = make_market()
        await self._add(storage, market)
        changed = attrs.evolve(
            market,
            status=MarketStatus.PENDING_APPROVAL,
            updated_at=T0 + timedelta(minutes=5),
            tick_size=Decimal("0.05"),
        )
        async with storage.unit_of_work() as uow:
            saved = await uow.markets.save(changed)
            assert saved == attrs.evolve(changed, version=2)
            assert await uow.markets.get(market.id) == saved  # visible inside the unit
            await uow.commit()
        assert await self._get(storage, market.id) == saved
        again = await self._set_status(storage, saved, MarketStatus.APPROVED)
        assert again.version == 3
        assert await self._get(storage, market.id) == again

    async def test_save_with_stale_version_changes_nothing(self, storage: Storage) -> None:
        market = make_market()
        await self._add(storage, market)
        current = await self._set_status(storage, market, MarketStatus.PENDING_APPROVAL)
        async with storage.unit_of_work() as uow:
            with pytest.raises(ConcurrentModification):
                await uow.markets.save(attrs.evolve(market, name="stale write"))
        assert await self._get(storage, market.id) == current

    async def test_save_unknown_market_is_a_concurrent_modification(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            with pytest.raises(ConcurrentModification):
                await uow.markets.save(make_market())

    async def test_add_then_save_in_one_unit(self, storage: Storage) -> None:
        market = make_market()
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            saved = await uow.markets.save(attrs.evolve(market, name="renamed"))
            await uow.commit()
        assert saved.version == 2
        assert await self._get(storage, market.id) == saved

    # -- units of work ---------------------------------------------------------------------

    async def test_uncommitted_unit_of_work_rolls_back(self, storage: Storage) -> None:
        market = make_market()
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            await uow.events.append([make_event(market.id)])
        async with storage.unit_of_work() as uow:
            assert await uow.markets.get(market.id) is None
            assert await uow.markets.get_asset(market.id) is None
            assert await uow.events.for_aggregate(market.id) == []
            assert await uow.outbox.pending(10) == []
            assert not await uow.markets.live_symbol_taken(market.token_symbol)

    async def test_exception_inside_the_block_rolls_back(self, storage: Storage) -> None:
        market = make_market()
        with pytest.raises(RuntimeError, match="boom"):
            async with storage.unit_of_work() as uow:
                await uow.markets.add(market, make_asset(market))
                await uow.events.append([make_event(market.id)])
                raise RuntimeError("boom")
        async with storage.unit_of_work() as uow:
            assert await uow.markets.get(market.id) is None
            assert await uow.outbox.pending(10) == []

    async def test_changes_after_commit_need_another_commit(self, storage: Storage) -> None:
        first, second = make_market(), make_market()
        async with storage.unit_of_work() as uow:
            await uow.markets.add(first, make_asset(first))
            await uow.commit()
            await uow.markets.add(second, make_asset(second))
        assert await self._get(storage, first.id) == first
        assert await self._get(storage, second.id) is None

    async def test_a_unit_of_work_can_be_reused_after_it_closes(self, storage: Storage) -> None:
        uow = storage.unit_of_work()
        market = make_market()
        async with uow:
            await uow.markets.add(market, make_asset(market))
            await uow.commit()
        async with uow:
            assert await uow.markets.get(market.id) == market

    async def test_concurrent_saves_exactly_one_wins(self, storage: Storage) -> None:
        market = make_market()
        await self._add(storage, market)

        async def rename(name: str) -> str | None:
            try:
                async with storage.unit_of_work() as uow:
                    await uow.markets.save(attrs.evolve(market, name=name))
                    await asyncio.sleep(0)
                    await uow.commit()
            except ConcurrentModification:
                return None
            return name

        results = await asyncio.gather(*(rename(f"writer-{i}") for i in range(4)))
        winners = [name for name in results if name is not None]
        assert len(winners) == 1
        stored = await self._get(storage, market.id)
        assert stored is not None and stored.version == 2 and stored.name == winners[0]

    # -- live symbols ----------------------------------------------------------------------

    async def test_duplicate_live_symbol_is_refused(self, storage: Storage) -> None:
        holder = make_market(token_symbol="HBR")
        await self._add(storage, holder)
        for status in (MarketStatus.DRAFT, MarketStatus.ACTIVE, MarketStatus.PAUSED):
            with pytest.raises(DuplicateSymbol):
                await self._add(storage, make_market(token_symbol="HBR", status=status))
        assert await self._get(storage, holder.id) == holder

    async def test_duplicate_symbol_within_one_unit_of_work(self, storage: Storage) -> None:
        first, second = make_market(token_symbol="TWN"), make_market(token_symbol="TWN")
        with pytest.raises(DuplicateSymbol):
            await self._add(storage, first, second)
        assert await self._get(storage, first.id) is None

    @pytest.mark.parametrize("final", [MarketStatus.REJECTED, MarketStatus.ARCHIVED])
    async def test_symbol_is_reusable_once_the_holder_is_terminal(
        self, storage: Storage, final: MarketStatus
    ) -> None:
        holder = make_market(token_symbol="REU")
        await self._add(storage, holder)
        await self._set_status(storage, holder, final)
        successor = make_market(token_symbol="REU")
        await self._add(storage, successor)
        assert await self._get(storage, successor.id) == successor
        # and a terminal market never blocks, even when added with a live symbol
        await self._add(storage, make_market(token_symbol="REU", status=final))

    async def test_reviving_a_terminal_market_with_a_taken_symbol_fails(
        self, storage: Storage
    ) -> None:
        old = make_market(token_symbol="RVV", status=MarketStatus.REJECTED)
        live = make_market(token_symbol="RVV")
        await self._add(storage, old, live)
        with pytest.raises(DuplicateSymbol):
            async with storage.unit_of_work() as uow:
                await uow.markets.save(attrs.evolve(old, status=MarketStatus.DRAFT))
                await uow.commit()
        assert await self._get(storage, old.id) == old

    async def test_live_symbol_taken(self, storage: Storage) -> None:
        market = make_market(token_symbol="LST")
        async with storage.unit_of_work() as uow:
            assert not await uow.markets.live_symbol_taken("LST")
            await uow.markets.add(market, make_asset(market))
            assert await uow.markets.live_symbol_taken("LST")  # own uncommitted add counts
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.markets.live_symbol_taken("LST")
            assert not await uow.markets.live_symbol_taken("lst")
        await self._set_status(storage, market, MarketStatus.ARCHIVED)
        async with storage.unit_of_work() as uow:
            assert not await uow.markets.live_symbol_taken("LST")

    async def test_concurrent_adds_of_one_symbol_exactly_one_wins(self, storage: Storage) -> None:
        async def add(market: Market) -> bool:
            try:
                await self._add(storage, market)
            except DuplicateSymbol:
                return False
            return True

        results = await asyncio.gather(*(add(make_market(token_symbol="RACE")) for _ in range(4)))
        assert sorted(results) == [False, False, False, True]

    # -- listing ---------------------------------------------------------------------------

    async def test_list_filters_newest_first(self, storage: Storage) -> None:
        specs = [
            (MarketStatus.DRAFT, AssetType.REAL_ESTATE, "alice"),
            (MarketStatus.ACTIVE, AssetType.REAL_ESTATE, "bob"),
            (MarketStatus.ACTIVE, AssetType.COMMODITY, "alice"),
            (MarketStatus.PENDING_APPROVAL, AssetType.COMMODITY, "bob"),
            (MarketStatus.ACTIVE, AssetType.ART_COLLECTIBLE, "alice"),
            (MarketStatus.REJECTED, AssetType.REAL_ESTATE, "carol"),
        ]
        markets = [make_market(status=s, asset_type=t, issuer_id=i) for s, t, i in specs]
        await self._add(storage, *markets)

        async def listed(market_filter: MarketFilter) -> list[Market]:
            async with storage.unit_of_work() as uow:
                return await uow.markets.list(market_filter, limit=100)

        def expected(keep: Any) -> list[Market]:
            return sorted((m for m in markets if keep(m)), key=lambda m: m.id, reverse=True)

        assert await listed(MarketFilter()) == expected(lambda m: True)
        assert await listed(MarketFilter(status=MarketStatus.ACTIVE)) == expected(
            lambda m: m.status is MarketStatus.ACTIVE
        )
        assert await listed(MarketFilter(asset_type=AssetType.COMMODITY)) == expected(
            lambda m: m.asset_type is AssetType.COMMODITY
        )
        assert await listed(MarketFilter(issuer_id="alice")) == expected(
            lambda m: m.issuer_id == "alice"
        )
        both = MarketFilter(status=MarketStatus.ACTIVE, issuer_id="alice")
        assert await listed(both) == expected(
            lambda m: m.status is MarketStatus.ACTIVE and m.issuer_id == "alice"
        )
        all_three = MarketFilter(MarketStatus.ACTIVE, AssetType.COMMODITY, "alice")
        assert [m.id for m in await listed(all_three)] == [markets[2].id]
        assert await listed(MarketFilter(issuer_id="nobody")) == []

    async def test_list_pages_with_before_id(self, storage: Storage) -> None:
        markets = [make_market(issuer_id="pager") for _ in range(7)]
        await self._add(storage, *markets)
        await self._add(storage, make_market(issuer_id="someone-else"))
        newest_first = sorted((m.id for m in markets), reverse=True)

        seen: list[str] = []
        before: str | None = None
        pages = 0
        while True:
            async with storage.unit_of_work() as uow:
                page = await uow.markets.list(
                    MarketFilter(issuer_id="pager"), limit=3, before_id=before
                )
            if not page:
                break
            pages += 1
            assert len(page) <= 3
            seen.extend(m.id for m in page)
            before = page[-1].id
        assert seen == newest_first
        assert pages == 3
        async with storage.unit_of_work() as uow:
            assert await uow.markets.list(MarketFilter(), limit=0) == []
            oldest = min(seen)
            pager = MarketFilter(issuer_id="pager")
            assert await uow.markets.list(pager, limit=2, before_id=oldest) == []

    # -- event log and outbox --------------------------------------------------------------

    async def test_event_log_round_trips_every_field_oldest_first(self, storage: Storage) -> None:
        market_id, other_id = new_id(), new_id()
        events = [
            make_event(market_id, "market.registered", metadata={}),
            make_event(
                market_id,
                "market.rejected",
                actor_id="admin-9",
                actor_type="permissions_core",
                occurred_at=datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=PLUS_TWO),
                decision="rejected",
                reason="missing prospectus",
                metadata={"source": "webhook", "attempt": 2, "nested": {"ok": [1, None, "x"]}},
            ),
            make_event(market_id, "market.approval_requested"),  # same time as the first
        ]
        other = make_event(other_id, "market.registered")
        async with storage.unit_of_work() as uow:
            assert await uow.events.append(events[:2]) == numbered(events[:2])
            assert await uow.events.append([other]) == numbered([other])
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.events.append(events[2:]) == numbered(events)[2:]
            assert await uow.events.append([]) == []
            await uow.commit()
        async with storage.unit_of_work() as uow:
            got = await uow.events.for_aggregate(market_id)
            assert await uow.events.for_aggregate(other_id) == numbered([other])
            assert await uow.events.for_aggregate(new_id()) == []
        assert got == numbered(events)
        stream = market_stream(market_id)
        assert [(e.stream, e.seq) for e in got] == [(stream, 1), (stream, 2), (stream, 3)]
        for event in got:
            assert_aware(event.occurred_at)

    async def test_outbox_pending_in_position_order_until_published(self, storage: Storage) -> None:
        events = [make_event(new_id(), f"market.e{i}") for i in range(5)]
        async with storage.unit_of_work() as uow:
            await uow.events.append(events[:3])
            await uow.commit()
        async with storage.unit_of_work() as uow:
            await uow.events.append(events[3:])
            await uow.commit()

        events = numbered(events)

        async with storage.unit_of_work() as uow:
            pending = await uow.outbox.pending(10)
            assert [m.event for m in pending] == events
            assert not any(m.published or m.reacted for m in pending)
            positions = [m.position for m in pending]
            assert positions == sorted(set(positions))
            assert [m.event for m in await uow.outbox.pending(2)] == events[:2]

        async with storage.unit_of_work() as uow:  # not committed: nothing changes
            await uow.outbox.mark_published(positions[:2])
            await uow.outbox.mark_reacted(positions[:2])
        async with storage.unit_of_work() as uow:
            assert [m.position for m in await uow.outbox.pending(10)] == positions

        async with storage.unit_of_work() as uow:
            await uow.outbox.mark_published(positions[:2])
            await uow.outbox.mark_reacted(positions[:2])
            await uow.outbox.mark_published([])
            await uow.outbox.mark_reacted([])
            assert [m.position for m in await uow.outbox.pending(10)] == positions[2:]
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert [m.event for m in await uow.outbox.pending(10)] == events[2:]
            # repeats are harmless
            await uow.outbox.mark_published([positions[0], *positions[2:]])
            await uow.outbox.mark_reacted([positions[0], *positions[2:]])
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.outbox.pending(10) == []
            assert await uow.events.for_aggregate(events[0].aggregate_id) == [events[0]]

    async def test_outbox_tracks_the_bus_and_the_reactions_apart(self, storage: Storage) -> None:
        """A message whose reactions failed stays pending, known as published, so the relay
        retries the reactions without publishing it again (and the other way round)."""
        events = numbered([make_event(new_id(), f"market.e{i}") for i in range(3)])
        async with storage.unit_of_work() as uow:
            await uow.events.append(events)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            positions = [m.position for m in await uow.outbox.pending(10)]
        async with storage.unit_of_work() as uow:
            await uow.outbox.mark_published(positions[:2])
            await uow.outbox.mark_reacted([positions[0], positions[2]])
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            pending = await uow.outbox.pending(10)
        assert [(m.event, m.published, m.reacted) for m in pending] == [
            (events[1], True, False),
            (events[2], False, True),
        ]
        async with storage.unit_of_work() as uow:
            await uow.outbox.mark_reacted([positions[1]])
            await uow.outbox.mark_published([positions[2]])
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.outbox.pending(10) == []

    async def test_outbox_messages_carry_the_writers_correlation_id(self, storage: Storage) -> None:
        """The request (or connection, or job) that appended an event is remembered with its
        outbox message: its reactions run, and log, with the same correlation id."""
        first, second = make_event(new_id(), "market.c1"), make_event(new_id(), "market.c2")
        batch = [make_event(new_id(), "market.c3"), make_event(new_id(), "market.c4")]
        with bound_contextvars(request_id="req-corr-1"):
            async with storage.unit_of_work() as uow:
                await uow.events.append([first])
                await uow.commit()
        async with storage.unit_of_work() as uow:
            await uow.events.append([second])
            await uow.commit()
        with bound_contextvars(connection_id="conn-corr-2"):
            async with storage.unit_of_work() as uow:
                await uow.events.append(batch)  # many events at once (a writer's batch)
                await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            found = {m.event.type: m.correlation_id for m in await uow.outbox.pending(10)}
        assert found == {
            "market.c1": "req-corr-1",
            "market.c2": None,
            "market.c3": "conn-corr-2",
            "market.c4": "conn-corr-2",
        }

    async def test_rolled_back_events_never_reach_the_outbox(self, storage: Storage) -> None:
        lost, kept = make_event(new_id(), "market.lost"), make_event(new_id(), "market.kept")
        async with storage.unit_of_work() as uow:
            await uow.events.append([lost])
            assert [m.event for m in await uow.outbox.pending(10)] == numbered([lost])  # own
        with pytest.raises(RuntimeError):
            async with storage.unit_of_work() as uow:
                await uow.events.append([lost])
                raise RuntimeError("abort")
        async with storage.unit_of_work() as uow:
            await uow.events.append([kept])
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert [m.event for m in await uow.outbox.pending(10)] == numbered([kept])
            assert await uow.events.for_aggregate(lost.aggregate_id) == []

    async def test_market_change_and_its_event_commit_together(self, storage: Storage) -> None:
        market = make_market()
        registered = make_event(market.id, "market.registered")
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            await uow.events.append([registered])
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.markets.get(market.id) == market
            assert await uow.events.for_aggregate(market.id) == numbered([registered])
            assert [m.event for m in await uow.outbox.pending(10)] == numbered([registered])

    async def test_each_stream_is_numbered_from_one_without_gaps(self, storage: Storage) -> None:
        first, second = new_id(), new_id()
        async with storage.unit_of_work() as uow:
            got = await uow.events.append(
                [make_event(first), make_event(second), make_event(first)]
            )
            await uow.commit()
        assert [(e.stream, e.seq) for e in got] == [
            (market_stream(first), 1),
            (market_stream(second), 1),
            (market_stream(first), 2),
        ]
        async with storage.unit_of_work() as uow:  # rolled back: the numbers are not used
            await uow.events.append([make_event(first)])
        custom = make_event(first, stream="pair:P-1")
        async with storage.unit_of_work() as uow:
            got = await uow.events.append([make_event(first), custom])
            await uow.commit()
        assert [(e.stream, e.seq) for e in got] == [(market_stream(first), 3), ("pair:P-1", 1)]
        async with storage.unit_of_work(read_only=True) as uow:
            history = await uow.events.for_aggregate(first)
            pending = await uow.outbox.pending(100)
        assert [(e.stream, e.seq) for e in history] == [
            (market_stream(first), 1),
            (market_stream(first), 2),
            (market_stream(first), 3),
            ("pair:P-1", 1),
        ]
        assert [(m.event.stream, m.event.seq) for m in pending] == [
            (market_stream(first), 1),
            (market_stream(second), 1),
            (market_stream(first), 2),
            (market_stream(first), 3),
            ("pair:P-1", 1),
        ]

    async def test_concurrent_appends_to_one_stream_never_share_a_seq(
        self, storage: Storage
    ) -> None:
        market_id = new_id()

        async def append(n: int) -> int | None:
            try:
                async with storage.unit_of_work() as uow:
                    (stored,) = await uow.events.append([make_event(market_id, f"market.e{n}")])
                    await asyncio.sleep(0)
                    await uow.commit()
            except ConcurrentModification:
                return None
            return stored.seq

        results = await asyncio.gather(*(append(n) for n in range(4)))
        seqs = sorted(seq for seq in results if seq is not None)
        assert seqs, "at least one append commits"
        async with storage.unit_of_work(read_only=True) as uow:
            history = await uow.events.for_aggregate(market_id)
        assert [e.seq for e in history] == seqs == list(range(1, len(seqs) + 1))

    async def test_concurrent_batches_to_one_stream_never_share_a_seq(
        self, storage: Storage
    ) -> None:
        """Several events per append (a trading batch), several units at once."""
        market_id = new_id()

        async def append(n: int) -> list[int]:
            try:
                async with storage.unit_of_work() as uow:
                    stored = await uow.events.append(
                        [make_event(market_id, f"market.e{n}.{k}") for k in range(3)]
                        + [make_event(new_id())]
                    )
                    await asyncio.sleep(0)
                    await uow.commit()
            except ConcurrentModification:
                return []
            return [e.seq for e in stored[:3] if e.seq is not None]

        results = await asyncio.gather(*(append(n) for n in range(4)))
        seqs = sorted(seq for batch in results for seq in batch)
        assert seqs, "at least one append commits"
        async with storage.unit_of_work(read_only=True) as uow:
            history = await uow.events.for_aggregate(market_id)
        assert [e.seq for e in history] == seqs == list(range(1, len(seqs) + 1))
        for batch in results:  # a batch's events are consecutive in their stream
            assert batch == list(range(batch[0], batch[0] + 3)) if batch else True

    @pytest.mark.parametrize(
        "bad",
        [
            Decimal("1.5"),
            T0,
            {"a"},
            ("a", 1),
            b"bytes",
            float("nan"),
            {1: "integer key"},
            [Decimal("2")],
        ],
        ids=["decimal", "datetime", "set", "tuple", "bytes", "nan", "int-key", "nested"],
    )
    async def test_non_json_metadata_is_refused_and_nothing_written(
        self, storage: Storage, bad: object
    ) -> None:
        good = make_event(new_id())
        with pytest.raises(InvalidEvent):
            async with storage.unit_of_work() as uow:
                await uow.events.append([good, make_event(new_id(), metadata={"value": bad})])
        async with storage.unit_of_work() as uow:
            with pytest.raises(InvalidEvent):
                await uow.events.append([good, make_event(new_id(), metadata={"value": bad})])
            await uow.commit()  # the refused call left nothing behind to commit
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.outbox.pending(10) == []
            assert await uow.events.for_aggregate(good.aggregate_id) == []

    async def test_a_naive_event_time_is_refused(self, storage: Storage) -> None:
        naive = make_event(new_id(), occurred_at=datetime(2026, 1, 1))
        async with storage.unit_of_work() as uow:
            with pytest.raises(InvalidEvent, match="naive"):
                await uow.events.append([naive])

    # -- read-only units of work ---------------------------------------------------------------

    async def test_a_read_only_unit_reads_and_refuses_to_commit(self, storage: Storage) -> None:
        market = make_market()
        await self._add(storage, market)
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.markets.get(market.id) == market
            with pytest.raises(ReadOnlyUnitOfWork):
                await uow.commit()

    async def test_reads_run_while_a_writer_holds_its_transaction(self, storage: Storage) -> None:
        """Read-only units never queue behind the writer (SQLite: no BEGIN IMMEDIATE)."""
        committed, staged = make_market(), make_market()
        await self._add(storage, committed)
        async with storage.unit_of_work() as writer:
            await writer.markets.add(staged, make_asset(staged))

            async def read() -> tuple[Market | None, Market | None]:
                async with storage.unit_of_work(read_only=True) as uow:
                    return await uow.markets.get(committed.id), await uow.markets.get(staged.id)

            seen = await asyncio.wait_for(asyncio.gather(*(read() for _ in range(3))), 3.0)
            assert seen == [(committed, None)] * 3  # committed state only
            await writer.commit()
        assert await self._get(storage, staged.id) == staged

    # -- leases ------------------------------------------------------------------------------

    async def _acquire(self, storage: Storage, holder: str, now: datetime, ttl: int = 10) -> bool:
        async with storage.unit_of_work() as uow:
            got = await uow.leases.acquire(
                "relay", holder, now=now, until=now + timedelta(seconds=ttl)
            )
            await uow.commit()
        return got

    async def test_a_lease_has_one_holder_until_it_expires(self, storage: Storage) -> None:
        assert await self._acquire(storage, "a", T0)
        assert not await self._acquire(storage, "b", T0 + timedelta(seconds=5))
        assert await self._acquire(storage, "a", T0 + timedelta(seconds=5))  # renewed to +15
        assert not await self._acquire(storage, "b", T0 + timedelta(seconds=14))
        assert await self._acquire(storage, "b", T0 + timedelta(seconds=15))  # expired: taken
        assert not await self._acquire(storage, "a", T0 + timedelta(seconds=16))

    async def test_a_released_or_uncommitted_lease_is_free(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:  # never committed
            assert await uow.leases.acquire("relay", "a", now=T0, until=T0 + timedelta(hours=1))
        assert await self._acquire(storage, "b", T0)
        async with storage.unit_of_work() as uow:
            await uow.leases.release("relay", "a")  # not a's: nothing happens
            await uow.commit()
        assert not await self._acquire(storage, "a", T0)
        async with storage.unit_of_work() as uow:
            await uow.leases.release("relay", "b")
            await uow.commit()
        assert await self._acquire(storage, "a", T0)

    async def test_concurrent_takes_of_a_lease_exactly_one_wins(self, storage: Storage) -> None:
        async def take(holder: str) -> str | None:
            try:
                async with storage.unit_of_work() as uow:
                    got = await uow.leases.acquire(
                        "relay", holder, now=T0, until=T0 + timedelta(seconds=10)
                    )
                    await asyncio.sleep(0)
                    await uow.commit()
            except ConcurrentModification:
                return None
            return holder if got else None

        results = await asyncio.gather(*(take(f"relay-{i}") for i in range(4)))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert await self._acquire(storage, winners[0], T0)
        assert not await self._acquire(storage, "someone-else", T0)

    async def test_hold_answers_whether_the_holder_still_has_the_lease(
        self, storage: Storage
    ) -> None:
        assert await self._acquire(storage, "a", T0)  # until T0 + 10
        async with storage.unit_of_work() as uow:
            assert await uow.leases.hold("relay", "a", now=T0 + timedelta(seconds=9))
            assert not await uow.leases.hold("relay", "b", now=T0 + timedelta(seconds=9))
            assert not await uow.leases.hold("relay", "a", now=T0 + timedelta(seconds=10))
            assert not await uow.leases.hold("other", "a", now=T0)
            await uow.commit()
        assert await self._acquire(storage, "a", T0 + timedelta(seconds=9))  # renewal unaffected

    async def test_holders_lists_the_unexpired_leases_of_a_prefix(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            for name, holder, ttl in (
                ("engine:pair:1", "a", 10),
                ("engine:pair:2", "b", 10),
                ("engine:pair:3", "a", 1),  # expired at T0 + 5
                ("engine:pairs_x", "c", 10),  # '_' is no wildcard
                ("relay", "a", 10),
            ):
                assert await uow.leases.acquire(
                    name, holder, now=T0, until=T0 + timedelta(seconds=ttl)
                )
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            found = await uow.leases.holders("engine:pair:", now=T0 + timedelta(seconds=5))
            assert found == {"engine:pair:1": "a", "engine:pair:2": "b"}
            assert await uow.leases.holders("engine:pair_", now=T0) == {}
            assert await uow.leases.holders("nothing", now=T0) == {}

    async def test_a_holder_that_lost_the_lease_cannot_commit_past_the_new_holder(
        self, storage: Storage
    ) -> None:
        """The fence: a unit of work that checked ``hold`` either commits before the next
        holder's take commits, or does not commit at all."""
        assert await self._acquire(storage, "a", T0)  # until T0 + 10
        done: list[str] = []

        async def take_over() -> None:
            assert await self._acquire(storage, "b", T0 + timedelta(seconds=11))
            done.append("b took it")

        failed = False
        async with storage.unit_of_work() as uow:
            assert await uow.leases.hold("relay", "a", now=T0 + timedelta(seconds=9))
            taker = asyncio.ensure_future(take_over())
            await asyncio.sleep(0.3)  # the taker runs, or waits for this unit's lock
            await uow.cursors.set("fenced", "written", at=T0)
            try:
                await uow.commit()
                done.append("a committed")
            except ConcurrentModification:
                failed = True
        await asyncio.wait_for(taker, 10)
        if failed:
            assert done == ["b took it"]
        else:
            assert done == ["a committed", "b took it"]
        async with storage.unit_of_work() as uow:
            assert (await uow.cursors.get("fenced") is None) == failed
            assert not await uow.leases.hold("relay", "a", now=T0 + timedelta(seconds=11))
            assert await uow.leases.hold("relay", "b", now=T0 + timedelta(seconds=11))

    # -- inbox: processed events -------------------------------------------------------------

    async def _processed(self, storage: Storage, event_id: str) -> ProcessedEvent | None:
        async with storage.unit_of_work() as uow:
            return await uow.processed_events.get(event_id)

    async def test_processed_event_round_trips_every_field(self, storage: Storage) -> None:
        record = make_processed(
            "evt-Ünïcode/1:2",
            event_type="market.rejected",
            source="sns",
            status=ProcessStatus.FAILED,
            received_at=datetime(2026, 1, 2, 5, 4, 5, 678901, tzinfo=PLUS_TWO),
            processed_at=T0 + timedelta(seconds=30),
            error="not_found: market m-9 not found",
            payload={"market_id": "m-9", "reason": "papers", "nested": {"a": [1, None, "x"]}},
            context={"actor_id": "core-1", "requestId": "r-1", "flags": {"x": True}},
            attempts=3,
        )
        async with storage.unit_of_work() as uow:
            await uow.processed_events.add(record)
            assert await uow.processed_events.get(record.event_id) == record  # own write
            await uow.commit()
        got = await self._processed(storage, record.event_id)
        assert got == record
        assert got is not None and got.status is ProcessStatus.FAILED
        assert_aware(got.received_at, got.processed_at)
        assert await self._processed(storage, "evt-unknown") is None

    async def test_a_second_add_of_the_same_event_id_is_a_duplicate(self, storage: Storage) -> None:
        first = make_processed()
        async with storage.unit_of_work() as uow:
            await uow.processed_events.add(first)
            await uow.commit()
        with pytest.raises(DuplicateEvent):
            async with storage.unit_of_work() as uow:
                await uow.processed_events.add(
                    attrs.evolve(first, status=ProcessStatus.SKIPPED, source="poller")
                )
                await uow.commit()
        assert await self._processed(storage, first.event_id) == first

    @pytest.mark.parametrize("status", list(ProcessStatus))
    async def test_every_status_is_stored(self, storage: Storage, status: ProcessStatus) -> None:
        record = make_processed(status=status)
        async with storage.unit_of_work() as uow:
            await uow.processed_events.add(record)
            await uow.commit()
        assert await self._processed(storage, record.event_id) == record

    async def test_uncommitted_processed_event_rolls_back_with_the_market(
        self, storage: Storage
    ) -> None:
        market = make_market()
        record = make_processed(payload={"market_id": market.id})
        with pytest.raises(RuntimeError):
            async with storage.unit_of_work() as uow:
                await uow.markets.add(market, make_asset(market))
                await uow.processed_events.add(record)
                raise RuntimeError("abort")
        assert await self._processed(storage, record.event_id) is None
        assert await self._get(storage, market.id) is None
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            await uow.processed_events.add(record)
            await uow.commit()
        assert await self._processed(storage, record.event_id) == record
        assert await self._get(storage, market.id) == market

    async def test_concurrent_adds_of_one_event_exactly_one_wins(self, storage: Storage) -> None:
        event_id = f"evt-race-{new_id()}"

        async def deliver(source: str) -> str | None:
            try:
                async with storage.unit_of_work() as uow:
                    if await uow.processed_events.get(event_id) is not None:
                        return None
                    await uow.processed_events.add(make_processed(event_id, source=source))
                    await asyncio.sleep(0)
                    await uow.commit()
            except DuplicateEvent:
                return None
            return source

        results = await asyncio.gather(*(deliver(f"source-{i}") for i in range(4)))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        stored = await self._processed(storage, event_id)
        assert stored is not None and stored.source == winners[0]

    async def test_a_failed_duplicate_add_applies_nothing_of_its_unit(
        self, storage: Storage
    ) -> None:
        record = make_processed()
        async with storage.unit_of_work() as uow:
            await uow.processed_events.add(record)
            await uow.commit()
        market = make_market()
        with pytest.raises(DuplicateEvent):
            async with storage.unit_of_work() as uow:
                await uow.markets.add(market, make_asset(market))
                await uow.processed_events.add(record)
                await uow.commit()
        assert await self._get(storage, market.id) is None

    async def test_replace_a_failed_event_with_the_expected_attempts(
        self, storage: Storage
    ) -> None:
        failed = make_processed(status=ProcessStatus.FAILED, error="not_found: m-1", attempts=1)
        async with storage.unit_of_work() as uow:
            await uow.processed_events.add(failed)
            await uow.commit()
        retried = attrs.evolve(
            failed,
            status=ProcessStatus.SUCCESS,
            error=None,
            attempts=2,
            processed_at=T0 + timedelta(minutes=1),
            source="poller",
        )
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateEvent):
                await uow.processed_events.replace(retried, expected_attempts=7)
        async with storage.unit_of_work() as uow:
            await uow.processed_events.replace(retried, expected_attempts=1)
            assert await uow.processed_events.get(failed.event_id) == retried
            await uow.commit()
        assert await self._processed(storage, failed.event_id) == retried

    async def test_replace_an_unknown_event_is_a_duplicate(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateEvent):
                await uow.processed_events.replace(make_processed(), expected_attempts=1)

    async def test_uncommitted_replace_changes_nothing(self, storage: Storage) -> None:
        failed = make_processed(status=ProcessStatus.FAILED)
        async with storage.unit_of_work() as uow:
            await uow.processed_events.add(failed)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            await uow.processed_events.replace(
                attrs.evolve(failed, status=ProcessStatus.SUCCESS, attempts=2),
                expected_attempts=1,
            )
        assert await self._processed(storage, failed.event_id) == failed

    async def test_concurrent_replaces_exactly_one_wins(self, storage: Storage) -> None:
        failed = make_processed(status=ProcessStatus.FAILED)
        async with storage.unit_of_work() as uow:
            await uow.processed_events.add(failed)
            await uow.commit()

        async def retry(source: str) -> str | None:
            # Every retry read the failed record (attempts 1) before any of them committed.
            try:
                async with storage.unit_of_work() as uow:
                    await uow.processed_events.replace(
                        attrs.evolve(
                            failed, status=ProcessStatus.SUCCESS, source=source, attempts=2
                        ),
                        expected_attempts=failed.attempts,
                    )
                    await asyncio.sleep(0)
                    await uow.commit()
            except DuplicateEvent:
                return None
            return source

        results = await asyncio.gather(*(retry(f"retry-{i}") for i in range(4)))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        stored = await self._processed(storage, failed.event_id)
        assert stored is not None and stored.source == winners[0] and stored.attempts == 2

    # -- cursors -----------------------------------------------------------------------------

    async def test_cursors_set_get_and_overwrite(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            assert await uow.cursors.get("feed-a") is None
            await uow.cursors.set("feed-a", "cursor-1", T0)
            assert await uow.cursors.get("feed-a") == "cursor-1"
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.cursors.get("feed-a") == "cursor-1"
            await uow.cursors.set("feed-a", "cursor-2", T0 + timedelta(seconds=1))
            await uow.cursors.set("feed-b", "b" * 500, T0)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.cursors.get("feed-a") == "cursor-2"
            assert await uow.cursors.get("feed-b") == "b" * 500
            assert await uow.cursors.get("feed-c") is None

    async def test_uncommitted_cursor_changes_roll_back(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            await uow.cursors.set("feed-r", "kept", T0)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            await uow.cursors.set("feed-r", "lost", T0)
            await uow.cursors.set("feed-new", "lost", T0)
        async with storage.unit_of_work() as uow:
            assert await uow.cursors.get("feed-r") == "kept"
            assert await uow.cursors.get("feed-new") is None
