"""The agent's ``batchForcedTransfer(address[] from, address[] to, uint256[] amounts)`` of a
T-REX token: the lines checked before anything is signed, and the web3 call."""

from __future__ import annotations

from collections.abc import Sequence

from web3 import Web3
from web3.contract.contract import ContractFunction

from adapters.outbound.chain.trex.artifacts import TrexContract
from adapters.outbound.chain.trex.steps import check_amount
from adapters.outbound.chain.trex.suite import contract_at
from adapters.outbound.chain.validation import checksum_address
from core.ports.chain import MAX_BATCH_TRANSFERS, ForcedTransfer
from core.shared.errors import ChainError


def batch_lines(transfers: Sequence[ForcedTransfer]) -> list[tuple[str, str, int]]:
    """(sender, receiver, amount) of each line, checksummed; ``ChainError`` for an empty or
    oversized batch, a line from an address to itself or an amount out of range."""
    if not transfers:
        raise ChainError("a batch forced transfer needs at least one line")
    if len(transfers) > MAX_BATCH_TRANSFERS:
        raise ChainError(
            f"a batch forced transfer of {len(transfers)} lines exceeds {MAX_BATCH_TRANSFERS}"
        )
    lines: list[tuple[str, str, int]] = []
    for line in transfers:
        sender = checksum_address(line.sender, "sender")
        receiver = checksum_address(line.receiver, "receiver")
        if sender == receiver:
            raise ChainError(f"forced transfer from {sender} to itself refused")
        lines.append((sender, receiver, check_amount(line.amount)))
    return lines


def batch_forced_transfer_call(
    w3: Web3, token: str, transfers: Sequence[ForcedTransfer]
) -> ContractFunction:
    lines = batch_lines(transfers)
    functions = contract_at(w3, TrexContract.TOKEN, checksum_address(token, "token")).functions
    return functions.batchForcedTransfer(
        [s for s, _, _ in lines], [r for _, r, _ in lines], [a for _, _, a in lines]
    )
