"""Events of the Entity Permissions Core: parse, apply once, record what came of it.

The webhook (direct or SNS) and the polling fallback both end here, so an event has the same
effect whichever way it arrived. An event is

    {"event_id": "...", "event_type": "market.approved" | "market.rejected",
     "payload": {"market_id", "entity_id"?, "decision"?, "reason"?},
     "context": {"actor_id"?, ...}}

Processing is idempotent on ``event_id`` (the ``processed_events`` inbox):

- the record and the market decision commit in one unit of work, so a crash leaves both or
  neither;
- an event recorded as ``success`` or ``skipped`` is a duplicate: nothing runs again;
- an event recorded as ``failed`` (unknown market, a decision the market refuses) runs again
  when it is delivered again;
- two deliveries racing each other: the unique ``event_id`` and the market's version let only
  one commit; the loser looks again and finds a duplicate.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Mapping
from typing import Any

import attrs

from core.markets.model import MarketStatus
from core.markets.use_cases import MarketUseCases
from core.ports.clock import Clock
from core.ports.inbox import DuplicateEvent, ProcessedEvent, ProcessStatus
from core.ports.permission_feed import PermissionEventFeed
from core.ports.storage import Storage, UnitOfWork
from core.shared.errors import (
    ConcurrentModification,
    DomainError,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)
from core.shared.events import Actor
from core.shared.exact_json import check_nesting
from core.shared.text import escape, is_blank, text_problem

log = logging.getLogger(__name__)

# Event type -> the decision of ``MarketUseCases.decide``.
DECISION_OF = {"market.approved": "approve", "market.rejected": "reject"}
# Words the Core may put in ``payload.decision`` for each event type.
_DECISION_WORDS = {
    "market.approved": frozenset({"approve", "approved"}),
    "market.rejected": frozenset({"reject", "rejected"}),
}
DEFAULT_ACTOR_ID = "entity-permissions-core"
DEFAULT_REJECT_REASON = "rejected by the Entity Permissions Core (no reason given)"
MAX_ID_LENGTH = 200
FEED_CURSOR_KEY = "entity-permissions-core.events"


class MalformedEvent(DomainError):
    """The event is not JSON, or not shaped like an Entity Permissions Core event (400)."""

    code = "malformed_event"

    def __init__(
        self, message: str, *, fields: Mapping[str, str] | None = None, code: str | None = None
    ) -> None:
        details = {"fields": dict(fields)} if fields else None
        super().__init__(message, details=details, code=code)


@attrs.frozen
class PermissionEvent:
    event_id: str
    event_type: str
    payload: dict[str, Any]
    context: dict[str, Any]
    # Text that breaks the text rules (``core.shared.text``), by field: such an event can
    # never be applied; it is recorded as failed, with these strings escaped.
    text_problems: tuple[tuple[str, str], ...] = ()

    @property
    def known(self) -> bool:
        return self.event_type in DECISION_OF

    @property
    def market_id(self) -> str | None:
        value = self.payload.get("market_id")
        return value if isinstance(value, str) else None

    @property
    def actor(self) -> Actor:
        actor_id = self.context.get("actor_id")
        if not isinstance(actor_id, str) or not actor_id.strip():
            actor_id = DEFAULT_ACTOR_ID
        return Actor(id=actor_id, type="permissions_core")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_permission_event(raw: str | bytes | Mapping[str, Any]) -> PermissionEvent:
    """An event from its JSON text (or an already decoded object); ``MalformedEvent`` if not.

    Only the envelope is required of every event type; the payload of the types we act on
    must name a market. Unknown types parse, so that they can be recorded as skipped.
    """
    if isinstance(raw, str | bytes):
        try:
            check_nesting(raw)
            data: Any = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedEvent("the event is not valid JSON", code="malformed_json") from exc
    else:
        data = raw
    if not isinstance(data, Mapping):
        raise MalformedEvent("the event must be a JSON object")
    fields: dict[str, str] = {}
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or is_blank(event_id):
        fields["event_id"] = "is required: a non-empty string"
    elif len(event_id) > MAX_ID_LENGTH:
        fields["event_id"] = f"at most {MAX_ID_LENGTH} characters"
    elif (problem := text_problem(event_id)) is not None:
        # without a usable id the event cannot even be recorded: the sender must fix it
        fields["event_id"] = problem
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or is_blank(event_type):
        fields["event_type"] = "is required: a non-empty string"
    elif len(event_type) > MAX_ID_LENGTH:
        fields["event_type"] = f"at most {MAX_ID_LENGTH} characters"
    payload = data.get("payload")
    if not isinstance(payload, Mapping):
        fields["payload"] = "is required: an object"
        payload = {}
    context = data.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, Mapping):
        fields["context"] = "must be an object"
        context = {}
    elif "actor_id" in context and not isinstance(context["actor_id"], str | None):
        fields["context.actor_id"] = "must be a string"
    if isinstance(event_type, str) and event_type in DECISION_OF:
        fields.update(_payload_problems(event_type, payload))
    if fields:
        raise MalformedEvent(
            "the event is not a valid Entity Permissions Core event", fields=fields
        )
    assert isinstance(event_id, str) and isinstance(event_type, str)
    problems: list[tuple[str, str]] = []
    type_problem = text_problem(event_type)
    if type_problem is not None:
        problems.append(("event_type", type_problem))
        event_type = escape(event_type)[:MAX_ID_LENGTH]
    return PermissionEvent(
        event_id=unicodedata.normalize("NFC", event_id),
        event_type=unicodedata.normalize("NFC", event_type),
        payload=_sanitize(payload, "payload", problems),
        context=_sanitize(context, "context", problems),
        text_problems=tuple(problems),
    )


# Strings of the payload and context that are one line (ids, the decision); others (the
# reason) may hold line breaks.
_SINGLE_LINE = frozenset({"market_id", "entity_id", "decision", "actor_id", "event_id"})


def _sanitize(value: Any, path: str, problems: list[tuple[str, str]]) -> Any:
    """``value`` with every string NFC-normalised, or escaped (and named in ``problems``)
    when it breaks the text rules: what is recorded must be storable and loggable."""

    def clean(text: str, where: str, *, multiline: bool) -> str:
        problem = text_problem(text, multiline=multiline)
        if problem is None and not multiline and len(text) > MAX_ID_LENGTH:
            problem = f"must be at most {MAX_ID_LENGTH} characters"
        if problem is None:
            return unicodedata.normalize("NFC", text)
        problems.append((where, problem))
        return escape(text, max_length=len(text))

    if isinstance(value, str):
        leaf = path.rsplit(".", 1)[-1]
        return clean(value, path, multiline=leaf not in _SINGLE_LINE)
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = clean(str(key), f"{path} (a key)", multiline=False)
            result[name] = _sanitize(item, f"{path}.{name}", problems)
        return result
    if isinstance(value, list):
        return [_sanitize(item, f"{path}[{index}]", problems) for index, item in enumerate(value)]
    return value


def _payload_problems(event_type: str, payload: Mapping[str, Any]) -> dict[str, str]:
    problems: dict[str, str] = {}
    market_id = payload.get("market_id")
    if not isinstance(market_id, str) or not market_id.strip():
        problems["payload.market_id"] = "is required: a non-empty string"
    elif len(market_id) > MAX_ID_LENGTH:
        problems["payload.market_id"] = f"at most {MAX_ID_LENGTH} characters"
    for name in ("entity_id", "reason"):
        if payload.get(name) is not None and not isinstance(payload[name], str):
            problems[f"payload.{name}"] = "must be a string"
    decision = payload.get("decision")
    if decision is not None and (
        not isinstance(decision, str) or decision.lower() not in _DECISION_WORDS[event_type]
    ):
        allowed = ", ".join(sorted(_DECISION_WORDS[event_type]))
        problems["payload.decision"] = f"must agree with {event_type}: one of {allowed}"
    return problems


@attrs.frozen
class EventOutcome:
    """What processing one event did. ``status`` is a ``ProcessStatus`` value or
    ``"duplicate"`` (then ``recorded_status`` is what the first processing recorded)."""

    event_id: str
    event_type: str
    status: str
    error: str | None = None
    market_id: str | None = None
    market_status: str | None = None
    recorded_status: str | None = None

    @property
    def duplicate(self) -> bool:
        return self.status == "duplicate"


# Errors that mean "this event cannot be applied" (recorded), as opposed to "cannot decide
# now" (ServiceUnavailable and unexpected errors propagate: nothing is recorded, so a
# redelivery or the next poll tries again).
_RECORDABLE = (NotFound, IllegalTransition, ValidationFailed, PermissionDenied)


class PermissionEventProcessor:
    """Applies Entity Permissions Core events through the same use case as HTTP approval."""

    def __init__(
        self, storage: Storage, markets: MarketUseCases, clock: Clock, *, max_races: int = 5
    ) -> None:
        self._storage = storage
        self._markets = markets
        self._clock = clock
        self._max_races = max_races

    async def handle(self, raw: str | bytes | Mapping[str, Any], *, source: str) -> EventOutcome:
        """Parse (``MalformedEvent`` when that fails) and process one event."""
        return await self.process(parse_permission_event(raw), source=source)

    async def process(self, event: PermissionEvent, *, source: str) -> EventOutcome:
        for _ in range(self._max_races):
            try:
                return await self._process_once(event, source)
            except (DuplicateEvent, ConcurrentModification):
                # Another delivery (or an HTTP approval) committed first: look again.
                continue
        raise ServiceUnavailable(
            f"event {event.event_id} kept conflicting with concurrent changes; retry later",
            details={"eventId": event.event_id},
        )

    async def refuse(
        self, raw: str | bytes | Mapping[str, Any], *, source: str, error: str
    ) -> EventOutcome:
        """Record an event that arrived in a way that can never be applied (a stale SNS
        envelope) as ``failed`` with ``error``, without applying it. An event already
        applied or skipped is a duplicate; a failed one may still be applied when it comes
        again by a sound path (the feed, a fresh delivery)."""
        event = parse_permission_event(raw)
        for _ in range(self._max_races):
            try:
                async with self._storage.unit_of_work() as uow:
                    existing = await uow.processed_events.get(event.event_id)
                    if existing is not None and existing.status is not ProcessStatus.FAILED:
                        return self._duplicate(event, existing)
                    await self._record(uow, event, source, ProcessStatus.FAILED, error, existing)
                    await uow.commit()
            except (DuplicateEvent, ConcurrentModification):
                continue
            log.warning("permission event %s refused: %s", event.event_id, error)
            return self._outcome(event, ProcessStatus.FAILED, error)
        raise ServiceUnavailable(
            f"event {event.event_id} kept conflicting with concurrent changes; retry later",
            details={"eventId": event.event_id},
        )

    async def _process_once(self, event: PermissionEvent, source: str) -> EventOutcome:
        async with self._storage.unit_of_work() as uow:
            existing = await uow.processed_events.get(event.event_id)
            if existing is not None and existing.status is not ProcessStatus.FAILED:
                return self._duplicate(event, existing)
            if event.text_problems:
                error = "invalid_text: " + "; ".join(
                    f"{where} {problem}" for where, problem in event.text_problems
                )
                await self._record(uow, event, source, ProcessStatus.FAILED, error, existing)
                await uow.commit()
                log.warning("permission event %s failed: %s", event.event_id, error)
                return self._outcome(event, ProcessStatus.FAILED, error)
            if not event.known:
                error = f"unknown event type {event.event_type}"
                await self._record(uow, event, source, ProcessStatus.SKIPPED, error, existing)
                await uow.commit()
                log.info("permission event %s skipped: %s", event.event_id, error)
                return self._outcome(event, ProcessStatus.SKIPPED, error)
            # Claim the event first: on Postgres a concurrent claim waits on the unique key.
            await self._record(uow, event, source, ProcessStatus.SUCCESS, None, existing)
            try:
                market = await self._markets.decide_in(
                    uow,
                    event.actor,
                    event.market_id or "",
                    DECISION_OF[event.event_type],
                    reason=self._reason(event),
                    entity_id=event.payload.get("entity_id") or None,
                    metadata={"source": source, "permissionsEventId": event.event_id},
                )
                await uow.commit()
            except _RECORDABLE as exc:
                failure: DomainError = exc
            else:
                log.info(
                    "permission event %s (%s): market %s is %s",
                    event.event_id,
                    event.event_type,
                    market.id,
                    market.status.value,
                )
                return self._outcome(event, ProcessStatus.SUCCESS, None, market.status)
        # The decision was refused and rolled back; record why, in a unit of its own.
        status = (
            ProcessStatus.SKIPPED
            if isinstance(failure, IllegalTransition)
            else ProcessStatus.FAILED
        )
        error = f"{failure.code}: {failure.message}"
        async with self._storage.unit_of_work() as uow:
            existing = await uow.processed_events.get(event.event_id)
            if existing is not None and existing.status is not ProcessStatus.FAILED:
                return self._duplicate(event, existing)
            await self._record(uow, event, source, status, error, existing)
            await uow.commit()
        log.warning("permission event %s %s: %s", event.event_id, status.value, error)
        return self._outcome(event, status, error)

    @staticmethod
    def _reason(event: PermissionEvent) -> str | None:
        reason = event.payload.get("reason")
        if isinstance(reason, str) and reason.strip():
            return reason
        return DEFAULT_REJECT_REASON if DECISION_OF[event.event_type] == "reject" else None

    async def _record(
        self,
        uow: UnitOfWork,
        event: PermissionEvent,
        source: str,
        status: ProcessStatus,
        error: str | None,
        existing: ProcessedEvent | None,
    ) -> None:
        now = self._clock.now()
        record = ProcessedEvent(
            event_id=event.event_id,
            event_type=event.event_type,
            source=source,
            status=status,
            received_at=existing.received_at if existing is not None else now,
            processed_at=now,
            error=error,
            payload=event.payload,
            context=event.context,
            attempts=existing.attempts + 1 if existing is not None else 1,
        )
        if existing is None:
            await uow.processed_events.add(record)
        else:
            await uow.processed_events.replace(record, expected_attempts=existing.attempts)

    @staticmethod
    def _outcome(
        event: PermissionEvent,
        status: ProcessStatus,
        error: str | None,
        market_status: MarketStatus | None = None,
    ) -> EventOutcome:
        return EventOutcome(
            event_id=event.event_id,
            event_type=event.event_type,
            status=status.value,
            error=error,
            market_id=event.market_id,
            market_status=market_status.value if market_status is not None else None,
        )

    @staticmethod
    def _duplicate(event: PermissionEvent, existing: ProcessedEvent) -> EventOutcome:
        return EventOutcome(
            event_id=event.event_id,
            event_type=event.event_type,
            status="duplicate",
            error=existing.error,
            market_id=event.market_id,
            recorded_status=existing.status.value,
        )


@attrs.frozen
class SyncReport:
    fetched: int
    cursor: str | None
    outcomes: tuple[EventOutcome, ...] = ()
    malformed: int = 0
    full: bool = False  # the page was full: more events may be waiting


class PermissionFeedSync:
    """One polling step: read the feed after the stored cursor, process, store the cursor.

    The cursor is stored after the page is processed; a crash in between processes the page
    again, which the inbox turns into duplicates. A malformed event is logged and passed
    over (it can never become valid); an outage raises and leaves the cursor where it was.
    """

    def __init__(
        self,
        feed: PermissionEventFeed,
        processor: PermissionEventProcessor,
        storage: Storage,
        clock: Clock,
        *,
        page_size: int = 100,
        cursor_key: str = FEED_CURSOR_KEY,
    ) -> None:
        self._feed = feed
        self._processor = processor
        self._storage = storage
        self._clock = clock
        self._page_size = page_size
        self._key = cursor_key

    async def cursor(self) -> str | None:
        async with self._storage.unit_of_work() as uow:
            return await uow.cursors.get(self._key)

    async def run_once(self) -> SyncReport:
        after = await self.cursor()
        page = await self._feed.fetch(after, self._page_size)
        outcomes: list[EventOutcome] = []
        malformed = 0
        for raw in page.events:
            try:
                outcomes.append(await self._processor.handle(raw, source="poller"))
            except MalformedEvent as exc:
                malformed += 1
                log.warning("permission feed: passing over a malformed event: %s", exc.message)
        cursor = after
        if page.next_cursor is not None and page.next_cursor != after:
            async with self._storage.unit_of_work() as uow:
                await uow.cursors.set(self._key, page.next_cursor, self._clock.now())
                await uow.commit()
            cursor = page.next_cursor
        return SyncReport(
            fetched=len(page.events),
            cursor=cursor,
            outcomes=tuple(outcomes),
            malformed=malformed,
            full=len(page.events) >= self._page_size,
        )
