"""The matching core's vocabulary: commands in, event tuples out.

Everything is an integer in engine units: prices in ticks, quantities in lots, a market
BUY's funds in "quote units" of one tick times one lot (the settlement layer converts
decimal amounts at its edge). Order ids are integers assigned by the pair's single writer,
strictly increasing (the command sequence is a natural choice); the engine rejects an id
that is not above every id it has accepted, which also makes an id unique for ever.

Commands are small named tuples; `MatchingEngine.apply` takes any of them, and each has a
method of the same meaning on the engine (`limit`, `market`, `market_buy_funds`,
`stop_limit`, `cancel`) for callers that prefer plain calls.

Events are plain tuples appended to `MatchingEngine.events`, first item the kind:

| kind | tuple |
|---|---|
| `ACCEPTED` | `(ACCEPTED, order_id)` |
| `PENDING` | `(PENDING, order_id)`: a stop order waits in the trigger book |
| `TRIGGERED` | `(TRIGGERED, order_id)`: a stop order enters as a limit order |
| `RESTED` | `(RESTED, order_id, remaining)`: the rest of a GTC limit order is on the book |
| `FILL` | `(FILL, maker_id, taker_id, price, qty, maker_user, taker_user, taker_side)` |
| `CANCELLED` | `(CANCELLED, order_id, remaining, reason)`: by the user |
| `EXPIRED` | `(EXPIRED, order_id, remaining, reason)`: by the rules (IOC, FOK, self-trade) |
| `REJECTED` | `(REJECTED, order_id, reason)`: nothing happened |
| `LEVEL` | `(LEVEL, book_seq, side, price, size)`: a level's new aggregate size, `0` when gone |

`LEVEL` events of one command share one `book_seq`: the engine's `seq` moves by exactly one
for each command that changed the book, so a WebSocket stream of book updates is gap-free.
For a market BUY by funds, `remaining` in `EXPIRED` is the unspent funds. A triggered post-only
stop order that would cross expires (reason `post_only_would_cross`): it was accepted before.
When one command touches a level twice (a triggered stop order), apply the events in order.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

BUY = "BUY"
SELL = "SELL"
SIDES = (BUY, SELL)

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"
TIMES_IN_FORCE = (GTC, IOC, FOK)

ACCEPTED = "accepted"
PENDING = "pending"
TRIGGERED = "triggered"
RESTED = "rested"
FILL = "fill"
CANCELLED = "cancelled"
EXPIRED = "expired"
REJECTED = "rejected"
LEVEL = "level"

# Reasons of CANCELLED / EXPIRED events.
BY_USER = "by_user"
UNFILLED = "unfilled"  # IOC or market remainder: nothing left to cross (or funds left over)
FOK_UNFILLABLE = "fok_unfillable"
SELF_TRADE = "self_trade"  # self-trade prevention expired the taker's rest

# Reasons of REJECTED events.
ORDER_ID_NOT_INCREASING = "order_id_not_increasing"
INVALID_SIDE = "invalid_side"
INVALID_PRICE = "invalid_price"
INVALID_QUANTITY = "invalid_quantity"
INVALID_TIME_IN_FORCE = "invalid_time_in_force"
POST_ONLY_WOULD_CROSS = "post_only_would_cross"
POST_ONLY_NOT_GTC = "post_only_not_gtc"
UNKNOWN_ORDER = "unknown_order"

# Prices and quantities must stay below this bound (far above any real pair).
MAX_VALUE = 1 << 62


class Limit(NamedTuple):
    order_id: int
    user: Hashable
    side: str
    price: int
    qty: int
    tif: str = GTC
    post_only: bool = False


class Market(NamedTuple):
    """A market order by quantity. It never rests: GTC and IOC both expire the rest."""

    order_id: int
    user: Hashable
    side: str
    qty: int
    tif: str = IOC


class MarketBuyFunds(NamedTuple):
    """A market BUY spending at most `funds` quote units (tick x lot): it takes each maker
    while the remaining funds cover price x qty, and expires the unspent funds."""

    order_id: int
    user: Hashable
    funds: int


class StopLimit(NamedTuple):
    """Waits until the last trade price reaches `stop_price` (a BUY: last >= stop; a SELL:
    last <= stop), then enters as a limit order; at once if it already has."""

    order_id: int
    user: Hashable
    side: str
    stop_price: int
    price: int
    qty: int
    tif: str = GTC
    post_only: bool = False


class Cancel(NamedTuple):
    """Cancel a resting or pending order. Who may cancel is the service's check."""

    order_id: int


Command = Limit | Market | MarketBuyFunds | StopLimit | Cancel
