"""The market aggregate: a tokenized real-world asset that issuers register and admins approve."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from core.shared.ids import new_id


class AssetType(enum.StrEnum):
    REAL_ESTATE = "real_estate"
    CORPORATE_STOCK = "corporate_stock"
    GOVERNMENT_BOND = "government_bond"
    COMMODITY = "commodity"
    PRIVATE_EQUITY = "private_equity"
    ART_COLLECTIBLE = "art_collectible"
    CARBON_CREDIT = "carbon_credit"
    OTHER = "other"


class MarketStatus(enum.StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    ACTIVATING = "activating"
    ACTIVE = "active"
    PAUSED = "paused"
    REJECTED = "rejected"
    ARCHIVED = "archived"


TERMINAL_STATUSES = frozenset({MarketStatus.REJECTED, MarketStatus.ARCHIVED})


@attrs.frozen
class ComplianceDocument:
    name: str
    url: str
    sha256: str | None = None
    document_type: str | None = None


# A compliance document is named by its id (a string) or described in full.
ComplianceDocumentRef = str | ComplianceDocument


@attrs.frozen
class MarketAsset:
    """What the token represents: valuation, place, papers. Exact valuation, never a float.

    ``regulatory_info`` and ``attributes`` are free-form JSON whose numbers are ``int`` or
    ``Decimal`` (never ``float``), so they come back exactly as they were sent.
    """

    market_id: str
    valuation: Decimal | None = None
    currency: str | None = None
    location: str | None = None
    description: str | None = None
    compliance_documents: tuple[ComplianceDocumentRef, ...] = ()
    regulatory_info: dict[str, Any] = attrs.field(factory=dict)
    attributes: dict[str, Any] = attrs.field(factory=dict)
    id: str = attrs.field(factory=new_id)


@attrs.frozen
class Market:
    """A market as stored. Changes go through ``core.markets.lifecycle`` and produce a new value."""

    id: str
    name: str
    asset_type: AssetType
    issuer_id: str
    token_symbol: str
    token_name: str
    total_supply: int  # whole tokens; on chain it is total_supply * 10**decimals base units
    status: MarketStatus
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    entity_id: str | None = None
    decimals: int = 18
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    maker_fee_bps: int | None = None
    taker_fee_bps: int | None = None
    accredited_investors_only: bool = False
    allowed_countries: tuple[str, ...] = ()  # ISO 3166 alpha-2; empty: no restriction
    contract_address: str | None = None
    deployment_tx_hash: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    activated_at: datetime | None = None
    rejected_by: str | None = None
    rejected_at: datetime | None = None
    rejected_reason: str | None = None
    activation_attempts: int = 0
    activation_error: str | None = None
    version: int = 1
