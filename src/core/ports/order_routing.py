"""Order routing port: commands for a pair's book carried to the engine that owns the pair.

On the production profile no API process owns a book. ``request`` puts a command (a new order,
a cancel, a change of the pair) on the pair's queue and waits for the owning engine's reply;
the engine side ``receive``s the commands of the pairs it owns, ``claim``s the ones a dead
owner left unanswered, and ``reply``s (which also acknowledges the command: it is never
delivered again). A command stays queued, durable, until some owner replies to it.

Delivery is at least once: a command whose owner died between its commit and its reply is
delivered again (``redelivered``) to the next owner, which must answer it without applying it
twice (the order's id is chosen before the command is sent, and stored with the order).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

import attrs

from core.shared.errors import DomainError, ServiceUnavailable
from core.trading.pairs import Pair
from core.trading.writer import OrderResult, Request


class EngineUnavailable(ServiceUnavailable):
    """No engine answered the command in time (503 ``engine_unavailable``)."""

    code = "engine_unavailable"


@attrs.frozen
class EngineCommand:
    """One request for a pair's writer. ``deadline``: an engine that receives the command
    later refuses it without applying it (the requester has stopped waiting)."""

    request_id: str
    pair_id: str
    request: Request
    deadline: datetime


@attrs.frozen
class EngineReply:
    """The writer's answer: a result (an order, or the changed pair) or a domain error."""

    request_id: str
    result: OrderResult | Pair | None = None
    error: DomainError | None = None

    def unwrap(self) -> OrderResult | Pair:
        """The result, or the error raised."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@attrs.frozen
class Delivery:
    """A command handed to one engine. ``redelivered``: another consumer had it before (it
    may have been applied already)."""

    command: EngineCommand
    delivery_id: str
    reply_to: str
    redelivered: bool = False


class OrderRouter(abc.ABC):
    """Commands to the owner of a pair's book, and the owner's replies."""

    # -- the API side ------------------------------------------------------------------------

    @abc.abstractmethod
    async def request(self, command: EngineCommand, *, timeout: float) -> EngineReply:
        """Queue ``command`` for its pair's owner and wait for the reply;
        ``EngineUnavailable`` after ``timeout`` seconds without one (the command stays queued
        until its deadline)."""

    # -- the engine side ---------------------------------------------------------------------

    @abc.abstractmethod
    async def receive(
        self, consumer: str, pair_ids: Sequence[str], *, count: int, block_seconds: float
    ) -> list[Delivery]:
        """Commands never delivered before, of ``pair_ids``, oldest first per pair; waits up
        to ``block_seconds`` when there are none (an empty list then)."""

    @abc.abstractmethod
    async def claim(
        self, consumer: str, pair_id: str, *, min_idle_seconds: float = 0.0
    ) -> list[Delivery]:
        """Every command of ``pair_id`` delivered at least ``min_idle_seconds`` ago and not
        replied to (a previous owner's, or one a stale consumer read after it lost the
        pair), now ``consumer``'s; oldest first, each ``redelivered``."""

    @abc.abstractmethod
    async def reply(self, delivery: Delivery, reply: EngineReply) -> None:
        """Send ``reply`` to the requester and acknowledge the command (never delivered
        again). A requester that stopped waiting drops the reply."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; pending ``request`` calls fail."""
