"""Token deployment: the ``deploy-token`` job, its retries with backoff, and its outcome.

One market, one contract (DESIGN §4): the deployment transaction is signed, recorded in
``deployment_transactions`` and committed, and only then sent. Every later attempt (a retry,
a redelivered job after a crash, a manual ``activate``) starts from that record: the receipt
if it was mined, the same signed bytes sent again if not. A new transaction is signed only
when the recorded one can never be mined (another transaction used its nonce) or reverted.
"""

from __future__ import annotations

import logging

import attrs

from core.markets.chain_state import ChainStateGuard, ChainStateMismatch
from core.markets.lifecycle import Action
from core.markets.model import Market, MarketStatus
from core.markets.use_cases import MarketLifecycle, load_market
from core.ports.chain import (
    Chain,
    DeployedToken,
    PreparedDeployment,
    SignedTransaction,
    TokenSpec,
    TransactionReceipt,
    deployed_token,
)
from core.ports.clock import Clock
from core.ports.deployments import DeploymentRecord, DeploymentState
from core.ports.jobs import DeployTokenJob, JobQueue
from core.ports.storage import MarketFilter, Storage
from core.shared.errors import ChainError, ConcurrentModification, Conflict, NotFound
from core.shared.events import Actor, DomainEvent
from core.shared.money import to_base_units

log = logging.getLogger(__name__)

WORKER = Actor.system("deploy-token-worker")
RESEND_LIMIT = 20  # unmined recorded transactions sent again before signing a new one
FINAL_STATES = frozenset(
    {DeploymentState.MINED, DeploymentState.FAILED, DeploymentState.SUPERSEDED}
)


@attrs.frozen
class RetryPolicy:
    """``max_attempts`` tries in all; the wait before try n+1 is ``base * factor**(n-1)``."""

    max_attempts: int = 5
    base_delay_seconds: float = 2.0
    factor: float = 2.0
    max_delay_seconds: float = 300.0

    def delay_after(self, attempt: int) -> float:
        delay = self.base_delay_seconds * self.factor ** (attempt - 1)
        return float(min(delay, self.max_delay_seconds))


