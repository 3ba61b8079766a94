"""The answer of a valuation source, parsed strictly (shared by every adapter, so the memory
source refuses exactly what the HTTP one refuses)::

    {"valuation": "25000000.00", "currency": "USD", "asOf": "2026-11-23T00:00:00Z",
     "symbol": "LUXAPT", "marketId": "..."}

- ``valuation``: a decimal string (at most 30 digits before the point and 18 after, the
  rule of ``POST /markets/:id/valuations``), or a whole JSON integer; a JSON number with a
  fraction or an exponent is refused (money is never a float), and so are zero, negatives,
  ``NaN``, exponents, signs and spaces;
- ``currency``: an ISO 4217 code (three capital letters);
- ``asOf``: an ISO 8601 time with a zone (at most 40 characters);
- ``symbol`` and ``marketId``: optional; when present they must be the ones asked for.

Unknown fields are ignored. Anything else is a ``ValuationSourceError`` naming the field; no
text of the answer is repeated in the message (it reaches log lines).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.marketdata.valuations import parse_valuation
from core.ports.valuation_source import ValuationQuote, ValuationSourceError
from core.shared import exact_json
from core.shared.errors import ValidationFailed

MAX_BODY = 64 * 1024
MAX_TIME = 40
_CURRENCY = re.compile(r"[A-Z]{3}")


def fail(source: str, symbol: str, why: str) -> ValuationSourceError:
    return ValuationSourceError(f"{source}: {why} (valuation of {symbol})")


def parse_answer(body: bytes, *, source: str, market_id: str, symbol: str) -> ValuationQuote:
    """The quote in ``body`` (the raw answer); ``ValuationSourceError`` for anything else."""
    if len(body) > MAX_BODY:
        raise fail(source, symbol, "the body is too large")
    try:
        document = exact_json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(source, symbol, "the body is not JSON") from exc
    if not isinstance(document, dict):
        raise fail(source, symbol, "the body is not a JSON object")
    if "symbol" in document and document["symbol"] != symbol:
        raise fail(source, symbol, "the answer is for another symbol")
    if "marketId" in document and document["marketId"] != market_id:
        raise fail(source, symbol, "the answer is for another market")
    return ValuationQuote(
        market_id=market_id,
        symbol=symbol,
        valuation=_valuation(document.get("valuation"), source, symbol),
        currency=_currency(document.get("currency"), source, symbol),
        as_of=_as_of(document.get("asOf"), source, symbol),
        source=source,
    )


def _valuation(value: Any, source: str, symbol: str) -> Decimal:
    if value is None:
        raise fail(source, symbol, "valuation is missing")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a whole JSON integer, at most MAX_DIGITS long (exact_json)
    elif isinstance(value, Decimal):
        raise fail(source, symbol, "valuation must be a decimal string, not a JSON fraction")
    elif not isinstance(value, str):
        raise fail(source, symbol, "valuation must be a decimal string")
    try:
        amount = parse_valuation(value)
    except ValidationFailed as exc:
        raise fail(
            source,
            symbol,
            "valuation must be a decimal string such as 25000000.00 (at most 30 digits "
            "before the point and 18 after)",
        ) from exc
    if amount <= 0:
        raise fail(source, symbol, "valuation must be positive")
    return amount


def _currency(value: Any, source: str, symbol: str) -> str:
    if value is None:
        raise fail(source, symbol, "currency is missing")
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise fail(source, symbol, "currency must be an ISO 4217 code such as USD")
    return value


def _as_of(value: Any, source: str, symbol: str) -> datetime:
    if value is None:
        raise fail(source, symbol, "asOf is missing")
    if not isinstance(value, str) or len(value) > MAX_TIME or not value.isascii():
        raise fail(source, symbol, "asOf must be an ISO 8601 time with a zone")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise fail(source, symbol, "asOf has no time zone")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise fail(source, symbol, "asOf is not an ISO 8601 time") from exc
