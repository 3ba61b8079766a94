"""The market lifecycle end to end: a real server, real HTTP, a real EVM behind it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from adapters.outbound.chain.trex.artifacts import TrexContract, trex_artifact
from tests.e2e.api import MarketsApi, bearer, data_of, describe, error_of, market_body
from tests.e2e.server import API, RwaServer, start_server
from tests.harness.common import free_port, missing_service
from tests.harness.hardhat import (
    HARDHAT_CHAIN_ID,
    HARDHAT_DEV_ADDRESS,
    HARDHAT_DEV_KEY,
    hardhat_unavailable,
    start_hardhat,
)

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
HAPPY_EVENTS = [
    "market.registered",
    "market.approval_requested",
    "market.approved",
    "market.activation_started",
    "market.activated",
]


def event_types(events: list[dict[str, object]]) -> list[object]:
    return [e["eventType"] for e in events]


def assert_deployed(market: dict[str, object], api: MarketsApi) -> None:
    assert market["status"] == "active", (
        f"{market}\nevents: {api.events(str(market['id']))}\nlog:\n{api.server.log_tail()}"
    )
    assert ADDRESS_RE.match(str(market["contractAddress"])), market
    assert TX_HASH_RE.match(str(market["deploymentTxHash"])), market
    assert market["activatedAt"], market
    assert market["activationError"] is None, market


def wait_for_token_paused(api: MarketsApi, market_id: str, paused: bool) -> None:
    deadline = time.monotonic() + 30
    while True:
        onchain = api.onchain(market_id)
        if onchain["paused"] is paused:
            return
        assert time.monotonic() < deadline, f"token still paused={onchain['paused']}: {onchain}"
        time.sleep(0.1)


def wait_for_pair_status(http: httpx.Client, symbol: str, status: str) -> dict[str, object]:
    """The market's pair ``{SYMBOL}-USDC`` once it has ``status`` (it follows the market
    through an outbox reaction, so a moment after the market's answer)."""
    deadline = time.monotonic() + 30
    while True:
        pair: dict[str, object] = data_of(http.get(f"/api/v1/trading/pairs/{symbol}-USDC"), 200)
        if pair["status"] == status:
            return pair
        assert time.monotonic() < deadline, f"pair still {pair['status']}, not {status}: {pair}"
        time.sleep(0.1)


# -- a. the happy path on the embedded profile ----------------------------------------------


