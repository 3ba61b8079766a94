"""permessage-deflate (RFC 7692) off by default: hypercorn accepts it whenever a client offers
it (browsers and ``websockets`` always do) and has no setting to decline it.

With it, every frame is compressed once per connection (each connection has its own
compressor: context takeover), so a book update fanned out to 1,000 subscribers is deflated
1,000 times; in ``bench/ws_fanout.py`` that was a third of the server's CPU. Without it, the
same text goes out as it is. The extension is negotiated in the handshake, so a client that
offers it and is declined sends and receives uncompressed frames: nothing a client parses
changes (docs/websocket.md, "Compression").

``decline_permessage_deflate`` makes hypercorn's handshake decline the offer; ``RWA_WS_COMPRESSION
=true`` (``Settings.ws_compression``) leaves hypercorn as it is.
"""

from __future__ import annotations

from hypercorn.protocol import ws_stream
from wsproto.extensions import PerMessageDeflate


class DeclinedPerMessageDeflate(PerMessageDeflate):
    """Answers every permessage-deflate offer with no: the extension stays disabled."""

    def accept(self, offer: str) -> bool | str | None:
        return None


def decline_permessage_deflate() -> None:
    """From now on, hypercorn's WebSocket handshakes in this process decline
    permessage-deflate (``hypercorn.protocol.ws_stream.Handshake.accept`` builds its list of
    server extensions from the module's ``PerMessageDeflate``)."""
    ws_stream.PerMessageDeflate = DeclinedPerMessageDeflate  # type: ignore[attr-defined]


def permessage_deflate_declined() -> bool:
    return ws_stream.PerMessageDeflate is DeclinedPerMessageDeflate  # type: ignore[attr-defined]
