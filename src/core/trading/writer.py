"""The single writer of one pair: its book, its queue, and group commit.

One asyncio task owns the pair's ``MatchingEngine``. Requests (a new order, a cancel, a
change of the pair) reach it through a queue. The task takes everything queued, up to
``MAX_BATCH``, and handles the batch in ONE unit of work: each request's checks (pair
status, compliance, idempotency, funds), its locks, its fills settled on the ledger with
their fees, the order and trade records, the pair's book sequence, audit entries and outbox
events; then it commits once. Only after the commit does any caller get its answer.

A request that is refused (insufficient funds, a halted pair, someone else's order) is
refused before it touches the book, and its refusal is delivered after the commit like any
answer. If anything else fails, or the commit fails, the engine is rebuilt from storage (the
committed state, which the batch never reached) and every caller of the batch gets
``BatchFailed`` (503): nobody was told of an order or a fill that is not durable.

While a batch runs, the book holds uncommitted changes; readers of the book wait for the
batch to end (``stable_depth``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from core.ledger.model import AccountRef, Bucket, InsufficientFunds, Posting
from core.ledger.operations import lock, posting_set, settle, transfer, unlock
from core.marketdata.aggregate import fold_new_trades
from core.ports.audit import AuditEntry, audit_entry
from core.ports.clock import Clock
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.storage import URGENT_WRITES, Storage, UnitOfWork
from core.shared.errors import DomainError, PermissionDenied, ServiceUnavailable
from core.shared.events import Actor, DomainEvent
from core.shared.ids import new_id
from core.shared.roles import roles_allow_any
from core.tokens.compliance import ComplianceRecord, ComplianceRules, check_compliance
from core.tokens.compliance_use_cases import compliance_rules
from core.tokens.model import Token, TokenType
from core.trading import book as book_format
from core.trading import commands as c
from core.trading.engine import MatchingEngine
from core.trading.orders import (
    CANCEL,
    LIVE_STATUSES,
    READ_ANY,
    SUBMIT,
    Order,
    OrderNotFound,
    OrderNotOpen,
    OrderStatus,
    OrderType,
    Trade,
    check_size_limits,
    fee_for,
    max_fee,
)
from core.trading.pairs import (
    Pair,
    PairNotFound,
    PairNotTrading,
    PairStatus,
    change_pair,
    pair_view,
)

log = logging.getLogger(__name__)

MAX_BATCH = 256


def pair_stream(pair_id: str) -> str:
    return f"pair:{pair_id}"


class BatchFailed(ServiceUnavailable):
    code = "batch_failed"


class EngineFault(RuntimeError):
    """The settlement found what must never happen (a fill beyond an order's lock)."""


# -- requests ----------------------------------------------------------------------------------


@attrs.frozen
class NewOrder:
    """A submission already checked against the pair's rules (ticks, lots, limits)."""

    actor: Actor
    order: Order  # seq 0 until the writer numbers it


@attrs.frozen
class CancelOrder:
    actor: Actor
    order_id: str
    reason: str = "by_user"


@attrs.frozen
class ChangePair:
    """Fees, limits or status (``change_pair`` keys); ``audit`` False for a market reaction."""

    actor: Actor
    changes: dict[str, object]
    action: str = "pair.update"


Request = NewOrder | CancelOrder | ChangePair


@attrs.frozen
class OrderResult:
    order: Order
    replayed: bool = False  # an earlier order with the same clientOrderId


@attrs.define
class _Item:
    request: Request
    future: asyncio.Future[Any]


# -- the writer --------------------------------------------------------------------------------


class PairWriter:
    def __init__(
        self, pair_id: str, storage: Storage, clock: Clock, *, metrics: Metrics = NO_METRICS
    ) -> None:
        self.pair_id = pair_id
        self.metrics = metrics
        self._open_batch: _Batch | None = None  # the batch being committed, for its trades
        self._storage = storage
        self._clock = clock
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._engine: MatchingEngine | None = None  # None: rebuild before the next batch
        self._pair: Pair | None = None
        self._ids: dict[int, str] = {}  # engine id -> order id, live orders
        self._next_seq = 1
        self._next_rest = 1
        self._next_trade = 1
        self._exclusive = asyncio.Lock()  # a batch, or a rebuild for a reader
        self._stable = asyncio.Event()
        self._stable.set()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            # a context of its own: started by whichever request came first, it serves every
            # request after (it must not carry the first one's context, e.g. its log ids)
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"pair-writer:{self.pair_id}", context=contextvars.Context()
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(BatchFailed("the pair's writer stopped"))

    @property
    def queued(self) -> int:
        """Requests waiting for the next batch."""
        return self._queue.qsize()

    async def submit(self, request: Request) -> Any:
        """Queue ``request``; its answer once the batch holding it has committed."""
        self.start()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(request, future))
        return await future

    async def stable_depth(
        self, depth: int
    ) -> tuple[Pair, list[tuple[int, int]], list[tuple[int, int]], int]:
        """(pair, bids, asks, seq) of the committed book: waits out a running batch."""
        while True:
            await self._stable.wait()
            if self._engine is None:  # a failed rebuild: retry it, never beside a batch
                async with self._exclusive:
                    if self._engine is None:
                        await self.rebuild()
                continue
            if self._stable.is_set() and self._pair is not None:
                bids, asks = self._engine.depth(depth)
                return self._pair, bids, asks, self._engine.seq

    def snapshot(self) -> tuple[int, list[Any], dict[int, Any]]:
        """(book seq, resting orders in priority order, pending stops) of the live engine."""
        if self._engine is None:
            return (0, [], {})
        return self._engine.seq, self._engine.snapshot(), self._engine.pending_stops()

    # -- rebuild -----------------------------------------------------------------------------------

    async def rebuild(self) -> None:
        """The engine from storage: resting orders in time priority (``rest_position``),
        pending stop orders, then the book's seq and last price."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            pair = await uow.pairs.get(self.pair_id)
            if pair is None:
                raise PairNotFound(self.pair_id)
            live = await uow.orders.book_entries(self.pair_id)
            next_seq = await uow.orders.max_seq(self.pair_id) + 1
            next_rest = await uow.orders.max_rest_position(self.pair_id) + 1
            next_trade = await uow.trades.max_seq(self.pair_id) + 1
        engine = MatchingEngine()
        ids: dict[int, str] = {}
        tick, lot = pair.tick, pair.lot
        restore, restore_stop = engine.restore, engine.restore_stop
        for entry in live:  # resting ones in time priority, then the pending stops
            if entry.status is not OrderStatus.PENDING_TRIGGER:
                remaining = (entry.quantity - entry.filled_quantity) // lot
                restore(entry.seq, entry.user_id, entry.side, entry.price // tick, remaining)
            else:
                assert entry.stop_price is not None
                restore_stop(
                    entry.seq,
                    entry.user_id,
                    entry.side,
                    entry.stop_price // tick,
                    entry.price // tick,
                    entry.quantity // lot,
                    entry.time_in_force,
                    entry.post_only,
                )
            ids[entry.seq] = entry.id
        engine.take_events()
        engine.seq = pair.book_seq
        engine.last_price = None if pair.last_price is None else pair.last_price // pair.tick
        self._engine, self._pair, self._ids = engine, pair, ids
        self._next_seq, self._next_rest, self._next_trade = next_seq, next_rest, next_trade

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        URGENT_WRITES.set(True)  # this task's commits are what callers wait for
        while True:
            item = await self._queue.get()
            batch = [item]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._exclusive:
                    await self._run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the task must outlive any bug, or every later caller waits
                log.exception("pair %s: the writer's batch crashed", self.pair_id)
                self._engine = None
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(BatchFailed("the pair's writer failed"))

    async def _run_batch(self, batch: list[_Item]) -> None:
        self._stable.clear()
        self._open_batch = None
        try:
            if self._engine is None:
                await self.rebuild()
            answers = await self._commit_batch([item.request for item in batch])
        except asyncio.CancelledError:
            self._engine = None
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(BatchFailed("the pair's writer stopped"))
            raise
        except Exception as exc:
            log.warning(
                "pair %s: batch of %d failed (%s: %s); rebuilding the book from storage",
                self.pair_id,
                len(batch),
                type(exc).__name__,
                exc,
            )
            lost = len(self._open_batch.trades) if self._open_batch is not None else 0
            if lost:  # matched, never made durable: failed trades
                self.metrics.trades_executed(self.pair_id, ok=False, count=lost)
            self._engine = None
            try:
                await self.rebuild()
            except Exception as again:  # storage down: rebuild before the next batch
                log.warning("pair %s: rebuild failed: %s", self.pair_id, type(again).__name__)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(
                        BatchFailed("the order could not be made durable; nothing was done")
                    )
            return
        finally:
            self._stable.set()
        for item, answer in zip(batch, answers, strict=True):
            if item.future.done():
                continue
            if isinstance(answer, BaseException):
                item.future.set_exception(answer)
            else:
                item.future.set_result(answer)

    async def _commit_batch(self, requests: list[Request]) -> list[object]:
        assert self._engine is not None
        now = self._clock.now()
        async with self._storage.unit_of_work() as uow:
            pair = await uow.pairs.get(self.pair_id)
            if pair is None:
                raise PairNotFound(self.pair_id)
            batch = self._open_batch = _Batch(self, uow, pair, self._engine, now)
            await batch.read_balances(requests)
            answers: list[object] = []
            for request in requests:
                try:
                    answers.append(await batch.handle(request))
                except DomainError as refused:
                    if batch.book_changed:  # after the book changed only a rebuild undoes it
                        raise EngineFault("a request failed after the book changed") from refused
                    answers.append(refused)
            await batch.finish()
            await uow.commit()
        if batch.trades:
            self.metrics.trades_executed(self.pair_id, ok=True, count=len(batch.trades))
        self._pair = batch.pair
        self._ids = batch.ids
        self._next_seq, self._next_rest, self._next_trade = (
            batch.next_seq,
            batch.next_rest,
            batch.next_trade,
        )
        return answers


class _Batch:
    """The state of one batch; nothing here outlives a failed commit."""

    def __init__(
        self, writer: PairWriter, uow: UnitOfWork, pair: Pair, engine: MatchingEngine, now: datetime
    ) -> None:
        self.uow = uow
        self.pair = pair
        self.original_pair = pair
        self.engine = engine
        self.now = now
        self.metrics, self.pair_id = writer.metrics, writer.pair_id
        self.ids = dict(writer._ids)
        self.next_seq = writer._next_seq
        self.next_rest = writer._next_rest
        self.next_trade = writer._next_trade
        self.orders: dict[str, Order] = {}  # touched in this batch, current values
        self.originals: dict[str, Order] = {}  # as stored (absent: new in this batch)
        self.postings: list[Posting] = []  # the whole batch's, applied as one posting set
        self.moved: dict[tuple[AccountRef, Bucket], int] = {}  # their net, per bucket
        self.held: dict[AccountRef, int] = {}  # available as stored, read once a batch
        self.book_changed = False  # the current request reached the book
        self.trades: list[Trade] = []
        self.events: list[DomainEvent] = []
        self.tokens: dict[str, Token | None] = {}
        self.audits: list[AuditEntry] = []  # appended together at the end
        self.compliance: dict[str, list[ComplianceRecord]] = {}  # per user, read once
        self.rules: ComplianceRules | None = None  # the base token's market rules

    # -- helpers -----------------------------------------------------------------------------

    async def order(self, order_id: str) -> Order | None:
        found = self.orders.get(order_id)
        if found is None:
            found = await self.uow.orders.get(order_id)
            if found is not None:
                self.orders[order_id] = found
                self.originals[order_id] = found
        return found

    def set(self, order: Order) -> None:
        self.orders[order.id] = order

    def event(self, kind: str, actor: Actor, metadata: dict[str, Any]) -> None:
        self.events.append(
            DomainEvent(
                type=kind,
                aggregate_id=self.pair.id,
                actor_id=actor.id,
                actor_type=actor.type,
                occurred_at=self.now,
                metadata=metadata,
                stream=pair_stream(self.pair.id),
            )
        )

    def post(self, lines: list[Posting]) -> None:
        """Lines of the batch's one posting set (locks, fills with their fees, unlocks)."""
        self.postings += lines
        for line in lines:
            key = (line.account, line.bucket)
            self.moved[key] = self.moved.get(key, 0) + line.delta

    async def read_balances(self, requests: list[Request]) -> None:
        """The stored balances every new order of the batch will check, in one read."""
        wanted: dict[AccountRef, None] = {}
        for request in requests:
            if isinstance(request, NewOrder):
                order = request.order
                token = self.pair.quote_token_id if order.side == c.BUY else self.pair.base_token_id
                wanted[self.account(order.user_id, token)] = None
        for found in await self.uow.ledger.balances_of(list(wanted)):
            self.held[found.account] = found.available

    async def require_compliant(self, user_id: str, token: Token) -> None:
        """``require_compliant`` with each user's records and the market's rules read once
        per batch (the batch is one transaction at one ``now``)."""
        if token.type is not TokenType.RWA:
            return
        if self.rules is None:
            self.rules = await compliance_rules(self.uow, token)
        records = self.compliance.get(user_id)
        if records is None:
            records = self.compliance[user_id] = await self.uow.compliance.for_user(user_id)
        check_compliance(records, token, self.rules, self.now, user_id=user_id)

    async def available(self, account: AccountRef) -> int:
        """What ``account`` has available now: as stored, plus this batch's postings."""
        if account not in self.held:
            self.held[account] = (await self.uow.ledger.balance(account)).available
        return self.held[account] + self.moved.get((account, Bucket.AVAILABLE), 0)

    def account(self, user_id: str, token: str) -> AccountRef:
        return AccountRef.user(user_id, token)

    # -- requests ----------------------------------------------------------------------------

    async def handle(self, request: Request) -> object:
        self.book_changed = False
        if isinstance(request, NewOrder):
            return await self.new_order(request)
        if isinstance(request, CancelOrder):
            return await self.cancel(request)
        return await self.change(request)

    async def new_order(self, request: NewOrder) -> OrderResult:
        order, pair = request.order, self.pair
        if order.client_order_id is not None:
            earlier = next(
                (
                    o
                    for o in self.orders.values()
                    if o.user_id == order.user_id and o.client_order_id == order.client_order_id
                ),
                None,
            ) or await self.uow.orders.by_client_id(order.user_id, order.client_order_id)
            if earlier is not None:
                return OrderResult(earlier, replayed=True)
        if pair.status is not PairStatus.TRADING:
            raise PairNotTrading(pair)
        if order.quantity is not None:  # the limits as committed (a PATCH may be newer)
            check_size_limits(pair, order.quantity)
        if pair.base_token_id not in self.tokens:
            self.tokens[pair.base_token_id] = await self.uow.tokens.get(pair.base_token_id)
        base = self.tokens[pair.base_token_id]
        if base is not None:
            await self.require_compliant(order.user_id, base)
        order = attrs.evolve(
            order,
            pair_id=pair.id,
            seq=self.next_seq,
            maker_fee_bps=pair.maker_fee_bps,
            taker_fee_bps=pair.taker_fee_bps,
            created_at=self.now,
            updated_at=self.now,
        )
        amount, token = self._lock_for(order)
        if amount > 0:  # refused here, before the book changes
            account = self.account(order.user_id, token)
            if await self.available(account) < amount:
                raise InsufficientFunds(account, Bucket.AVAILABLE, amount)
            self.post(lock(account, amount))
        self.next_seq += 1
        order = attrs.evolve(order, locked=amount)
        self.set(order)
        self.book_changed = True
        command = self._command(order)
        started = time.perf_counter()
        self.engine.apply(command)
        self.metrics.observe_matching_latency(self.pair_id, time.perf_counter() - started)
        await self._settle_events(request.actor)
        final = self.orders[order.id]
        self.audits.append(
            audit_entry(
                request.actor,
                SUBMIT,
                f"order:{order.id}",
                before=None,
                after=order_view(pair, final),
                at=self.now,
            )
        )
        return OrderResult(final)

    def _lock_for(self, order: Order) -> tuple[int, str]:
        """What the order locks, and in which token (DESIGN 8)."""
        pair = self.pair
        if order.side == c.SELL:
            assert order.quantity is not None
            return order.quantity, pair.base_token_id
        if order.type is OrderType.MARKET:
            if order.quote_amount is not None:
                return order.quote_amount, pair.quote_token_id
            assert order.quantity is not None
            cost = self._market_buy_cost(order.quantity // pair.lot)
            return cost + max_fee(cost, order.taker_fee_bps), pair.quote_token_id
        assert order.price is not None and order.quantity is not None
        cost = pair.cost(order.price, order.quantity)
        bps = (
            order.maker_fee_bps
            if order.post_only
            else max(order.maker_fee_bps, order.taker_fee_bps)
        )
        return cost + max_fee(cost, bps), pair.quote_token_id

    def _market_buy_cost(self, lots: int) -> int:
        """The most a market BUY of ``lots`` can cost on the current book."""
        _, asks = self.engine.depth(len(self.engine) + 1)
        cost = 0
        for price, size in asks:
            take = min(size, lots)
            cost += price * take * self.pair.quote_per_tick_lot
            lots -= take
            if not lots:
                break
        return cost

    def _command(self, order: Order) -> c.Command:
        pair, user = self.pair, order.user_id
        if order.type is OrderType.MARKET:
            if order.quote_amount is not None:
                spendable = order.quote_amount - max_fee(order.quote_amount, order.taker_fee_bps)
                return c.MarketBuyFunds(order.seq, user, spendable // pair.quote_per_tick_lot)
            assert order.quantity is not None
            return c.Market(order.seq, user, order.side, order.quantity // pair.lot)
        assert order.price is not None and order.quantity is not None
        if order.type is OrderType.STOP_LIMIT:
            assert order.stop_price is not None
            return c.StopLimit(
                order.seq,
                user,
                order.side,
                order.stop_price // pair.tick,
                order.price // pair.tick,
                order.quantity // pair.lot,
                order.time_in_force,
                order.post_only,
            )
        return c.Limit(
            order.seq,
            user,
            order.side,
            order.price // pair.tick,
            order.quantity // pair.lot,
            order.time_in_force,
            order.post_only,
        )

    async def cancel(self, request: CancelOrder) -> OrderResult:
        order = await self.order(request.order_id)
        if order is None or order.pair_id != self.pair.id:
            raise OrderNotFound(request.order_id)
        actor = request.actor
        own = actor.type != "user" or actor.id == order.user_id
        if not own and not roles_allow_any(actor.roles, (READ_ANY,)):
            raise PermissionDenied(CANCEL, ("a trader cancels only their own orders",))
        if not order.is_live or order.seq not in self.ids:
            raise OrderNotOpen(order)
        self.book_changed = True
        self.engine.apply(c.Cancel(order.seq))
        await self._settle_events(actor, cancel_reason=request.reason)
        final = self.orders[order.id]
        self.audits.append(
            audit_entry(
                actor,
                CANCEL,
                f"order:{order.id}",
                before=order_view(self.pair, order),
                after=order_view(self.pair, final),
                at=self.now,
            )
        )
        return OrderResult(final)

    async def change(self, request: ChangePair) -> Pair:
        before = self.pair
        changed = change_pair(before, request.changes, self.now)
        if changed == attrs.evolve(before, updated_at=self.now):
            return before  # nothing to do (a repeated market event)
        self.pair = changed
        if changed.status is PairStatus.CLOSED and before.status is not PairStatus.CLOSED:
            self.book_changed = True
            for seq in sorted(self.ids):
                self.engine.apply(c.Cancel(seq))
            await self._settle_events(request.actor, cancel_reason="pair_closed")
        if request.actor.type == "user":
            self.audits.append(
                audit_entry(
                    request.actor,
                    request.action,
                    f"pair:{changed.id}",
                    before=pair_view(before),
                    after=pair_view(changed),
                    at=self.now,
                )
            )
        self.event("pair.changed", request.actor, {"status": changed.status.value})
        return changed

    # -- the engine's events -----------------------------------------------------------------

    async def _settle_events(self, actor: Actor, *, cancel_reason: str = "by_user") -> None:
        pair = self.pair
        touched: dict[str, None] = {}
        ended: dict[str, tuple[OrderStatus, str | None]] = {}
        levels: list[list[object]] = []
        emptied: dict[str, int] = {}  # sides where levels were removed: how many
        book_seq: int | None = None
        for event in self.engine.take_events():
            kind = event[0]
            if kind == c.FILL:
                await self._fill(event, touched)
                continue
            if kind == c.LEVEL:
                _, book_seq, side, price, size = event
                if size == 0:
                    emptied[side] = emptied.get(side, 0) + 1
                # DESIGN §6: a size of "0" deletes a level (not "0.00")
                size_text = pair.size_text(size * pair.lot) if size else "0"
                levels.append([side, pair.price_text(price * pair.tick), size_text])
                continue
            order_id = self.ids.get(event[1]) or self._new_id(event[1])
            order = await self.order(order_id)
            assert order is not None
            touched[order_id] = None
            if kind == c.ACCEPTED:
                self.ids[event[1]] = order_id
            elif kind == c.PENDING:
                self.set(attrs.evolve(order, status=OrderStatus.PENDING_TRIGGER))
            elif kind == c.TRIGGERED:
                self.set(attrs.evolve(order, status=OrderStatus.OPEN))
            elif kind == c.RESTED:
                status = OrderStatus.PARTIALLY_FILLED if order.filled_quantity else OrderStatus.OPEN
                self.set(attrs.evolve(order, status=status, rest_position=self.next_rest))
                self.next_rest += 1
            elif kind == c.CANCELLED:
                ended[order_id] = (OrderStatus.CANCELLED, cancel_reason)
            elif kind == c.EXPIRED:
                ended[order_id] = (OrderStatus.EXPIRED, str(event[3]))
            elif kind == c.REJECTED:
                ended[order_id] = (OrderStatus.REJECTED, str(event[2]))
        for order_id in touched:
            await self._conclude(order_id, ended.get(order_id), actor)
        if levels:
            assert book_seq is not None
            top_n = book_format.CHECKSUM_LEVELS
            deep = self.engine.depth(book_format.STREAMED_DEPTHS[-1] if emptied else top_n)
            top = (deep[0][:top_n], deep[1][:top_n])
            # A removed level lets deeper ones move up: the new top 10 come along, and so do
            # the levels that may have just entered the window of a deeper subscription (with
            # r levels removed from a side, its ranks depth - r + 1 .. depth for depth 25 and
            # 100). Sizes are absolute, so repeating one is harmless, and a client subscribed
            # at any depth holds exactly the levels of its window.
            changed = {(side, price) for side, price, _ in levels}
            for side, side_levels in ((c.BUY, deep[0]), (c.SELL, deep[1])):
                removed = emptied.get(side, 0)
                if not removed:
                    continue
                ranks = set(range(min(top_n, len(side_levels))))
                for window in book_format.STREAMED_DEPTHS:
                    ranks.update(range(max(top_n, window - removed), min(window, len(side_levels))))
                for rank in sorted(ranks):
                    price_ticks, size_lots = side_levels[rank]
                    price_text = pair.price_text(price_ticks * pair.tick)
                    if (side, price_text) not in changed:
                        levels.append([side, price_text, pair.size_text(size_lots * pair.lot)])
            self.event(
                "book.changed",
                actor,
                {"seq": book_seq, "changes": levels, "checksum": self._book_checksum(*top)},
            )

    def _book_checksum(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> int:
        """The checksum of the engine's top levels (the REST and WebSocket book's, §6)."""
        pair = self.pair
        return book_format.book_checksum(
            bids,
            asks,
            tick=pair.tick // 10 ** (pair.quote_decimals - pair.price_decimals),
            price_decimals=pair.price_decimals,
            lot=pair.lot // 10 ** (pair.base_decimals - pair.size_decimals),
            size_decimals=pair.size_decimals,
        )

    def _new_id(self, seq: int) -> str:
        """The order just submitted: the only touched order not yet known to the book."""
        for order in self.orders.values():
            if order.seq == seq and order.pair_id == self.pair.id:
                return order.id
        raise EngineFault(f"the engine named an unknown order {seq}")

    async def _fill(self, event: tuple[Any, ...], touched: dict[str, None]) -> None:
        _, maker_seq, taker_seq, price_ticks, lots, _mu, _tu, taker_side = event
        pair = self.pair
        maker = await self.order(self.ids.get(maker_seq) or self._new_id(maker_seq))
        taker = await self.order(self.ids.get(taker_seq) or self._new_id(taker_seq))
        assert maker is not None and taker is not None
        touched[maker.id] = None
        touched[taker.id] = None
        quantity = lots * pair.lot
        price = price_ticks * pair.tick
        notional = price_ticks * lots * pair.quote_per_tick_lot
        maker_fee = fee_for(maker.fee_accrued, maker.fee, notional, maker.maker_fee_bps)
        taker_fee = fee_for(taker.fee_accrued, taker.fee, notional, taker.taker_fee_bps)
        buyer, seller = (taker, maker) if taker_side == c.BUY else (maker, taker)
        buyer_fee, seller_fee = (
            (taker_fee, maker_fee)
            if taker_side == c.BUY
            else (
                maker_fee,
                taker_fee,
            )
        )
        if buyer.locked < notional + buyer_fee or seller.locked < quantity:
            raise EngineFault(f"a fill beyond the lock of order {buyer.id} or {seller.id}")
        trade = Trade(
            pair_id=pair.id,
            seq=self.next_trade,
            price=price,
            quantity=quantity,
            maker_order_id=maker.id,
            taker_order_id=taker.id,
            maker_user_id=maker.user_id,
            taker_user_id=taker.user_id,
            taker_side=taker_side,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            created_at=self.now,
        )
        self.next_trade += 1
        base, quote = pair.base_token_id, pair.quote_token_id
        lines = settle(
            self.account(seller.user_id, base), self.account(buyer.user_id, base), quantity
        ) + settle(
            self.account(buyer.user_id, quote), self.account(seller.user_id, quote), notional
        )
        fee_account = AccountRef.fee(quote)
        if buyer_fee:
            lines += settle(self.account(buyer.user_id, quote), fee_account, buyer_fee)
        if seller_fee:
            lines += transfer(self.account(seller.user_id, quote), fee_account, seller_fee)
        self.post(lines)
        self.trades.append(trade)
        for order, fee, bps in (
            (maker, maker_fee, maker.maker_fee_bps),
            (taker, taker_fee, taker.taker_fee_bps),
        ):
            spent = notional + fee if order is buyer else quantity
            current = self.orders[order.id]
            self.set(
                attrs.evolve(
                    current,
                    filled_quantity=current.filled_quantity + quantity,
                    filled_quote=current.filled_quote + notional,
                    fee=current.fee + fee,
                    fee_accrued=current.fee_accrued + notional * bps,
                    locked=current.locked - spent,
                )
            )
        self.event(
            "trade.executed",
            Actor.system("matching"),
            {
                "tradeId": trade.id,
                "price": pair.price_text(price),
                "quantity": pair.size_text(quantity),
                "takerSide": taker_side,
                "makerOrderId": maker.id,
                "takerOrderId": taker.id,
                "makerUserId": maker.user_id,
                "takerUserId": taker.user_id,
                "makerFee": pair.quote_text(maker_fee),
                "takerFee": pair.quote_text(taker_fee),
                "at": _iso(self.now),
            },
        )

    async def _conclude(
        self, order_id: str, ended: tuple[OrderStatus, str | None] | None, actor: Actor
    ) -> None:
        """The order's status after the command; an ended order unlocks what it holds."""
        order = self.orders[order_id]
        in_book = self.engine.order(order.seq) is not None or order.seq in (
            self.engine.pending_stops() if order.status is OrderStatus.PENDING_TRIGGER else {}
        )
        status, reason = order.status, order.reject_reason
        if in_book:
            if status is not OrderStatus.PENDING_TRIGGER:
                status = OrderStatus.PARTIALLY_FILLED if order.filled_quantity else OrderStatus.OPEN
        elif ended is not None and ended[0] is not OrderStatus.EXPIRED:
            status, reason = ended
        elif order.quantity is not None and order.filled_quantity == order.quantity:
            status, reason = OrderStatus.FILLED, None
        elif order.quote_amount is not None and order.filled_quantity > 0:
            status, reason = OrderStatus.FILLED, None  # a market BUY by funds spent what it could
        elif ended is not None:
            status, reason = ended
        else:
            raise EngineFault(f"order {order.id} left the book without an ending")
        if status is OrderStatus.REJECTED and order.filled_quantity:
            raise EngineFault(f"order {order.id} was rejected after fills")
        locked = order.locked
        if status not in LIVE_STATUSES:
            self.ids.pop(order.seq, None)
            if locked:
                token = self.pair.quote_token_id if order.side == c.BUY else self.pair.base_token_id
                self.post(unlock(self.account(order.user_id, token), locked))
                locked = 0
        final = attrs.evolve(
            order, status=status, reject_reason=reason, locked=locked, updated_at=self.now
        )
        self.set(final)
        if final != order or order_id not in self.originals:
            self.event("order.updated", actor, order_view(self.pair, final))

    # -- the end -----------------------------------------------------------------------------

    async def finish(self) -> None:
        """Write the touched orders, the trades, the pair's book state and the events."""
        new: list[Order] = []
        changed: list[Order] = []
        for order_id, order in self.orders.items():
            original = self.originals.get(order_id)
            if original is None:
                new.append(attrs.evolve(order, version=1))
            elif order != original:
                changed.append(attrs.evolve(order, version=original.version + 1))
        if changed:
            await self.uow.orders.save_many(changed)
        if new:
            await self.uow.orders.add_many(new)
        if self.trades:
            await self.uow.trades.add(self.trades)
        if self.postings:  # one posting set: each account moves once per batch
            key = f"trading:{self.pair.id}:{new_id()}"
            await self.uow.ledger.apply(
                posting_set(key, "trading", self.now, self.postings, reference=self.pair.id)
            )
        last = self.engine.last_price
        pair = attrs.evolve(
            self.pair,
            book_seq=self.engine.seq,
            last_price=None if last is None else last * self.pair.tick,
        )
        if pair != self.original_pair:
            self.pair = await self.uow.pairs.save(
                attrs.evolve(pair, version=self.original_pair.version + 1)
            )
        if self.events:
            numbered = await self.uow.events.append(self.events)
            # market data (trades and candles) commits with the trades: no write of its own
            await fold_new_trades(self.uow, numbered)
        if self.audits:
            await self.uow.audit.append_many(self.audits)


def order_view(pair: Pair, order: Order) -> dict[str, Any]:
    """An order on the wire (DESIGN 5.5), exact decimal strings."""
    size: Callable[[int], str] = pair.size_text
    remaining = order.remaining_quantity
    average = None
    if order.filled_quantity:
        average = pair.average_text(order.filled_quote, order.filled_quantity)
    return {
        "id": order.id,
        "clientOrderId": order.client_order_id,
        "userId": order.user_id,
        "tradingPairId": order.pair_id,
        "symbol": pair.symbol,
        "side": order.side,
        "type": order.type.value,
        "timeInForce": order.time_in_force,
        "postOnly": order.post_only,
        "price": None if order.price is None else pair.price_text(order.price),
        "stopPrice": None if order.stop_price is None else pair.price_text(order.stop_price),
        "quantity": None if order.quantity is None else size(order.quantity),
        "quoteAmount": None if order.quote_amount is None else pair.quote_text(order.quote_amount),
        "filledQuantity": size(order.filled_quantity),
        "remainingQuantity": None if remaining is None else size(remaining),
        "averagePrice": average,
        "fee": pair.quote_text(order.fee),
        "status": order.status.value,
        "rejectReason": order.reject_reason,
        "createdAt": _iso(order.created_at),
        "updatedAt": _iso(order.updated_at),
    }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
