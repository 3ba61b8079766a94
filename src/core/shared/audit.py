"""Reading the audit log (admins only), newest first, with an opaque cursor.

Writing happens where the decisions are made, through ``uow.audit.append`` in the decision's
own unit of work (see ``core.ports.audit``).
"""

from __future__ import annotations

import base64
import binascii

import attrs

from core.ports.audit import AuditEntry, AuditFilter
from core.ports.storage import Storage
from core.shared.errors import PermissionDenied, ValidationFailed
from core.shared.events import Actor
from core.shared.roles import roles_allow_any

READ_ACTION = "audit.read"
MAX_PAGE = 100
_CURSOR_PREFIX = "audit:"
_MAX_CURSOR = 64


@attrs.frozen
class AuditPage:
    items: list[AuditEntry]
    limit: int
    next_cursor: str | None


def encode_cursor(seq: int) -> str:
    raw = f"{_CURSOR_PREFIX}{seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The ``seq`` a cursor stands for; ``ValidationFailed`` for anything else."""
    bad = ValidationFailed("bad cursor", fields={"cursor": "is not a valid cursor"})
    if len(cursor) > _MAX_CURSOR:
        raise bad
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise bad from exc
    digits = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not digits.isascii() or not digits.isdigit():
        raise bad
    if len(digits) > 19:
        raise bad
    return int(digits)


class AuditQueries:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def page(
        self,
        actor: Actor,
        audit_filter: AuditFilter,
        *,
        limit: int = 20,
        cursor: str | None = None,
    ) -> AuditPage:
        """Entries matching ``audit_filter``, newest first; ``PermissionDenied`` unless the
        caller's roles grant ``audit.read`` (admins)."""
        if not roles_allow_any(actor.roles, (READ_ACTION,)):
            raise PermissionDenied(READ_ACTION, ("only an admin reads the audit log",))
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed("bad limit", fields={"limit": f"must be 1 to {MAX_PAGE}"})
        before = decode_cursor(cursor) if cursor else None
        async with self._storage.unit_of_work(read_only=True) as uow:
            rows = await uow.audit.query(audit_filter, limit=limit + 1, before_seq=before)
        has_more = len(rows) > limit
        items = rows[:limit]
        last = items[-1].seq if items else None
        next_cursor = encode_cursor(last) if has_more and last is not None else None
        return AuditPage(items=items, limit=limit, next_cursor=next_cursor)
