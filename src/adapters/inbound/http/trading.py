"""Trading endpoints (DESIGN 5.5): pairs, orders, trades, the aggregated order book and the
market data (24h stats, candles) the ``aggregate-candles`` reaction keeps.

Order of checks (DESIGN 5.1): no or bad token 401; roles that allow none of the endpoint's
actions 403; path, query and body 400/415/422 (each field named); the pair 404; the order's
numbers against the pair 422 with a code of their own; the permissions port 403; then in the
pair's single writer: 409 ``pair_halted``/``pair_closed``, 403 compliance, 409
``insufficient_funds``, 409 ``order_not_open``. An order is answered only once it, its locks
and its fills are committed; a batch that failed to commit answers 503 ``batch_failed``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel
from quart import Blueprint, Response, current_app, jsonify

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.guard import current_actor, guarded, public, query_text, read_body
from adapters.inbound.http.openapi import DateTime, WireModel, documented, envelope
from adapters.inbound.http.order_rate_limit import refuse_if_over
from adapters.inbound.http.schemas import ShortText
from core.ports.marketdata import MAX_CANDLES
from core.shared.errors import ValidationFailed
from core.trading.orders import CANCEL, READ_ANY, SUBMIT, OrderStatus, OrderType, Trade
from core.trading.pairs import CREATE, UPDATE, Pair, PairStatus, pair_view
from core.trading.service import READ, CreatePair, SubmitOrder, TradingService
from core.trading.writer import order_view

trading = Blueprint("trading", __name__, url_prefix="/api/v1/trading")

DECIMAL = r"^[0-9]+(\.[0-9]+)?$"
PAIR_PATH = {"pair": {"maxLength": 100}}
MAX_TIME_CHARS = 40
ORDER_PATH = {"order_id": {"maxLength": 100}}
USER_PATH = {"user_id": {"maxLength": 100}}
Price = Field(pattern=DECIMAL, description="Exactly the pair's price precision")
Size = Field(pattern=DECIMAL, description="Exactly the pair's size precision")


def service() -> TradingService:
    deps: HttpDependencies = current_app.config["RWA_DEPS"]
    assert deps.trading is not None, "trading is not wired"
    return deps.trading


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ok(data: Any, status: int = 200, message: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"data": data, **extra}
    if message:
        body["message"] = message
    response = jsonify(body)
    response.status_code = status
    return response


def _time_query(name: str) -> datetime | None:
    """An ISO 8601 time with a zone (``Z`` or an offset), years 1970 to 9999; 422 if bad."""
    raw = query_text(name, max_length=MAX_TIME_CHARS)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw) if raw.isascii() else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise ValidationFailed(
            f"bad {name}", fields={name: "an ISO 8601 time with a zone, e.g. 2026-11-23T10:00:00Z"}
        )
    if not 1970 <= parsed.year <= 9998:  # checked before the shift to UTC, which could overflow
        raise ValidationFailed(f"bad {name}", fields={name: "a time in the years 1970 to 9998"})
    return parsed.astimezone(UTC)


def _int_query(name: str, default: int, *, low: int, high: int) -> int:
    raw = query_text(name, max_length=4)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationFailed(f"bad {name}", fields={name: f"a whole number {low} to {high}"})
    return int(raw)


# -- wire models -------------------------------------------------------------------------------


class PairOut(WireModel):
    """A trading pair."""

    model_config = ConfigDict(title="TradingPair")

    id: str
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,12}-[A-Z0-9]{2,12}$")
    base_token_id: str
    quote_token_id: str
    market_id: str | None
    tick_size: str = Field(pattern=DECIMAL, description="Price step, in quote tokens")
    lot_size: str = Field(pattern=DECIMAL, description="Size step, in base tokens")
    min_quantity: str = Size
    max_quantity: str = Size
    maker_fee_bps: int = Field(ge=0, le=10_000)
    taker_fee_bps: int = Field(ge=0, le=10_000)
    status: PairStatus
    last_price: str | None = Field(pattern=DECIMAL)


class OrderOut(WireModel):
    """An order (amounts as exact decimal strings)."""

    model_config = ConfigDict(title="Order")

    id: str
    client_order_id: str | None
    user_id: str
    trading_pair_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    type: OrderType
    time_in_force: Literal["GTC", "IOC", "FOK"]
    post_only: bool
    price: str | None = Field(pattern=DECIMAL)
    stop_price: str | None = Field(pattern=DECIMAL)
    quantity: str | None = Field(pattern=DECIMAL)
    quote_amount: str | None = Field(pattern=DECIMAL)
    filled_quantity: str = Size
    remaining_quantity: str | None = Field(pattern=DECIMAL)
    average_price: str | None = Field(pattern=DECIMAL)
    fee: str = Field(pattern=DECIMAL, description="In the quote token, rounded up")
    status: OrderStatus
    reject_reason: str | None
    created_at: str = DateTime
    updated_at: str = DateTime


class TradeOut(WireModel):
    """A trade, at the maker's price."""

    model_config = ConfigDict(title="Trade")

    id: str
    trading_pair_id: str
    symbol: str
    price: str = Price
    quantity: str = Size
    taker_side: Literal["BUY", "SELL"]
    created_at: str = DateTime


