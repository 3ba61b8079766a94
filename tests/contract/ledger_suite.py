"""The ledger port's contract (``uow.ledger``): one abstract suite every storage adapter passes.

A concrete test class subclasses ``LedgerContract`` and provides a ``storage`` fixture
yielding an empty, migrated ``Storage``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.ledger import (
    AccountRef,
    AppliedPostingSet,
    Balance,
    BalanceOverflow,
    Bucket,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    PostingSet,
    Supply,
    conservation_gap,
)
from core.ledger import operations as ops
from core.ports.storage import Storage
from core.shared.errors import Conflict, ValidationFailed
from core.shared.ids import new_id
from core.shared.money import MAX_UINT256

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "HTT"
QUOTE = "USDC"


def alice(token: str = TOKEN) -> AccountRef:
    return AccountRef.user("alice", token)


def bob(token: str = TOKEN) -> AccountRef:
    return AccountRef.user("bob", token)


def key() -> str:
    return f"k-{new_id()}"


class LedgerContract:
    """Async tests of the ledger port. Subclasses provide the ``storage`` fixture."""

    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def _apply(self, storage: Storage, posting_set: PostingSet) -> AppliedPostingSet:
        async with storage.unit_of_work() as uow:
            applied = await uow.ledger.apply(posting_set)
            await uow.commit()
        return applied

    async def _balance(self, storage: Storage, account: AccountRef) -> Balance:
        async with storage.unit_of_work() as uow:
            return await uow.ledger.balance(account)

    async def _supply(self, storage: Storage, token: str = TOKEN) -> Supply:
        async with storage.unit_of_work() as uow:
            return await uow.ledger.supply(token)

    async def _mint(self, storage: Storage, account: AccountRef, amount: int) -> None:
        await self._apply(storage, ops.mint(key(), T0, account, amount))

    async def _journal_has(self, storage: Storage, k: str) -> bool:
        async with storage.unit_of_work() as uow:
            return await uow.ledger.get(k) is not None

    # -- balances and the primitives ----------------------------------------------------------

    async def test_an_unknown_account_and_token_read_as_zero(self, storage: Storage) -> None:
        async with storage.unit_of_work() as uow:
            assert await uow.ledger.balance(alice()) == Balance(alice(), 0, 0)
            assert await uow.ledger.supply("NONE") == Supply("NONE")
            assert await uow.ledger.balances("nobody") == []
            assert await uow.ledger.accounts("NONE", limit=10) == []
            assert (await uow.ledger.total("NONE")).total == 0
            assert await uow.ledger.get("never") is None

    async def test_mint_credits_and_counts_the_supply(self, storage: Storage) -> None:
        applied = await self._apply(storage, ops.mint("mint-1", T0, alice(), 1_000))
        assert applied.replayed is False and applied.seq > 0
        assert await self._balance(storage, alice()) == Balance(alice(), 1_000, 0)
        assert await self._supply(storage) == Supply(TOKEN, minted=1_000)

    async def test_transfer_moves_available(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 100)
        await self._apply(storage, ops.transfer_between(key(), T0, alice(), bob(), 30))
        assert await self._balance(storage, alice()) == Balance(alice(), 70, 0)
        assert await self._balance(storage, bob()) == Balance(bob(), 30, 0)

    async def test_a_debit_of_everything_leaves_zero(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 100)
        await self._apply(storage, ops.transfer_between(key(), T0, alice(), bob(), 100))
        assert await self._balance(storage, alice()) == Balance(alice(), 0, 0)

    async def test_an_overdraft_is_refused_and_applies_nothing(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 100)
        k = key()
        with pytest.raises(InsufficientFunds) as caught:
            await self._apply(storage, ops.transfer_between(k, T0, alice(), bob(), 101))
        assert caught.value.account == alice() and caught.value.bucket is Bucket.AVAILABLE
        assert caught.value.needed == 101 and caught.value.code == "insufficient_funds"
        assert await self._balance(storage, alice()) == Balance(alice(), 100, 0)
        assert await self._balance(storage, bob()) == Balance(bob(), 0, 0)
        assert not await self._journal_has(storage, k)

    async def test_a_debit_of_an_account_that_never_existed_is_refused(
        self, storage: Storage
    ) -> None:
        with pytest.raises(InsufficientFunds):
            await self._apply(storage, ops.burn(key(), T0, bob(), 1))
        assert await self._supply(storage) == Supply(TOKEN)

    async def test_lock_unlock_and_settle(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 100)
        await self._apply(storage, ops.lock_funds(key(), T0, alice(), 60))
        assert await self._balance(storage, alice()) == Balance(alice(), 40, 60)
        await self._apply(storage, ops.unlock_funds(key(), T0, alice(), 10))
        assert await self._balance(storage, alice()) == Balance(alice(), 50, 50)
        settle = ops.posting_set(key(), "trade", T0, ops.settle(alice(), bob(), 45))
        await self._apply(storage, settle)
        assert await self._balance(storage, alice()) == Balance(alice(), 50, 5)
        assert await self._balance(storage, bob()) == Balance(bob(), 45, 0)
        await self._apply(storage, ops.collect_fee(key(), T0, alice(), 5))
        fee = AccountRef.fee(TOKEN)
        assert await self._balance(storage, fee) == Balance(fee, 5, 0)
        assert await self._balance(storage, alice()) == Balance(alice(), 50, 0)

    async def test_locking_more_than_available_is_refused(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 10)
        with pytest.raises(InsufficientFunds) as caught:
            await self._apply(storage, ops.lock_funds(key(), T0, alice(), 11))
        assert caught.value.bucket is Bucket.AVAILABLE
        assert await self._balance(storage, alice()) == Balance(alice(), 10, 0)

    async def test_unlocking_or_settling_more_than_locked_is_refused(
        self, storage: Storage
    ) -> None:
        await self._mint(storage, alice(), 10)
        await self._apply(storage, ops.lock_funds(key(), T0, alice(), 4))
        for posting_set in (
            ops.unlock_funds(key(), T0, alice(), 5),
            ops.posting_set(key(), "trade", T0, ops.settle(alice(), bob(), 5)),
        ):
            with pytest.raises(InsufficientFunds) as caught:
                await self._apply(storage, posting_set)
            assert caught.value.bucket is Bucket.LOCKED and caught.value.needed == 5
        assert await self._balance(storage, alice()) == Balance(alice(), 6, 4)
        assert await self._balance(storage, bob()) == Balance(bob(), 0, 0)

    async def test_deposit_withdrawal_and_burn_move_the_counters(self, storage: Storage) -> None:
        await self._apply(storage, ops.deposit(key(), T0, alice(QUOTE), 500))
        await self._apply(storage, ops.request_withdrawal("w1", T0, alice(QUOTE), 200))
        assert await self._balance(storage, alice(QUOTE)) == Balance(alice(QUOTE), 300, 200)
        await self._apply(storage, ops.complete_withdrawal("w1", T0, alice(QUOTE), 200))
        await self._apply(storage, ops.request_withdrawal("w2", T0, alice(QUOTE), 50))
        await self._apply(
            storage, ops.release_withdrawal("w2", T0, alice(QUOTE), 50, outcome="fail")
        )
        await self._apply(storage, ops.burn(key(), T0, alice(QUOTE), 100))
        assert await self._balance(storage, alice(QUOTE)) == Balance(alice(QUOTE), 200, 0)
        supply = await self._supply(storage, QUOTE)
        assert supply == Supply(QUOTE, deposited=500, withdrawn=200, burned=100)
        async with storage.unit_of_work() as uow:
            accounts = await uow.ledger.accounts(QUOTE, limit=100)
        assert conservation_gap(accounts, supply) == 0 and supply.outstanding == 200

    async def test_reads_list_accounts_by_owner_and_by_token(self, storage: Storage) -> None:
        owners = ["carol", "alice", "Zed", "bob", "émile"]
        for owner in owners:
            await self._mint(storage, AccountRef.user(owner, TOKEN), 10)
        await self._mint(storage, AccountRef.user("alice", QUOTE), 7)
        async with storage.unit_of_work() as uow:
            by_owner = await uow.ledger.balances("alice")
            first = await uow.ledger.accounts(TOKEN, limit=2)
            rest = await uow.ledger.accounts(TOKEN, limit=10, after_owner=first[-1].account.owner)
            total = await uow.ledger.total(TOKEN)
        assert [b.account for b in by_owner] == [alice(TOKEN), alice(QUOTE)]
        assert [b.available for b in by_owner] == [10, 7]
        assert [b.account.owner for b in first + rest] == sorted(owners)  # code-point order
        assert (total.available, total.locked) == (50, 0)

    async def test_balances_of_reads_many_accounts_in_the_order_given(
        self, storage: Storage
    ) -> None:
        await self._mint(storage, alice(), 10)
        await self._mint(storage, bob(QUOTE), 7)
        await self._apply(storage, ops.lock_funds(key(), T0, alice(), 4))
        big = AccountRef.user("carol", "BIG")
        await self._mint(storage, big, MAX_UINT256)
        async with storage.unit_of_work() as uow:
            assert await uow.ledger.balances_of([]) == []
            wanted = [bob(QUOTE), alice(), AccountRef.user("nobody", TOKEN), big, alice()]
            found = await uow.ledger.balances_of(wanted)
            # in a unit that moved money, the read sees the unit's own postings
            await uow.ledger.apply(ops.unlock_funds(key(), T0, alice(), 4))
            after = await uow.ledger.balances_of([alice()])
        assert found == [
            Balance(bob(QUOTE), 7, 0),
            Balance(alice(), 6, 4),
            Balance(AccountRef.user("nobody", TOKEN), 0, 0),
            Balance(big, MAX_UINT256, 0),
            Balance(alice(), 6, 4),
        ]
        assert after == [Balance(alice(), 10, 0)]

    async def test_lines_that_cancel_out_touch_no_account(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 5)
        carol = AccountRef.user("carol", TOKEN)
        lines = ops.credit(carol, 3) + ops.debit(carol, 3) + ops.transfer(alice(), bob(), 1)
        applied = await self._apply(storage, ops.posting_set(key(), "wash", T0, lines))
        async with storage.unit_of_work() as uow:
            assert await uow.ledger.balances("carol") == []
            assert await uow.ledger.get(applied.posting_set.key) == applied
            assert [b.account.owner for b in await uow.ledger.accounts(TOKEN, limit=9)] == [
                "alice",
                "bob",
            ]

    async def test_history_lists_an_accounts_posting_sets_newest_first(
        self, storage: Storage
    ) -> None:
        await self._apply(storage, ops.mint("h1", T0, alice(), 100, reference="m"))
        await self._apply(storage, ops.transfer_between("h2", T0, alice(), bob(), 30))
        await self._apply(storage, ops.mint("h3", T0, bob(), 1))  # not alice's
        await self._apply(storage, ops.request_withdrawal("w9", T0, alice(), 20))
        wash = ops.credit(alice(), 2) + ops.debit(alice(), 2) + ops.transfer(bob(), alice(), 1)
        await self._apply(storage, ops.posting_set("h5", "wash", T0, wash))
        async with storage.unit_of_work() as uow:
            first = await uow.ledger.history(alice(), limit=2)
            rest = await uow.ledger.history(alice(), limit=10, before_seq=first[-1].seq)
            uncommitted = await uow.ledger.apply(ops.burn("h6", T0, alice(), 5))
            with_staged = await uow.ledger.history(alice(), limit=1)
            assert await uow.ledger.history(alice(), limit=0) == []
            assert await uow.ledger.history(AccountRef.user("nobody", TOKEN), limit=5) == []
        entries = first + rest
        assert [e.key for e in entries] == ["h5", "withdrawal:w9:request", "h2", "h1"]
        assert [(e.available, e.locked) for e in entries] == [(1, 0), (-20, 20), (-30, 0), (100, 0)]
        assert entries[-1].kind == "mint" and entries[-1].reference == "m"
        assert entries[1].reference == "w9" and entries[0].occurred_at == T0
        assert entries[0].seq > entries[1].seq > entries[2].seq > entries[3].seq
        assert [(e.key, e.seq) for e in with_staged] == [("h6", uncommitted.seq)]

    # -- atomicity --------------------------------------------------------------------------

    async def test_a_posting_set_that_fails_half_way_applies_nothing(
        self, storage: Storage
    ) -> None:
        await self._mint(storage, alice(), 100)
        k = key()
        half_way = ops.posting_set(
            k,
            "multi",
            T0,
            ops.transfer(alice(), bob(), 60)  # fine
            + ops.credit(AccountRef.fee(QUOTE), 5)  # a new account, fine
            + ops.debit(bob(QUOTE), 5)  # bob has no QUOTE: refused
            + ops.lock(AccountRef.user("carol", TOKEN), 1),
        )
        async with storage.unit_of_work() as uow:
            with pytest.raises(InsufficientFunds):
                await uow.ledger.apply(half_way)
            # The unit of work goes on: nothing of the failed set is in it.
            assert await uow.ledger.balance(alice()) == Balance(alice(), 100, 0)
            assert await uow.ledger.balance(bob()) == Balance(bob(), 0, 0)
            assert await uow.ledger.balance(AccountRef.fee(QUOTE)) == Balance(
                AccountRef.fee(QUOTE), 0, 0
            )
            assert await uow.ledger.get(k) is None
            await uow.ledger.apply(ops.transfer_between(key(), T0, alice(), bob(), 1))
            await uow.commit()
        assert await self._balance(storage, alice()) == Balance(alice(), 99, 0)
        assert await self._balance(storage, bob()) == Balance(bob(), 1, 0)
        assert await self._balance(storage, AccountRef.fee(QUOTE)) == Balance(
            AccountRef.fee(QUOTE), 0, 0
        )
        assert not await self._journal_has(storage, k)
        # The failed key was never used: the same set applies once the funds are there.
        await self._apply(storage, ops.deposit(key(), T0, bob(QUOTE), 5))
        await self._mint(storage, AccountRef.user("carol", TOKEN), 1)
        assert (await self._apply(storage, half_way)).replayed is False
        assert await self._balance(storage, alice()) == Balance(alice(), 39, 0)
        assert await self._balance(storage, bob(QUOTE)) == Balance(bob(QUOTE), 0, 0)
        carol = AccountRef.user("carol", TOKEN)
        assert await self._balance(storage, carol) == Balance(carol, 0, 1)

    async def test_an_uncommitted_unit_of_work_applies_nothing(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 100)
        k = key()
        async with storage.unit_of_work() as uow:
            await uow.ledger.apply(ops.transfer_between(k, T0, alice(), bob(), 40))
            assert await uow.ledger.balance(bob()) == Balance(bob(), 40, 0)
        assert await self._balance(storage, bob()) == Balance(bob(), 0, 0)
        assert not await self._journal_has(storage, k)

    async def test_postings_commit_with_the_rest_of_the_unit_of_work(
        self, storage: Storage
    ) -> None:
        with pytest.raises(RuntimeError):
            async with storage.unit_of_work() as uow:
                await uow.cursors.set("feed", "42", T0)
                await uow.ledger.apply(ops.mint(key(), T0, alice(), 5))
                raise RuntimeError("the use case failed after both writes")
        async with storage.unit_of_work() as uow:
            assert await uow.cursors.get("feed") is None
            assert await uow.ledger.balance(alice()) == Balance(alice(), 0, 0)
            await uow.cursors.set("feed", "42", T0)
            await uow.ledger.apply(ops.mint(key(), T0, alice(), 5))
            await uow.commit()
        async with storage.unit_of_work() as uow:
            assert await uow.cursors.get("feed") == "42"
            assert await uow.ledger.balance(alice()) == Balance(alice(), 5, 0)

    # -- idempotency ------------------------------------------------------------------------

    async def test_the_same_key_and_content_replays_the_original(self, storage: Storage) -> None:
        first = await self._apply(storage, ops.mint("mint-x", T0, alice(), 10, reference="m1"))
        later = datetime(2026, 11, 24, tzinfo=UTC)  # the time is not content
        again = await self._apply(storage, ops.mint("mint-x", later, alice(), 10, reference="m1"))
        assert again.replayed is True
        assert again.seq == first.seq
        assert again.posting_set == first.posting_set
        assert again.posting_set.occurred_at == T0
        assert await self._balance(storage, alice()) == Balance(alice(), 10, 0)
        assert await self._supply(storage) == Supply(TOKEN, minted=10)
        async with storage.unit_of_work() as uow:
            stored = await uow.ledger.get("mint-x")
        assert stored == first

    async def test_the_same_key_twice_in_one_unit_of_work_applies_once(
        self, storage: Storage
    ) -> None:
        async with storage.unit_of_work() as uow:
            first = await uow.ledger.apply(ops.mint("twice", T0, alice(), 10))
            second = await uow.ledger.apply(ops.mint("twice", T0, alice(), 10))
            with pytest.raises(IdempotencyConflict):
                await uow.ledger.apply(ops.mint("twice", T0, alice(), 11))
            await uow.commit()
        assert (first.replayed, second.replayed) == (False, True)
        assert await self._balance(storage, alice()) == Balance(alice(), 10, 0)

    @pytest.mark.parametrize(
        "other",
        [
            ops.mint("dup", T0, AccountRef.user("alice", TOKEN), 11),  # another amount
            ops.mint("dup", T0, AccountRef.user("bob", TOKEN), 10),  # another account
            ops.mint("dup", T0, AccountRef.user("alice", TOKEN), 10, reference="r"),
            ops.deposit("dup", T0, AccountRef.user("alice", TOKEN), 10),  # another kind
        ],
    )
    async def test_the_same_key_with_other_content_conflicts(
        self, storage: Storage, other: PostingSet
    ) -> None:
        await self._apply(storage, ops.mint("dup", T0, alice(), 10))
        with pytest.raises(IdempotencyConflict) as caught:
            await self._apply(storage, other)
        assert isinstance(caught.value, Conflict) and caught.value.details == {"key": "dup"}
        assert await self._balance(storage, alice()) == Balance(alice(), 10, 0)
        assert await self._balance(storage, bob()) == Balance(bob(), 0, 0)
        assert await self._supply(storage) == Supply(TOKEN, minted=10)

    async def test_concurrent_applications_of_one_key_apply_it_once(self, storage: Storage) -> None:
        async def attempt() -> bool | None:
            try:
                async with storage.unit_of_work() as uow:
                    applied = await uow.ledger.apply(ops.mint("race", T0, alice(), 7))
                    await asyncio.sleep(0)
                    await uow.commit()
            except Conflict:  # memory cannot wait for the first: a retry would replay it
                return None
            return applied.replayed

        results = await asyncio.gather(*(attempt() for _ in range(8)))
        assert results.count(False) == 1
        assert await self._balance(storage, alice()) == Balance(alice(), 7, 0)
        assert await self._supply(storage) == Supply(TOKEN, minted=7)
        replay = await self._apply(storage, ops.mint("race", T0, alice(), 7))
        assert replay.replayed is True

    # -- concurrency ------------------------------------------------------------------------

    async def test_concurrent_debits_never_overdraw_nor_lose_an_update(
        self, storage: Storage
    ) -> None:
        await self._mint(storage, alice(), 1_000)
        tasks, amount = 50, 30

        async def spend(n: int) -> bool:
            try:
                async with storage.unit_of_work() as uow:
                    target = AccountRef.user(f"shop-{n}", TOKEN)
                    await uow.ledger.apply(
                        ops.transfer_between(f"spend-{n}", T0, alice(), target, amount)
                    )
                    await asyncio.sleep(0)
                    await uow.commit()
            except InsufficientFunds:
                return False
            return True

        results = await asyncio.gather(*(spend(n) for n in range(tasks)))
        spent = results.count(True) * amount
        assert results.count(True) == 1_000 // amount  # 33: every debit that fits, no more
        assert await self._balance(storage, alice()) == Balance(alice(), 1_000 - spent, 0)
        async with storage.unit_of_work() as uow:
            total = await uow.ledger.total(TOKEN)
            for n, ok in enumerate(results):
                shop = await uow.ledger.balance(AccountRef.user(f"shop-{n}", TOKEN))
                assert shop.available == (amount if ok else 0)
                assert (await uow.ledger.get(f"spend-{n}") is not None) is ok
        assert total.total == 1_000

    async def test_concurrent_opposite_transfers_all_settle(self, storage: Storage) -> None:
        await self._mint(storage, alice(), 100)
        await self._mint(storage, bob(), 100)

        async def move(n: int) -> None:
            source, target = (alice(), bob()) if n % 2 else (bob(), alice())
            async with storage.unit_of_work() as uow:
                await uow.ledger.apply(ops.transfer_between(f"x-{n}", T0, source, target, 3))
                await asyncio.sleep(0)
                await uow.commit()

        await asyncio.gather(*(move(n) for n in range(20)))
        assert await self._balance(storage, alice()) == Balance(alice(), 100, 0)
        assert await self._balance(storage, bob()) == Balance(bob(), 100, 0)

    # -- amounts ----------------------------------------------------------------------------

    async def test_the_largest_amount_round_trips_exactly(self, storage: Storage) -> None:
        await self._apply(storage, ops.mint("max", T0, alice(), MAX_UINT256))
        assert await self._balance(storage, alice()) == Balance(alice(), MAX_UINT256, 0)
        await self._apply(storage, ops.lock_funds(key(), T0, alice(), MAX_UINT256 - 1))
        assert await self._balance(storage, alice()) == Balance(alice(), 1, MAX_UINT256 - 1)
        async with storage.unit_of_work() as uow:
            stored = await uow.ledger.get("max")
            total = await uow.ledger.total(TOKEN)
        assert stored is not None and stored.posting_set.postings[0].amount == MAX_UINT256
        assert total.total == MAX_UINT256
        assert (await self._supply(storage)).minted == MAX_UINT256

    async def test_a_balance_beyond_uint256_is_refused(self, storage: Storage) -> None:
        await self._mint(storage, alice(), MAX_UINT256)
        k = key()
        with pytest.raises(BalanceOverflow):
            await self._apply(storage, ops.mint(k, T0, bob(), 1))  # the minted counter
        await self._apply(storage, ops.burn(key(), T0, alice(), 1))
        await self._apply(storage, ops.deposit(key(), T0, bob(), 2))  # minted stays at max
        with pytest.raises(BalanceOverflow):  # alice's balance (burned counter is fine)
            await self._apply(storage, ops.transfer_between(k, T0, bob(), alice(), 2))
        assert await self._balance(storage, alice()) == Balance(alice(), MAX_UINT256 - 1, 0)
        assert await self._balance(storage, bob()) == Balance(bob(), 2, 0)
        assert not await self._journal_has(storage, k)

    @pytest.mark.parametrize(
        "amount",
        [0, -1, True, False, 1.0, 10.5, Decimal(1), "1", None, MAX_UINT256 + 1, 2**256, 2**300],
    )
    async def test_amounts_are_positive_integers_within_uint256(
        self, storage: Storage, amount: object
    ) -> None:
        value: Any = amount
        builders: list[Callable[[], object]] = [
            lambda: ops.mint(key(), T0, alice(), value),
            lambda: ops.transfer_between(key(), T0, alice(), bob(), value),
            lambda: ops.lock_funds(key(), T0, alice(), value),
            lambda: ops.request_withdrawal("w", T0, alice(), value),
            lambda: ops.burn(key(), T0, alice(), value),
        ]
        for build in builders:
            with pytest.raises(InvalidAmount):
                build()
        assert await self._balance(storage, alice()) == Balance(alice(), 0, 0)

    async def test_unbalanced_and_self_referencing_sets_are_refused(self) -> None:
        with pytest.raises(ValidationFailed, match="does not balance"):
            ops.posting_set(key(), "gift", T0, ops.credit(alice(), 5))
        with pytest.raises(ValidationFailed):
            ops.transfer_between(key(), T0, alice(), alice(), 5)
        with pytest.raises(ValidationFailed):
            ops.transfer(alice(TOKEN), bob(QUOTE), 5)
        with pytest.raises(ValidationFailed):
            AccountRef.user("@fee", TOKEN)
        with pytest.raises(ValidationFailed):
            ops.posting_set(key(), "empty", T0, [])
