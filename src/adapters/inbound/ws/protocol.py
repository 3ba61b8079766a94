"""Client frames: decoding, the text rules on every client string, and the error frame.

Every refusal is a ``ClientError`` with a stable ``code``; its message never echoes client
text except through ``core.shared.text.escape``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import attrs

from core.shared.text import TextError, clean_identifier, clean_text, escape

MAX_REQ_ID_LENGTH = 64
MAX_REQ_ID_NUMBER = 2**53 - 1
MAX_TOKEN_LENGTH = 4096
MAX_NUMBER_LENGTH = 20
# Arrays and objects in one frame. Bounds the decoder's nesting: py-evm raises the interpreter's
# recursion limit to 100,000, and nesting that deep overflows the C stack instead of raising
# RecursionError.
MAX_CONTAINERS = 256
DEPTHS = (10, 25, 100)
INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")
OP_RE = re.compile(r"[a-z][a-z.]{0,31}")
CHANNEL_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
PAIR_RE = re.compile(r"[A-Z0-9]{2,12}-[A-Z0-9]{2,12}")
SUBSCRIBE_FIELDS = frozenset({"op", "reqId", "channel", "pair", "depth", "interval"})

ReqId = str | int


class ClientError(Exception):
    """What the client did wrong: answered with an error frame (or a close, when ``close_code``
    is set). ``message`` is safe to send and to log."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        req_id: ReqId | None = None,
        close_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.req_id = req_id
        self.close_code = close_code


def error_frame(code: str, message: str, req_id: ReqId | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error"}
    if req_id is not None:
        frame["reqId"] = req_id
    frame["code"] = code
    frame["message"] = message
    return frame


def _no_constant(name: str) -> Any:
    raise ClientError("bad_json", f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_LENGTH:
        raise ClientError("bad_json", f"numbers have at most {MAX_NUMBER_LENGTH} digits")
    return int(text)


def _bounded_decimal(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_LENGTH * 2:
        raise ClientError("bad_json", f"numbers have at most {MAX_NUMBER_LENGTH * 2} characters")
    return Decimal(text)


def decode_frame(data: str | bytes) -> dict[str, Any]:
    """The JSON object of a text frame; ``ClientError`` for a binary frame, bad JSON, or a
    JSON value that is not an object. Numbers stay exact (no floats)."""
    if not isinstance(data, str):
        raise ClientError("bad_frame", "frames are JSON text, not binary")
    if data.count("[") + data.count("{") > MAX_CONTAINERS:
        raise ClientError("bad_frame", f"a frame holds at most {MAX_CONTAINERS} arrays and objects")
    try:
        value = json.loads(
            data,
            parse_constant=_no_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_decimal,
        )
    except ClientError:
        raise
    except (ValueError, RecursionError):
        raise ClientError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(value, dict):
        raise ClientError("bad_frame", "a frame is a JSON object with an op")
    return value


def req_id_of(frame: dict[str, Any]) -> ReqId | None:
    """The frame's ``reqId``: a string (client text rules) or a whole number, echoed back."""
    value = frame.get("reqId")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= MAX_REQ_ID_NUMBER:
            return value
        raise ClientError("invalid_request", f"reqId must be 0 to {MAX_REQ_ID_NUMBER}")
    try:
        return clean_text(value, max_length=MAX_REQ_ID_LENGTH)
    except TextError as exc:
        raise ClientError("invalid_request", f"reqId {exc}") from None


def op_of(frame: dict[str, Any]) -> str:
    value = frame.get("op")
    if value is None:
        raise ClientError("invalid_request", "the frame has no op")
    try:
        return clean_identifier(value, OP_RE, message="is not a known op")
    except TextError:
        raise ClientError("unknown_op", "op is not a known op") from None


def token_of(frame: dict[str, Any]) -> str:
    try:
        return clean_text(frame.get("token"), max_length=MAX_TOKEN_LENGTH)
    except TextError as exc:
        raise ClientError("invalid_request", f"token {exc}") from None


@attrs.frozen
class SubscribeRequest:
    """What a ``subscribe`` or ``unsubscribe`` names; each channel decides which of ``pair``,
    ``depth`` and ``interval`` it takes."""

    channel: str
    pair: str | None = None
    depth: int | None = None
    interval: str | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """One subscription per channel, pair and interval on a connection."""
        return (self.channel, self.pair, self.interval)

    def describe(self) -> dict[str, Any]:
        """The request's fields as an answer echoes them."""
        out: dict[str, Any] = {"channel": self.channel}
        if self.pair is not None:
            out["pair"] = self.pair
        if self.depth is not None:
            out["depth"] = self.depth
        if self.interval is not None:
            out["interval"] = self.interval
        return out


def subscribe_request(frame: dict[str, Any]) -> SubscribeRequest:
    unknown = sorted(k for k in frame if k not in SUBSCRIBE_FIELDS)
    if unknown:
        raise ClientError(
            "invalid_params", f"unknown field {escape(str(unknown[0]), max_length=32)}"
        )
    try:
        channel = clean_identifier(frame.get("channel"), CHANNEL_RE, message="is not a channel")
    except TextError:
        if frame.get("channel") is None:
            raise ClientError("invalid_params", "channel is required") from None
        raise ClientError("unknown_channel", "channel is not a known channel") from None
    pair = frame.get("pair")
    if pair is not None:
        try:
            pair = clean_identifier(pair, PAIR_RE, message="must look like BASE-QUOTE")
        except TextError as exc:
            raise ClientError("invalid_params", f"pair {exc}") from None
    depth = frame.get("depth")
    if depth is not None and (
        not isinstance(depth, int) or isinstance(depth, bool) or depth not in DEPTHS
    ):
        raise ClientError("invalid_params", "depth must be 10, 25 or 100")
    interval = frame.get("interval")
    if interval is not None and (not isinstance(interval, str) or interval not in INTERVALS):
        raise ClientError("invalid_params", f"interval must be one of {', '.join(INTERVALS)}")
    return SubscribeRequest(channel=channel, pair=pair, depth=depth, interval=interval)
