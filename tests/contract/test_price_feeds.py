"""The price-feed contract on ``ChainlinkPriceFeed`` (the pinned Chainlink test aggregator
deployed on the in-process EVM and on a Hardhat node) and on ``HttpJsonPriceFeed`` (a JSON
server on loopback); then what each adapter refuses on its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal

import pytest
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from adapters.outbound.pricefeed.chainlink import ChainlinkPriceFeed
from adapters.outbound.pricefeed.http_json import HttpJsonPriceFeed
from core.ports.price_feed import PriceFeed, PriceFeedError
from tests.contract.price_feed_suite import T0, PriceFeedContract, SetPrice
from tests.harness.aggregator import TestAggregator
from tests.harness.common import free_port
from tests.harness.price_server import PriceServer, price_server  # noqa: F401 - fixture

# symbol -> the aggregator's decimals (8 as Chainlink's USD feeds, 18 as its ETH ones)
DECIMALS = {"XAU": 8, "BTC": 18}


def chainlink_setup(w3: Web3) -> tuple[ChainlinkPriceFeed, SetPrice]:
    aggregators = {symbol: TestAggregator(w3, d) for symbol, d in DECIMALS.items()}
    feed = ChainlinkPriceFeed(w3, {s: a.address for s, a in aggregators.items()})

    async def set_price(symbol: str, price: Decimal, at: datetime) -> None:
        aggregators[symbol].set(price, at)

    return feed, set_price


class TestChainlinkOnTheInProcessEvm(PriceFeedContract):
    @pytest.fixture
    async def feed_setup(self) -> AsyncIterator[tuple[PriceFeed, SetPrice]]:
        feed, set_price = chainlink_setup(Web3(EthereumTesterProvider()))
        yield feed, set_price
        await feed.close()

    async def test_an_address_without_an_aggregator_is_a_price_feed_error(self) -> None:
        w3 = Web3(EthereumTesterProvider())
        empty_account = "0x000000000000000000000000000000000000dEaD"  # no code there
        feed = ChainlinkPriceFeed(w3, {"XAU": empty_account})
        with pytest.raises(PriceFeedError, match="reading the aggregator of XAU failed"):
            await feed.latest("XAU")
        await feed.close()
        with pytest.raises(PriceFeedError, match="closed"):
            await feed.latest("XAU")
        with pytest.raises(ValueError):
            ChainlinkPriceFeed(w3, {"XAU": "0x1234"})


@pytest.mark.hardhat
class TestChainlinkOnHardhat(PriceFeedContract):
    @pytest.fixture
    async def feed_setup(self, hardhat_url: str) -> AsyncIterator[tuple[PriceFeed, SetPrice]]:
        w3 = Web3(Web3.HTTPProvider(hardhat_url))
        aggregators = {symbol: TestAggregator(w3, d) for symbol, d in DECIMALS.items()}
        # the adapter's own JSON-RPC connection, as production builds it
        feed = ChainlinkPriceFeed.over_rpc(
            hardhat_url, {s: a.address for s, a in aggregators.items()}
        )

        async def set_price(symbol: str, price: Decimal, at: datetime) -> None:
            aggregators[symbol].set(price, at)

        yield feed, set_price
        await feed.close()


class TestHttpJson(PriceFeedContract):
    @pytest.fixture
    async def feed_setup(
        self,
        price_server: PriceServer,  # noqa: F811 - the fixture
    ) -> AsyncIterator[tuple[PriceFeed, SetPrice]]:
        feed = HttpJsonPriceFeed(price_server.url, ["XAU", "BTC"], source="metals-api")

        async def set_price(symbol: str, price: Decimal, at: datetime) -> None:
            price_server.set_json(
                symbol, {"symbol": symbol, "price": str(price), "updatedAt": at.isoformat()}
            )

        yield feed, set_price
        await feed.close()


async def test_http_json_reads_exact_numbers_and_unix_times_and_refuses_the_rest(
    price_server: PriceServer,  # noqa: F811 - the fixture
) -> None:
    feed = HttpJsonPriceFeed(price_server.url, ["XAU"], path="/prices/{symbol}")
    price_server.set_raw("XAU", b'{"price": 2034.10000000000000000001, "updatedAt": 1795442400}')
    quote = await feed.latest("XAU")
    assert quote.price == Decimal("2034.10000000000000000001")  # never through a float
    assert quote.observed_at == datetime.fromtimestamp(1795442400, T0.tzinfo)
    refused = {
        b'{"price": "1", "updatedAt": "2026-11-23T14:00:00"}': "no time zone",
        b'{"price": "abc", "updatedAt": 1}': "not a decimal",
        b'{"price": true, "updatedAt": 1}': "decimal string",
        b'{"price": "1"}': "updatedAt",
        b'{"symbol": "XAG", "price": "1", "updatedAt": 1}': "the answer is for",
        b"[1, 2]": "not a JSON object",
        b"<html>": "not JSON",
        b'{"price": "NaN", "updatedAt": 1}': "positive",
        b'{"price": "1", "updatedAt": 100000000000000000000}': "out of range",
        b'{"price": "1", "updatedAt": "9999-12-31T23:59:59-01:00"}': "out of range",
        json.dumps({"price": "1", "pad": "x" * 70_000, "updatedAt": 1}).encode(): "too large",
    }
    for body, why in refused.items():
        price_server.set_raw("XAU", body)
        with pytest.raises(PriceFeedError, match=why):
            await feed.latest("XAU")
    price_server.set_raw("XAU", b"{}", status=503)
    with pytest.raises(PriceFeedError, match="status 503"):
        await feed.latest("XAU")
    await feed.close()
    nobody = HttpJsonPriceFeed(f"http://127.0.0.1:{free_port()}", ["XAU"], timeout=2)
    with pytest.raises(PriceFeedError, match="request failed"):
        await nobody.latest("XAU")
    await nobody.close()
