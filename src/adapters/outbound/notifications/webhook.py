"""Notifications POSTed to a webhook, signed with HMAC-SHA256.

The body is the JSON object ``{"id", "type", "userId", "occurredAt", "data"}``. The header
``X-Signature: t=<unix seconds>,v1=<hex>`` carries
``HMAC-SHA256(secret, "<t>.<body>")``: the receiver recomputes it over the raw body, compares
in constant time and refuses an old ``t`` (replays). ``X-Notification-Id`` repeats the id
(the same on every retry). Any answer but 2xx, a timeout or a connection error is
``NotificationFailed``: the job tries again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from core.ports.notifications import Notification, NotificationFailed, Notifier

SIGNATURE_HEADER = "X-Signature"
ID_HEADER = "X-Notification-Id"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Signature`` value of ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def notification_body(notification: Notification) -> bytes:
    return json.dumps(
        {
            "id": notification.id,
            "type": notification.type,
            "userId": notification.user_id,
            "occurredAt": notification.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": dict(notification.data),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class WebhookNotifier(Notifier):
    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_seconds: float = 5.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a webhook notifier needs a secret")
        self._url = url
        self._secret = secret
        self._now = now
        self._client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)

    async def send(self, notification: Notification) -> None:
        body = notification_body(notification)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, int(self._now()), body),
            ID_HEADER: notification.id,
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise NotificationFailed(f"webhook unreachable: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise NotificationFailed(f"webhook answered {response.status_code}")

    async def close(self) -> None:
        await self._client.aclose()
