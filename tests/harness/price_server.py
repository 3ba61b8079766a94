"""A small JSON price server on loopback for the HTTP price-feed tests: ``GET /prices/<symbol>``
answers whatever the test put in ``answers`` (status and raw body), 404 otherwise."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest


class PriceServer:
    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                symbol = unquote(self.path.removeprefix("/prices/"))
                status, body = server.answers.get(symbol, (404, b'{"error": "unknown"}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def set_json(self, symbol: str, document: object, status: int = 200) -> None:
        self.answers[symbol] = (status, json.dumps(document).encode())

    def set_raw(self, symbol: str, body: bytes, status: int = 200) -> None:
        self.answers[symbol] = (status, body)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def price_server() -> Iterator[PriceServer]:
    server = PriceServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
