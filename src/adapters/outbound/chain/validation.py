"""Input checks shared by every chain adapter, so they all refuse the same things the same way."""

from __future__ import annotations

import rlp  # type: ignore[import-untyped]
from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from core.shared.errors import ChainError

MAX_UINT256 = 2**256 - 1
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def checksum_address(address: str, what: str = "address") -> ChecksumAddress:
    """The EIP-55 form of a 20-byte hex address in any letter case; ``ChainError`` otherwise."""
    if not isinstance(address, str) or not is_address(address.lower()):
        raise ChainError(f"invalid {what}: {address!r} is not a 0x-prefixed 20-byte hex address")
    return to_checksum_address(address)


def create_address(sender: str, nonce: int) -> ChecksumAddress:
    """The address a contract created by ``sender`` with ``nonce`` gets (CREATE)."""
    encoded = rlp.encode([bytes.fromhex(checksum_address(sender)[2:]), nonce])
    return to_checksum_address(keccak(encoded)[-20:])
