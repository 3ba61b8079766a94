"""Domain errors. Each carries a stable machine code; inbound adapters map them to statuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    code = "domain_error"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class ValidationFailed(DomainError):
    """Input breaks a domain rule. ``details`` maps field names to messages."""

    code = "validation_failed"

    def __init__(self, message: str, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message, details={"fields": dict(fields or {})})
        self.fields = dict(fields or {})


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class IllegalTransition(Conflict):
    """A lifecycle action that the current status does not allow."""

    code = "illegal_transition"

    def __init__(self, action: str, current_status: str) -> None:
        super().__init__(
            f"cannot {action} a market whose status is {current_status}",
            details={"currentStatus": current_status, "action": action},
        )
        self.action = action
        self.current_status = current_status


class DuplicateSymbol(Conflict):
    code = "duplicate_symbol"

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"token symbol {symbol} is already used by a live market",
            details={"fields": {"tokenSymbol": "already used by a live market"}},
        )


class ConcurrentModification(Conflict):
    """Someone else changed the aggregate between our read and our write."""

    code = "concurrent_modification"


class PermissionDenied(DomainError):
    code = "forbidden"

    def __init__(self, action: str, reasons: Sequence[str]) -> None:
        super().__init__(
            f"not allowed to {action}",
            details={"action": action, "reasons": list(reasons)},
        )
        self.reasons = list(reasons)


class ServiceUnavailable(DomainError):
    """A dependency (permissions, chain, storage) cannot answer now."""

    code = "service_unavailable"


class ChainError(DomainError):
    """The chain refused or failed an operation (revert, timeout, unreachable node)."""

    code = "chain_error"
