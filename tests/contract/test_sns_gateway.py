"""SNS gateway port contract: memory, and httpx against a certificate server on loopback.

The webhook restricts the URLs it hands to the gateway to https on SNS hosts; the gateway
itself only fetches, so here it talks plain HTTP to 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.outbound.sns.http import HttpSnsGateway
from adapters.outbound.sns.memory import MemorySnsGateway
from core.ports.sns import SnsGateway
from core.shared.errors import ServiceUnavailable
from tests.harness.sns import SnsSigner


class CertificateServer:
    """Serves ``pages`` by path; records every GET."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, bytes]] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                outer.hits.append(self.path)
                status, body = outer.pages.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pem() -> bytes:
    return SnsSigner(key_size=1024).pem


@pytest.fixture
def cert_server() -> Iterator[CertificateServer]:
    server = CertificateServer()
    yield server
    server.stop()


class SnsGatewayContract:
    """Mixin: subclasses provide ``gateway``, ``serve(path, pem) -> url`` and ``confirmed``."""

    gateway: SnsGateway

    def serve(self, path: str, pem: bytes) -> str:
        raise NotImplementedError

    def url(self, path: str) -> str:
        raise NotImplementedError

    def confirmed(self) -> list[str]:
        raise NotImplementedError

    async def test_fetches_a_published_certificate(self, pem: bytes) -> None:
        url = self.serve("/cert-a.pem", pem)
        assert await self.gateway.fetch_certificate(url) == pem
        assert await self.gateway.fetch_certificate(url) == pem

    async def test_an_unknown_certificate_is_service_unavailable(self) -> None:
        with pytest.raises(ServiceUnavailable):
            await self.gateway.fetch_certificate(self.url("/nothing.pem"))

    async def test_confirms_a_subscription(self) -> None:
        url = self.url("/confirm?Action=ConfirmSubscription&Token=t1")
        self.serve("/confirm?Action=ConfirmSubscription&Token=t1", b"<ok/>")
        await self.gateway.confirm_subscription(url)
        assert self.confirmed() == [url]


class TestMemorySnsGateway(SnsGatewayContract):
    @pytest.fixture(autouse=True)
    def _gateway(self) -> None:
        self.memory = MemorySnsGateway()
        self.gateway = self.memory

    def url(self, path: str) -> str:
        return f"https://sns.eu-west-1.amazonaws.com{path}"

    def serve(self, path: str, pem: bytes) -> str:
        self.memory.publish_certificate(self.url(path), pem)
        return self.url(path)

    def confirmed(self) -> list[str]:
        return self.memory.confirmed


class TestHttpSnsGateway(SnsGatewayContract):
    @pytest.fixture(autouse=True)
    async def _gateway(self, cert_server: CertificateServer) -> AsyncIterator[None]:
        self.server = cert_server
        self.http = HttpSnsGateway(timeout_seconds=2.0)
        self.gateway = self.http
        yield
        await self.http.close()

    def url(self, path: str) -> str:
        return f"{self.server.base}{path}"

    def serve(self, path: str, pem: bytes) -> str:
        self.server.pages[path] = (200, pem)
        return self.url(path)

    def confirmed(self) -> list[str]:
        return [self.url(hit) for hit in self.server.hits if hit.startswith("/confirm")]

    async def test_certificates_are_cached(self, pem: bytes) -> None:
        url = self.serve("/cached.pem", pem)
        for _ in range(3):
            assert await self.gateway.fetch_certificate(url) == pem
        assert self.server.hits.count("/cached.pem") == 1
        assert self.http.fetches == 1
        expiring = HttpSnsGateway(cache_seconds=0)
        await expiring.fetch_certificate(url)
        await expiring.fetch_certificate(url)
        assert self.server.hits.count("/cached.pem") == 3
        await expiring.close()

    async def test_an_answer_that_is_not_a_certificate(self) -> None:
        url = self.serve("/html.pem", b"<html>login page</html>")
        with pytest.raises(ServiceUnavailable, match="not a PEM"):
            await self.gateway.fetch_certificate(url)

    async def test_errors_and_refusals_are_service_unavailable(self) -> None:
        self.server.pages["/broken"] = (500, b"oops")
        with pytest.raises(ServiceUnavailable, match="HTTP 500"):
            await self.gateway.confirm_subscription(self.url("/broken"))
        self.server.stop()
        with pytest.raises(ServiceUnavailable, match="ConnectError"):
            await self.gateway.fetch_certificate(self.url("/gone.pem"))
