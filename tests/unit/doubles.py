"""Test doubles that live in tests only: a chain that always fails, a recording job queue."""

from __future__ import annotations

from adapters.outbound.chain.memory import MemoryChain
from core.ports.chain import PreparedDeployment, TokenSpec
from core.ports.jobs import Job, JobHandler, JobQueue
from core.shared.errors import ChainError


class FlakyChain(MemoryChain):
    """A memory chain whose next ``failures`` deployments fail before anything is signed,
    and whose next ``send_failures`` sends fail before the bytes reach the chain."""

    def __init__(self, failures: int = 0, *, auto_mine: bool = True) -> None:
        super().__init__(auto_mine=auto_mine)
        self.failures = failures
        self.send_failures = 0
        self.deploy_calls = 0

    async def prepare_deployment(self, spec: TokenSpec) -> PreparedDeployment:
        self.deploy_calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise ChainError("node unreachable (injected by the test)")
        return await super().prepare_deployment(spec)

    async def send_raw_transaction(self, raw_transaction: str) -> str:
        if self.send_failures > 0:
            self.send_failures -= 1
            raise ChainError("connection reset before the node got it (injected by the test)")
        return await super().send_raw_transaction(raw_transaction)


class RecordingJobQueue(JobQueue):
    """Keeps enqueued jobs so a test can run them by hand, one at a time."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Job, float]] = []

    def register(self, job_type: type[Job], handler: JobHandler) -> None:
        pass

    async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
        self.jobs.append((job, delay_seconds))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def join(self, timeout: float) -> None:
        pass
