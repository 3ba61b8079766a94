"""A stand-in Entity Permissions Core: a real HTTP server on loopback, for tests and e2e runs.

It speaks the API the service's adapters call (see docs/integrations.md):

- ``POST /api/v1/authorize``  ``{principalId, principalType, entityId, action, context}``
  -> ``{allowed, reasons, effectiveRoles}``. The policy is a role table with the same
  semantics as the service's local policy (roles come from ``context.roles`` unless the
  Core has its own assignment for the principal), plus per-principal grants and denials.
- ``GET /api/v1/events?after=<cursor>&limit=<n>`` -> ``{"events": [...], "nextCursor"}``:
  the events ``publish``ed so far, as direct webhook payloads. Cursors are ``c<n>``.
- ``GET /api/v1/health`` -> ``{"status": "ok"}``.

Every request is recorded (method, path, headers, body). With ``api_key`` set, requests
without that ``X-API-Key`` get 401. Switches make it slow (``delay_seconds``), fail
(``fail_status``), answer garbage (``malformed``) or go away (``down()`` / ``up()``).

``signature_header`` and ``deliver`` sign and send direct webhook payloads, as the real
Core does.

Run it by hand: ``python -m tests.harness.permissions_core --port 9100 --api-key K``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.outbound.permissions.role_policy import OWNER_ONLY, ROLE_ACTIONS

API_KEY_HEADER = "X-API-Key"

# The stand-in decides by the same role table as the local policy, so the one permissions
# contract suite holds for both; what the HTTP tests exercise is the adapter's plumbing.
DEFAULT_ROLE_ACTIONS: dict[str, frozenset[str]] = dict(ROLE_ACTIONS)
DEFAULT_OWNER_ONLY = frozenset(OWNER_ONLY)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any


@dataclass
class Policy:
    """The Core's decision table. Mutate it from a test; it is read on every request."""

    role_actions: dict[str, frozenset[str]] = field(
        default_factory=lambda: dict(DEFAULT_ROLE_ACTIONS)
    )
    owner_only: frozenset[tuple[str, str]] = DEFAULT_OWNER_ONLY
    assignments: dict[str, tuple[str, ...]] = field(default_factory=dict)  # principal -> roles
    grants: set[tuple[str, str]] = field(default_factory=set)  # (principal, action)
    denials: set[tuple[str, str]] = field(default_factory=set)

    def decide(self, body: Mapping[str, Any]) -> dict[str, Any]:
        principal = str(body.get("principalId"))
        action = str(body.get("action"))
        context = body.get("context") or {}
        roles: Iterable[Any] = self.assignments.get(principal, context.get("roles") or ())
        known = [r for r in roles if isinstance(r, str) and r in self.role_actions]
        owner = context.get("resourceOwnerId")
        if (principal, action) in self.denials:
            return _answer(False, [f"{action} is denied to {principal} by the Core"], known)
        if (principal, action) in self.grants:
            return _answer(True, [f"{action} is granted to {principal} by the Core"], known)
        reasons: list[str] = []
        for role in known:
            if action not in self.role_actions[role]:
                continue
            if (role, action) in self.owner_only and owner not in (None, principal):
                reasons.append(f"role {role} may {action} only what it owns")
                continue
            return _answer(True, [f"granted by role {role}"], known)
        if not known:
            reasons.append("the principal has no known role")
        reasons.append(f"no role of the principal grants {action}")
        return _answer(False, reasons, known)


def _answer(allowed: bool, reasons: list[str], roles: list[str]) -> dict[str, Any]:
    return {"allowed": allowed, "reasons": reasons, "effectiveRoles": roles}


