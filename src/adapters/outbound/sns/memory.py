"""``MemorySnsGateway``: certificates registered by URL, confirmations kept in a list."""

from __future__ import annotations

from core.ports.sns import SnsGateway
from core.shared.errors import ServiceUnavailable


class MemorySnsGateway(SnsGateway):
    """The test profile's SNS: what ``publish_certificate`` put there, nothing else."""

    def __init__(self) -> None:
        self.certificates: dict[str, bytes] = {}
        self.confirmed: list[str] = []
        self.fetches = 0

    def publish_certificate(self, url: str, pem: bytes) -> None:
        self.certificates[url] = pem

    async def fetch_certificate(self, url: str) -> bytes:
        self.fetches += 1
        try:
            return self.certificates[url]
        except KeyError:
            raise ServiceUnavailable(f"no certificate is published at {url}") from None

    async def confirm_subscription(self, subscribe_url: str) -> None:
        self.confirmed.append(subscribe_url)
