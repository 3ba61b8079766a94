"""Benchmark: restart of the durable embedded chain with many deployed contracts.

Run: .venv/bin/python bench/chain_restart.py [--contracts 1000] [--runs 3] [--data-dir DIR]

1. Deploys market T-REX suites on the in-process chain kept in a data directory
   (``EvmChain(data_dir=...)``, the embedded profile's chain), one block per transaction,
   until at least ``--contracts`` contracts exist (7 per suite: registries, compliance,
   token, the issuer's identity; plus the platform's 2), then closes it. Skipped when
   ``--data-dir`` already holds a chain with at least that many.
2. Restarts it ``--runs`` times, each in a fresh Python process (cold: imports included), and
   measures until the reopened chain answers: the process start to the first ``block_number``
   and a ``totalSupply`` read of the first and the last market token. The figure is the
   median.
3. In one more process, reads every market token's ``totalSupply`` and checks it (all state
   survived), timing that separately.

Prints ONE JSON line. Target (issue 6): restart with 1,000 contracts in at most 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench/http.py would shadow the standard library's http package: drop this directory.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPO / "src"))

from adapters.outbound.chain.durable_store import CHAIN_FILE  # noqa: E402
from adapters.outbound.chain.evm import EvmChain  # noqa: E402
from core.ports.chain import TOKEN_STEP, SuiteSpec  # noqa: E402

CONTRACTS_PER_SUITE = 7
PLATFORM_CONTRACTS = 2

HOLDER = "0x1111111111111111111111111111111111111111"

# Runs in a fresh interpreter: what a restart of the service costs for the chain.
RESTART = """
import asyncio, json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from adapters.outbound.chain.evm import EvmChain

async def main():
    imported = time.perf_counter()
    chain = EvmChain(data_dir=__import__("pathlib").Path(sys.argv[1]))
    opened = time.perf_counter()
    head = await chain.block_number()
    addresses = json.loads(sys.argv[3])
    supplies = [await chain.total_supply(a) for a in addresses]
    answered = time.perf_counter()
    await chain.close()
    print(json.dumps({"import_s": imported - started, "open_s": opened - imported,
                      "first_reads_s": answered - opened, "total_s": answered - started,
                      "head": head, "supplies": supplies}))

asyncio.run(main())
"""

VERIFY = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[2])
from adapters.outbound.chain.evm import EvmChain

async def main():
    chain = EvmChain(data_dir=__import__("pathlib").Path(sys.argv[1]))
    started = time.perf_counter()
    wrong = 0
    for i, address in enumerate(json.loads(open(sys.argv[3]).read())):
        if await chain.total_supply(address) != (i + 1) * 10**18:
            wrong += 1
    took = time.perf_counter() - started
    await chain.close()
    print(json.dumps({"all_reads_s": took, "wrong": wrong}))

asyncio.run(main())
"""


def suites_for(contracts: int) -> int:
    return max(1, -(-(contracts - PLATFORM_CONTRACTS) // CONTRACTS_PER_SUITE))


async def deploy(data_dir: Path, count: int) -> tuple[list[str], float]:
    """The market tokens of enough suites for ``count`` contracts."""
    chain = EvmChain(data_dir=data_dir)
    started = time.perf_counter()
    addresses = []
    try:
        platform = await chain.deploy_platform()
        for i in range(suites_for(count)):
            spec = SuiteSpec(f"Bench {i}", f"B{i}", 18, (i + 1) * 10**18, HOLDER, "DE", platform)
            addresses.append((await chain.deploy_suite(spec))[TOKEN_STEP])
    finally:
        await chain.close()
    return addresses, time.perf_counter() - started


def run(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the chain here")
    args = parser.parse_args()

    temp = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="rwa-chain-bench-")) if temp else args.data_dir
    manifest = data_dir / "bench-addresses.json"
    try:
        deploy_s = None
        addresses: list[str] = json.loads(manifest.read_text()) if manifest.exists() else []
        if len(addresses) < suites_for(args.contracts):
            if (data_dir / CHAIN_FILE).exists():
                raise SystemExit(f"{data_dir} holds another chain; use an empty directory")
            addresses, deploy_s = asyncio.run(deploy(data_dir, args.contracts))
            manifest.write_text(json.dumps(addresses))
        addresses = addresses[: suites_for(args.contracts)]
        probe = json.dumps([addresses[0], addresses[-1]])
        restarts = [run(RESTART, str(data_dir), str(REPO / "src"), probe) for _ in range(args.runs)]
        for r in restarts:
            assert r["supplies"] == [10**18, len(addresses) * 10**18], r
        verify = run(VERIFY, str(data_dir), str(REPO / "src"), str(manifest))
        chain_bytes = sum(
            p.stat().st_size for p in data_dir.iterdir() if p.name.startswith(CHAIN_FILE)
        )

        def median(key: str) -> float:
            return round(statistics.median(float(str(r[key])) for r in restarts), 3)

        print(
            json.dumps(
                {
                    "bench": "chain_restart",
                    "contracts": PLATFORM_CONTRACTS + CONTRACTS_PER_SUITE * len(addresses),
                    "suites": len(addresses),
                    "blocks": restarts[0]["head"],
                    "chain_file_mb": round(chain_bytes / 2**20, 1),
                    "deploy_seconds": None if deploy_s is None else round(deploy_s, 1),
                    "deploy_per_suite_ms": (
                        None if deploy_s is None else round(1000 * deploy_s / len(addresses), 1)
                    ),
                    "runs": args.runs,
                    "restart_total_s": median("total_s"),
                    "restart_import_s": median("import_s"),
                    "restart_open_s": median("open_s"),
                    "restart_first_reads_s": median("first_reads_s"),
                    "restart_target_s": 5.0,
                    "restart_ok": median("total_s") <= 5.0,
                    "read_all_supplies_s": round(float(str(verify["all_reads_s"])), 2),
                    "wrong_supplies": verify["wrong"],
                }
            )
        )
    finally:
        if temp:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
