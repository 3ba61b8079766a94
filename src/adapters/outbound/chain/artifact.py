"""The compiled ``RwaToken`` contract, as written by ``contracts/build.js``."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import attrs

ARTIFACT_RESOURCE = "artifacts/RwaToken.json"


@attrs.frozen
class ContractArtifact:
    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code
    deployed_bytecode: str  # 0x-prefixed runtime code
    compiler_version: str
    source_sha256: str

    @property
    def runtime_code(self) -> bytes:
        return bytes.fromhex(self.deployed_bytecode.removeprefix("0x"))


@functools.cache
def rwa_token_artifact() -> ContractArtifact:
    """Load the packaged artifact once per process."""
    text = resources.files(__package__).joinpath(ARTIFACT_RESOURCE).read_text(encoding="utf-8")
    raw = json.loads(text)
    return ContractArtifact(
        contract_name=raw["contractName"],
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
        compiler_version=raw["compiler"]["version"],
        source_sha256=raw["sourceSha256"],
    )
