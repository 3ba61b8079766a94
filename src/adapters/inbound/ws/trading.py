"""The trading channels and ops of DESIGN §6, fed by the pair streams (``pair:<id>``) the
matching engine writes through the outbox.

- ``book``: a snapshot from ``TradingService.orderbook`` (the REST book: same ``seq``, same
  checksum), then one update per ``book.changed`` event with the engine's ``seq`` and
  checksum (never recomputed here). Updates are conflatable: merged, the newer levels win and
  ``fromSeq`` keeps the first ``seq`` merged.
- ``trades``: the pair's recent trades, then each ``trade.executed``.
- ``orders``, ``fills`` (private): ``order.updated`` and ``trade.executed`` events of every
  pair, filtered to the authenticated user's own orders and fills.
- ``order.submit``, ``order.cancel``: the HTTP order body through the same
  ``TradingService`` calls (compliance, balance, tick/lot, permissions, error codes); the
  ``ack`` is sent once the writer's batch has committed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import pydantic

from adapters.inbound.http.order_rate_limit import OrderRateLimit, order_key
from adapters.inbound.http.trading import SubmitOrderIn, dump_trade, dump_user_trade
from adapters.inbound.ws.channels import Channel
from adapters.inbound.ws.gateway import OpHandler
from adapters.inbound.ws.protocol import ClientError, SubscribeRequest
from adapters.inbound.ws.send_queue import Outgoing
from core.shared.errors import PermissionDenied
from core.shared.events import Actor, DomainEvent
from core.shared.roles import roles_allow_any
from core.shared.text import TextError, clean_text, escape
from core.trading.orders import CANCEL, MAX_CLIENT_ORDER_ID, SUBMIT
from core.trading.service import SubmitOrder, TradingService
from core.trading.writer import order_view

log = logging.getLogger(__name__)

BOOK_DEPTHS = (10, 25, 100)
TRADES_SNAPSHOT = 50
PAIR_FAMILY = "pair:*"


def merge_book(older: Mapping[str, Any], newer: Mapping[str, Any]) -> Mapping[str, Any]:
    """Two book updates as one: the newer size of a level wins (sizes are absolute), the
    newer ``seq`` and checksum are kept, ``fromSeq`` is the first ``seq`` merged."""
    merged = dict(newer)
    merged["fromSeq"] = older.get("fromSeq", older["seq"])
    for side in ("bids", "asks"):
        levels = {price: size for price, size in older[side]}
        levels.update({price: size for price, size in newer[side]})
        merged[side] = [[price, size] for price, size in levels.items()]
    return merged


class _PairChannel(Channel):
    def __init__(self, trading: TradingService) -> None:
        self._trading = trading

    def check(self, request: SubscribeRequest) -> SubscribeRequest:
        if request.pair is None:
            raise ClientError("invalid_params", f"channel {self.name} needs a pair")
        if request.interval is not None:
            raise ClientError("invalid_params", f"channel {self.name} takes no interval")
        return request

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        raise ClientError("internal_error", "the pair's stream is resolved asynchronously")

    async def resolve_topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        assert request.pair is not None
        pair = await self._trading.get_pair(request.pair)
        return f"pair:{pair.id}"


class BookChannel(_PairChannel):
    name = "book"
    sequenced = True

    def check(self, request: SubscribeRequest) -> SubscribeRequest:
        if request.depth is not None and request.depth not in BOOK_DEPTHS:
            raise ClientError("invalid_params", "depth must be 10, 25 or 100")
        request = super().check(request)
        return request if request.depth is not None else _with_depth(request, BOOK_DEPTHS[0])

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        assert request.pair is not None
        book = await self._trading.orderbook(request.pair, depth=request.depth or BOOK_DEPTHS[0])
        return {
            "type": "snapshot",
            "channel": self.name,
            "seq": book.seq,
            "bids": [list(level) for level in book.bids],
            "asks": [list(level) for level in book.asks],
            "checksum": book.checksum,
        }

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        if event.type != "book.changed":
            return None
        data = event.metadata
        bids = [[price, size] for side, price, size in data["changes"] if side == "BUY"]
        asks = [[price, size] for side, price, size in data["changes"] if side != "BUY"]
        return Outgoing(
            {
                "type": "update",
                "channel": self.name,
                "pair": request.pair,
                "seq": data["seq"],
                "bids": bids,
                "asks": asks,
                "checksum": data["checksum"],
            },
            key=("book", request.pair, request.depth),
            merge=merge_book,
        )


class TradesChannel(_PairChannel):
    name = "trades"

    def check(self, request: SubscribeRequest) -> SubscribeRequest:
        if request.depth is not None:
            raise ClientError("invalid_params", f"channel {self.name} takes no depth")
        return super().check(request)

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        assert request.pair is not None
        pair, trades = await self._trading.pair_trades(request.pair, limit=TRADES_SNAPSHOT)
        return {
            "type": "snapshot",
            "channel": self.name,
            "trades": [dump_trade(pair, t) for t in trades],
        }

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        if event.type != "trade.executed":
            return None
        data = event.metadata
        return Outgoing(
            {
                "type": "update",
                "channel": self.name,
                "pair": request.pair,
                "stream": event.stream,
                "seq": event.seq,
                "trade": {
                    "id": data["tradeId"],
                    "price": data["price"],
                    "quantity": data["quantity"],
                    "takerSide": data["takerSide"],
                    "executedAt": data.get("at", event.occurred_at.isoformat()),
                },
            }
        )


class _UserChannel(Channel):
    """Private, over every pair stream; ``update_for`` keeps the actor's own events only."""

    private = True

    def __init__(self, trading: TradingService) -> None:
        self._trading = trading

    def topic(self, request: SubscribeRequest, actor: Actor | None) -> str:
        if actor is None:
            raise ClientError("auth_required", "this channel needs an auth op first")
        return PAIR_FAMILY

    def update(self, request: SubscribeRequest, event: DomainEvent) -> Outgoing | None:
        return None  # never without the actor: see update_for


