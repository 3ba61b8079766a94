"""ONCHAINID claims as the ``ClaimIssuer`` contract checks them (``@onchain-id/solidity`` 2.x).

A claim on identity ``I`` for topic ``T`` with data ``D`` is valid when its signature recovers
(EIP-191, "\\x19Ethereum Signed Message:\\n32") over ``keccak256(abi.encode(I, T, D))`` to an
address whose key ``keccak256(abi.encode(address))`` has the CLAIM purpose (or MANAGEMENT,
which implies every purpose) on the issuer, and the signature has not been revoked there.
"""

from __future__ import annotations

from eth_abi.abi import encode
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from adapters.outbound.chain.validation import checksum_address

# Claim topics the platform issues (DESIGN §9).
KYC_TOPIC = 1
ACCREDITATION_TOPIC = 2

# ERC-734 key purposes and types, ERC-735 signature scheme.
MANAGEMENT_PURPOSE = 1
ACTION_PURPOSE = 2
CLAIM_PURPOSE = 3
ECDSA_KEY_TYPE = 1
ECDSA_SCHEME = 1


def key_of(address: str) -> bytes:
    """The ERC-734 key of an Ethereum address: ``keccak256(abi.encode(address))``."""
    return keccak(encode(["address"], [checksum_address(address)]))


def claim_id(issuer: str, topic: int) -> bytes:
    """Where an identity stores the claim of ``issuer`` on ``topic``."""
    return keccak(encode(["address", "uint256"], [checksum_address(issuer, "issuer"), topic]))


def claim_digest(identity: str, topic: int, data: bytes) -> bytes:
    """The 32 bytes a claim issuer signs: ``keccak256(abi.encode(identity, topic, data))``."""
    return keccak(
        encode(
            ["address", "uint256", "bytes"], [checksum_address(identity, "identity"), topic, data]
        )
    )


def sign_claim(signer: LocalAccount, identity: str, topic: int, data: bytes) -> bytes:
    """The 65-byte EIP-191 signature (r, s, v) of the claim digest."""
    message = encode_defunct(primitive=claim_digest(identity, topic, data))
    return bytes(signer.sign_message(message).signature)
