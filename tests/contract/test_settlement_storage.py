"""The settlement storage contract (``uow.settlements``) on memory, SQLite and Postgres: new
trades are PENDING, a claim puts them in one batch (never two: a second claim of the same
trade is ConcurrentModification and changes nothing), marks follow the batch, a settled
trade never changes again, and nothing is kept without a commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade_async
from core.ports.settlement import SettlementStatus
from core.ports.storage import Storage
from core.shared.errors import ConcurrentModification
from core.trading.orders import Trade
from core.trading.pairs import Pair
from tests.contract.test_trading_storage import (  # noqa: F401 - fixtures
    trading_postgres_template,
    trading_postgres_url,
)
from tests.contract.trading_suite import BIG, T0, pair_of, tokens

LATER = T0.replace(hour=10)


async def trades(storage: Storage, count: int) -> tuple[Pair, list[Trade]]:
    base, quote = await tokens(storage)
    pair = pair_of(base, quote)
    made = [
        Trade(
            pair_id=pair.id,
            seq=seq,
            price=BIG,
            quantity=seq,
            maker_order_id="o-m",
            taker_order_id="o-t",
            maker_user_id="u-1",
            taker_user_id="u-2",
            taker_side="BUY",
            maker_fee=1,
            taker_fee=2,
            created_at=T0,
        )
        for seq in range(1, count + 1)
    ]
    async with storage.unit_of_work() as uow:
        await uow.pairs.add(pair)
        await uow.trades.add(made)
        await uow.commit()
    return pair, made


class SettlementContract:
    async def test_pending_claim_mark_and_settled_is_final(self, storage: Storage) -> None:
        pair, made = await trades(storage, 5)
        async with storage.unit_of_work() as uow:
            first = await uow.settlements.get(made[0].id)
            assert first is not None and first.status is SettlementStatus.PENDING
            assert first.batch_id is None and first.tx_hash is None
            assert await uow.settlements.get("nope") is None
            assert await uow.settlements.trade(made[2].id) == made[2]
            pending = await uow.settlements.pending(pair.id, limit=3)
            assert [t.seq for t in pending] == [1, 2, 3]
            await uow.settlements.claim([t.id for t in pending], "b-1", LATER)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert [t.seq for t in await uow.settlements.pending(pair.id, limit=10)] == [4, 5]
            assert [t.seq for t in await uow.settlements.batch("b-1")] == [1, 2, 3]
            assert await uow.settlements.unfinished_batches(pair.id) == ["b-1"]
            claimed = await uow.settlements.get(made[1].id)
            assert claimed is not None and claimed.status is SettlementStatus.SENT
            assert claimed.batch_id == "b-1" and claimed.updated_at == LATER
            # a trade of b-1 cannot get into another batch
            with pytest.raises(ConcurrentModification):
                await uow.settlements.claim([made[3].id, made[0].id], "b-2", LATER)
        async with storage.unit_of_work() as uow:
            assert await uow.settlements.batch("b-2") == []
            assert len(await uow.settlements.pending(pair.id, limit=10)) == 2
            changed = await uow.settlements.mark(
                "b-1", SettlementStatus.FAILED, LATER, error="reverted"
            )
            assert changed == 3
            await uow.commit()
        async with storage.unit_of_work() as uow:
            failed = await uow.settlements.get(made[0].id)
            assert failed is not None and failed.status is SettlementStatus.FAILED
            assert failed.error == "reverted"
            assert await uow.settlements.unfinished_batches(pair.id) == ["b-1"]
            hash_ = "0x" + "ab" * 32
            await uow.settlements.mark("b-1", SettlementStatus.SETTLED, LATER, tx_hash=hash_)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            done = await uow.settlements.get(made[2].id)
            assert done is not None and done.status is SettlementStatus.SETTLED
            assert done.tx_hash == hash_ and done.error is None
            assert await uow.settlements.unfinished_batches(pair.id) == []
            assert await uow.settlements.mark("b-1", SettlementStatus.FAILED, LATER) == 0
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            still = await uow.settlements.get(made[2].id)
            assert still is not None and still.status is SettlementStatus.SETTLED

    async def test_of_two_claims_of_the_same_trades_the_first_wins(self, storage: Storage) -> None:
        pair, made = await trades(storage, 2)
        ids = [t.id for t in made]
        async with storage.unit_of_work(read_only=True) as uow:
            seen = [t.id for t in await uow.settlements.pending(pair.id, limit=10)]
        assert seen == ids  # both jobs read the same pending trades...
        async with storage.unit_of_work() as one:
            await one.settlements.claim(seen, "b-one", LATER)
            await one.commit()
        async with storage.unit_of_work() as two:  # ...and the later claim changes nothing
            with pytest.raises(ConcurrentModification):
                await two.settlements.claim(seen, "b-two", LATER)
                await two.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert [t.id for t in await uow.settlements.batch("b-one")] == ids
            assert await uow.settlements.batch("b-two") == []

    async def test_nothing_without_commit(self, storage: Storage) -> None:
        _, made = await trades(storage, 1)
        async with storage.unit_of_work() as uow:
            await uow.settlements.claim([made[0].id], "b-x", LATER)
        async with storage.unit_of_work(read_only=True) as uow:
            found = await uow.settlements.get(made[0].id)
            assert found is not None and found.status is SettlementStatus.PENDING


class TestMemorySettlement(SettlementContract):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        storage = MemoryStorage()
        yield storage
        await storage.close()


class TestSqliteSettlement(SettlementContract):
    @pytest.fixture
    async def storage(self, tmp_path: Path) -> AsyncIterator[Storage]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'settlement.db'}"
        await upgrade_async(url)
        storage = SqlStorage(url)
        yield storage
        await storage.close()


@pytest.mark.postgres
class TestPostgresSettlement(SettlementContract):
    @pytest.fixture
    async def storage(self, trading_postgres_url: str) -> AsyncIterator[Storage]:  # noqa: F811
        storage = SqlStorage(trading_postgres_url)
        yield storage
        await storage.close()