class PermissionsCore:
    """The stand-in server. ``start()`` binds 127.0.0.1 (a free port unless given)."""

    def __init__(self, *, api_key: str | None = None, port: int = 0) -> None:
        self.api_key = api_key
        self.policy = Policy()
        self.requests: list[RecordedRequest] = []
        self.events: list[dict[str, Any]] = []
        self.delay_seconds = 0.0
        self.fail_status: int | None = None
        self.malformed = False
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> PermissionsCore:
        if self._server is not None:
            return self
        server = _QuietServer(("127.0.0.1", self._port), _handler_for(self))
        self._port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:  # kept-alive connections die too, as when a process goes away
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def down(self) -> None:
        """Stop listening: connections are refused until ``up()``."""
        self.stop()

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    def __enter__(self) -> PermissionsCore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Healthy again, nothing recorded, no events, the default policy."""
        with self._lock:
            self.requests.clear()
            self.events.clear()
        self.policy = Policy()
        self.delay_seconds = 0.0
        self.fail_status = None
        self.malformed = False

    # -- events ----------------------------------------------------------------------------

    def publish(self, event: Mapping[str, Any]) -> str:
        """Append an event to the feed; return its cursor."""
        with self._lock:
            self.events.append(dict(event))
            return f"c{len(self.events)}"

    def page(self, after: str | None, limit: int) -> dict[str, Any]:
        start = 0
        if after:
            try:
                start = int(after.removeprefix("c"))
            except ValueError:
                start = 0
        with self._lock:
            chunk = self.events[start : start + max(0, limit)]
        cursor = f"c{start + len(chunk)}" if chunk else (after or None)
        return {"events": chunk, "nextCursor": cursor}

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that gave up (a timeout test) is not an error here


def _handler_for(core: PermissionsCore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with core._lock:
                core._connections.add(self.connection)

        def finish(self) -> None:
            with core._lock:
                core._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: Any, *, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            core._record(
                RecordedRequest(
                    method=self.command,
                    path=url.path,
                    query=dict(urllib.parse.parse_qsl(url.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
            if core.delay_seconds:
                time.sleep(core.delay_seconds)
            if core.fail_status is not None:
                self._send(core.fail_status, {"error": "injected failure"})
                return
            if core.malformed:
                self._send(200, None, raw=b"<html>surprise</html>")
                return
            if core.api_key is not None and self.headers.get(API_KEY_HEADER) != core.api_key:
                self._send(401, {"error": "missing or wrong API key"})
                return
            route = (self.command, url.path)
            if route == ("GET", "/api/v1/health"):
                self._send(200, {"status": "ok"})
            elif route == ("POST", "/api/v1/authorize"):
                if not isinstance(body, dict) or "action" not in body:
                    self._send(400, {"error": "principalId and action are required"})
                else:
                    self._send(200, core.policy.decide(body))
            elif route == ("GET", "/api/v1/events"):
                query = dict(urllib.parse.parse_qsl(url.query))
                limit = int(query.get("limit") or 100)
                self._send(200, core.page(query.get("after"), limit))
            else:
                self._send(404, {"error": f"no route {self.command} {url.path}"})

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

    return Handler


# -- signed webhook deliveries, as the Core sends them -------------------------------------


def signature_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def approval_event(
    event_id: str,
    market_id: str,
    *,
    decision: str = "approve",
    reason: str | None = None,
    entity_id: str | None = None,
    actor_id: str = "core-admin-1",
) -> dict[str, Any]:
    """A direct payload: ``market.approved`` or ``market.rejected``."""
    event_type = "market.approved" if decision == "approve" else "market.rejected"
    payload: dict[str, Any] = {"market_id": market_id, "decision": decision}
    if reason is not None:
        payload["reason"] = reason
    if entity_id is not None:
        payload["entity_id"] = entity_id
    return {
        "event_id": event_id,
        "event_type": event_type,
        "payload": payload,
        "context": {"actor_id": actor_id},
    }


def deliver(url: str, event: Mapping[str, Any], secret: str) -> tuple[int, Any]:
    """POST a signed direct payload to ``url``; return (status, decoded body)."""
    body = json.dumps(event).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Signature": signature_header(body, secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


TEST_API_KEY = "stand-in-core-api-key"


@pytest.fixture
def permissions_core() -> Iterator[PermissionsCore]:
    """A fresh stand-in Core for one test, requiring ``TEST_API_KEY``."""
    core = PermissionsCore(api_key=TEST_API_KEY).start()
    try:
        yield core
    finally:
        core.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="stand-in Entity Permissions Core")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    core = PermissionsCore(api_key=args.api_key, port=args.port).start()
    print(f"stand-in Entity Permissions Core on {core.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        core.stop()


if __name__ == "__main__":
    main()
