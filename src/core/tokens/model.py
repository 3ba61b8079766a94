"""Tokens: what the ledger counts and the order book trades.

A token is ``{id, symbol, name, type, decimals, contractAddress, marketId, paused,
createdAt}``. ``type`` is ``RWA`` (a market's ERC-3643 token), ``CRYPTO`` or ``STABLE`` (the
quote currency). The ledger keys its accounts by the token's **id** (``AccountRef.token``),
and holds integers of base units; ``decimals`` turns them into whole tokens on the wire.

Symbols are unique among tokens: 2 to 12 capital letters or digits, matched in full.

Whole-token strings (``format_units``) are exact: ``amount / 10**decimals`` written with
integer arithmetic only, trailing zeros of the fraction dropped, no trailing point, no
exponent (``1500000`` at 6 decimals is ``"1.5"``, ``0`` is ``"0"``, ``1`` is ``"0.000001"``).
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

import attrs

from core.shared.errors import Conflict, NotFound, ValidationFailed
from core.shared.ids import new_id
from core.shared.text import TextError, clean_text

SYMBOL_RE = re.compile(r"[A-Z0-9]{2,12}")
SYMBOL_RULE = "must be 2 to 12 capital letters or digits"
MAX_NAME = 100
MAX_DECIMALS = 36
MAX_USER_ID = 100  # as a path parameter; ``user:<id>`` fits an audit subject


class TokenType(enum.StrEnum):
    RWA = "RWA"
    CRYPTO = "CRYPTO"
    STABLE = "STABLE"


@attrs.frozen
class Token:
    symbol: str
    name: str
    type: TokenType
    decimals: int
    created_at: datetime
    contract_address: str | None = None  # EIP-55 checksummed
    market_id: str | None = None  # the market an RWA token belongs to
    paused: bool = False
    id: str = attrs.field(factory=new_id)


# -- errors ------------------------------------------------------------------------------------


class TokenNotFound(NotFound):
    code = "token_not_found"

    def __init__(self, reference: str) -> None:
        super().__init__("no such token", details={"token": reference})


class UserNotFound(NotFound):
    code = "user_not_found"

    def __init__(self, user_id: str) -> None:
        super().__init__(
            "the platform has no record of this user (no wallet, compliance record or balance)",
            details={"userId": user_id},
        )


class TokenSymbolTaken(Conflict):
    code = "token_symbol_taken"

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"token symbol {symbol} is already taken",
            details={"fields": {"symbol": "is already taken"}, "symbol": symbol},
        )


class TokenAddressTaken(Conflict):
    code = "token_address_taken"

    def __init__(self, address: str) -> None:
        super().__init__(
            "another token has this contract address",
            details={"fields": {"contractAddress": "is used by another token"}},
        )


class MarketTokenTaken(Conflict):
    code = "market_token_taken"

    def __init__(self, market_id: str) -> None:
        super().__init__("this market already has a token", details={"marketId": market_id})


# -- rules -------------------------------------------------------------------------------------


def check_symbol(value: object, field: str = "symbol") -> str:
    if not isinstance(value, str) or len(value) > 12 or not SYMBOL_RE.fullmatch(value):
        raise ValidationFailed(f"{field} is invalid", fields={field: SYMBOL_RULE})
    return value


def check_name(value: object, field: str = "name") -> str:
    try:
        return clean_text(value, max_length=MAX_NAME)
    except TextError as exc:
        raise ValidationFailed(f"{field} is invalid", fields={field: str(exc)}) from exc


def check_decimals(value: object, field: str = "decimals") -> int:
    if type(value) is not int or not 0 <= value <= MAX_DECIMALS:
        raise ValidationFailed(
            f"{field} is invalid", fields={field: f"must be a whole number 0 to {MAX_DECIMALS}"}
        )
    return value


def check_type(value: object, field: str = "type") -> TokenType:
    allowed = ", ".join(t.value for t in TokenType)
    if not isinstance(value, str) or value not in TokenType.__members__:
        raise ValidationFailed(f"{field} is invalid", fields={field: f"one of: {allowed}"})
    return TokenType(value)


def check_user_id(value: object, field: str = "userId") -> str:
    """A user id: client text (``core.shared.text``), not the ledger's reserved ``@`` prefix."""
    try:
        user_id = clean_text(value, max_length=MAX_USER_ID)
    except TextError as exc:
        raise ValidationFailed(f"{field} is invalid", fields={field: str(exc)}) from exc
    if user_id.startswith("@"):
        raise ValidationFailed(f"{field} is invalid", fields={field: "must not start with @"})
    return user_id


# -- amounts -----------------------------------------------------------------------------------


def format_units(amount: int, decimals: int) -> str:
    """``amount`` base units as an exact whole-token decimal string (see the module doc)."""
    if type(amount) is not int or amount < 0:
        raise ValueError("amount must be a non-negative int of base units")
    if type(decimals) is not int or decimals < 0:
        raise ValueError("decimals must be a non-negative int")
    if decimals == 0:
        return str(amount)
    whole, fraction = divmod(amount, 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
