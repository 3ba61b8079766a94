"""The ledger invariant (DESIGN §8), checked after every step of random operation sequences.

A hypothesis state machine mints, deposits, transfers, locks, unlocks, settles, charges fees,
walks withdrawals through request, approve, reject and fail, burns, replays posting sets and
misuses their keys, on the memory storage and on SQLite. Overdrafts are generated on purpose:
they must be refused and leave nothing. After every step, for every token, the sum over all
accounts (available + locked, fee and system accounts included) equals minted + deposited -
withdrawn - burned, no bucket is negative, and the store agrees with a plain-dict model.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade
from core.ledger import (
    FEE_OWNER,
    SYSTEM_OWNER,
    AccountRef,
    Balance,
    IdempotencyConflict,
    InsufficientFunds,
    PostingSet,
    Supply,
    SupplyCounter,
)
from core.ledger import operations as ops
from core.ports.storage import Storage

T0 = datetime(2026, 11, 23, tzinfo=UTC)
TOKENS = ("HTT", "USDC")
USERS = ("alice", "bob", "carol")
OWNERS = (*USERS, FEE_OWNER, SYSTEM_OWNER)

tokens = st.sampled_from(TOKENS)
users = st.sampled_from(USERS)
owners = st.sampled_from(OWNERS)
# Mostly small amounts (most operations succeed), sometimes huge ones (overdrafts).
amounts = st.one_of(st.integers(1, 60), st.integers(1, 10**40))

_SQLITE_TEMPLATE: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One SQLite file migrated to head; every example starts from a copy of it."""
    path = tmp_path_factory.mktemp("ledger-invariant") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    _SQLITE_TEMPLATE.append(path)
    yield
    _SQLITE_TEMPLATE.remove(path)


class Withdrawal:
    def __init__(self, withdrawal_id: str, account: AccountRef, amount: int) -> None:
        self.id, self.account, self.amount = withdrawal_id, account, amount

    def __repr__(self) -> str:
        return f"Withdrawal({self.id}, {self.account.owner}, {self.account.token}, {self.amount})"