class UserTradeOut(TradeOut):
    """A trade seen by one of its sides."""

    model_config = ConfigDict(title="UserTrade")

    order_id: str
    side: Literal["BUY", "SELL"]
    liquidity: Literal["MAKER", "TAKER"]
    fee: str = Field(pattern=DECIMAL)


class OrderBookOut(WireModel):
    """The aggregated book: bids highest first, asks lowest first, ``[price, size]``."""

    model_config = ConfigDict(title="OrderBook")

    pair: str
    seq: int = Field(ge=0)
    bids: list[list[str]]
    asks: list[list[str]]
    checksum: int = Field(ge=0, description="CRC32 of the top 10 levels each side (DESIGN 6)")


PERCENT = r"^-?[0-9]+\.[0-9]{2}$"
OptionalPrice = Field(pattern=DECIMAL, description="Null when the pair never traded")


class StatsOut(WireModel):
    """A pair's last 24 hours ``(now - 24h, now]``, exact decimal strings."""

    model_config = ConfigDict(title="PairStats")

    open: str | None = OptionalPrice
    high: str | None = OptionalPrice
    low: str | None = OptionalPrice
    last: str | None = OptionalPrice
    volume: str = Field(pattern=DECIMAL, description="Base tokens traded")
    quote_volume: str = Field(pattern=DECIMAL, description="Quote tokens traded")
    change_percent: str | None = Field(
        pattern=PERCENT, description="(last - open) / open x 100, 2 places half away from zero"
    )


class StatsItemOut(StatsOut):
    """One pair's entry of ``GET /trading/stats``."""

    model_config = ConfigDict(title="PairStatsItem")

    pair: str = Field(description="The pair's id")
    symbol: str


class CandleOut(WireModel):
    """One interval of a pair's trades (only intervals with trades have a candle)."""

    model_config = ConfigDict(title="Candle")

    open_time: str = DateTime
    open: str = Price
    high: str = Price
    low: str = Price
    close: str = Price
    volume: str = Size


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SubmitOrderIn(_Body):
    """``POST /api/v1/trading/orders``"""

    model_config = ConfigDict(
        title="SubmitOrder",
        json_schema_extra={
            "example": {
                "tradingPairId": "LUXAPT-USDC",
                "side": "BUY",
                "type": "LIMIT",
                "price": "12.50",
                "quantity": "10",
                "timeInForce": "GTC",
            }
        },
    )

    trading_pair_id: ShortText = Field(description="Pair id or symbol")
    side: Literal["BUY", "SELL"]
    type: Literal["LIMIT", "MARKET", "STOP_LIMIT"]
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"
    price: StrictStr | None = Field(default=None, max_length=80, pattern=DECIMAL)
    stop_price: StrictStr | None = Field(default=None, max_length=80, pattern=DECIMAL)
    quantity: StrictStr | None = Field(default=None, max_length=80, pattern=DECIMAL)
    quote_amount: StrictStr | None = Field(
        default=None, max_length=80, pattern=DECIMAL, description="A market BUY by funds"
    )
    post_only: StrictBool = False
    client_order_id: StrictStr | None = Field(
        default=None, max_length=64, description="Unique per user; a re-submit answers the original"
    )


