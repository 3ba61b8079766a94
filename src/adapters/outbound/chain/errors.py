"""Translate web3 / eth-tester / transport exceptions into the core ``ChainError``."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from eth_utils.crypto import keccak
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    InvalidAddress,
    Web3RPCError,
)

from core.shared.errors import ChainError

try:  # eth-tester ships with web3[tester]; a production install might lack it.
    from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the install

    class TransactionFailed(Exception):  # type: ignore[no-redef]
        """Stand-in so the except clause below stays valid."""


_BYTES_REPR = re.compile(r"""b(['"]).*?\1""", re.DOTALL)


def error_selectors(abi: Iterable[Mapping[str, Any]]) -> dict[bytes, str]:
    """Map the 4-byte selector of each custom error in ``abi`` to its signature."""
    selectors: dict[bytes, str] = {}
    for entry in abi:
        if entry.get("type") == "error":
            signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
            selectors[keccak(text=signature)[:4]] = signature
    return selectors


def to_chain_error(
    exc: BaseException, *, endpoint: str, selectors: Mapping[bytes, str]
) -> ChainError:
    """A ``ChainError`` with a message an operator can act on; the cause stays chained."""
    if isinstance(exc, ChainError):
        return exc
    if isinstance(exc, ContractLogicError | TransactionFailed):
        return ChainError(f"transaction reverted: {_revert_reason(exc, selectors)}")
    if isinstance(exc, requests.Timeout):
        return ChainError(f"chain node at {endpoint} did not answer in time")
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        return ChainError(f"cannot reach the chain node at {endpoint}: connection failed")
    if isinstance(exc, BadFunctionCallOutput):
        return ChainError("call returned no data: is there a token contract at that address?")
    if isinstance(exc, InvalidAddress):
        return ChainError(f"invalid address: {exc}")
    if isinstance(exc, Web3RPCError):
        return ChainError(f"chain node at {endpoint} rejected the request: {exc.message}")
    if isinstance(exc, RuntimeError) and "shutdown" in str(exc):
        return ChainError("chain adapter is closed")
    return ChainError(f"chain operation failed: {type(exc).__name__}: {exc}")


def _revert_reason(exc: BaseException, selectors: Mapping[bytes, str]) -> str:
    """Name the custom error when the revert data carries a known selector."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    raw = b""
    if isinstance(data, str) and data.startswith("0x"):
        raw = bytes.fromhex(data[2:])
    else:  # eth-tester puts the revert bytes into the message as a Python bytes repr
        match = _BYTES_REPR.search(str(exc))
        if match:
            try:
                raw = ast.literal_eval(match.group(0))
            except (ValueError, SyntaxError):
                raw = b""
    if raw[:4] in selectors:
        return selectors[raw[:4]]
    message = getattr(exc, "message", None) or str(exc)
    return str(message).removeprefix("execution reverted: ") or "no reason given"
