"""``execute-blockchain-settlement``: the RWA leg of trades moved on chain in batches
(DESIGN §9).

The ledger is the hot-path truth: a trade moved the base token between users' ledger
accounts when it was committed. For an RWA token, whose balances live per user address on
chain, this job mirrors it: up to ``batch_size`` of a pair's ``PENDING`` trades become one
batch (a conditional change: a trade is in at most one batch, ever), and the batch's one
transaction, the token agent's ``batchForcedTransfer`` (each line from the seller's address
to the buyer's), is recorded before it is broadcast through ``RecordedTransactions`` under
the subject ``settlement:<batch id>``. Its outcome:

- mined: every trade of the batch ``SETTLED`` with the hash; the settlement lag (trade to
  confirmation) reported as ``settlement_lag("trade", ...)``;
- refused before it was recorded, or reverted (nothing moved): the trades ``FAILED`` with
  the reason; the same batch is tried again by the next run (a new transaction, the same
  trades);
- anything else (the chain cannot be reached, no receipt yet): the trades stay ``SENT`` and
  the next run follows the recorded transaction (never a second one while it may be mined).

The job is enqueued by the reaction to ``trade.executed`` and coalesces: one job settles
every pending trade of the pair, and while a job of a pair is queued (not yet started) in
this process another is not. A run that leaves a batch unsettled queues the job again after
``retry_seconds`` (doubling).

A base token without per-user addresses on chain (the stablecoin or a crypto token held in
the omnibus) has nothing to move: its trades are ``SETTLED`` without a transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import ClassVar

import attrs

from core.ports.chain import MAX_BATCH_TRANSFERS, ForcedTransfer
from core.ports.clock import Clock
from core.ports.jobs import Job, JobQueue
from core.ports.settlement import SettlementStatus
from core.ports.storage import Storage
from core.shared.errors import ChainError, ConcurrentModification
from core.shared.events import DomainEvent
from core.shared.ids import new_id
from core.tokens.chain_mirror import ChainMirror, Refused
from core.tokens.model import Token, TokenType
from core.trading.orders import Trade

log = logging.getLogger(__name__)

SETTLEMENT_STEP = "settle"
MAX_ROUNDS = 100  # batches one run sends at most (then it queues itself again)


def batch_subject(batch_id: str) -> str:
    return f"settlement:{batch_id}"


@attrs.frozen
class SettleTradesJob(Job):
    """Settle a pair's pending trades on chain (``core.trading.settlement``)."""

    name: ClassVar[str] = "execute-blockchain-settlement"
    pair_id: str
    attempt: int = 1


@attrs.frozen
class SettlementReport:
    settled: int = 0  # trades settled by this run
    failed: int = 0  # trades of batches that failed
    in_flight: int = 0  # trades of batches whose transaction may still be mined

    @property
    def unfinished(self) -> bool:
        return self.failed > 0 or self.in_flight > 0


def seller_and_buyer(trade: Trade) -> tuple[str, str]:
    if trade.taker_side == "BUY":
        return trade.maker_user_id, trade.taker_user_id
    return trade.taker_user_id, trade.maker_user_id


