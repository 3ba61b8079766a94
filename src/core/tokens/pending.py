"""The shared head of the jobs that mirror a stored operation on chain (``mint-token``,
``process-transfer``, ``process-withdrawal``).

- ``resume_interrupted``: queue the job again for every operation still waiting for it: an
  in-process queue loses its jobs with the process, and the job follows any transaction it
  recorded before (``core.tokens.chain_mirror``), so a second job never sends twice.
- ``load``: the operation and its token, read in one read-only unit of work; ``None`` when
  either is gone or the operation is no longer waiting for its job (a redelivered or second
  job then does nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from core.ports.jobs import Job, JobQueue
from core.ports.operations import OperationRepository
from core.ports.storage import Storage, UnitOfWork
from core.tokens.model import Token
from core.tokens.operations import Mint, Transfer, Withdrawal

R = TypeVar("R", Mint, Transfer, Withdrawal)
RESUME_LIMIT = 1000


class PendingOperations(Generic[R]):
    def __init__(
        self,
        storage: Storage,
        jobs: JobQueue,
        *,
        records: Callable[[UnitOfWork], OperationRepository[R]],
        waiting: Callable[[UnitOfWork, int], Awaitable[list[R]]],
        job: Callable[[str], Job],
        is_waiting: Callable[[R], bool],
    ) -> None:
        """``records``: the unit of work's repository of these operations; ``waiting``: the
        operations still waiting for their job, oldest first, at most n; ``job``: the job of
        an operation id; ``is_waiting``: whether one operation still waits for it."""
        self._storage = storage
        self._jobs = jobs
        self._records: Callable[[UnitOfWork], OperationRepository[R]] = records
        self._waiting: Callable[[UnitOfWork, int], Awaitable[list[R]]] = waiting
        self._job = job
        self._is_waiting: Callable[[R], bool] = is_waiting

    async def resume_interrupted(self) -> int:
        """Queue the job again for every operation still waiting for it; how many."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            found = await self._waiting(uow, RESUME_LIMIT)
        for record in found:
            await self._jobs.enqueue(self._job(record.id))
        return len(found)

    async def load(self, record_id: str) -> tuple[R, Token] | None:
        """The operation and its token, if both exist and the operation still waits."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            record = await self._records(uow).get(record_id)
            token = None if record is None else await uow.tokens.get(record.token_id)
        if record is None or token is None or not self._is_waiting(record):
            return None
        return record, token
