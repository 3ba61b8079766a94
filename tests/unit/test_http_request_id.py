"""``X-Request-Id``: kept when plain, replaced otherwise, returned, and in the request's logs
(JSON lines through structlog) with no bearer token or secret in them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bootstrap import Runtime
from logs import configure_logging
from settings import DEV_CUSTODY_MNEMONIC
from tests.unit.conftest import bearer

API = "/api/v1"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", "json", stream, secrets=[DEV_CUSTODY_MNEMONIC])
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_plain_request_id_is_kept_and_returned(client: Any) -> None:
    answer = await client.get("/healthz", headers={"X-Request-Id": "trace-42.a:b_c-d"})
    assert answer.headers["X-Request-Id"] == "trace-42.a:b_c-d"


@pytest.mark.parametrize(
    "sent",
    ["", " ", "a" * 65, "bad\tline", "x y", "é", "-leading", "a/b", "\u202eabc"],
)
async def test_another_request_id_is_replaced_by_a_fresh_one(client: Any, sent: str) -> None:
    answer = await client.get("/healthz", headers={"X-Request-Id": sent})
    returned = answer.headers["X-Request-Id"]
    assert answer.status_code == 200
    assert returned != sent and len(returned) == 32 and returned.isalnum()


async def test_each_request_without_one_gets_its_own(client: Any) -> None:
    first = (await client.get("/healthz")).headers["X-Request-Id"]
    second = (await client.get("/healthz")).headers["X-Request-Id"]
    assert first != second


async def test_an_error_answer_carries_it_too(client: Any) -> None:
    answer = await client.get(f"{API}/markets/nope", headers={"X-Request-Id": "r-404"})
    assert answer.status_code == 404 and answer.headers["X-Request-Id"] == "r-404"


async def test_the_requests_log_lines_carry_its_id_and_no_token(
    client: Any, runtime: Runtime, json_log: io.StringIO
) -> None:
    headers = {**bearer(runtime, "admin-1", "admin"), "X-Request-Id": "req-mint-1"}
    token = headers["Authorization"].removeprefix("Bearer ")
    logging.getLogger("rwa.test").warning(
        "a careless line: %s with %s", headers["Authorization"], DEV_CUSTODY_MNEMONIC
    )
    # a request whose handler logs: a mint of a token that does not exist is refused (404)
    # after a lookup; and a market registration, which logs its outbox relay work
    await client.post(
        f"{API}/tokens/NOPE/mint",
        json={"userId": "alice", "amount": "1"},
        headers={**headers, "Idempotency-Key": "k-1"},
    )
    logging.getLogger("rwa.test").info("inside nothing")
    text = json_log.getvalue()
    assert token not in text and DEV_CUSTODY_MNEMONIC not in text
    lines = records(json_log)
    careless = next(r for r in lines if r["message"].startswith("a careless line"))
    assert careless["message"] == "a careless line: Bearer [redacted] with [redacted]"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in lines)


def test_a_field_named_like_a_secret_is_redacted(json_log: io.StringIO) -> None:
    logging.getLogger("rwa.test").info(
        "login",
        extra={
            "token": "abc",
            "api_key": "k",
            "user": "u-1",
            "note": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl",
        },
    )
    [entry] = records(json_log)
    assert (entry["token"], entry["api_key"], entry["user"]) == ("[redacted]", "[redacted]", "u-1")
    assert entry["note"] == "[redacted]"
