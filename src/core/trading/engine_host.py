"""``rwa-market engine``: a process that owns pairs' books by lease and serves their commands.

Every ``lease_seconds / 5`` the host renews the lease of each pair it owns (``engine:pair:<id>``
in storage) and tries to take the lease of every pair nobody holds (a new pair, or one whose
owner died: its lease expired). Taking a pair: a ``PairWriter`` over a ``FencedStorage`` (a
batch commits only while the lease is held), the book rebuilt from storage, then every command
the previous owner received and never answered claimed from the pair's queue and served, then
the pair's new commands (and, on every pass, any of its commands left unanswered longer than
the lease: read by a stale owner). Pairs are spread: each engine holds a membership lease
(``engine:member:<holder>``), and one that owns more than its share (pairs / live engines,
rounded up) hands a pair over (stops taking its commands, lets the ones being served finish,
gives the lease back), so an engine that starts later gets pairs. A free pair is always taken:
availability comes before balance. A pair is dropped the moment its lease cannot be renewed (another
holder has it, or the last renewal is older than the lease): the writer stops, and commands it
had not answered are left unacknowledged for the next owner.

Nothing is applied twice: a command claimed from a previous owner (``redelivered``) may have
been committed by it just before it died, so the host looks first: a new order whose id is
stored, or a cancel whose order is already cancelled, is answered from storage.
A command past its deadline (its requester stopped waiting) is refused unapplied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import attrs

from core.ports.clock import Clock
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.order_routing import (
    Delivery,
    EngineReply,
    EngineUnavailable,
    OrderRouter,
)
from core.ports.storage import Storage
from core.shared.errors import DomainError
from core.shared.lease import StorageLease
from core.trading.fencing import FencedStorage
from core.trading.orders import OrderStatus
from core.trading.writer import CancelOrder, NewOrder, OrderResult, PairWriter

log = logging.getLogger(__name__)

RECEIVE_BATCH = 256
RECEIVE_BLOCK_SECONDS = 0.2
STOP_GRACE_SECONDS = 5.0


PAIR_PREFIX = "engine:pair:"
MEMBER_PREFIX = "engine:member:"


def lease_name(pair_id: str) -> str:
    return PAIR_PREFIX + pair_id


@attrs.define
class _Owned:
    """A pair this host owns: its lease, its writer, the commands being served."""

    pair_id: str
    lease: StorageLease
    writer: PairWriter
    held_until: float  # monotonic: the last renewal plus the lease
    taken_at: float  # monotonic
    lost: bool = False
    leaving: bool = False  # handed over: no new commands, the ones being served finish
    serving: set[asyncio.Task[None]] = attrs.Factory(set)
    in_flight: set[str] = attrs.Factory(set)  # delivery ids being served here


class EngineHost:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        router: OrderRouter,
        *,
        holder: str,
        lease_seconds: float = 5.0,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("a lease must last a positive time")
        self.holder = holder
        self._storage = storage
        self._clock = clock
        self._router = router
        self._lease_seconds = lease_seconds
        self._metrics = metrics
        self._owned: dict[str, _Owned] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._member = StorageLease(
            storage, clock, name=MEMBER_PREFIX + holder, holder=holder, ttl_seconds=lease_seconds
        )
        self._shed: dict[str, float] = {}  # pair -> monotonic time until which it is left alone
        self._handing_over: set[asyncio.Task[None]] = set()

    @property
    def owned(self) -> list[str]:
        """The pairs whose books this host runs now."""
        return [p for p, owned in self._owned.items() if not (owned.lost or owned.leaving)]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._lease_loop(), name="engine-leases"),
            loop.create_task(self._receive_loop(), name="engine-commands"),
        ]

    async def stop(self) -> None:
        """Stop taking commands, let the ones being served finish (a few seconds at most),
        stop every writer and give the leases back, so another engine takes over at once."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._handing_over:
            await asyncio.wait(list(self._handing_over), timeout=STOP_GRACE_SECONDS)
        for owned in self._owned.values():
            owned.leaving = True
        serving = [t for owned in self._owned.values() for t in owned.serving]
        if serving:
            await asyncio.wait(serving, timeout=STOP_GRACE_SECONDS)
        for pair_id in list(self._owned):
            await self._drop(pair_id, release=True)
        with contextlib.suppress(Exception):
            await self._member.release()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then ``stop()``."""
        self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- leases ----------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        interval = self._lease_seconds / 5
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # storage down: the next pass tries again
                log.warning("engine lease pass failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def tick(self) -> None:
        """One pass: say this engine is alive, renew what is owned (drop what cannot be),
        claim what was left unanswered there, take what is free, hand one pair over when
        this engine owns more than its share."""
        await self._member.acquire()
        for pair_id in list(self._owned):
            await self._renew(pair_id)
        for owned in list(self._owned.values()):
            await self._claim_stale(owned)
        async with self._storage.unit_of_work(read_only=True) as uow:
            pairs = await uow.pairs.list()
            members = await uow.leases.holders(MEMBER_PREFIX, now=self._clock.now())
        now = time.monotonic()
        for pair in pairs:
            if pair.id not in self._owned and self._shed.get(pair.id, 0.0) <= now:
                await self._try_take(pair.id)
        await self._balance(len(pairs), max(1, len(members)))

    async def _balance(self, pairs: int, members: int) -> None:
        """Availability first: a free pair is taken whatever the count. Then, when this
        engine owns more than its share (pairs / live engines, rounded up), it hands over
        one pair it has held for a while (never one just taken over from a dead engine,
        whose membership may not have expired yet); it leaves that pair alone for a few
        passes, so another engine takes it."""
        share = -(-pairs // members)
        owned = [o for o in self._owned.values() if not (o.lost or o.leaving)]
        if len(owned) <= share:
            return
        now = time.monotonic()
        settled = [o for o in owned if now - o.taken_at >= 2 * self._lease_seconds]
        if not settled:
            return
        chosen = max(settled, key=lambda o: o.taken_at)
        log.info(
            "pair %s: handed over (this engine owns %d pairs, its share is %d)",
            chosen.pair_id,
            len(owned),
            share,
        )
        self._shed[chosen.pair_id] = now + 3 * self._lease_seconds
        chosen.leaving = True
        # in the background: this pass must not wait (the other leases need renewing)
        task = asyncio.get_running_loop().create_task(self._hand_over(chosen))
        self._handing_over.add(task)
        task.add_done_callback(self._handing_over.discard)

    async def _hand_over(self, owned: _Owned) -> None:
        """No new commands for the pair; the ones being served finish (a few seconds at
        most); then its book stops and its lease is given back."""
        owned.leaving = True
        if owned.serving:
            await asyncio.wait(list(owned.serving), timeout=STOP_GRACE_SECONDS)
        await self._drop(owned.pair_id, release=True)

    async def _renew(self, pair_id: str) -> None:
        owned = self._owned[pair_id]
        if owned.lost:  # a commit found the lease gone: start over (rebuild, claim) if free
            await self._drop(pair_id)
            return
        try:
            held = await owned.lease.acquire()
        except Exception as exc:
            if time.monotonic() >= owned.held_until:
                log.warning("pair %s: lease not renewed (%s); stopping its book", pair_id, exc)
                await self._drop(pair_id)
            return
        if not held:
            log.warning("pair %s: another engine holds its lease; stopping its book", pair_id)
            await self._drop(pair_id)
        else:
            owned.held_until = time.monotonic() + self._lease_seconds

    async def _try_take(self, pair_id: str) -> None:
        lease = StorageLease(
            self._storage,
            self._clock,
            name=lease_name(pair_id),
            holder=self.holder,
            ttl_seconds=self._lease_seconds,
        )
        taken_at = time.monotonic()
        if not await lease.acquire():
            return
        fenced = FencedStorage(
            self._storage,
            self._clock,
            name=lease.name,
            holder=self.holder,
            on_lost=lambda: self._mark_lost(pair_id),
        )
        writer = PairWriter(pair_id, fenced, self._clock, metrics=self._metrics)
        try:
            await writer.rebuild()
        except Exception as exc:
            log.warning("pair %s: rebuild failed (%s); lease given back", pair_id, exc)
            await lease.release()
            return
        owned = _Owned(
            pair_id, lease, writer, held_until=taken_at + self._lease_seconds, taken_at=taken_at
        )
        writer.start()
        self._owned[pair_id] = owned
        try:
            claimed = await self._router.claim(self.holder, pair_id)
        except Exception as exc:  # the next passes claim them (idle longer than the lease)
            log.warning("pair %s: claiming its unanswered commands failed: %s", pair_id, exc)
            claimed = []
        log.info(
            "pair %s: book taken (seq %s), %d unanswered commands claimed",
            pair_id,
            writer.snapshot()[0],
            len(claimed),
        )
        for delivery in claimed:
            self._serve_soon(owned, delivery)

    async def _claim_stale(self, owned: _Owned) -> None:
        """Commands of an owned pair left unanswered for longer than the lease: read by a
        previous owner that had lost the pair without knowing yet (it cannot commit them:
        its batches are fenced). Commands this host is serving are skipped."""
        if owned.lost or owned.leaving:
            return
        stale = await self._router.claim(
            self.holder, owned.pair_id, min_idle_seconds=self._lease_seconds
        )
        for delivery in stale:
            if delivery.delivery_id not in owned.in_flight:
                log.info(
                    "pair %s: command %s was left unanswered; serving it",
                    owned.pair_id,
                    delivery.command.request_id,
                )
                self._serve_soon(owned, delivery)

    def _mark_lost(self, pair_id: str) -> None:
        owned = self._owned.get(pair_id)
        if owned is not None:
            owned.lost = True

    async def _drop(self, pair_id: str, *, release: bool = False) -> None:
        owned = self._owned.pop(pair_id, None)
        if owned is None:
            return
        owned.lost = True  # from here no answer leaves for this pair: the next owner answers
        await owned.writer.stop()
        if release:
            with contextlib.suppress(Exception):
                await owned.lease.release()

    # -- commands --------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            pair_ids = self.owned
            try:
                deliveries = await self._router.receive(
                    self.holder,
                    pair_ids,
                    count=RECEIVE_BATCH,
                    block_seconds=RECEIVE_BLOCK_SECONDS,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("receiving engine commands failed: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(RECEIVE_BLOCK_SECONDS)
                continue
            for delivery in deliveries:
                owned = self._owned.get(delivery.command.pair_id)
                if owned is None or owned.lost or owned.leaving:
                    continue  # left pending: the pair's next owner claims it
                self._serve_soon(owned, delivery)

    def _serve_soon(self, owned: _Owned, delivery: Delivery) -> None:
        # tasks start in creation order, and a new command reaches the writer's queue before
        # its first suspension: the pair's commands are batched in the order they arrived
        owned.in_flight.add(delivery.delivery_id)
        task = asyncio.get_running_loop().create_task(self._serve(owned, delivery))
        owned.serving.add(task)

        def done(task: asyncio.Task[None]) -> None:
            owned.serving.discard(task)
            owned.in_flight.discard(delivery.delivery_id)

        task.add_done_callback(done)

    async def _serve(self, owned: _Owned, delivery: Delivery) -> None:
        command = delivery.command
        try:
            if self._clock.now() > command.deadline:
                reply = EngineReply(
                    command.request_id,
                    error=EngineUnavailable("the command expired before an engine took it"),
                )
            elif delivery.redelivered and (done := await self._already_done(owned, delivery)):
                log.info(
                    "pair %s: command %s was committed by the previous owner; answered from "
                    "storage",
                    owned.pair_id,
                    command.request_id,
                )
                reply = EngineReply(command.request_id, result=done)
            else:
                try:
                    result = await owned.writer.submit(command.request)
                    reply = EngineReply(command.request_id, result=result)
                except DomainError as error:
                    reply = EngineReply(command.request_id, error=error)
            if owned.lost:
                return  # the lease went while this was served: the next owner answers it
            await self._router.reply(delivery, reply)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pair %s: serving command %s failed", owned.pair_id, command.request_id)

    async def _already_done(self, owned: _Owned, delivery: Delivery) -> OrderResult | None:
        """What a previous owner committed for this command before it died, if anything."""
        request = delivery.command.request
        if isinstance(request, NewOrder):
            async with self._storage.unit_of_work(read_only=True) as uow:
                stored = await uow.orders.get(request.order.id)
            if stored is not None and stored.user_id == request.order.user_id:
                return OrderResult(stored)
        elif isinstance(request, CancelOrder):
            async with self._storage.unit_of_work(read_only=True) as uow:
                stored = await uow.orders.get(request.order_id)
            if stored is not None and stored.status is OrderStatus.CANCELLED:
                return OrderResult(stored)
        return None  # a pair change applies twice harmlessly (the same values)
