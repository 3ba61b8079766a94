"""Jobs port: background work that survives the request that asked for it."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import attrs


@attrs.frozen
class Job:
    """Base of job payloads. Subclasses set ``name``, the task name brokers route on."""

    name: ClassVar[str] = ""


@attrs.frozen
class DeployTokenJob(Job):
    name: ClassVar[str] = "deploy-token"
    market_id: str
    attempt: int = 1


@attrs.frozen
class TokenPauseJob(Job):
    """Pause (or unpause) a market's token on chain after its lifecycle event."""

    name: ClassVar[str] = "token-pause"
    market_id: str
    event_id: str
    paused: bool


JobHandler = Callable[[Any], Awaitable[None]]


class JobQueue(abc.ABC):
    """Runs each enqueued job once through the handler registered for its type."""

    @property
    def durable(self) -> bool:
        """Whether queued jobs survive a restart of this process."""
        return False

    @abc.abstractmethod
    def register(self, job_type: type[Job], handler: JobHandler) -> None: ...

    @abc.abstractmethod
    async def enqueue(self, job: Job, *, delay_seconds: float = 0.0) -> None:
        """Queue ``job``; with a delay it runs no earlier than that many seconds from now."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def join(self, timeout: float) -> None:
        """Wait until no job is queued, delayed or running (tests and shutdown)."""

    async def ping(self) -> None:  # noqa: B027 - in-process queues are always reachable
        """Raise if the broker cannot be reached."""

    async def depth(self) -> int | None:
        """Jobs queued, delayed or running (in every process for a shared broker); None when
        the queue cannot tell."""
        return None
