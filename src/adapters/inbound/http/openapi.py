"""What ``/openapi.json`` says about each operation: responses, security, parameters, bodies.

Each route gets its documentation with one decorator, :func:`documented`::

    @markets.get("/<market_id>")
    @documented(MarketEnvelope, errors=[404])
    async def get_market(market_id: str) -> Response: ...

It records the 2xx answer (the ``{data, message?, pagination?}`` envelope of the actual
object) and every error answer the route can give, each with the error envelope
``{"error": {"code", "message", "details"?}}``. Statuses that follow from the route's shape
are added for it: 401 and 403 with ``auth=True``; 400, 413, 415 and 422 when it reads a
body; 422 for a query string; 429 and 503 on every ``/api`` route. ``auth=True`` also
declares the bearer scheme. Bodies validated inside the route (so that authentication runs
first) are declared with ``body=`` and appear in the document like ``@validate_request``'s.

:class:`RwaOpenAPIProvider` gives each response a description for its status and its
headers (``WWW-Authenticate`` on 401, ``Retry-After`` on 429).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from pydantic.alias_generators import to_camel
from quart_schema import (
    DataSource,
    OpenAPIProvider,
    document_headers,
    document_querystring,
    document_request,
    document_response,
    security_scheme,
)
from werkzeug.routing import Rule

from core.markets.model import AssetType, MarketStatus

F = TypeVar("F", bound=Callable[..., Any])

BEARER = "bearer"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {"type": "http", "scheme": "bearer", "bearer_format": "JWT"},
}

STATUS_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    202: "Accepted: the work goes on in the background",
    400: "Malformed request: the body is not JSON (code `malformed_json`)",
    401: "No bearer token, or a bad or expired one (codes `unauthenticated`, `invalid_token`, "
    "`token_expired`)",
    403: "The caller's roles or the permissions service refuse the action (code `forbidden`, "
    "`details.reasons`)",
    404: "No such resource (code `not_found`)",
    405: "Method not allowed; the `Allow` header lists the methods",
    409: "The resource's state forbids the action, or a unique value is taken (code "
    "`conflict`, `details.currentStatus`)",
    413: "The body is larger than the server's limit (code `payload_too_large`)",
    415: "A body that is not sent as `application/json` (code `unsupported_media_type`)",
    422: "A field is invalid (code `validation_failed`, `details.fields` maps each field to "
    "what is wrong)",
    429: "Too many requests from this client, or (order submission) too many orders from this "
    "user (code `rate_limited`, `details.retryAfterSeconds`); retry after `Retry-After` seconds",
    503: "A dependency (database, chain, job queue, permissions service) cannot answer; retry",
}

BODY_ERRORS = (400, 413, 415, 422)
AUTH_ERRORS = (401, 403)
API_ERRORS = (429, 503)


# -- shared shapes ---------------------------------------------------------------------------


class WireModel(BaseModel):
    """A JSON object on the wire: camelCase keys; objects may gain fields (clients ignore
    what they do not know)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ErrorBody(WireModel):
    code: str = Field(description="Machine-readable error code, e.g. `validation_failed`")
    message: str = Field(description="What went wrong, for a person")
    details: dict[str, Any] | None = Field(
        default=None, description="Structured context, e.g. `fields`, `reasons`"
    )


class ErrorEnvelope(WireModel):
    """The error envelope."""

    model_config = ConfigDict(title="Error")

    error: ErrorBody


class Pagination(WireModel):
    limit: int = Field(ge=1, le=100)
    next_cursor: str | None = Field(description="Opaque; pass as `cursor` for the next page")
    has_more: bool


DecimalString = Field(
    pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="An exact decimal number as a string"
)
DigitString = Field(pattern=r"^[0-9]+$", description="A whole number as a string (may exceed 2^53)")


# -- markets ---------------------------------------------------------------------------------


DateTime = Field(json_schema_extra={"format": "date-time"})


class MarketOut(WireModel):
    """A market."""

    model_config = ConfigDict(title="Market")

    id: str
    name: str
    asset_type: AssetType
    issuer_id: str
    token_symbol: str
    token_name: str
    total_supply: str = DigitString
    total_supply_base_units: str = DigitString
    status: MarketStatus
    created_at: str = DateTime
    updated_at: str = DateTime
    description: str | None = None
    entity_id: str | None = None
    decimals: int = Field(ge=0, le=255)
    tick_size: str | None = None
    lot_size: str | None = None
    maker_fee_bps: int | None = None
    taker_fee_bps: int | None = None
    accredited_investors_only: bool | None = None
    allowed_countries: list[str] | None = None
    contract_address: str | None = None
    deployment_tx_hash: str | None = None
    approved_by: str | None = None
    approved_at: str | None = None
    activated_at: str | None = None
    rejected_by: str | None = None
    rejected_at: str | None = None
    rejected_reason: str | None = None
    activation_attempts: int | None = None
    activation_error: str | None = None
    version: int | None = None


