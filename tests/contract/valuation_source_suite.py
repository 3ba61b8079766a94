"""The valuation-source contract: every ``ValuationSource`` adapter runs it. A subclass
provides ``source_setup``: a source and a way to set the raw answer for a symbol (the bytes an
HTTP source would receive). Both adapters parse answers by the same strict rules: what one
refuses, the other refuses, with the same reason."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.ports.valuation_source import ValuationSource, ValuationSourceError

SetRaw = Callable[[str, bytes], None]
MARKET = "m-1"
SYMBOL = "LUXAPT"
AS_OF = "2026-11-23T00:00:00Z"


def answer(**fields: object) -> bytes:
    document: dict[str, object] = {"valuation": "25000000.10", "currency": "USD", "asOf": AS_OF}
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def raw_valuation(number: str) -> bytes:
    """An answer whose ``valuation`` is the JSON text ``number``, as sent."""
    return (
        b'{"valuation": '
        + number.encode()
        + b', "currency": "USD", "asOf": "'
        + AS_OF.encode()
        + b'"}'
    )


# body -> a fragment of the refusal's message
REFUSED: dict[str, tuple[bytes, str]] = {
    "31 digits": (answer(valuation="1" + "0" * 30), "decimal string such as"),
    "4,000 digits as a string": (answer(valuation="9" * 4000), "decimal string such as"),
    "4,000 digits as a number": (raw_valuation("9" * 4000), "must be a decimal string"),
    "19 decimals": (answer(valuation="1." + "1" * 19), "decimal string such as"),
    "negative string": (answer(valuation="-5"), "decimal string such as"),
    "negative number": (raw_valuation("-5"), "decimal string such as"),
    "zero": (answer(valuation="0.00"), "positive"),
    "zero number": (raw_valuation("0"), "positive"),
    "NaN string": (answer(valuation="NaN"), "decimal string such as"),
    "Infinity string": (answer(valuation="Infinity"), "decimal string such as"),
    "NaN literal": (raw_valuation("NaN"), "not JSON"),
    "Infinity literal": (raw_valuation("Infinity"), "not JSON"),
    "a JSON fraction": (raw_valuation("25000000.10"), "not a JSON fraction"),
    "an exponent": (raw_valuation("2.5e7"), "not a JSON fraction"),
    "an exponent string": (answer(valuation="2.5E7"), "decimal string such as"),
    "spaces": (answer(valuation=" 25"), "decimal string such as"),
    "a sign": (answer(valuation="+25"), "decimal string such as"),
    "grouping": (answer(valuation="25,000"), "decimal string such as"),
    "Arabic-Indic digits": (answer(valuation="\u0662\u0665"), "decimal string such as"),
    "a boolean": (answer(valuation=True), "must be a decimal string"),
    "an object": (answer(valuation={"amount": "1"}), "must be a decimal string"),
    "no valuation": (answer(valuation=...), "valuation is missing"),
    "a null valuation": (answer(valuation=None), "valuation is missing"),
    "no currency": (answer(currency=...), "currency is missing"),
    "lower-case currency": (answer(currency="usd"), "ISO 4217"),
    "a numeric currency": (answer(currency=840), "ISO 4217"),
    "a lone surrogate currency": (answer(currency="\ud800SD"), "ISO 4217"),
    "an escape sequence currency": (answer(currency="\x1b[31m"), "ISO 4217"),
    "no asOf": (answer(asOf=...), "asOf is missing"),
    "asOf without a zone": (answer(asOf="2026-11-23T00:00:00"), "no time zone"),
    "asOf as Unix seconds": (answer(asOf=1795442400), "ISO 8601"),
    "asOf not a time": (answer(asOf="yesterday"), "ISO 8601"),
    "asOf too long": (answer(asOf="2026-11-23T00:00:00" + "0" * 4000 + "Z"), "ISO 8601"),
    "asOf beyond year 9999 in UTC": (answer(asOf="9999-12-31T23:59:59-23:59"), "ISO 8601"),
    "asOf with a lone surrogate": (answer(asOf="2026-11-23\ud800"), "ISO 8601"),
    "another symbol": (answer(symbol="OTHER"), "another symbol"),
    "another market": (answer(marketId="m-2"), "another market"),
    "an array": (b"[1, 2]", "not a JSON object"),
    "a string": (b'"25000000"', "not a JSON object"),
    "HTML": (b"<html>oops</html>", "not JSON"),
    "empty": (b"", "not JSON"),
    "not UTF-8": (b'{"valuation": "\xff"}', "not JSON"),
    "deeply nested": (b"[" * 50_000, "not JSON"),
    "too large": (answer(pad="x" * 70_000), "too large"),
}


class ValuationSourceContract:
    @pytest.fixture
    async def source_setup(self) -> AsyncIterator[tuple[ValuationSource, SetRaw]]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def test_the_valuation_is_exact_with_its_currency_and_time(
        self, source_setup: tuple[ValuationSource, SetRaw]
    ) -> None:
        source, set_raw = source_setup
        set_raw(SYMBOL, answer(symbol=SYMBOL, marketId=MARKET, extra={"ignored": [1.5]}))
        quote = await source.latest(MARKET, SYMBOL)
        assert (quote.market_id, quote.symbol, quote.source) == (MARKET, SYMBOL, source.source)
        assert quote.valuation == Decimal("25000000.10") and str(quote.valuation) == "25000000.10"
        assert quote.currency == "USD"
        assert quote.as_of == datetime(2026, 11, 23, tzinfo=UTC)
        set_raw(SYMBOL, answer(valuation="0.000000000000000001", asOf="2026-11-23T01:30:00+01:30"))
        tiny = await source.latest(MARKET, SYMBOL)
        assert tiny.valuation == Decimal("1E-18")
        assert tiny.as_of == datetime(2026, 11, 23, tzinfo=UTC) and tiny.as_of.tzinfo is UTC

    async def test_a_whole_json_integer_is_read_exactly(
        self, source_setup: tuple[ValuationSource, SetRaw]
    ) -> None:
        source, set_raw = source_setup
        set_raw(SYMBOL, raw_valuation("9" * 30))
        assert (await source.latest(MARKET, SYMBOL)).valuation == Decimal("9" * 30)

    async def test_an_unknown_symbol_is_a_valuation_source_error(
        self, source_setup: tuple[ValuationSource, SetRaw]
    ) -> None:
        source, _ = source_setup
        with pytest.raises(ValuationSourceError, match="valuation of NOPE"):
            await source.latest(MARKET, "NOPE")

    @pytest.mark.parametrize("case", sorted(REFUSED))
    async def test_hostile_answers_are_refused_with_a_clear_reason(
        self, source_setup: tuple[ValuationSource, SetRaw], case: str
    ) -> None:
        source, set_raw = source_setup
        body, why = REFUSED[case]
        set_raw(SYMBOL, body)
        with pytest.raises(ValuationSourceError) as refused:
            await source.latest(MARKET, SYMBOL)
        message = refused.value.message
        assert why in message and message.startswith(f"{source.source}: ")
        # nothing of the answer is repeated: the message is short, printable ASCII
        assert len(message) < 200 and message.isascii() and message.isprintable()
