"""The web app in a real browser (Debian's chromium under Playwright) against the real server.

An issuer registers a market (and first sees the API's field error next to the field), an
admin approves it, and the issuer's page shows it active with its contract address without a
reload. Every page passes axe-core with no serious or critical violation, sends no request to
another origin and trips no Content-Security-Policy report. Screenshots: see ``browser.py``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.api import bearer, describe, market_body, unique_symbol
from tests.e2e.browser import ARTIFACTS, PageLog, artifact_dir, assert_accessible, launch_chromium
from tests.e2e.server import RwaServer, make_token, poll, rwa_market_command

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
# the trader's panels fed by WebSocket channels, and the HTTP reads they replace
LIVE_PANELS = (
    "book-bids",
    "recent-trades",
    "open-orders",
    "fills",
    "balances",
    "candle-chart",
    "pair-stats",
)
POLLED_READS = re.compile(
    r"/orderbook|/trading/pairs/[^/]+/(trades|candles|stats)|/orders|/trades|/balances"
)
ACTIVATION_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch_chromium() as browser:
        print(f"\nweb app screenshots under {ARTIFACTS}")
        yield browser


class Session:
    """One signed-in user in a browser context of their own (sessionStorage is per tab)."""

    def __init__(self, browser: Any, server: RwaServer, sub: str, role: str) -> None:
        self.sub = sub
        self.role = role
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.log = PageLog(self.page, server.base_url)
        self.token = server.token(sub, role)
        self.server = server
        # Every WebSocket of the page goes through Playwright (forwarded to the server as is),
        # so a test can drop one as a failing network would.
        self.ws_routes: list[Any] = []
        self.ws_refused = 0
        self.network_down = False
        self.page.route_web_socket(re.compile(r".*/api/v1/ws$"), self._forward)
        # The page's HTTP reads, to show which panels are fed by the WebSocket.
        self.reads: list[str] = []
        self.writes: list[str] = []
        self.page.on("request", self._record)

    def _record(self, request: Any) -> None:
        if "/api/v1/" in request.url:
            path = request.url.split("/api/v1", 1)[1]
            if request.method == "GET":
                self.reads.append(path)
            else:
                self.writes.append(f"{request.method} {path}")

    def wait_live(self, *boxes: str) -> None:
        """Wait until each panel says its data comes from its WebSocket channel."""
        for box in boxes:
            self.page.locator(f"#{box}[data-source='live']").wait_for(timeout=30_000)

    def _forward(self, route: Any) -> None:
        if self.network_down:  # refused at once, as an unreachable server would be
            self.ws_refused += 1
            route.close(code=1011, reason="network down (test)")
            return
        route.connect_to_server()
        self.ws_routes.append(route)

    def drop_live_connection(self, *, keep_down: bool = False) -> None:
        """Close the page's side of its newest WebSocket, as if the server had gone away;
        with ``keep_down`` new connections are refused until ``network_down`` is False."""
        assert self.ws_routes, "the page opened no WebSocket"
        self.network_down = keep_down
        self.ws_routes[-1].close(code=1012, reason="dropped by the test")

    def sign_in_by_link(self) -> None:
        """Open the link ``rwa-market token --link`` prints with the server's settings."""
        done = subprocess.run(
            [*rwa_market_command(), "token", "--sub", self.sub, "--role", self.role, "--link"],
            env=self.server.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        link = done.stdout.strip().splitlines()[-1]
        assert link.startswith(f"{self.server.base_url}/#token="), link
        self.page.goto(link)
        self.page.wait_for_selector("#signed-in-as")
        assert "token=" not in self.page.url, "the sign-in link's token stays in the address bar"

    def sign_in_by_form(self, out: Any = None) -> None:
        """Through the form; with ``out``, the sign-in page is checked by axe-core first and a
        pasted non-token is refused next to the field."""
        self.page.goto(f"{self.server.base_url}/")
        field = self.page.get_by_label("Bearer token")
        if out is not None:
            assert_accessible(self.page, "sign-in", out)
            field.fill("not-a-token")
            self.page.get_by_role("button", name="Sign in").click()
            self.page.locator("#signin-token-error").filter(
                has_text="not a bearer token"
            ).wait_for()
            assert field.get_attribute("aria-invalid") == "true"
        field.fill(self.token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_selector("#signed-in-as")

    def open(self, view: str) -> None:
        self.page.get_by_role("navigation", name="Sections").get_by_role("link", name=view).click()
        self.page.wait_for_selector(f"#{view.lower()}-title")

    def shot(self, out: Any, name: str) -> None:
        self.page.screenshot(path=str(out / f"{name}.png"), full_page=True)

    def close(self, out: Any) -> None:
        """The last screenshot and the console kept beside the others; then the page's checks."""
        try:
            self.shot(out, f"zz-last-{self.sub}")
            (out / f"console-{self.sub}.txt").write_text("\n".join(self.log.messages))
            self.log.check()
        finally:
            self.context.close()


def fill_seeds_body(page: Any, symbol: str) -> None:
    """Every field of the seeds' Quick Start body, typed into the registration form."""
    page.get_by_label("Name", exact=True).fill("Luxury Downtown Apartments")
    page.get_by_label("Asset type").select_option("real_estate")
    page.get_by_label("Token symbol").fill(symbol)
    page.get_by_label("Token name").fill("Luxury Apartment Token")
    page.get_by_label("Total supply").fill("1000000")
    page.get_by_label("Entity id").fill("entity-uuid-from-permissions-core")
    page.get_by_label("Valuation").fill("15000000")
    page.get_by_label("Currency").fill("USD")
    page.get_by_label("Location").fill("456 Main St, Los Angeles, CA 90014")
    page.get_by_label("Description").fill("50-unit luxury residential building")
    page.get_by_label("Compliance documents (JSON)").fill('["doc-id-1", "doc-id-2"]')
    page.get_by_label("Regulatory information (JSON)").fill(
        '{"jurisdiction": "US", "regulator": "SEC", "exemption": "Reg D 506(c)"}'
    )
    page.get_by_label("Attributes (JSON)").fill(
        '{"sqft": 75000, "units": 50, "yearBuilt": 2020, "occupancyRate": 0.95}'
    )


def test_issuer_registers_admin_approves_market_turns_active_live(
    embedded_server: RwaServer, chromium: Any
) -> None:
    out = artifact_dir("issuer_admin")
    issuer = Session(chromium, embedded_server, "issuer-web", "issuer")
    admin = Session(chromium, embedded_server, "admin-web", "admin")
    symbol = unique_symbol("W")
    http = embedded_server.client()
    try:
        # The issuer signs in with the development link and lands on the issuer page.
        issuer.sign_in_by_link()
        page = issuer.page
        page.wait_for_selector("#issuer-title")
        assert page.get_by_label("Issuer id").input_value() == "issuer-web"
        assert_accessible(page, "issuer", out)

        # A symbol the API refuses: its message appears next to the symbol field.
        fill_seeds_body(page, symbol.lower())
        page.get_by_role("button", name="Register market").click()
        symbol_field = page.get_by_label("Token symbol")
        error = page.locator(f"#{symbol_field.get_attribute('id')}-error")
        error.wait_for(state="visible")
        assert error.inner_text().strip(), "no field error next to the token symbol"
        assert symbol_field.get_attribute("aria-invalid") == "true"
        assert "validation_failed" in page.locator("#register-status").inner_text()
        issuer.shot(out, "01-issuer-field-error")
        assert_accessible(page, "issuer-with-error", out)
        assert not http.get("/api/v1/markets", params={"issuerId": "issuer-web"}).json()["data"]

        # Corrected, it registers: pending approval, followed on the lifecycle panel.
        symbol_field.fill(symbol)
        page.get_by_role("button", name="Register market").click()
        status = page.locator("#followed-status")
        status.filter(has_text="pending_approval").wait_for()
        assert symbol_field.get_attribute("aria-invalid") is None
        markets = http.get("/api/v1/markets", params={"issuerId": "issuer-web"}).json()["data"]
        assert [m["tokenSymbol"] for m in markets] == [symbol]
        market_id = markets[0]["id"]
        details = http.get(f"/api/v1/markets/{market_id}/details").json()["data"]["asset"]
        assert details["attributes"] == {
            "sqft": 75000,
            "units": 50,
            "yearBuilt": 2020,
            "occupancyRate": 0.95,
        }
        assert details["complianceDocuments"] == ["doc-id-1", "doc-id-2"]
        assert details["regulatoryInfo"]["exemption"] == "Reg D 506(c)"
        assert page.locator("#followed-contract").inner_text() == "not deployed yet"
        issuer.shot(out, "02-issuer-pending")

        # The live connection drops: the page says so, reconnects, subscribes again and is
        # live once the fresh snapshot of the markets channel arrives.
        detail = page.locator("#market-detail")
        detail.filter(has_text="live (markets channel)").wait_for()
        state = page.locator("#connection-state")
        issuer.drop_live_connection(keep_down=True)
        state.filter(has_text="reconnecting").wait_for()
        detail.filter(has_text="polled every").wait_for()  # REST meanwhile
        page.wait_for_timeout(2000)  # the page retries (0.5 s, then 1 s) and is refused
        assert issuer.ws_refused >= 1
        assert "reconnecting" in state.inner_text()
        issuer.shot(out, "02b-issuer-reconnecting")
        issuer.network_down = False
        state.filter(has_text="connected").wait_for(timeout=30_000)
        detail.filter(has_text="live (markets channel)").wait_for()
        assert len(issuer.ws_routes) >= 2
        page.locator("#market-detail[data-source='live']").wait_for()
        issuer.reads.clear()

        # A token the service refuses (another secret) sends the page back to sign-in.
        forged = make_token("admin-web", "admin", secret="another-secret-0123456789abcdefghijkl")
        admin.page.goto(f"{embedded_server.base_url}/#token={forged}")
        admin.page.locator("#signin-token-error").filter(has_text="refused this token").wait_for()
        assert admin.page.evaluate("sessionStorage.length") == 0

        # The admin signs in through the form and approves from the queue.
        admin.sign_in_by_form(out)
        admin.open("Admin")
        row = admin.page.locator(f"#approval-queue tr[data-market-id='{market_id}']")
        row.wait_for()
        assert_accessible(admin.page, "admin", out)
        admin.shot(out, "03-admin-queue")
        row.get_by_role("button", name=f"Approve {markets[0]['name']}").click()
        admin.page.locator("#admin-status").filter(has_text="approved").wait_for()
        row.wait_for(state="detached")

        # Without a reload, the issuer's page turns active with the contract address.
        status.filter(has_text="active").wait_for(timeout=ACTIVATION_TIMEOUT_MS)
        assert status.inner_text() == "active"
        contract = page.locator("#followed-contract").inner_text()
        assert ADDRESS_RE.match(contract), contract
        assert (
            contract == http.get(f"/api/v1/markets/{market_id}").json()["data"]["contractAddress"]
        )
        # ... from the markets channel's events: the page did not read the market meanwhile
        market_reads = [url for url in issuer.reads if url.startswith(f"/markets/{market_id}")]
        assert not market_reads, f"the issuer's page read the market over HTTP: {market_reads}"
        timeline = page.locator("#followed-events li .event-type").all_inner_texts()
        assert timeline == [
            "market.registered",
            "market.approval_requested",
            "market.approved",
            "market.activation_started",
            "market.activated",
        ], timeline
        issuer.shot(out, "04-issuer-active")
        assert_accessible(page, "issuer-active", out)

        # The admin pauses and resumes it from the markets table.
        market_row = admin.page.locator(f"#admin-markets tr[data-market-id='{market_id}']")
        market_row.get_by_role("button", name=f"pause {markets[0]['name']}").click()
        market_row.locator(".status").filter(has_text="paused").wait_for()
        market_row.get_by_role("button", name=f"resume {markets[0]['name']}").click()
        market_row.locator(".status").filter(has_text="active").wait_for()
        admin.shot(out, "05-admin-markets")
        events = http.get(f"/api/v1/markets/{market_id}/events?order=asc").json()["data"]
        assert [e["eventType"] for e in events][-2:] == ["market.paused", "market.resumed"]

        # A second market: rejecting it needs a reason, given next to it; then it is rejected.
        body = market_body(tokenSymbol=unique_symbol("R"))
        second = http.post("/api/v1/markets/register", json=body, headers=bearer(issuer.token))
        second_id = second.json()["data"]["market"]["id"]
        row = admin.page.locator(f"#approval-queue tr[data-market-id='{second_id}']")
        row.get_by_role("button", name=f"Reject {body['name']}").click()
        row.get_by_text("A rejection needs a reason.").wait_for()
        row.get_by_label(f"Reason for {body['name']}").fill("valuation report missing")
        row.get_by_role("button", name=f"Reject {body['name']}").click()
        row.wait_for(state="detached")
        rejected = http.get(f"/api/v1/markets/{second_id}").json()["data"]
        assert (rejected["status"], rejected["rejectedReason"]) == (
            "rejected",
            "valuation report missing",
        )

        # The first is archived: the issuer's page follows.
        market_row.get_by_role("button", name=f"archive {markets[0]['name']}").click()
        market_row.locator(".status").filter(has_text="archived").wait_for()
        status.filter(has_text="archived").wait_for()

        # Signing out forgets the token: the sign-in form is back, also after a reload.
        admin.page.get_by_role("button", name="Sign out").click()
        admin.page.get_by_label("Bearer token").wait_for()
        assert admin.page.evaluate("sessionStorage.length") == 0
        admin.page.reload()
        admin.page.get_by_label("Bearer token").wait_for()
    finally:
        http.close()
        issuer.close(out)
        admin.close(out)


# -- two traders trade -----------------------------------------------------------------------


def _ok(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in statuses, describe(response)
    return response.json()["data"]


def _active_market_with_pair(server: RwaServer, http: httpx.Client, symbol: str) -> str:
    """A market registered and approved over HTTP, active with its pair; the pair's symbol."""
    issuer = bearer(server.token("issuer-trade", "issuer"))
    admin = bearer(server.token("admin-trade", "admin"))
    body = market_body(tokenSymbol=symbol, tickSize="0.01", lotSize="1", totalSupply=1000)
    market = _ok(http.post("/api/v1/markets/register", json=body, headers=issuer), 201)["market"]
    _ok(
        http.post(
            f"/api/v1/markets/{market['id']}/approve",
            json={"decision": "approve", "reason": "documents verified"},
            headers=admin,
        ),
        200,
    )
    poll(
        lambda: _ok(http.get(f"/api/v1/markets/{market['id']}"), 200)["status"],
        lambda status: status == "active",
        timeout=90,
        what=f"market {symbol} active",
        context=server.log_tail,
    )
    pair_symbol = f"{symbol}-USDC"  # activation makes the pair in its unit of work
    pair = _ok(http.get(f"/api/v1/trading/pairs/{pair_symbol}"), 200)
    assert (pair["status"], pair["tickSize"], pair["lotSize"]) == ("trading", "0.01", "1"), pair
    return pair_symbol


def _fund(server: RwaServer, http: httpx.Client, symbol: str, seller: str, buyer: str) -> None:
    """KYC for both traders (and the issuer), 100 tokens from the issuer to the seller, and
    10000 USDC minted to the buyer."""
    admin = bearer(server.token("admin-trade", "admin"))
    record = {
        "kycStatus": "APPROVED",
        "whitelisted": True,
        "accredited": True,
        "jurisdiction": "US",
        "expiresAt": "2099-12-31T00:00:00Z",
    }
    for user in ("issuer-trade", seller, buyer):
        _ok(http.post(f"/api/v1/tokens/compliance/{user}", json=record, headers=admin), 200, 201)
    issuer = bearer(server.token("issuer-trade", "issuer"))
    _ok(
        http.post(
            f"/api/v1/tokens/{symbol}/transfer",
            json={"toUserId": seller, "amount": "100"},
            headers=issuer,
        ),
        200,
        201,
    )
    mint = _ok(
        http.post(
            "/api/v1/tokens/USDC/mint",
            json={"userId": buyer, "amount": "10000"},
            headers={**admin, "Idempotency-Key": f"web-e2e-{buyer}"},
        ),
        202,
    )
    poll(
        lambda: _ok(http.get(f"/api/v1/tokens/USDC/mints/{mint['id']}", headers=admin), 200),
        lambda m: m["status"] != "PENDING",
        timeout=60,
        what="the USDC mint",
    )
    balances = _ok(http.get(f"/api/v1/tokens/balances/{buyer}/USDC", headers=admin), 200)
    assert balances["available"] == "10000", balances


def _balance_row(page: Any, symbol: str) -> tuple[str, str]:
    row = page.locator(f"#balances tr[data-symbol='{symbol}']")
    return row.locator(".available").inner_text(), row.locator(".locked").inner_text()


def _wait_balance(page: Any, symbol: str, available: str, locked: str) -> None:
    row = page.locator(f"#balances tr[data-symbol='{symbol}']")
    row.locator(".available").filter(has_text=re.compile(f"^{re.escape(available)}$")).wait_for()
    row.locator(".locked").filter(has_text=re.compile(f"^{re.escape(locked)}$")).wait_for()


def _place(page: Any, side: str, price: str, quantity: str) -> None:
    ticket = page.locator("#order-ticket")
    ticket.get_by_label("Buy" if side == "BUY" else "Sell", exact=True).check()
    ticket.get_by_label("Type").select_option("LIMIT")
    ticket.get_by_label("Price", exact=True).fill(price)
    ticket.get_by_label("Quantity").fill(quantity)
    ticket.get_by_role("button", name="Place order").click()


def test_two_traders_trade_and_see_book_trade_chart_and_balances(
    embedded_server: RwaServer, chromium: Any
) -> None:
    out = artifact_dir("traders")
    symbol = unique_symbol("T")
    with embedded_server.client(timeout=30) as http:
        pair = _active_market_with_pair(embedded_server, http, symbol)
        _fund(embedded_server, http, symbol, "seller-web", "buyer-web")
        admin = bearer(embedded_server.token("admin-trade", "admin"))

        seller = Session(chromium, embedded_server, "seller-web", "trader")
        buyer = Session(chromium, embedded_server, "buyer-web", "trader")
        try:
            for trader in (seller, buyer):
                trader.sign_in_by_link()
                trader.page.wait_for_selector("#trader-title")
                trader.page.get_by_label("Pair").select_option(pair)
                trader.page.locator("#pair-stats").filter(has_text=pair).wait_for()
            _wait_balance(seller.page, symbol, "100", "0")
            _wait_balance(buyer.page, "USDC", "10000", "0")
            address = _ok(http.get("/api/v1/users/buyer-web/wallet", headers=admin), 200)
            assert buyer.page.locator("#wallet-address").inner_text() == address["address"]
            assert_accessible(buyer.page, "trader", out)

            # The ticket checks tick and lot with exact decimals before anything is sent.
            ticket = buyer.page.locator("#order-ticket")
            _place(buyer.page, "BUY", "25.001", "1.5")
            assert (
                "at most 2 decimal places" in buyer.page.locator("#order-price-error").inner_text()
            )
            assert (
                "at most 0 decimal places"
                in buyer.page.locator("#order-quantity-error").inner_text()
            )
            assert ticket.get_by_label("Price", exact=True).get_attribute("aria-invalid") == "true"
            buyer.shot(out, "01-buyer-ticket-errors")
            orders = _ok(http.get("/api/v1/trading/users/buyer-web/orders", headers=admin), 200)
            assert orders == []

            # From here on the market and account panels are fed by their channels: no page
            # reads the book, trades, candles, orders, fills or balances over HTTP.
            for trader in (seller, buyer):
                trader.wait_live(*LIVE_PANELS)
                trader.reads.clear()
                trader.writes.clear()

            # The seller rests 10 at 25.00: both books show the ask, the seller's funds lock.
            _place(seller.page, "SELL", "25.00", "10")
            seller.page.locator("#order-status").filter(has_text="OPEN").wait_for()
            seller.page.locator("#open-orders tr[data-order-id]").first.wait_for()
            for trader in (seller, buyer):
                trader.page.locator("#book-asks tr[data-price='25.00'][data-size='10']").wait_for()
            _wait_balance(seller.page, symbol, "90", "10")
            seller.shot(out, "02-seller-resting")

            # The buyer takes 4: a trade at 25.00 on both screens, the ask left at 6.
            _place(buyer.page, "BUY", "25.00", "4")
            buyer.page.locator("#order-status").filter(has_text="FILLED").wait_for()
            for trader in (seller, buyer):
                page = trader.page
                page.locator("#recent-trades tr[data-price='25.00'][data-quantity='4']").wait_for()
                page.locator("#book-asks tr[data-price='25.00'][data-size='6']").wait_for()
                page.locator("#fills tr[data-price='25.00'][data-quantity='4']").wait_for()
                page.locator("#candle-chart[data-candles='1']").wait_for()
                summary = page.locator("#candle-summary").inner_text()
                assert "close 25.00" in summary and "live candles channel" in summary, summary
                page.locator("#pair-stats").filter(has_text="last 25.00").filter(
                    has_text="24 h change"
                ).wait_for()
                assert "checksum verified" in page.locator("#book-state").inner_text()
            after = {
                user: {
                    b["symbol"]: b
                    for b in _ok(http.get(f"/api/v1/tokens/balances/{user}", headers=admin), 200)
                }
                for user in ("seller-web", "buyer-web")
            }
            _wait_balance(seller.page, symbol, "90", "6")
            _wait_balance(
                seller.page,
                "USDC",
                after["seller-web"]["USDC"]["available"],
                after["seller-web"]["USDC"]["locked"],
            )
            _wait_balance(buyer.page, symbol, "4", "0")
            _wait_balance(
                buyer.page,
                "USDC",
                after["buyer-web"]["USDC"]["available"],
                after["buyer-web"]["USDC"]["locked"],
            )
            assert after["buyer-web"]["USDC"]["available"] != "10000"
            assert after["seller-web"]["USDC"]["available"] not in ("", "0")
            seller.shot(out, "03-seller-after-trade")
            buyer.shot(out, "04-buyer-after-trade")
            for trader in (seller, buyer):
                polled = [url for url in trader.reads if POLLED_READS.search(url)]
                assert not polled, f"{trader.sub} read live panels over HTTP: {polled}"
                trader.wait_live(*LIVE_PANELS)
                # ... and the orders went over the WebSocket (order.submit, acked when durable)
                assert not trader.writes, f"{trader.sub} wrote over HTTP: {trader.writes}"
                assert "(WebSocket)" in trader.page.locator("#order-status").inner_text()
            assert_accessible(seller.page, "trader-after-trade", out)

            # The seller's connection drops and stays down: the state says so, the panels fall
            # back to HTTP and still follow the buyer's order; when the network is back, the
            # page reconnects, resubscribes and is live again from fresh snapshots.
            state = seller.page.locator("#connection-state")
            seller.drop_live_connection(keep_down=True)
            state.filter(has_text="reconnecting").wait_for()
            seller.page.locator("#book-bids[data-source='http']").wait_for()
            _place(buyer.page, "BUY", "24.00", "3")
            buyer.page.locator("#order-status").filter(has_text="OPEN").wait_for()
            seller.page.locator("#book-bids tr[data-price='24.00'][data-size='3']").wait_for()
            assert "over HTTP" in seller.page.locator("#book-state").inner_text()
            seller.shot(out, "03b-seller-offline")
            refused = seller.ws_refused
            seller.network_down = False
            state.filter(has_text="connected").wait_for(timeout=30_000)
            assert seller.ws_refused >= refused
            seller.wait_live(*LIVE_PANELS)
            seller.page.locator("#book-state").filter(has_text="live (book channel)").wait_for()
            seller.page.locator("#book-asks tr[data-price='25.00'][data-size='6']").wait_for()
            seller.page.locator("#book-bids tr[data-price='24.00'][data-size='3']").wait_for()
            buyer.page.locator("#open-orders tr[data-order-id]").filter(
                has_text="24.00"
            ).get_by_role("button", name=re.compile("^Cancel")).click()
            seller.page.locator("#book-bids tr[data-price='24.00']").wait_for(state="detached")

            # The Reconnect button closes the socket from the page: connected again, book right.
            seller.page.get_by_role("button", name="Reconnect").click()
            state.filter(has_text="connected").wait_for(timeout=30_000)
            seller.wait_live(*LIVE_PANELS)
            seller.page.locator("#book-asks tr[data-price='25.00'][data-size='6']").wait_for()

            # A market buy of 2 takes from the ask (6 -> 4); a stop-limit waits for its trigger
            # in the buyer's open orders until the buyer cancels it.
            ticket = buyer.page.locator("#order-ticket")
            ticket.get_by_label("Buy", exact=True).check()
            ticket.get_by_label("Type").select_option("MARKET")
            assert ticket.get_by_label("Price", exact=True).is_hidden()
            ticket.get_by_label("Quantity").fill("2")
            ticket.get_by_role("button", name="Place order").click()
            buyer.page.locator("#order-status").filter(has_text="MARKET").filter(
                has_text="FILLED"
            ).wait_for()
            buyer.page.locator("#book-asks tr[data-price='25.00'][data-size='4']").wait_for()
            ticket.get_by_label("Type").select_option("STOP_LIMIT")
            ticket.get_by_label("Stop price").fill("30.00")
            ticket.get_by_label("Price", exact=True).fill("30.00")
            ticket.get_by_label("Quantity").fill("1")
            ticket.get_by_role("button", name="Place order").click()
            buyer.page.locator("#order-status").filter(has_text="PENDING_TRIGGER").wait_for()
            stop_row = buyer.page.locator("#open-orders tr[data-order-id]")
            stop_row.filter(has_text="PENDING_TRIGGER").wait_for()
            buyer.shot(out, "05-buyer-stop-order")
            stop_row.get_by_role("button", name=re.compile("^Cancel")).click()
            buyer.page.locator("#open-orders").filter(has_text="No open orders").wait_for()
            _wait_balance(buyer.page, symbol, "6", "0")

            # The seller cancels the rest: the ask leaves both books, the funds unlock.
            seller.page.locator("#open-orders").get_by_role(
                "button", name=re.compile("^Cancel")
            ).click()
            seller.page.locator("#order-status").filter(has_text="cancelled").wait_for()
            seller.page.locator("#open-orders").filter(has_text="No open orders").wait_for()
            buyer.page.locator("#book-asks tr[data-price='25.00']").wait_for(state="detached")
            _wait_balance(seller.page, symbol, "94", "0")
            seller.shot(out, "06-seller-cancelled")
        finally:
            seller.close(out)
            buyer.close(out)


# -- the admin's tools and a trader's withdrawal ---------------------------------------------

BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"


def test_admin_compliance_mint_withdrawal_approval_and_audit(
    embedded_server: RwaServer, chromium: Any
) -> None:
    out = artifact_dir("admin_tools")
    user = "trader-admin-ui"
    admin = Session(chromium, embedded_server, "admin-tools", "admin")
    trader = Session(chromium, embedded_server, user, "trader")
    admin_headers = bearer(embedded_server.token("admin-tools", "admin"))
    try:
        admin.sign_in_by_link()
        page = admin.page
        page.wait_for_selector("#admin-title")

        # A compliance record: a jurisdiction the API refuses is marked on its field first.
        form = page.locator("#compliance-form")
        form.get_by_label("User id").fill(user)
        form.get_by_label("Jurisdiction").fill("XK")
        form.get_by_role("button", name="Save record").click()
        page.locator("#compliance-jurisdiction-error").filter(has_text=re.compile(".")).wait_for()
        assert form.get_by_label("Jurisdiction").get_attribute("aria-invalid") == "true"
        form.get_by_label("Jurisdiction").fill("US")
        form.get_by_role("button", name="Save record").click()
        form.get_by_text(f"Compliance record of {user} saved.").wait_for()
        records = page.locator("#compliance-records tbody tr")
        records.filter(has_text="APPROVED").wait_for()
        assert form.get_by_label("Jurisdiction").get_attribute("aria-invalid") is None

        # A mint of 250.5 USDC to the trader, exact.
        mint = page.locator("#mint-form")
        mint.get_by_label("Token").fill("USDC")
        mint.get_by_label("User id").fill(user)
        mint.get_by_label("Amount").fill("250.5")
        mint.get_by_role("button", name="Mint").click()
        mint.get_by_text(re.compile(r"250\.5 to trader-admin-ui")).wait_for()
        with embedded_server.client() as http:
            poll(
                lambda: (
                    http.get(f"/api/v1/tokens/balances/{user}/USDC", headers=admin_headers)
                    .json()
                    .get("data", {})
                    .get("available")
                ),
                lambda available: available == "250.5",
                timeout=60,
                what="the minted USDC",
            )

            # The trader asks to withdraw 100.25: available and locked change on the page.
            trader.sign_in_by_link()
            trader.page.wait_for_selector("#trader-title")
            _wait_balance(trader.page, "USDC", "250.5", "0")
            withdraw = trader.page.locator("#withdraw-form")
            withdraw.get_by_label("Token").fill("USDC")
            withdraw.get_by_label("Amount").fill("100.25")
            withdraw.get_by_label("To address").fill(BURN_ADDRESS)
            withdraw.get_by_role("button", name="Request withdrawal").click()
            withdraw.get_by_text("PENDING_APPROVAL").first.wait_for()
            listed = trader.page.locator("#withdrawals tr[data-withdrawal-id]")
            listed.filter(has_text="USDC").filter(has_text="100.25").wait_for()
            _wait_balance(trader.page, "USDC", "150.25", "100.25")
            assert_accessible(trader.page, "trader-withdrawal", out)
            trader.shot(out, "01-trader-withdrawal-requested")

            # The admin's queue of every user's withdrawals waiting for approval shows it
            # (without a reload); the user's own list shows it pending too.
            wform = page.locator("#withdrawals-form")
            queued = page.locator("#pending-withdrawals tr[data-withdrawal-id]").filter(
                has_text=user
            )
            queued.filter(has_text="USDC").filter(has_text="100.25").wait_for()
            wform.get_by_label("User id").fill(user)
            wform.get_by_role("button", name="Show withdrawals").click()
            row = page.locator("#admin-withdrawals tr[data-withdrawal-id]")
            row.filter(has_text="USDC").filter(has_text="PENDING_APPROVAL").wait_for()
            withdrawal_id = row.get_attribute("data-withdrawal-id")
            assert queued.get_attribute("data-withdrawal-id") == withdrawal_id
            admin.shot(out, "01b-admin-withdrawal-queue")

            # The admin approves it from the queue: it leaves the queue.
            queued.get_by_role("button", name=f"Approve withdrawal of 100.25 by {user}").click()
            wform.get_by_text(re.compile(r"Withdrawal .* (APPROVED|SENT|COMPLETED)\.")).wait_for()
            queued.wait_for(state="detached")
            row.filter(has_text=re.compile("APPROVED|SENT|COMPLETED")).wait_for()
            status = http.get(f"/api/v1/withdrawals/{withdrawal_id}", headers=admin_headers)
            assert status.json()["data"]["status"] in {"APPROVED", "SENT", "COMPLETED"}

        # The audit log shows the approval.
        audit = page.locator("#audit-form")
        audit.get_by_label("Action").fill("withdrawal.approve")
        audit.get_by_role("button", name="Show entries").click()
        page.locator("#audit-log tbody tr").filter(
            has_text=f"withdrawal:{withdrawal_id}"
        ).wait_for()
        assert_accessible(page, "admin-tools", out)
        admin.shot(out, "02-admin-tools")
    finally:
        admin.close(out)
        trader.close(out)
