"""Orders and trades as stored, and the fee arithmetic.

Amounts are ``int``: prices in quote base units per whole base token, quantities in base
units, money in quote base units (``core.trading.pairs``). ``seq`` is the order's id inside
the pair's matching core: strictly increasing per pair, assigned by the pair's single writer.

Funds: a BUY locks quote (price x quantity plus the largest fee it can pay), a SELL locks
base. ``locked`` is what the order still holds locked; it only goes down (fills settle out
of it, the end of the order unlocks the rest), and it is zero once the order has ended.

Fees (DESIGN 8) are in the quote token and rounded up, per order over its fills:
``fee_accrued`` is the sum of notional x bps of the fills so far, and the order has been
charged ``fee = ceil(fee_accrued / 10000)`` in total; each fill charges the difference. An
order's total fee is thus the rounded-up fee of its whole notional, never more.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple

import attrs

from core.shared.errors import Conflict, NotFound, ValidationFailed
from core.shared.ids import new_id
from core.trading.commands import MAX_VALUE
from core.trading.pairs import Pair

SUBMIT = "order.submit"
CANCEL = "order.cancel"
READ_ANY = "order.read_any"  # any user's orders and trades (admins)

BPS = 10_000
MAX_CLIENT_ORDER_ID = 64


class OrderType(enum.StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_LIMIT = "STOP_LIMIT"


class OrderStatus(enum.StrEnum):
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    PENDING_TRIGGER = "PENDING_TRIGGER"


LIVE_STATUSES = frozenset(
    {OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_TRIGGER}
)


@attrs.frozen
class Order:
    pair_id: str
    seq: int
    user_id: str
    side: str  # BUY | SELL
    type: OrderType
    time_in_force: str  # GTC | IOC | FOK
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    price: int | None = None
    stop_price: int | None = None
    quantity: int | None = None  # None: a market BUY by quoteAmount
    quote_amount: int | None = None
    post_only: bool = False
    client_order_id: str | None = None
    maker_fee_bps: int = 0  # the pair's fees when the order was placed
    taker_fee_bps: int = 0
    filled_quantity: int = 0
    filled_quote: int = 0  # sum of price x quantity of the fills
    fee: int = 0
    fee_accrued: int = 0  # sum of notional x bps of the fills
    locked: int = 0  # still locked for this order: quote for a BUY, base for a SELL
    reject_reason: str | None = None
    rest_position: int | None = None  # time priority once it rests on the book
    version: int = 1
    id: str = attrs.field(factory=new_id)

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def remaining_quantity(self) -> int | None:
        if self.quantity is None:
            return None
        return self.quantity - self.filled_quantity if self.is_live else 0


class BookEntry(NamedTuple):
    """A live order as a rebuild of the book needs it (``OrderRepository.book_entries``):
    a plain tuple, because a rebuild reads every resting order of the pair."""

    id: str
    seq: int
    user_id: str
    side: str
    status: OrderStatus
    time_in_force: str
    post_only: bool
    price: int
    stop_price: int | None
    quantity: int
    filled_quantity: int
    rest_position: int | None


def book_entries_of(live: list[Order]) -> list[BookEntry]:
    """``live`` orders as ``BookEntry`` tuples in the order ``book_entries`` promises."""
    resting = sorted(
        (o for o in live if o.status is not OrderStatus.PENDING_TRIGGER),
        key=lambda o: (o.rest_position or 0, o.seq),
    )
    pending = sorted(
        (o for o in live if o.status is OrderStatus.PENDING_TRIGGER), key=lambda o: o.seq
    )
    entries = []
    for o in resting + pending:
        assert o.price is not None and o.quantity is not None, "a live order has both"
        entries.append(
            BookEntry(
                o.id,
                o.seq,
                o.user_id,
                o.side,
                o.status,
                o.time_in_force,
                o.post_only,
                o.price,
                o.stop_price,
                o.quantity,
                o.filled_quantity,
                o.rest_position,
            )
        )
    return entries


@attrs.frozen
class Trade:
    pair_id: str
    seq: int  # per pair, from 1
    price: int
    quantity: int
    maker_order_id: str
    taker_order_id: str
    maker_user_id: str
    taker_user_id: str
    taker_side: str
    maker_fee: int
    taker_fee: int
    created_at: datetime
    id: str = attrs.field(factory=new_id)

    @property
    def buyer_order_id(self) -> str:
        return self.taker_order_id if self.taker_side == "BUY" else self.maker_order_id


def fee_for(accrued_before: int, charged_before: int, notional: int, bps: int) -> int:
    """What one more fill of ``notional`` at ``bps`` charges, given the order's accrued sum
    and what it was charged so far: ``ceil((accrued + notional*bps) / 10000) - charged``."""
    accrued = accrued_before + notional * bps
    return -(-accrued // BPS) - charged_before


def max_fee(notional: int, bps: int) -> int:
    """The largest fee ``notional`` can cost at ``bps`` (rounded up)."""
    return -(-notional * bps // BPS)


# -- errors ------------------------------------------------------------------------------------


class OrderNotFound(NotFound):
    code = "order_not_found"

    def __init__(self, order_id: str) -> None:
        super().__init__("no such order", details={"orderId": order_id})


class OrderNotOpen(Conflict):
    code = "order_not_open"

    def __init__(self, order: Order) -> None:
        super().__init__(
            f"the order is {order.status.value}: only an open order can be cancelled",
            details={"orderId": order.id, "status": order.status.value},
        )


class OrderRefused(ValidationFailed):
    """422 with a specific code (``price_off_tick``, ``quantity_below_min``, ...)."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message, fields={field: message})
        self.code = code


def check_size_limits(pair: Pair, quantity: int) -> None:
    """The pair's minimum and maximum order size (checked at submission, and again by the
    pair's writer against the committed pair: a change of the limits may commit between)."""
    if quantity < pair.min_quantity:
        least = pair.size_text(pair.min_quantity)
        raise OrderRefused("quantity_below_min", "quantity", f"must be at least {least}")
    if quantity > pair.max_quantity:
        most = pair.size_text(pair.max_quantity)
        raise OrderRefused("quantity_above_max", "quantity", f"must be at most {most}")
    if quantity // pair.lot >= MAX_VALUE:  # a pair stored before maxQuantity was bounded
        raise OrderRefused("invalid_quantity", "quantity", "is too large")
