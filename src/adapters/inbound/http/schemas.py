"""Request bodies (pydantic, for validation and OpenAPI). Money is never a float here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError(
            'must be a decimal string such as "1250000.50" or a whole JSON integer; '
            "JSON numbers with a fraction are refused"
        )
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('must be a decimal string such as "1250000.50" or a whole JSON integer')
    return value


Amount = Annotated[StrictInt | StrictStr, BeforeValidator(_refuse_float)]


class Body(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=False
    )


class ComplianceDocumentIn(Body):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    document_type: str | None = Field(default=None, max_length=100)


class RegulatoryInfoIn(Body):
    jurisdiction: str | None = Field(default=None, max_length=100)
    framework: str | None = Field(default=None, max_length=200)
    license_number: str | None = Field(default=None, max_length=200)
    accredited_investors_only: bool = False
    notes: str | None = Field(default=None, max_length=5000)


class AssetIn(Body):
    valuation: Amount | None = None
    currency: str | None = None
    location: str | None = None
    description: str | None = None
    compliance_documents: list[ComplianceDocumentIn] = Field(default_factory=list, max_length=50)
    regulatory_info: RegulatoryInfoIn | None = None
    attributes: dict[str, StrictStr | StrictInt | bool | None] = Field(
        default_factory=dict, max_length=100
    )


class RegisterMarketIn(Body):
    """POST /api/v1/markets/register"""

    name: StrictStr
    asset_type: StrictStr
    token_symbol: StrictStr
    token_name: StrictStr
    total_supply: Amount
    description: StrictStr | None = None
    entity_id: StrictStr | None = Field(default=None, max_length=200)
    tick_size: Amount | None = None
    lot_size: Amount | None = None
    asset: AssetIn = Field(default_factory=AssetIn)


class ApprovalIn(Body):
    """POST /api/v1/markets/:id/approve"""

    decision: Literal["approve", "reject"]
    reason: StrictStr | None = Field(default=None, max_length=2000)
    entity_id: StrictStr | None = Field(default=None, max_length=200)


class ReasonIn(Body):
    """Optional body of pause, resume and archive."""

    reason: StrictStr | None = Field(default=None, max_length=2000)
