"""A hostile client against the trading HTTP API (DESIGN 5.1, 5.5, 8): every field of an order,
of a pair's create and PATCH, every path and query parameter, with hand-picked nasty values and
generated ones. Each answer is a 4xx with a code and a message (never a 500), and a refused
order leaves no order, no lock and nothing in the book."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bootstrap
from bootstrap import Runtime, Settings
from core.shared.text import text_problem
from tests.unit.conftest import SECRET
from tests.unit.trading_helpers import (
    ETH,
    TRADING,
    USD,
    admin,
    assert_no_trace,
    data,
    fund,
    make_pair,
    trader,
)

LIMIT = {
    "tradingPairId": "WETH-USDC",
    "side": "BUY",
    "type": "LIMIT",
    "price": "10.00",
    "quantity": "1.000",
}

NASTY_TEXT: list[Any] = [
    "",
    " ",
    "\u200b",
    "\ud800",
    "a\udfff",
    "\x00",
    "10.00\n",
    "\n10.00",
    " 10.00",
    "10.00 ",
    "1\u00a00",
    "\uff11\uff10.00",  # fullwidth digits
    "\u0661\u0660.00",  # Arabic-Indic digits
    "10.00\u0301",
    "1" * 4000,
    "0." + "0" * 4000 + "1",
    "9" * 79,
    "9" * 80,
    "1e999",
    "1E-999",
    "NaN",
    "Infinity",
    "-0",
    "0x10",
    "+10",
    ".5",
    "5.",
    "1_000",
    "WETH-USDC\n",
    "weth-usdc",
    "../../etc/passwd",
    "%00",
    "' OR 1=1 --",
    "\u202eCDSU-HTEW",
    "x" * 101,
    "\U0001f4a9",
]
NASTY_JSON: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    10**4000,
    -(10**30),
    2**63,
    2**64,
    1.5,
    1e308,
    [],
    {},
    ["10.00"],
    {"$gt": ""},
]
NASTY = NASTY_TEXT + NASTY_JSON
ORDER_FIELDS = [
    "tradingPairId",
    "side",
    "type",
    "price",
    "stopPrice",
    "quantity",
    "quoteAmount",
    "timeInForce",
    "postOnly",
    "clientOrderId",
]


@pytest.fixture
def runtime() -> Runtime:
    """The unit runtime without the per-user order limit (thousands of orders here)."""
    settings = Settings(
        profile="test", jwt_secret=SECRET, deploy_backoff_seconds=0.01, order_rate_limit=0
    )
    return bootstrap.build(settings)


@pytest.fixture
async def pair(client: Any, runtime: Runtime) -> dict[str, Any]:
    made = await make_pair(client, runtime)
    await fund(runtime, "alice", made["baseTokenId"], 10 * ETH)
    await fund(runtime, "alice", made["quoteTokenId"], 100_000 * USD)
    return made


def no_500(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def refused(response: Any, *statuses: int) -> dict[str, Any]:
    body = await response.get_json()
    assert response.status_code in (statuses or (400, 404, 409, 413, 415, 422)), (
        response.status_code,
        body,
    )
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert text_problem(error["message"]) is None, error  # client text only escaped
    return error


async def post_raw(client: Any, runtime: Runtime, body: str | bytes, **headers: str) -> Any:
    return await client.post(
        f"{TRADING}/orders",
        data=body,
        headers={"Content-Type": "application/json", **trader(runtime, "alice"), **headers},
    )


# -- order submission --------------------------------------------------------------------------


@pytest.mark.parametrize("field", ORDER_FIELDS)
async def test_each_order_field_refuses_every_nasty_value(
    client: Any, runtime: Runtime, pair: dict[str, Any], field: str, caplog: Any
) -> None:
    for value in NASTY:
        if value is None or (field == "postOnly" and isinstance(value, bool)):
            continue  # null is "not given"; a boolean is postOnly's type
        for order_type in ("LIMIT", "MARKET", "STOP_LIMIT"):
            body = {**LIMIT, "type": order_type, field: value}
            if order_type == "MARKET" and field not in ("price", "stopPrice"):
                body.pop("price")
            if order_type == "STOP_LIMIT" and field != "stopPrice":
                body["stopPrice"] = "9.00"
            response = await client.post(
                f"{TRADING}/orders", json=body, headers=trader(runtime, "alice")
            )
            if response.status_code == 201:  # e.g. a clientOrderId that is fine
                order = await data(response)
                # a fine clientOrderId, or a symbol in another case (find_pair: any case)
                assert field == "clientOrderId" or value == "weth-usdc", (field, value, order)
                if order["status"] in ("OPEN", "PENDING_TRIGGER"):
                    cancelled = await client.delete(
                        f"{TRADING}/orders/{order['id']}", headers=trader(runtime, "alice")
                    )
                    assert cancelled.status_code == 200
                continue
            await refused(response)
    no_500(caplog)
    await assert_no_trace(client, runtime, pair)


RAW_BODIES = [
    "",
    " ",
    "null",
    "[]",
    '"x"',
    "1",
    "{",
    '{"price": NaN}',
    '{"price": Infinity}',
    '{"price": -Infinity}',
    "[" * 100_000,
    '{"a":' * 5000 + "1" + "}" * 5000,
    '{"price": 1' + "0" * 5000 + "}",
    '{"price": 1e99999999999}',
    '{"price": 0.' + "0" * 5000 + "1}",
    '{"tradingPairId": "\\ud800"}',
    '{"tradingPairId": "WETH-USDC", "tradingPairId": "\\udfff"}',
    '{"\\ud800": 1}',
    json.dumps({**LIMIT, "price": "10.00", "quantity": "1.000"}) + "\n\x00",
    json.dumps(LIMIT) + " garbage",
    json.dumps(LIMIT).replace('"BUY"', '"BUY", "side": "SELL", "side": "HOLD"'),
]


@pytest.mark.parametrize("raw", RAW_BODIES, ids=range(len(RAW_BODIES)))
async def test_raw_bodies_are_refused(
    client: Any, runtime: Runtime, pair: dict[str, Any], raw: str, caplog: Any
) -> None:
    await refused(await post_raw(client, runtime, raw))
    no_500(caplog)
    await assert_no_trace(client, runtime, pair)


async def test_bodies_that_are_not_utf8_or_not_json_typed(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    good = json.dumps(LIMIT).encode()
    for raw in (b"\xff\xfe" + good, good.replace(b"BUY", b"B\xc3"), b"\xed\xa0\x80"):
        await refused(await post_raw(client, runtime, raw))
    await refused(await post_raw(client, runtime, good, **{"Content-Type": "text/plain"}))
    await refused(
        await post_raw(client, runtime, good.decode("ascii").encode("utf-16")), 400, 415, 422
    )
    no_500(caplog)
    await assert_no_trace(client, runtime, pair)


order_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.from_regex(r"[0-9]{0,90}(\.[0-9]{0,90})?", fullmatch=True),
    st.sampled_from(NASTY_TEXT),
    st.lists(st.integers(), max_size=2),
)


async def accepted_cancelled_or_refused(
    client: Any, runtime: Runtime, pair: dict[str, Any], response: Any
) -> None:
    """A generated order is either refused cleanly, or accepted and then cancelled: either
    way nothing is left behind."""
    if response.status_code == 201:
        order = await data(response)
        if order["status"] in ("OPEN", "PENDING_TRIGGER", "PARTIALLY_FILLED"):
            cancelled = await client.delete(
                f"{TRADING}/orders/{order['id']}", headers=trader(runtime, "alice")
            )
            assert cancelled.status_code == 200
    else:
        await refused(response)
    await assert_no_trace(client, runtime, pair)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes=st.dictionaries(st.sampled_from([*ORDER_FIELDS, "x", ""]), order_values))
async def test_generated_orders_never_500_and_refusals_leave_no_trace(
    client: Any, runtime: Runtime, pair: dict[str, Any], changes: dict[str, Any]
) -> None:
    body = {**LIMIT, **changes}
    response = await client.post(f"{TRADING}/orders", json=body, headers=trader(runtime, "alice"))
    assert response.status_code != 500, (body, await response.get_json())
    await accepted_cancelled_or_refused(client, runtime, pair, response)


# -- path and query parameters -----------------------------------------------------------------

PATH_VALUES = [
    "%00",
    "%0A",
    "%ED%A0%80",  # a lone surrogate, UTF-8 encoded
    "%FF",
    "%C0%AF",
    "a%0Ab",
    "%E2%80%8B",
    "x" * 101,
    "%20",
    "WETH-USDC%0A",
    "..%2F..",
    "' OR 1=1 --",
]


async def test_path_parameters(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    alice = trader(runtime, "alice")
    for value in PATH_VALUES:
        for url in (
            f"{TRADING}/pairs/{value}",
            f"{TRADING}/pairs/{value}/orderbook",
            f"{TRADING}/pairs/{value}/trades",
            f"{TRADING}/pairs/{value}/stats",
            f"{TRADING}/pairs/{value}/candles?interval=1m",
        ):
            await refused(await client.get(url))
        await refused(await client.get(f"{TRADING}/orders/{value}", headers=alice), 403, 404, 422)
        await refused(
            await client.delete(f"{TRADING}/orders/{value}", headers=alice), 403, 404, 422
        )
        await refused(
            await client.get(f"{TRADING}/users/{value}/orders", headers=alice), 403, 404, 422
        )
        await refused(
            await client.get(f"{TRADING}/users/{value}/trades", headers=alice), 403, 404, 422
        )
        await refused(
            await client.patch(
                f"{TRADING}/pairs/{value}", json={"takerFeeBps": 1}, headers=admin(runtime)
            )
        )
    no_500(caplog)


QUERY_VALUES = [
    "",
    "0",
    "-1",
    "101",
    "1.5",
    "1e2",
    "%00",
    "%0A1",
    "1%0A",
    "%ED%A0%80",
    "%FF",
    "%EF%BC%91",  # fullwidth 1
    "%D9%A1",  # Arabic-Indic 1
    "9" * 50,
    "x" * 600,
    "OPEN,",
    ",",
    "OPEN,,FILLED",
    "open",
    "WETH-USDC%0A",
    "NOPE-USDC",
    "2026-11-23T10:00:00",
    "2026-11-23T10:00:00Z%0A",
    "0001-01-01T00:00:00%2B14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-02-30T00:00:00Z",
    "%2B2026-11-23T10:00:00Z",
    "eyJ4IjoxfQ",
    "AAAA",
    "%F0%9F%92%A9",
]


async def test_query_parameters(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    alice = trader(runtime, "alice")
    for value in QUERY_VALUES:
        for url, headers in (
            (f"{TRADING}/pairs/WETH-USDC/orderbook?depth={value}", {}),
            (f"{TRADING}/pairs/WETH-USDC/trades?limit={value}", {}),
            (f"{TRADING}/pairs/WETH-USDC/candles?interval={value}", {}),
            (f"{TRADING}/pairs/WETH-USDC/candles?interval=1m&from={value}", {}),
            (f"{TRADING}/pairs/WETH-USDC/candles?interval=1m&to={value}", {}),
            (f"{TRADING}/pairs/WETH-USDC/candles?interval=1m&limit={value}", {}),
            (f"{TRADING}/users/alice/orders?status={value}", alice),
            (f"{TRADING}/users/alice/orders?pair={value}", alice),
            (f"{TRADING}/users/alice/orders?limit={value}", alice),
            (f"{TRADING}/users/alice/orders?cursor={value}", alice),
            (f"{TRADING}/users/alice/trades?limit={value}", alice),
            (f"{TRADING}/users/alice/trades?cursor={value}", alice),
        ):
            response = await client.get(url, headers=headers)
            if response.status_code != 200:
                await refused(response)
        repeated = await client.get(f"{TRADING}/pairs/WETH-USDC/orderbook?depth=1&depth={value}")
        if repeated.status_code != 200:
            await refused(repeated)
    no_500(caplog)


# -- pair admin --------------------------------------------------------------------------------

PAIR_FIELDS = [
    "tickSize",
    "lotSize",
    "minQuantity",
    "maxQuantity",
    "makerFeeBps",
    "takerFeeBps",
    "baseToken",
    "quoteToken",
]
PATCH_FIELDS = ["minQuantity", "maxQuantity", "makerFeeBps", "takerFeeBps", "status"]


async def test_create_pair_fields(client: Any, runtime: Runtime, caplog: Any) -> None:
    created = await client.post(
        "/api/v1/tokens",
        json={"symbol": "WETH", "name": "Wrapped Ether", "type": "CRYPTO", "decimals": 18},
        headers=admin(runtime),
    )
    assert created.status_code == 201
    base = {"baseToken": "WETH", "quoteToken": "USDC", "tickSize": "0.01", "lotSize": "0.001"}
    for field in PAIR_FIELDS:
        for value in [*NASTY, 10_001, 10**19]:
            if value is None and field not in ("baseToken", "quoteToken", "tickSize", "lotSize"):
                continue  # an optional field given as null
            if value == 0 and field.endswith("FeeBps") and value is not False:
                continue  # a zero fee is allowed
            response = await client.post(
                f"{TRADING}/pairs", json={**base, field: value}, headers=admin(runtime)
            )
            assert response.status_code != 201, (field, value, await response.get_json())
            await refused(response)
    assert await data(await client.get(f"{TRADING}/pairs")) == []
    no_500(caplog)


async def test_patch_pair_fields(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    url = f"{TRADING}/pairs/WETH-USDC"
    for field in PATCH_FIELDS:
        for value in [*NASTY, 10_001, "HALTED", "Trading"]:
            if value is None:
                continue  # an optional field given as null: nothing changes
            if value == 0 and field.endswith("FeeBps") and value is not False:
                continue  # a zero fee is allowed
            response = await client.patch(url, json={field: value}, headers=admin(runtime))
            assert response.status_code != 200, (field, value, await response.get_json())
            await refused(response)
    for raw in RAW_BODIES:
        response = await client.patch(
            url, data=raw, headers={"Content-Type": "application/json", **admin(runtime)}
        )
        if response.status_code != 200:
            await refused(response)
    after = await data(await client.get(url))
    assert {k: after[k] for k in ("status", "minQuantity", "maxQuantity", "takerFeeBps")} == {
        "status": "trading",
        "minQuantity": pair["minQuantity"],
        "maxQuantity": pair["maxQuantity"],
        "takerFeeBps": pair["takerFeeBps"],
    }
    no_500(caplog)


async def test_pair_limits_stay_within_what_the_engine_and_the_ledger_hold(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    """A maxQuantity of 2**62 lots or more would let orders through that the matching engine
    can only store as REJECTED; amounts over 2**256 - 1 units fit no ledger column."""
    url = f"{TRADING}/pairs/WETH-USDC"
    for too_big in ("1" + "0" * 40, "4611686018427387.904"):  # lot 0.001: 2**62 lots and more
        response = await client.patch(url, json={"maxQuantity": too_big}, headers=admin(runtime))
        error = await refused(response, 422)
        assert "maxQuantity" in error["details"]["fields"], error
    largest = await client.patch(
        url, json={"maxQuantity": "4611686018427387.903"}, headers=admin(runtime)
    )
    assert largest.status_code == 200, await largest.get_json()
    await fund(runtime, "alice", pair["baseTokenId"], 10**40)
    over = await client.post(
        f"{TRADING}/orders",
        json={**LIMIT, "side": "SELL", "quantity": "4611686018427387.904"},
        headers=trader(runtime, "alice"),
    )
    assert (await refused(over, 422))["code"] == "quantity_above_max"
    # a pair whose lot is so large that the default maxQuantity (lot x 10**12) would not fit
    created = await client.post(
        "/api/v1/tokens",
        json={"symbol": "BIG", "name": "Big", "type": "CRYPTO", "decimals": 18},
        headers=admin(runtime),
    )
    assert created.status_code == 201
    huge_lot = {
        "baseToken": "BIG",
        "quoteToken": "USDC",
        "tickSize": "1",
        "lotSize": "1" + "0" * 50,
    }
    made = await client.post(f"{TRADING}/pairs", json=huge_lot, headers=admin(runtime))
    assert made.status_code == 201, await made.get_json()
    maximum = (await data(made))["maxQuantity"]
    assert int(maximum) * 10**18 <= 2**256 - 1
    for field, value in (("lotSize", "2" + "0" * 59), ("tickSize", "1" + "0" * 72)):
        response = await client.post(
            f"{TRADING}/pairs",
            json={**huge_lot, "baseToken": "WETH", field: value},
            headers=admin(runtime),
        )
        assert field in (await refused(response, 422))["details"]["fields"]
    no_500(caplog)
    await assert_no_trace(client, runtime, pair)


async def test_an_oversized_body_is_413(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    padded = json.dumps({**LIMIT, "clientOrderId": "x" * 3_000_000})
    error = await refused(await post_raw(client, runtime, padded), 413)
    assert error["code"] == "payload_too_large"
    no_500(caplog)
    await assert_no_trace(client, runtime, pair)


UNCLEAN = ["\x00", "WETH-USDC\n", "\u202eCDSU-HTEW", " ", "\u200b", "a\x1b[31m", "\ud800"]


async def test_references_in_bodies_follow_the_text_rules(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    """A pair or token named in a body with control characters, bidi overrides or nothing
    visible is a 422 naming the field (DESIGN 5.1), as in a path, not a 404 echoing it."""
    for value in UNCLEAN:
        response = await client.post(
            f"{TRADING}/orders",
            json={**LIMIT, "tradingPairId": value},
            headers=trader(runtime, "alice"),
        )
        assert "tradingPairId" in (await refused(response, 422))["details"]["fields"]
        for field in ("baseToken", "quoteToken"):
            body = {"baseToken": "WETH", "quoteToken": "USDC", "tickSize": "1", "lotSize": "1"}
            response = await client.post(
                f"{TRADING}/pairs", json={**body, field: value}, headers=admin(runtime)
            )
            assert field in (await refused(response, 422))["details"]["fields"]
    by_id = await client.post(
        f"{TRADING}/orders",
        json={**LIMIT, "tradingPairId": pair["id"]},
        headers=trader(runtime, "alice"),
    )
    assert by_id.status_code == 201
    await client.delete(
        f"{TRADING}/orders/{(await data(by_id))['id']}", headers=trader(runtime, "alice")
    )
    no_500(caplog)
    await assert_no_trace(client, runtime, pair)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    raw=st.one_of(
        st.binary(max_size=80),
        st.text(max_size=80).map(str.encode),
        st.dictionaries(st.sampled_from(ORDER_FIELDS), order_values).map(
            lambda d: json.dumps({**LIMIT, **d}).encode()
        ),
    )
)
async def test_generated_raw_bodies_never_500(
    client: Any, runtime: Runtime, pair: dict[str, Any], raw: bytes
) -> None:
    response = await post_raw(client, runtime, raw)
    await accepted_cancelled_or_refused(client, runtime, pair, response)


async def pair_events(runtime: Runtime, pair_id: str) -> int:
    async with runtime.container.storage().unit_of_work(read_only=True) as uow:
        return len(await uow.events.for_aggregate(pair_id))


async def test_orders_refused_in_the_writer_leave_no_event_and_no_book_seq(
    client: Any, runtime: Runtime, pair: dict[str, Any], caplog: Any
) -> None:
    url = f"{TRADING}/pairs/{pair['id']}/orderbook"
    seq = (await data(await client.get(url)))["seq"]
    events = await pair_events(runtime, pair["id"])
    alice, bob = trader(runtime, "alice"), trader(runtime, "bob")
    for body, headers in (
        ({**LIMIT, "price": "1000000.00"}, alice),  # insufficient funds
        ({**LIMIT, "side": "SELL", "quantity": "11.000"}, alice),
        (LIMIT, bob),  # no funds at all
        ({**LIMIT, "type": "MARKET", "price": None, "quantity": None, "quoteAmount": "1.00"}, bob),
        ({**LIMIT, "type": "STOP_LIMIT", "stopPrice": "9.00", "price": "1000000.00"}, alice),
    ):
        body = {k: v for k, v in body.items() if v is not None}
        response = await client.post(f"{TRADING}/orders", json=body, headers=headers)
        assert (await refused(response, 409))["code"] == "insufficient_funds"
    assert await pair_events(runtime, pair["id"]) == events
    halted = await client.patch(
        f"{TRADING}/pairs/{pair['id']}", json={"status": "halted"}, headers=admin(runtime)
    )
    assert halted.status_code == 200
    assert await pair_events(runtime, pair["id"]) > events  # the halt is an event of its own
    events = await pair_events(runtime, pair["id"])
    response = await client.post(f"{TRADING}/orders", json=LIMIT, headers=alice)
    assert (await refused(response, 409))["code"] == "pair_halted"
    assert (await data(await client.get(url)))["seq"] == seq
    assert await pair_events(runtime, pair["id"]) == events
    no_500(caplog)
    await assert_no_trace(client, runtime, pair)


async def test_a_cursor_with_a_trailing_newline_is_refused(
    client: Any, runtime: Runtime, pair: dict[str, Any]
) -> None:
    alice = trader(runtime, "alice")
    for _ in range(3):
        placed = await client.post(f"{TRADING}/orders", json=LIMIT, headers=alice)
        assert placed.status_code == 201
    page = await client.get(f"{TRADING}/users/alice/orders?limit=1", headers=alice)
    cursor = (await page.get_json())["pagination"]["nextCursor"]
    assert (
        await client.get(f"{TRADING}/users/alice/orders?cursor={cursor}", headers=alice)
    ).status_code == 200
    order_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    for bad in (order_id + "\n", order_id.upper(), " " + order_id):
        forged = base64.urlsafe_b64encode(bad.encode()).decode().rstrip("=")
        for what in ("orders", "trades"):
            response = await client.get(
                f"{TRADING}/users/alice/{what}?cursor={forged}", headers=alice
            )
            assert (await refused(response, 422))["details"]["fields"] == {
                "cursor": "is not a valid cursor"
            }
