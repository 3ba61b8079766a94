"""The embedded chain across crashes, with the real server (``rwa-market serve``) in a subprocess.

1. Markets deployed through the API keep their own tokens after ``kill -9`` and a restart:
   every ``/onchain`` shows the market's own contract, symbol and supply, and the next
   deployment gets a new address.
2. A removed chain file is a clear mismatch at start: one log line, ``/onchain`` answers 503
   ``chain_state_mismatch`` and no deployment is signed on the empty chain.
3. One market, one contract: a deploy-token run killed right after the send of the token's
   creation (or right after its record, before the send) is finished by the restarted server
   with exactly one token contract for that market, and every contract the signer ever
   created on the chain is a recorded one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.outbound.chain.durable_store import CHAIN_FILE
from adapters.outbound.chain.evm import EvmChain
from tests.e2e.api import MarketsApi, bearer, data_of, error_of, market_body, unique_symbol
from tests.e2e.server import API, RwaServer, server_env, start_server
from tests.e2e.test_market_lifecycle import assert_deployed
from tests.harness.common import free_port

REPO = Path(__file__).resolve().parents[2]
TOKENS = "/api/v1/tokens"
MARKETS = 4


def _deploy(api: MarketsApi, count: int) -> list[dict[str, Any]]:
    ids = []
    for i in range(count):
        market_id = api.register(market_body(totalSupply=1000 * (i + 1)))["id"]
        api.approve(market_id)
        ids.append(market_id)
    markets = [api.wait_settled(market_id) for market_id in ids]
    for market in markets:
        assert_deployed(market, api)
    return markets


def _check_own_token(api: MarketsApi, market: dict[str, Any]) -> dict[str, Any]:
    onchain = api.onchain(market["id"])
    assert onchain["contractAddress"] == market["contractAddress"], onchain
    assert onchain["symbol"] == market["tokenSymbol"], onchain
    assert onchain["name"] == market["tokenName"], onchain
    assert onchain["totalSupply"] == str(int(market["totalSupply"]) * 10**18), onchain
    assert onchain["issuerBalance"] == onchain["totalSupply"], onchain
    assert onchain["paused"] is False, onchain
    assert onchain["codeSize"] > 0, onchain
    return onchain


def _stablecoin(http: Any) -> str:
    """The quote token's contract, as the tokens registry records it."""
    token = data_of(http.get(f"{TOKENS}/USDC"), 200)
    assert (token["type"], token["decimals"]) == ("STABLE", 6), token
    assert isinstance(token["contractAddress"], str), token
    return str(token["contractAddress"])


def _issuer_ledger_balance(api: MarketsApi, market: dict[str, Any]) -> str:
    path = f"{TOKENS}/balances/{market['issuerId']}/{market['tokenSymbol']}"
    balance = data_of(api.client.get(path, headers=bearer(api.admin)), 200)
    return str(balance["available"])


def test_kill_9_keeps_every_market_token(tmp_path: Path) -> None:
    server = start_server(tmp_path / "one")
    try:
        with server.client() as http:
            api = MarketsApi(server, http)
            stablecoin = _stablecoin(http)  # deployed on the chain at the first start
            markets = _deploy(api, MARKETS)
            before = [_check_own_token(api, m) for m in markets]
            for market in markets:  # the ledger credited the issuer what the chain minted
                assert _issuer_ledger_balance(api, market) == str(market["totalSupply"])
    finally:
        server.kill()  # SIGKILL: no shutdown hook runs

    started = time.monotonic()
    again = start_server(tmp_path / "two", data_dir=server.data_dir)
    restart_seconds = time.monotonic() - started
    try:
        with again.client() as http:
            api = MarketsApi(again, http)
            after = [_check_own_token(api, m) for m in markets]
            assert after == before
            assert _stablecoin(http) == stablecoin  # the recorded one, not a second
            [newer] = _deploy(api, 1)
            old = {m["contractAddress"] for m in markets}
            assert newer["contractAddress"] not in old
            _check_own_token(api, newer)
        assert "embedded chain reopened" in again.log_text(), again.log_tail()
        assert "CHAIN STATE MISMATCH" not in again.log_text()
    finally:
        again.stop()
    print(f"restart after kill -9 with {MARKETS} markets: healthy in {restart_seconds:.2f}s")


