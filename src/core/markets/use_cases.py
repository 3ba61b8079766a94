"""Market use cases: register, decide, activate, pause, resume, archive.

Every change loads the market, applies one transition of the lifecycle table, and stores the
market and its events in one unit of work, so the audit trail and the outbox never disagree
with the state. Approval does not call the job queue directly: the outbox relay turns the
committed ``market.activation_started`` event into a ``deploy-token`` job (see
``core.markets.deployment``), so a crash between commit and enqueue loses nothing.
"""

from __future__ import annotations

from typing import Any

import attrs

from core.markets.audit import lifecycle_entry, registration_entry
from core.markets.lifecycle import REGISTERED_EVENT, Action, transition_for
from core.markets.model import Market, MarketAsset, MarketStatus
from core.markets.registration import RegisterMarket, validate_registration
from core.ports.clock import Clock
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import Authorizer
from core.shared.errors import DuplicateSymbol, NotFound, PermissionDenied, ValidationFailed
from core.shared.events import Actor, DomainEvent
from core.shared.ids import new_id
from core.shared.roles import roles_allow_any
from core.shared.text import TextError, clean_optional

DECISIONS = ("approve", "reject")


async def load_market(uow: UnitOfWork, market_id: str) -> Market:
    market = await uow.markets.get(market_id)
    if market is None:
        raise NotFound(f"market {market_id} not found", details={"marketId": market_id})
    return market


MAX_REASON_CHARS = 2000


def clean_reason(reason: str | None) -> str | None:
    """A reason by the text rules (multi-line, at most ``MAX_REASON_CHARS``), NFC-normalised."""
    try:
        return clean_optional(reason, max_length=MAX_REASON_CHARS, multiline=True)
    except TextError as exc:
        raise ValidationFailed("the reason is invalid", fields={"reason": str(exc)}) from exc


def clean_entity_id(entity_id: str | None) -> str | None:
    try:
        return clean_optional(entity_id, max_length=200)
    except TextError as exc:
        raise ValidationFailed("the entity id is invalid", fields={"entityId": str(exc)}) from exc


