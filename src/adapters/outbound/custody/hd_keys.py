"""``BipUtilsKeyDerivation``: custodial keys derived with bip-utils (BIP-39 seed, BIP-44 path).

The mnemonic's seed is computed once (PBKDF2, 2048 rounds); the account node
``m/44'/60'/0'/0`` is kept, and each index's child is derived from it on demand (and cached:
a few hundred microseconds each). bip-utils does the BIP-32 arithmetic; nothing here is
hand-written cryptography. Keys stay inside this module and the signers it hands out.
"""

from __future__ import annotations

import functools

from bip_utils import (  # type: ignore[import-untyped]
    Bip39MnemonicValidator,
    Bip39SeedGenerator,
    Bip44,
    Bip44Changes,
    Bip44Coins,
)

from adapters.outbound.custody.eth_signatures import EthAccountTransactionSigner
from core.ports.custody import KeyDerivation, TransactionSigner, check_index

CACHE_SIZE = 4096


class InvalidMnemonic(ValueError):
    """The mnemonic is not a valid BIP-39 English phrase (word list and checksum)."""


def is_valid_mnemonic(mnemonic: str) -> bool:
    return bool(Bip39MnemonicValidator().IsValid(mnemonic))


class BipUtilsKeyDerivation(KeyDerivation):
    def __init__(self, mnemonic: str, *, passphrase: str = "") -> None:
        phrase = " ".join(mnemonic.split())
        if not is_valid_mnemonic(phrase):
            raise InvalidMnemonic("not a valid BIP-39 mnemonic (words or checksum)")
        seed = Bip39SeedGenerator(phrase).Generate(passphrase)
        self._external_chain = (
            Bip44.FromSeed(seed, Bip44Coins.ETHEREUM)
            .Purpose()
            .Coin()
            .Account(0)
            .Change(Bip44Changes.CHAIN_EXT)
        )

    def __repr__(self) -> str:
        return "BipUtilsKeyDerivation(<mnemonic hidden>)"

    @functools.lru_cache(maxsize=CACHE_SIZE)  # noqa: B019 - one instance per process
    def _child(self, index: int) -> tuple[str, bytes]:
        node = self._external_chain.AddressIndex(index)
        return node.PublicKey().ToAddress(), bytes(node.PrivateKey().Raw().ToBytes())

    def address_for(self, index: int) -> str:
        check_index(index)  # before the cache: True == 1 there
        return self._child(index)[0]

    def signer_for(self, index: int) -> TransactionSigner:
        check_index(index)
        address, key = self._child(index)
        signer = EthAccountTransactionSigner(key)
        if signer.address != address:  # two libraries agree, or nothing is signed
            raise RuntimeError(f"derived key and address disagree at index {index}")
        return signer
