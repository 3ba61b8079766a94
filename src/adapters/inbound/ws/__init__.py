"""The WebSocket gateway, ``/api/v1/ws`` (DESIGN §6): JSON text frames, pluggable channels fed
by the event bus, and per-connection protection (bounded send queue with conflation, rate
limit, frame size limit). The protocol is written in ``docs/websocket.md``."""