def make_event(
    event_type: str,
    market: Market,
    actor: Actor,
    at: Any,
    *,
    decision: str | None = None,
    reason: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> DomainEvent:
    meta = {"status": market.status.value, "tokenSymbol": market.token_symbol}
    meta.update(metadata or {})
    return DomainEvent(
        type=event_type,
        aggregate_id=market.id,
        actor_id=actor.id,
        actor_type=actor.type,
        occurred_at=at,
        decision=decision,
        reason=reason,
        metadata=meta,
    )


class MarketLifecycle:
    """Applies lifecycle transitions and stores them with their events."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def apply(
        self,
        uow: UnitOfWork,
        market: Market,
        action: Action,
        actor: Actor,
        *,
        changes: dict[str, Any] | None = None,
        decision: str | None = None,
        reason: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Market:
        """Apply ``action`` to ``market`` inside ``uow`` (not committed here)."""
        transition = transition_for(market.status, action)
        now = self._clock.now()
        changed = attrs.evolve(market, status=transition.target, updated_at=now, **(changes or {}))
        saved = await uow.markets.save(changed)
        await uow.events.append(
            [
                make_event(
                    transition.event_type,
                    saved,
                    actor,
                    now,
                    decision=decision,
                    reason=reason,
                    metadata={"from": market.status.value, **(metadata or {})},
                )
            ]
        )
        await uow.audit.append(
            lifecycle_entry(
                actor,
                action,
                market,
                saved,
                changed=changes or {},
                at=now,
                decision=decision,
                reason=reason,
            )
        )
        return saved


class MarketUseCases:
    """What issuers and admins (or the Entity Permissions Core) do to markets."""

    def __init__(
        self,
        storage: Storage,
        authorizer: Authorizer,
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._auth = authorizer
        self._clock = clock
        self._lifecycle = MarketLifecycle(clock)

    async def register(self, actor: Actor, cmd: RegisterMarket) -> Market:
        """Create a market and ask for approval at once: ``pending_approval``."""
        market, _ = await self.register_with_asset(actor, cmd)
        return market

    async def register_with_asset(
        self, actor: Actor, cmd: RegisterMarket
    ) -> tuple[Market, MarketAsset]:
        """``register``, answering the market and its asset as stored.

        Order: the body's rules (422), then ``issuerId`` (403 unless it is the caller or the
        caller's roles may register for any issuer), then the permissions port (403).
        """
        valid = validate_registration(cmd)
        cmd = valid.command
        issuer_id = cmd.issuer_id if cmd.issuer_id is not None else actor.id
        if issuer_id != actor.id and not roles_allow_any(
            actor.roles, ("market.register_for_issuer",)
        ):
            raise PermissionDenied(
                "market.register",
                ("issuerId must be the caller's own id; only an admin registers for another",),
            )
        await self._auth.require(actor, "market.register", entity_id=cmd.entity_id)
        now = self._clock.now()
        market = Market(
            id=new_id(),
            name=cmd.name,
            description=cmd.description,
            asset_type=valid.asset_type,
            issuer_id=issuer_id,
            entity_id=cmd.entity_id if cmd.entity_id is not None else actor.entity_id,
            token_symbol=cmd.token_symbol,
            token_name=cmd.token_name,
            total_supply=valid.total_supply,
            tick_size=valid.tick_size,
            lot_size=valid.lot_size,
            maker_fee_bps=cmd.maker_fee_bps,
            taker_fee_bps=cmd.taker_fee_bps,
            accredited_investors_only=valid.accredited_investors_only,
            allowed_countries=cmd.allowed_countries,
            status=MarketStatus.DRAFT,
            created_at=now,
            updated_at=now,
        )
        asset = MarketAsset(
            market_id=market.id,
            valuation=valid.valuation,
            currency=cmd.currency,
            location=cmd.location,
            description=cmd.asset_description,
            compliance_documents=cmd.compliance_documents,
            regulatory_info=dict(cmd.regulatory_info),
            attributes=dict(cmd.attributes),
        )
        async with self._storage.unit_of_work() as uow:
            if await uow.markets.live_symbol_taken(market.token_symbol):
                raise DuplicateSymbol(market.token_symbol)
            await uow.markets.add(market, asset)
            await uow.audit.append(registration_entry(actor, market, now))
            await uow.events.append(
                [
                    make_event(
                        REGISTERED_EVENT,
                        market,
                        actor,
                        now,
                        metadata={"assetType": market.asset_type.value},
                    )
                ]
            )
            pending = await self._lifecycle.apply(uow, market, Action.SUBMIT, actor)
            await uow.commit()
        return pending, asset

    async def decide(
        self,
        actor: Actor,
        market_id: str,
        decision: str,
        *,
        reason: str | None = None,
        entity_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Market:
        """Approve (which starts activation by itself) or reject a pending market."""
        async with self._storage.unit_of_work() as uow:
            result = await self.decide_in(
                uow,
                actor,
                market_id,
                decision,
                reason=reason,
                entity_id=entity_id,
                metadata=metadata,
            )
            await uow.commit()
        return result

    async def decide_in(
        self,
        uow: UnitOfWork,
        actor: Actor,
        market_id: str,
        decision: str,
        *,
        reason: str | None = None,
        entity_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Market:
        """``decide`` inside the caller's open unit of work, which the caller commits.

        Callers that must record something atomically with the decision (the Entity
        Permissions Core's events and their ``processed_events`` row) use this.
        """
        if decision not in DECISIONS:
            raise ValidationFailed(
                "decision must be approve or reject",
                fields={"decision": "must be one of: approve, reject"},
            )
        reason = clean_reason(reason)
        entity_id = clean_entity_id(entity_id)
        if decision == "reject" and not (reason and reason.strip()):
            raise ValidationFailed(
                "a rejection needs a reason", fields={"reason": "is required to reject"}
            )
        action_name = "market.approve" if decision == "approve" else "market.reject"
        market = await load_market(uow, market_id)
        await self._auth.require(actor, action_name, entity_id=entity_id or market.entity_id)
        now = self._clock.now()
        extra = dict(metadata or {})
        if entity_id:
            extra["entityId"] = entity_id
        if decision == "reject":
            return await self._lifecycle.apply(
                uow,
                market,
                Action.REJECT,
                actor,
                changes={
                    "rejected_by": actor.id,
                    "rejected_at": now,
                    "rejected_reason": reason,
                },
                decision=decision,
                reason=reason,
                metadata=extra,
            )
        approved = await self._lifecycle.apply(
            uow,
            market,
            Action.APPROVE,
            actor,
            changes={"approved_by": actor.id, "approved_at": now},
            decision=decision,
            reason=reason,
            metadata=extra,
        )
        return await self._start_activation(uow, approved, actor)

    async def activate(self, actor: Actor, market_id: str) -> Market:
        """Start (or retry by hand) the token deployment of an approved market."""
        async with self._storage.unit_of_work() as uow:
            market = await load_market(uow, market_id)
            await self._auth.require(
                actor, "market.activate", entity_id=market.entity_id, owner_id=market.issuer_id
            )
            result = await self._start_activation(uow, market, actor, manual=True)
            await uow.commit()
        return result

    async def _start_activation(
        self, uow: UnitOfWork, market: Market, actor: Actor, *, manual: bool = False
    ) -> Market:
        return await self._lifecycle.apply(
            uow,
            market,
            Action.START_ACTIVATION,
            actor,
            changes={"activation_attempts": 0, "activation_error": None},
            metadata={"manual": manual},
        )

    async def pause(self, actor: Actor, market_id: str, reason: str | None = None) -> Market:
        return await self._simple(actor, market_id, Action.PAUSE, "market.pause", reason)

    async def resume(self, actor: Actor, market_id: str, reason: str | None = None) -> Market:
        return await self._simple(actor, market_id, Action.RESUME, "market.resume", reason)

    async def archive(self, actor: Actor, market_id: str, reason: str | None = None) -> Market:
        return await self._simple(actor, market_id, Action.ARCHIVE, "market.archive", reason)

    async def _simple(
        self, actor: Actor, market_id: str, action: Action, permission: str, reason: str | None
    ) -> Market:
        reason = clean_reason(reason)
        async with self._storage.unit_of_work() as uow:
            market = await load_market(uow, market_id)
            await self._auth.require(actor, permission, entity_id=market.entity_id)
            result = await self._lifecycle.apply(uow, market, action, actor, reason=reason)
            await uow.commit()
        return result