class CreatePairIn(_Body):
    """``POST /api/v1/trading/pairs``"""

    model_config = ConfigDict(
        title="CreatePair",
        json_schema_extra={
            "example": {
                "baseToken": "WETH",
                "quoteToken": "USDC",
                "tickSize": "0.01",
                "lotSize": "0.001",
            }
        },
    )

    base_token: ShortText = Field(description="Token id or symbol")
    quote_token: ShortText = Field(description="Token id or symbol")
    tick_size: StrictStr = Field(max_length=80, pattern=DECIMAL)
    lot_size: StrictStr = Field(max_length=80, pattern=DECIMAL)
    min_quantity: StrictStr | None = Field(default=None, max_length=80, pattern=DECIMAL)
    max_quantity: StrictStr | None = Field(default=None, max_length=80, pattern=DECIMAL)
    maker_fee_bps: StrictInt | None = Field(default=None, ge=0, le=10_000)
    taker_fee_bps: StrictInt | None = Field(default=None, ge=0, le=10_000)


class UpdatePairIn(_Body):
    """``PATCH /api/v1/trading/pairs/{pair}``: any of fees, limits, status."""

    model_config = ConfigDict(
        title="UpdatePair", json_schema_extra={"example": {"takerFeeBps": 25}}
    )

    maker_fee_bps: StrictInt | None = Field(default=None, ge=0, le=10_000)
    taker_fee_bps: StrictInt | None = Field(default=None, ge=0, le=10_000)
    min_quantity: StrictStr | None = Field(default=None, max_length=80, pattern=DECIMAL)
    max_quantity: StrictStr | None = Field(default=None, max_length=80, pattern=DECIMAL)
    status: Literal["trading", "halted", "closed"] | None = None


class OrdersQuery(BaseModel):
    """``GET /api/v1/trading/users/{userId}/orders``"""

    status: str | None = Field(default=None, max_length=100, description="Comma-separated")
    pair: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


class PageQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


class LimitQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=100)


class DepthQuery(BaseModel):
    depth: int = Field(default=50, ge=1, le=500)


class CandlesQuery(BaseModel):
    """``GET /api/v1/trading/pairs/{pair}/candles``"""

    model_config = ConfigDict(populate_by_name=True)

    interval: Literal["1m", "5m", "15m", "1h", "4h", "1d"]
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=MAX_TIME_CHARS,
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 with a zone; bounds openTime, inclusive",
    )
    to: str | None = Field(
        default=None,
        max_length=MAX_TIME_CHARS,
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 with a zone; bounds openTime, inclusive",
    )
    limit: int = Field(default=500, ge=1, le=MAX_CANDLES)


PairEnvelope = envelope(PairOut)
PairListEnvelope = envelope(PairOut, many=True)
OrderEnvelope = envelope(OrderOut)
OrderPageEnvelope = envelope(OrderOut, many=True, paginated=True)
TradeListEnvelope = envelope(TradeOut, many=True)
UserTradePageEnvelope = envelope(UserTradeOut, many=True, paginated=True)
OrderBookEnvelope = envelope(OrderBookOut)
StatsEnvelope = envelope(StatsOut)
StatsListEnvelope = envelope(StatsItemOut, many=True)
CandleListEnvelope = envelope(CandleOut, many=True)


def dump_trade(pair: Pair, trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.id,
        "tradingPairId": pair.id,
        "symbol": pair.symbol,
        "price": pair.price_text(trade.price),
        "quantity": pair.size_text(trade.quantity),
        "takerSide": trade.taker_side,
        "createdAt": _iso(trade.created_at),
    }


def dump_user_trade(pair: Pair, trade: Trade, user_id: str) -> dict[str, Any]:
    taker = trade.taker_user_id == user_id
    opposite = "SELL" if trade.taker_side == "BUY" else "BUY"
    return {
        **dump_trade(pair, trade),
        "orderId": trade.taker_order_id if taker else trade.maker_order_id,
        "side": trade.taker_side if taker else opposite,
        "liquidity": "TAKER" if taker else "MAKER",
        "fee": pair.quote_text(trade.taker_fee if taker else trade.maker_fee),
    }


