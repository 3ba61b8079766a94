"""``EvmChain``: an in-process EVM (eth-tester + py-evm) running the real ``RwaToken`` bytecode.

Every transaction is mined at once into its own block. State lives in memory only: it is
gone when the process exits.
"""

from __future__ import annotations

from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from adapters.outbound.chain.web3_base import Web3ChainBase


class EvmChain(Web3ChainBase):
    """Signs with the first funded account of a fresh py-evm chain."""

    def __init__(self, *, receipt_timeout: float = 30.0) -> None:
        backend = PyEVMBackend()
        self._tester = EthereumTester(backend)
        w3 = Web3(EthereumTesterProvider(self._tester))
        account = Account.from_key(backend.account_keys[0].to_bytes())
        super().__init__(
            w3,
            account,
            endpoint="in-process EVM",
            receipt_timeout=receipt_timeout,
            poll_interval=0.01,
        )

    @property
    def ethereum_tester(self) -> EthereumTester:
        """The underlying tester, for tests that control mining or time."""
        return self._tester
