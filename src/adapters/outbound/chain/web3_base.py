"""Shared machinery of the web3-backed adapters (``EvmChain``, ``Web3Chain``).

The sync ``Web3`` API runs in a single-thread executor: the event loop never blocks, and
every transaction is built, signed and sent by that one thread, so the local nonce counter
stays sequential even when callers deploy concurrently. Receipts are polled with short calls
on the same thread (not ``wait_for_transaction_receipt``, which would hold the only thread
for the whole wait and stall every other read, including the health check).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from adapters.outbound.chain.artifact import rwa_token_artifact
from adapters.outbound.chain.errors import error_selectors, to_chain_error
from adapters.outbound.chain.validation import check_token_spec, checksum_address
from core.ports.chain import Chain, DeployedToken, TokenSpec
from core.shared.errors import ChainError

T = TypeVar("T")


class Web3ChainBase(Chain):
    """A ``Chain`` over any sync web3 provider, signing locally with ``account``."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        endpoint: str,
        chain_id: int | None = None,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.2,
    ) -> None:
        artifact = rwa_token_artifact()
        self._w3 = w3
        self._account = account
        self._endpoint = endpoint
        self._configured_chain_id = chain_id
        self._chain_id: int | None = None  # confirmed with the node on first send
        self._receipt_timeout = receipt_timeout
        self._poll_interval = poll_interval
        self._abi = artifact.abi
        self._factory = w3.eth.contract(abi=artifact.abi, bytecode=HexBytes(artifact.bytecode))
        self._selectors = error_selectors(artifact.abi)
        self._nonce: int | None = None  # next nonce; None: ask the node
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain")

    # -- port -------------------------------------------------------------------------------

    async def deploy_token(self, spec: TokenSpec) -> DeployedToken:
        check_token_spec(spec)
        holder = checksum_address(spec.holder or self._account.address, "holder")
        tx_hash = await self._run(self._send_deployment, spec, holder)
        receipt = await self._receipt(tx_hash)
        if receipt["status"] != 1:
            raise ChainError(f"deployment transaction {tx_hash.to_0x_hex()} failed (status 0)")
        address = receipt["contractAddress"]
        if not address:
            raise ChainError(f"receipt of {tx_hash.to_0x_hex()} has no contract address")
        return DeployedToken(
            contract_address=checksum_address(address),
            tx_hash=tx_hash.to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            holder=holder,
        )

    async def code_at(self, address: str) -> bytes:
        target = checksum_address(address)
        return bytes(await self._run(self._w3.eth.get_code, target))

    async def total_supply(self, token_address: str) -> int:
        token = self._token(token_address)
        return int(await self._run(token.functions.totalSupply().call))

    async def balance_of(self, token_address: str, holder: str) -> int:
        token = self._token(token_address)
        owner = checksum_address(holder, "holder")
        return int(await self._run(token.functions.balanceOf(owner).call))

    async def custody_address(self) -> str:
        return str(self._account.address)

    async def block_number(self) -> int:
        return int(await self._run(lambda: self._w3.eth.block_number))

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        self._close_transport()

    def _close_transport(self) -> None:
        """Hook for subclasses that hold connections."""

    # -- executor-thread helpers -----------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the chain thread; every failure comes back as ``ChainError``."""
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, functools.partial(self._on_chain_thread, fn, *args)
            )
            return await future
        except Exception as exc:
            raise to_chain_error(exc, endpoint=self._endpoint, selectors=self._selectors) from exc

    def _on_chain_thread(self, fn: Callable[..., T], *args: Any) -> T:
        self._before_chain_call()
        return fn(*args)

    def _before_chain_call(self) -> None:
        """Hook run on the chain thread before every operation (``Web3Chain`` wraps here)."""

    def _deployment_transaction(
        self, constructor: ContractConstructor, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The unsigned deployment with gas and fees filled in (a hook for Sapphire)."""
        return dict(constructor.build_transaction(params))

    def _send_deployment(self, spec: TokenSpec, holder: str) -> HexBytes:
        constructor = self._factory.constructor(spec.name, spec.symbol, spec.initial_supply, holder)
        try:
            nonce = self._next_nonce()
            tx = self._deployment_transaction(
                constructor,
                {"from": self._account.address, "nonce": nonce, "chainId": self._node_chain_id()},
            )
            signed = self._account.sign_transaction(tx)
            tx_hash = self._w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception:
            self._forget_nonce()  # after any failure the node's view is the truth
            raise
        self._nonce = nonce + 1
        return tx_hash

    def _forget_nonce(self) -> None:
        self._nonce = None

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self._w3.eth.get_transaction_count(self._account.address, "pending")
        return self._nonce

    def _node_chain_id(self) -> int:
        if self._chain_id is None:
            actual = int(self._w3.eth.chain_id)
            expected = self._configured_chain_id
            if expected is not None and expected != actual:
                raise ChainError(f"the node at {self._endpoint} is chain {actual}, not {expected}")
            self._chain_id = actual
        return self._chain_id

    def _receipt_or_none(self, tx_hash: HexBytes) -> TxReceipt | None:
        try:
            return self._w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None

    async def _receipt(self, tx_hash: HexBytes) -> TxReceipt:
        """Poll for the receipt until ``receipt_timeout`` seconds have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._receipt_timeout
        while True:
            receipt = await self._run(self._receipt_or_none, tx_hash)
            if receipt is not None:
                return receipt
            if loop.time() >= deadline:
                await self._run(self._forget_nonce)
                raise ChainError(
                    f"no receipt for {tx_hash.to_0x_hex()} after {self._receipt_timeout:g}s"
                )
            await asyncio.sleep(self._poll_interval)

    def _token(self, address: str) -> Contract:
        address = checksum_address(address, "token address")
        return self._w3.eth.contract(address=address, abi=self._abi)