class ComplianceDocumentOut(WireModel):
    model_config = ConfigDict(title="ComplianceDocument")

    name: str
    url: str
    sha256: str | None = None
    document_type: str | None = None


class AssetOut(WireModel):
    """What the market's token represents."""

    model_config = ConfigDict(title="Asset")

    id: str | None = None
    market_id: str
    valuation: str | None = Field(default=None, description="An exact decimal string")
    currency: str | None = None
    location: str | None = None
    description: str | None = None
    compliance_documents: list[str | ComplianceDocumentOut] = Field(
        default_factory=list, description="Document ids or descriptions, as registered"
    )
    regulatory_info: dict[str, Any] = Field(
        default_factory=dict, description="Free-form JSON, numbers exactly as sent"
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Free-form JSON, numbers exactly as sent"
    )


class MarketWithAsset(WireModel):
    """A market and its asset."""

    model_config = ConfigDict(title="MarketWithAsset")

    market: MarketOut
    asset: AssetOut


class MarketEventOut(WireModel):
    """One entry of a market's history."""

    model_config = ConfigDict(title="MarketEvent")

    id: str
    market_id: str
    event_type: str = Field(examples=["market.registered"])
    actor_id: str
    actor_type: str
    decision: str | None
    reason: str | None
    metadata: dict[str, Any]
    created_at: str = DateTime


class StateReachedOut(WireModel):
    model_config = ConfigDict(title="StateReached")

    status: MarketStatus
    reached: bool
    at: str | None = None


class ValuationOut(WireModel):
    """One valuation of a market's asset; the history is append-only (version 1, 2, ...)."""

    model_config = ConfigDict(title="AssetValuation")

    id: str
    market_id: str
    version: int
    valuation: str = Field(description="An exact decimal string")
    currency: str
    effective_at: str
    recorded_at: str
    actor_id: str
    source: str | None
    note: str | None


class OnChainTokenOut(WireModel):
    """The market's T-REX token as the chain reports it."""

    model_config = ConfigDict(title="OnChainToken")

    contract_address: str
    code_size: int
    name: str
    symbol: str
    decimals: int
    total_supply: str = DigitString
    custody_address: str
    issuer_address: str | None
    issuer_balance: str | None = DigitString
    paused: bool


# -- health and webhooks ---------------------------------------------------------------------


class HealthOut(WireModel):
    model_config = ConfigDict(title="Health")

    status: str


class ReadinessOut(WireModel):
    model_config = ConfigDict(title="Readiness")

    status: str
    checks: dict[str, dict[str, Any]]


class WebhookHealthOut(WireModel):
    model_config = ConfigDict(title="WebhookHealth")

    status: str
    forms: list[str]
    signature: str
    tolerance_seconds: int | float
    sns_topics: int


class WebhookOutcomeOut(WireModel):
    """What became of a delivered event (or of an SNS control message)."""

    model_config = ConfigDict(title="WebhookOutcome")

    status: str
    event_id: str | None = None
    event_type: str | None = None
    market_id: str | None = None
    type: str | None = None
    topic_arn: str | None = None


class PermissionEventBody(BaseModel):
    """A direct Entity Permissions Core event, signed with ``X-Signature``."""

    model_config = ConfigDict(title="PermissionEvent", extra="allow")

    event_id: str = Field(min_length=1, max_length=200)
    event_type: str = Field(min_length=1, max_length=200, examples=["market.approved"])
    payload: dict[str, Any] = Field(
        description="`market_id` (required for `market.approved`/`market.rejected`), "
        "`entity_id`?, `decision`?, `reason`?"
    )
    context: dict[str, Any] | None = Field(default=None, description="`actor_id`?, ...")


class SnsEnvelopeBody(BaseModel):
    """An Amazon SNS message (Notification, SubscriptionConfirmation or
    UnsubscribeConfirmation), signed by SNS; sent as ``text/plain``."""

    model_config = ConfigDict(title="SnsEnvelope", extra="allow")

    Type: str
    MessageId: str
    TopicArn: str
    Message: str
    Timestamp: str
    SignatureVersion: str
    Signature: str
    SigningCertURL: str


class WebhookEventBody(RootModel[PermissionEventBody | SnsEnvelopeBody]):
    """A direct event or an SNS envelope."""

    model_config = ConfigDict(title="WebhookDelivery")