def test_embedded_lifecycle_register_approve_activate_pause_resume_archive(
    embedded_server: RwaServer, http: httpx.Client
) -> None:
    # The issuer token comes from the console script, as an operator would mint it.
    issuer_token = embedded_server.cli_token("issuer-lifecycle", "issuer")
    api = MarketsApi(embedded_server, http, issuer_id="issuer-lifecycle", issuer_token=issuer_token)
    supply = 1_000_000
    body = market_body(totalSupply=supply)

    registered = api.register(body)
    assert registered["status"] == "pending_approval", registered
    assert registered["issuerId"] == api.issuer_id
    assert registered["tokenSymbol"] == body["tokenSymbol"]
    assert registered["totalSupply"] == str(supply)
    assert registered["contractAddress"] is None
    market_id = registered["id"]

    approved = api.approve(market_id)
    assert approved["status"] == "activating", approved
    assert approved["approvedBy"] == api.admin_id

    market = api.wait_settled(market_id)
    assert_deployed(market, api)
    assert market["activationAttempts"] == 1, market
    assert market["approvedAt"], market

    onchain = api.onchain(market_id)
    base_units = str(supply * 10**18)
    assert onchain["contractAddress"] == market["contractAddress"]
    assert onchain["codeSize"] > 0, onchain
    assert onchain["totalSupply"] == base_units, onchain
    assert ADDRESS_RE.match(onchain["custodyAddress"]), onchain
    # the T-REX token: the whole supply minted to the issuer's custodial address, running
    assert ADDRESS_RE.match(onchain["issuerAddress"]), onchain
    assert onchain["issuerAddress"] != onchain["custodyAddress"], onchain
    assert onchain["issuerBalance"] == base_units, onchain
    assert onchain["paused"] is False, onchain
    assert (onchain["symbol"], onchain["name"]) == (body["tokenSymbol"], body["tokenName"])

    # activation made the pair {SYMBOL}-USDC in the same unit of work
    symbol = str(body["tokenSymbol"])
    pair = data_of(http.get(f"/api/v1/trading/pairs/{symbol}-USDC"), 200)
    assert pair["status"] == "trading" and pair["marketId"] == market_id, pair
    assert pair["symbol"] == f"{symbol}-USDC", pair

    events = api.events(market_id)
    assert event_types(events) == HAPPY_EVENTS, events
    actors = [e["actorId"] for e in events]
    assert actors[:4] == [api.issuer_id, api.issuer_id, api.admin_id, api.admin_id], events
    worker = events[4]
    assert worker["actorType"] == "system", worker
    assert worker["actorId"] not in {api.issuer_id, api.admin_id}, worker
    assert worker["metadata"]["contractAddress"] == market["contractAddress"], worker
    assert worker["metadata"]["txHash"] == market["deploymentTxHash"], worker
    assert all(e["marketId"] == market_id for e in events), events

    details = data_of(http.get(f"{API}/{market_id}/details"), 200)
    assert details["asset"]["currency"] == "USD", details
    assert details["market"]["status"] == "active"

    ready = http.get("/readyz")
    assert ready.status_code == 200, describe(ready)
    assert ready.json()["data"]["status"] == "ready"

    openapi = http.get("/openapi.json")
    assert openapi.status_code == 200, describe(openapi)
    assert "/api/v1/markets/register" in openapi.json()["paths"], sorted(openapi.json()["paths"])

    paused = data_of(api.action(market_id, "pause"), 200)
    assert paused["status"] == "paused", paused
    wait_for_token_paused(api, market_id, True)  # the token-pause job mirrors it on chain
    wait_for_pair_status(http, symbol, "halted")
    resumed = data_of(api.action(market_id, "resume"), 200)
    assert resumed["status"] == "active", resumed
    wait_for_token_paused(api, market_id, False)
    wait_for_pair_status(http, symbol, "trading")
    archived = data_of(api.action(market_id, "archive"), 200)
    assert archived["status"] == "archived", archived
    wait_for_token_paused(api, market_id, True)  # archive pauses the token for good
    wait_for_pair_status(http, symbol, "closed")

    again = api.action(market_id, "archive")
    error = error_of(again, 409)
    assert error["details"]["currentStatus"] == "archived", describe(again)

    events = api.events(market_id)
    assert event_types(events) == [
        *HAPPY_EVENTS,
        "market.paused",
        "market.resumed",
        "market.archived",
    ], events
    assert [e["actorId"] for e in events[5:]] == [api.admin_id] * 3, events
    assert api.get(market_id)["status"] == "archived"


# -- b. deployment failure against a dead node, then a manual retry against a live one -------


