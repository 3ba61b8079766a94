"""The ledger invariant under trading (DESIGN §8, issue 8 point 10), after every step.

A hypothesis state machine drives the real ``TradingService`` and its ``PairWriter`` on the
memory storage and on SQLite: random orders of several users (LIMIT GTC, IOC, FOK and
post-only, MARKET by quantity and by funds, STOP_LIMIT; crossing and resting; some beyond
the user's funds), several at once (one group-committed batch), cancels (of live, ended and
someone else's orders), halts (new orders refused, cancels allowed), resumes, archives
(every open order cancelled and its funds unlocked in one transaction; the machine then
trades on a fresh pair), funding, and commits that fail (the whole batch errors, the book is
rebuilt from storage).

After every step: for every token the sum over all accounts (available + locked, the fee
account included) equals what was minted, exactly, and the supply counters agree; no
balance is negative; each user's locked amount in each token equals what their live orders
still hold, and an ended order holds nothing; the fee account holds exactly the fees of the
stored trades; every acknowledged order is stored; and the writer's live book equals the
book rebuilt from storage.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.outbound.clock.system import SystemClock
from adapters.outbound.permissions.memory import MemoryPermissions
from adapters.outbound.storage.memory import MemoryStorage
from adapters.outbound.storage.sql import SqlStorage
from adapters.outbound.storage.sql.migrate import upgrade
from core.ledger.model import AccountRef, Balance
from core.ledger.operations import mint
from core.ports.storage import Storage
from core.shared.authorization import Authorizer
from core.shared.errors import DomainError
from core.shared.events import Actor
from core.shared.ids import new_id
from core.tokens.model import Token, TokenType
from core.trading.orders import LIVE_STATUSES, Order, OrderNotOpen, OrderStatus
from core.trading.pairs import Pair, PairNotTrading, PairStatus, make_pair
from core.trading.service import SubmitOrder, TradingService
from core.trading.writer import BatchFailed, OrderResult, PairWriter
from tests.unit.test_trading_writer import FlakyStorage

T0 = datetime(2026, 11, 23, tzinfo=UTC)
ETH = 10**18
USD = 10**6
USERS = ("ann", "ben", "cat", "dan")
ADMIN = Actor(id="admin-1", roles=("admin",))
START_BASE = 20 * ETH
START_QUOTE = 50_000 * USD

users = st.sampled_from(USERS)
sides = st.sampled_from(["BUY", "SELL"])
# Around a mid of 100.00 so that orders both cross and rest.
prices = st.integers(9_900, 10_100).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")
# Mostly small quantities; sometimes far beyond anyone's funds.
quantities = st.integers(-2, 3_000).map(
    lambda lots: {-2: "900", -1: "5000", 0: "0.001"}.get(lots, f"{lots // 1000}.{lots % 1000:03d}")
)


@st.composite
def orders(draw: st.DrawFn) -> SubmitOrder:
    side = draw(sides)
    kind = draw(st.sampled_from(["LIMIT"] * 5 + ["MARKET", "STOP_LIMIT"]))
    if kind == "MARKET":
        if side == "BUY" and draw(st.booleans()):
            funds = draw(st.integers(1, 300_000))
            return SubmitOrder(pair="", side=side, type=kind, quote_amount=f"{funds}.5")
        return SubmitOrder(pair="", side=side, type=kind, quantity=draw(quantities))
    if kind == "STOP_LIMIT":
        return SubmitOrder(
            pair="",
            side=side,
            type=kind,
            price=draw(prices),
            stop_price=draw(prices),
            quantity=draw(quantities),
        )
    tif = draw(st.sampled_from(["GTC", "GTC", "GTC", "IOC", "FOK"]))
    post_only = tif == "GTC" and draw(st.integers(0, 4)) == 0
    return SubmitOrder(
        pair="",
        side=side,
        type=kind,
        price=draw(prices),
        quantity=draw(quantities),
        time_in_force=tif,
        post_only=post_only,
    )


_SQLITE_TEMPLATE: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One SQLite file migrated to head; every example starts from a copy of it."""
    path = tmp_path_factory.mktemp("trading-invariant") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    _SQLITE_TEMPLATE.append(path)
    yield
    _SQLITE_TEMPLATE.remove(path)


