"""A connection's bounded send queue, with conflation of conflatable messages.

A message may carry a *conflation key* (for example ``("book", "HVO-USDC")``) and a merge
function. While the queue has room every message is queued as it is. When it is full, a
message whose key matches one still waiting is merged into that one, in its place (for a book:
the newer levels win; for a ticker: the newer value replaces the older one); any other
message does not fit and the connection is a slow consumer. Nothing here blocks.
"""

from __future__ import annotations

import json
import struct
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Any

Merge = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]


def replace_with_newer(_older: Mapping[str, Any], newer: Mapping[str, Any]) -> Mapping[str, Any]:
    """The default merge: the newer message supersedes the older (tickers, snapshots)."""
    return newer


def text_frame(text: str) -> bytes:
    """``text`` as one whole, unmasked WebSocket text frame (RFC 6455 §5.2: FIN, opcode 1, no
    RSV bit): the bytes a server sends when no extension was negotiated, the same for every
    connection (a server's frames are never masked)."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 0x10000:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class Outgoing:
    """One frame to send: its JSON payload, encoded (and framed, for connections written below
    ASGI) once however many connections get it."""

    __slots__ = ("_frame", "_sequence", "_text", "key", "merge", "payload")

    def __init__(
        self,
        payload: Mapping[str, Any],
        *,
        key: Hashable | None = None,
        merge: Merge = replace_with_newer,
    ) -> None:
        self.payload = payload
        self.key = key
        self.merge = merge
        self._text: str | None = None
        self._frame: bytes | None = None
        self._sequence: tuple[int, int] | bool | None = False  # not read yet

    @property
    def sequence(self) -> tuple[int, int] | None:
        """``(fromSeq, seq)`` of a sequenced message (``fromSeq`` is ``seq`` unless merged),
        None without an integer ``seq``; read once however many connections check it."""
        if self._sequence is False:
            seq = self.payload.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                first = self.payload.get("fromSeq", seq)
                self._sequence = (first if isinstance(first, int) else seq, seq)
            else:
                self._sequence = None
        return self._sequence  # type: ignore[return-value]

    @property
    def text(self) -> str:
        if self._text is None:
            # ASCII only: no client-visible byte can be a control or bidi character
            self._text = json.dumps(self.payload, separators=(",", ":"), default=str)
        return self._text

    @property
    def frame(self) -> bytes:
        """``text`` as a whole uncompressed server text frame (``text_frame``), built once."""
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame

    def merged_with(self, newer: Outgoing) -> Outgoing:
        return Outgoing(self.merge(self.payload, newer.payload), key=self.key, merge=self.merge)


class SendQueue:
    """FIFO of at most ``capacity`` messages; ``offer`` says whether the message fitted."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a send queue holds at least one message")
        self.capacity = capacity
        self._items: deque[list[Outgoing]] = deque()  # one-item cells, merged in place
        self._keyed: dict[Hashable, list[Outgoing]] = {}
        self.conflated = 0  # messages merged into a waiting one, ever

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, message: Outgoing) -> bool:
        """Queue ``message``, or merge it into a waiting one of its key when the queue is
        full; False when neither is possible (the caller treats it as a slow consumer)."""
        if len(self._items) < self.capacity:
            cell = [message]
            self._items.append(cell)
            if message.key is not None:
                self._keyed[message.key] = cell
            return True
        if message.key is not None:
            cell_or_none = self._keyed.get(message.key)
            if cell_or_none is not None:
                cell_or_none[0] = cell_or_none[0].merged_with(message)
                self.conflated += 1
                return True
        return False

    def pop(self) -> Outgoing | None:
        if not self._items:
            return None
        cell = self._items.popleft()
        message = cell[0]
        if message.key is not None and self._keyed.get(message.key) is cell:
            del self._keyed[message.key]
        return message

    def take_frames(self, max_bytes: int, uncounted: Outgoing) -> tuple[bytes, int, int]:
        """The waiting messages from the front, at least one (if any) and no more once their
        frames reach ``max_bytes``: their frames (``Outgoing.frame``) joined in one ``bytes``,
        how many messages that is and how many of them are ``uncounted`` (heartbeats)."""
        items, keyed = self._items, self._keyed
        frames: list[bytes] = []
        size = skipped = 0
        while items and size < max_bytes:
            cell = items.popleft()
            message = cell[0]
            if message.key is not None and keyed.get(message.key) is cell:
                del keyed[message.key]
            if message is uncounted:
                skipped += 1
            frame = message._frame or message.frame
            frames.append(frame)
            size += len(frame)
        return b"".join(frames), len(frames), skipped

    def clear(self) -> None:
        self._items.clear()
        self._keyed.clear()
