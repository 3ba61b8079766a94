"""Private channels: fed by the authenticated user's own stream, ``user:<id>``.

The topic of a private subscription is the stream of the user the connection authenticated
as, never a stream the client names: one user never sees another's events.

``balances``: a snapshot of the user's balances from the ledger (exact whole-token strings),
then an update per token whose balance changed, read again after each ``balance.changed``
notice that names the user. After a gap the gateway sends a fresh snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.inbound.ws.channels import Channel, Publish
from adapters.inbound.ws.live import LiveValue
from adapters.inbound.ws.protocol import ClientError, SubscribeRequest
from adapters.inbound.ws.send_queue import Outgoing
from core.ledger.notices import BALANCE_CHANGED
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


def merge_balance(older: Mapping[str, Any], newer: Mapping[str, Any]) -> Mapping[str, Any]:
    """A newer balance of a token replaces an older one; ``fromSeq`` keeps the first merged."""
    return {**newer, "fromSeq": older.get("fromSeq", older["seq"])}


class BalancesValue(LiveValue):
    """One user's balances, read from the ledger; an update per token that changed."""

    def __init__(self, tokens: TokenUseCases, actor: Actor, **kw: Any) -> None:
        super().__init__(SubscribeRequest(channel="balances"), **kw)
        self.actor = actor
        self._tokens = tokens
        self._balances: dict[str, dict[str, Any]] = {}

    async def read(self) -> list[Mapping[str, Any]]:
        views = [balance_view(b) for b in await self._tokens.balances(self.actor, self.actor.id)]
        changed = [v for v in views if self._balances.get(v["tokenId"]) != v]
        self._balances = {v["tokenId"]: v for v in views}
        # ``event`` and ``data`` keep the channel's first update shape (clients read
        # ``data.tokenId``, ``data.available``...); ``balance`` is the same object
        return [
            {
                "type": "update",
                "channel": "balances",
                "event": BALANCE_CHANGED,
                "balance": v,
                "data": v,
            }
            for v in changed
        ]

    def snapshot_payload(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "channel": "balances",
            "balances": list(self._balances.values()),
        }

    def outgoing(self, payload: Mapping[str, Any]) -> Outgoing:
        return Outgoing(
            payload, key=("balances", payload["balance"]["tokenId"]), merge=merge_balance
        )


class BalancesChannel(Channel):
    """The authenticated user's balances: a snapshot from the ledger, then an update for each
    token whose available or locked changed, read again after every ``balance.changed``
    notice naming the user (``core.ledger.notices``) and every ``balance.*`` event of the
    user's stream. One value per user, shared by that user's connections only."""

    name = "balances"
    private = True
    sequenced = True
    observes_all = True

    def __init__(self, tokens: TokenUseCases) -> None:
        self._tokens = tokens
        self._values: dict[str, BalancesValue] = {}
        self._publish: Publish | None = None

    def bind(self, publish: Publish) -> None:
        self._publish = publish

    @property
    def watched_users(self) -> list[str]:
        """The users with a live ``balances`` subscription in this process."""
        return sorted(self._values)

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        return user_topic(actor)

    def _value(self, actor: Actor) -> BalancesValue:
        found = self._values.get(actor.id)
        if found is None:
            topic = user_topic(actor)

            def deliver(message: Outgoing) -> None:
                if self._publish is not None:
                    self._publish(topic, self, SubscribeRequest(channel=self.name), message)

            found = self._values[actor.id] = BalancesValue(self._tokens, actor, deliver=deliver)
        found.actor = actor
        return found

    def attached(self, request: SubscribeRequest, actor: Actor | None) -> None:
        if actor is not None:
            self._value(actor).attached()

    def detached(self, request: SubscribeRequest, actor: Actor | None) -> None:
        value = self._values.get(actor.id) if actor is not None else None
        if value is not None:
            value.detached()
            if value.subscribers == 0:
                del self._values[actor.id]  # type: ignore[union-attr]

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        if actor is None:
            raise ClientError("auth_required", "this channel needs an auth op first")
        return await self._value(actor).snapshot()

    def observe(self, event: DomainEvent) -> None:
        if event.type == BALANCE_CHANGED:
            users = event.metadata.get("userIds")
            for user in users if isinstance(users, list) else ():
                value = self._values.get(user) if isinstance(user, str) else None
                if value is not None:
                    value.trigger()
        elif event.type.startswith(BALANCE_EVENT_PREFIX) and event.stream.startswith("user:"):
            value = self._values.get(event.stream.removeprefix("user:"))
            if value is not None:
                value.trigger()

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        return None  # the user's value sends its own updates once it has read them
