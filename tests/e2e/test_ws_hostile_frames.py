"""Frames only a real server delivers as such (hypercorn): an empty binary frame reaches Quart
as ``None``. Each gets an error frame and the connection goes on; nothing in the log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.server import RwaServer, start_server


@pytest.fixture(scope="module")
def ws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RwaServer]:
    server = start_server(Path(tmp_path_factory.mktemp("rwa-ws-hostile")))
    try:
        yield server
    finally:
        server.stop()


async def recv(ws: ClientConnection) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] != "heartbeat":
            return frame


async def test_empty_and_odd_binary_frames_get_an_error_frame(ws_server: RwaServer) -> None:
    async with connect(f"ws://127.0.0.1:{ws_server.port}/api/v1/ws") as ws:
        for raw in (b"", b"\x00", b"\xff\xfe", b'{"op": "ping"}', ""):
            await ws.send(raw)
            answer = await recv(ws)
            assert answer["type"] == "error", (raw, answer)
            assert answer["code"] in ("bad_frame", "bad_json"), (raw, answer)
            await ws.send(json.dumps({"op": "ping", "reqId": 7}))
            assert await recv(ws) == {"type": "pong", "reqId": 7}
    log = ws_server.log_text()
    assert "Traceback" not in log and "ended it" not in log, log[-3000:]
