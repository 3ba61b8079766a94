"""Wallets and the audit log end to end: a real ``rwa-market serve`` (embedded: SQLite), real
HTTP, a restart on the same data, and SQL sent by hand to the database file."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from tests.e2e.server import start_server

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
USERS = "/api/v1/users"
AUDIT = "/api/v1/audit"
OUTSIDE_KEY = Account.from_key("0x" + "55" * 32)


def test_addresses_survive_a_restart_and_the_log_cannot_be_rewritten(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        with server.client() as http:

            def wallet(user: str) -> dict[str, object]:
                token = server.token(user, "trader")
                response = http.get(
                    f"{USERS}/{user}/wallet", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200, response.text
                data: dict[str, object] = response.json()["data"]
                return data

            alice = wallet("alice")
            bob = wallet("bob")
            assert alice["custody"] == bob["custody"] == "platform"
            assert ADDRESS_RE.match(str(alice["address"])) and alice["address"] != bob["address"]

            trader = {"Authorization": f"Bearer {server.token('carol', 'trader')}"}
            challenge = http.get(f"{USERS}/carol/wallet/challenge", headers=trader).json()["data"]
            signed = OUTSIDE_KEY.sign_message(encode_defunct(text=challenge["message"]))
            body = {
                "address": OUTSIDE_KEY.address,
                "signature": "0x" + bytes(signed.signature).hex(),
            }
            registered = http.post(f"{USERS}/carol/wallet", json=body, headers=trader)
            assert registered.status_code == 200, registered.text
            again = http.post(f"{USERS}/carol/wallet", json=body, headers=trader)
            assert again.status_code == 409 and again.json()["error"]["code"] == "challenge_used"
    finally:
        server.stop()

    database = server.data_dir / "rwa.sqlite3"
    with sqlite3.connect(database, timeout=10) as conn:
        for statement in (
            "UPDATE audit_log SET actor_id = 'someone else'",
            "DELETE FROM audit_log",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)

    restarted = start_server(tmp_path, data_dir=server.data_dir)
    try:
        with restarted.client() as http:
            for user, before in (("alice", alice), ("bob", bob)):
                token = restarted.token(user, "trader")
                response = http.get(
                    f"{USERS}/{user}/wallet", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.json()["data"] == before  # the same number, the same address
            admin = {"Authorization": f"Bearer {restarted.token('ops', 'admin')}"}
            carol = http.get(f"{USERS}/carol/wallet", headers=admin).json()["data"]
            assert (carol["address"], carol["custody"]) == (OUTSIDE_KEY.address, "external")
            log = http.get(AUDIT, params={"action": "wallet.register_external"}, headers=admin)
            (entry,) = log.json()["data"]
            assert entry["actorId"] == "carol" and entry["after"]["address"] == OUTSIDE_KEY.address
            trader = {"Authorization": f"Bearer {restarted.token('carol', 'trader')}"}
            assert http.get(AUDIT, headers=trader).status_code == 403
    finally:
        restarted.stop()
