"""Token deployment: the ``deploy-token`` job, its retries with backoff, and its outcome."""

from __future__ import annotations

import logging

import attrs

from core.markets.lifecycle import Action
from core.markets.model import MarketStatus
from core.markets.use_cases import MarketLifecycle, load_market
from core.ports.chain import Chain, TokenSpec
from core.ports.clock import Clock
from core.ports.jobs import DeployTokenJob, JobQueue
from core.ports.storage import MarketFilter, Storage
from core.shared.errors import ConcurrentModification, NotFound
from core.shared.events import Actor, DomainEvent
from core.shared.money import to_base_units

log = logging.getLogger(__name__)

WORKER = Actor.system("deploy-token-worker")


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
    ) -> None:
        self._storage = storage
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
        """The ``deploy-token`` job. Stale or duplicate jobs do nothing."""
        async with self._storage.unit_of_work() as uow:
            try:
                market = await load_market(uow, job.market_id)
            except NotFound:
                log.warning("deploy-token: market %s does not exist", job.market_id)
                return
        if market.status is not MarketStatus.ACTIVATING:
            log.info("deploy-token: market %s is %s, nothing to do", market.id, market.status)
            return
        spec = TokenSpec(
            name=market.token_name,
            symbol=market.token_symbol,
            decimals=market.decimals,
            initial_supply=to_base_units(market.total_supply, market.decimals),
        )
        try:
            deployed = await self._chain.deploy_token(spec)
        except Exception as exc:  # every failure counts as a failed attempt
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        async with self._storage.unit_of_work() as uow:
            current = await load_market(uow, job.market_id)
            if current.status is not MarketStatus.ACTIVATING:
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
