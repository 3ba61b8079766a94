"""eth-account: transaction and EIP-191 signing with one key, and signer recovery."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import is_checksum_address, to_checksum_address

from core.ports.custody import (
    MalformedAddress,
    MalformedSignature,
    SignatureVerifier,
    SignedPayload,
    TransactionSigner,
)

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")


def _hex(value: bytes) -> str:
    text = value.hex()
    return text if text.startswith("0x") else "0x" + text


class EthAccountTransactionSigner(TransactionSigner):
    def __init__(self, private_key: bytes) -> None:
        self._account = Account.from_key(private_key)

    def __repr__(self) -> str:
        return f"EthAccountTransactionSigner({self.address})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, transaction: Mapping[str, Any]) -> SignedPayload:
        signed = self._account.sign_transaction(dict(transaction))
        return SignedPayload(
            raw_transaction=_hex(bytes(signed.raw_transaction)),
            tx_hash=_hex(bytes(signed.hash)),
        )

    def sign_message(self, message: str) -> str:
        signed = self._account.sign_message(encode_defunct(text=message))
        return _hex(bytes(signed.signature))


class EthAccountSignatureVerifier(SignatureVerifier):
    def checksum_address(self, address: str) -> str:
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise MalformedAddress()
        body = address[2:]
        mixed = body != body.lower() and body != body.upper()
        if mixed and not is_checksum_address(address):
            raise MalformedAddress()
        return str(to_checksum_address(address))

    def recover_signer(self, message: str, signature: str) -> str:
        if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
            raise MalformedSignature()
        try:
            recovered = Account.recover_message(
                encode_defunct(text=message), signature=bytes.fromhex(signature[2:])
            )
        except Exception as exc:  # eth-keys raises several types for bad r, s or v
            raise MalformedSignature() from exc
        return str(to_checksum_address(recovered))
