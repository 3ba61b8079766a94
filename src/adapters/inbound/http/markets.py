"""Market endpoints: registration, approval, lifecycle actions and reads."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, jsonify

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.guard import (
    current_actor,
    guarded,
    public,
    query_text,
    read_body,
    read_optional_body,
)
from adapters.inbound.http.openapi import (
    APPROVE_EXAMPLES,
    REGISTER_EXAMPLES,
    STATUS_ENUM,
    EventsQuery,
    MarketEnvelope,
    MarketEventsEnvelope,
    MarketListQuery,
    MarketPageEnvelope,
    MarketWithAssetEnvelope,
    OnChainTokenEnvelope,
    StateReachedEnvelope,
    ValuationEnvelope,
    ValuationHistoryEnvelope,
    documented,
)
from adapters.inbound.http.schemas import (
    ApprovalIn,
    ComplianceDocumentIn,
    ReasonIn,
    RegisterMarketIn,
    ValuationIn,
)
from adapters.inbound.http.serialization import dump, dump_asset, dump_event, dump_market
from core.marketdata.model import AssetValuation
from core.marketdata.queries import iso
from core.markets.model import ComplianceDocument, ComplianceDocumentRef, MarketStatus
from core.markets.queries import parse_filter
from core.markets.registration import RegisterMarket
from core.shared.errors import ValidationFailed

markets = Blueprint("markets", __name__, url_prefix="/api/v1/markets")

REGISTERED = "Market registered successfully, pending approval"
APPROVED = "Market approved and activation initiated"
REJECTED = "Market rejected"


def deps() -> HttpDependencies:
    found: HttpDependencies = current_app.config["RWA_DEPS"]
    return found


def ok(data: Any, status: int = 200, message: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"data": data, **extra}
    if message:
        body["message"] = message
    response = jsonify(body)
    response.status_code = status
    return response


def _text_amount(value: int | str | None) -> str | None:
    return None if value is None else str(value)


def _document(doc: str | ComplianceDocumentIn) -> ComplianceDocumentRef:
    if isinstance(doc, str):
        return doc
    return ComplianceDocument(
        name=doc.name, url=doc.url, sha256=doc.sha256, document_type=doc.document_type
    )


def to_command(body: RegisterMarketIn) -> RegisterMarket:
    asset = body.asset_in
    return RegisterMarket(
        name=body.name,
        description=body.description,
        asset_type=body.asset_type,
        token_symbol=body.token_symbol,
        token_name=body.token_name,
        total_supply=body.total_supply,
        entity_id=body.entity_id,
        issuer_id=body.issuer_id,
        tick_size=_text_amount(body.tick_size),
        lot_size=_text_amount(body.lot_size),
        maker_fee_bps=body.maker_fee_bps,
        taker_fee_bps=body.taker_fee_bps,
        accredited_investors_only=body.accredited_investors_only,
        allowed_countries=tuple(body.allowed_countries or ()),
        valuation=asset.valuation,
        currency=asset.currency,
        location=asset.location,
        asset_description=asset.description,
        compliance_documents=tuple(_document(d) for d in asset.compliance_documents),
        regulatory_info=dict(asset.regulatory_info or {}),
        attributes=dict(asset.attributes),
    )


async def optional_reason() -> str | None:
    """Lifecycle actions take an optional JSON body ``{"reason": ...}``."""
    body = await read_optional_body(ReasonIn)
    return None if body is None else body.reason


@markets.post("/register")
@documented(
    MarketWithAssetEnvelope,
    201,
    auth=True,
    body=RegisterMarketIn,
    errors=[409],
    examples=REGISTER_EXAMPLES,
)
@guarded("market.register")
async def register() -> Response:
    """Register a tokenized asset; it is pending approval at once. Answers ``{market, asset}``."""
    data = await read_body(RegisterMarketIn)
    market, asset = await deps().markets.register_with_asset(current_actor(), to_command(data))
    return ok({"market": dump_market(market), "asset": dump_asset(asset)}, 201, REGISTERED)


@markets.post("/<market_id>/approve")
@documented(
    MarketEnvelope,
    auth=True,
    body=ApprovalIn,
    errors=[404, 409],
    examples=APPROVE_EXAMPLES,
)
@guarded("market.approve", "market.reject")
async def approve(market_id: str) -> Response:
    """Approve (starts token deployment) or reject a pending market."""
    data = await read_body(ApprovalIn)
    market = await deps().markets.decide(
        current_actor(), market_id, data.decision, reason=data.reason, entity_id=data.entity_id
    )
    return ok(dump_market(market), message=APPROVED if data.decision == "approve" else REJECTED)


@markets.post("/<market_id>/activate")
@documented(MarketEnvelope, 202, auth=True, errors=[404, 409, 413, 415, 422])
@guarded("market.activate")
async def activate(market_id: str) -> Response:
    """Start, or retry by hand, the token deployment of an approved market."""
    market = await deps().markets.activate(current_actor(), market_id)
    return ok(dump_market(market), 202, "token deployment started")


@markets.post("/<market_id>/pause")
@documented(
    MarketEnvelope,
    auth=True,
    body=ReasonIn,
    errors=[404, 409],
    summary="Pause trading of an active market.",
)
@guarded("market.pause")
async def pause(market_id: str) -> Response:
    reason = await optional_reason()
    market = await deps().markets.pause(current_actor(), market_id, reason)
    return ok(dump_market(market), message="market paused")


@markets.post("/<market_id>/resume")
@documented(
    MarketEnvelope,
    auth=True,
    body=ReasonIn,
    errors=[404, 409],
    summary="Resume a paused market.",
)
@guarded("market.resume")
async def resume(market_id: str) -> Response:
    reason = await optional_reason()
    market = await deps().markets.resume(current_actor(), market_id, reason)
    return ok(dump_market(market), message="market resumed")


@markets.post("/<market_id>/archive")
@documented(
    MarketEnvelope,
    auth=True,
    body=ReasonIn,
    errors=[404, 409],
    summary="Archive a market for good.",
)
@guarded("market.archive")
async def archive(market_id: str) -> Response:
    reason = await optional_reason()
    market = await deps().markets.archive(current_actor(), market_id, reason)
    return ok(dump_market(market), message="market archived")


def _limit() -> int:
    raw = query_text("limit", max_length=3) or "20"
    if not raw.isascii() or not raw.isdigit():
        raise ValidationFailed("bad limit", fields={"limit": "must be a whole number"})
    return int(raw)


@markets.get("")
@documented(MarketPageEnvelope, query=MarketListQuery)
async def list_markets() -> Response:
    """Markets, newest first. Filters: status, assetType, issuerId. Cursor pagination."""
    market_filter = parse_filter(
        query_text("status", max_length=50),
        query_text("assetType", max_length=50),
        query_text("issuerId", max_length=200),
    )
    page = await deps().market_queries.page(
        market_filter, limit=_limit(), cursor=query_text("cursor", max_length=500)
    )
    return ok(
        [dump_market(m) for m in page.items],
        pagination={
            "limit": page.limit,
            "nextCursor": page.next_cursor,
            "hasMore": page.next_cursor is not None,
        },
    )


@markets.get("/<market_id>")
@documented(MarketEnvelope, errors=[404, 422], summary="One market.")
@public
async def get_market(market_id: str) -> Response:
    return ok(dump_market(await deps().market_queries.get(market_id)))


@markets.get("/<market_id>/details")
@documented(MarketWithAssetEnvelope, errors=[404, 422])
@public
async def market_details(market_id: str) -> Response:
    """``{market, asset}``."""
    details = await deps().market_queries.details(market_id)
    return ok({"market": dump_market(details.market), "asset": dump_asset(details.asset)})


@markets.get("/<market_id>/events")
@documented(MarketEventsEnvelope, query=EventsQuery, errors=[404])
@public
async def market_events(market_id: str) -> Response:
    """The market's history, newest first (``?order=asc``: oldest first)."""
    order = query_text("order", max_length=4) or "desc"
    if order not in ("asc", "desc"):
        raise ValidationFailed("bad order", fields={"order": "must be asc or desc"})
    events = await deps().market_queries.events(market_id)
    if order == "desc":
        events.reverse()
    return ok([dump_event(e) for e in events])


