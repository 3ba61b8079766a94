"""Token endpoints: the token registry, a user's balances and compliance records.

Order of checks (DESIGN 5.1): no or bad token 401; roles that allow none of the endpoint's
actions 403; path parameters and the body 400/415/422 (each field named); the permissions
port 403; then storage: an unknown token 404 ``token_not_found``, an unknown user 404
``user_not_found``, a taken symbol 409 ``token_symbol_taken``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic.alias_generators import to_camel
from quart import Blueprint, Response, current_app, jsonify

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.guard import current_actor, guarded, public, query_text, read_body
from adapters.inbound.http.openapi import DateTime, WireModel, documented, envelope
from core.shared.errors import ValidationFailed
from core.shared.text import clean_text
from core.tokens.compliance import ComplianceRecord, KycStatus
from core.tokens.compliance_use_cases import READ as READ_COMPLIANCE
from core.tokens.compliance_use_cases import READ_ANY as READ_COMPLIANCE_ANY
from core.tokens.compliance_use_cases import UPDATE as UPDATE_COMPLIANCE
from core.tokens.compliance_use_cases import SetCompliance, record_view
from core.tokens.model import MAX_DECIMALS, MAX_NAME, Token, TokenType
from core.tokens.use_cases import (
    CREATE,
    READ_BALANCE,
    READ_BALANCE_ANY,
    CreateToken,
    TokenBalance,
)

tokens = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens")

CREATED = "Token created"
COMPLIANCE_SET = "Compliance record saved"
SYMBOL_PATTERN = r"^[A-Z0-9]{2,12}$"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
WHOLE_TOKENS = r"^[0-9]+(\.[0-9]*[1-9])?$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
UTC_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|\+00:00)$"


def deps() -> HttpDependencies:
    found: HttpDependencies = current_app.config["RWA_DEPS"]
    return found


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- wire models -------------------------------------------------------------------------------


class TokenOut(WireModel):
    """A token the ledger counts and the order book trades."""

    model_config = ConfigDict(title="Token")

    id: str
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    name: str
    type: TokenType
    decimals: int = Field(ge=0, le=MAX_DECIMALS)
    contract_address: str | None = Field(description="EIP-55 checksummed; null if not known")
    market_id: str | None = Field(description="The market of an RWA token")
    paused: bool
    created_at: str = DateTime


WholeTokens = Field(
    pattern=WHOLE_TOKENS,
    description="Exact whole tokens (base units / 10^decimals), no trailing zeros",
)


class BalanceOut(WireModel):
    """A user's holding of one token, in whole tokens."""

    model_config = ConfigDict(title="Balance")

    token_id: str
    symbol: str
    decimals: int = Field(ge=0, le=MAX_DECIMALS)
    available: str = WholeTokens
    locked: str = WholeTokens
    total: str = WholeTokens


class ComplianceOut(WireModel):
    """A compliance record: general (``tokenId`` null) or for one token (it overrides the
    general one for that token)."""

    model_config = ConfigDict(title="ComplianceRecord")

    user_id: str
    token_id: str | None
    kyc_status: KycStatus
    whitelisted: bool
    accredited: bool
    jurisdiction: str = Field(pattern=COUNTRY_PATTERN, description="ISO 3166-1 alpha-2")
    expires_at: str = DateTime
    created_at: str = DateTime
    updated_at: str = DateTime
    updated_by: str
    version: int = Field(ge=1)


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CreateTokenIn(_Body):
    """``POST /api/v1/tokens``"""

    model_config = ConfigDict(
        title="CreateToken",
        json_schema_extra={
            "example": {"symbol": "WETH", "name": "Wrapped Ether", "type": "CRYPTO", "decimals": 18}
        },
    )

    symbol: StrictStr = Field(
        max_length=12,
        description="2 to 12 capital letters or digits; unique",
        json_schema_extra={"pattern": SYMBOL_PATTERN},
    )
    name: StrictStr = Field(max_length=MAX_NAME)
    type: StrictStr = Field(max_length=6, json_schema_extra={"enum": [t.value for t in TokenType]})
    decimals: StrictInt = Field(json_schema_extra={"minimum": 0, "maximum": MAX_DECIMALS})
    contract_address: StrictStr | None = Field(
        default=None,
        max_length=42,
        description="0x and 40 hex digits (EIP-55 checksum if mixed case); refused with "
        "`invalid_address`",
        json_schema_extra={"pattern": ADDRESS_PATTERN},
    )

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        return clean_text(value, max_length=MAX_NAME)


