"""The token-operations storage contract (``uow.mints``, ``transfers``, ``withdrawals``,
``deposits``): every adapter runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from core.ports.storage import Storage
from core.shared.errors import ConcurrentModification, Conflict
from core.tokens.model import Token, TokenType
from core.tokens.operations import (
    Deposit,
    DepositStatus,
    DuplicateOperation,
    Mint,
    OperationStatus,
    Transfer,
    Withdrawal,
    WithdrawalStatus,
)

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
BIG = 2**256 - 1
HASH = "0x" + "ab" * 32
ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def mint(token_id: str, key: str = "key-1", **overrides: object) -> Mint:
    values: dict[str, object] = {
        "token_id": token_id,
        "user_id": "u-1",
        "amount": 5,
        "idempotency_key": key,
        "actor_id": "admin-1",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Mint(**values)  # type: ignore[arg-type]


def deposit(token_id: str, log_index: int = 0, **overrides: object) -> Deposit:
    values: dict[str, object] = {
        "token_id": token_id,
        "user_id": "u-1",
        "address": ADDRESS,
        "tx_hash": HASH,
        "log_index": log_index,
        "block_number": 7,
        "amount": 10,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Deposit(**values)  # type: ignore[arg-type]


class OperationsContract:
    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        raise NotImplementedError
        yield  # pragma: no cover

    @pytest.fixture
    async def token(self, storage: Storage) -> Token:
        token = Token(symbol="GOLD", name="Gold", type=TokenType.RWA, decimals=2, created_at=T0)
        async with storage.unit_of_work() as uow:
            await uow.tokens.add(token)
            await uow.commit()
        return token

    async def test_a_mint_round_trips_exactly_and_by_its_key(
        self, storage: Storage, token: Token
    ) -> None:
        record = mint(token.id, amount=BIG, address=ADDRESS)
        async with storage.unit_of_work() as uow:
            await uow.mints.add(record)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.mints.get(record.id) == record
            assert await uow.mints.by_key(token.id, "key-1") == record
            assert await uow.mints.by_key(token.id, "other") is None
            assert await uow.mints.get("nope") is None

    async def test_one_mint_per_token_and_key_also_across_racing_units(
        self, storage: Storage, token: Token
    ) -> None:
        async with storage.unit_of_work() as uow:
            await uow.mints.add(mint(token.id))
            await uow.commit()
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateOperation):
                await uow.mints.add(mint(token.id))

        async def add(key: str) -> bool:
            try:
                async with storage.unit_of_work() as uow:
                    await uow.mints.add(mint(token.id, key))
                    await uow.commit()
                return True
            except Conflict:
                return False

        results = await asyncio.gather(*(add("race") for _ in range(4)))
        assert results.count(True) == 1

    async def test_updates_are_conditional_on_the_version(
        self, storage: Storage, token: Token
    ) -> None:
        record = mint(token.id)
        async with storage.unit_of_work() as uow:
            await uow.mints.add(record)
            await uow.commit()
        done = attrs.evolve(
            record,
            status=OperationStatus.COMPLETED,
            tx_hash=HASH,
            version=2,
            updated_at=T0 + timedelta(seconds=1),
        )
        async with storage.unit_of_work() as uow:
            await uow.mints.update(done)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            with pytest.raises(ConcurrentModification):
                await uow.mints.update(attrs.evolve(record, error="stale", version=2))
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.mints.get(record.id) == done

    async def test_two_writers_of_one_version_cannot_both_commit(
        self, storage: Storage, token: Token
    ) -> None:
        record = Withdrawal(
            token_id=token.id,
            user_id="u-1",
            amount=3,
            to_address=ADDRESS,
            actor_id="u-1",
            created_at=T0,
            updated_at=T0,
        )
        async with storage.unit_of_work() as uow:
            await uow.withdrawals.add(record)
            await uow.commit()

        async def move(status: WithdrawalStatus) -> bool:
            try:
                async with storage.unit_of_work() as uow:
                    current = await uow.withdrawals.get(record.id)
                    assert current is not None
                    if current.status is not WithdrawalStatus.PENDING_APPROVAL:
                        return False
                    await uow.withdrawals.update(
                        attrs.evolve(current, status=status, version=current.version + 1)
                    )
                    await uow.commit()
                return True
            except ConcurrentModification:
                return False

        results = await asyncio.gather(
            move(WithdrawalStatus.APPROVED), move(WithdrawalStatus.REJECTED)
        )
        assert results.count(True) == 1
        async with storage.unit_of_work(read_only=True) as uow:
            stored = await uow.withdrawals.get(record.id)
        assert stored is not None and stored.version == 2

    async def test_withdrawals_and_deposits_list_newest_first_per_user(
        self, storage: Storage, token: Token
    ) -> None:
        made: list[Withdrawal] = []
        async with storage.unit_of_work() as uow:
            for i in range(3):
                w = Withdrawal(
                    token_id=token.id,
                    user_id="u-1",
                    amount=i + 1,
                    to_address=ADDRESS,
                    actor_id="u-1",
                    created_at=T0,
                    updated_at=T0,
                    id=f"00000000-0000-7000-8000-00000000000{i}",
                )
                made.append(w)
                await uow.withdrawals.add(w)
            await uow.deposits.add(deposit(token.id, user_id="u-2"))
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.withdrawals.for_user("u-1", limit=2) == [made[2], made[1]]
            assert await uow.withdrawals.for_user("u-1", limit=5, before_id=made[1].id) == [made[0]]
            assert await uow.withdrawals.for_user("u-2", limit=5) == []
            assert [d.user_id for d in await uow.deposits.for_user("u-2", limit=5)] == ["u-2"]

    async def test_a_deposit_is_recorded_once_per_tx_hash_and_log_index(
        self, storage: Storage, token: Token
    ) -> None:
        first = deposit(token.id, amount=BIG)
        async with storage.unit_of_work() as uow:
            await uow.deposits.add(first)
            await uow.deposits.add(deposit(token.id, log_index=1))
            await uow.commit()
        async with storage.unit_of_work() as uow:
            with pytest.raises(DuplicateOperation):
                await uow.deposits.add(deposit(token.id))
        credited = attrs.evolve(first, status=DepositStatus.CREDITED, credited_at=T0, version=2)
        async with storage.unit_of_work() as uow:
            await uow.deposits.update(credited)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.deposits.by_event(HASH, 0) == credited
            assert await uow.deposits.by_event(HASH, 2) is None

    async def test_unswept_deposits_are_the_credited_ones_without_a_sweep(
        self, storage: Storage, token: Token
    ) -> None:
        credited = {"status": DepositStatus.CREDITED, "credited_at": T0}
        made = [deposit(token.id, log_index=i, **credited) for i in range(3)]
        async with storage.unit_of_work() as uow:
            for record in made:
                await uow.deposits.add(record)
            await uow.deposits.add(deposit(token.id, log_index=9))  # PENDING: not credited
            await uow.commit()
        swept = attrs.evolve(made[1], sweep_tx_hash="0x" + "ab" * 32, version=2)
        async with storage.unit_of_work() as uow:
            await uow.deposits.update(swept)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            ordered = sorted([made[0], made[2]], key=lambda d: d.id)
            assert await uow.deposits.unswept(token.id, limit=10) == ordered
            assert await uow.deposits.unswept(token.id, limit=1) == ordered[:1]
            after = await uow.deposits.unswept(token.id, limit=10, after_id=ordered[0].id)
            assert after == ordered[1:]
            assert await uow.deposits.unswept("another-token", limit=10) == []
            assert (await uow.deposits.get(made[1].id)) == swept

    async def test_pending_transfers_oldest_first_and_nothing_kept_on_rollback(
        self, storage: Storage, token: Token
    ) -> None:
        first = Transfer(
            token_id=token.id,
            from_user_id="u-1",
            to_user_id="u-2",
            amount=1,
            actor_id="u-1",
            created_at=T0,
            updated_at=T0,
        )
        second = attrs.evolve(first, id=first.id[:-1] + ("f" if first.id[-1] != "f" else "e"))
        async with storage.unit_of_work() as uow:
            await uow.transfers.add(first)
            await uow.transfers.add(second)
            await uow.commit()
        async with storage.unit_of_work() as uow:
            await uow.transfers.add(attrs.evolve(first, id="rolled-back"))
        async with storage.unit_of_work(read_only=True) as uow:
            pending = await uow.transfers.pending(limit=10)
            assert pending == sorted([first, second], key=lambda t: t.id)
            assert await uow.transfers.get("rolled-back") is None

    async def test_pending_mints_and_unfinished_withdrawals(
        self, storage: Storage, token: Token
    ) -> None:
        waiting = mint(token.id, "a")
        done = attrs.evolve(mint(token.id, "b"), status=OperationStatus.COMPLETED)
        base = Withdrawal(
            token_id=token.id,
            user_id="u-1",
            amount=1,
            to_address=ADDRESS,
            actor_id="u-1",
            created_at=T0,
            updated_at=T0,
        )
        by_status = {
            status: attrs.evolve(base, id=f"00000000-0000-7000-8000-00000000001{i}", status=status)
            for i, status in enumerate(WithdrawalStatus)
        }
        async with storage.unit_of_work() as uow:
            await uow.mints.add(waiting)
            await uow.mints.add(done)
            for w in by_status.values():
                await uow.withdrawals.add(w)
            await uow.commit()
        async with storage.unit_of_work(read_only=True) as uow:
            assert await uow.mints.pending(limit=10) == [waiting]
            assert await uow.withdrawals.unfinished(limit=10) == [
                by_status[WithdrawalStatus.APPROVED],
                by_status[WithdrawalStatus.SENT],
            ]
            pending = by_status[WithdrawalStatus.PENDING_APPROVAL]
            assert await uow.withdrawals.awaiting_approval(limit=10) == [pending]
            assert await uow.withdrawals.awaiting_approval(limit=10, after_id=pending.id) == []
            assert await uow.withdrawals.awaiting_approval(limit=0) == []