def test_a_removed_chain_file_is_a_mismatch_not_wrong_data(tmp_path: Path) -> None:
    server = start_server(tmp_path / "one")
    try:
        with server.client() as http:
            [market] = _deploy(MarketsApi(server, http), 1)
    finally:
        server.stop()
    (server.data_dir / CHAIN_FILE).unlink()
    for leftover in ("-wal", "-shm"):
        Path(str(server.data_dir / CHAIN_FILE) + leftover).unlink(missing_ok=True)

    again = start_server(tmp_path / "two", data_dir=server.data_dir)
    try:
        with again.client() as http:
            api = MarketsApi(again, http)
            error = error_of(http.get(f"{API}/{market['id']}/onchain"), 503)
            assert error["code"] == "chain_state_mismatch", error
            assert http.get("/readyz").status_code == 503
            blocked = api.register(market_body())["id"]
            api.approve(blocked)
            stuck = api.wait_until(
                blocked,
                lambda m: bool(m["activationError"]),
                what="the deployment to be refused",
            )
            assert "chain does not match" in stuck["activationError"], stuck
            assert stuck["contractAddress"] is None
        lines = [ln for ln in again.log_text().splitlines() if "CHAIN STATE MISMATCH" in ln]
        assert len(lines) == 1, again.log_tail()
    finally:
        again.stop()
    # nothing was signed on the empty chain: its signer has sent no transaction
    chain = EvmChain(data_dir=server.data_dir)
    try:
        assert asyncio.run(_nonce(chain)) == 0
    finally:
        asyncio.run(chain.close())


async def _nonce(chain: EvmChain) -> int:
    return await chain.confirmed_nonce(await chain.custody_address())


def _crash(work_dir: Path, mode: str, symbol: str) -> str:
    """Run the crashing deployer on ``work_dir/data``; the market id it created."""
    env = server_env(work_dir / "data", free_port())
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    done = subprocess.run(
        [sys.executable, "-m", "tests.harness.crashing_deployer", mode, symbol],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == -9, f"{done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    lines = done.stdout.splitlines()
    assert any(ln.startswith("market ") for ln in lines), done.stdout
    assert (mode == "after-send") == any(ln.startswith("sent ") for ln in lines), done.stdout
    return next(ln.split()[1] for ln in lines if ln.startswith("market "))


def _records(data_dir: Path, subject: str | None = None) -> list[tuple[str, ...]]:
    """(step, tx hash, state, contract address) of the subject's records (all if None)."""
    where = "" if subject is None else "WHERE subject = ?"
    with sqlite3.connect(data_dir / "rwa.sqlite3") as db:
        return [
            tuple(str(v) for v in r)
            for r in db.execute(
                "SELECT step, tx_hash, state, contract_address FROM deployment_transactions "
                f"{where} ORDER BY created_at, nonce",
                () if subject is None else (subject,),
            )
        ]


def _creations(data_dir: Path) -> list[str]:
    """Hashes of every contract creation the signer made on the embedded chain."""
    chain = EvmChain(data_dir=data_dir)
    tester = chain.ethereum_tester

    async def signer() -> str:
        return await chain.custody_address()

    try:
        me = asyncio.run(signer()).lower()
        head = tester.get_block_by_number("latest")["number"]
        found = []
        for number in range(1, head + 1):
            for tx in tester.get_block_by_number(number, full_transactions=True)["transactions"]:
                if tx["from"].lower() == me and not tx["to"]:
                    found.append(tx["hash"])
        return found
    finally:
        asyncio.run(chain.close())


@pytest.mark.parametrize("mode", ["after-send", "before-send"])
def test_a_deployment_killed_around_the_send_makes_one_contract(tmp_path: Path, mode: str) -> None:
    market_id = _crash(tmp_path, mode, unique_symbol("K"))
    data_dir = tmp_path / "data"
    before = _records(data_dir, market_id)
    [(_, tx_hash, state, predicted)] = [r for r in before if r[0] == "token"]
    assert state in {"signed", "sent"}, state
    assert all(r[2] == "mined" for r in before if r[0] != "token"), before

    server: RwaServer = start_server(tmp_path / "restart", data_dir=data_dir)
    try:
        with server.client() as http:
            api = MarketsApi(server, http)
            market = api.wait_settled(market_id)
            assert_deployed(market, api)
            assert market["contractAddress"] == predicted
            assert market["deploymentTxHash"] == tx_hash
            onchain = api.onchain(market_id)
            assert onchain["contractAddress"] == predicted
            assert onchain["symbol"] == market["tokenSymbol"]
            assert onchain["issuerBalance"] == onchain["totalSupply"]
            events = api.events(market_id)
            activated = [
                e for e in events if e.get("eventType", e.get("type")) == "market.activated"
            ]
            assert len(activated) == 1, events
    finally:
        server.stop()
    after = _records(data_dir, market_id)
    assert [r for r in after if r[0] == "token"] == [("token", tx_hash, "mined", predicted)]
    assert all(r[2] == "mined" for r in after), after
    assert len({r[0] for r in after}) == len(after)  # one transaction per step
    # every contract the signer created is a recorded, mined creation: nothing twice
    recorded = {r[1] for r in _records(data_dir) if r[3] != "None" and r[2] == "mined"}
    creations = _creations(data_dir)
    assert len(creations) == len(set(creations)) and set(creations) == recorded
