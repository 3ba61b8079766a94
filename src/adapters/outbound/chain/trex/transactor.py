"""Build, sign and send transactions with explicit nonces, one at a time, and wait for receipts.

Sync on purpose: the async adapters run it on their single chain thread. Each signing account
has its own nonce counter, read from the node ("pending") on first use and again after any
failure to send, so a rejected or timed-out transaction never leaves a gap the counter
believes in. A transaction that would revert is refused by gas estimation before it is
signed, so the node's revert reason reaches the caller as a ``ChainError``.
"""

from __future__ import annotations

import threading
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import TimeExhausted
from web3.types import Nonce, TxParams, TxReceipt, Wei

from adapters.outbound.chain.errors import error_selectors, to_chain_error
from adapters.outbound.chain.trex.artifacts import (
    TrexContract,
    stablecoin_artifact,
    trex_artifact,
)
from adapters.outbound.chain.validation import MAX_UINT256, checksum_address
from core.shared.errors import ChainError


def all_error_selectors() -> dict[bytes, str]:
    selectors: dict[bytes, str] = {}
    for contract in TrexContract:
        selectors.update(error_selectors(trex_artifact(contract).abi))
    selectors.update(error_selectors(stablecoin_artifact().abi))
    return selectors


class _NativeTransfer:
    """A plain value transfer that builds like a contract call (gas estimated, fees filled)."""

    def __init__(self, w3: Web3, to: str, wei: int) -> None:
        self._w3 = w3
        self._to = checksum_address(to, "receiver")
        if isinstance(wei, bool) or not isinstance(wei, int) or not 0 < wei <= MAX_UINT256:
            raise ChainError(f"cannot send {wei!r} wei")
        self._wei = wei

    def build_transaction(self, params: TxParams) -> TxParams:
        tx: TxParams = {**params, "to": self._to, "value": Wei(self._wei)}
        tx["gas"] = self._w3.eth.estimate_gas(tx)
        tx["gasPrice"] = self._w3.eth.gas_price
        return tx


_Buildable = ContractFunction | ContractConstructor | _NativeTransfer


class Transactor:
    """Sends contract calls and deployments for any number of local accounts over one ``Web3``."""

    def __init__(
        self,
        w3: Web3,
        *,
        endpoint: str = "chain node",
        chain_id: int | None = None,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.w3 = w3
        self._endpoint = endpoint
        self._configured_chain_id = chain_id
        self._chain_id: int | None = None
        self._receipt_timeout = receipt_timeout
        self._poll_interval = poll_interval
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._selectors = all_error_selectors()

    def send(self, account: LocalAccount, call: _Buildable, *, what: str) -> TxReceipt:
        """Sign ``call`` as ``account`` with the next nonce, send it and wait for a success."""
        try:
            tx_hash = self._sign_and_send(account, call)
        except ChainError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from exc
        receipt = self._wait(account, tx_hash, what)
        if receipt["status"] != 1:
            raise ChainError(f"{what}: transaction {tx_hash.to_0x_hex()} reverted (status 0)")
        return receipt

    def send_native(self, account: LocalAccount, to: str, wei: int, *, what: str) -> TxReceipt:
        """Send ``wei`` of the chain's own currency (gas money for a custodial address)."""
        return self.send(account, _NativeTransfer(self.w3, to, wei), what=what)

    def read(self, call: ContractFunction, *, what: str) -> Any:
        """``eth_call`` with every failure as ``ChainError``."""
        try:
            return call.call()
        except Exception as exc:
            raise self._error(exc, what) from exc

    def forget_nonce(self, address: str) -> None:
        """Ask the node for ``address``'s nonce before its next transaction."""
        with self._lock:
            self._nonces.pop(address, None)

    def build(self, call: _Buildable, params: TxParams) -> dict[str, Any]:
        """The unsigned transaction with gas and fees filled in.

        The hook for chains that need more (Sapphire encrypts deployment calldata itself,
        as ``Web3Chain`` does): override it, keep ``params`` (nonce, chain id, sender).
        """
        return dict(call.build_transaction(params))

    # -- internals ---------------------------------------------------------------------------

    def _sign_and_send(self, account: LocalAccount, call: _Buildable) -> HexBytes:
        address = account.address
        with self._lock:
            try:
                nonce = self._nonces.get(address)
                if nonce is None:
                    nonce = self.w3.eth.get_transaction_count(address, "pending")
                params: TxParams = {
                    "from": address,
                    "nonce": Nonce(nonce),
                    "chainId": self._node_chain_id(),
                }
                tx = self.build(call, params)  # estimates gas: a revert stops here
                signed = account.sign_transaction(tx)
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._nonces.pop(address, None)  # after any failure the node's view is the truth
                raise
            self._nonces[address] = nonce + 1
            return tx_hash

    def _wait(self, account: LocalAccount, tx_hash: HexBytes, what: str) -> TxReceipt:
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self._receipt_timeout, poll_latency=self._poll_interval
            )
        except TimeExhausted as exc:
            self.forget_nonce(account.address)
            raise ChainError(
                f"{what}: no receipt for {tx_hash.to_0x_hex()} after {self._receipt_timeout:g}s"
            ) from exc
        except Exception as exc:
            raise self._error(exc, what) from exc

    def _node_chain_id(self) -> int:
        if self._chain_id is None:
            actual = int(self.w3.eth.chain_id)
            expected = self._configured_chain_id
            if expected is not None and expected != actual:
                raise ChainError(f"the node at {self._endpoint} is chain {actual}, not {expected}")
            self._chain_id = actual
        return self._chain_id

    def _error(self, exc: BaseException, what: str) -> ChainError:
        error = to_chain_error(exc, endpoint=self._endpoint, selectors=self._selectors)
        return ChainError(f"{what}: {error.message}")
