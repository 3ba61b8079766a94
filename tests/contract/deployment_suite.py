"""The deployment-transaction repository's contract, part of the storage contract suite.

``StorageContract`` inherits these tests, so every storage adapter (memory, SQLite, Postgres)
runs them: a transaction recorded before it is sent, at most one open record per (subject,
step) (a market's id or the platform; a step of its T-REX suite),
state changes guarded by the expected state, and the queries the deploy-token job and the
chain-state check use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from core.markets.model import MarketStatus
from core.ports.deployments import (
    PLATFORM_SUBJECT,
    DeploymentRecord,
    DeploymentState,
    DuplicateDeployment,
)
from core.ports.storage import Storage
from core.shared.errors import Conflict
from core.shared.ids import new_id

T0 = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
SIGNER = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
OTHER_SIGNER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
_nonces = iter(range(10**6))


def make_record(market_id: str | None, **overrides: Any) -> DeploymentRecord:
    nonce = overrides.pop("nonce", next(_nonces))
    fields: dict[str, Any] = {
        "tx_hash": "0x" + new_id().replace("-", "").ljust(64, "0")[:64],
        "market_id": market_id,
        "chain_id": 131277322940537,  # eth-tester's: beyond 32 bits
        "signer": SIGNER,
        "nonce": nonce,
        "raw_transaction": "0x02f9" + "ab" * 900,
        "contract_address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "holder": SIGNER,
        "state": DeploymentState.SIGNED,
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return DeploymentRecord(**fields)


class DeploymentRecordsContract:
    """Subclasses provide the ``storage`` fixture (``StorageContract`` does)."""

    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def _market_id(self, storage: Storage) -> str:
        from tests.contract.storage_suite import make_asset, make_market  # imports this module

        market = make_market(status=MarketStatus.ACTIVATING)
        async with storage.unit_of_work() as uow:
            await uow.markets.add(market, make_asset(market))
            await uow.commit()
        return market.id

    async def _record(self, storage: Storage, record: DeploymentRecord) -> None:
        async with storage.unit_of_work() as uow:
            await uow.deployments.add(record)
            await uow.commit()

    async def test_a_recorded_transaction_round_trips_every_field(self, storage: Storage) -> None:
        market_id = await self._market_id(storage)
        record = make_record(market_id, nonce=2**40, block_number=None, error=None)
        await self._record(storage, record)
        async with storage.unit_of_work() as uow:
            assert await uow.deployments.get(record.tx_hash) == record
            assert await uow.deployments.open_for(market_id, "token") == record
            assert await uow.deployments.for_market(market_id) == [record]
            assert await uow.deployments.get("0x" + "00" * 32) is None
            assert await uow.deployments.open_for(new_id(), "token") is None

    async def test_every_step_of_a_suite_has_its_own_open_record(self, storage: Storage) -> None:
        market_id = await self._market_id(storage)
        token = make_record(market_id, step="token")
        call = make_record(market_id, step="token.init", contract_address=None, holder=None)
        await self._record(storage, token)
        await self._record(storage, call)
        with pytest.raises(DuplicateDeployment):
            await self._record(storage, make_record(market_id, step="token.init"))
        async with storage.unit_of_work() as uow:
            assert await uow.deployments.open_for(market_id, "token") == token
            assert await uow.deployments.open_for(market_id, "token.init") == call
            assert await uow.deployments.open_for(market_id, "token.mint") is None
            assert [r.step for r in await uow.deployments.for_subject(market_id)] == [
                "token",
                "token.init",
            ]

    async def test_platform_records_belong_to_no_market(self, storage: Storage) -> None:
        issuer = make_record(None, step="claim_issuer", holder=None)
        assert issuer.subject == PLATFORM_SUBJECT
        await self._record(storage, issuer)
        with pytest.raises(DuplicateDeployment):
            await self._record(storage, make_record(None, step="claim_issuer"))
        await self._record(storage, make_record(None, step="stablecoin:USDC"))
        async with storage.unit_of_work() as uow:
            assert await uow.deployments.open_for(PLATFORM_SUBJECT, "claim_issuer") == issuer
            found = await uow.deployments.for_subject(PLATFORM_SUBJECT)
        assert [r.step for r in found] == ["claim_issuer", "stablecoin:USDC"]
        assert found[0].market_id is None and found[0].holder is None

    async def test_an_uncommitted_record_is_not_kept(self, storage: Storage) -> None:
        market_id = await self._market_id(storage)
        record = make_record(market_id)
        async with storage.unit_of_work() as uow:
            await uow.deployments.add(record)
        async with storage.unit_of_work() as uow:
            assert await uow.deployments.get(record.tx_hash) is None

    async def test_a_second_open_record_of_a_market_is_refused(self, storage: Storage) -> None:
        market_id = await self._market_id(storage)
        await self._record(storage, make_record(market_id))
        with pytest.raises(DuplicateDeployment):
            async with storage.unit_of_work() as uow:
                await uow.deployments.add(make_record(market_id))
                await uow.commit()
        async with storage.unit_of_work() as uow:
            assert len(await uow.deployments.for_market(market_id)) == 1

    async def test_the_same_hash_twice_is_refused(self, storage: Storage) -> None:
        first, second = (
            await self._market_id(storage),
            await self._market_id(storage),
        )
        record = make_record(first)
        await self._record(storage, record)
        with pytest.raises(DuplicateDeployment):
            async with storage.unit_of_work() as uow:
                await uow.deployments.add(attrs.evolve(record, market_id=second))
                await uow.commit()

    async def test_concurrent_records_of_one_market_exactly_one_wins(
        self, storage: Storage
    ) -> None:
        market_id = await self._market_id(storage)

        async def record() -> bool:
            try:
                await self._record(storage, make_record(market_id))
            except DuplicateDeployment:
                return False
            return True

        results = await asyncio.gather(*(record() for _ in range(4)))
        assert sorted(results) == [False, False, False, True]

    async def test_a_new_record_is_allowed_once_the_old_one_is_final(
        self, storage: Storage
    ) -> None:
        market_id = await self._market_id(storage)
        old = make_record(market_id)
        await self._record(storage, old)
        later = T0 + timedelta(seconds=5)
        superseded = attrs.evolve(
            old, state=DeploymentState.SUPERSEDED, error="nonce used", updated_at=later
        )
        async with storage.unit_of_work() as uow:
            await uow.deployments.update(superseded, expected_state=DeploymentState.SIGNED)
            await uow.commit()
        new = make_record(market_id)
        await self._record(storage, new)
        async with storage.unit_of_work() as uow:
            assert await uow.deployments.open_for(market_id, "token") == new
            assert await uow.deployments.get(old.tx_hash) == superseded
            assert [r.tx_hash for r in await uow.deployments.for_market(market_id)] == [
                old.tx_hash,
                new.tx_hash,
            ]

    async def test_update_needs_the_expected_state(self, storage: Storage) -> None:
        market_id = await self._market_id(storage)
        record = make_record(market_id)
        await self._record(storage, record)
        sent = attrs.evolve(record, state=DeploymentState.SENT)
        async with storage.unit_of_work() as uow:
            await uow.deployments.update(sent, expected_state=DeploymentState.SIGNED)
            await uow.commit()
        mined = attrs.evolve(record, state=DeploymentState.MINED, block_number=2**33)
        with pytest.raises(Conflict):
            async with storage.unit_of_work() as uow:
                await uow.deployments.update(mined, expected_state=DeploymentState.SIGNED)
                await uow.commit()
        with pytest.raises(Conflict):
            async with storage.unit_of_work() as uow:
                await uow.deployments.update(
                    attrs.evolve(mined, tx_hash="0x" + "cd" * 32),
                    expected_state=DeploymentState.SENT,
                )
                await uow.commit()
        async with storage.unit_of_work() as uow:
            await uow.deployments.update(mined, expected_state=DeploymentState.SENT)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            stored = await uow.deployments.get(record.tx_hash)
        assert stored == mined

    async def test_concurrent_updates_exactly_one_wins(self, storage: Storage) -> None:
        market_id = await self._market_id(storage)
        record = make_record(market_id)
        await self._record(storage, record)

        async def move(state: DeploymentState) -> bool:
            try:
                async with storage.unit_of_work() as uow:
                    await uow.deployments.update(
                        attrs.evolve(record, state=state), expected_state=DeploymentState.SIGNED
                    )
                    await uow.commit()
            except Conflict:
                return False
            return True

        results = await asyncio.gather(move(DeploymentState.SENT), move(DeploymentState.SUPERSEDED))
        assert sorted(results) == [False, True]

    async def test_unmined_records_of_a_signer_lowest_nonce_first(self, storage: Storage) -> None:
        records = []
        for nonce, state, signer in [
            (7, DeploymentState.SENT, SIGNER),
            (5, DeploymentState.SIGNED, SIGNER),
            (6, DeploymentState.MINED, SIGNER),
            (4, DeploymentState.SUPERSEDED, SIGNER),
            (3, DeploymentState.SIGNED, OTHER_SIGNER),
            (9, DeploymentState.SIGNED, SIGNER),
        ]:
            record = make_record(await self._market_id(storage), nonce=nonce, state=state)
            records.append(attrs.evolve(record, signer=signer))
            await self._record(storage, records[-1])
        async with storage.unit_of_work() as uow:
            unmined = await uow.deployments.unmined(SIGNER, limit=10)
            assert [r.nonce for r in unmined] == [5, 7, 9]
            assert [r.nonce for r in await uow.deployments.unmined(SIGNER, limit=2)] == [5, 7]
            assert await uow.deployments.unmined(SIGNER, limit=0) == []

    async def test_latest_mined_highest_block_first(self, storage: Storage) -> None:
        for block in (10, 30, 20):
            record = make_record(
                await self._market_id(storage),
                state=DeploymentState.MINED,
                block_number=block,
            )
            await self._record(storage, record)
        await self._record(storage, make_record(await self._market_id(storage)))  # not mined
        async with storage.unit_of_work() as uow:
            latest = await uow.deployments.latest_mined(limit=2)
        assert [r.block_number for r in latest] == [30, 20]