class SetComplianceIn(_Body):
    """``POST /api/v1/tokens/compliance/{userId}``"""

    model_config = ConfigDict(
        title="SetCompliance",
        json_schema_extra={
            "example": {
                "kycStatus": "APPROVED",
                "whitelisted": True,
                "accredited": True,
                "jurisdiction": "PT",
                "expiresAt": "2027-12-31T23:59:59Z",
            }
        },
    )

    kyc_status: StrictStr = Field(
        max_length=8, json_schema_extra={"enum": [s.value for s in KycStatus]}
    )
    whitelisted: StrictBool
    accredited: StrictBool
    jurisdiction: StrictStr = Field(
        max_length=2,
        description="ISO 3166-1 alpha-2, capitals (assigned codes only)",
        json_schema_extra={"pattern": COUNTRY_PATTERN},
    )
    expires_at: StrictStr = Field(
        max_length=40,
        description="ISO 8601 in UTC (`Z` or `+00:00`); the record is valid strictly before it",
        json_schema_extra={"pattern": UTC_PATTERN, "format": "date-time"},
    )
    token_id: StrictStr | None = Field(
        default=None,
        max_length=100,
        description="A token id or symbol: the record applies to that token only",
    )

    @field_validator("token_id")
    @classmethod
    def _clean_token(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value, max_length=100)


class TokenListQuery(BaseModel):
    """``GET /api/v1/tokens``"""

    type: Literal["RWA", "CRYPTO", "STABLE"] | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


TokenEnvelope = envelope(TokenOut)
TokenPageEnvelope = envelope(TokenOut, many=True, paginated=True)
BalanceEnvelope = envelope(BalanceOut)
BalanceListEnvelope = envelope(BalanceOut, many=True)
ComplianceEnvelope = envelope(ComplianceOut)
ComplianceListEnvelope = envelope(ComplianceOut, many=True)
USER_PATH = {"user_id": {"maxLength": 100}}
TOKEN_PATH = {"token": {"maxLength": 100}}


def dump_token(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "symbol": token.symbol,
        "name": token.name,
        "type": token.type.value,
        "decimals": token.decimals,
        "contractAddress": token.contract_address,
        "marketId": token.market_id,
        "paused": token.paused,
        "createdAt": _iso(token.created_at),
    }


def dump_balance(balance: TokenBalance) -> dict[str, Any]:
    return {
        "tokenId": balance.token.id,
        "symbol": balance.token.symbol,
        "decimals": balance.token.decimals,
        "available": balance.whole(balance.available),
        "locked": balance.whole(balance.locked),
        "total": balance.whole(balance.total),
    }


def dump_record(record: ComplianceRecord) -> dict[str, Any]:
    view = record_view(record)
    assert view is not None
    return view


def ok(data: Any, status: int = 200, message: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"data": data, **extra}
    if message:
        body["message"] = message
    response = jsonify(body)
    response.status_code = status
    return response


def _limit() -> int:
    raw = query_text("limit", max_length=3) or "20"
    if not raw.isascii() or not raw.isdigit():
        raise ValidationFailed("bad limit", fields={"limit": "must be a whole number"})
    return int(raw)


# -- the registry ------------------------------------------------------------------------------


