"""``MemoryChain``: an in-memory ledger that behaves like the real chain adapters, for tests."""

from __future__ import annotations

import attrs
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from adapters.outbound.chain.artifact import rwa_token_artifact
from adapters.outbound.chain.validation import ZERO_ADDRESS, check_token_spec, checksum_address
from core.ports.chain import Chain, DeployedToken, TokenSpec
from core.shared.errors import ChainError

DEFAULT_CUSTODY = to_checksum_address(keccak(b"rwa-market memory custody")[-20:])


@attrs.define
class _Token:
    spec: TokenSpec
    balances: dict[str, int]
    total_supply: int


class MemoryChain(Chain):
    """A fake ledger: each deployment mines one block; addresses and hashes are derived by hashing.

    Reads of addresses without a token fail like a call to a non-contract does on a real chain.
    """

    def __init__(self, custody_address: str | None = None) -> None:
        self._custody = checksum_address(custody_address or DEFAULT_CUSTODY, "custody address")
        self._nonce = 0
        self._block = 0
        self._tokens: dict[str, _Token] = {}
        self._closed = False

    async def deploy_token(self, spec: TokenSpec) -> DeployedToken:
        self._check_open()
        check_token_spec(spec)
        holder = checksum_address(spec.holder or self._custody, "holder")
        if holder == ZERO_ADDRESS:
            raise ChainError("transaction reverted: ZeroAddress()")
        seed = bytes.fromhex(self._custody[2:]) + self._nonce.to_bytes(8, "big")
        address = to_checksum_address(keccak(seed)[-20:])
        tx_hash = "0x" + keccak(b"tx" + seed).hex()
        self._nonce += 1
        self._block += 1
        self._tokens[address] = _Token(spec, {holder: spec.initial_supply}, spec.initial_supply)
        return DeployedToken(address, tx_hash, self._block, holder)

    async def code_at(self, address: str) -> bytes:
        self._check_open()
        known = checksum_address(address) in self._tokens
        return rwa_token_artifact().runtime_code if known else b""

    async def total_supply(self, token_address: str) -> int:
        return self._token(token_address).total_supply

    async def balance_of(self, token_address: str, holder: str) -> int:
        token = self._token(token_address)
        return token.balances.get(checksum_address(holder, "holder"), 0)

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
