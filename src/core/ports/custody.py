"""Custody port: the platform's hierarchical deterministic keys, and EIP-191 signatures.

Custodial addresses are derived from one BIP-39 mnemonic (``RWA_CUSTODY_MNEMONIC``) by the
BIP-44 Ethereum path ``m/44'/60'/0'/0/<index>``. Index 0 is the platform's own address;
index ``n >= 1`` is the custodial address of the user whose user number is ``n``
(``core.ports.wallets``). Adapters use a maintained library for the derivation, never
hand-written code; keys never leave the adapter except inside a ``TransactionSigner``.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from typing import Any

import attrs

from core.shared.errors import ValidationFailed

BIP44_ETHEREUM_PREFIX = "m/44'/60'/0'/0"
PLATFORM_INDEX = 0
MAX_INDEX = 2**31 - 1  # the last non-hardened child index


def derivation_path(index: int) -> str:
    """The BIP-44 path of custodial ``index``; ``ValueError`` outside ``0 .. 2**31 - 1``."""
    check_index(index)
    return f"{BIP44_ETHEREUM_PREFIX}/{index}"


def check_index(index: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
        raise ValueError(f"a custodial index is an integer in 0 .. {MAX_INDEX}")


@attrs.frozen
class SignedPayload:
    raw_transaction: str  # 0x-prefixed hex of the signed bytes
    tx_hash: str  # 0x + 64 lowercase hex


class TransactionSigner(abc.ABC):
    """The key of one custodial address. Later jobs (sweeps, withdrawals) sign with it."""

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """The checksummed address of this key."""

    @abc.abstractmethod
    def sign_transaction(self, transaction: Mapping[str, Any]) -> SignedPayload:
        """Sign an EVM transaction dict (``to``, ``value``, ``nonce``, ``gas``, fees, ``chainId``,
        ``data``) without sending it."""

    @abc.abstractmethod
    def sign_message(self, message: str) -> str:
        """An EIP-191 ``personal_sign`` signature of ``message`` (0x + 130 hex)."""


class KeyDerivation(abc.ABC):
    """Addresses and signers of the custodial key tree."""

    @abc.abstractmethod
    def address_for(self, index: int) -> str:
        """The checksummed address at ``derivation_path(index)``."""

    @abc.abstractmethod
    def signer_for(self, index: int) -> TransactionSigner:
        """A signer holding the key at ``derivation_path(index)``."""


class MalformedAddress(ValidationFailed):
    code = "invalid_address"

    def __init__(self, field: str = "address") -> None:
        super().__init__(
            "the address is malformed",
            fields={
                field: "must be 0x and 40 hex digits (a mixed-case address must carry a "
                "valid EIP-55 checksum)"
            },
        )


class MalformedSignature(ValidationFailed):
    code = "invalid_signature"

    def __init__(self, field: str = "signature") -> None:
        super().__init__(
            "the signature is malformed",
            fields={field: "must be an EIP-191 signature: 0x and 130 hex digits (r, s, v)"},
        )


SIGNATURE_PATTERN = re.compile(r"0x[0-9a-fA-F]{130}")


def check_signature_format(signature: object, field: str = "signature") -> str:
    """``signature`` if it has the shape of an EIP-191 signature; ``MalformedSignature`` if
    not (whether it recovers to anything is the verifier's to say)."""
    if not isinstance(signature, str) or not SIGNATURE_PATTERN.fullmatch(signature):
        raise MalformedSignature(field)
    return signature


class SignatureVerifier(abc.ABC):
    """Address checks and EIP-191 (``personal_sign``) signer recovery."""

    @abc.abstractmethod
    def checksum_address(self, address: str) -> str:
        """``address`` in EIP-55 form; ``MalformedAddress`` if it is not an address (or a
        mixed-case one with a wrong checksum)."""

    @abc.abstractmethod
    def recover_signer(self, message: str, signature: str) -> str:
        """The checksummed address whose key signed ``message`` with EIP-191 version 0x45
        (``personal_sign``); ``MalformedSignature`` when nothing can be recovered."""
