"""The committed Chainlink artifacts are what the pinned npm ``@chainlink/contracts`` gives:
``contracts/build_pricefeed.js`` compiles its MockV3Aggregator (the package ships no bytecode)
and copies its AggregatorV3Interface ABI; rerunning it must give byte-identical files.
Without node_modules that part is a loud skip locally and a failure with ``CI=true``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from adapters.outbound.pricefeed.artifacts import (
    aggregator_interface_abi,
    mock_aggregator_artifact,
)
from tests.harness.common import missing_service

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "contracts"
ARTIFACTS = ROOT / "src" / "adapters" / "outbound" / "pricefeed" / "artifacts"
PACKAGE = "@chainlink/contracts"
FILES = ["AggregatorV3Interface.json", "LICENSE-CHAINLINK.md", "MockV3Aggregator.json"]


def pinned() -> str:
    manifest = json.loads((CONTRACTS / "package.json").read_text(encoding="utf-8"))
    version: str = manifest["dependencies"][PACKAGE]
    return version


def test_the_artifacts_come_from_the_pinned_package_with_its_licence() -> None:
    assert sorted(p.name for p in ARTIFACTS.iterdir()) == FILES
    mock = mock_aggregator_artifact()
    assert (mock["package"], mock["packageVersion"]) == (PACKAGE, pinned())
    assert mock["settings"]["evmVersion"] == "paris"
    assert mock["compiler"]["version"].startswith("0.8.28+")
    assert 0 < (len(mock["deployedBytecode"]) - 2) // 2 <= 24_576
    names = {e["name"] for e in aggregator_interface_abi() if e["type"] == "function"}
    assert names == {"decimals", "description", "version", "getRoundData", "latestRoundData"}
    interface = json.loads((ARTIFACTS / "AggregatorV3Interface.json").read_text("utf-8"))
    assert interface["packageVersion"] == pinned()
    licence = (ARTIFACTS / "LICENSE-CHAINLINK.md").read_text(encoding="utf-8")
    assert f"{PACKAGE}@{pinned()}" in licence and "SPDX-License-Identifier: MIT" in licence


def test_building_again_gives_byte_identical_files(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        missing_service("`node` is not on PATH: cannot rebuild the Chainlink artifacts")
    for package in (PACKAGE, "solc"):
        if not (CONTRACTS / "node_modules" / package / "package.json").is_file():
            missing_service(f"{package} is not installed: run `npm ci` in contracts/")
    assert node is not None
    subprocess.run(
        [node, "build_pricefeed.js", str(tmp_path)],
        cwd=CONTRACTS,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == FILES
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (ARTIFACTS / name).read_bytes(), (
            f"{name} differs from the npm package: run `node build_pricefeed.js` in contracts/"
        )
