"""Trading use cases: pairs, orders and their reads, each pair behind its single writer.

Order of checks on a submission (DESIGN 5.1, 8): the HTTP guard (401, role 403, body 422);
then here, the pair (404 ``pair_not_found``), the order's numbers against the pair (422 with
a code: ``price_off_tick``, ``quantity_off_lot``, ``quantity_below_min``,
``quantity_above_max``, ``too_many_decimals``, ``price_not_allowed``,
``stop_price_required``, ...), the permissions port (403); then in the pair's writer, inside
the batch's transaction: the pair's status (409 ``pair_halted`` / ``pair_closed``), the
``clientOrderId`` (a re-submit answers the original order), compliance for an RWA base token
(403), the funds (409 ``insufficient_funds``). A refused order leaves nothing behind: no
record, no lock, nothing in the book.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from core.marketdata import queries as md
from core.marketdata.model import Interval
from core.markets.model import Market
from core.markets.queries import decode_cursor, encode_cursor
from core.ports.audit import audit_entry
from core.ports.clock import Clock
from core.ports.marketdata import MAX_CANDLES
from core.ports.metrics import NO_METRICS, Metrics
from core.ports.order_routing import EngineCommand, OrderRouter
from core.ports.storage import Storage, UnitOfWork
from core.shared.authorization import Authorizer
from core.shared.errors import PermissionDenied, ValidationFailed
from core.shared.events import Actor, DomainEvent
from core.shared.ids import new_id
from core.shared.roles import roles_allow_any
from core.shared.text import TextError, clean_text
from core.tokens.model import Token, check_user_id
from core.tokens.use_cases import find_token
from core.trading import book as book_format
from core.trading import commands as c
from core.trading.commands import MAX_VALUE
from core.trading.orders import (
    MAX_CLIENT_ORDER_ID,
    READ_ANY,
    SUBMIT,
    Order,
    OrderNotFound,
    OrderRefused,
    OrderStatus,
    OrderType,
    Trade,
    check_size_limits,
)
from core.trading.pairs import (
    CREATE,
    PAIR_SYMBOL_RE,
    UPDATE,
    Pair,
    PairDefaults,
    PairNotFound,
    PairStatus,
    decimal_to_units,
    make_pair,
    pair_view,
    parse_units,
)
from core.trading.stored_book import StoredBooks
from core.trading.writer import (
    CancelOrder,
    ChangePair,
    NewOrder,
    OrderResult,
    PairWriter,
    Request,
)

READ = "order.read"
MAX_PAGE = 100
MAX_DEPTH = 500
MARKET_STATUS = {
    "market.paused": PairStatus.HALTED,
    "market.resumed": PairStatus.TRADING,
    "market.archived": PairStatus.CLOSED,
}


@attrs.frozen
class SubmitOrder:
    """``POST /trading/orders`` as received (strings checked here against the pair)."""

    pair: str
    side: str
    type: str
    time_in_force: str = c.GTC
    price: str | None = None
    stop_price: str | None = None
    quantity: str | None = None
    quote_amount: str | None = None
    post_only: bool = False
    client_order_id: str | None = None


@attrs.frozen
class CreatePair:
    base: str  # token id or symbol
    quote: str
    tick_size: str
    lot_size: str
    min_quantity: str | None = None
    max_quantity: str | None = None
    maker_fee_bps: int | None = None
    taker_fee_bps: int | None = None


@attrs.frozen
class Page:
    items: list[Any]
    limit: int
    next_cursor: str | None


@attrs.frozen
class OrderBook:
    pair: Pair
    seq: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    checksum: int


async def create_pair_for_market(
    uow: UnitOfWork,
    market: Market,
    base_token: Token,
    quote_token: Token,
    defaults: PairDefaults,
    at: datetime | None = None,
) -> Pair:
    """The pair of an activated market, in the activation's unit of work: tick and lot from
    the registration (``tickSize`` in quote tokens, ``lotSize`` in base tokens; when absent
    the smallest units that keep price x size exact), fees from it or ``defaults``. A market
    that already has its pair gets it back unchanged. ``at`` defaults to the market's
    activation time (else its last update)."""
    existing = await uow.pairs.by_market(market.id)
    if existing is not None:
        return existing
    if market.lot_size is not None:
        lot = decimal_to_units(market.lot_size, base_token.decimals, "lotSize")
    else:
        lot = 10**base_token.decimals  # one whole token
    if market.tick_size is not None:
        tick = decimal_to_units(market.tick_size, quote_token.decimals, "tickSize")
    else:
        tick = max(1, 10**quote_token.decimals // 100)  # a cent
    pair = make_pair(
        base_symbol=base_token.symbol,
        quote_symbol=quote_token.symbol,
        base_token_id=base_token.id,
        quote_token_id=quote_token.id,
        base_decimals=base_token.decimals,
        quote_decimals=quote_token.decimals,
        tick=tick,
        lot=lot,
        min_quantity=lot * defaults.min_lots,
        max_quantity=defaults.max_quantity(lot),
        maker_fee_bps=(
            market.maker_fee_bps if market.maker_fee_bps is not None else defaults.maker_fee_bps
        ),
        taker_fee_bps=(
            market.taker_fee_bps if market.taker_fee_bps is not None else defaults.taker_fee_bps
        ),
        at=at or market.activated_at or market.updated_at,
        market_id=market.id,
    )
    await uow.pairs.add(pair)
    return pair


async def find_pair(uow: UnitOfWork, reference: str) -> Pair:
    """A pair by id or by symbol (``LUXAPT-USDC``, any case); 404 ``pair_not_found``."""
    found = None
    if PAIR_SYMBOL_RE.fullmatch(reference.upper()):  # a symbol first: one read, not two
        found = await uow.pairs.by_symbol(reference.upper())
    if found is None:
        found = await uow.pairs.get(reference)
    if found is None:
        raise PairNotFound(reference)
    return found


class TradingService:
    def __init__(
        self,
        storage: Storage,
        authorizer: Authorizer,
        clock: Clock,
        defaults: PairDefaults | None = None,
        *,
        metrics: Metrics = NO_METRICS,
        router: OrderRouter | None = None,
        reply_timeout: float = 10.0,
    ) -> None:
        """``router``: the books live in engine processes (production): requests for a pair's
        writer go through it and wait at most ``reply_timeout`` seconds (503
        ``engine_unavailable``); the book is read from storage. Without it, this process
        runs every pair's writer itself (embedded and test profiles)."""
        self._storage = storage
        self._metrics = metrics
        self._authorizer = authorizer
        self._clock = clock
        self._defaults = defaults or PairDefaults()
        self._writers: dict[str, PairWriter] = {}
        self._router = router
        self._reply_timeout = reply_timeout
        self._stored_books = StoredBooks(storage)

    @property
    def defaults(self) -> PairDefaults:
        """What a market's pair gets when its registration did not say (the settings)."""
        return self._defaults

    # -- writers ---------------------------------------------------------------------------------

    def writer(self, pair_id: str) -> PairWriter:
        found = self._writers.get(pair_id)
        if found is None:
            found = self._writers[pair_id] = PairWriter(
                pair_id, self._storage, self._clock, metrics=self._metrics
            )
        return found

    async def _dispatch(self, pair_id: str, request: Request) -> Any:
        """The answer of the pair's writer: in this process, or from its engine."""
        if self._router is None:
            return await self.writer(pair_id).submit(request)
        # an engine starts no command older than this: a command it takes in the last
        # moments before the requester gives up could commit after the 503
        margin = min(1.0, self._reply_timeout / 5)
        deadline = self._clock.now() + timedelta(seconds=self._reply_timeout - margin)
        command = EngineCommand(new_id(), pair_id, request, deadline)
        reply = await self._router.request(command, timeout=self._reply_timeout)
        return reply.unwrap()

    async def start(self) -> None:
        """Rebuild every pair's book from storage and start its writer (none with a
        router: the engines own the books)."""
        if self._router is not None:
            return
        async with self._storage.unit_of_work(read_only=True) as uow:
            pairs = await uow.pairs.list()
        for pair in pairs:
            writer = self.writer(pair.id)
            await writer.rebuild()
            writer.start()

    async def stop(self) -> None:
        writers = list(self._writers.values())
        self._writers.clear()
        await asyncio.gather(*(w.stop() for w in writers))

    # -- pairs -----------------------------------------------------------------------------------

    async def create_pair(self, actor: Actor, command: CreatePair) -> Pair:
        await self._authorizer.require(actor, CREATE)
        now = self._clock.now()
        async with self._storage.unit_of_work() as uow:
            base = await find_token(uow, command.base)
            quote = await find_token(uow, command.quote)
            tick = parse_units(command.tick_size, quote.decimals, "tickSize", places=quote.decimals)
            lot = parse_units(command.lot_size, base.decimals, "lotSize", places=base.decimals)
            minimum = self._size(command.min_quantity, base, "minQuantity", lot)
            maximum = self._size(
                command.max_quantity, base, "maxQuantity", self._defaults.max_quantity(lot)
            )
            pair = make_pair(
                base_symbol=base.symbol,
                quote_symbol=quote.symbol,
                base_token_id=base.id,
                quote_token_id=quote.id,
                base_decimals=base.decimals,
                quote_decimals=quote.decimals,
                tick=tick,
                lot=lot,
                min_quantity=minimum,
                max_quantity=maximum,
                maker_fee_bps=_or(command.maker_fee_bps, self._defaults.maker_fee_bps),
                taker_fee_bps=_or(command.taker_fee_bps, self._defaults.taker_fee_bps),
                at=now,
                market_id=base.market_id,
            )
            await uow.pairs.add(pair)
            await uow.audit.append(
                audit_entry(
                    actor, CREATE, f"pair:{pair.id}", before=None, after=pair_view(pair), at=now
                )
            )
            await uow.commit()
        return pair

    @staticmethod
    def _size(value: str | None, base: Token, field: str, default: int) -> int:
        if value is None:
            return default
        return parse_units(value, base.decimals, field, places=base.decimals)

    async def update_pair(self, actor: Actor, reference: str, changes: Mapping[str, Any]) -> Pair:
        """``PATCH``: fees, limits, status; through the pair's writer, so a change to
        ``closed`` cancels every open order and unlocks its funds in the same batch."""
        await self._authorizer.require(actor, UPDATE)
        pair = await self.get_pair(reference)
        converted: dict[str, object] = {}
        for key, value in changes.items():
            if key in ("min_quantity", "max_quantity"):
                field = "minQuantity" if key == "min_quantity" else "maxQuantity"
                converted[key] = parse_units(
                    value, pair.base_decimals, field, places=pair.size_decimals
                )
            else:
                converted[key] = value
        result = await self._dispatch(pair.id, ChangePair(actor, converted))
        assert isinstance(result, Pair)
        return result

    async def on_market_event(self, event: DomainEvent) -> None:
        """Outbox reaction: ``market.paused`` halts the market's pair, ``market.resumed``
        reopens it, ``market.archived`` closes it (cancelling every open order). Repeats
        change nothing."""
        status = MARKET_STATUS.get(event.type)
        if status is None:
            return
        async with self._storage.unit_of_work(read_only=True) as uow:
            pair = await uow.pairs.by_market(event.aggregate_id)
        if pair is None or pair.status is PairStatus.CLOSED:
            return
        actor = Actor(id=event.actor_id, type="system")
        await self._dispatch(
            pair.id, ChangePair(actor, {"status": status.value}, action=event.type)
        )

    async def get_pair(self, reference: str) -> Pair:
        async with self._storage.unit_of_work(read_only=True) as uow:
            return await find_pair(uow, reference)

    async def list_pairs(self) -> list[Pair]:
        async with self._storage.unit_of_work(read_only=True) as uow:
            return await uow.pairs.list()

    # -- orders ----------------------------------------------------------------------------------

    async def submit(self, actor: Actor, command: SubmitOrder) -> OrderResult:
        pair = await self.get_pair(command.pair)
        order = self._order(actor, pair, command)
        await self._authorizer.require(actor, SUBMIT, owner_id=actor.id)
        result = await self._dispatch(pair.id, NewOrder(actor, order))
        assert isinstance(result, OrderResult)
        return result

    def _order(self, actor: Actor, pair: Pair, command: SubmitOrder) -> Order:
        """The order's numbers against the pair's rules (nothing stored yet)."""
        if command.side not in c.SIDES:
            raise ValidationFailed("side is invalid", fields={"side": "BUY or SELL"})
        if command.type not in OrderType.__members__:
            raise ValidationFailed(
                "type is invalid", fields={"type": "LIMIT, MARKET or STOP_LIMIT"}
            )
        if command.time_in_force not in c.TIMES_IN_FORCE:
            raise ValidationFailed(
                "timeInForce is invalid", fields={"timeInForce": "GTC, IOC or FOK"}
            )
        kind = OrderType(command.type)
        client_id = None
        if command.client_order_id is not None:
            try:
                client_id = clean_text(command.client_order_id, max_length=MAX_CLIENT_ORDER_ID)
            except TextError as exc:
                raise ValidationFailed(
                    "clientOrderId is invalid", fields={"clientOrderId": str(exc)}
                ) from exc
        price = stop = quantity = quote_amount = None
        tif = command.time_in_force
        if kind is OrderType.MARKET:
            if command.price is not None or command.stop_price is not None:
                field = "price" if command.price is not None else "stopPrice"
                raise OrderRefused("price_not_allowed", field, "a market order takes no price")
            if command.post_only:
                raise OrderRefused("post_only_not_allowed", "postOnly", "a market order takes")
            if command.quote_amount is not None:
                if command.side != c.BUY or command.quantity is not None:
                    raise OrderRefused(
                        "quote_amount_not_allowed",
                        "quoteAmount",
                        "only a market BUY, instead of quantity, takes quoteAmount",
                    )
                quote_amount = parse_units(
                    command.quote_amount,
                    pair.quote_decimals,
                    "quoteAmount",
                    places=pair.quote_decimals,
                )
                if quote_amount >= MAX_VALUE * pair.quote_per_tick_lot:
                    raise OrderRefused("invalid_quantity", "quoteAmount", "is too large")
            else:
                quantity = self._quantity(pair, command.quantity)
            tif = c.IOC if tif == c.GTC else tif
        else:
            price = self._price(pair, command.price, "price")
            if kind is OrderType.STOP_LIMIT:
                if command.stop_price is None:
                    raise OrderRefused(
                        "stop_price_required", "stopPrice", "a STOP_LIMIT order needs stopPrice"
                    )
                stop = self._price(pair, command.stop_price, "stopPrice")
            elif command.stop_price is not None:
                raise OrderRefused(
                    "stop_price_not_allowed", "stopPrice", "only a STOP_LIMIT order takes it"
                )
            if command.quote_amount is not None:
                raise OrderRefused(
                    "quote_amount_not_allowed", "quoteAmount", "only a market BUY takes it"
                )
            quantity = self._quantity(pair, command.quantity)
            if command.post_only and tif != c.GTC:
                raise OrderRefused("post_only_not_gtc", "postOnly", "a post-only order must be GTC")
        now = self._clock.now()
        return Order(
            pair_id=pair.id,
            seq=0,
            user_id=actor.id,
            side=command.side,
            type=kind,
            time_in_force=tif,
            status=OrderStatus.OPEN,
            created_at=now,
            updated_at=now,
            price=price,
            stop_price=stop,
            quantity=quantity,
            quote_amount=quote_amount,
            post_only=command.post_only,
            client_order_id=client_id,
        )

    @staticmethod
    def _price(pair: Pair, value: str | None, field: str) -> int:
        if value is None:
            raise OrderRefused("price_required", field, f"a limit order needs {field}")
        price = parse_units(value, pair.quote_decimals, field, places=pair.price_decimals)
        if price % pair.tick:
            raise OrderRefused(
                "price_off_tick", field, f"must be a multiple of the tick size {pair.tick_size}"
            )
        if price // pair.tick >= MAX_VALUE:
            raise OrderRefused("invalid_price", field, "is too large")
        return price

    @staticmethod
    def _quantity(pair: Pair, value: str | None) -> int:
        if value is None:
            raise OrderRefused("quantity_required", "quantity", "the order needs quantity")
        quantity = parse_units(value, pair.base_decimals, "quantity", places=pair.size_decimals)
        if quantity % pair.lot:
            raise OrderRefused(
                "quantity_off_lot",
                "quantity",
                f"must be a multiple of the lot size {pair.lot_size}",
            )
        check_size_limits(pair, quantity)
        return quantity

    async def cancel(self, actor: Actor, order_id: str) -> OrderResult:
        async with self._storage.unit_of_work(read_only=True) as uow:
            order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        _require_owner(actor, order.user_id, "orders")
        result = await self._dispatch(order.pair_id, CancelOrder(actor, order_id))
        assert isinstance(result, OrderResult)
        return result

    async def get_order(self, actor: Actor, order_id: str) -> tuple[Pair, Order]:
        async with self._storage.unit_of_work(read_only=True) as uow:
            order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            _require_owner(actor, order.user_id, "orders")
            pair = await uow.pairs.get(order.pair_id)
        assert pair is not None
        return pair, order

    async def user_orders(
        self,
        actor: Actor,
        user_id: str,
        *,
        status: str | None,
        pair: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[dict[str, Pair], Page]:
        user_id = check_user_id(user_id)
        _require_owner(actor, user_id, "orders")
        statuses: list[OrderStatus] = []
        if status is not None:
            for part in status.split(","):
                if part not in OrderStatus.__members__:
                    raise ValidationFailed(
                        "status is invalid",
                        fields={"status": "one or more of " + ", ".join(OrderStatus)},
                    )
                statuses.append(OrderStatus(part))
        _check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        async with self._storage.unit_of_work(read_only=True) as uow:
            pair_id = None if pair is None else (await find_pair(uow, pair)).id
            rows = await uow.orders.for_user(
                user_id, statuses=statuses, pair_id=pair_id, limit=limit + 1, before_id=before
            )
            pairs = {p.id: p for p in await uow.pairs.list()}
        return pairs, _page(rows, limit)

    async def user_trades(
        self, actor: Actor, user_id: str, *, limit: int, cursor: str | None
    ) -> tuple[dict[str, Pair], Page]:
        user_id = check_user_id(user_id)
        _require_owner(actor, user_id, "trades")
        _check_limit(limit)
        before = decode_cursor(cursor) if cursor else None
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.trades.for_user(user_id, limit=limit + 1, before_id=before)
            pairs = {p.id: p for p in await uow.pairs.list()}
        return pairs, _page(rows, limit)

    async def pair_trades(self, reference: str, *, limit: int) -> tuple[Pair, list[Trade]]:
        _check_limit(limit)
        async with self._storage.unit_of_work(read_only=True) as uow:
            pair = await find_pair(uow, reference)
            return pair, await uow.trades.for_pair(pair.id, limit=limit)

    async def orderbook(self, reference: str, *, depth: int) -> OrderBook:
        """The committed book, aggregated by price, with its seq and checksum."""
        if not 1 <= depth <= MAX_DEPTH:
            raise ValidationFailed("bad depth", fields={"depth": f"must be 1 to {MAX_DEPTH}"})
        pair = await self.get_pair(reference)
        if self._router is None:
            current, bids, asks, seq = await self.writer(pair.id).stable_depth(depth)
        else:  # the engine's last commit, from storage
            current, bids, asks, seq = await self._stored_books.depth(pair.id, depth)
        scale = {
            "tick": current.tick // 10 ** (current.quote_decimals - current.price_decimals),
            "price_decimals": current.price_decimals,
            "lot": current.lot // 10 ** (current.base_decimals - current.size_decimals),
            "size_decimals": current.size_decimals,
        }
        bid_text = book_format.level_strings(bids, **scale)
        ask_text = book_format.level_strings(asks, **scale)
        return OrderBook(
            pair=current,
            seq=seq,
            bids=bid_text,
            asks=ask_text,
            checksum=book_format.checksum(bid_text, ask_text),
        )

    # -- market data (candles and stats the aggregate-candles reaction keeps) ---------------------

    async def pair_stats(self, reference: str) -> dict[str, Any]:
        """``GET /trading/pairs/:pair/stats``: the pair's 24h stats, on the wire."""
        now = self._clock.now()
        async with self._storage.unit_of_work(read_only=True) as uow:
            pair = await find_pair(uow, reference)
            stats = await md.stats_in(uow, pair.id, now=now)
        return md.stats_wire(stats, _format(pair))

    async def all_stats(self) -> list[dict[str, Any]]:
        """``GET /trading/stats``: every pair's 24h stats (with ``pair`` and ``symbol``), by
        pair id, read in one snapshot."""
        now = self._clock.now()
        async with self._storage.unit_of_work(read_only=True) as uow:
            pairs = sorted(await uow.pairs.list(), key=lambda p: p.id)
            return [
                md.stats_item_wire(await md.stats_in(uow, p.id, now=now), _format(p), p.symbol)
                for p in pairs
            ]

    async def ticker(self, reference: str) -> dict[str, Any]:
        """The WebSocket ``ticker`` of one pair: the 24h stats of ``GET .../stats``, the best
        bid and ask with their sizes (``bid``, ``bidSize``, ``ask``, ``askSize``, null on an
        empty side) and the book ``seq`` they were read at, the latest accepted reference
        price of the base token's symbol and the market's latest asset valuation."""
        book = await self.orderbook(reference, depth=1)
        pair = book.pair
        payload = await md.ticker_payload(
            self._storage,
            pair_id=pair.id,
            symbol=pair.symbol,
            fmt=_format(pair),
            now=self._clock.now(),
            reference_symbol=pair.symbol.split("-", 1)[0],
            market_id=pair.market_id,
        )
        bid = book.bids[0] if book.bids else (None, None)
        ask = book.asks[0] if book.asks else (None, None)
        payload.update(bid=bid[0], bidSize=bid[1], ask=ask[0], askSize=ask[1], bookSeq=book.seq)
        return payload

    async def has_market_trade(self, pair_id: str, seq: int) -> bool:
        """Whether market data (the ``aggregate-candles`` reaction) has stored the trade of
        event ``seq`` of ``pair:<pair_id>``: candles and stats read after it include it."""
        async with self._storage.unit_of_work(read_only=True) as uow:
            return await uow.market_data.has_trade(pair_id, seq)

    async def pair_candles(
        self,
        reference: str,
        interval: str | None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """``GET /trading/pairs/:pair/candles``: oldest first; ``start``/``end`` bound
        ``openTime`` (both inclusive); without ``start`` the newest ``limit`` up to ``end``.
        The query is checked (422) before the pair is looked up (404)."""
        allowed = ", ".join(i.value for i in Interval)
        if interval is None:
            raise ValidationFailed("interval is required", fields={"interval": f"one of {allowed}"})
        try:
            parsed = Interval.parse(interval)
        except ValueError as exc:
            raise ValidationFailed("interval is invalid", fields={"interval": str(exc)}) from exc
        if not 1 <= limit <= MAX_CANDLES:
            raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_CANDLES}"})
        if start is not None and end is not None and start > end:
            raise ValidationFailed("from is after to", fields={"from": "must not be after to"})
        async with self._storage.unit_of_work(read_only=True) as uow:
            pair = await find_pair(uow, reference)
            rows = await uow.market_data.candles(pair.id, parsed, start=start, end=end, limit=limit)
        fmt = _format(pair)
        return [md.candle_wire(candle, fmt) for candle in rows]


def _format(pair: Pair) -> md.PairFormat:
    """How market data writes the pair's numbers: its price and size places."""
    return md.PairFormat(pair.price_decimals, pair.size_decimals)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_PAGE}"})


def _page(rows: list[Any], limit: int) -> Page:
    items = rows[:limit]
    more = len(rows) > limit
    return Page(items, limit, encode_cursor(items[-1].id) if more and items else None)


def _require_owner(actor: Actor, user_id: str, what: str) -> None:
    """A trader reads and cancels only their own orders; admins (``order.read_any``) any."""
    if actor.type != "user":
        return
    if actor.id == user_id and roles_allow_any(actor.roles, (READ, SUBMIT)):
        return
    if roles_allow_any(actor.roles, (READ_ANY,)):
        return
    raise PermissionDenied(READ, (f"a trader reads and cancels only their own {what}",))
