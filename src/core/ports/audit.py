"""Audit log port: append-only entries, written in the unit of work of the change they record.

Every decision that changes who owns what or what a market may do (lifecycle decisions,
wallet registrations; later mints, transfers, compliance changes and withdrawal decisions)
appends an entry ``{id, actorId, action, subject, before, after, at}`` through
``uow.audit.append`` beside the change itself: both commit, or neither does.

Nothing in the service changes or deletes an entry: the repository has no such method, the
memory adapter keeps entries frozen, and the SQL table refuses ``UPDATE`` and ``DELETE`` with a
trigger (SQLite and Postgres alike), whoever sends them.

``before`` and ``after`` are plain JSON: null, booleans, integers, strings, lists and objects
with string keys. ``audit_json`` turns a ``Decimal`` into its exact string, a tuple into a list
and a datetime into ISO 8601; it refuses floats (amounts are exact) and anything else.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs

from core.shared.events import Actor
from core.shared.ids import new_id

MAX_ACTOR_ID = 200
MAX_ACTOR_TYPE = 32
MAX_ACTION = 100
MAX_SUBJECT = 200
MAX_JSON_DEPTH = 20


class InvalidAuditEntry(ValueError):
    """An entry no adapter stores: a value that is not plain JSON, a naive time, an empty or
    oversized actor, action or subject. Every adapter refuses it before writing anything."""


@attrs.frozen
class AuditEntry:
    """One recorded decision. ``seq`` is given by the storage at append and orders entries
    (newest first = highest ``seq``); it is ``None`` before."""

    actor_id: str
    actor_type: str
    action: str
    subject: str
    before: Any
    after: Any
    at: datetime
    id: str = attrs.field(factory=new_id)
    seq: int | None = None


@attrs.frozen
class AuditFilter:
    actor_id: str | None = None
    action: str | None = None
    since: datetime | None = None  # entries at or after this time


def audit_json(value: object, path: str = "value", depth: int = 0) -> Any:
    """``value`` as plain JSON: Decimals become exact strings, tuples lists, datetimes ISO
    8601 text, enums their value; ``InvalidAuditEntry`` for floats and any other type."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidAuditEntry(f"{path}: nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, Enum):
        return audit_json(value.value, path, depth)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAuditEntry(f"{path}: {value} is not a finite number")
        return str(value)
    if isinstance(value, float):
        raise InvalidAuditEntry(f"{path}: a float is not exact; use a Decimal or an integer")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidAuditEntry(f"{path}: a naive datetime")
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [audit_json(item, f"{path}[{n}]", depth + 1) for n, item in enumerate(value)]
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidAuditEntry(f"{path}: key {key!r} is not a string")
            result[key] = audit_json(item, f"{path}.{key}", depth + 1)
        return result
    raise InvalidAuditEntry(f"{path}: a {type(value).__name__} is not a JSON value")


def _check_plain(value: object, path: str, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise InvalidAuditEntry(f"{path}: nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, list):
        for n, item in enumerate(value):
            _check_plain(item, f"{path}[{n}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidAuditEntry(f"{path}: key {key!r} is not a string")
            _check_plain(item, f"{path}.{key}", depth + 1)
        return
    raise InvalidAuditEntry(
        f"{path}: a {type(value).__name__} is not plain JSON (floats are refused; convert "
        "with audit_json)"
    )


def _check_text(value: object, name: str, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidAuditEntry(f"{name} must be a non-blank string")
    if len(value) > max_length:
        raise InvalidAuditEntry(f"{name} must be at most {max_length} characters")


def check_audit_entry(entry: AuditEntry) -> None:
    """Raise ``InvalidAuditEntry`` unless every adapter can store ``entry`` unchanged."""
    _check_text(entry.actor_id, "actorId", MAX_ACTOR_ID)
    _check_text(entry.actor_type, "actorType", MAX_ACTOR_TYPE)
    _check_text(entry.action, "action", MAX_ACTION)
    _check_text(entry.subject, "subject", MAX_SUBJECT)
    if entry.at.tzinfo is None or entry.at.utcoffset() is None:
        raise InvalidAuditEntry("at is a naive datetime")
    _check_plain(entry.before, "before")
    _check_plain(entry.after, "after")


def audit_entry(
    actor: Actor, action: str, subject: str, *, before: object, after: object, at: datetime
) -> AuditEntry:
    """An entry for ``actor``'s decision, its values converted by ``audit_json``."""
    entry = AuditEntry(
        actor_id=actor.id,
        actor_type=actor.type,
        action=action,
        subject=subject,
        before=audit_json(before, "before"),
        after=audit_json(after, "after"),
        at=at,
    )
    check_audit_entry(entry)
    return entry


class AuditLog(abc.ABC):
    """The audit log of one unit of work: append and read, never change or delete."""

    @abc.abstractmethod
    async def append(self, entry: AuditEntry) -> AuditEntry:
        """Store ``entry`` with the unit's other changes; answer it with its ``seq``.

        ``InvalidAuditEntry`` (nothing written) for what ``check_audit_entry`` refuses.
        Rolling the unit back drops the entry with the change it records.
        """

    @abc.abstractmethod
    async def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditEntry]:
        """``append`` for several entries at once (a batch of orders), in order, with
        increasing ``seq``; all or nothing: one invalid (``InvalidAuditEntry``) or duplicate
        (``Conflict``) entry refuses the lot and writes none of it."""

    @abc.abstractmethod
    async def query(
        self, audit_filter: AuditFilter, *, limit: int, before_seq: int | None = None
    ) -> list[AuditEntry]:
        """Matching entries, newest (highest ``seq``) first; with ``before_seq``, only older
        ones. Entries this unit appended are included."""
