"""Compliance records and the pure check every operation on an RWA token runs off chain.

A user has at most one **general** record and at most one record **per token**; for a given
token the per-token record, when it exists, overrides the general one entirely (it is not
merged field by field). A record says: KYC status, whitelisted, accredited, jurisdiction
(ISO 3166-1 alpha-2, ``core.tokens.countries``) and when it expires.

``check_compliance`` decides, with no I/O, in this order, and raises ``ComplianceDenied``
(403) naming the first failed check:

1. ``kyc_not_approved``: no record applies, or KYC is ``PENDING`` or ``REJECTED``;
2. ``compliance_expired``: KYC is ``EXPIRED``, or ``now >= expiresAt`` (a record is valid
   strictly before its expiry instant);
3. ``not_whitelisted``;
4. ``not_accredited``: the market requires accredited investors and the record is not;
5. ``country_not_allowed``: the market lists allowed countries and the jurisdiction is not
   among them.

Only ``RWA`` tokens are checked: the stablecoin and other crypto tokens pass.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

from core.shared.errors import PermissionDenied
from core.tokens.model import Token, TokenType

GENERAL = None  # the token_id of a general record


class KycStatus(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class ComplianceCheck(enum.StrEnum):
    KYC_NOT_APPROVED = "kyc_not_approved"
    NOT_WHITELISTED = "not_whitelisted"
    NOT_ACCREDITED = "not_accredited"
    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    COMPLIANCE_EXPIRED = "compliance_expired"


@attrs.frozen
class ComplianceRecord:
    """One user's compliance, in general (``token_id`` None) or for one token.

    ``version`` starts at 1 and grows by one with every change (optimistic concurrency).
    """

    user_id: str
    kyc_status: KycStatus
    whitelisted: bool
    accredited: bool
    jurisdiction: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    updated_by: str
    token_id: str | None = GENERAL
    version: int = 1


@attrs.frozen
class ComplianceRules:
    """What a token's market demands beyond KYC and the whitelist."""

    accredited_only: bool = False
    allowed_countries: tuple[str, ...] = ()  # empty: every country


class ComplianceDenied(PermissionDenied):
    """403 with the failed check as the code."""

    def __init__(self, check: ComplianceCheck, user_id: str, token: Token, message: str) -> None:
        super().__init__("operate on this token", (message,))
        self.code = check.value
        self.check = check
        self.message = message
        self.details = {
            "check": check.value,
            "userId": user_id,
            "tokenId": token.id,
            "symbol": token.symbol,
            "reasons": [message],
        }


def effective_record(records: Iterable[ComplianceRecord], token_id: str) -> ComplianceRecord | None:
    """The record that applies to ``token_id``: its own if any, else the general one."""
    general: ComplianceRecord | None = None
    for record in records:
        if record.token_id == token_id:
            return record
        if record.token_id is GENERAL:
            general = record
    return general


def check_compliance(
    records: Iterable[ComplianceRecord],
    token: Token,
    rules: ComplianceRules,
    now: datetime,
    *,
    user_id: str,
) -> ComplianceRecord | None:
    """Return the applied record (None for a token that needs none); ``ComplianceDenied``
    naming the failed check otherwise. ``records`` are the user's; others are ignored."""
    if token.type is not TokenType.RWA:
        return None
    mine = [r for r in records if r.user_id == user_id]
    record = effective_record(mine, token.id)

    def deny(check: ComplianceCheck, message: str) -> ComplianceDenied:
        return ComplianceDenied(check, user_id, token, message)

    if record is None:
        raise deny(ComplianceCheck.KYC_NOT_APPROVED, "the user has no compliance record")
    if record.kyc_status is KycStatus.EXPIRED:
        raise deny(ComplianceCheck.COMPLIANCE_EXPIRED, "the user's KYC has expired")
    if record.kyc_status is not KycStatus.APPROVED:
        raise deny(
            ComplianceCheck.KYC_NOT_APPROVED,
            f"the user's KYC is {record.kyc_status.value}, not APPROVED",
        )
    if now >= record.expires_at:
        raise deny(ComplianceCheck.COMPLIANCE_EXPIRED, "the user's compliance record expired")
    if not record.whitelisted:
        raise deny(ComplianceCheck.NOT_WHITELISTED, "the user is not whitelisted")
    if rules.accredited_only and not record.accredited:
        raise deny(ComplianceCheck.NOT_ACCREDITED, "the market is for accredited investors only")
    if rules.allowed_countries and record.jurisdiction not in rules.allowed_countries:
        raise deny(
            ComplianceCheck.COUNTRY_NOT_ALLOWED,
            f"the market does not allow investors from {record.jurisdiction}",
        )
    return record
