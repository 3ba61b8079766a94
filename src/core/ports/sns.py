"""SNS gateway port: the two calls the webhook makes to Amazon SNS.

Verifying an SNS message needs the signing certificate, which SNS publishes at the message's
``SigningCertURL``; confirming a subscription means visiting its ``SubscribeURL``. Callers
check that both URLs are https on an SNS host *before* they hand them to this port.
"""

from __future__ import annotations

import abc


class SnsGateway(abc.ABC):
    """Raises ``ServiceUnavailable`` when SNS cannot be reached or answers with an error."""

    @abc.abstractmethod
    async def fetch_certificate(self, url: str) -> bytes:
        """The PEM-encoded X.509 certificate published at ``url`` (adapters may cache it)."""

    @abc.abstractmethod
    async def confirm_subscription(self, subscribe_url: str) -> None:
        """Confirm a subscription by requesting its ``SubscribeURL``."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
