"""A small JSON valuation server on loopback for the valuation-source tests: ``GET
/valuations/<symbol>[?...]`` answers whatever the test set for that symbol (status, raw body,
an optional delay before answering or between the body's bytes), 404 otherwise. Every request
path (with its query) is kept in ``requests``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import pytest


@attrs.frozen
class Answer:
    status: int
    body: bytes
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between the body's bytes
    location: str | None = None


class ValuationServer:
    TEMPLATE = "/valuations/{symbol}?market={marketId}"

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[str] = []
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                symbol = unquote(urlsplit(self.path).path.removeprefix("/valuations/"))
                answer = server.answers.get(symbol, Answer(404, b'{"error": "unknown"}'))
                if answer.delay and server._stopping.wait(answer.delay):
                    return
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                    if answer.location:
                        self.send_header("Location", answer.location)
                    self.end_headers()
                    if not answer.drip:
                        self.wfile.write(answer.body)
                        return
                    for i in range(len(answer.body)):
                        self.wfile.write(answer.body[i : i + 1])
                        self.wfile.flush()
                        if server._stopping.wait(answer.drip):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def template(self) -> str:
        return self.url + self.TEMPLATE

    def set_json(self, symbol: str, document: object, status: int = 200) -> None:
        self.answers[symbol] = Answer(status, json.dumps(document).encode())

    def set_raw(self, symbol: str, body: bytes, status: int = 200, **how: Any) -> None:
        self.answers[symbol] = Answer(status, body, **how)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def valuation_server() -> Iterator[ValuationServer]:
    server = ValuationServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