@markets.get("/<market_id>/reached/<status>")
@documented(StateReachedEnvelope, errors=[404, 422], path={"status": STATUS_ENUM})
@public
async def market_reached(market_id: str, status: str) -> Response:
    """Whether the market ever entered ``status``, and when."""
    try:
        wanted = MarketStatus(status)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in MarketStatus)
        raise ValidationFailed("unknown status", fields={"status": f"one of: {allowed}"}) from exc
    return ok(dump(await deps().market_queries.has_reached(market_id, wanted)))


@markets.get("/<market_id>/onchain")
@documented(OnChainTokenEnvelope, errors=[404, 409, 422])
@public
async def market_on_chain(market_id: str) -> Response:
    """The T-REX token as the chain reports it: code size, name, symbol, total supply, the
    issuer's balance, paused."""
    token = await deps().market_queries.on_chain(market_id)
    data = dump(token)
    for key in ("totalSupply", "issuerBalance"):
        if data[key] is not None:
            data[key] = str(data[key])
    return ok(data)


def dump_valuation(valuation: AssetValuation) -> dict[str, Any]:
    return {
        "id": valuation.id,
        "marketId": valuation.market_id,
        "version": valuation.version,
        "valuation": format(valuation.valuation, "f"),
        "currency": valuation.currency,
        "effectiveAt": iso(valuation.effective_at),
        "recordedAt": iso(valuation.recorded_at),
        "actorId": valuation.actor_id,
        "source": valuation.source,
        "note": valuation.note,
    }


@markets.post("/<market_id>/valuations")
@documented(ValuationEnvelope, 201, auth=True, body=ValuationIn, errors=[404])
@guarded("market.valuation_update")
async def update_valuation(market_id: str) -> Response:
    """Record a new valuation of the market's asset (``update-token-metadata``): admins, or
    the market's own issuer. Appended to the history; the ``ticker`` channel shows the latest."""
    data = await read_body(ValuationIn)
    record = await deps().valuations.update(
        current_actor(),
        market_id,
        valuation=str(data.valuation),
        currency=data.currency,
        effective_at=data.effective_at,
        source=data.source,
        note=data.note,
    )
    return ok(dump_valuation(record), 201, "valuation recorded")


@markets.get("/<market_id>/valuations")
@documented(ValuationHistoryEnvelope, errors=[404, 422])
@public
async def valuation_history(market_id: str) -> Response:
    """Every valuation of the market's asset, oldest (version 1) first."""
    return ok([dump_valuation(v) for v in await deps().valuations.history(market_id)])