@tokens.post("")
@documented(TokenEnvelope, 201, auth=True, body=CreateTokenIn, errors=[409])
@guarded(CREATE)
async def create_token() -> Response:
    """Register a token (admins). A symbol held by another token or by a live market is 409
    ``token_symbol_taken``; a contract address of another token 409 ``token_address_taken``."""
    body = await read_body(CreateTokenIn)
    token = await deps().token_use_cases.create(
        current_actor(),
        CreateToken(
            symbol=body.symbol,
            name=body.name,
            type=body.type,
            decimals=body.decimals,
            contract_address=body.contract_address,
        ),
    )
    return ok(dump_token(token), 201, CREATED)


@tokens.get("")
@documented(TokenPageEnvelope, query=TokenListQuery)
async def list_tokens() -> Response:
    """Tokens, newest first; ``type`` filters; cursor pages like markets."""
    page = await deps().token_use_cases.page(
        query_text("type", max_length=10),
        limit=_limit(),
        cursor=query_text("cursor", max_length=500),
    )
    return ok(
        [dump_token(t) for t in page.items],
        pagination={
            "limit": page.limit,
            "nextCursor": page.next_cursor,
            "hasMore": page.next_cursor is not None,
        },
    )


@tokens.get("/<token>")
@documented(TokenEnvelope, errors=[404, 422], path=TOKEN_PATH)
@public
async def get_token(token: str) -> Response:
    """A token by id or by symbol."""
    return ok(dump_token(await deps().token_use_cases.get(token)))


# -- balances ----------------------------------------------------------------------------------


@tokens.get("/balances/<user_id>")
@documented(BalanceListEnvelope, auth=True, errors=[404, 422], path=USER_PATH)
@guarded(READ_BALANCE, READ_BALANCE_ANY)
async def user_balances(user_id: str) -> Response:
    """The user's balances by symbol, in exact whole tokens. A trader reads their own; an
    admin anyone's (404 ``user_not_found`` for a user the platform knows nothing of)."""
    found = await deps().token_use_cases.balances(current_actor(), user_id)
    return ok([dump_balance(b) for b in found])


@tokens.get("/balances/<user_id>/<token>")
@documented(BalanceEnvelope, auth=True, errors=[404, 422], path={**USER_PATH, **TOKEN_PATH})
@guarded(READ_BALANCE, READ_BALANCE_ANY)
async def user_balance(user_id: str, token: str) -> Response:
    """The user's balance of one token (id or symbol); zero without an account."""
    found = await deps().token_use_cases.balance(current_actor(), user_id, token)
    return ok(dump_balance(found))


# -- compliance --------------------------------------------------------------------------------


@tokens.post("/compliance/<user_id>")
@documented(ComplianceEnvelope, auth=True, body=SetComplianceIn, errors=[404, 409], path=USER_PATH)
@guarded(UPDATE_COMPLIANCE)
async def set_compliance(user_id: str) -> Response:
    """Create or replace the user's general compliance record, or (``tokenId``) their record
    for one token. Audited with before and after; a ``compliance.changed`` event on the
    user's stream. An unknown ``tokenId`` is 404 ``token_not_found``."""
    body = await read_body(SetComplianceIn)
    record = await deps().compliance.set(
        current_actor(),
        user_id,
        SetCompliance(
            kyc_status=body.kyc_status,
            whitelisted=body.whitelisted,
            accredited=body.accredited,
            jurisdiction=body.jurisdiction,
            expires_at=body.expires_at,
            token=body.token_id,
        ),
    )
    return ok(dump_record(record), message=COMPLIANCE_SET)


@tokens.get("/compliance/<user_id>")
@documented(ComplianceListEnvelope, auth=True, errors=[404, 422], path=USER_PATH)
@guarded(READ_COMPLIANCE, READ_COMPLIANCE_ANY)
async def get_compliance(user_id: str) -> Response:
    """The user's compliance records, the general one first (admins, or the user)."""
    found = await deps().compliance.records(current_actor(), user_id)
    return ok([dump_record(r) for r in found])
