"""cattrs at the SQL edge: domain attrs objects to row dicts and back."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import cattrs

from core.markets.model import ComplianceDocument, ComplianceDocumentRef, Market, MarketAsset
from core.shared.events import DomainEvent

converter = cattrs.Converter()
# The column types already produce exact Decimals and aware datetimes; pass them through.
converter.register_unstructure_hook(Decimal, lambda value: value)
converter.register_unstructure_hook(datetime, lambda value: value)
converter.register_structure_hook(
    Decimal, lambda value, _: value if isinstance(value, Decimal) else Decimal(str(value))
)
converter.register_structure_hook(datetime, lambda value, _: value)
# Enums (StrEnum included) are stored as their plain string values.
converter.register_unstructure_hook(enum.Enum, lambda value: value.value)
converter.register_unstructure_hook(enum.StrEnum, lambda value: value.value)


def _structure_document(value: Any, _: Any) -> ComplianceDocumentRef:
    """A compliance document is stored as its id (a string) or as an object."""
    if isinstance(value, str):
        return value
    return converter.structure(value, ComplianceDocument)


converter.register_structure_hook(ComplianceDocumentRef, _structure_document)


def market_to_row(market: Market) -> dict[str, Any]:
    return converter.unstructure(market, Market)  # type: ignore[no-any-return]


def market_from_row(row: Mapping[Any, Any]) -> Market:
    return converter.structure(dict(row), Market)


def asset_to_row(asset: MarketAsset) -> dict[str, Any]:
    return converter.unstructure(asset, MarketAsset)  # type: ignore[no-any-return]


def asset_from_row(row: Mapping[Any, Any]) -> MarketAsset:
    return converter.structure(dict(row), MarketAsset)


def event_to_row(event: DomainEvent) -> dict[str, Any]:
    """An event as ``market_events`` columns (``id`` is the event id; its per-stream ``seq``
    goes to ``stream_seq``, because ``seq`` there is the history's global position)."""
    row: dict[str, Any] = converter.unstructure(event, DomainEvent)
    row["stream_seq"] = row.pop("seq")
    return row


def event_from_row(row: Mapping[Any, Any], *, id_column: str = "id") -> DomainEvent:
    data = {key: row[key] for key in _EVENT_FIELDS if key not in ("id", "seq")}
    data["id"] = row[id_column]
    data["seq"] = row["stream_seq"]
    return converter.structure(data, DomainEvent)


def outbox_row(event: DomainEvent, correlation_id: str | None = None) -> dict[str, Any]:
    """An event as ``outbox`` columns (the event id goes to ``event_id``), with the
    correlation id of what wrote it."""
    row = event_to_row(event)
    row["event_id"] = row.pop("id")
    row["correlation_id"] = correlation_id
    return row


_EVENT_FIELDS = tuple(field.name for field in DomainEvent.__attrs_attrs__)