class TokenDeployment:
    """Runs one attempt of a market's token deployment and records what came of it."""

    def __init__(
        self,
        storage: Storage,
        chain: Chain,
        jobs: JobQueue,
        clock: Clock,
        retry: RetryPolicy | None = None,
        guard: ChainStateGuard | None = None,
    ) -> None:
        self._storage = storage
        self._guard = guard
        self._chain = chain
        self._jobs = jobs
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._lifecycle = MarketLifecycle(clock)

    async def on_activation_started(self, event: DomainEvent) -> None:
        """Outbox reaction: a committed ``market.activation_started`` becomes a job."""
        await self._jobs.enqueue(DeployTokenJob(market_id=event.aggregate_id, attempt=1))

    async def resume_interrupted(self) -> int:
        """Re-enqueue the deployments of markets left ``activating`` (after a crash)."""
        count = 0
        before: str | None = None
        while True:
            async with self._storage.unit_of_work() as uow:
                page = await uow.markets.list(
                    MarketFilter(status=MarketStatus.ACTIVATING), limit=100, before_id=before
                )
            for market in page:
                attempt = min(market.activation_attempts + 1, self._retry.max_attempts)
                await self._jobs.enqueue(DeployTokenJob(market_id=market.id, attempt=attempt))
                count += 1
            if len(page) < 100:
                return count
            before = page[-1].id

    async def handle(self, job: DeployTokenJob) -> None:
        """The ``deploy-token`` job. Stale or duplicate jobs do nothing; a job whose market
        already has a recorded transaction follows that transaction (one market, one
        contract)."""
        async with self._storage.unit_of_work() as uow:
            try:
                market = await load_market(uow, job.market_id)
            except NotFound:
                log.warning("deploy-token: market %s does not exist", job.market_id)
                return
        if market.status is not MarketStatus.ACTIVATING:
            log.info("deploy-token: market %s is %s, nothing to do", market.id, market.status)
            return
        try:
            if self._guard is not None:
                await self._guard.ensure()
            deployed = await self._deploy(market)
        except Exception as exc:  # every failure counts as a failed attempt
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        for _ in range(3):  # a concurrent job for the same market may activate it first
            try:
                await self._activate(job, deployed)
                return
            except ConcurrentModification:
                continue

    async def _activate(self, job: DeployTokenJob, deployed: DeployedToken) -> None:
        async with self._storage.unit_of_work() as uow:
            current = await load_market(uow, job.market_id)
            if current.status is not MarketStatus.ACTIVATING:
                if current.contract_address != deployed.contract_address:
                    log.warning("deploy-token: market %s left activating meanwhile", current.id)
                return
            await self._lifecycle.apply(
                uow,
                current,
                Action.COMPLETE_ACTIVATION,
                WORKER,
                changes={
                    "contract_address": deployed.contract_address,
                    "deployment_tx_hash": deployed.tx_hash,
                    "activated_at": self._clock.now(),
                    "activation_attempts": job.attempt,
                    "activation_error": None,
                },
                metadata={
                    "contractAddress": deployed.contract_address,
                    "txHash": deployed.tx_hash,
                    "blockNumber": deployed.block_number,
                    "holder": deployed.holder,
                    "attempt": job.attempt,
                },
            )
            await uow.commit()

    # -- the transaction: recorded before it is sent ----------------------------------------

    async def _deploy(self, market: Market) -> DeployedToken:
        """The market's token: from its recorded transaction if there is one that can still
        be (or was) mined; otherwise from a new one, recorded before it is sent."""
        spec = TokenSpec(
            name=market.token_name,
            symbol=market.token_symbol,
            decimals=market.decimals,
            initial_supply=to_base_units(market.total_supply, market.decimals),
        )
        for _ in range(3):
            record = await self._open_record(market.id)
            if record is not None:
                log.info(
                    "deploy-token: market %s already has transaction %s (nonce %d, %s); "
                    "following it",
                    market.id,
                    record.tx_hash,
                    record.nonce,
                    record.state.value,
                )
                record, receipt = await self._follow(record)
                if receipt is not None:
                    return await self._settle(record, receipt)
            async with self._chain.signing_lock:
                if await self._open_record(market.id) is not None:
                    continue  # a concurrent job of this market recorded one meanwhile
                await self._resend_unmined(await self._chain.custody_address())
                prepared = await self._chain.prepare_deployment(spec)
                record = self._new_record(market.id, prepared)
                async with self._storage.unit_of_work() as uow:
                    await uow.deployments.add(record)
                    await uow.commit()
                await self._chain.send_raw_transaction(record.raw_transaction)
                record = await self._move(record, DeploymentState.SENT)
            receipt = await self._chain.wait_for_receipt(record.tx_hash)
            return await self._settle(record, receipt)
        raise ChainError(f"market {market.id}: its deployment record kept changing; retry later")

    async def _open_record(self, market_id: str) -> DeploymentRecord | None:
        async with self._storage.unit_of_work() as uow:
            return await uow.deployments.open_for_market(market_id)

    async def _follow(
        self, record: DeploymentRecord
    ) -> tuple[DeploymentRecord, TransactionReceipt | None]:
        """The receipt of a recorded transaction, sending its exact bytes again while it is
        not mined. None when it can never be mined (its nonce went to another transaction):
        then, and only then, a new one may be signed."""
        # read the nonce first: a receipt that appears in between must not look replaced
        confirmed = await self._chain.confirmed_nonce(record.signer)
        receipt = await self._chain.transaction_receipt(record.tx_hash)
        if receipt is not None:
            return record, receipt
        if record.state is DeploymentState.MINED:
            raise ChainStateMismatch(
                f"transaction {record.tx_hash} was recorded as mined in block "
                f"{record.block_number}, but the chain has no receipt for it"
            )
        if record.nonce < confirmed:
            await self._move(
                record,
                DeploymentState.SUPERSEDED,
                error=f"nonce {record.nonce} was used by another transaction",
            )
            log.warning(
                "deploy-token: transaction %s of market %s can never be mined (nonce %d used "
                "by another transaction); signing a new one",
                record.tx_hash,
                record.market_id,
                record.nonce,
            )
            return record, None
        async with self._chain.signing_lock:
            await self._chain.send_raw_transaction(record.raw_transaction)
        if record.state is DeploymentState.SIGNED:
            record = await self._move(record, DeploymentState.SENT)
        return record, await self._chain.wait_for_receipt(record.tx_hash)

    async def _resend_unmined(self, signer: str) -> None:
        """Send again the recorded, unmined transactions of ``signer`` (lowest nonce first)
        before signing a new one: a transaction recorded but never sent (a crash between
        the two) keeps its nonce, and a new one must not leave a gap behind it or take it."""
        async with self._storage.unit_of_work() as uow:
            waiting = await uow.deployments.unmined(signer, limit=RESEND_LIMIT)
        for record in waiting:
            confirmed = await self._chain.confirmed_nonce(record.signer)
            receipt = await self._chain.transaction_receipt(record.tx_hash)
            if receipt is not None:
                continue  # its own job settles it
            if record.nonce < confirmed:
                await self._move(
                    record,
                    DeploymentState.SUPERSEDED,
                    error=f"nonce {record.nonce} was used by another transaction",
                )
                continue
            try:
                await self._chain.send_raw_transaction(record.raw_transaction)
            except ChainError as exc:
                log.warning("deploy-token: could not resend %s: %s", record.tx_hash, exc)

    async def _settle(self, record: DeploymentRecord, receipt: TransactionReceipt) -> DeployedToken:
        """Mark the record mined (or failed, when it reverted) and name the token."""
        if not receipt.succeeded:
            await self._move(record, DeploymentState.FAILED, error="reverted (status 0)")
        prepared = PreparedDeployment(
            transaction=SignedTransaction(
                signer=record.signer,
                nonce=record.nonce,
                tx_hash=record.tx_hash,
                raw_transaction=record.raw_transaction,
                chain_id=record.chain_id,
            ),
            contract_address=record.contract_address,
            holder=record.holder,
        )
        deployed = deployed_token(prepared, receipt)  # ChainError if it reverted
        if record.state is not DeploymentState.MINED:
            await self._move(record, DeploymentState.MINED, block_number=receipt.block_number)
        return deployed

    def _new_record(self, market_id: str, prepared: PreparedDeployment) -> DeploymentRecord:
        now = self._clock.now()
        tx = prepared.transaction
        return DeploymentRecord(
            tx_hash=tx.tx_hash,
            market_id=market_id,
            chain_id=tx.chain_id,
            signer=tx.signer,
            nonce=tx.nonce,
            raw_transaction=tx.raw_transaction,
            contract_address=prepared.contract_address,
            holder=prepared.holder,
            state=DeploymentState.SIGNED,
            created_at=now,
            updated_at=now,
        )

    async def _move(
        self,
        record: DeploymentRecord,
        state: DeploymentState,
        *,
        block_number: int | None = None,
        error: str | None = None,
    ) -> DeploymentRecord:
        """Record a new state. If someone else moved the record meanwhile (a concurrent job
        of the same market), move it on from where they left it, unless it is already final
        or in the wanted state."""
        for _ in range(3):
            moved = attrs.evolve(
                record,
                state=state,
                block_number=block_number if block_number is not None else record.block_number,
                error=error,
                updated_at=self._clock.now(),
            )
            try:
                async with self._storage.unit_of_work() as uow:
                    await uow.deployments.update(moved, expected_state=record.state)
                    await uow.commit()
                return moved
            except Conflict:
                async with self._storage.unit_of_work() as uow:
                    current = await uow.deployments.get(record.tx_hash)
                if current is None or current.state is state or current.state in FINAL_STATES:
                    return current or moved
                record = current
        return record

    async def _failed(self, job: DeployTokenJob, error: str) -> None:
        final = job.attempt >= self._retry.max_attempts
        for _ in range(3):  # a concurrent change of the market is retried, then given up
            try:
                async with self._storage.unit_of_work() as uow:
                    market = await load_market(uow, job.market_id)
                    if market.status is not MarketStatus.ACTIVATING:
                        return
                    if final:
                        await self._lifecycle.apply(
                            uow,
                            market,
                            Action.FAIL_ACTIVATION,
                            WORKER,
                            changes={"activation_attempts": job.attempt, "activation_error": error},
                            reason=error,
                            metadata={"attempts": job.attempt},
                        )
                    else:
                        await uow.markets.save(
                            attrs.evolve(
                                market,
                                activation_attempts=job.attempt,
                                activation_error=error,
                                updated_at=self._clock.now(),
                            )
                        )
                    await uow.commit()
                break
            except ConcurrentModification:
                continue
        if not final:
            delay = self._retry.delay_after(job.attempt)
            log.warning(
                "deploy-token: market %s attempt %d failed (%s); retrying in %.1fs",
                job.market_id,
                job.attempt,
                error,
                delay,
            )
            await self._jobs.enqueue(
                DeployTokenJob(market_id=job.market_id, attempt=job.attempt + 1),
                delay_seconds=delay,
            )
        else:
            log.error(
                "deploy-token: market %s failed after %d attempts", job.market_id, job.attempt
            )
