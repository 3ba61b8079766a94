"""The committed RwaToken artifact is what contracts/build.js makes from contracts/RwaToken.sol."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from adapters.outbound.chain.artifact import rwa_token_artifact
from tests.harness.common import missing_service

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "contracts" / "RwaToken.sol"
ARTIFACT = ROOT / "src" / "adapters" / "outbound" / "chain" / "artifacts" / "RwaToken.json"


def test_artifact_records_the_sha256_of_the_source() -> None:
    artifact = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    assert artifact["sourceSha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest(), (
        "contracts/RwaToken.sol changed: run `npm run build` in contracts/ and commit the artifact"
    )
    assert artifact["settings"]["evmVersion"] == "paris"
    assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 2


def test_packaged_loader_reads_the_same_artifact() -> None:
    loaded = rwa_token_artifact()
    assert loaded.source_sha256 == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert loaded.runtime_code


def test_rebuilding_gives_byte_identical_artifact(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        missing_service("`node` is not on PATH: cannot recompile contracts/RwaToken.sol")
    if not (ROOT / "contracts" / "node_modules" / "solc").is_dir():
        missing_service("solcjs is not installed: run `npm install` in contracts/")
    output = tmp_path / "RwaToken.json"
    subprocess.run(
        [str(node), "build.js", str(output)],
        cwd=ROOT / "contracts",
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert output.read_bytes() == ARTIFACT.read_bytes()
