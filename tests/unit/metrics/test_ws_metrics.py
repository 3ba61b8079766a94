"""The WebSocket gateway reports to the metrics port: connections opened and closed, frames
in and out, and a slow consumer's close."""

from __future__ import annotations

import asyncio

from adapters.inbound.http.auth import TokenIssuer
from adapters.inbound.ws.channels import ChannelRegistry
from adapters.inbound.ws.gateway import Gateway, WsLimits
from adapters.outbound.events.memory import MemoryEventBus
from adapters.outbound.metrics.memory import MemoryMetrics
from tests.unit.conftest import SECRET
from tests.unit.ws.test_ws_gateway import Client, Everything, connect, event, until


async def test_connections_frames_and_slow_consumer_closes_are_counted() -> None:
    bus = MemoryEventBus()
    metrics = MemoryMetrics()
    gateway = Gateway(
        bus,
        ChannelRegistry([Everything()]),
        TokenIssuer(SECRET),
        WsLimits(send_queue=16, heartbeat_seconds=30),
        metrics=metrics,
    )
    await gateway.start()
    await asyncio.wait_for(gateway.ready.wait(), 3)
    slow, fast = Client(blocked=True), Client()
    connections = [await connect(gateway, slow), await connect(gateway, fast)]
    assert (metrics.ws_open, metrics.ws_opened) == (2, 2)
    assert metrics.ws_frames["in"] == 2  # one subscribe each
    for seq in range(1, 51):
        await bus.publish(event(seq))
        await asyncio.sleep(0)
    await until(lambda: len(fast.frames) >= 52)
    assert metrics.slow_consumer_closes == 1
    assert metrics.ws_frames["out"] == len(fast.frames)  # the blocked client got nothing
    for conn, sender in connections:
        sender.cancel()
        await gateway.close(conn)
    assert (metrics.ws_open, metrics.ws_opened) == (0, 2)
    await gateway.stop()