class OrdersChannel(_UserChannel):
    name = "orders"

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        if actor is None:
            raise ClientError("auth_required", "this channel needs an auth op first")
        pairs, page = await self._trading.user_orders(
            actor,
            actor.id,
            status="OPEN,PARTIALLY_FILLED,PENDING_TRIGGER",
            pair=None,
            limit=100,
            cursor=None,
        )
        return {
            "type": "snapshot",
            "channel": self.name,
            "orders": [order_view(pairs[o.pair_id], o) for o in page.items],
            "complete": page.next_cursor is None,
        }

    def update_for(
        self, request: SubscribeRequest, event: DomainEvent, actor: Actor | None
    ) -> Outgoing | None:
        if actor is None or event.type != "order.updated":
            return None
        if event.metadata.get("userId") != actor.id:
            return None
        return Outgoing(
            {
                "type": "update",
                "channel": self.name,
                "stream": event.stream,
                "seq": event.seq,
                "order": dict(event.metadata),
            }
        )


class FillsChannel(_UserChannel):
    name = "fills"

    async def snapshot(self, request: SubscribeRequest, actor: Actor | None) -> Mapping[str, Any]:
        if actor is None:
            raise ClientError("auth_required", "this channel needs an auth op first")
        pairs, page = await self._trading.user_trades(actor, actor.id, limit=50, cursor=None)
        return {
            "type": "snapshot",
            "channel": self.name,
            "fills": [dump_user_trade(pairs[t.pair_id], t, actor.id) for t in page.items],
        }

    def update_for(
        self, request: SubscribeRequest, event: DomainEvent, actor: Actor | None
    ) -> Outgoing | None:
        if actor is None or event.type != "trade.executed":
            return None
        data = event.metadata
        if actor.id == data.get("makerUserId"):
            role, order_id, fee = "maker", data["makerOrderId"], data.get("makerFee")
        elif actor.id == data.get("takerUserId"):
            role, order_id, fee = "taker", data["takerOrderId"], data.get("takerFee")
        else:
            return None
        taker_side = data["takerSide"]
        side = taker_side if role == "taker" else ("SELL" if taker_side == "BUY" else "BUY")
        return Outgoing(
            {
                "type": "update",
                "channel": self.name,
                "stream": event.stream,
                "seq": event.seq,
                "fill": {
                    "tradeId": data["tradeId"],
                    "orderId": order_id,
                    "side": side,
                    "liquidity": role,
                    "price": data["price"],
                    "quantity": data["quantity"],
                    "fee": fee,
                    "executedAt": data.get("at", event.occurred_at.isoformat()),
                },
            }
        )


