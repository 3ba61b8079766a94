"""The Chainlink artifacts packaged beside this module, built by ``contracts/build_pricefeed.js``
from the pinned npm ``@chainlink/contracts`` (MIT; its licence statements in
``artifacts/LICENSE-CHAINLINK.md``):

- ``AggregatorV3Interface.json``: the package's ABI of the interface every Chainlink-style
  feed answers; the only ABI ``ChainlinkPriceFeed`` uses;
- ``MockV3Aggregator.json``: the package's test aggregator, compiled (a settable feed for the
  in-process EVM and local nodes).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

_PACKAGE = "adapters.outbound.pricefeed"


def _read(name: str) -> dict[str, Any]:
    text = resources.files(_PACKAGE).joinpath(f"artifacts/{name}").read_text(encoding="utf-8")
    raw: dict[str, Any] = json.loads(text)
    return raw


@functools.cache
def aggregator_interface_abi() -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = _read("AggregatorV3Interface.json")["abi"]
    return abi


@functools.cache
def mock_aggregator_artifact() -> dict[str, Any]:
    """``{abi, bytecode, deployedBytecode, package, packageVersion, ...}`` of MockV3Aggregator."""
    return _read("MockV3Aggregator.json")
