"""Notification port: the structured-log adapter, and the signed webhook (httpx) against a
server on loopback; send-trade-notification tells both sides of a trade, and a failed
delivery is retried by the job with the same notification id."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.outbound.notifications.log import LogNotifier
from adapters.outbound.notifications.webhook import WebhookNotifier, signature
from core.ports.notifications import Notification, NotificationFailed

SECRET = "whsec-test-0123456789"
AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers ``statuses`` in turn (then 204) and keeps
    every request (headers and raw body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/trades"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """What a receiver does: recompute the HMAC over "t.body", compare in constant time."""
        parts = dict(p.split("=", 1) for p in headers["X-Signature"].split(","))
        expected = hmac.new(
            SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def note(n: int = 1) -> Notification:
    return Notification(
        id=f"trade:t{n}:alice",
        user_id="alice",
        type="trade.executed",
        occurred_at=AT,
        data={"tradeId": f"t{n}", "side": "BUY", "price": "100.50", "quantity": "2"},
    )


async def test_the_webhook_posts_a_signed_body_the_receiver_can_verify(
    receiver: Receiver,
) -> None:
    notifier = WebhookNotifier(receiver.url, SECRET, now=lambda: 1_790_000_000.7)
    await notifier.send(note())
    await notifier.close()
    [(headers, body)] = receiver.requests
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Notification-Id"] == "trade:t1:alice"
    assert headers["X-Signature"].startswith("t=1790000000,v1=")
    assert receiver.verify(headers, body)
    assert headers["X-Signature"] == signature(SECRET, 1_790_000_000, body)
    sent = json.loads(body)
    assert sent == {
        "id": "trade:t1:alice",
        "type": "trade.executed",
        "userId": "alice",
        "occurredAt": "2026-11-23T10:00:00Z",
        "data": {"tradeId": "t1", "side": "BUY", "price": "100.50", "quantity": "2"},
    }
    # a body changed in transit (or another secret) does not verify
    assert not receiver.verify(headers, body.replace(b"100.50", b"100.51"))


async def test_a_refusing_or_absent_receiver_is_notification_failed(receiver: Receiver) -> None:
    notifier = WebhookNotifier(receiver.url, SECRET, timeout_seconds=2)
    receiver.statuses = [500]
    with pytest.raises(NotificationFailed, match="500"):
        await notifier.send(note())
    await notifier.send(note())  # the same notification again: accepted now
    assert [h["X-Notification-Id"] for h, _ in receiver.requests] == ["trade:t1:alice"] * 2
    await notifier.close()
    gone = WebhookNotifier("http://127.0.0.1:9/nothing-listens", SECRET, timeout_seconds=2)
    with pytest.raises(NotificationFailed, match="unreachable"):
        await gone.send(note())
    await gone.close()


def test_a_webhook_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookNotifier("http://127.0.0.1:9/", "")


async def test_the_log_notifier_writes_one_structured_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = LogNotifier()
    with caplog.at_level(logging.INFO, logger="rwa.notifications"):
        await notifier.send(note(2))
    [record] = [r for r in caplog.records if r.name == "rwa.notifications"]
    assert "trade:t2:alice" in record.getMessage()
    payload = record.notification  # type: ignore[attr-defined]
    assert payload["userId"] == "alice" and payload["data"]["tradeId"] == "t2"
    assert notifier.sent == [note(2)]