def _with_depth(request: SubscribeRequest, depth: int) -> SubscribeRequest:
    import attrs

    return attrs.evolve(request, depth=depth)


# -- ops --------------------------------------------------------------------------------------

_OP_FIELDS = frozenset({"op", "reqId"})


def _require(actor: Actor, action: str) -> None:
    if not roles_allow_any(actor.roles, (action,)):
        raise PermissionDenied(action, (f"none of the caller's roles grants {action}",))


async def _refuse_if_over(config: OrderRateLimit | None, user_id: str) -> None:
    """HTTP's per-user order limit, counted in the same store (one budget for both)."""
    if config is None:
        return
    try:
        decision = await config.limiter.hit(order_key(user_id), config.limit, config.window_seconds)
    except Exception:  # the limiter's store is down: accept, as HTTP does
        log.warning("order rate limiter unavailable; order allowed")
        return
    if not decision.allowed:
        raise ClientError(
            "rate_limited",
            f"more than {config.limit} orders in {config.window_seconds:g} s from this user; "
            f"retry after {max(1, math.ceil(decision.retry_after_seconds))} s",
        )


def order_ops(
    trading: TradingService, rate_limit: OrderRateLimit | None = None
) -> dict[str, OpHandler]:
    """``order.submit`` and ``order.cancel`` over ``trading``."""

    async def submit(actor: Actor, frame: dict[str, Any]) -> Mapping[str, Any]:
        _require(actor, SUBMIT)
        await _refuse_if_over(rate_limit, actor.id)
        fields = {k: v for k, v in frame.items() if k not in _OP_FIELDS}
        try:
            body = SubmitOrderIn.model_validate(fields)
        except pydantic.ValidationError as exc:
            # a field's name may be the client's own (an unknown field): escaped, as every
            # client text in a message
            names = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            listed = ", ".join(escape(name, max_length=32) or '""' for name in names)
            raise ClientError(
                "validation_failed", "invalid order fields: " + listed[:200]
            ) from None
        result = await trading.submit(
            actor,
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
        pair = await trading.get_pair(result.order.pair_id)
        return {"type": "ack", "order": order_view(pair, result.order)}

    async def cancel(actor: Actor, frame: dict[str, Any]) -> Mapping[str, Any]:
        _require(actor, CANCEL)
        order_id = frame.get("orderId")
        client_id = frame.get("clientOrderId")
        if (order_id is None) == (client_id is None):
            raise ClientError("invalid_params", "give exactly one of orderId, clientOrderId")
        if order_id is None:
            try:  # as the submit stored it: NFC, by the text rules
                client_id = clean_text(client_id, max_length=MAX_CLIENT_ORDER_ID)
            except TextError as exc:
                raise ClientError("invalid_params", f"clientOrderId {exc}") from None
            order_id = await _by_client_id(trading, actor, client_id)
        try:
            order_id = clean_text(order_id, max_length=64)
        except TextError as exc:
            raise ClientError("invalid_params", f"orderId {exc}") from None
        result = await trading.cancel(actor, order_id)
        pair = await trading.get_pair(result.order.pair_id)
        return {"type": "ack", "order": order_view(pair, result.order)}

    return {"order.submit": submit, "order.cancel": cancel}


async def _by_client_id(trading: TradingService, actor: Actor, client_id: str) -> str:
    """The id of the actor's live order with ``clientOrderId`` (``order_not_found`` else)."""
    cursor: str | None = None
    while True:
        _, page = await trading.user_orders(
            actor,
            actor.id,
            status="OPEN,PARTIALLY_FILLED,PENDING_TRIGGER",
            pair=None,
            limit=100,
            cursor=cursor,
        )
        for order in page.items:
            if order.client_order_id == client_id:
                return str(order.id)
        if page.next_cursor is None:
            raise ClientError("order_not_found", "no open order has this clientOrderId")
        cursor = page.next_cursor
