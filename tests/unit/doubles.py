"""Test doubles that live in tests only: a chain that always fails, a recording job queue."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.outbound.chain.memory import MemoryChain
from core.ports.chain import PreparedTransaction, SuiteSpec
from core.ports.jobs import Job, JobHandler, JobQueue
from core.shared.errors import ChainError


class FlakyChain(MemoryChain):
    """A memory chain whose next ``failures`` suite steps fail before anything is signed,
    and whose next ``send_failures`` sends fail before the bytes reach the chain.

    ``signed``: every suite step signed, in order (a step signed twice was deployed twice)."""

    def __init__(self, failures: int = 0, *, auto_mine: bool = True) -> None:
        super().__init__(auto_mine=auto_mine)
        self.failures = failures
        self.send_failures = 0
        self.signed: list[str] = []
        self.attempts: list[str] = []  # every step asked for, failed ones included
        self.fail_send_of: str | None = None  # the next send of this step fails once
        self._step_of: dict[str, str] = {}

    @property
    def deploy_calls(self) -> int:
        """How many times a suite deployment was started: its first step asked for, failed
        attempts included."""
        return self.attempts.count("storage")

    async def prepare_suite_step(
        self, spec: SuiteSpec, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        self.attempts.append(step)
        if self.failures > 0:
            self.failures -= 1
            raise ChainError("node unreachable (injected by the test)")
        prepared = await super().prepare_suite_step(spec, step, created)
        self.signed.append(step)
        self._step_of[prepared.transaction.raw_transaction] = step
        return prepared

    async def send_raw_transaction(self, raw_transaction: str) -> str:
        if self.fail_send_of is not None and self._step_of.get(raw_transaction) == (
            self.fail_send_of
        ):
            self.fail_send_of = None
            raise ChainError("the process died before the node got it (injected by the test)")
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
