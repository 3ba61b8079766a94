"""The market lifecycle: one explicit table of legal transitions and the event each one writes."""

from __future__ import annotations

import enum

import attrs

from core.markets.model import MarketStatus as S
from core.shared.errors import IllegalTransition


class Action(enum.StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    START_ACTIVATION = "start_activation"
    COMPLETE_ACTIVATION = "complete_activation"
    FAIL_ACTIVATION = "fail_activation"
    PAUSE = "pause"
    RESUME = "resume"
    ARCHIVE = "archive"


@attrs.frozen
class Transition:
    source: S
    action: Action
    target: S
    event_type: str


TRANSITIONS: tuple[Transition, ...] = (
    Transition(S.DRAFT, Action.SUBMIT, S.PENDING_APPROVAL, "market.approval_requested"),
    Transition(S.PENDING_APPROVAL, Action.APPROVE, S.APPROVED, "market.approved"),
    Transition(S.PENDING_APPROVAL, Action.REJECT, S.REJECTED, "market.rejected"),
    Transition(S.APPROVED, Action.START_ACTIVATION, S.ACTIVATING, "market.activation_started"),
    Transition(S.ACTIVATING, Action.COMPLETE_ACTIVATION, S.ACTIVE, "market.activated"),
    Transition(S.ACTIVATING, Action.FAIL_ACTIVATION, S.APPROVED, "market.activation_failed"),
    Transition(S.ACTIVE, Action.PAUSE, S.PAUSED, "market.paused"),
    Transition(S.PAUSED, Action.RESUME, S.ACTIVE, "market.resumed"),
    Transition(S.ACTIVE, Action.ARCHIVE, S.ARCHIVED, "market.archived"),
    Transition(S.PAUSED, Action.ARCHIVE, S.ARCHIVED, "market.archived"),
)

_TABLE: dict[tuple[S, Action], Transition] = {(t.source, t.action): t for t in TRANSITIONS}

REGISTERED_EVENT = "market.registered"


def transition_for(status: S, action: Action) -> Transition:
    """The legal transition for ``action`` from ``status``, or ``IllegalTransition``."""
    found = _TABLE.get((status, action))
    if found is None:
        raise IllegalTransition(action.value, status.value)
    return found


def allowed_actions(status: S) -> tuple[Action, ...]:
    return tuple(t.action for t in TRANSITIONS if t.source == status)
