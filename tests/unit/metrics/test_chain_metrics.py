"""Settlement lag of a mint (ledger commit to confirmed transaction) and reconciliation drift
per token, on the memory chain and storage, through the metrics port's memory adapter."""

from __future__ import annotations

from adapters.outbound.custody.hd_keys import BipUtilsKeyDerivation
from adapters.outbound.jobs.memory import MemoryJobQueue
from adapters.outbound.metrics.memory import MemoryMetrics
from adapters.outbound.permissions.local import LocalPolicyPermissions
from core.ports.jobs import Job
from core.shared.authorization import Authorizer
from core.tokens.chain_mirror import ChainMirror
from core.tokens.jobs import MintTokenJob
from core.tokens.mint import MintUseCases
from core.tokens.operations import OperationStatus
from core.tokens.reconcile import Reconciliation
from settings import DEV_CUSTODY_MNEMONIC
from tests.unit.test_token_operations import (  # the fixture and its helpers
    ADMIN,
    Env,
    StepClock,
    _outside_transfer,
    env,
)

__all__ = ["env"]


class Held(MemoryJobQueue):
    """Keeps enqueued jobs for the test to run."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Job] = []

    async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
        self.held.append(job)


async def test_a_confirmed_mint_reports_its_settlement_lag(env: Env) -> None:
    metrics = MemoryMetrics()
    clock = StepClock()  # every reading 1 ms later
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    mirror = ChainMirror(env.storage, env.chain, clock, keys, metrics=metrics)
    jobs = Held()
    mints = MintUseCases(env.storage, Authorizer(LocalPolicyPermissions()), clock, jobs, mirror)
    mint = await mints.request(ADMIN, "USDC", "lag-1", "alice", "3")
    assert metrics.settlement == {}  # not on chain yet
    [job] = jobs.held
    assert isinstance(job, MintTokenJob)
    await mints.handle(job)
    done = await mints.get(ADMIN, "USDC", mint.id)
    assert done.status is OperationStatus.COMPLETED
    [lag] = metrics.settlement["mint"]
    assert 0 < lag < 1  # a few clock steps of 1 ms


async def test_reconciliation_sets_each_tokens_drift(env: Env) -> None:
    metrics = MemoryMetrics()
    keys = BipUtilsKeyDerivation(DEV_CUSTODY_MNEMONIC)
    reconciliation = Reconciliation(env.storage, env.chain, StepClock(), keys, metrics=metrics)
    await env.mint("alice", env.usdc, "10", "k")
    await reconciliation.run()
    assert metrics.drift == {"USDC": 0, "GOLD": 0}
    omnibus = await env.chain.custody_address()
    await _outside_transfer(env, omnibus, 3)  # on chain in the omnibus, not in the ledger
    await reconciliation.run()
    assert metrics.drift == {"USDC": 3, "GOLD": 0}
