"""Exact amounts: decimal strings at the edges, integers of base units inside. Never floats."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

TOKEN_DECIMALS = 18
MAX_UINT256 = 2**256 - 1
MAX_AMOUNT_CHARS = 100  # longer digit strings are refused before any conversion

_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")
_INTEGER_RE = re.compile(r"^(0|[1-9][0-9]*)$")


class AmountError(ValueError):
    """The text is not an exact non-negative amount of the expected shape."""


def parse_whole_amount(value: object) -> int:
    """Accept an int (not bool) or a string of digits; return the integer. Floats are refused."""
    if isinstance(value, bool):
        raise AmountError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) > MAX_AMOUNT_CHARS:
        raise AmountError(f"must be at most {MAX_AMOUNT_CHARS} characters")
    if isinstance(value, str) and _INTEGER_RE.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, str):
        raise AmountError("must be a whole number written with digits only")
    raise AmountError("must be a whole number as an integer or a decimal string")


def parse_decimal(value: object, *, max_places: int) -> Decimal:
    """Accept a plain decimal string (or an int); refuse floats, exponents and signs."""
    if isinstance(value, bool):
        raise AmountError("must be a decimal string")
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        raise AmountError('must be a decimal string such as "1250000.00"')
    if len(value) > MAX_AMOUNT_CHARS:
        raise AmountError(f"must be at most {MAX_AMOUNT_CHARS} characters")
    text = value.strip()
    if not _DECIMAL_RE.fullmatch(text):
        raise AmountError('must be a plain non-negative decimal string such as "1250000.00"')
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise AmountError("is not a decimal number") from exc
    places = len(text.split(".", 1)[1]) if "." in text else 0
    if places > max_places:
        raise AmountError(f"has more than {max_places} decimal places")
    return amount


def to_base_units(whole_tokens: int, decimals: int = TOKEN_DECIMALS) -> int:
    """Whole tokens to the integer base units an ERC-20 ledger holds."""
    if decimals < 0:
        raise AmountError("decimals must not be negative")
    scale: int = 10**decimals
    return whole_tokens * scale


def format_decimal(amount: Decimal) -> str:
    """A canonical decimal string without exponent notation."""
    return format(amount, "f")
