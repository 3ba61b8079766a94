"""The compiled contracts the T-REX deployer uses, loaded from the package's data files.

``artifacts/trex/*.json`` are copied out of the pinned npm packages ``@tokenysolutions/t-rex``
and ``@onchain-id/solidity`` by ``contracts/extract_trex.js`` (GPL-3.0, licences beside them);
``artifacts/Stablecoin.json`` is compiled from ``contracts/Stablecoin.sol`` by
``contracts/build.js``.
"""

from __future__ import annotations

import enum
import functools
import json
from importlib import resources
from typing import Any

import attrs

_CHAIN_PACKAGE = "adapters.outbound.chain"


class TrexContract(enum.StrEnum):
    """Every T-REX / ONCHAINID contract the service deploys, by its artifact name."""

    TOKEN = "Token"
    IDENTITY_REGISTRY = "IdentityRegistry"
    IDENTITY_REGISTRY_STORAGE = "IdentityRegistryStorage"
    CLAIM_TOPICS_REGISTRY = "ClaimTopicsRegistry"
    TRUSTED_ISSUERS_REGISTRY = "TrustedIssuersRegistry"
    MODULAR_COMPLIANCE = "ModularCompliance"
    COUNTRY_ALLOW_MODULE = "CountryAllowModule"
    IDENTITY = "Identity"
    CLAIM_ISSUER = "ClaimIssuer"


@attrs.frozen
class Artifact:
    contract_name: str
    origin: str  # "<npm package>@<version>" the bytecode comes from
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code
    deployed_bytecode: str  # 0x-prefixed runtime code

    @property
    def runtime_code(self) -> bytes:
        return bytes.fromhex(self.deployed_bytecode.removeprefix("0x"))


def _read(resource: str) -> dict[str, Any]:
    text = resources.files(_CHAIN_PACKAGE).joinpath(resource).read_text(encoding="utf-8")
    raw: dict[str, Any] = json.loads(text)
    return raw


@functools.cache
def trex_artifact(contract: TrexContract) -> Artifact:
    """One packaged T-REX / ONCHAINID artifact, read once per process."""
    raw = _read(f"artifacts/trex/{contract.value}.json")
    return Artifact(
        contract_name=raw["contractName"],
        origin=f"{raw['package']}@{raw['packageVersion']}",
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
    )


@functools.cache
def stablecoin_artifact() -> Artifact:
    """The OpenZeppelin ERC-20 (6 decimals) used as the quote currency on the embedded chain."""
    raw = _read("artifacts/Stablecoin.json")
    dependencies = ", ".join(f"{pkg}@{ver}" for pkg, ver in raw["dependencies"].items())
    return Artifact(
        contract_name=raw["contractName"],
        origin=f"contracts/{raw['sourceName']} ({dependencies})",
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
    )