class TradingMachine(RuleBasedStateMachine):
    """Subclasses choose the storage with ``open_storage``."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.storage = FlakyStorage(self.loop.run_until_complete(self.open_storage()))
        self.trading = TradingService(self.storage, Authorizer(MemoryPermissions()), SystemClock())
        self.quote = Token(
            symbol="USDC", name="USD Coin", type=TokenType.STABLE, decimals=6, created_at=T0
        )
        self.pairs: list[Pair] = []  # every pair made, the last one trades
        self.minted: dict[str, int] = {}  # token id -> all the machine minted
        self.acknowledged: dict[str, Order] = {}  # order id -> as answered
        self.live: list[tuple[str, str]] = []  # (user, order id) answered live
        self.ended: list[tuple[str, str]] = []
        self.status = PairStatus.TRADING
        self.counter = itertools.count(1)

    async def open_storage(self) -> Storage:
        raise NotImplementedError

    def teardown(self) -> None:
        self.loop.run_until_complete(self.trading.stop())
        self.loop.run_until_complete(self.storage.close())
        self.loop.close()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @property
    def pair(self) -> Pair:
        return self.pairs[-1]

    # -- setting up ----------------------------------------------------------------------------

    async def _new_pair(self) -> None:
        number = len(self.pairs) + 1
        base = Token(
            symbol=f"RWA{number}",
            name=f"Asset {number}",
            type=TokenType.CRYPTO,
            decimals=18,
            created_at=T0,
        )
        pair = make_pair(
            base_symbol=base.symbol,
            quote_symbol="USDC",
            base_token_id=base.id,
            quote_token_id=self.quote.id,
            base_decimals=18,
            quote_decimals=6,
            tick=10_000,  # 0.01
            lot=10**15,  # 0.001
            min_quantity=10**15,
            max_quantity=10_000 * ETH,
            maker_fee_bps=10,
            taker_fee_bps=25,
            at=T0,
        )
        async with self.storage.unit_of_work() as uow:
            if not self.pairs:
                await uow.tokens.add(self.quote)
            await uow.tokens.add(base)
            await uow.pairs.add(pair)
            await uow.commit()
        self.pairs.append(pair)
        self.status = PairStatus.TRADING
        for user in USERS:
            await self._mint(user, base.id, START_BASE)
            if number == 1:
                await self._mint(user, self.quote.id, START_QUOTE)

    async def _mint(self, owner: str, token_id: str, amount: int) -> None:
        async with self.storage.unit_of_work() as uow:
            key = f"fund:{new_id()}"
            await uow.ledger.apply(mint(key, T0, AccountRef.user(owner, token_id), amount))
            await uow.commit()
        self.minted[token_id] = self.minted.get(token_id, 0) + amount

    @initialize()
    def first_pair(self) -> None:
        self.run(self._new_pair())

    # -- what an answer tells ------------------------------------------------------------------

    def _answered(self, user: str, answer: object, *, expect_refusal: bool = False) -> None:
        if isinstance(answer, OrderResult):
            assert not expect_refusal, f"a {self.status.value} pair took an order"
            order = answer.order
            assert order.user_id == user
            self.acknowledged[order.id] = order
            if order.is_live:
                self.live.append((user, order.id))
            else:
                assert order.locked == 0, order
                self.ended.append((user, order.id))
            return
        if expect_refusal:
            assert isinstance(answer, PairNotTrading), answer
            assert answer.code == f"pair_{self.status.value}"
            return
        assert isinstance(answer, DomainError), answer  # a refusal with a code, never a crash
        assert answer.code, answer

    async def _submit(self, user: str, order: SubmitOrder) -> object:
        try:
            return await self.trading.submit(Actor(id=user, roles=("trader",)), order)
        except DomainError as refused:
            return refused

    def _order(self, order: SubmitOrder) -> SubmitOrder:
        return SubmitOrder(
            pair=self.pair.symbol,
            side=order.side,
            type=order.type,
            time_in_force=order.time_in_force,
            price=order.price,
            stop_price=order.stop_price,
            quantity=order.quantity,
            quote_amount=order.quote_amount,
            post_only=order.post_only,
        )

    # -- rules ---------------------------------------------------------------------------------

    @rule(user=users, order=orders())
    def submit(self, user: str, order: SubmitOrder) -> None:
        answer = self.run(self._submit(user, self._order(order)))
        self._answered(user, answer, expect_refusal=self.status is not PairStatus.TRADING)

    @rule(batch=st.lists(st.tuples(users, orders()), min_size=2, max_size=8))
    def submit_at_once(self, batch: list[tuple[str, SubmitOrder]]) -> None:
        """Several users at once: the writer takes them as one group-committed batch."""

        async def go() -> list[object]:
            return await asyncio.gather(
                *(self._submit(user, self._order(order)) for user, order in batch)
            )

        for (user, _), answer in zip(batch, self.run(go()), strict=True):
            self._answered(user, answer, expect_refusal=self.status is not PairStatus.TRADING)

    @rule(
        user=users,
        side=sides,
        lots=st.integers(1, 4_000),
        tif=st.sampled_from(["GTC", "IOC", "FOK"]),
    )
    def take_the_book(self, user: str, side: str, lots: int, tif: str) -> None:
        """A limit order at the best opposite price: it crosses (partly, wholly, or not at
        all for FOK or a self-trade)."""
        book = self.run(self.trading.orderbook(self.pair.id, depth=3))
        levels = book.asks if side == "BUY" else book.bids
        if not levels:
            return
        price = levels[-1][0]  # up to the third level
        order = SubmitOrder(
            pair=self.pair.symbol,
            side=side,
            type="LIMIT",
            price=price,
            quantity=f"{lots // 1000}.{lots % 1000:03d}",
            time_in_force=tif,
        )
        answer = self.run(self._submit(user, order))
        self._answered(user, answer, expect_refusal=self.status is not PairStatus.TRADING)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """A live order by its owner: cancelled and unlocked (halted or not); one that ended
        meanwhile: 409 ``order_not_open``."""
        if not self.live:
            return
        user, order_id = self.live.pop(data.draw(st.integers(0, len(self.live) - 1)))
        try:
            result = self.run(self.trading.cancel(Actor(id=user, roles=("trader",)), order_id))
        except OrderNotOpen:
            self.ended.append((user, order_id))  # filled or triggered and ended meanwhile
            return
        assert isinstance(result, OrderResult)
        assert result.order.status is OrderStatus.CANCELLED and result.order.locked == 0
        self.ended.append((user, order_id))

    @rule(data=st.data(), intruder=users)
    def cancel_someone_elses_or_an_ended_order(self, data: st.DataObject, intruder: str) -> None:
        orders = self.live + self.ended
        if not orders:
            return
        owner, order_id = data.draw(st.sampled_from(orders))
        if intruder == owner and (owner, order_id) in self.live:
            return
        with pytest.raises(DomainError) as refused:
            self.run(self.trading.cancel(Actor(id=intruder, roles=("trader",)), order_id))
        assert refused.value.code in ("order_not_open", "forbidden", "permission_denied")

    @rule(often=st.integers(0, 3))
    def halt(self, often: int) -> None:
        if self.status is PairStatus.TRADING and often == 0:
            pair = self.run(self.trading.update_pair(ADMIN, self.pair.id, {"status": "halted"}))
            assert pair.status is PairStatus.HALTED
            self.status = PairStatus.HALTED

    @rule()
    def resume(self) -> None:
        if self.status is PairStatus.HALTED:
            pair = self.run(self.trading.update_pair(ADMIN, self.pair.id, {"status": "trading"}))
            assert pair.status is PairStatus.TRADING
            self.status = PairStatus.TRADING

    @rule(orders_after=st.lists(st.tuples(users, orders()), max_size=3), often=st.integers(0, 7))
    def archive(self, orders_after: list[tuple[str, SubmitOrder]], often: int) -> None:
        """Closed: every open order cancelled and unlocked in one batch, new ones refused;
        then trading goes on on a fresh pair."""
        if often:
            return
        pair = self.run(self.trading.update_pair(ADMIN, self.pair.id, {"status": "closed"}))
        assert pair.status is PairStatus.CLOSED
        self.status = PairStatus.CLOSED

        async def read() -> list[Order]:
            async with self.storage.unit_of_work(read_only=True) as uow:
                return await uow.orders.live(pair.id)

        assert self.run(read()) == []
        for user, order in orders_after:
            answer = self.run(self._submit(user, self._order(order)))
            self._answered(user, answer, expect_refusal=True)
        self.ended += [(u, i) for u, i in self.live if self.acknowledged[i].pair_id == pair.id]
        self.live = [(u, i) for u, i in self.live if self.acknowledged[i].pair_id != pair.id]
        self.run(self._new_pair())

    @rule(user=users, quote=st.booleans(), amount=st.integers(1, 10**6))
    def fund(self, user: str, quote: bool, amount: int) -> None:
        token = self.quote.id if quote else self.pair.base_token_id
        self.run(self._mint(user, token, amount * (USD if quote else 10**15)))

    @rule(batch=st.lists(st.tuples(users, orders()), min_size=1, max_size=5))
    def a_commit_fails(self, batch: list[tuple[str, SubmitOrder]]) -> None:
        """The next commit fails: every caller of that batch gets ``BatchFailed`` and nothing
        of it exists; the writer rebuilt its book from storage (checked by the invariant).
        Requests that missed that batch are answered by the next one."""
        if self.status is not PairStatus.TRADING:
            return
        first = self.storage.commits + 1
        self.storage.fail_on = {first}

        async def go() -> list[object]:
            return await asyncio.gather(
                *(self._submit(user, self._order(order)) for user, order in batch)
            )

        try:
            answers = self.run(go())
        finally:
            self.storage.fail_on = set()
        assert self.storage.commits >= first  # every order here reaches the writer
        assert isinstance(answers[0], BatchFailed), answers[0]  # the first is in that batch
        for (user, _), answer in zip(batch, answers, strict=True):
            if not isinstance(answer, BatchFailed):
                self._answered(user, answer)

    # -- the invariant -------------------------------------------------------------------------

    @invariant()
    def conserved_and_nothing_left_locked(self) -> None:
        if not self.pairs:
            return

        async def read() -> tuple[dict[str, Any], list[Order], list[Any], dict[str, Balance]]:
            found: dict[str, Any] = {}
            async with self.storage.unit_of_work(read_only=True) as uow:
                tokens = [self.quote.id, *(p.base_token_id for p in self.pairs)]
                for token in tokens:
                    accounts: list[Balance] = []
                    while page := await uow.ledger.accounts(
                        token,
                        limit=50,
                        after_owner=accounts[-1].account.owner if accounts else None,
                    ):
                        accounts += page
                    found[token] = (accounts, await uow.ledger.supply(token))
                every: list[Order] = []
                for user in USERS:
                    every += await uow.orders.for_user(user, limit=100_000)
                trades = []
                for pair in self.pairs:
                    trades += await uow.trades.for_pair(pair.id, limit=100_000)
                balances = {
                    f"{user}:{token}": await uow.ledger.balance(AccountRef.user(user, token))
                    for user in USERS
                    for token in tokens
                }
            return found, every, trades, balances

        found, every, trades, balances = self.run(read())
        for token, (accounts, supply) in found.items():
            assert all(b.available >= 0 and b.locked >= 0 for b in accounts), token
            held = sum(b.available + b.locked for b in accounts)
            assert held == self.minted[token], (token, held, self.minted[token])
            assert held == supply.outstanding == supply.minted
        fees = {b.account.owner: b for b in found[self.quote.id][0]}.get("@fee")
        charged = sum(t.maker_fee + t.taker_fee for t in trades)
        assert (fees.available if fees else 0) == charged
        assert fees is None or fees.locked == 0
        by_pair = {p.id: p for p in self.pairs}
        for order in every:
            if order.status not in LIVE_STATUSES:
                assert order.locked == 0, order
            else:
                assert by_pair[order.pair_id].status is not PairStatus.CLOSED, order
        for user in USERS:
            for token in found:
                expected = 0
                for order in every:
                    if order.user_id != user or not order.is_live:
                        continue
                    pair = by_pair[order.pair_id]
                    lock_token = pair.quote_token_id if order.side == "BUY" else pair.base_token_id
                    if lock_token == token:
                        expected += order.locked
                assert balances[f"{user}:{token}"].locked == expected, (user, token)
        stored = {order.id for order in every}
        assert set(self.acknowledged) <= stored

        async def rebuilt(pair: Pair) -> tuple[Any, Any]:
            fresh = PairWriter(pair.id, self.storage, SystemClock())
            await fresh.rebuild()
            live = self.trading.writer(pair.id)
            await live.stable_depth(1)  # a writer whose rebuild failed rebuilds here
            return fresh.snapshot(), live.snapshot()

        fresh, live = self.run(rebuilt(self.pair))
        assert fresh == live


class MemoryTradingMachine(TradingMachine):
    async def open_storage(self) -> Storage:
        return MemoryStorage()


class SqliteTradingMachine(TradingMachine):
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

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

TestMemoryTradingInvariant = MemoryTradingMachine.TestCase
TestMemoryTradingInvariant.settings = settings(
    max_examples=80, stateful_step_count=50, deadline=None, suppress_health_check=_QUIET
)

TestSqliteTradingInvariant = SqliteTradingMachine.TestCase
TestSqliteTradingInvariant.settings = settings(
    max_examples=15, stateful_step_count=30, deadline=None, suppress_health_check=_QUIET
)