class TradeSettlement:
    def __init__(
        self,
        storage: Storage,
        mirror: ChainMirror,
        jobs: JobQueue,
        clock: Clock,
        *,
        batch_size: int = 50,
        retry_seconds: float = 30.0,
        max_attempts: int = 10,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_TRANSFERS:
            raise ValueError(f"batch_size must be in 1..{MAX_BATCH_TRANSFERS}")
        self._storage = storage
        self._mirror = mirror
        self._jobs = jobs
        self._clock = clock
        self._batch_size = batch_size
        self._retry_seconds = retry_seconds
        self._max_attempts = max_attempts
        self._queued: set[str] = set()  # pairs with a job queued in this process
        self._locks: dict[str, asyncio.Lock] = {}

    # -- the reaction to trade.executed ------------------------------------------------------

    async def on_trade_executed(self, event: DomainEvent) -> None:
        await self.request(event.aggregate_id)

    async def request(self, pair_id: str) -> None:
        """Queue the pair's job unless one is already queued and not started (coalescing).

        Only an in-process queue can tell when its job starts; with a durable queue (jobs
        run in worker processes) every request queues a job, and a job that finds nothing
        pending sends nothing."""
        if self._jobs.durable:
            await self._jobs.enqueue(SettleTradesJob(pair_id=pair_id))
            return
        if pair_id in self._queued:
            return
        self._queued.add(pair_id)
        try:
            await self._jobs.enqueue(SettleTradesJob(pair_id=pair_id))
        except BaseException:
            self._queued.discard(pair_id)
            raise

    async def resume(self) -> int:
        """Queue the job of every pair with trades not yet settled (after a restart)."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            pairs = await uow.pairs.list()
            waiting = [
                p.id
                for p in pairs
                if await uow.settlements.pending(p.id, limit=1)
                or await uow.settlements.unfinished_batches(p.id)
            ]
        for pair_id in waiting:
            await self.request(pair_id)
        return len(waiting)

    # -- the job -----------------------------------------------------------------------------

    async def handle(self, job: SettleTradesJob) -> None:
        self._queued.discard(job.pair_id)
        report = await self.settle_pair(job.pair_id)
        if report.unfinished and self._retry_seconds > 0:
            if job.attempt >= self._max_attempts:
                log.error(
                    "settlement of pair %s still unfinished after %d attempts (%d failed, "
                    "%d in flight); the next trade or a restart tries again",
                    job.pair_id,
                    job.attempt,
                    report.failed,
                    report.in_flight,
                )
                return
            delay = self._retry_seconds * min(2 ** (job.attempt - 1), 16)
            # not coalesced: a new trade meanwhile queues its own job at once
            await self._jobs.enqueue(
                SettleTradesJob(pair_id=job.pair_id, attempt=job.attempt + 1), delay_seconds=delay
            )

    async def settle_pair(self, pair_id: str) -> SettlementReport:
        """Follow or retry the pair's unfinished batches, then settle its pending trades."""
        lock = self._locks.setdefault(pair_id, asyncio.Lock())
        async with lock:
            async with self._storage.unit_of_work(read_only=True) as uow:
                pair = await uow.pairs.get(pair_id)
                token = None if pair is None else await uow.tokens.get(pair.base_token_id)
                unfinished = await uow.settlements.unfinished_batches(pair_id)
            if pair is None or token is None:
                return SettlementReport()
            report = SettlementReport()
            for batch_id in unfinished:
                report = _add(report, await self._run_batch(token, batch_id))
            for _ in range(MAX_ROUNDS):
                claimed = await self._claim(pair_id)
                if claimed is None:
                    break
                report = _add(report, await self._run_batch(token, claimed))
                if report.in_flight:
                    break  # the chain is not answering: leave the rest for the retry
            return report

    async def _claim(self, pair_id: str) -> str | None:
        for _ in range(3):
            try:
                async with self._storage.unit_of_work() as uow:
                    trades = await uow.settlements.pending(pair_id, limit=self._batch_size)
                    if not trades:
                        return None
                    batch_id = new_id()
                    await uow.settlements.claim([t.id for t in trades], batch_id, self._now())
                    await uow.commit()
                    return batch_id
            except ConcurrentModification:
                continue  # another job took some of them: read again
        return None

    async def _run_batch(self, token: Token, batch_id: str) -> SettlementReport:
        async with self._storage.unit_of_work(read_only=True) as uow:
            trades = await uow.settlements.batch(batch_id)
        if not trades:
            return SettlementReport()
        if token.type is not TokenType.RWA:
            await self._mark(batch_id, SettlementStatus.SETTLED)  # nothing held per address
            return SettlementReport(settled=len(trades))
        contract = token.contract_address
        try:
            if contract is None:
                raise Refused(f"token {token.symbol} has no contract on chain")
            lines: list[ForcedTransfer] = []
            for trade in trades:
                seller, buyer = seller_and_buyer(trade)
                lines.append(
                    ForcedTransfer(
                        sender=await self._mirror.user_address(seller),
                        receiver=await self._mirror.user_address(buyer),
                        amount=trade.quantity,
                    )
                )
            receipt = await self._mirror.send_once(
                batch_subject(batch_id),
                lambda: self._mirror.chain.prepare_batch_forced_transfer(contract, lines),
            )
        except Refused as exc:
            log.warning("settlement batch %s failed: %s", batch_id, exc.reason)
            await self._mark(batch_id, SettlementStatus.FAILED, error=exc.reason)
            return SettlementReport(failed=len(trades))
        except ChainError as exc:
            in_flight = await self._mirror.in_flight(batch_subject(batch_id))
            log.warning("settlement batch %s not confirmed yet: %s", batch_id, exc)
            await self._mark(batch_id, SettlementStatus.SENT, tx_hash=in_flight)
            return SettlementReport(in_flight=len(trades))
        await self._mark(batch_id, SettlementStatus.SETTLED, tx_hash=receipt.tx_hash)
        for trade in trades:
            self._mirror.settled("trade", trade.created_at)
        return SettlementReport(settled=len(trades))

    async def _mark(
        self,
        batch_id: str,
        status: SettlementStatus,
        *,
        tx_hash: str | None = None,
        error: str | None = None,
    ) -> None:
        async with self._storage.unit_of_work() as uow:
            await uow.settlements.mark(batch_id, status, self._now(), tx_hash=tx_hash, error=error)
            await uow.commit()

    def _now(self) -> datetime:
        return self._clock.now()


def _add(a: SettlementReport, b: SettlementReport) -> SettlementReport:
    return SettlementReport(a.settled + b.settled, a.failed + b.failed, a.in_flight + b.in_flight)