def _pagination(page: Any) -> dict[str, Any]:
    return {
        "limit": page.limit,
        "nextCursor": page.next_cursor,
        "hasMore": page.next_cursor is not None,
    }


# -- pairs -------------------------------------------------------------------------------------


@trading.get("/pairs")
@documented(PairListEnvelope)
async def list_pairs() -> Response:
    """Every trading pair, by symbol."""
    return ok([pair_view(p) for p in await service().list_pairs()])


@trading.post("/pairs")
@documented(PairEnvelope, 201, auth=True, body=CreatePairIn, errors=[404, 409])
@guarded(CREATE)
async def create_pair() -> Response:
    """Create a pair (admins): tick and lot as decimal strings of the quote and base tokens;
    their product must be a whole number of the quote token's smallest units."""
    body = await read_body(CreatePairIn)
    pair = await service().create_pair(
        current_actor(),
        CreatePair(
            base=body.base_token,
            quote=body.quote_token,
            tick_size=body.tick_size,
            lot_size=body.lot_size,
            min_quantity=body.min_quantity,
            max_quantity=body.max_quantity,
            maker_fee_bps=body.maker_fee_bps,
            taker_fee_bps=body.taker_fee_bps,
        ),
    )
    return ok(pair_view(pair), 201, "Trading pair created")


@trading.get("/pairs/<pair>")
@documented(PairEnvelope, errors=[404, 422], path=PAIR_PATH)
@public
async def get_pair(pair: str) -> Response:
    """A pair by id or symbol (``LUXAPT-USDC``)."""
    return ok(pair_view(await service().get_pair(pair)))


@trading.patch("/pairs/<pair>")
@documented(PairEnvelope, auth=True, body=UpdatePairIn, errors=[404, 409], path=PAIR_PATH)
@guarded(UPDATE)
async def update_pair(pair: str) -> Response:
    """Change fees, limits or status (admins). ``closed`` cancels every open order and
    unlocks its funds in one transaction; a closed pair stays closed (409 ``pair_closed``)."""
    body = await read_body(UpdatePairIn)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    changed = await service().update_pair(current_actor(), pair, changes)
    return ok(pair_view(changed), message="Trading pair updated")


@trading.get("/pairs/<pair>/trades")
@documented(TradeListEnvelope, errors=[404, 422], query=LimitQuery, path=PAIR_PATH)
@public
async def pair_trades(pair: str) -> Response:
    """The pair's most recent trades, newest first."""
    found, trades = await service().pair_trades(
        pair, limit=_int_query("limit", 50, low=1, high=100)
    )
    return ok([dump_trade(found, t) for t in trades])


@trading.get("/pairs/<pair>/orderbook")
@documented(OrderBookEnvelope, errors=[404, 422], query=DepthQuery, path=PAIR_PATH)
@public
async def orderbook(pair: str) -> Response:
    """The committed book aggregated by price, ``depth`` levels a side, with the book's
    ``seq`` and checksum (the same as the WebSocket book)."""
    book = await service().orderbook(pair, depth=_int_query("depth", 50, low=1, high=500))
    return ok(
        {
            "pair": book.pair.symbol,
            "seq": book.seq,
            "bids": [list(level) for level in book.bids],
            "asks": [list(level) for level in book.asks],
            "checksum": book.checksum,
        }
    )


# -- market data -------------------------------------------------------------------------------


@trading.get("/stats")
@documented(StatsListEnvelope)
@public
async def all_stats() -> Response:
    """Every pair's 24h stats, with its id (``pair``) and ``symbol``, sorted by pair id."""
    return ok(await service().all_stats())


@trading.get("/pairs/<pair>/stats")
@documented(StatsEnvelope, errors=[404, 422], path=PAIR_PATH)
@public
async def pair_stats(pair: str) -> Response:
    """The pair's last 24 hours: open, high, low, last, volumes and change. With no trade in
    the window the prices are the last one before it; a pair that never traded has nulls."""
    return ok(await service().pair_stats(pair))