def test_deployment_failure_then_manual_retry_against_hardhat(tmp_path: Path) -> None:
    reason = hardhat_unavailable()
    if reason is not None:
        missing_service(f"Hardhat node: {reason}")
    from web3 import HTTPProvider, Web3

    rpc_port = free_port()  # nothing listens here until hardhat starts below
    server = start_server(
        tmp_path,
        env={
            "RWA_CHAIN_RPC_URL": f"http://127.0.0.1:{rpc_port}",
            "RWA_CHAIN_PRIVATE_KEY": HARDHAT_DEV_KEY,
            "RWA_CHAIN_ID": str(HARDHAT_CHAIN_ID),
            "RWA_DEPLOY_BACKOFF_SECONDS": "0.05",
        },
    )
    node = None
    try:
        with server.client() as http:
            api = MarketsApi(server, http)
            supply = 2_500_000
            market_id = api.register(market_body(totalSupply=supply))["id"]
            assert api.approve(market_id)["status"] == "activating"

            failed = api.wait_until(
                market_id,
                lambda m: m["status"] == "approved" and m["activationAttempts"] == 5,
                what="five failed deployment attempts and status approved",
            )
            assert failed["activationError"], failed
            assert failed["contractAddress"] is None, failed
            events = api.events(market_id)
            assert event_types(events) == [
                "market.registered",
                "market.approval_requested",
                "market.approved",
                "market.activation_started",
                "market.activation_failed",
            ], events
            failure = events[-1]
            assert failure["actorType"] == "system", failure
            assert failure["reason"], failure

            not_ready = http.get("/readyz")
            checks = error_of(not_ready, 503, "not_ready")["details"]["checks"]
            assert checks["chain"]["ok"] is False, describe(not_ready)
            assert checks["storage"]["ok"] is True, describe(not_ready)

            node = start_hardhat(rpc_port)
            ready = http.get("/readyz")
            assert ready.status_code == 200, describe(ready)
            retry = api.action(market_id, "activate")
            assert data_of(retry, 202)["status"] == "activating", describe(retry)

            market = api.wait_settled(market_id)
            assert_deployed(market, api)

            types = event_types(api.events(market_id))
            assert types.count("market.activation_failed") == 1, types
            assert types[-2:] == ["market.activation_started", "market.activated"], types

            onchain = api.onchain(market_id)
            assert onchain["custodyAddress"] == HARDHAT_DEV_ADDRESS, onchain
            assert onchain["totalSupply"] == str(supply * 10**18), onchain
            issuer = onchain["issuerAddress"]

        # The node itself, not the service, says the token is there with the right supply.
        w3 = Web3(HTTPProvider(node.url))
        address = Web3.to_checksum_address(market["contractAddress"])
        assert len(w3.eth.get_code(address)) > 0
        token = w3.eth.contract(address=address, abi=trex_artifact(TrexContract.TOKEN).abi)
        assert token.functions.totalSupply().call() == supply * 10**18
        assert token.functions.balanceOf(issuer).call() == supply * 10**18
        assert token.functions.balanceOf(HARDHAT_DEV_ADDRESS).call() == 0
        assert token.functions.symbol().call() == market["tokenSymbol"]
        assert token.functions.isAgent(HARDHAT_DEV_ADDRESS).call()  # the platform is agent
        assert token.functions.paused().call() is False
        receipt = w3.eth.get_transaction_receipt(market["deploymentTxHash"])
        assert receipt["status"] == 1
        assert receipt["contractAddress"] == address
    finally:
        server.stop()
        if node is not None:
            node.stop()


# -- c. a crash does not lose what was committed ----------------------------------------------


def test_market_and_events_survive_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_server(tmp_path, data_dir=data_dir)
    try:
        with first.client() as http:
            api = MarketsApi(first, http)
            registered = api.register()
            market_id = registered["id"]
            before = api.get(market_id)
            events_before = api.events(market_id)
        assert event_types(events_before) == [
            "market.registered",
            "market.approval_requested",
        ]
    finally:
        exit_code = first.kill()
    assert exit_code == -9, f"expected death by SIGKILL, got {exit_code}"

    second = start_server(tmp_path, data_dir=data_dir)
    try:
        with second.client() as http:
            api = MarketsApi(second, http)
            assert api.get(market_id) == before
            assert api.events(market_id) == events_before
            assert market_id in [m["id"] for m in api.list_all()]

            # The restarted service still writes to the same database after the crash.
            duplicate = http.post(
                f"{API}/register",
                json=market_body(tokenSymbol=registered["tokenSymbol"]),
                headers=bearer(api.issuer),
            )
            error_of(duplicate, 409, "duplicate_symbol")
            api.approve(market_id)
            assert_deployed(api.wait_settled(market_id), api)
    finally:
        exit_code = second.stop()
    assert exit_code == 0, f"graceful stop exited with {exit_code}:\n{second.log_tail()}"


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs"])
def test_public_pages_answer(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200, describe(response)
