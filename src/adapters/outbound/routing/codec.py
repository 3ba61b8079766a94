"""Engine commands and replies as JSON text (cattrs), the one wire format of every router.

A command: ``{"requestId", "pairId", "deadline", "request": {"kind": "new_order" |
"cancel_order" | "change_pair", ...the request's attrs fields}}``. A reply: ``{"requestId",
"result": {"kind": "order", "order", "replayed"} | {"kind": "pair", "pair"} | null,
"error": {"family", "code", "message", "details"} | null}``. Datetimes are ISO 8601 with
their offset (a naive one is refused); integers stay integers (JSON has no size limit; Python
reads them back exactly). A domain error travels as its family (the HTTP status class it maps
to), code, message and details, and comes back as an error of that family with the same code.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import cattrs

from core.ports.order_routing import EngineCommand, EngineReply
from core.shared.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from core.trading.orders import Order
from core.trading.pairs import Pair
from core.trading.writer import CancelOrder, ChangePair, NewOrder, OrderResult, Request


class UnroutableCommand(ValueError):
    """A command or reply that would not survive the wire (a naive time, a non-JSON value)."""


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise UnroutableCommand(f"a naive datetime cannot be routed: {value!r}")
    return value.isoformat()


_converter = cattrs.Converter()
_converter.register_unstructure_hook(datetime, _unstructure_datetime)
_converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
# a pair change's values (plain JSON), as they are; ``object`` itself only, not its subclasses
_converter.register_structure_hook_func(lambda kind: kind is object, lambda value, _: value)

_KINDS: dict[str, type[Any]] = {
    "new_order": NewOrder,
    "cancel_order": CancelOrder,
    "change_pair": ChangePair,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


# -- errors ------------------------------------------------------------------------------------


class _Remote:
    """A domain error rebuilt from the wire: its family's class, the original code."""

    def _init(self, code: str, message: str, details: Any) -> None:
        DomainError.__init__(self, message, details=details, code=code)  # type: ignore[arg-type]


class RemoteValidationFailed(_Remote, ValidationFailed):
    def __init__(self, code: str, message: str, details: Any) -> None:
        self._init(code, message, details)
        self.fields = dict((details or {}).get("fields") or {})


class RemoteNotFound(_Remote, NotFound):
    def __init__(self, code: str, message: str, details: Any) -> None:
        self._init(code, message, details)


class RemoteConflict(_Remote, Conflict):
    def __init__(self, code: str, message: str, details: Any) -> None:
        self._init(code, message, details)


class RemotePermissionDenied(_Remote, PermissionDenied):
    def __init__(self, code: str, message: str, details: Any) -> None:
        self._init(code, message, details)
        self.reasons = list((details or {}).get("reasons") or [])


class RemoteUnavailable(_Remote, ServiceUnavailable):
    def __init__(self, code: str, message: str, details: Any) -> None:
        self._init(code, message, details)


class RemoteDomainError(_Remote, DomainError):
    def __init__(self, code: str, message: str, details: Any) -> None:
        self._init(code, message, details)


_FAMILIES: list[tuple[str, type[DomainError], Any]] = [
    ("validation", ValidationFailed, RemoteValidationFailed),
    ("not_found", NotFound, RemoteNotFound),
    ("conflict", Conflict, RemoteConflict),
    ("forbidden", PermissionDenied, RemotePermissionDenied),
    ("unavailable", ServiceUnavailable, RemoteUnavailable),
]


def _error_wire(error: DomainError) -> dict[str, Any]:
    family = next((name for name, base, _ in _FAMILIES if isinstance(error, base)), "domain")
    return {
        "family": family,
        "code": error.code,
        "message": error.message,
        "details": error.details,
    }


def _error_from(wire: dict[str, Any]) -> DomainError:
    remote = next((cls for name, _, cls in _FAMILIES if name == wire["family"]), None)
    error: DomainError = (remote or RemoteDomainError)(
        wire["code"], wire["message"], wire.get("details")
    )
    return error


# -- commands ----------------------------------------------------------------------------------


def encode_command(command: EngineCommand) -> str:
    """The command as JSON text; ``UnroutableCommand`` when it cannot travel."""
    request = command.request
    body = {"kind": _KIND_OF[type(request)], **_unstructure(request)}
    return _dumps(
        {
            "requestId": command.request_id,
            "pairId": command.pair_id,
            "deadline": _unstructure_datetime(command.deadline),
            "request": body,
        }
    )


def decode_command(text: str | bytes) -> EngineCommand:
    data = json.loads(text)
    body = dict(data["request"])
    request: Request = _converter.structure(body, _KINDS[body.pop("kind")])
    return EngineCommand(
        request_id=data["requestId"],
        pair_id=data["pairId"],
        request=request,
        deadline=datetime.fromisoformat(data["deadline"]),
    )


# -- replies -----------------------------------------------------------------------------------


def encode_reply(reply: EngineReply) -> str:
    result: dict[str, Any] | None = None
    if isinstance(reply.result, OrderResult):
        result = {
            "kind": "order",
            "order": _unstructure(reply.result.order),
            "replayed": reply.result.replayed,
        }
    elif isinstance(reply.result, Pair):
        result = {"kind": "pair", "pair": _unstructure(reply.result)}
    error = None if reply.error is None else _error_wire(reply.error)
    return _dumps({"requestId": reply.request_id, "result": result, "error": error})


def decode_reply(text: str | bytes) -> EngineReply:
    data = json.loads(text)
    wire = data.get("result")
    result: OrderResult | Pair | None = None
    if wire is not None and wire["kind"] == "order":
        result = OrderResult(
            _converter.structure(wire["order"], Order),
            replayed=bool(wire["replayed"]),
        )
    elif wire is not None:
        result = _converter.structure(wire["pair"], Pair)
    error = None if data.get("error") is None else _error_from(data["error"])
    return EngineReply(request_id=data["requestId"], result=result, error=error)


def _unstructure(value: Any) -> Any:
    try:
        return _converter.unstructure(value)
    except UnroutableCommand:
        raise
    except Exception as exc:  # cattrs wraps a hook's error
        raise UnroutableCommand(str(exc)) from exc


def _dumps(data: dict[str, Any]) -> str:
    try:
        return json.dumps(data, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UnroutableCommand(f"not plain JSON: {exc}") from exc
