"""Shared machinery of the web3-backed adapters (``EvmChain``, ``Web3Chain``).

The sync ``Web3`` API runs in a single-thread executor: the event loop never blocks, and
every transaction is built, signed and sent by that one thread. Nonces are the node's pending
count at signing time; callers serialize prepare-then-send with ``Chain.signing_lock``.
Receipts are polled with short calls
on the same thread (not ``wait_for_transaction_receipt``, which would hold the only thread
for the whole wait and stall every other read, including the health check).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt, Wei

from adapters.outbound.chain.errors import to_chain_error
from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from adapters.outbound.chain.trex.batch import batch_forced_transfer_call
from adapters.outbound.chain.trex.claims import claim_id
from adapters.outbound.chain.trex.steps import (
    check_amount,
    country_alpha2,
    identity_call,
    platform_call,
    stablecoin_constructor,
    suite_call,
    token_call,
)
from adapters.outbound.chain.trex.suite import contract_at
from adapters.outbound.chain.trex.transactor import all_error_selectors
from adapters.outbound.chain.validation import checksum_address, create_address
from core.ports.chain import (
    Chain,
    ForcedTransfer,
    IdentityCall,
    PreparedTransaction,
    RegisteredIdentity,
    SignedTransaction,
    SuiteSpec,
    TokenCall,
    TokenMetadata,
    TransactionReceipt,
    TransferLog,
)
from core.ports.custody import TransactionSigner
from core.shared.errors import ChainError

T = TypeVar("T")
GAS_MARGIN_PERCENT = 120  # gas limit of a custodial transfer: the estimate plus 20 %
FEE_HEADROOM_PERCENT = 125  # gas a custodial address is funded with: for a price rising 25 %


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
        self._w3 = w3
        self._account = account
        self._endpoint = endpoint
        self._configured_chain_id = chain_id
        self._chain_id: int | None = None  # confirmed with the node on first send
        self._receipt_timeout = receipt_timeout
        self._poll_interval = poll_interval
        self._abi = trex_artifact(TrexContract.TOKEN).abi  # ERC-20 reads work on any token
        self._selectors = all_error_selectors()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain")

    # -- port: transactions -----------------------------------------------------------------

    async def prepare_platform_step(
        self, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        platform = str(self._account.address)
        return await self._run(lambda: self._sign(platform_call(self._w3, platform, step, created)))

    async def prepare_suite_step(
        self, spec: SuiteSpec, step: str, created: Mapping[str, str]
    ) -> PreparedTransaction:
        platform = str(self._account.address)

        def sign() -> PreparedTransaction:
            call = suite_call(self._w3, platform, self._account, spec, step, created)
            return self._sign(call)

        return await self._run(sign)

    async def prepare_token_call(self, call: TokenCall) -> PreparedTransaction:
        return await self._run(lambda: self._sign(token_call(self._w3, call)))

    async def prepare_batch_forced_transfer(
        self, token: str, transfers: Sequence[ForcedTransfer]
    ) -> PreparedTransaction:
        return await self._run(
            lambda: self._sign(batch_forced_transfer_call(self._w3, token, transfers))
        )

    async def prepare_identity_call(self, call: IdentityCall) -> PreparedTransaction:
        platform = str(self._account.address)
        return await self._run(
            lambda: self._sign(identity_call(self._w3, platform, self._account, call))
        )

    async def prepare_stablecoin(self, name: str, symbol: str) -> PreparedTransaction:
        owner = str(self._account.address)
        return await self._run(
            lambda: self._sign(stablecoin_constructor(self._w3, name, symbol, owner))
        )

    async def prepare_native_transfer(self, receiver: str, value: int) -> PreparedTransaction:
        to = checksum_address(receiver, "receiver")
        amount = check_amount(value, "value")

        def sign() -> PreparedTransaction:
            sender = self._account.address
            nonce = int(self._w3.eth.get_transaction_count(sender, "pending"))
            chain_id = self._node_chain_id()
            tx: dict[str, Any] = {"from": sender, "to": to, "value": amount, "nonce": nonce}
            tx.update(chainId=chain_id, gasPrice=int(self._w3.eth.gas_price))
            tx["gas"] = int(self._w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
            return _prepared(self._account.sign_transaction(tx), str(sender), nonce, chain_id)

        return await self._run(sign)

    async def prepare_custodial_transfer(
        self, signer: TransactionSigner, token: str, receiver: str, amount: int
    ) -> PreparedTransaction:
        contract = self._token(token)
        to = checksum_address(receiver, "receiver")
        units = check_amount(amount)
        sender = checksum_address(signer.address, "signer")

        def sign() -> PreparedTransaction:
            call = contract.functions.transfer(to, units)
            gas, price = self._custodial_gas(call, sender)
            balance = int(self._w3.eth.get_balance(sender))
            if balance < gas * price:
                raise ChainError(
                    f"{sender} holds {balance} wei of native coin, its transfer needs "
                    f"{gas * price} for gas"
                )
            nonce = int(self._w3.eth.get_transaction_count(sender, "pending"))
            chain_id = self._node_chain_id()
            params = {"from": sender, "nonce": nonce, "chainId": chain_id}
            tx = self._call_transaction(call, {**params, "gas": gas, "gasPrice": price})
            tx.update(gas=gas, gasPrice=price)
            tx.pop("maxFeePerGas", None)
            tx.pop("maxPriorityFeePerGas", None)
            payload = signer.sign_transaction(tx)
            return PreparedTransaction(
                transaction=SignedTransaction(
                    signer=sender,
                    nonce=nonce,
                    tx_hash=payload.tx_hash,
                    raw_transaction=payload.raw_transaction,
                    chain_id=chain_id,
                )
            )

        return await self._run(sign)

    async def custodial_transfer_fee(
        self, token: str, sender: str, receiver: str, amount: int
    ) -> int:
        contract = self._token(token)
        to = checksum_address(receiver, "receiver")
        source = checksum_address(sender, "sender")
        units = check_amount(amount)

        def fee() -> int:
            gas, price = self._custodial_gas(contract.functions.transfer(to, units), source)
            return gas * price * FEE_HEADROOM_PERCENT // 100

        return await self._run(fee)

    def _custodial_gas(self, call: ContractFunction, sender: str) -> tuple[int, int]:
        """Gas limit (the estimate, which refuses a revert, plus a margin) and gas price of a
        custodial address's transfer. Estimated at gas price 0: an address not funded yet
        can still be estimated (nodes refuse an estimate the sender could not pay for)."""
        estimate = int(call.estimate_gas({"from": sender, "gasPrice": Wei(0)}))
        return estimate * GAS_MARGIN_PERCENT // 100, int(self._w3.eth.gas_price)

    async def native_balance(self, address: str) -> int:
        owner = checksum_address(address)
        return int(await self._run(self._w3.eth.get_balance, owner))

    async def send_raw_transaction(self, raw_transaction: str) -> str:
        raw = _raw_bytes(raw_transaction)
        return await self._run(self._send_raw, raw)

    async def transaction_receipt(self, tx_hash: str) -> TransactionReceipt | None:
        wanted = _tx_hash(tx_hash)
        receipt = await self._run(self._receipt_or_none, wanted)
        return None if receipt is None else _receipt(receipt)

    async def wait_for_receipt(self, tx_hash: str) -> TransactionReceipt:
        """Poll with short calls until ``receipt_timeout`` seconds have passed."""
        wanted = _tx_hash(tx_hash)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._receipt_timeout
        while True:
            receipt = await self._run(self._receipt_or_none, wanted)
            if receipt is not None:
                return _receipt(receipt)
            if loop.time() >= deadline:
                raise ChainError(f"no receipt for {tx_hash} after {self._receipt_timeout:g}s")
            await asyncio.sleep(self._poll_interval)

    async def confirmed_nonce(self, address: str) -> int:
        owner = checksum_address(address)
        return int(await self._run(self._w3.eth.get_transaction_count, owner, "latest"))

    # -- port: reads ------------------------------------------------------------------------

    async def code_at(self, address: str) -> bytes:
        target = checksum_address(address)
        return bytes(await self._run(self._w3.eth.get_code, target))

    async def transfer_logs(
        self, token_address: str, from_block: int, to_block: int, receivers: frozenset[str]
    ) -> list[TransferLog]:
        token = self._token(token_address)
        wanted = {checksum_address(r, "receiver") for r in receivers}
        if not wanted or to_block < from_block:
            return []

        def read() -> list[TransferLog]:
            topics: list[Any] = [
                HexBytes(keccak(text="Transfer(address,address,uint256)")).to_0x_hex(),
                None,
                ["0x" + "00" * 12 + a[2:].lower() for a in sorted(wanted)],
            ]
            raw = self._w3.eth.get_logs(
                {
                    "address": token.address,
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "topics": topics,
                }
            )
            found: list[TransferLog] = []
            for log in raw:
                event = token.events.Transfer().process_log(log)
                receiver = checksum_address(event["args"]["to"])
                if receiver not in wanted:
                    continue
                found.append(
                    TransferLog(
                        token=str(token.address),
                        sender=checksum_address(event["args"]["from"]),
                        receiver=receiver,
                        amount=int(event["args"]["value"]),
                        tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
                        log_index=int(log["logIndex"]),
                        block_number=int(log["blockNumber"]),
                    )
                )
            found.sort(key=lambda t: (t.block_number, t.log_index))
            return found

        return await self._run(read)

    async def total_supply(self, token_address: str) -> int:
        token = self._token(token_address)
        return int(await self._run(token.functions.totalSupply().call))

    async def balance_of(self, token_address: str, holder: str) -> int:
        token = self._token(token_address)
        owner = checksum_address(holder, "holder")
        return int(await self._run(token.functions.balanceOf(owner).call))

    async def token_metadata(self, token_address: str) -> TokenMetadata:
        token = self._token(token_address)

        def read() -> TokenMetadata:
            return TokenMetadata(
                name=str(token.functions.name().call()),
                symbol=str(token.functions.symbol().call()),
                decimals=int(token.functions.decimals().call()),
            )

        return await self._run(read)

    async def is_paused(self, token_address: str) -> bool:
        token = self._token(token_address)
        return bool(await self._run(token.functions.paused().call))

    async def is_verified(self, token_address: str, holder: str) -> bool:
        token = self._token(token_address)
        owner = checksum_address(holder, "holder")

        def read() -> bool:
            registry = contract_at(
                self._w3, TrexContract.IDENTITY_REGISTRY, token.functions.identityRegistry().call()
            )
            return bool(registry.functions.isVerified(owner).call())

        return await self._run(read)

    async def registered_identity(
        self, token_address: str, holder: str
    ) -> RegisteredIdentity | None:
        token = self._token(token_address)
        owner = checksum_address(holder, "holder")

        def read() -> RegisteredIdentity | None:
            registry = contract_at(
                self._w3, TrexContract.IDENTITY_REGISTRY, token.functions.identityRegistry().call()
            )
            if not registry.functions.contains(owner).call():
                return None
            identity = checksum_address(registry.functions.identity(owner).call())
            country = int(registry.functions.investorCountry(owner).call())
            return RegisteredIdentity(identity=identity, country=country_alpha2(country))

        return await self._run(read)

    async def has_claim(self, identity: str, claim_issuer: str, topic: int) -> bool:
        target = checksum_address(identity, "identity")
        issuer = checksum_address(claim_issuer, "claim issuer")

        def read() -> bool:
            contract = contract_at(self._w3, TrexContract.IDENTITY, target)
            found = contract.functions.getClaim(claim_id(issuer, topic)).call()
            return int(found[0]) == topic and checksum_address(found[2]) == issuer

        return await self._run(read)

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

    def _call_transaction(self, call: ContractFunction, params: dict[str, Any]) -> dict[str, Any]:
        """The unsigned contract call with gas and fees filled in (a hook for Sapphire)."""
        return dict(call.build_transaction(params))  # type: ignore[arg-type]

    def _sign(self, call: ContractFunction | ContractConstructor) -> PreparedTransaction:
        """Sign with the node's pending nonce (callers hold ``signing_lock`` until sent).
        Building estimates the gas: a call that would revert fails here."""
        sender = self._account.address
        nonce = int(self._w3.eth.get_transaction_count(sender, "pending"))
        chain_id = self._node_chain_id()
        params: dict[str, Any] = {"from": sender, "nonce": nonce, "chainId": chain_id}
        creation = isinstance(call, ContractConstructor)
        if isinstance(call, ContractConstructor):
            tx = self._deployment_transaction(call, params)
        else:
            tx = self._call_transaction(call, params)
        signed = self._account.sign_transaction(tx)
        return PreparedTransaction(
            transaction=SignedTransaction(
                signer=str(sender),
                nonce=nonce,
                tx_hash=HexBytes(signed.hash).to_0x_hex(),
                raw_transaction=HexBytes(signed.raw_transaction).to_0x_hex(),
                chain_id=chain_id,
            ),
            contract_address=create_address(sender, nonce) if creation else None,
        )

    def _send_raw(self, raw: bytes) -> str:
        tx_hash = HexBytes(keccak(raw)).to_0x_hex()
        try:
            return HexBytes(self._w3.eth.send_raw_transaction(raw)).to_0x_hex()
        except Exception:
            # Bytes the chain already has are not an error: eth-tester and most nodes refuse
            # a mined transaction as "nonce too low", a pending one as "already known".
            if self._receipt_or_none(HexBytes(tx_hash)) is not None or self._is_pending(tx_hash):
                return tx_hash
            raise

    def _is_pending(self, tx_hash: str) -> bool:
        try:
            found = self._w3.eth.get_transaction(HexBytes(tx_hash))
        except (TransactionNotFound, ValueError):
            return False
        return found is not None

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

    def _token(self, address: str) -> Contract:
        address = checksum_address(address, "token address")
        return self._w3.eth.contract(address=address, abi=self._abi)


def _prepared(signed: Any, signer: str, nonce: int, chain_id: int) -> PreparedTransaction:
    return PreparedTransaction(
        transaction=SignedTransaction(
            signer=signer,
            nonce=nonce,
            tx_hash=HexBytes(signed.hash).to_0x_hex(),
            raw_transaction=HexBytes(signed.raw_transaction).to_0x_hex(),
            chain_id=chain_id,
        )
    )


def _raw_bytes(raw_transaction: str) -> bytes:
    text = raw_transaction if isinstance(raw_transaction, str) else ""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if not text.startswith("0x") or not raw:
        raise ChainError("a raw transaction must be 0x-prefixed hex of signed bytes")
    return raw


def _tx_hash(tx_hash: str) -> HexBytes:
    text = tx_hash if isinstance(tx_hash, str) else ""
    if len(text) != 66 or not text.startswith("0x"):
        raise ChainError(f"invalid transaction hash: {tx_hash!r}")
    try:
        return HexBytes(bytes.fromhex(text[2:]))
    except ValueError:
        raise ChainError(f"invalid transaction hash: {tx_hash!r}") from None


def _receipt(receipt: TxReceipt) -> TransactionReceipt:
    address = receipt.get("contractAddress")
    return TransactionReceipt(
        tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        succeeded=int(receipt["status"]) == 1,
        contract_address=checksum_address(address) if address else None,
    )
