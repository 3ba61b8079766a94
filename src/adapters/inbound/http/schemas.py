"""Request bodies (pydantic, for validation and OpenAPI). Money is never a float here.

Every string goes through ``core.shared.text`` (NFC, no control, bidi or surrogate
characters, not blank, bounded); free-form JSON through ``clean_json``. The JSON provider of
the app (``adapters.inbound.http.json``) reads fractions as ``Decimal`` and over-long numbers
as ``OversizedNumber``, which the validators below refuse with a field error.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from core.markets.model import AssetType
from core.shared.text import MAX_DIGITS, OversizedNumber, TextError, clean_json, clean_text


def _refuse_float(value: Any) -> Any:
    if isinstance(value, OversizedNumber):
        raise ValueError(f"must be at most {MAX_DIGITS} characters")
    if isinstance(value, float | Decimal):
        raise ValueError(
            'must be a decimal string such as "1250000.50" or a whole JSON integer; '
            "JSON numbers with a fraction are refused"
        )
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('must be a decimal string such as "1250000.50" or a whole JSON integer')
    if isinstance(value, str):
        if len(value) > MAX_DIGITS:
            raise ValueError(f"must be at most {MAX_DIGITS} characters")
        return clean_text(value, max_length=MAX_DIGITS)
    return value


Amount = Annotated[
    StrictInt | StrictStr,
    BeforeValidator(_refuse_float),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", "maxLength": 100},
                {"type": "integer", "minimum": 0},
            ]
        }
    ),
]


def _clean(max_length: int, *, multiline: bool = False) -> BeforeValidator:
    """The core's text rules for a client string of at most ``max_length`` characters."""

    def check(value: Any) -> str:
        return clean_text(value, max_length=max_length, multiline=multiline)

    return BeforeValidator(check)


def _bounds(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length)


def _documented(**keywords: Any) -> Any:
    """JSON-schema keywords for the OpenAPI document only: the core checks them, so that one
    422 names every bad field."""
    return Field(json_schema_extra=keywords)


Code = Annotated[StrictStr, _clean(20), _bounds(20)]  # symbols, currencies: checked in core
Symbol = Annotated[Code, _documented(pattern=r"^[A-Z0-9]{2,11}$")]
Currency = Annotated[Code, _documented(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[StrictStr, _clean(2), _bounds(2), _documented(pattern=r"^[A-Z]{2}$")]
Identifier = Annotated[StrictStr, _clean(200), _bounds(200)]
ShortText = Annotated[StrictStr, _clean(100), _bounds(100)]
Name = Annotated[StrictStr, _clean(200), _bounds(200)]
Place = Annotated[StrictStr, _clean(500), _bounds(500)]
Url = Annotated[StrictStr, _clean(2000), _bounds(2000)]
Reason = Annotated[StrictStr, _clean(2000, multiline=True), _bounds(2000)]
LongText = Annotated[StrictStr, _clean(5000, multiline=True), _bounds(5000)]


def _free_json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TextError("must be a JSON object")
    cleaned: dict[str, Any] = clean_json(value)
    return cleaned


FreeJson = Annotated[
    Any,
    BeforeValidator(_free_json_object),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": 100,
            "propertyNames": {"maxLength": 100},
            "description": "free-form JSON; numbers come back exactly as sent",
        }
    ),
]


class Body(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=False
    )


class ComplianceDocumentIn(Body):
    name: Name
    url: Url
    # pydantic matches with Rust regex, whose $ is the very end (no trailing-newline escape)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    document_type: ShortText | None = None


class AssetIn(Body):
    valuation: Amount | None = None
    currency: Currency | None = None
    location: Place | None = None
    description: LongText | None = None
    compliance_documents: list[Identifier | ComplianceDocumentIn] = Field(
        default_factory=list, max_length=50
    )
    regulatory_info: FreeJson | None = None
    attributes: FreeJson = Field(default_factory=dict)

    @field_validator("compliance_documents", mode="before")
    @classmethod
    def _documents(cls, value: Any) -> Any:
        """Ids or objects, each checked here so that an error names the document, not the
        branches of the union."""
        if not isinstance(value, list):
            return value
        return [_document(index, item) for index, item in enumerate(value)]


def _document(index: int, value: Any) -> str | ComplianceDocumentIn:
    if isinstance(value, str):
        try:
            return clean_text(value, max_length=200)
        except TextError as exc:
            raise ValueError(f"document {index}: {exc}") from None
    if isinstance(value, dict):
        try:
            return ComplianceDocumentIn.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"document {index}: {where} {message}") from None
    raise ValueError(
        f"document {index}: must be an id (a string) or {{name, url, sha256?, documentType?}}"
    )


class RegisterMarketIn(Body):
    """POST /api/v1/markets/register: the seeds' body (``assetDetails``) or ``asset``."""

    name: Name
    asset_type: Annotated[ShortText, _documented(enum=[t.value for t in AssetType])]
    token_symbol: Symbol
    token_name: ShortText
    total_supply: Amount
    issuer_id: Identifier | None = None
    description: LongText | None = None
    entity_id: Identifier | None = None
    tick_size: Amount | None = None
    lot_size: Amount | None = None
    maker_fee_bps: StrictInt | None = Field(default=None, ge=0, le=10_000)
    taker_fee_bps: StrictInt | None = Field(default=None, ge=0, le=10_000)
    accredited_investors_only: StrictBool | None = None
    allowed_countries: list[CountryCode] | None = Field(default=None, max_length=250)
    asset_details: AssetIn | None = None
    asset: AssetIn | None = None

    @model_validator(mode="after")
    def _one_asset(self) -> RegisterMarketIn:
        if self.asset is not None and self.asset_details is not None:
            raise ValueError("send the asset as assetDetails or as asset, not both")
        return self

    @property
    def asset_in(self) -> AssetIn:
        return self.asset_details or self.asset or AssetIn()


class ApprovalIn(Body):
    """POST /api/v1/markets/:id/approve"""

    decision: Literal["approve", "reject"]
    reason: Reason | None = None
    entity_id: Identifier | None = None


class ValuationIn(Body):
    """A new valuation of a market's asset (``update-token-metadata``)."""

    valuation: Amount
    currency: Currency | None = None
    effective_at: StrictStr | None = Field(
        default=None,
        max_length=40,
        description="ISO 8601 in UTC (`Z` or `+00:00`); default: now",
        json_schema_extra={"format": "date-time"},
    )
    source: ShortText | None = None
    note: Reason | None = None


class ReasonIn(Body):
    """Optional body of pause, resume and archive."""

    reason: Reason | None = None
