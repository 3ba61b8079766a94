"""Small helpers for driving the markets API over HTTP in the e2e tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.server import API, RwaServer, poll

SETTLED_ACTIVATION = {"active", "approved"}  # where a deployment ends: success or given up


def unique_symbol(prefix: str = "E") -> str:
    """A token symbol no other test uses: 2 to 11 uppercase letters or digits."""
    return (prefix + uuid.uuid4().hex[:8]).upper()[:11]


def market_body(**overrides: Any) -> dict[str, Any]:
    """A valid registration body (camelCase); ``overrides`` replace top-level keys."""
    symbol = overrides.pop("tokenSymbol", None) or unique_symbol()
    body: dict[str, Any] = {
        "name": f"E2E Offices {symbol}",
        "assetType": "real_estate",
        "tokenSymbol": symbol,
        "tokenName": f"E2E Offices Token {symbol}",
        "totalSupply": 1_000_000,
        "asset": {"valuation": "1000.00", "currency": "USD", "location": "Lisbon, PT"},
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def describe(response: httpx.Response) -> str:
    request = response.request
    body = request.content[:300] if request.content else b""
    return (
        f"{request.method} {request.url} body={body!r} -> "
        f"{response.status_code} {response.text[:1000]}"
    )


def data_of(response: httpx.Response, status: int) -> Any:
    """The ``data`` of a success envelope, after checking the status."""
    assert response.status_code == status, describe(response)
    body = response.json()
    assert "data" in body, describe(response)
    return body["data"]


def error_of(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The ``error`` of an error envelope, after checking status, shape and (maybe) code."""
    assert response.status_code == status, describe(response)
    assert response.headers.get("content-type", "").startswith("application/json"), describe(
        response
    )
    body = response.json()
    assert set(body) == {"error"}, describe(response)
    error = body["error"]
    assert isinstance(error.get("code"), str), describe(response)
    assert error["code"], describe(response)
    assert isinstance(error.get("message"), str), describe(response)
    assert error["message"], describe(response)
    if code is not None:
        assert error["code"] == code, describe(response)
    return error


class MarketsApi:
    """The markets endpoints of one server, with an issuer and an admin token at hand."""

    def __init__(
        self,
        server: RwaServer,
        client: httpx.Client,
        *,
        issuer_id: str = "issuer-e2e",
        admin_id: str = "admin-e2e",
        issuer_token: str | None = None,
    ) -> None:
        self.server = server
        self.client = client
        self.issuer_id = issuer_id
        self.admin_id = admin_id
        self.issuer = issuer_token or server.token(issuer_id, "issuer")
        self.admin = server.token(admin_id, "admin")

    def register(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.post(
            f"{API}/register", json=body or market_body(), headers=bearer(self.issuer)
        )
        registered: dict[str, Any] = data_of(response, 201)
        market: dict[str, Any] = registered["market"]
        assert registered["asset"]["marketId"] == market["id"], registered
        return market

    def approve(self, market_id: str, reason: str = "documents verified") -> dict[str, Any]:
        response = self.client.post(
            f"{API}/{market_id}/approve",
            json={"decision": "approve", "reason": reason},
            headers=bearer(self.admin),
        )
        market: dict[str, Any] = data_of(response, 200)
        return market

    def action(self, market_id: str, action: str, token: str | None = None) -> httpx.Response:
        return self.client.post(f"{API}/{market_id}/{action}", headers=bearer(token or self.admin))

    def get(self, market_id: str) -> dict[str, Any]:
        market: dict[str, Any] = data_of(self.client.get(f"{API}/{market_id}"), 200)
        return market

    def events(self, market_id: str) -> list[dict[str, Any]]:
        """The market's history, oldest first."""
        response = self.client.get(f"{API}/{market_id}/events", params={"order": "asc"})
        events: list[dict[str, Any]] = data_of(response, 200)
        return events

    def onchain(self, market_id: str) -> dict[str, Any]:
        token: dict[str, Any] = data_of(self.client.get(f"{API}/{market_id}/onchain"), 200)
        return token

    def list_all(self) -> list[dict[str, Any]]:
        """Every market, following the cursor."""
        markets: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            response = self.client.get(API, params=params)
            markets.extend(data_of(response, 200))
            cursor = response.json()["pagination"]["nextCursor"]
            if not cursor:
                return markets

    def wait_until(
        self, market_id: str, done: Any, *, timeout: float = 60.0, what: str = "the market"
    ) -> dict[str, Any]:
        def context() -> str:
            return f"events: {self.events(market_id)}\nserver log tail:\n{self.server.log_tail()}"

        market: dict[str, Any] = poll(
            lambda: self.get(market_id), done, timeout=timeout, what=what, context=context
        )
        return market

    def wait_settled(self, market_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until the deployment is over: ``active``, or back to ``approved`` (gave up)."""
        return self.wait_until(
            market_id,
            lambda m: m["status"] in SETTLED_ACTIVATION,
            timeout=timeout,
            what=f"market {market_id} to leave activating",
        )
