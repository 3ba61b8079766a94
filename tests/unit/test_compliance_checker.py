"""The pure compliance checker, the country table, whole-token formatting and the UTC date
rule: each failed check's code, expiry at the boundary, the per-token override."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from core.shared.errors import PermissionDenied, ValidationFailed
from core.tokens.compliance import (
    ComplianceCheck,
    ComplianceDenied,
    ComplianceRecord,
    ComplianceRules,
    KycStatus,
    check_compliance,
    effective_record,
)
from core.tokens.compliance_use_cases import parse_utc
from core.tokens.countries import COUNTRY_CODES, is_country
from core.tokens.model import Token, TokenType, check_symbol, format_units

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RWA = Token(symbol="LUXAPT", name="Lux", type=TokenType.RWA, decimals=18, created_at=NOW)
OTHER_RWA = Token(symbol="HVO", name="HVO", type=TokenType.RWA, decimals=18, created_at=NOW)
STABLE = Token(symbol="USDC", name="USD Coin", type=TokenType.STABLE, decimals=6, created_at=NOW)
OPEN = ComplianceRules()
STRICT = ComplianceRules(accredited_only=True, allowed_countries=("PT", "ES"))


def record(**overrides: Any) -> ComplianceRecord:
    fields: dict[str, Any] = {
        "user_id": "alice",
        "kyc_status": KycStatus.APPROVED,
        "whitelisted": True,
        "accredited": True,
        "jurisdiction": "PT",
        "expires_at": NOW + timedelta(days=30),
        "created_at": NOW,
        "updated_at": NOW,
        "updated_by": "admin",
    }
    fields.update(overrides)
    return ComplianceRecord(**fields)


def denied(records: list[ComplianceRecord], rules: ComplianceRules, **kw: Any) -> str:
    token = kw.pop("token", RWA)
    with pytest.raises(ComplianceDenied) as caught:
        check_compliance(records, token, rules, kw.pop("now", NOW), user_id="alice")
    assert isinstance(caught.value, PermissionDenied)  # 403 at the HTTP edge
    assert caught.value.details["check"] == caught.value.code
    assert caught.value.details["tokenId"] == token.id
    return caught.value.code


def test_a_compliant_user_passes_and_gets_the_applied_record() -> None:
    mine = record()
    assert check_compliance([mine], RWA, STRICT, NOW, user_id="alice") == mine


@pytest.mark.parametrize(
    ("change", "rules", "code"),
    [
        ({"kyc_status": KycStatus.PENDING}, OPEN, "kyc_not_approved"),
        ({"kyc_status": KycStatus.REJECTED}, OPEN, "kyc_not_approved"),
        ({"kyc_status": KycStatus.EXPIRED}, OPEN, "compliance_expired"),
        ({"expires_at": NOW - timedelta(seconds=1)}, OPEN, "compliance_expired"),
        ({"whitelisted": False}, OPEN, "not_whitelisted"),
        ({"accredited": False}, STRICT, "not_accredited"),
        ({"jurisdiction": "US"}, STRICT, "country_not_allowed"),
    ],
)
def test_each_failed_check_has_its_code(
    change: dict[str, Any], rules: ComplianceRules, code: str
) -> None:
    assert code in {c.value for c in ComplianceCheck}
    assert denied([record(**change)], rules) == code


def test_no_record_is_kyc_not_approved() -> None:
    assert denied([], OPEN) == "kyc_not_approved"
    assert denied([record(user_id="bob")], OPEN) == "kyc_not_approved"  # someone else's


def test_market_rules_apply_only_when_set() -> None:
    lax = record(accredited=False, jurisdiction="US")
    assert check_compliance([lax], RWA, OPEN, NOW, user_id="alice") == lax
    only_accredited = ComplianceRules(accredited_only=True)
    assert denied([lax], only_accredited) == "not_accredited"
    countries = ComplianceRules(allowed_countries=("US",))
    assert check_compliance([lax], RWA, countries, NOW, user_id="alice") == lax


def test_expiry_boundary_valid_strictly_before() -> None:
    mine = record(expires_at=NOW)
    before = NOW - timedelta(microseconds=1)
    assert check_compliance([mine], RWA, OPEN, before, user_id="alice") == mine
    assert denied([mine], OPEN, now=NOW) == "compliance_expired"
    assert denied([mine], OPEN, now=NOW + timedelta(microseconds=1)) == "compliance_expired"


def test_the_order_of_checks_names_the_first_failure() -> None:
    everything_wrong = record(
        kyc_status=KycStatus.PENDING,
        expires_at=NOW - timedelta(days=1),
        whitelisted=False,
        accredited=False,
        jurisdiction="US",
    )
    assert denied([everything_wrong], STRICT) == "kyc_not_approved"
    assert denied([attrs.evolve(everything_wrong, kyc_status=KycStatus.APPROVED)], STRICT) == (
        "compliance_expired"
    )
    fresh = attrs.evolve(
        everything_wrong, kyc_status=KycStatus.APPROVED, expires_at=NOW + timedelta(days=1)
    )
    assert denied([fresh], STRICT) == "not_whitelisted"
    assert denied([attrs.evolve(fresh, whitelisted=True)], STRICT) == "not_accredited"


def test_a_per_token_record_overrides_the_general_one_entirely() -> None:
    general = record(jurisdiction="US", accredited=False)
    specific = record(token_id=RWA.id, jurisdiction="PT", accredited=True)
    # the general record alone fails the strict market; the token's own passes
    assert check_compliance([general, specific], RWA, STRICT, NOW, user_id="alice") == specific
    assert effective_record([general, specific], RWA.id) == specific
    # another token falls back to the general record
    assert denied([general, specific], STRICT, token=OTHER_RWA) == "not_accredited"
    assert effective_record([general, specific], OTHER_RWA.id) == general
    # a per-token record that is worse wins too: no field-by-field merge
    revoked = record(token_id=RWA.id, whitelisted=False)
    assert denied([record(), revoked], OPEN) == "not_whitelisted"
    # a per-token record alone does not cover other tokens
    assert denied([specific], OPEN, token=OTHER_RWA) == "kyc_not_approved"


def test_non_rwa_tokens_need_no_compliance() -> None:
    assert check_compliance([], STABLE, STRICT, NOW, user_id="alice") is None


def test_the_country_table_is_iso_3166_alpha_2() -> None:
    assert len(COUNTRY_CODES) == 249
    for code in ("PT", "US", "GB", "DE", "JP", "BR", "SS", "CW", "AX", "BQ"):
        assert is_country(code)
    not_countries: tuple[object, ...] = ("UK", "EU", "XK", "ZZ", "AN", "pt", "P", "PRT", "")
    for value in (*not_countries, " PT", "PT\n", None, 1):
        assert not is_country(value)


@pytest.mark.parametrize(
    ("amount", "decimals", "text"),
    [
        (0, 6, "0"),
        (1, 6, "0.000001"),
        (1_500_000, 6, "1.5"),
        (1_000_000, 6, "1"),
        (123, 0, "123"),
        (10**18, 18, "1"),
        (
            2**256 - 1,
            18,
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935",
        ),
        (
            2**256 - 1,
            36,
            "115792089237316195423570985008687907853269.984665640564039457584007913129639935",
        ),
    ],
)
def test_whole_tokens_are_exact(amount: int, decimals: int, text: str) -> None:
    assert format_units(amount, decimals) == text
    whole, _, fraction = text.partition(".")
    assert int(whole + fraction.ljust(decimals, "0")) == amount  # exact, digit for digit
    assert not text.endswith("0") or "." not in text


def test_format_units_refuses_what_is_not_base_units() -> None:
    for amount in (-1, 1.5, True, Decimal(1)):
        with pytest.raises(ValueError):
            format_units(amount, 6)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-31T00:00:00Z", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T23:59:59.5+00:00", datetime(2027, 1, 31, 23, 59, 59, 500000, tzinfo=UTC)),
    ],
)
def test_utc_instants(text: str, expected: datetime) -> None:
    assert parse_utc(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2027-02-30T00:00:00Z",  # no such day
        "2027-01-31T25:00:00Z",
        "2027-01-31T00:00:00",  # naive
        "2027-01-31T00:00:00+01:00",  # not UTC
        "2027-01-31",
        "2027-01-31T00:00:00Z\n",
        "tomorrow",
        "",
        1798675200,
    ],
)
def test_bad_dates_name_the_field(text: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_utc(text)
    assert list(caught.value.fields) == ["expiresAt"]


@pytest.mark.parametrize("symbol", ["usdc", "U", "TOOLONGSYMBOL1", "US-D", "USDC\n", "ÜSD", 12])
def test_bad_symbols(symbol: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_symbol(symbol)
    assert list(caught.value.fields) == ["symbol"]
