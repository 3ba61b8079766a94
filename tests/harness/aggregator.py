"""Deploys the Chainlink test aggregator (MockV3Aggregator from the pinned
``@chainlink/contracts``, packaged with the price-feed adapter) on a web3 chain whose first
account is unlocked (eth-tester, a Hardhat node), and sets its rounds."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from web3 import Web3
from web3.contract import Contract

from adapters.outbound.pricefeed.artifacts import mock_aggregator_artifact


class TestAggregator:
    __test__ = False  # not a pytest class

    def __init__(self, w3: Web3, decimals: int, initial: int = 1) -> None:
        artifact = mock_aggregator_artifact()
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        self._w3 = w3
        self._sender = w3.eth.accounts[0]
        tx = factory.constructor(decimals, initial).transact({"from": self._sender})
        receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
        assert receipt["status"] == 1 and receipt["contractAddress"]
        self.address: str = receipt["contractAddress"]
        self.decimals = decimals
        self.contract: Contract = w3.eth.contract(address=self.address, abi=artifact["abi"])
        self.round = 1

    def set(self, price: Decimal, at: datetime) -> None:
        answer = price.scaleb(self.decimals)
        assert answer == answer.to_integral_value(), "the price needs more decimals"
        self.round += 1
        timestamp = int(at.timestamp())
        call = self.contract.functions.updateRoundData(
            self.round, int(answer), timestamp, timestamp
        )
        tx = call.transact({"from": self._sender})
        receipt = self._w3.eth.wait_for_transaction_receipt(tx, timeout=30)
        assert receipt["status"] == 1
