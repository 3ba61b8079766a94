"""``MemoryChain``: an in-memory chain that behaves like the real chain adapters, for tests.

It keeps the rules the service relies on: one signer whose nonce counts up, a prepared
transaction that changes nothing until its exact bytes are sent, a second send of the same
bytes answering the same hash, a nonce that is used only once (a different transaction with a
used nonce is refused, like "nonce too low"), no nonce gaps (refused, as eth-tester does),
contract addresses computed like CREATE, and a block per transaction.

Its "raw transactions" are not RLP-signed Ethereum transactions but a JSON document with a
marker prefix: only this adapter can send them, and it refuses anything else.
"""

from __future__ import annotations

import json

import attrs
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from adapters.outbound.chain.artifact import rwa_token_artifact
from adapters.outbound.chain.validation import (
    TOKEN_DECIMALS,
    ZERO_ADDRESS,
    check_token_spec,
    checksum_address,
    create_address,
)
from core.ports.chain import (
    Chain,
    PreparedDeployment,
    SignedTransaction,
    TokenMetadata,
    TokenSpec,
    TransactionReceipt,
)
from core.shared.errors import ChainError

DEFAULT_CUSTODY = to_checksum_address(keccak(b"rwa-market memory custody")[-20:])
MEMORY_CHAIN_ID = 1337
_MARKER = b"rwa-memory-tx:"


@attrs.define
class _Token:
    spec: TokenSpec
    balances: dict[str, int]
    total_supply: int


@attrs.frozen
class _Mined:
    receipt: TransactionReceipt


