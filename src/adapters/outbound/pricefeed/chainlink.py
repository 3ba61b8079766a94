"""``ChainlinkPriceFeed``: reads Chainlink-style aggregators (``AggregatorV3Interface``) with web3.

For each symbol, one aggregator address. ``latest`` calls ``decimals()`` and
``latestRoundData()``; the price is ``answer / 10**decimals`` exactly, its time
``updatedAt``. An answer that is not positive, a round never updated (``updatedAt`` 0) or
an answer carried from an older round (``answeredInRound < roundId``) is a
``PriceFeedError``. The sync web3 API runs in this adapter's own single-thread executor, so
the event loop never blocks (eth-tester's async provider would block it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from web3 import Web3

from adapters.outbound.pricefeed.artifacts import aggregator_interface_abi
from core.marketdata.model import EXACT
from core.ports.price_feed import PriceFeed, PriceFeedError, PriceQuote


class ChainlinkPriceFeed(PriceFeed):
    def __init__(self, w3: Web3, feeds: Mapping[str, str], *, source: str = "chainlink") -> None:
        self._w3 = w3
        self._source = source
        self._feeds: dict[str, str] = {}
        for symbol, address in feeds.items():
            if not Web3.is_address(address):
                raise ValueError(f"the aggregator of {symbol} is not an address: {address!r}")
            self._feeds[symbol] = Web3.to_checksum_address(address)
        self._abi = aggregator_interface_abi()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pricefeed")
        self._closed = False

    @classmethod
    def over_rpc(
        cls, url: str, feeds: Mapping[str, str], *, source: str = "chainlink", timeout: float = 10
    ) -> ChainlinkPriceFeed:
        """A feed over an EVM node's JSON-RPC endpoint (Sapphire, Hardhat, any node)."""
        provider = Web3.HTTPProvider(url, request_kwargs={"timeout": timeout})
        return cls(Web3(provider), feeds, source=source)

    @property
    def source(self) -> str:
        return self._source

    def symbols(self) -> list[str]:
        return sorted(self._feeds)

    def _read(self, address: str) -> tuple[int, tuple[Any, ...]]:
        contract = self._w3.eth.contract(address=address, abi=self._abi)  # type: ignore[call-overload]
        decimals = int(contract.functions.decimals().call())
        round_data = tuple(contract.functions.latestRoundData().call())
        return decimals, round_data

    async def latest(self, symbol: str) -> PriceQuote:
        if self._closed:
            raise PriceFeedError("the price feed is closed")
        address = self._feeds.get(symbol)
        if address is None:
            raise PriceFeedError(f"{self._source} has no aggregator for {symbol}")
        loop = asyncio.get_running_loop()
        try:
            decimals, round_data = await loop.run_in_executor(self._executor, self._read, address)
        except Exception as exc:  # web3, provider and EVM errors alike: the read failed
            raise PriceFeedError(
                f"{self._source}: reading the aggregator of {symbol} failed ({type(exc).__name__})"
            ) from exc
        round_id, answer, _started_at, updated_at, answered_in_round = (int(v) for v in round_data)
        if answer <= 0:
            raise PriceFeedError(f"{self._source}: the answer for {symbol} is not positive")
        if updated_at <= 0:
            raise PriceFeedError(f"{self._source}: the round for {symbol} was never updated")
        if answered_in_round < round_id:
            raise PriceFeedError(f"{self._source}: the answer for {symbol} is from an old round")
        if not 0 <= decimals <= 77:
            raise PriceFeedError(f"{self._source}: {decimals} decimals is out of range")
        try:
            observed_at = datetime.fromtimestamp(updated_at, UTC)
        except (OverflowError, OSError, ValueError) as exc:  # a uint256 beyond year 9999
            raise PriceFeedError(
                f"{self._source}: the round time of {symbol} is out of range"
            ) from exc
        return PriceQuote(
            symbol=symbol,
            price=Decimal(answer).scaleb(-decimals, EXACT),
            observed_at=observed_at,
            source=self._source,
        )

    async def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False)
