"""The committed T-REX, ONCHAINID and Stablecoin artifacts are what the pinned npm packages give.

``contracts/extract_trex.js`` copies the T-REX / ONCHAINID artifacts out of node_modules and
``contracts/build.js`` compiles ``contracts/Stablecoin.sol`` against ``@openzeppelin/contracts``:
rerunning either must give byte-identical files. Without node_modules that part is a loud skip
locally and a failure with ``CI=true``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from adapters.outbound.chain.trex.artifacts import (
    TrexContract,
    stablecoin_artifact,
    trex_artifact,
)
from tests.harness.common import missing_service

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
ARTIFACTS = ROOT / "src" / "adapters" / "outbound" / "chain" / "artifacts"
TREX_DIR = ARTIFACTS / "trex"
EIP170_LIMIT = 24_576
LICENCES = ("LICENSE-T-REX.md", "LICENSE-ONCHAINID.md")


def pinned(package: str) -> str:
    manifest = json.loads((CONTRACTS / "package.json").read_text(encoding="utf-8"))
    version: str = manifest["dependencies"][package]
    return version


def node_or_skip(package: str) -> str:
    node = shutil.which("node")
    if node is None:
        missing_service("`node` is not on PATH: cannot regenerate the contract artifacts")
    if not (CONTRACTS / "node_modules" / package / "package.json").is_file():
        missing_service(f"{package} is not installed: run `npm ci` in contracts/")
    assert node is not None
    return node


@pytest.mark.parametrize("contract", list(TrexContract))
def test_each_trex_artifact_is_deployable_and_from_the_pinned_package(
    contract: TrexContract,
) -> None:
    artifact = trex_artifact(contract)
    assert artifact.contract_name == contract.value
    package, _, version = artifact.origin.rpartition("@")
    assert package in {"@tokenysolutions/t-rex", "@onchain-id/solidity"}
    assert version == pinned(package)
    assert len(artifact.bytecode) > 2 and artifact.bytecode.startswith("0x")
    assert 0 < len(artifact.runtime_code) <= EIP170_LIMIT
    if package == "@tokenysolutions/t-rex":
        # deployed directly and set up with init(...)/initialize(): no constructor arguments
        assert not any(entry["type"] == "constructor" for entry in artifact.abi)


def test_the_gpl_licences_sit_beside_the_artifacts() -> None:
    for name in LICENCES:
        text = (TREX_DIR / name).read_text(encoding="utf-8")
        assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
        assert "Version 3, 29 June 2007" in text


def test_extracting_again_gives_byte_identical_files(tmp_path: Path) -> None:
    node = node_or_skip("@tokenysolutions/t-rex")
    node_or_skip("@onchain-id/solidity")
    subprocess.run(
        [node, "extract_trex.js", str(tmp_path)],
        cwd=CONTRACTS,
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in TREX_DIR.iterdir())
    assert fresh == committed
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (TREX_DIR / name).read_bytes(), (
            f"{name} differs from the npm package: run `node extract_trex.js` in contracts/"
        )


def test_stablecoin_artifact_records_its_source_and_openzeppelin_version() -> None:
    raw = json.loads((ARTIFACTS / "Stablecoin.json").read_text(encoding="utf-8"))
    source = (CONTRACTS / "Stablecoin.sol").read_bytes()
    assert raw["sourceSha256"] == hashlib.sha256(source).hexdigest(), (
        "contracts/Stablecoin.sol changed: run `node build.js Stablecoin` in contracts/"
    )
    assert raw["dependencies"] == {"@openzeppelin/contracts": pinned("@openzeppelin/contracts")}
    assert raw["settings"]["evmVersion"] == "paris"
    loaded = stablecoin_artifact()
    assert 0 < len(loaded.runtime_code) <= EIP170_LIMIT
    assert {e["name"] for e in loaded.abi if e["type"] == "function"} >= {
        "mint",
        "decimals",
        "transfer",
        "owner",
    }


def test_rebuilding_the_stablecoin_gives_a_byte_identical_artifact(tmp_path: Path) -> None:
    node = node_or_skip("solc")
    node_or_skip("@openzeppelin/contracts")
    output = tmp_path / "Stablecoin.json"
    subprocess.run(
        [node, "build.js", "Stablecoin", str(output)],
        cwd=CONTRACTS,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert output.read_bytes() == (ARTIFACTS / "Stablecoin.json").read_bytes()
