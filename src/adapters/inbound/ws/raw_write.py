"""Writing a connection's queued frames in one socket write, below ASGI: coupled to hypercorn.

ASGI sends one WebSocket message per ``websocket.send``; under hypercorn each goes through
Quart's ``websocket.send``, ``WSStream.app_send``, wsproto's framing and one
``TCPServer.protocol_send`` (a ``write`` and a ``drain``, one ``send`` syscall). A fan-out
sender that has 20 frames waiting for a connection pays that 20 times, and frames the very same
text once per connection. This module lets the gateway's sender hand hypercorn one ``bytes`` of
whole frames instead (``Outgoing.frame``, framed once per message and shared by every
connection; ``gateway.Connection.run_sender``).

How, and what it relies on (hypercorn 0.18.0, wsproto 1.3.2, the asyncio worker, HTTP/1.1):

- ``expose_asgi_send`` wraps the Quart app as ASGI middleware (``app.asgi_app``, Quart's public
  hook) and puts the server's ASGI ``send`` callable of a WebSocket connection into the scope
  the route sees (``websocket.scope[ASGI_SEND]``). Under hypercorn that callable is the bound
  method ``WSStream.app_send``; its ``__self__`` is the connection's ``WSStream``.
- ``raw_writer`` accepts the stream only if every assumption holds: the installed versions are
  the ones above (``SUPPORTED``); the callable is exactly ``WSStream.app_send``; the stream's
  ``send`` is ``H11Protocol.stream_send`` of an HTTP/1.1 connection whose own ``send`` is the
  asyncio ``TCPServer.protocol_send``; the handshake negotiated no extension (wsproto keeps the
  enabled ones in ``Connection._proto.extensions``: empty unless permessage-deflate was
  accepted, see ``compression.py``). Otherwise the connection keeps the ASGI path.
- ``RawFrameWriter.write`` sends ``Data(stream_id, frames)`` to ``WSStream.send``: the very
  call hypercorn's own ``WSStream._send_wsproto_event`` makes with the bytes wsproto framed for
  one message. ``H11Protocol.stream_send`` passes ``Data`` through as ``RawData``, and
  ``TCPServer.protocol_send`` writes it under the connection's send lock and awaits the
  writer's ``drain()``: hypercorn's flow control and backpressure, unchanged. Frames of
  hypercorn's own (pongs, the close) go through the same lock, so they never split one of ours.
- ``RawFrameWriter.write_now`` (the gateway's flush, once a loop turn over the connections with
  queued frames) writes to the connection's transport (``TCPServer.writer.transport``, set in
  ``TCPServer.__init__``) at once, only while ``writable_now``: the stream open for data as
  above, the transport not closing and its buffer below its high-water mark, that is while
  ``protocol_send``'s ``drain`` would not wait. A transport write is whole, so it never splits
  a frame that ``protocol_send`` writes under its lock. Above the mark the connection's sender
  task takes over with ``write`` and waits for the drain.
- wsproto keeps no state for whole (FIN) unmasked data frames of a server without
  extensions, so bytes it did not frame leave it consistent. Before each write the stream must
  still be open for data (``closed`` False, ASGI state ``CONNECTED``, wsproto state ``OPEN``);
  when it is not, ``write`` returns False and the caller sends through ASGI, where hypercorn
  drops the message as it always did. The close frame always goes through ASGI
  (``websocket.close`` in ``route.py``).

``tests/unit/ws/test_ws_raw_write.py`` pins the versions and the source of every hypercorn and
wsproto function named above, so an upgrade fails that test loudly instead of silently taking
the slow path or, worse, a changed one; and runs both paths against hypercorn on loopback.
``RWA_WS_RAW_WRITES=false`` turns the path off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from importlib import metadata
from typing import Any, TypeVar, cast

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.events import Data
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from wsproto.connection import ConnectionState

# the versions whose internals this module was written against (checked once, at import)
SUPPORTED = {"hypercorn": "0.18.0", "wsproto": "1.3.2"}
ASGI_SEND = "rwa.asgi_send"  # the scope key under which the middleware puts the ASGI send

Scope = MutableMapping[str, Any]
AsgiApp = TypeVar("AsgiApp", bound=Callable[..., Awaitable[None]])


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


VERSIONS_SUPPORTED = all(_installed(name) == version for name, version in SUPPORTED.items())


def expose_asgi_send(app: AsgiApp) -> AsgiApp:
    """ASGI middleware: a WebSocket scope gets the server's ``send`` callable under
    ``ASGI_SEND`` (a copy of the scope; nothing else changes)."""

    async def with_send(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "websocket":
            scope = {**scope, ASGI_SEND: send}
        await app(scope, receive, send)

    return cast(AsgiApp, with_send)


class RawFrameWriter:
    """Writes whole, pre-framed server frames to one hypercorn WebSocket stream: awaited like
    hypercorn's own sends (``write``), or at once while the transport takes them without
    waiting (``writable_now``, ``write_now``: the gateway's flush)."""

    __slots__ = ("_high_water", "_stream", "_transport")

    def __init__(self, stream: WSStream, transport: asyncio.WriteTransport) -> None:
        self._stream = stream
        self._transport = transport
        self._high_water = transport.get_write_buffer_limits()[1]  # fixed for a connection

    def open(self) -> bool:
        """Whether hypercorn would still send a data frame on this stream."""
        stream = self._stream
        return (
            not stream.closed
            and stream.state is ASGIWebsocketState.CONNECTED
            and stream.connection.state is ConnectionState.OPEN
        )

    def writable_now(self) -> bool:
        """Whether the stream is open for data and the transport's buffer is below its
        high-water mark, so that ``TCPServer.protocol_send``'s ``drain`` would not wait."""
        transport, stream = self._transport, self._stream
        return (
            transport.get_write_buffer_size() < self._high_water
            and not transport.is_closing()
            and not stream.closed
            and stream.state is ASGIWebsocketState.CONNECTED
            and stream.connection.state is ConnectionState.OPEN
        )

    def write_now(self, frames: bytes) -> bool:
        """``frames`` to the transport in one write, as ``protocol_send`` writes them (a
        transport write is whole: it never splits a frame of hypercorn's own); False when the
        transport refuses (its end was written: the connection is closing)."""
        try:
            self._transport.write(frames)
        except RuntimeError:
            return False
        return True

    async def write(self, frames: bytes) -> bool:
        """Send ``frames`` (whole frames) in one transport write and wait for the transport
        to drain, as hypercorn does for each frame; False (nothing written) when the stream
        is no longer open for data."""
        if not self.open():
            return False
        stream = self._stream
        await stream.send(Data(stream_id=stream.stream_id, data=frames))
        return True


def _function(method: object) -> object:
    """The function of a bound method (None for anything else)."""
    return getattr(method, "__func__", None)


def raw_writer(scope: Mapping[str, object]) -> RawFrameWriter | None:
    """A writer below ASGI for the accepted WebSocket connection of ``scope``, or None when
    anything differs from what this module knows (see the module's docstring): the caller
    then sends through ASGI."""
    if not VERSIONS_SUPPORTED:
        return None
    send = scope.get(ASGI_SEND)
    stream = getattr(send, "__self__", None)
    if type(stream) is not WSStream or _function(send) is not WSStream.app_send:
        return None
    protocol = getattr(stream.send, "__self__", None)
    if type(protocol) is not H11Protocol or _function(stream.send) is not H11Protocol.stream_send:
        return None
    server = getattr(protocol.send, "__self__", None)
    if type(server) is not TCPServer or _function(protocol.send) is not TCPServer.protocol_send:
        return None
    if stream.state is not ASGIWebsocketState.CONNECTED:
        return None
    extensions = getattr(getattr(stream.connection, "_proto", None), "extensions", None)
    if extensions != []:  # an extension was negotiated (or wsproto changed): ASGI frames it
        return None
    transport = getattr(getattr(server, "writer", None), "transport", None)
    if not isinstance(transport, asyncio.WriteTransport):
        return None
    return RawFrameWriter(stream, transport)
