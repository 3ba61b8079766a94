"""Notifications as structured log lines (one per notification, at INFO): the default when
no webhook is configured."""

from __future__ import annotations

import logging

from core.ports.notifications import Notification, Notifier

log = logging.getLogger("rwa.notifications")


class LogNotifier(Notifier):
    def __init__(self) -> None:
        self.sent: list[Notification] = []  # what this process notified, newest last

    async def send(self, notification: Notification) -> None:
        log.info(
            "notification %s %s for user %s",
            notification.type,
            notification.id,
            notification.user_id,
            extra={
                "notification": {
                    "id": notification.id,
                    "type": notification.type,
                    "userId": notification.user_id,
                    "occurredAt": notification.occurred_at.isoformat(),
                    "data": dict(notification.data),
                }
            },
        )
        self.sent.append(notification)
        del self.sent[:-1000]  # bounded
