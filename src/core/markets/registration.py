"""Registration input and the domain rules it must satisfy before a market exists."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import attrs

from core.markets.model import AssetType, ComplianceDocument, RegulatoryInfo
from core.shared.errors import ValidationFailed
from core.shared.money import (
    MAX_UINT256,
    TOKEN_DECIMALS,
    AmountError,
    parse_decimal,
    parse_whole_amount,
    to_base_units,
)

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,11}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAX_SUPPLY = MAX_UINT256 // 10**TOKEN_DECIMALS
MAX_DECIMAL_PLACES = 18


@attrs.frozen
class RegisterMarket:
    """What an issuer sends. Amounts arrive as received (int or decimal string) and are checked."""

    name: str
    asset_type: str
    token_symbol: str
    token_name: str
    total_supply: int | str
    description: str | None = None
    entity_id: str | None = None
    tick_size: str | None = None
    lot_size: str | None = None
    valuation: int | str | None = None
    currency: str | None = None
    location: str | None = None
    asset_description: str | None = None
    compliance_documents: tuple[ComplianceDocument, ...] = ()
    regulatory_info: RegulatoryInfo = attrs.field(factory=RegulatoryInfo)
    attributes: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ValidRegistration:
    """A registration whose every value is parsed and within the rules."""

    command: RegisterMarket
    asset_type: AssetType
    total_supply: int
    valuation: Decimal | None
    tick_size: Decimal | None
    lot_size: Decimal | None


def _text(fields: dict[str, str], name: str, value: str | None, *, max_len: int) -> None:
    if value is None:
        return
    if not value.strip():
        fields[name] = "must not be blank"
    elif len(value) > max_len:
        fields[name] = f"must be at most {max_len} characters"


def _positive_decimal(fields: dict[str, str], name: str, value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = parse_decimal(value, max_places=MAX_DECIMAL_PLACES)
    except AmountError as exc:
        fields[name] = str(exc)
        return None
    if amount <= 0:
        fields[name] = "must be greater than zero"
        return None
    return amount


def validate_registration(cmd: RegisterMarket) -> ValidRegistration:
    """Check every field; raise one ``ValidationFailed`` naming each bad field."""
    fields: dict[str, str] = {}
    _text(fields, "name", cmd.name, max_len=200)
    _text(fields, "tokenName", cmd.token_name, max_len=100)
    _text(fields, "description", cmd.description, max_len=5000)
    _text(fields, "asset.location", cmd.location, max_len=500)
    _text(fields, "asset.description", cmd.asset_description, max_len=5000)

    asset_type: AssetType | None = None
    try:
        asset_type = AssetType(cmd.asset_type)
    except ValueError:
        allowed = ", ".join(t.value for t in AssetType)
        fields["assetType"] = f"must be one of: {allowed}"

    if not SYMBOL_RE.match(cmd.token_symbol or ""):
        fields["tokenSymbol"] = "must be 2 to 11 uppercase letters or digits"

    supply = 0
    try:
        supply = parse_whole_amount(cmd.total_supply)
        if supply <= 0:
            fields["totalSupply"] = "must be greater than zero"
        elif supply > MAX_SUPPLY:
            fields["totalSupply"] = f"must be at most {MAX_SUPPLY} whole tokens"
    except AmountError as exc:
        fields["totalSupply"] = str(exc)

    valuation = _positive_decimal(fields, "asset.valuation", cmd.valuation)
    tick = _positive_decimal(fields, "tickSize", cmd.tick_size)
    lot = _positive_decimal(fields, "lotSize", cmd.lot_size)
    if cmd.currency is not None and not CURRENCY_RE.match(cmd.currency):
        fields["asset.currency"] = "must be a three-letter ISO 4217 code such as USD"
    if valuation is not None and cmd.currency is None:
        fields["asset.currency"] = "is required with a valuation"

    if fields or asset_type is None:
        raise ValidationFailed("the market registration is invalid", fields=fields)
    assert to_base_units(supply) <= MAX_UINT256
    return ValidRegistration(
        command=cmd,
        asset_type=asset_type,
        total_supply=supply,
        valuation=valuation,
        tick_size=tick,
        lot_size=lot,
    )
