"""The web app's exact arithmetic, run by node on the very modules the browser loads:
decimal strings with BigInt (compared with Python's Decimal), the order ticket's tick and lot
checks, and the book checksum (compared with the engine's ``core.trading.book.checksum``)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from decimal import Decimal, localcontext
from typing import Any

from adapters.inbound.web import STATIC_DIR
from core.trading.book import checksum
from tests.harness.common import missing_service

SCRIPT = """
import * as d from "./decimal.js";
import { Book, checksum } from "./book.js";
const input = JSON.parse(process.argv[1]);
const out = {
  arithmetic: input.pairs.map(([a, b]) => [d.add(a, b), d.subtract(a, b), d.multiply(a, b),
    d.compare(a, b), d.isMultipleOf(a, b)]),
  checks: input.orders.map(([pair, order]) => d.checkOrder(pair, order)),
  checksums: input.books.map(([bids, asks]) => checksum(asks, bids)),
};
const book = new Book();
book.load({ seq: 1, bids: [["10.00", "5"]], asks: [["10.50", "2"]] });
const after = book.apply({ seq: 2, bids: [["10.00", "0"], ["9.90", "1"]], asks: [],
  checksum: checksum([["10.50", "2"]], [["9.90", "1"]]) });
const gap = book.apply({ seq: 4, bids: [], asks: [] });
out.book = { applied: after, gap, sorted: book.sorted() };
console.log(JSON.stringify(out));
"""


def run_node(payload: dict[str, Any]) -> Any:
    node = shutil.which("node") or ""
    if not node:
        missing_service("node (apt-get install nodejs)")
    done = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, json.dumps(payload)],
        cwd=STATIC_DIR / "js",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _decimal(rng: random.Random) -> str:
    whole = str(rng.choice([0, 1, 7, 99, 10**18 + 3, 2**70]))
    places = rng.randint(0, 20)
    return whole if places == 0 else f"{whole}.{rng.randint(0, 10**places - 1):0{places}d}"


def _plain(value: Decimal) -> str:
    return format(value, "f")


def test_decimal_strings_are_exact_like_pythons_decimal() -> None:
    rng = random.Random(7)
    pairs = [(_decimal(rng), _decimal(rng)) for _ in range(300)]
    pairs += [("0.1", "0.2"), ("25.00", "4"), ("1", "0.000000000000000001")]
    result = run_node({"pairs": pairs, "orders": [], "books": []})
    with localcontext() as exact:
        exact.prec = 200  # no rounding in the reference either
        _compare(pairs, result["arithmetic"])
    assert result["arithmetic"][-3][0] == "0.3"  # never 0.30000000000000004


def _compare(pairs: list[tuple[str, str]], arithmetic: list[list[Any]]) -> None:
    for (a, b), (total, difference, product, order, multiple) in zip(
        pairs, arithmetic, strict=True
    ):
        x, y = Decimal(a), Decimal(b)
        assert Decimal(total) == x + y and Decimal(difference) == x - y, (a, b)
        assert Decimal(product) == x * y, (a, b, product)
        assert order == (x > y) - (x < y)
        assert multiple == (y != 0 and x % y == 0), (a, b)


def test_order_ticket_checks_tick_lot_and_limits() -> None:
    pair = {"tickSize": "0.05", "lotSize": "0.1", "minQuantity": "0.5", "maxQuantity": "100"}
    base = {"type": "LIMIT", "side": "BUY", "timeInForce": "GTC", "postOnly": False}
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"price": "25.05", "quantity": "1.2"}, {}),
        ({"price": "25.03", "quantity": "1.2"}, {"price": "multiple of the tick 0.05"}),
        ({"price": "25.051", "quantity": "1.2"}, {"price": "at most 2 decimal places"}),
        ({"price": "25.05", "quantity": "1.25"}, {"quantity": "at most 1 decimal places"}),
        ({"price": "25.05", "quantity": "0.4"}, {"quantity": "at least 0.5"}),
        ({"price": "25.05", "quantity": "100.1"}, {"quantity": "at most 100"}),
        ({"price": "1e3", "quantity": "-1"}, {"price": "plain decimal", "quantity": "plain"}),
        ({"price": "0.00", "quantity": "1"}, {"price": "above zero"}),
        ({"type": "MARKET", "quoteAmount": "50"}, {}),
        ({"type": "STOP_LIMIT", "price": "25.05", "quantity": "1"}, {"stopPrice": "required"}),
        (
            {"price": "25.05", "quantity": "1", "postOnly": True, "timeInForce": "IOC"},
            {"timeInForce": "GTC"},
        ),
    ]
    orders = [[pair, {**base, **order}] for order, _ in cases]
    result = run_node({"pairs": [], "orders": orders, "books": []})
    for (order, expected), errors in zip(cases, result["checks"], strict=True):
        assert set(errors) == set(expected), (order, errors)
        for name, words in expected.items():
            assert words in errors[name], (order, errors)


def test_book_checksum_matches_the_engines() -> None:
    rng = random.Random(11)
    books = []
    for _ in range(40):
        prices = sorted({Decimal(rng.randint(1, 5000)) / 100 for _ in range(rng.randint(0, 15))})
        split = rng.randint(0, len(prices))
        bids = [
            (_plain(p.quantize(Decimal("0.01"))), str(rng.randint(1, 500))) for p in prices[:split]
        ]
        asks = [
            (
                _plain(p.quantize(Decimal("0.01"))),
                f"{rng.randint(1, 9999)}.{rng.randint(0, 999):03d}",
            )
            for p in prices[split:]
        ]
        books.append((list(reversed(bids)), asks))
    result = run_node({"pairs": [], "orders": [], "books": books})
    assert result["checksums"] == [checksum(bids, asks) for bids, asks in books]
    book = result["book"]
    assert book["applied"] is True and book["gap"] is False
    assert book["sorted"] == {"bids": [["9.90", "1"]], "asks": [["10.50", "2"]]}