class WebhookHeaders(BaseModel):
    x_signature: str | None = Field(
        default=None,
        max_length=2048,
        description="`t=<unix>,v1=<hex HMAC-SHA256 of '{t}.{body}'>` (direct form)",
    )
    x_amz_sns_message_type: str | None = Field(default=None, description="SNS form")


# -- envelopes -------------------------------------------------------------------------------


def envelope(model: type[BaseModel], *, many: bool = False, paginated: bool = False) -> type[Any]:
    """``{"data": <model or list of it>, "message"?, "pagination"?}``."""
    name = model.model_config.get("title") or model.__name__
    data_type: Any = list[model] if many else model  # type: ignore[valid-type]
    fields: dict[str, Any] = {
        "data": (data_type, ...),
        "message": (str | None, Field(default=None, description="A sentence for a person")),
    }
    if paginated:
        fields["pagination"] = (Pagination, ...)
    suffix = "Page" if paginated else ("List" if many else "")
    created: type[Any] = create_model(
        f"{name}{suffix}Envelope",
        __doc__=f"The envelope of {'a page of ' if paginated else ''}{name}"
        f"{' entries' if many else ''}.",
        __config__=ConfigDict(extra="allow"),
        **fields,
    )
    return created


MarketEnvelope = envelope(MarketOut)
MarketPageEnvelope = envelope(MarketOut, many=True, paginated=True)
MarketWithAssetEnvelope = envelope(MarketWithAsset)
MarketEventsEnvelope = envelope(MarketEventOut, many=True)
StateReachedEnvelope = envelope(StateReachedOut)
OnChainTokenEnvelope = envelope(OnChainTokenOut)
ValuationEnvelope = envelope(ValuationOut)
ValuationHistoryEnvelope = envelope(ValuationOut, many=True)
HealthEnvelope = envelope(HealthOut)
ReadinessEnvelope = envelope(ReadinessOut)
WebhookHealthEnvelope = envelope(WebhookHealthOut)
WebhookOutcomeEnvelope = envelope(WebhookOutcomeOut)


# -- query strings ---------------------------------------------------------------------------


class MarketListQuery(BaseModel):
    """``GET /api/v1/markets``"""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    status: MarketStatus | None = None
    asset_type: AssetType | None = None
    issuer_id: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


STATUS_ENUM = {"enum": [status.value for status in MarketStatus]}


class EventsQuery(BaseModel):
    """``GET /api/v1/markets/{id}/events``"""

    order: str = Field(default="desc", pattern="^(asc|desc)$", description="newest first: desc")


# -- request examples ------------------------------------------------------------------------

# The seeds' Quick Start body, verbatim: ``issuerId`` must be the caller (sub ``issuer-uuid``).
SEEDS_REGISTRATION: dict[str, Any] = {
    "name": "Luxury Downtown Apartments",
    "issuerId": "issuer-uuid",
    "assetType": "real_estate",
    "tokenSymbol": "LUXAPT",
    "tokenName": "Luxury Apartment Token",
    "totalSupply": 1000000,
    "entityId": "entity-uuid-from-permissions-core",
    "assetDetails": {
        "valuation": 15000000,
        "currency": "USD",
        "location": "456 Main St, Los Angeles, CA 90014",
        "description": "50-unit luxury residential building",
        "complianceDocuments": ["doc-id-1", "doc-id-2"],
        "regulatoryInfo": {"jurisdiction": "US", "regulator": "SEC", "exemption": "Reg D 506(c)"},
        "attributes": {"sqft": 75000, "units": 50, "yearBuilt": 2020, "occupancyRate": 0.95},
    },
}

FULL_REGISTRATION: dict[str, Any] = {
    "name": "Harbour View Offices",
    "assetType": "real_estate",
    "tokenSymbol": "HVO",
    "tokenName": "Harbour View Offices Token",
    "totalSupply": "2500000",
    "description": "Grade A offices, 12 floors",
    "entityId": "entity-7",
    "tickSize": "0.01",
    "lotSize": "1",
    "makerFeeBps": 10,
    "takerFeeBps": 25,
    "accreditedInvestorsOnly": True,
    "allowedCountries": ["PT", "ES"],
    "assetDetails": {
        "valuation": "25000000.00",
        "currency": "EUR",
        "location": "Lisbon, PT",
        "complianceDocuments": [
            {
                "name": "Title deed",
                "url": "https://docs.example/deed.pdf",
                "sha256": "0" * 64,
                "documentType": "deed",
            }
        ],
        "regulatoryInfo": {"jurisdiction": "PT"},
        "attributes": {"floors": 12, "leed": "gold"},
    },
}

