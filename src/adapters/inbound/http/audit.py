"""``GET /api/v1/audit``: the append-only audit log, for admins, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from quart import Blueprint, Response, current_app, jsonify

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.guard import current_actor, guarded, query_text
from adapters.inbound.http.openapi import DateTime, WireModel, documented, envelope
from core.ports.audit import MAX_ACTION, MAX_ACTOR_ID, AuditEntry, AuditFilter
from core.shared.audit import READ_ACTION
from core.shared.errors import ValidationFailed

audit = Blueprint("audit", __name__, url_prefix="/api/v1/audit")

MAX_CURSOR = 64


class AuditEntryOut(WireModel):
    """One recorded decision: who (``actorId``), what (``action`` on ``subject``), when
    (``at``), and the values before and after (plain JSON; amounts as decimal strings)."""

    model_config = ConfigDict(title="AuditEntry")

    id: str
    actor_id: str
    actor_type: str = Field(description="user, system or permissions_core")
    action: str = Field(description="e.g. market.approve, wallet.register_external")
    subject: str = Field(description="what was acted on, e.g. market:<id>, user:<id>")
    before: Any
    after: Any
    at: str = DateTime


class AuditQuery(BaseModel):
    """``GET /api/v1/audit``"""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    actor_id: str | None = Field(default=None, max_length=MAX_ACTOR_ID)
    action: str | None = Field(default=None, max_length=MAX_ACTION)
    since: str | None = Field(
        default=None,
        max_length=40,
        description="ISO 8601 date-time with a zone (e.g. 2026-01-01T00:00:00Z): entries at "
        "or after it",
        json_schema_extra={"format": "date-time"},
    )
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=MAX_CURSOR)


AuditPageEnvelope = envelope(AuditEntryOut, many=True, paginated=True)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dump_entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "actorId": entry.actor_id,
        "actorType": entry.actor_type,
        "action": entry.action,
        "subject": entry.subject,
        "before": entry.before,
        "after": entry.after,
        "at": _iso(entry.at),
    }


def _since() -> datetime | None:
    raw = query_text("since", max_length=40)
    if raw is None:
        return None
    bad = ValidationFailed(
        "bad since", fields={"since": "must be an ISO 8601 date-time with a zone"}
    )
    if not raw.isascii():
        raise bad
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise bad from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise bad
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise bad from exc


def _limit() -> int:
    raw = query_text("limit", max_length=3) or "20"
    if not raw.isascii() or not raw.isdigit():
        raise ValidationFailed("bad limit", fields={"limit": "must be a whole number"})
    return int(raw)


@audit.get("")
@documented(AuditPageEnvelope, auth=True, query=AuditQuery)
@guarded(READ_ACTION)
async def list_audit() -> Response:
    """Audit entries, newest first (admins only). Filters: ``actorId``, ``action``,
    ``since``; cursor pagination."""
    audit_filter = AuditFilter(
        actor_id=query_text("actorId", max_length=MAX_ACTOR_ID),
        action=query_text("action", max_length=MAX_ACTION),
        since=_since(),
    )
    deps: HttpDependencies = current_app.config["RWA_DEPS"]
    page = await deps.audit.page(
        current_actor(),
        audit_filter,
        limit=_limit(),
        cursor=query_text("cursor", max_length=MAX_CURSOR),
    )
    response = jsonify(
        {
            "data": [dump_entry(e) for e in page.items],
            "pagination": {
                "limit": page.limit,
                "nextCursor": page.next_cursor,
                "hasMore": page.next_cursor is not None,
            },
        }
    )
    return response