class MemoryChain(Chain):
    """A fake ledger with a real nonce discipline; each sent transaction mines one block.

    ``auto_mine=False`` keeps sent transactions pending until ``mine()`` (tests of crashes
    between send and receipt). Reads of addresses without a token fail like a call to a
    non-contract does on a real chain.
    """

    def __init__(self, custody_address: str | None = None, *, auto_mine: bool = True) -> None:
        self._custody = checksum_address(custody_address or DEFAULT_CUSTODY, "custody address")
        self._confirmed = 0  # mined transactions of the signer
        self._block = 0
        self._tokens: dict[str, _Token] = {}
        self._mined: dict[str, _Mined] = {}
        self._pending: dict[int, tuple[str, dict[str, object]]] = {}  # nonce -> (hash, body)
        self._auto_mine = auto_mine
        self._closed = False
        self.sent: list[str] = []  # every hash accepted by send_raw_transaction, in order

    # -- transactions ----------------------------------------------------------------------

    async def prepare_deployment(self, spec: TokenSpec) -> PreparedDeployment:
        self._check_open()
        check_token_spec(spec)
        holder = checksum_address(spec.holder or self._custody, "holder")
        if holder == ZERO_ADDRESS:  # what estimating the gas of the real constructor reports
            raise ChainError("transaction reverted: ZeroAddress()")
        nonce = self._confirmed + len(self._pending)
        body: dict[str, object] = {
            "chainId": MEMORY_CHAIN_ID,
            "from": self._custody,
            "nonce": nonce,
            "name": spec.name,
            "symbol": spec.symbol,
            "supply": str(spec.initial_supply),
            "holder": holder,
        }
        raw = _MARKER + json.dumps(body, sort_keys=True).encode()
        return PreparedDeployment(
            transaction=SignedTransaction(
                signer=self._custody,
                nonce=nonce,
                tx_hash="0x" + keccak(raw).hex(),
                raw_transaction="0x" + raw.hex(),
                chain_id=MEMORY_CHAIN_ID,
            ),
            contract_address=create_address(self._custody, nonce),
            holder=holder,
        )

    async def send_raw_transaction(self, raw_transaction: str) -> str:
        self._check_open()
        raw = _decode_raw(raw_transaction)
        tx_hash = "0x" + keccak(raw).hex()
        if tx_hash in self._mined or any(h == tx_hash for h, _ in self._pending.values()):
            return tx_hash
        try:
            body = json.loads(raw[len(_MARKER) :])
            nonce = int(body["nonce"])
        except (ValueError, KeyError, TypeError):
            raise ChainError("cannot decode the raw transaction") from None
        if body.get("chainId") != MEMORY_CHAIN_ID or body.get("from") != self._custody:
            raise ChainError("the raw transaction is for another chain or signer")
        expected = self._confirmed + len(self._pending)
        if nonce < expected:
            raise ChainError(f"nonce too low: {nonce}, the signer's next nonce is {expected}")
        if nonce > expected:
            raise ChainError(f"nonce gap: {nonce}, the signer's next nonce is {expected}")
        self._pending[nonce] = (tx_hash, body)
        self.sent.append(tx_hash)
        if self._auto_mine:
            self.mine()
        return tx_hash

    def mine(self) -> int:
        """Mine every pending transaction, one block each; how many were mined."""
        count = 0
        while self._confirmed in self._pending:
            tx_hash, body = self._pending.pop(self._confirmed)
            nonce = self._confirmed
            self._confirmed += 1
            self._block += 1
            address = create_address(self._custody, nonce)
            supply = int(str(body["supply"]))
            spec = TokenSpec(
                name=str(body["name"]),
                symbol=str(body["symbol"]),
                decimals=TOKEN_DECIMALS,
                initial_supply=supply,
                holder=str(body["holder"]),
            )
            self._tokens[address] = _Token(spec, {str(body["holder"]): supply}, supply)
            receipt = TransactionReceipt(tx_hash, self._block, True, address)
            self._mined[tx_hash] = _Mined(receipt)
            count += 1
        return count

    def drop_pending(self) -> int:
        """Forget pending transactions, as a node restarted without its mempool would."""
        count = len(self._pending)
        self._pending.clear()
        return count

    async def transaction_receipt(self, tx_hash: str) -> TransactionReceipt | None:
        self._check_open()
        found = self._mined.get(_check_hash(tx_hash))
        return None if found is None else found.receipt

    async def wait_for_receipt(self, tx_hash: str) -> TransactionReceipt:
        receipt = await self.transaction_receipt(tx_hash)
        if receipt is None:  # nothing mines while we wait: there is no other actor
            raise ChainError(f"no receipt for {tx_hash}")
        return receipt

    async def confirmed_nonce(self, address: str) -> int:
        self._check_open()
        return self._confirmed if checksum_address(address) == self._custody else 0

    # -- reads -----------------------------------------------------------------------------

    async def code_at(self, address: str) -> bytes:
        self._check_open()
        known = checksum_address(address) in self._tokens
        return rwa_token_artifact().runtime_code if known else b""

    async def total_supply(self, token_address: str) -> int:
        return self._token(token_address).total_supply

    async def balance_of(self, token_address: str, holder: str) -> int:
        token = self._token(token_address)
        return token.balances.get(checksum_address(holder, "holder"), 0)

    async def token_metadata(self, token_address: str) -> TokenMetadata:
        spec = self._token(token_address).spec
        return TokenMetadata(name=spec.name, symbol=spec.symbol, decimals=spec.decimals)

    async def custody_address(self) -> str:
        self._check_open()
        return self._custody

    async def block_number(self) -> int:
        self._check_open()
        return self._block

    async def close(self) -> None:
        self._closed = True

    def _token(self, address: str) -> _Token:
        self._check_open()
        token = self._tokens.get(checksum_address(address, "token address"))
        if token is None:
            raise ChainError(f"no token contract at {address}")
        return token

    def _check_open(self) -> None:
        if self._closed:
            raise ChainError("chain adapter is closed")


def _decode_raw(raw_transaction: str) -> bytes:
    text = raw_transaction if isinstance(raw_transaction, str) else ""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if not text.startswith("0x") or not raw.startswith(_MARKER):
        raise ChainError("cannot decode the raw transaction")
    return raw


def _check_hash(tx_hash: str) -> str:
    text = tx_hash if isinstance(tx_hash, str) else ""
    try:
        valid = len(text) == 66 and text.startswith("0x") and bool(bytes.fromhex(text[2:]))
    except ValueError:
        valid = False
    if not valid:
        raise ChainError(f"invalid transaction hash: {tx_hash!r}")
    return text.lower()