REGISTER_EXAMPLES = {"seedsQuickStart": SEEDS_REGISTRATION, "everyField": FULL_REGISTRATION}
APPROVE_EXAMPLES = {
    "approve": {"decision": "approve", "entityId": "entity-uuid-from-permissions-core"},
    "reject": {"decision": "reject", "reason": "valuation report missing"},
}


# -- the decorator ---------------------------------------------------------------------------


def documented(
    ok: type[Any] | None,
    status: int = 200,
    *,
    errors: Iterable[int] = (),
    auth: bool = False,
    body: type[BaseModel] | None = None,
    reads_body: bool = False,
    query: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    examples: Mapping[str, Any] | None = None,
    path: Mapping[str, Mapping[str, Any]] | None = None,
    summary: str | None = None,
    api: bool = True,
    implied: bool = True,
) -> Callable[[F], F]:
    """Document one route: its success answer, every error status, bearer auth, body, query.

    ``reads_body`` marks a route whose body is optional or free-form (no ``body`` model) but
    is still parsed, so it can answer 400, 413, 415 and 422. ``implied=False`` documents only
    ``errors`` (and, with ``api``, 429 and 503): for a route with rules of its own.
    ``examples`` are named request bodies (clients and schemathesis use them); ``path`` adds
    JSON-schema constraints to path parameters, e.g. ``{"status": {"enum": [...]}}``;
    ``summary`` is the operation's summary when the route has no docstring.
    """
    codes = set(errors)
    if implied and auth:
        codes.update(AUTH_ERRORS)
    if implied and (body is not None or reads_body):
        codes.update(BODY_ERRORS)
    if implied and query is not None:
        codes.add(422)
    if api:
        codes.update(API_ERRORS)
    unknown = codes - set(STATUS_DESCRIPTIONS)
    if unknown:
        raise ValueError(f"no description for status {sorted(unknown)}")

    def decorate(func: F) -> F:
        if ok is not None:
            func = document_response(ok, status)(func)
        for code in sorted(codes):
            func = document_response(ErrorEnvelope, code)(func)
        if auth:
            func = security_scheme([{BEARER: []}])(func)
        if body is not None:
            func = document_request(body, source=DataSource.JSON)(func)
        if query is not None:
            func = document_querystring(query)(func)
        if headers is not None:
            func = document_headers(headers)(func)
        if examples or path or summary:
            extra = {
                "examples": dict(examples or {}),
                "path": dict(path or {}),
                "summary": summary,
            }
            setattr(func, _EXTRA_ATTRIBUTE, extra)
        return func

    return decorate


# -- the provider ----------------------------------------------------------------------------

_EXTRA_ATTRIBUTE = "_rwa_openapi_extra"


def _tag_of(path: str) -> str:
    """``/api/v1/markets/...`` is tagged ``markets``; anything outside ``/api/v1``, ``health``."""
    parts = path.strip("/").split("/")
    return parts[2] if len(parts) > 2 and parts[:2] == ["api", "v1"] else "health"


def _add_extra(operation: dict[str, Any], extra: Mapping[str, Any]) -> None:
    if extra["summary"] and not operation.get("summary"):
        operation["summary"] = extra["summary"]
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is not None and extra["examples"]:
        media["examples"] = {name: {"value": value} for name, value in extra["examples"].items()}
    parameters = []
    for parameter in operation.get("parameters", []):
        constraints = extra["path"].get(parameter["name"])
        if parameter.get("in") == "path" and constraints:
            parameter = {**parameter, "schema": {**parameter["schema"], **constraints}}
        parameters.append(parameter)
    operation["parameters"] = parameters


_RESPONSE_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


class RwaOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider, with a description and headers for each response status,
    request body examples and path parameter constraints."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        extra = getattr(self._app.view_functions[rule.endpoint], _EXTRA_ATTRIBUTE, None)
        for path, operations in paths.items():
            for operation in operations.values():
                if extra is not None:
                    _add_extra(operation, extra)
                if "tags" not in operation:
                    operation["tags"] = [_tag_of(path)]
                for key in ("summary", "description"):  # docstrings are reST; OpenAPI, Markdown
                    if isinstance(operation.get(key), str):
                        operation[key] = operation[key].replace("``", "`")
                responses = operation.get("responses", {})
                for code, response in responses.items():
                    description = STATUS_DESCRIPTIONS.get(int(code))
                    if description is not None and (
                        not response.get("description")
                        or response["description"] == ErrorEnvelope.__doc__
                    ):
                        response["description"] = description
                    if int(code) in _RESPONSE_HEADERS:
                        response["headers"] = _RESPONSE_HEADERS[int(code)]
        return paths, components
