"""Audit entries of market decisions, appended by ``MarketLifecycle.apply`` and registration in
the unit of work of the decision itself (see ``core.ports.audit``).

Actions: ``market.register``, then one per lifecycle transition, ``market.<action>``:
``submit``, ``approve``, ``reject``, ``start_activation`` (activation asked for, by approval or
by hand), ``complete_activation`` and ``fail_activation`` (the activation's outcome),
``pause``, ``resume``, ``archive``. ``before``/``after`` hold the status and every field the
transition changed (camelCase, times in ISO 8601), and ``after`` the decision and reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from core.markets.lifecycle import Action
from core.markets.model import Market
from core.ports.audit import AuditEntry, audit_entry
from core.shared.events import Actor

REGISTER_ACTION = "market.register"


def market_subject(market_id: str) -> str:
    return f"market:{market_id}"


def action_name(action: Action) -> str:
    return f"market.{action.value}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _fields(market: Market, names: Iterable[str]) -> dict[str, Any]:
    view: dict[str, Any] = {"status": market.status.value}
    for name in names:
        view[_camel(name)] = getattr(market, name)
    return view


def lifecycle_entry(
    actor: Actor,
    action: Action,
    before: Market,
    after: Market,
    *,
    changed: Iterable[str],
    at: datetime,
    decision: str | None = None,
    reason: str | None = None,
) -> AuditEntry:
    names = [name for name in changed if name not in ("status", "updated_at")]
    after_view = _fields(after, names)
    if decision is not None:
        after_view["decision"] = decision
    if reason is not None:
        after_view["reason"] = reason
    return audit_entry(
        actor,
        action_name(action),
        market_subject(after.id),
        before=_fields(before, names),
        after=after_view,
        at=at,
    )


def registration_entry(actor: Actor, market: Market, at: datetime) -> AuditEntry:
    return audit_entry(
        actor,
        REGISTER_ACTION,
        market_subject(market.id),
        before=None,
        after={
            "status": market.status.value,
            "name": market.name,
            "assetType": market.asset_type.value,
            "issuerId": market.issuer_id,
            "entityId": market.entity_id,
            "tokenSymbol": market.token_symbol,
            "tokenName": market.token_name,
            "totalSupply": str(market.total_supply),
        },
        at=at,
    )
