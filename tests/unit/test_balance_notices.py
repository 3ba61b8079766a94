"""``BalanceNoticeStorage``: a commit that moved users' balances carries one
``balance.changed`` event naming them, on a stream of its own; replays, reserved accounts only,
rolled-back and read-only units of work carry none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.outbound.storage.memory.storage import MemoryStorage
from core.ledger import operations as ops
from core.ledger.model import AccountRef
from core.ledger.notices import BALANCE_CHANGED, BalanceNoticeStorage
from core.shared.events import DomainEvent

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ANN, BEN = AccountRef.user("ann", "usdc"), AccountRef.user("ben", "usdc")


async def notices(storage: BalanceNoticeStorage) -> list[DomainEvent]:
    async with storage.unit_of_work(read_only=True) as uow:
        return [m.event for m in await uow.outbox.pending(100) if m.event.type == BALANCE_CHANGED]


async def test_one_notice_per_commit_naming_every_user_moved() -> None:
    storage = BalanceNoticeStorage(MemoryStorage())
    async with storage.unit_of_work() as uow:
        await uow.ledger.apply(ops.mint("m1", NOW, ANN, 1_000))
        await uow.ledger.apply(ops.transfer_between("t1", NOW, ANN, BEN, 400))
        await uow.ledger.apply(ops.lock_funds("l1", NOW, BEN, 10))
        await uow.ledger.apply(ops.collect_fee("f1", NOW, BEN, 10))
        await uow.commit()
    [notice] = await notices(storage)
    assert notice.metadata == {
        "userIds": ["ann", "ben"],
        "tokenIds": ["usdc"],
        "kinds": ["fee", "lock", "mint", "transfer"],
    }
    assert notice.stream.startswith("ledger:") and notice.seq == 1


async def test_no_notice_for_replays_reserved_accounts_rollbacks_or_reads() -> None:
    storage = BalanceNoticeStorage(MemoryStorage())
    async with storage.unit_of_work() as uow:
        await uow.ledger.apply(ops.mint("m1", NOW, ANN, 1_000))
        await uow.commit()
    assert len(await notices(storage)) == 1
    async with storage.unit_of_work() as uow:  # the same set again: a replay moves nothing
        assert (await uow.ledger.apply(ops.mint("m1", NOW, ANN, 1_000))).replayed
        await uow.commit()
    async with storage.unit_of_work() as uow:  # only the platform's own account
        await uow.ledger.apply(ops.mint("m2", NOW, AccountRef.system("usdc"), 5))
        await uow.commit()
    with pytest.raises(RuntimeError):
        async with storage.unit_of_work() as uow:  # never committed
            await uow.ledger.apply(ops.mint("m3", NOW, BEN, 5))
            raise RuntimeError("rolled back")
    assert len(await notices(storage)) == 1
