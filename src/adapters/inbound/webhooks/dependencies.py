"""What the webhook adapter needs, handed in by bootstrap."""

from __future__ import annotations

import attrs

from adapters.inbound.webhooks.signatures import DEFAULT_TOLERANCE_SECONDS
from adapters.inbound.webhooks.sns import SnsVerifier
from core.markets.permission_events import PermissionEventProcessor
from core.ports.clock import Clock


@attrs.frozen
class WebhookDependencies:
    events: PermissionEventProcessor
    secrets: tuple[str, ...] = attrs.field(repr=False)
    sns: SnsVerifier
    clock: Clock
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
