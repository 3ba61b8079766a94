"""Client text cannot forge a log line: the real server, injection inputs, the log read back.

A ``%0A`` in a path (hypercorn percent-decodes it into the access log's request line), an SNS
``TopicArn`` holding a newline (logged when the topic is refused), and ``%00`` (a NUL byte)
each go through ``rwa-market serve``; its log must have no line that starts with the forged
text and no NUL byte, in the terminal format (escaped) and in the JSON-lines format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RwaServer, poll, start_server

FORGED = "2026-01-01 00:00:00,000 CRITICAL rwa: FORGED-LINE"
SNS_TOPIC = "arn:aws:sns:eu-west-1:123456789012:allowed"


def _sns_envelope(topic_arn: str) -> dict[str, str]:
    return {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": topic_arn,
        "Message": "{}",
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "AAAA",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/cert.pem",
    }


def _inject(http: httpx.Client) -> int:
    """Send the injection inputs; the SNS answer's status (403: the topic was logged)."""
    # hypercorn decodes %0A/%0D/%00 in the path it writes to the access log
    for raw in (f"/api/v1/markets/x%0A{FORGED}", f"/healthz%0D%0A{FORGED}", "/api/v1/m%00%00x"):
        assert http.get(raw).status_code < 500
    # the query string too, and a newline in an SNS field the webhook logs when refused
    assert http.get(f"/healthz?q=%0A{FORGED}").status_code == 200
    refused = http.post(
        "/api/v1/webhooks/entity-permissions",
        content=json.dumps(_sns_envelope(f"arn:aws:sns:eu-west-1:1:t\n{FORGED}\u2028x\x00")),
        headers={"Content-Type": "text/plain", "x-amz-sns-message-type": "Notification"},
    )
    assert refused.status_code in {400, 403}, refused.text
    return refused.status_code


def _server(tmp_path: Path, env: dict[str, str]) -> Iterator[RwaServer]:
    server = start_server(tmp_path, env={"RWA_SNS_TOPIC_ARNS": SNS_TOPIC, **env})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def text_server(tmp_path: Path) -> Iterator[RwaServer]:
    yield from _server(tmp_path, {"RWA_LOG_FORMAT": "text"})


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[RwaServer]:
    yield from _server(tmp_path, {"RWA_LOG_FORMAT": "json"})


def _log_after_injection(server: RwaServer) -> tuple[bytes, list[str], int]:
    with server.client() as http:
        sns_status = _inject(http)
    # the access log is written after each response: wait for the last request's line
    poll(
        lambda: server.log_path.read_bytes(),
        lambda raw: b"/api/v1/webhooks/entity-permissions" in raw,
        timeout=10,
        what="the injected requests in the log",
    )
    server.stop()
    raw = server.log_path.read_bytes()
    return raw, raw.decode("utf-8", errors="replace").splitlines(), sns_status


def test_the_terminal_log_escapes_client_text(text_server: RwaServer) -> None:
    raw, lines, sns_status = _log_after_injection(text_server)
    assert b"\x00" not in raw
    assert "\u2028".encode() not in raw
    forged = [line for line in lines if "FORGED-LINE" in line]
    assert len(forged) >= 2, "\n".join(lines[-30:])
    assert all(not line.startswith(FORGED[:10]) for line in lines), "\n".join(forged)
    # each injected line is one record: the escaped newline sits inside it
    assert any("x\\n2026-01-01" in line and "GET" in line for line in forged)
    assert any("\\x00\\x00" in line for line in lines)
    if sns_status == 403:  # the refused topic is logged, escaped
        assert any("topic" in line and "t\\n2026-01-01" in line for line in forged)


def test_the_json_log_is_one_object_per_line(json_server: RwaServer) -> None:
    raw, lines, sns_status = _log_after_injection(json_server)
    assert b"\x00" not in raw
    records = [json.loads(line) for line in lines if line.startswith("{")]
    forged = [r for r in records if "FORGED-LINE" in r["message"]]
    assert len(forged) >= 2
    assert all("FORGED-LINE" not in line for line in lines if not line.startswith("{"))
    assert any("\n" + FORGED in r["message"] for r in forged)  # kept, but inside one record
    assert any(r["logger"] == "hypercorn.access" for r in forged)
    if sns_status == 403:
        assert any(r["logger"] != "hypercorn.access" for r in forged)
