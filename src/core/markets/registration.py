"""Registration input and the domain rules it must satisfy before a market exists."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import attrs

from core.markets.model import AssetType, ComplianceDocument, ComplianceDocumentRef
from core.shared.errors import ValidationFailed
from core.shared.money import (
    MAX_UINT256,
    TOKEN_DECIMALS,
    AmountError,
    parse_decimal,
    parse_whole_amount,
    to_base_units,
)
from core.shared.text import TextError, clean_identifier, clean_json, clean_text

# Matched with ``fullmatch`` (``$`` would accept a trailing newline: "HVO\n").
SYMBOL_RE = re.compile(r"[A-Z0-9]{2,11}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
COUNTRY_RE = re.compile(r"[A-Z]{2}")
MAX_SUPPLY = MAX_UINT256 // 10**TOKEN_DECIMALS
MAX_DECIMAL_PLACES = 18
MAX_FEE_BPS = 10_000
MAX_COUNTRIES = 250
MAX_DOCUMENTS = 50


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
    issuer_id: str | None = None  # None: the caller; another issuer only for an admin
    tick_size: str | None = None
    lot_size: str | None = None
    maker_fee_bps: int | None = None
    taker_fee_bps: int | None = None
    accredited_investors_only: bool | None = None  # None: regulatory_info may say so
    allowed_countries: tuple[str, ...] = ()
    valuation: int | str | None = None
    currency: str | None = None
    location: str | None = None
    asset_description: str | None = None
    compliance_documents: tuple[ComplianceDocumentRef, ...] = ()
    regulatory_info: dict[str, Any] = attrs.field(factory=dict)
    attributes: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ValidRegistration:
    """A registration whose every value is parsed and within the rules."""

    command: RegisterMarket  # its text fields NFC-normalised
    asset_type: AssetType
    total_supply: int
    valuation: Decimal | None
    tick_size: Decimal | None
    lot_size: Decimal | None
    accredited_investors_only: bool


def _text(
    fields: dict[str, str],
    name: str,
    value: str | None,
    *,
    max_len: int,
    multiline: bool = False,
) -> str | None:
    if value is None:
        return None
    try:
        return clean_text(value, max_length=max_len, multiline=multiline)
    except TextError as exc:
        fields[name] = str(exc)
        return None


def _free_json(fields: dict[str, str], name: str, value: dict[str, Any]) -> dict[str, Any]:
    try:
        cleaned = clean_json(value)
    except TextError as exc:
        fields[name] = str(exc)
        return {}
    if not isinstance(cleaned, dict):
        fields[name] = "must be a JSON object"
        return {}
    return cleaned


def _documents(
    fields: dict[str, str], docs: tuple[ComplianceDocumentRef, ...]
) -> tuple[ComplianceDocumentRef, ...]:
    if len(docs) > MAX_DOCUMENTS:
        fields["asset.complianceDocuments"] = f"at most {MAX_DOCUMENTS} documents"
        return ()
    cleaned: list[ComplianceDocumentRef] = []
    for index, doc in enumerate(docs):
        where = f"asset.complianceDocuments[{index}]"
        if isinstance(doc, str):
            ref = _text(fields, where, doc, max_len=200)
            if ref is not None:
                cleaned.append(ref)
            continue
        name = _text(fields, f"{where}.name", doc.name, max_len=200)
        url = _text(fields, f"{where}.url", doc.url, max_len=2000)
        kind = _text(fields, f"{where}.documentType", doc.document_type, max_len=100)
        if doc.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", doc.sha256):
            fields[f"{where}.sha256"] = "must be 64 hex digits"
        if name is not None and url is not None:
            cleaned.append(ComplianceDocument(name, url, doc.sha256, kind))
    return tuple(cleaned)


def _identifier(
    fields: dict[str, str], name: str, value: str | None, pattern: re.Pattern[str], message: str
) -> str | None:
    if value is None:
        return None
    try:
        return clean_identifier(value, pattern, message=message)
    except TextError as exc:
        fields[name] = str(exc)
        return None


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
    name = _text(fields, "name", cmd.name, max_len=200)
    token_name = _text(fields, "tokenName", cmd.token_name, max_len=100)
    description = _text(fields, "description", cmd.description, max_len=5000, multiline=True)
    entity_id = _text(fields, "entityId", cmd.entity_id, max_len=200)
    issuer_id = _text(fields, "issuerId", cmd.issuer_id, max_len=200)
    location = _text(fields, "asset.location", cmd.location, max_len=500)
    asset_description = _text(
        fields, "asset.description", cmd.asset_description, max_len=5000, multiline=True
    )
    documents = _documents(fields, cmd.compliance_documents)
    regulatory = _free_json(fields, "asset.regulatoryInfo", cmd.regulatory_info)
    attributes = _free_json(fields, "asset.attributes", cmd.attributes)

    asset_type: AssetType | None = None
    try:
        asset_type = AssetType(cmd.asset_type)
    except ValueError:
        allowed = ", ".join(t.value for t in AssetType)
        fields["assetType"] = f"must be one of: {allowed}"

    symbol = _identifier(
        fields,
        "tokenSymbol",
        cmd.token_symbol or "",
        SYMBOL_RE,
        "must be 2 to 11 uppercase letters or digits",
    )

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
    currency = _identifier(
        fields,
        "asset.currency",
        cmd.currency,
        CURRENCY_RE,
        "must be a three-letter ISO 4217 code such as USD",
    )
    if valuation is not None and cmd.currency is None:
        fields["asset.currency"] = "is required with a valuation"
    for key, fee in (("makerFeeBps", cmd.maker_fee_bps), ("takerFeeBps", cmd.taker_fee_bps)):
        if fee is not None and (
            isinstance(fee, bool) or not isinstance(fee, int) or not 0 <= fee <= MAX_FEE_BPS
        ):
            fields[key] = f"must be a whole number of basis points from 0 to {MAX_FEE_BPS}"
    countries: list[str] = []
    if len(cmd.allowed_countries) > MAX_COUNTRIES:
        fields["allowedCountries"] = f"at most {MAX_COUNTRIES} countries"
    for index, country in enumerate(cmd.allowed_countries[:MAX_COUNTRIES]):
        code = _identifier(
            fields,
            f"allowedCountries[{index}]",
            country,
            COUNTRY_RE,
            "must be an ISO 3166 alpha-2 code such as US",
        )
        if code is not None and code not in countries:
            countries.append(code)
    accredited = cmd.accredited_investors_only
    if accredited is None:
        accredited = regulatory.get("accreditedInvestorsOnly") is True

    if fields or asset_type is None:
        raise ValidationFailed("the market registration is invalid", fields=fields)
    assert to_base_units(supply) <= MAX_UINT256
    assert name is not None and token_name is not None and symbol is not None
    cleaned = attrs.evolve(
        cmd,
        name=name,
        token_name=token_name,
        token_symbol=symbol,
        description=description,
        entity_id=entity_id,
        issuer_id=issuer_id,
        location=location,
        asset_description=asset_description,
        currency=currency,
        compliance_documents=documents,
        regulatory_info=regulatory,
        attributes=attributes,
        allowed_countries=tuple(countries),
    )
    return ValidRegistration(
        command=cleaned,
        asset_type=asset_type,
        total_supply=supply,
        valuation=valuation,
        tick_size=tick,
        lot_size=lot,
        accredited_investors_only=accredited,
    )
