"""The Quart side: the ``/api/v1/ws`` route, and the gateway's start and stop with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from quart import Blueprint, Quart, current_app, websocket

from adapters.inbound.ws.gateway import Connection, Gateway
from adapters.inbound.ws.raw_write import expose_asgi_send, raw_writer
from adapters.inbound.ws.send_queue import Outgoing
from logs import bind_connection, new_id

log = logging.getLogger(__name__)

WS_PATH = "/api/v1/ws"
CONFIG_KEY = "RWA_WS_GATEWAY"

ws = Blueprint("ws", __name__)


def install_ws(app: Quart, gateway: Gateway) -> None:
    """Serve ``/api/v1/ws`` with ``gateway``; its bus subscription lives with the app."""
    app.config[CONFIG_KEY] = gateway
    app.register_blueprint(ws)
    # the server's ASGI send in the WebSocket scope, for writes below ASGI (raw_write.py)
    app.asgi_app = expose_asgi_send(app.asgi_app)  # type: ignore[method-assign]
    app.before_serving(gateway.start)
    app.after_serving(gateway.stop)


async def _read(conn: Connection) -> None:
    while True:
        data: str | bytes | None = await websocket.receive()
        # Quart hands an empty binary frame over as None (hypercorn's event carries
        # ``"bytes": b""`` and ``"text": None``): still a binary frame, refused as one
        await conn.receive(b"" if data is None else data)
        if conn.close_request is not None:
            return


@ws.websocket(WS_PATH)
async def gateway_endpoint() -> None:
    gateway: Gateway = current_app.config[CONFIG_KEY]
    await websocket.accept()
    bind_connection(new_id())  # every line of this connection (and its tasks) carries it
    writer = raw_writer(websocket.scope) if gateway.limits.raw_writes else None
    conn = gateway.open(
        websocket.send,
        None if writer is None else writer.write,
        writer,
    )
    log.info(
        "ws connection %d opened (%d open, %s)",
        conn.number,
        gateway.connections,
        "raw writes" if conn.writes_raw else "ASGI sends",
    )
    tasks = [
        asyncio.create_task(conn.run_sender()),
        asyncio.create_task(_read(conn)),
        asyncio.create_task(conn.close_requested.wait()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                error = task.exception()
                log.warning("ws connection %d: %s ended it", conn.number, type(error).__name__)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await gateway.close(conn)
    if conn.close_request is not None:
        await _close(conn)
    log.info("ws connection %d closed (%d open)", conn.number, gateway.connections)


async def _close(conn: Connection) -> None:
    """The last error frame, if any, then the close; neither may wait long on a client that
    does not read."""
    assert conn.close_request is not None
    code, reason, frame = conn.close_request
    timeout = conn.limits.close_timeout_seconds
    if frame is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await websocket.send(Outgoing(frame).text)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await websocket.close(code, reason)