class LedgerMachine(RuleBasedStateMachine):
    """Subclasses choose the storage with ``open_storage``."""

    withdrawals = Bundle("withdrawals")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.storage = self.loop.run_until_complete(self.open_storage())
        self.balances: dict[AccountRef, tuple[int, int]] = {}
        self.supply: dict[str, dict[SupplyCounter, int]] = {t: {} for t in TOKENS}
        self.applied: list[PostingSet] = []
        self.ids = itertools.count(1)

    async def open_storage(self) -> Storage:
        raise NotImplementedError

    def teardown(self) -> None:
        self.loop.run_until_complete(self.storage.close())
        self.loop.close()

    # -- the model ---------------------------------------------------------------------------

    def key(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"

    def allowed(self, posting_set: PostingSet) -> bool:
        for account, (available, locked) in posting_set.net_changes().items():
            old_available, old_locked = self.balances.get(account, (0, 0))
            if old_available + available < 0 or old_locked + locked < 0:
                return False
        return True

    def record(self, posting_set: PostingSet) -> None:
        for account, (available, locked) in posting_set.net_changes().items():
            old_available, old_locked = self.balances.get(account, (0, 0))
            self.balances[account] = (old_available + available, old_locked + locked)
        for token, counters in posting_set.supply_changes().items():
            for counter, amount in counters.items():
                self.supply[token][counter] = self.supply[token].get(counter, 0) + amount
        self.applied.append(posting_set)

    def run(self, posting_set: PostingSet, *, commit: bool = True) -> bool:
        """Apply in a unit of work of its own; the store must accept exactly what the model
        accepts. Returns whether it was applied."""
        expected = self.allowed(posting_set)

        async def go() -> bool:
            async with self.storage.unit_of_work() as uow:
                applied = await uow.ledger.apply(posting_set)
                assert applied.replayed is False
                if commit:
                    await uow.commit()
            return True

        try:
            self.loop.run_until_complete(go())
        except InsufficientFunds as refused:
            assert not expected, f"refused although the funds are there: {refused}"
            return False
        assert expected, f"applied although it overdraws: {posting_set}"
        if commit:
            self.record(posting_set)
        return True

    # -- rules -------------------------------------------------------------------------------

    @rule(token=tokens, owner=owners, amount=amounts)
    def mint(self, token: str, owner: str, amount: int) -> None:
        self.run(ops.mint(self.key("mint"), T0, AccountRef(token=token, owner=owner), amount))

    @rule(token=tokens, user=users, amount=amounts)
    def deposit(self, token: str, user: str, amount: int) -> None:
        self.run(ops.deposit(self.key("deposit"), T0, AccountRef.user(user, token), amount))

    @rule(token=tokens, source=owners, receiver=owners, amount=amounts)
    def transfer(self, token: str, source: str, receiver: str, amount: int) -> None:
        if source == receiver:
            return
        self.run(
            ops.transfer_between(
                self.key("transfer"),
                T0,
                AccountRef(token=token, owner=source),
                AccountRef(token=token, owner=receiver),
                amount,
            )
        )

    @rule(token=tokens, user=users, amount=amounts)
    def lock(self, token: str, user: str, amount: int) -> None:
        self.run(ops.lock_funds(self.key("lock"), T0, AccountRef.user(user, token), amount))

    @rule(token=tokens, user=users, amount=amounts)
    def unlock(self, token: str, user: str, amount: int) -> None:
        self.run(ops.unlock_funds(self.key("unlock"), T0, AccountRef.user(user, token), amount))

    @rule(token=tokens, buyer=users, seller=users, amount=amounts, fee=st.integers(0, 5))
    def trade(self, token: str, buyer: str, seller: str, amount: int, fee: int) -> None:
        """A trade leg with its fee: locked of the buyer to the seller and the fee account."""
        if buyer == seller:
            return
        source = AccountRef.user(buyer, token)
        lines = ops.settle(source, AccountRef.user(seller, token), amount)
        if fee:
            lines += ops.settle(source, AccountRef.fee(token), fee)
        self.run(ops.posting_set(self.key("trade"), "trade", T0, lines))

    @rule(token=tokens, owner=owners, amount=amounts)
    def burn(self, token: str, owner: str, amount: int) -> None:
        self.run(ops.burn(self.key("burn"), T0, AccountRef(token=token, owner=owner), amount))

    @rule(target=withdrawals, token=tokens, user=users, amount=amounts)
    def request_withdrawal(self, token: str, user: str, amount: int) -> object:
        withdrawal = Withdrawal(self.key("w"), AccountRef.user(user, token), amount)
        posting_set = ops.request_withdrawal(withdrawal.id, T0, withdrawal.account, amount)
        return multiple(withdrawal) if self.run(posting_set) else multiple()

    @rule(withdrawal=consumes(withdrawals))
    def approve_withdrawal(self, withdrawal: Withdrawal) -> None:
        self.run(ops.complete_withdrawal(withdrawal.id, T0, withdrawal.account, withdrawal.amount))

    @rule(withdrawal=consumes(withdrawals), outcome=st.sampled_from(["reject", "fail"]))
    def release_withdrawal(self, withdrawal: Withdrawal, outcome: str) -> None:
        self.run(
            ops.release_withdrawal(
                withdrawal.id, T0, withdrawal.account, withdrawal.amount, outcome=outcome
            )
        )

    @rule(token=tokens, user=users, amount=amounts)
    def fail_half_way(self, token: str, user: str, amount: int) -> None:
        """A set whose first lines are fine and whose last one overdraws: nothing applies."""
        account = AccountRef.user(user, token)
        current = sum(self.balances.get(account, (0, 0)))
        lines = ops.credit(AccountRef.system(token), amount) + ops.debit(
            AccountRef.fee(token), amount
        )
        lines += ops.unlock(account, current + 1)  # more than it holds in all
        self.run(ops.posting_set(self.key("half"), "half", T0, lines))
        assert sum(self.balances.get(account, (0, 0))) == current

    @rule(moves=st.lists(st.tuples(tokens, owners, owners, amounts), min_size=2, max_size=5))
    def batch(self, moves: list[tuple[str, str, str, int]]) -> None:
        """Several sets in one unit of work (as trading group-commits them); the refused ones
        leave nothing and the others commit."""
        sets = [
            ops.transfer_between(
                self.key("batch"),
                T0,
                AccountRef(token=token, owner=source),
                AccountRef(token=token, owner=receiver),
                amount,
            )
            for token, source, receiver, amount in moves
            if source != receiver
        ]

        async def go() -> list[bool]:
            outcomes = []
            async with self.storage.unit_of_work() as uow:
                for posting_set in sets:
                    try:
                        await uow.ledger.apply(posting_set)
                    except InsufficientFunds:
                        outcomes.append(False)
                    else:
                        outcomes.append(True)
                await uow.commit()
            return outcomes

        for posting_set, applied in zip(sets, self.loop.run_until_complete(go()), strict=True):
            assert applied == self.allowed(posting_set), posting_set
            if applied:
                self.record(posting_set)

    @rule(token=tokens, user=users, amount=amounts)
    def abandon(self, token: str, user: str, amount: int) -> None:
        """Applied but never committed: nothing stays."""
        self.run(
            ops.deposit(self.key("abandoned"), T0, AccountRef.user(user, token), amount),
            commit=False,
        )

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """An applied set again under its key: the original answer, nothing applied twice."""
        if not self.applied:
            return
        original = data.draw(st.sampled_from(self.applied))

        async def go() -> None:
            async with self.storage.unit_of_work() as uow:
                again = await uow.ledger.apply(original)
                assert again.replayed is True and again.posting_set == original
                await uow.commit()

        self.loop.run_until_complete(go())

    @rule(data=st.data(), amount=amounts)
    def reuse_a_key(self, data: st.DataObject, amount: int) -> None:
        """A key used before, with other content: a conflict, nothing applied."""
        if not self.applied:
            return
        original = data.draw(st.sampled_from(self.applied))
        other = ops.deposit(original.key, T0, AccountRef.user("alice", TOKENS[0]), amount)
        if other.fingerprint() == original.fingerprint():
            return

        async def go() -> None:
            async with self.storage.unit_of_work() as uow:
                await uow.ledger.apply(other)
                await uow.commit()

        with pytest.raises(IdempotencyConflict):
            self.loop.run_until_complete(go())

    # -- the invariant -----------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        async def read() -> dict[str, tuple[list[Balance], Supply, Balance]]:
            found = {}
            async with self.storage.unit_of_work() as uow:
                for token in TOKENS:
                    accounts: list[Balance] = []
                    while page := await uow.ledger.accounts(
                        token,
                        limit=2,
                        after_owner=accounts[-1].account.owner if accounts else None,
                    ):
                        accounts += page
                    found[token] = (
                        accounts,
                        await uow.ledger.supply(token),
                        await uow.ledger.total(token),
                    )
                    for balance in accounts:  # the journal explains every balance
                        entries = await uow.ledger.history(balance.account, limit=10_000)
                        assert sum(e.available for e in entries) == balance.available
                        assert sum(e.locked for e in entries) == balance.locked
            return found

        for token, (accounts, supply, total) in self.loop.run_until_complete(read()).items():
            assert all(b.available >= 0 and b.locked >= 0 for b in accounts)
            held = sum(b.available + b.locked for b in accounts)
            assert held == supply.minted + supply.deposited - supply.withdrawn - supply.burned
            assert held == total.total == supply.outstanding
            # ... and the store holds exactly what the model says.
            stored = {b.account: (b.available, b.locked) for b in accounts if b.total}
            expected = {a: v for a, v in self.balances.items() if a.token == token and any(v)}
            assert stored == expected
            assert {c: supply.counter(c) for c in SupplyCounter if supply.counter(c)} == {
                c: v for c, v in self.supply[token].items() if v
            }


class MemoryLedgerMachine(LedgerMachine):
    async def open_storage(self) -> Storage:
        return MemoryStorage()


class SqliteLedgerMachine(LedgerMachine):
    async def open_storage(self) -> Storage:
        template = _SQLITE_TEMPLATE[0]
        copy = template.with_name(f"example-{id(self)}-{next(_copies)}.db")
        shutil.copyfile(template, copy)
        self.path = copy
        return SqlStorage(f"sqlite+aiosqlite:///{copy}")

    def teardown(self) -> None:
        super().teardown()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


_copies = itertools.count(1)

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much]

TestMemoryLedgerInvariant = MemoryLedgerMachine.TestCase
TestMemoryLedgerInvariant.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=_QUIET
)

TestSqliteLedgerInvariant = SqliteLedgerMachine.TestCase
TestSqliteLedgerInvariant.settings = settings(
    max_examples=20, stateful_step_count=30, deadline=None, suppress_health_check=_QUIET
)


def test_the_model_refuses_what_overdraws() -> None:
    """The machine's own model agrees with the rule it checks the stores against."""
    machine = MemoryLedgerMachine()
    try:
        alice = AccountRef.user("alice", "HTT")
        assert not machine.allowed(ops.lock_funds("k", T0, alice, 1))
        assert machine.run(ops.mint("m", T0, alice, 5))
        assert machine.allowed(ops.lock_funds("k", T0, alice, 5))
        assert not machine.run(ops.lock_funds("k", T0, alice, 6))
        assert machine.balances[alice] == (5, 0)
    finally:
        machine.teardown()
