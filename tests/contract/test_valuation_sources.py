"""The valuation-source contract on ``HttpJsonValuationSource`` (a JSON server on loopback) and
``MemoryValuationSource``; then what only HTTP can do wrong (statuses, redirects, timeouts, a
body dripping in, nobody listening), the URL template, and properties of the shared parser."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.outbound.valuations.answer import parse_answer
from adapters.outbound.valuations.http_json import (
    HttpJsonValuationSource,
    check_template,
    source_name,
)
from adapters.outbound.valuations.memory import MemoryValuationSource
from core.ports.valuation_source import ValuationSource, ValuationSourceError
from tests.contract.valuation_source_suite import (
    MARKET,
    SYMBOL,
    SetRaw,
    ValuationSourceContract,
    answer,
)
from tests.harness.common import free_port
from tests.harness.valuation_server import (  # noqa: F401 - fixture
    ValuationServer,
    valuation_server,
)


class TestHttpJson(ValuationSourceContract):
    @pytest.fixture
    async def source_setup(
        self,
        valuation_server: ValuationServer,  # noqa: F811 - the fixture
    ) -> AsyncIterator[tuple[ValuationSource, SetRaw]]:
        source = HttpJsonValuationSource(valuation_server.template, timeout=5)
        yield source, lambda symbol, body: valuation_server.set_raw(symbol, body)
        await source.close()


class TestMemory(ValuationSourceContract):
    @pytest.fixture
    async def source_setup(self) -> AsyncIterator[tuple[ValuationSource, SetRaw]]:
        source = MemoryValuationSource("appraiser")
        yield source, source.set_raw
        await source.close()

    async def test_an_unavailable_symbol_is_refused(self) -> None:
        source = MemoryValuationSource()
        source.set_json(SYMBOL, json.loads(answer()))
        assert (await source.latest(MARKET, SYMBOL)).valuation == Decimal("25000000.10")
        source.set_unavailable(SYMBOL)
        with pytest.raises(ValuationSourceError, match="no answer"):
            await source.latest(MARKET, SYMBOL)
        assert source.requests == [(MARKET, SYMBOL), (MARKET, SYMBOL)]


async def test_the_template_gets_the_symbol_and_the_market_id_encoded(
    valuation_server: ValuationServer,  # noqa: F811 - the fixture
) -> None:
    source = HttpJsonValuationSource(valuation_server.template)
    assert source.source == valuation_server.url.removeprefix("http://")
    valuation_server.set_raw("A B", answer(symbol="A B", marketId="m/1?x"))
    quote = await source.latest("m/1?x", "A B")
    assert quote.symbol == "A B" and quote.market_id == "m/1?x"
    assert valuation_server.requests == ["/valuations/A%20B?market=m%2F1%3Fx"]
    await source.close()


async def test_statuses_redirects_and_silence_are_refused(
    valuation_server: ValuationServer,  # noqa: F811 - the fixture
) -> None:
    source = HttpJsonValuationSource(valuation_server.template, timeout=0.5)
    valuation_server.set_raw(SYMBOL, answer(), status=503)
    with pytest.raises(ValuationSourceError, match="status 503"):
        await source.latest(MARKET, SYMBOL)
    elsewhere = "http://127.0.0.1:1/valuations/LUXAPT"
    valuation_server.set_raw(SYMBOL, b"", status=302, location=elsewhere)
    with pytest.raises(ValuationSourceError, match="status 302"):
        await source.latest(MARKET, SYMBOL)  # never followed
    valuation_server.set_raw(SYMBOL, answer(), delay=3.0)
    started = time.monotonic()
    with pytest.raises(ValuationSourceError, match=r"no answer within 0.5 s"):
        await source.latest(MARKET, SYMBOL)
    # the bytes drip in, each well within the read timeout: the whole request is bounded
    valuation_server.set_raw(SYMBOL, answer(), drip=0.05)
    with pytest.raises(ValuationSourceError, match=r"no answer within 0.5 s"):
        await source.latest(MARKET, SYMBOL)
    assert time.monotonic() - started < 3.0
    await source.close()
    nobody = HttpJsonValuationSource(f"http://127.0.0.1:{free_port()}/v/{{symbol}}", timeout=2)
    with pytest.raises(ValuationSourceError, match="request failed"):
        await nobody.latest(MARKET, SYMBOL)
    await nobody.close()


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("ftp://valuer.example/{symbol}", "http(s)"),
        ("https://valuer.example/valuations", "{symbol} or {marketId}"),
        ("https://valuer.example/{symbol}/{currency}", "only {symbol} and {marketId}"),
        ("https://valuer.example/{symbol}}", "only {symbol} and {marketId}"),
        ("https:///{symbol}", "no host"),
    ],
)
def test_a_bad_template_is_refused(template: str, why: str) -> None:
    with pytest.raises(ValueError, match=rf"{why.replace('(', '[(]').replace(')', '[)]')}"):
        check_template(template)


def test_the_source_is_named_after_the_host() -> None:
    assert source_name("https://valuer.example/v1/{symbol}") == "valuer.example"
    assert source_name("http://10.0.0.1:8443/{marketId}/v") == "10.0.0.1:8443"


DECIMALS = st.from_regex(r"\A(0|[1-9][0-9]{0,29})(\.[0-9]{1,18})?\Z")


@given(DECIMALS)
def test_every_decimal_string_in_range_is_read_exactly(text: str) -> None:
    body = answer(valuation=text)
    if Decimal(text) == 0:
        with pytest.raises(ValuationSourceError, match="positive"):
            parse_answer(body, source="s", market_id=MARKET, symbol=SYMBOL)
        return
    quote = parse_answer(body, source="s", market_id=MARKET, symbol=SYMBOL)
    assert quote.valuation == Decimal(text) and format(quote.valuation, "f") == text


@given(st.one_of(st.text(max_size=60), st.integers(), st.floats(), st.none(), st.booleans()))
def test_anything_else_is_refused_or_exact_never_a_crash(value: object) -> None:
    try:
        body = json.dumps({"valuation": value, "currency": "USD", "asOf": "2026-11-23T00:00Z"})
    except ValueError:
        return
    try:
        quote = parse_answer(body.encode(), source="s", market_id=MARKET, symbol=SYMBOL)
    except ValuationSourceError as exc:
        assert exc.message.isascii() and exc.message.isprintable()
        return
    # accepted: a decimal string or a whole integer, positive, read exactly
    assert isinstance(value, str | int) and not isinstance(value, bool)
    assert quote.valuation > 0 and quote.valuation == Decimal(value)
    assert not isinstance(value, float)


@given(st.binary(max_size=300))
def test_any_bytes_are_refused_or_parsed_never_a_crash(body: bytes) -> None:
    with contextlib.suppress(ValuationSourceError):
        parse_answer(body, source="s", market_id=MARKET, symbol=SYMBOL)
