"""The wallet repository's contract (``uow.wallets``): one abstract suite for every storage
adapter. A concrete class provides a ``storage`` fixture yielding an empty, migrated one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.ports.storage import Storage
from core.ports.wallets import ExternalAddressTaken, WalletChallenge, WalletRecord
from core.shared.errors import ConcurrentModification, Conflict, NotFound
from core.shared.ids import new_id

T0 = datetime(2026, 5, 6, 7, 8, 9, 101112, tzinfo=UTC)
ADDRESS_A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ADDRESS_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def challenge(user_id: str = "u1", *, at: datetime = T0, ttl: int = 300) -> WalletChallenge:
    return WalletChallenge(
        id=new_id(),
        user_id=user_id,
        message=f"sign me {user_id}",
        created_at=at,
        expires_at=at + timedelta(seconds=ttl),
    )


class WalletContract:
    async def _create(self, storage: Storage, user_id: str) -> WalletRecord:
        async with storage.unit_of_work() as uow:
            record = await uow.wallets.get_or_create(user_id, now=T0)
            await uow.commit()
        return record

    async def test_user_numbers_start_at_one_and_only_grow(self, storage: Storage) -> None:
        first = await self._create(storage, "alice")
        second = await self._create(storage, "bob")
        assert first.user_number >= 1
        assert second.user_number > first.user_number
        assert first == WalletRecord(
            user_id="alice", user_number=first.user_number, created_at=T0, updated_at=T0
        )
        again = await self._create(storage, "alice")
        assert again == first
        async with storage.unit_of_work() as uow:
            dropped = await uow.wallets.get_or_create("carol", now=T0)
            # rolled back: carol has no number
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.wallets.get("carol") is None
        dave = await self._create(storage, "dave")
        assert dave.user_number > second.user_number
        carol = await self._create(storage, "carol")
        assert carol.user_number > dave.user_number
        assert dropped.user_id == "carol"
        numbers = [r.user_number for r in (first, second, dave, carol)]
        assert len(set(numbers)) == 4

    async def test_a_unit_reads_the_record_it_created(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            created = await uow.wallets.get_or_create("alice", now=T0)
            assert await uow.wallets.get("alice") == created
            assert await uow.wallets.get_or_create("alice", now=T0) == created
            assert await uow.wallets.get("bob") is None

    async def test_racing_first_requests_give_a_user_one_number(self, storage: Storage) -> None:
        started = asyncio.Event()

        async def create(pause: bool) -> WalletRecord | None:
            try:
                async with storage.unit_of_work() as uow:
                    record = await uow.wallets.get_or_create("alice", now=T0)
                    if pause:
                        started.set()
                        await asyncio.sleep(0.05)
                    else:
                        await started.wait()
                    await uow.commit()
                    return record
            except ConcurrentModification:
                return None

        first = asyncio.create_task(create(True))
        await started.wait()
        second = asyncio.create_task(create(False))
        results = [r for r in await asyncio.gather(first, second) if r is not None]
        async with storage.unit_of_work(read_only=True) as uow:
            stored = await uow.wallets.get("alice")
        assert stored is not None
        assert results and all(r.user_number == stored.user_number for r in results)

    async def test_an_external_address_replaces_and_resets_verification(
        self, storage: Storage
    ) -> None:
        await self._create(storage, "alice")
        later = T0 + timedelta(minutes=1)
        async with storage.unit_of_work() as uow:
            assert await uow.wallets.set_verified_on_chain(
                "alice", external_address=None, verified=True, now=later
            )
            await uow.commit()
        async with storage.unit_of_work() as uow:
            record = await uow.wallets.set_external("alice", ADDRESS_A, now=later)
            await uow.commit()
        assert record.external_address == ADDRESS_A
        assert record.external_registered_at == later
        assert record.verified_on_chain is False
        async with storage.unit_of_work() as uow:
            # a job that verified the custodial address before the change applies nothing
            assert not await uow.wallets.set_verified_on_chain(
                "alice", external_address=None, verified=True, now=later
            )
            assert await uow.wallets.set_verified_on_chain(
                "alice", external_address=ADDRESS_A, verified=True, now=later
            )
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            stored = await uow.wallets.get("alice")
        assert stored is not None and stored.verified_on_chain is True
        assert stored.user_number == record.user_number

    async def test_an_external_address_has_one_holder(self, storage: Storage) -> None:
        await self._create(storage, "alice")
        await self._create(storage, "bob")
        async with storage.unit_of_work() as uow:
            await uow.wallets.set_external("alice", ADDRESS_A, now=T0)
            await uow.commit()
        with pytest.raises(ExternalAddressTaken):
            async with storage.unit_of_work() as uow:
                await uow.wallets.set_external("bob", ADDRESS_A, now=T0)
                await uow.commit()
        async with storage.unit_of_work() as uow:  # alice moves on: bob may take it
            await uow.wallets.set_external("alice", ADDRESS_B, now=T0)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            await uow.wallets.set_external("bob", ADDRESS_A, now=T0)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            alice, bob = await uow.wallets.get("alice"), await uow.wallets.get("bob")
        assert alice is not None and alice.external_address == ADDRESS_B
        assert bob is not None and bob.external_address == ADDRESS_A

    async def test_setting_an_address_needs_a_record(self, storage: Storage) -> None:
        with pytest.raises(NotFound):
            async with storage.unit_of_work() as uow:
                await uow.wallets.set_external("nobody", ADDRESS_A, now=T0)

    async def test_challenges_are_stored_and_the_latest_found(self, storage: Storage) -> None:
        older, newer = challenge(at=T0), challenge(at=T0 + timedelta(seconds=1))
        other = challenge("bob", at=T0 + timedelta(seconds=2))
        async with storage.unit_of_work() as uow:
            for item in (older, newer, other):
                await uow.wallets.add_challenge(item)
            assert await uow.wallets.latest_challenge("u1") == newer
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.wallets.get_challenge(older.id) == older
            assert await uow.wallets.latest_challenge("u1") == newer
            assert await uow.wallets.latest_challenge("nobody") is None
            assert await uow.wallets.get_challenge(new_id()) is None
        with pytest.raises(Conflict):
            async with storage.unit_of_work() as uow:
                await uow.wallets.add_challenge(older)
                await uow.commit()

    async def test_a_challenge_is_used_once(self, storage: Storage) -> None:
        item = challenge()
        async with storage.unit_of_work() as uow:
            await uow.wallets.add_challenge(item)
            await uow.commit()
        used_at = T0 + timedelta(seconds=10)
        async with storage.unit_of_work() as uow:
            assert await uow.wallets.use_challenge(item.id, now=used_at)
            assert not await uow.wallets.use_challenge(item.id, now=used_at)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert not await uow.wallets.use_challenge(item.id, now=used_at)
            stored = await uow.wallets.get_challenge(item.id)
        assert stored is not None and stored.used_at == used_at

    async def test_a_rolled_back_use_leaves_the_challenge_usable(self, storage: Storage) -> None:
        item = challenge()
        async with storage.unit_of_work() as uow:
            await uow.wallets.add_challenge(item)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.wallets.use_challenge(item.id, now=T0)
        async with storage.unit_of_work() as uow:
            assert await uow.wallets.use_challenge(item.id, now=T0)
            await uow.commit()

    async def test_an_expired_or_unknown_challenge_cannot_be_used(self, storage: Storage) -> None:
        item = challenge(ttl=60)
        async with storage.unit_of_work() as uow:
            await uow.wallets.add_challenge(item)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert not await uow.wallets.use_challenge(item.id, now=item.expires_at)
            assert not await uow.wallets.use_challenge(new_id(), now=T0)
            assert await uow.wallets.use_challenge(
                item.id, now=item.expires_at - timedelta(microseconds=1)
            )
