"""Market endpoints: registration, approval, lifecycle actions and reads."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request
from quart_schema import validate_request

from adapters.inbound.http.auth import bearer_actor
from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.schemas import ApprovalIn, ReasonIn, RegisterMarketIn
from adapters.inbound.http.serialization import dump, dump_market
from core.markets.model import ComplianceDocument, MarketStatus, RegulatoryInfo
from core.markets.queries import parse_filter
from core.markets.registration import RegisterMarket
from core.shared.errors import ValidationFailed

markets = Blueprint("markets", __name__, url_prefix="/api/v1/markets")


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


def to_command(body: RegisterMarketIn) -> RegisterMarket:
    asset = body.asset
    regulatory = asset.regulatory_info
    return RegisterMarket(
        name=body.name,
        description=body.description,
        asset_type=body.asset_type,
        token_symbol=body.token_symbol,
        token_name=body.token_name,
        total_supply=body.total_supply,
        entity_id=body.entity_id,
        tick_size=_text_amount(body.tick_size),
        lot_size=_text_amount(body.lot_size),
        valuation=asset.valuation,
        currency=asset.currency,
        location=asset.location,
        asset_description=asset.description,
        compliance_documents=tuple(
            ComplianceDocument(
                name=d.name, url=d.url, sha256=d.sha256, document_type=d.document_type
            )
            for d in asset.compliance_documents
        ),
        regulatory_info=RegulatoryInfo(**regulatory.model_dump())
        if regulatory
        else RegulatoryInfo(),
        attributes=dict(asset.attributes),
    )


async def optional_reason() -> str | None:
    """Lifecycle actions take an optional JSON body ``{"reason": ...}``."""
    raw = await request.get_data()
    if not raw.strip():
        return None
    payload = await request.get_json()
    return ReasonIn.model_validate(payload).reason


@markets.post("/register")
@validate_request(RegisterMarketIn)
async def register(data: RegisterMarketIn) -> Response:
    """Register a tokenized asset; it is pending approval at once."""
    actor = bearer_actor(deps().tokens)
    market = await deps().markets.register(actor, to_command(data))
    return ok(dump_market(market), 201, "market registered; pending approval")


@markets.post("/<market_id>/approve")
@validate_request(ApprovalIn)
async def approve(market_id: str, data: ApprovalIn) -> Response:
    """Approve (starts token deployment) or reject a pending market."""
    actor = bearer_actor(deps().tokens)
    market = await deps().markets.decide(
        actor, market_id, data.decision, reason=data.reason, entity_id=data.entity_id
    )
    message = (
        "market approved; token deployment started"
        if data.decision == "approve"
        else "market rejected"
    )
    return ok(dump_market(market), message=message)


@markets.post("/<market_id>/activate")
async def activate(market_id: str) -> Response:
    """Start, or retry by hand, the token deployment of an approved market."""
    actor = bearer_actor(deps().tokens)
    market = await deps().markets.activate(actor, market_id)
    return ok(dump_market(market), 202, "token deployment started")


@markets.post("/<market_id>/pause")
async def pause(market_id: str) -> Response:
    actor = bearer_actor(deps().tokens)
    market = await deps().markets.pause(actor, market_id, await optional_reason())
    return ok(dump_market(market), message="market paused")


@markets.post("/<market_id>/resume")
async def resume(market_id: str) -> Response:
    actor = bearer_actor(deps().tokens)
    market = await deps().markets.resume(actor, market_id, await optional_reason())
    return ok(dump_market(market), message="market resumed")


@markets.post("/<market_id>/archive")
async def archive(market_id: str) -> Response:
    actor = bearer_actor(deps().tokens)
    market = await deps().markets.archive(actor, market_id, await optional_reason())
    return ok(dump_market(market), message="market archived")


def _limit() -> int:
    raw = request.args.get("limit", "20")
    if not raw.isdigit():
        raise ValidationFailed("bad limit", fields={"limit": "must be a whole number"})
    return int(raw)


@markets.get("")
async def list_markets() -> Response:
    """Markets, newest first. Filters: status, assetType, issuerId. Cursor pagination."""
    market_filter = parse_filter(
        request.args.get("status"), request.args.get("assetType"), request.args.get("issuerId")
    )
    page = await deps().market_queries.page(
        market_filter, limit=_limit(), cursor=request.args.get("cursor") or None
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
async def get_market(market_id: str) -> Response:
    return ok(dump_market(await deps().market_queries.get(market_id)))


@markets.get("/<market_id>/details")
async def market_details(market_id: str) -> Response:
    details = await deps().market_queries.details(market_id)
    data = dump_market(details.market)
    data["asset"] = dump(details.asset)
    return ok(data)


@markets.get("/<market_id>/events")
async def market_events(market_id: str) -> Response:
    events = await deps().market_queries.events(market_id)
    return ok([dump(e) for e in events])


@markets.get("/<market_id>/reached/<status>")
async def market_reached(market_id: str, status: str) -> Response:
    """Whether the market ever entered ``status``, and when."""
    try:
        wanted = MarketStatus(status)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in MarketStatus)
        raise ValidationFailed("unknown status", fields={"status": f"one of: {allowed}"}) from exc
    return ok(dump(await deps().market_queries.has_reached(market_id, wanted)))


@markets.get("/<market_id>/onchain")
async def market_on_chain(market_id: str) -> Response:
    """The token as the chain reports it: code size, total supply, custody balance."""
    token = await deps().market_queries.on_chain(market_id)
    data = dump(token)
    for key in ("totalSupply", "custodyBalance"):
        data[key] = str(data[key])
    return ok(data)