@trading.get("/pairs/<pair>/candles")
@documented(CandleListEnvelope, errors=[404, 422], query=CandlesQuery, path=PAIR_PATH)
@public
async def pair_candles(pair: str) -> Response:
    """The pair's candles of one interval, oldest first. ``from``/``to`` bound ``openTime``
    (inclusive); without ``from``, the newest ``limit`` candles up to ``to``."""
    interval = query_text("interval", max_length=8)
    start = _time_query("from")
    end = _time_query("to")
    limit = _int_query("limit", 500, low=1, high=MAX_CANDLES)
    return ok(await service().pair_candles(pair, interval, start=start, end=end, limit=limit))


# -- orders ------------------------------------------------------------------------------------


@trading.post("/orders")
@documented(OrderEnvelope, 201, auth=True, body=SubmitOrderIn, errors=[404, 409, 429])
@guarded(SUBMIT)
async def submit_order() -> Response:
    """Place an order. Answered once the order, its locks and its fills are committed. A
    re-submit with the same ``clientOrderId`` answers the original order. A post-only order
    that would cross is stored ``REJECTED`` with its reason. At most
    ``RWA_ORDER_RATE_LIMIT`` submissions per ``RWA_ORDER_RATE_WINDOW_SECONDS`` per user: over
    it 429 ``rate_limited`` with ``Retry-After``."""
    deps: HttpDependencies = current_app.config["RWA_DEPS"]
    refused = await refuse_if_over(deps.order_rate_limit, current_actor().id)
    if refused is not None:
        return refused
    body = await read_body(SubmitOrderIn)
    result = await service().submit(
        current_actor(),
        SubmitOrder(
            pair=body.trading_pair_id,
            side=body.side,
            type=body.type,
            time_in_force=body.time_in_force,
            price=body.price,
            stop_price=body.stop_price,
            quantity=body.quantity,
            quote_amount=body.quote_amount,
            post_only=body.post_only,
            client_order_id=body.client_order_id,
        ),
    )
    pair = await service().get_pair(result.order.pair_id)
    message = "Order already placed (same clientOrderId)" if result.replayed else "Order placed"
    return ok(order_view(pair, result.order), 201, message)


@trading.get("/orders/<order_id>")
@documented(OrderEnvelope, auth=True, errors=[404, 422], path=ORDER_PATH)
@guarded(READ, READ_ANY)
async def get_order(order_id: str) -> Response:
    """One order (its owner, or an admin)."""
    pair, order = await service().get_order(current_actor(), order_id)
    return ok(order_view(pair, order))


@trading.delete("/orders/<order_id>")
@documented(OrderEnvelope, auth=True, errors=[404, 409, 422], path=ORDER_PATH)
@guarded(CANCEL)
async def cancel_order(order_id: str) -> Response:
    """Cancel an open order (its owner, or an admin): the rest of its funds are unlocked in
    the same transaction. An order that has ended is 409 ``order_not_open``."""
    result = await service().cancel(current_actor(), order_id)
    pair = await service().get_pair(result.order.pair_id)
    return ok(order_view(pair, result.order), message="Order cancelled")


@trading.get("/users/<user_id>/orders")
@documented(OrderPageEnvelope, auth=True, errors=[404, 422], query=OrdersQuery, path=USER_PATH)
@guarded(READ, READ_ANY)
async def user_orders(user_id: str) -> Response:
    """A user's orders, newest first; ``status`` (comma-separated) and ``pair`` filter."""
    pairs, page = await service().user_orders(
        current_actor(),
        user_id,
        status=query_text("status", max_length=100),
        pair=query_text("pair", max_length=100),
        limit=_int_query("limit", 20, low=1, high=100),
        cursor=query_text("cursor", max_length=500),
    )
    return ok([order_view(pairs[o.pair_id], o) for o in page.items], pagination=_pagination(page))


@trading.get("/users/<user_id>/trades")
@documented(UserTradePageEnvelope, auth=True, errors=[422], query=PageQuery, path=USER_PATH)
@guarded(READ, READ_ANY)
async def user_trades(user_id: str) -> Response:
    """A user's trades, newest first, with their side, liquidity and fee."""
    pairs, page = await service().user_trades(
        current_actor(),
        user_id,
        limit=_int_query("limit", 20, low=1, high=100),
        cursor=query_text("cursor", max_length=500),
    )
    return ok(
        [dump_user_trade(pairs[t.pair_id], t, user_id) for t in page.items],
        pagination=_pagination(page),
    )
