"""Domain objects to JSON: camelCase keys, decimal strings, ISO-8601 UTC times. No floats.

Free-form JSON (an asset's ``attributes`` and ``regulatoryInfo``, an event's ``metadata``) is
passed through untouched: its ``Decimal`` numbers are written by the app's exact JSON
provider as the numbers the client sent, not as strings.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from core.markets.model import ComplianceDocument, Market, MarketAsset
from core.shared.events import DomainEvent
from core.shared.money import format_decimal


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(Decimal, format_decimal)
    conv.register_unstructure_hook(datetime, _iso)
    conv.register_unstructure_hook(enum.Enum, lambda e: e.value)

    def camel_hook(cls: type) -> Any:
        attrs.resolve_types(cls)
        overrides: dict[str, Any] = {
            a.name: override(rename=to_camel(a.name), unstruct_hook=_free_json)
            if a.type == dict[str, Any]
            else override(rename=to_camel(a.name))
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **overrides)

    conv.register_unstructure_hook_factory(attrs.has, camel_hook)
    return conv


def _free_json(value: dict[str, Any]) -> dict[str, Any]:
    return value


converter = _make_converter()


def dump(value: Any) -> Any:
    return converter.unstructure(value)


def dump_market(market: Market) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(market)
    # Supplies are exact integers that may exceed 2**53: send them as strings.
    data["totalSupply"] = str(market.total_supply)
    data["totalSupplyBaseUnits"] = str(market.total_supply * 10**market.decimals)
    return data


def dump_asset(asset: MarketAsset) -> dict[str, Any]:
    """An asset: ``{id, marketId, valuation, currency, location, description,
    complianceDocuments (ids or objects, as sent), regulatoryInfo, attributes}``."""
    data: dict[str, Any] = converter.unstructure(asset)
    data["complianceDocuments"] = [
        converter.unstructure(d) if isinstance(d, ComplianceDocument) else d
        for d in asset.compliance_documents
    ]
    return data


def dump_event(event: DomainEvent) -> dict[str, Any]:
    """An event as the seeds show it: ``{id, marketId, eventType, actorId, actorType,
    decision, reason, metadata, createdAt}``."""
    return {
        "id": event.id,
        "marketId": event.aggregate_id,
        "eventType": event.type,
        "actorId": event.actor_id,
        "actorType": event.actor_type,
        "decision": event.decision,
        "reason": event.reason,
        "metadata": event.metadata,
        "createdAt": _iso(event.occurred_at),
    }
