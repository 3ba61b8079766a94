"""Trading pairs: ``{SYMBOL}-{QUOTE}`` with an integer tick and lot, limits, fees and a status
that follows the market.

Units (everything an ``int``):

* a **price** is quote base units per one whole base token; it is a multiple of ``tick``;
* a **quantity** is base-token base units; it is a multiple of ``lot``;
* the matching core counts prices in ticks (``price // tick``) and quantities in lots
  (``qty // lot``); one tick times one lot costs ``quote_per_tick_lot`` quote base units,
  which must be a whole number (checked when the pair is made), so every fill's cost is
  exact: ``price_ticks * qty_lots * quote_per_tick_lot``.

On the wire a price has exactly the decimals of ``tickSize`` and a size exactly the decimals
of ``lotSize`` (``tickSize = tick / 10**quote_decimals``, ``lotSize = lot /
10**base_decimals``, written without trailing zeros).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import attrs

from core.shared.errors import Conflict, NotFound, ValidationFailed
from core.shared.ids import new_id
from core.shared.money import MAX_UINT256
from core.tokens.model import format_units
from core.trading.commands import MAX_VALUE

PAIR_SYMBOL_RE = re.compile(r"[A-Z0-9]{2,12}-[A-Z0-9]{2,12}")
MAX_BPS = 10_000
_NUMBER_RE = re.compile(r"(0|[1-9][0-9]{0,59})(?:\.([0-9]{1,40}))?")

CREATE = "pair.create"
UPDATE = "pair.update"


class PairStatus(enum.StrEnum):
    TRADING = "trading"
    HALTED = "halted"  # the market is paused: no new orders, cancels allowed
    CLOSED = "closed"  # the market is archived: every open order was cancelled


@attrs.frozen
class Pair:
    symbol: str
    base_token_id: str
    quote_token_id: str
    base_decimals: int
    quote_decimals: int
    tick: int  # quote base units per whole base token
    lot: int  # base units
    min_quantity: int  # base units, a multiple of lot
    max_quantity: int
    maker_fee_bps: int
    taker_fee_bps: int
    status: PairStatus
    created_at: datetime
    updated_at: datetime
    market_id: str | None = None
    book_seq: int = 0  # the book's sequence when the last batch committed
    last_price: int | None = None  # quote base units per whole base token
    version: int = 1
    id: str = attrs.field(factory=new_id)

    # -- derived units -----------------------------------------------------------------------

    @property
    def tick_size(self) -> str:
        return format_units(self.tick, self.quote_decimals)

    @property
    def lot_size(self) -> str:
        return format_units(self.lot, self.base_decimals)

    @property
    def price_decimals(self) -> int:
        return _places(self.tick_size)

    @property
    def size_decimals(self) -> int:
        return _places(self.lot_size)

    @property
    def quote_per_tick_lot(self) -> int:
        return int(self.tick * self.lot // 10**self.base_decimals)

    def price_text(self, price: int) -> str:
        """Quote base units per whole base token, with exactly the price precision."""
        return _fixed(price, self.quote_decimals, self.price_decimals)

    def size_text(self, quantity: int) -> str:
        """Base units with exactly the size precision."""
        return _fixed(quantity, self.base_decimals, self.size_decimals)

    def average_text(self, quote_spent: int, quantity: int) -> str:
        """The average price of fills worth ``quote_spent`` quote base units for ``quantity``
        base units: truncated to the quote's smallest unit, written with at least the price
        precision (``"10.00"``, like a price) and more places only when the average is
        between two ticks (``"100.333333"``)."""
        average = quote_spent * 10**self.base_decimals // quantity
        exact = format_units(average, self.quote_decimals)
        places = max(self.price_decimals, _places(exact))
        return _fixed(average, self.quote_decimals, places)

    def quote_text(self, amount: int) -> str:
        """Quote base units as exact whole quote tokens."""
        return format_units(amount, self.quote_decimals)

    def cost(self, price: int, quantity: int) -> int:
        """price x quantity in quote base units (exact for on-tick, on-lot values)."""
        return (price // self.tick) * (quantity // self.lot) * self.quote_per_tick_lot


def _places(text: str) -> int:
    return len(text.partition(".")[2])


def _fixed(amount: int, decimals: int, places: int) -> str:
    """``amount`` units of 10**-decimals written with exactly ``places`` decimals (the value
    is a multiple of 10**(decimals - places) for on-tick and on-lot amounts)."""
    scaled = amount // 10 ** (decimals - places)
    if places == 0:
        return str(scaled)
    digits = str(scaled).rjust(places + 1, "0")
    return f"{digits[:-places]}.{digits[-places:]}"


# -- errors ------------------------------------------------------------------------------------


class PairNotFound(NotFound):
    code = "pair_not_found"

    def __init__(self, reference: str) -> None:
        super().__init__("no such trading pair", details={"pair": reference})


class PairSymbolTaken(Conflict):
    code = "pair_symbol_taken"

    def __init__(self, symbol: str) -> None:
        super().__init__(f"pair {symbol} already exists", details={"symbol": symbol})


class PairNotTrading(Conflict):
    """409 ``pair_halted`` or ``pair_closed``: the pair takes no new orders."""

    def __init__(self, pair: Pair) -> None:
        super().__init__(
            f"pair {pair.symbol} is {pair.status.value}: it takes no new orders",
            details={"pair": pair.symbol, "status": pair.status.value},
            code=f"pair_{pair.status.value}",
        )


class PairClosed(Conflict):
    code = "pair_closed"

    def __init__(self, pair: Pair) -> None:
        super().__init__(f"pair {pair.symbol} is closed", details={"pair": pair.symbol})


# -- amounts from the wire ---------------------------------------------------------------------


def parse_units(value: object, decimals: int, field: str, *, places: int) -> int:
    """A decimal string of at most ``places`` decimals as units of 10**-decimals.

    422 ``validation_failed`` naming ``field`` for a non-string, a sign, an exponent or a
    value of zero; 422 ``too_many_decimals`` beyond ``places``."""
    if not isinstance(value, str) or not _NUMBER_RE.fullmatch(value):
        raise ValidationFailed(
            f"{field} is invalid",
            fields={field: 'must be a positive decimal string such as "12.5"'},
        )
    whole, _, fraction = value.partition(".")
    if len(fraction) > places:
        error = ValidationFailed(
            f"{field} has more decimals than the pair allows",
            fields={field: f"at most {places} decimals"},
        )
        error.code = "too_many_decimals"
        raise error
    units = int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    if units <= 0:
        raise ValidationFailed(f"{field} must be positive", fields={field: "must be positive"})
    return int(units)


def decimal_to_units(value: Decimal, decimals: int, field: str) -> int:
    """An exact ``Decimal`` of whole tokens (a market's tickSize, lotSize) as base units."""
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value() or scaled <= 0:
        raise ValidationFailed(
            f"{field} does not fit the token's decimals",
            fields={field: f"must be a positive multiple of 10^-{decimals}"},
        )
    return int(scaled)


# -- making and changing pairs -----------------------------------------------------------------


@attrs.frozen
class PairDefaults:
    """What a pair gets when its market did not say (``RWA_MAKER_FEE_BPS`` etc.)."""

    maker_fee_bps: int = 10
    taker_fee_bps: int = 20
    min_lots: int = 1  # minQuantity = min_lots x lot
    max_lots: int = 10**12  # maxQuantity = max_lots x lot

    def max_quantity(self, lot: int) -> int:
        """``max_lots`` x ``lot``, kept within what a pair may hold (``max_quantity_bound``)."""
        return lot * max(1, min(self.max_lots, max_quantity_bound(lot) // lot))


def max_quantity_bound(lot: int) -> int:
    """The largest maxQuantity a pair of ``lot`` may have: fewer than 2**62 lots (the matching
    engine's bound) and at most 2**256 - 1 base units (the ledger's)."""
    return min((MAX_VALUE - 1) * lot, MAX_UINT256)


def check_fee(value: object, field: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_BPS:
        raise ValidationFailed(f"{field} is invalid", fields={field: "a whole number 0 to 10000"})
    return value


def make_pair(
    *,
    base_symbol: str,
    quote_symbol: str,
    base_token_id: str,
    quote_token_id: str,
    base_decimals: int,
    quote_decimals: int,
    tick: int,
    lot: int,
    min_quantity: int,
    max_quantity: int,
    maker_fee_bps: int,
    taker_fee_bps: int,
    at: datetime,
    market_id: str | None = None,
) -> Pair:
    """A new trading pair after every rule on its numbers; 422 naming the field otherwise."""
    fields: dict[str, str] = {}
    if base_token_id == quote_token_id:
        fields["quoteTokenId"] = "must differ from the base token"
    if type(tick) is not int or tick <= 0:
        fields["tickSize"] = "must be positive"
    elif tick > MAX_UINT256:
        fields["tickSize"] = "is too large (at most 2**256 - 1 of the quote's smallest units)"
    if type(lot) is not int or lot <= 0:
        fields["lotSize"] = "must be positive"
    elif lot > MAX_UINT256:
        fields["lotSize"] = "is too large (at most 2**256 - 1 of the base's smallest units)"
    if not fields and (tick * lot) % 10**base_decimals:
        fields["tickSize"] = (
            "tickSize x lotSize must be a whole number of the quote token's smallest units"
        )
    if not fields:
        _check_limits(min_quantity, max_quantity, lot, fields)
    for name, fee in (("makerFeeBps", maker_fee_bps), ("takerFeeBps", taker_fee_bps)):
        try:
            check_fee(fee, name)
        except ValidationFailed as exc:
            fields.update(exc.fields)
    if fields:
        raise ValidationFailed("the trading pair is invalid", fields=fields)
    symbol = f"{base_symbol}-{quote_symbol}"
    if not PAIR_SYMBOL_RE.fullmatch(symbol):
        raise ValidationFailed("the pair symbol is invalid", fields={"symbol": "SYMBOL-QUOTE"})
    return Pair(
        symbol=symbol,
        base_token_id=base_token_id,
        quote_token_id=quote_token_id,
        base_decimals=base_decimals,
        quote_decimals=quote_decimals,
        tick=tick,
        lot=lot,
        min_quantity=min_quantity,
        max_quantity=max_quantity,
        maker_fee_bps=maker_fee_bps,
        taker_fee_bps=taker_fee_bps,
        status=PairStatus.TRADING,
        created_at=at,
        updated_at=at,
        market_id=market_id,
    )


def _check_limits(minimum: int, maximum: int, lot: int, fields: dict[str, str]) -> None:
    if type(minimum) is not int or minimum <= 0 or minimum % lot:
        fields["minQuantity"] = "must be a positive multiple of lotSize"
    if type(maximum) is not int or maximum <= 0 or maximum % lot:
        fields["maxQuantity"] = "must be a positive multiple of lotSize"
    elif maximum > max_quantity_bound(lot):
        fields["maxQuantity"] = "is too large (fewer than 2**62 lots, at most 2**256 - 1 units)"
    if not fields and minimum > maximum:
        fields["maxQuantity"] = "must be at least minQuantity"


def change_pair(pair: Pair, changes: Mapping[str, object], at: datetime) -> Pair:
    """``PATCH``: fees, limits (already in base units) and status. 422 naming the field."""
    fields: dict[str, str] = {}
    values: dict[str, object] = {}
    for name in ("maker_fee_bps", "taker_fee_bps"):
        if name in changes:
            camel = "makerFeeBps" if name.startswith("maker") else "takerFeeBps"
            try:
                values[name] = check_fee(changes[name], camel)
            except ValidationFailed as exc:
                fields.update(exc.fields)
    if "min_quantity" in changes or "max_quantity" in changes:  # a status change never fails
        minimum = changes.get("min_quantity", pair.min_quantity)  # on limits stored before a
        maximum = changes.get("max_quantity", pair.max_quantity)  # bound on them existed
        assert isinstance(minimum, int) and isinstance(maximum, int)
        _check_limits(minimum, maximum, pair.lot, fields)
        values["min_quantity"], values["max_quantity"] = minimum, maximum
    if "status" in changes:
        status = changes["status"]
        if not isinstance(status, str) or status not in {s.value for s in PairStatus}:
            fields["status"] = "one of: trading, halted, closed"
        elif pair.status is PairStatus.CLOSED and status != PairStatus.CLOSED.value:
            raise PairClosed(pair)
        else:
            values["status"] = PairStatus(status)
    if fields:
        raise ValidationFailed("the change is invalid", fields=fields)
    return attrs.evolve(pair, updated_at=at, **values)  # type: ignore[arg-type]


def pair_view(pair: Pair) -> dict[str, object]:
    """A pair on the wire (and in the audit log)."""
    return {
        "id": pair.id,
        "symbol": pair.symbol,
        "baseTokenId": pair.base_token_id,
        "quoteTokenId": pair.quote_token_id,
        "marketId": pair.market_id,
        "tickSize": pair.tick_size,
        "lotSize": pair.lot_size,
        "minQuantity": pair.size_text(pair.min_quantity),
        "maxQuantity": pair.size_text(pair.max_quantity),
        "makerFeeBps": pair.maker_fee_bps,
        "takerFeeBps": pair.taker_fee_bps,
        "status": pair.status.value,
        "lastPrice": None if pair.last_price is None else pair.price_text(pair.last_price),
    }
