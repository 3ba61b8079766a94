"""Private channels: fed by the authenticated user's own stream, ``user:<id>``.

The topic of a private subscription is the stream of the user the connection authenticated
as, never a stream the client names: one user never sees another's events.

``balances``: a snapshot of the user's balances from the ledger (exact whole-token strings),
then every ``balance.*`` event of the user's stream as an update with the event's ``seq`` and
data. After a gap the gateway sends a fresh snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.inbound.ws.channels import Channel
from adapters.inbound.ws.protocol import ClientError, SubscribeRequest
from adapters.inbound.ws.send_queue import Outgoing
from core.shared.events import Actor, DomainEvent
from core.tokens.use_cases import TokenBalance, TokenUseCases

BALANCE_EVENT_PREFIX = "balance."


def user_topic(actor: Actor | None) -> str:
    if actor is None:  # the gateway checks first; never a topic without a user
        raise ClientError("auth_required", "this channel needs an auth op first")
    return f"user:{actor.id}"


def balance_view(balance: TokenBalance) -> dict[str, Any]:
    return {
        "tokenId": balance.token.id,
        "symbol": balance.token.symbol,
        "available": balance.whole(balance.available),
        "locked": balance.whole(balance.locked),
        "total": balance.whole(balance.total),
    }


class BalancesChannel(Channel):
    name = "balances"
    private = True

    def __init__(self, tokens: TokenUseCases) -> None:
        self._tokens = tokens

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        return user_topic(actor)

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        if actor is None:
            raise ClientError("auth_required", "this channel needs an auth op first")
        balances = await self._tokens.balances(actor, actor.id)
        return {
            "type": "snapshot",
            "channel": self.name,
            "balances": [balance_view(b) for b in balances],
        }

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        if not event.type.startswith(BALANCE_EVENT_PREFIX):
            return None
        return Outgoing(
            {
                "type": "update",
                "channel": self.name,
                "stream": event.stream,
                "seq": event.seq,
                "event": event.type,
                "data": event.metadata,
                "at": event.occurred_at.isoformat(),
            }
        )
