"""The lifecycle state machine: the table, and random command sequences through the use cases."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.storage.memory import MemoryStorage
from core.markets.deployment import RetryPolicy, TokenDeployment
from core.markets.lifecycle import TRANSITIONS, Action, allowed_actions, transition_for
from core.markets.model import MarketStatus as S
from core.markets.registration import RegisterMarket
from core.markets.use_cases import MarketUseCases
from core.ports.clock import Clock
from core.ports.jobs import DeployTokenJob
from core.shared.authorization import Authorizer
from core.shared.errors import IllegalTransition
from core.shared.events import Actor
from tests.unit.doubles import FlakyChain, RecordingJobQueue
from tests.unit.test_deployment_records import KEYS

# The lifecycle of DESIGN §4, written out independently of the implementation's table.
SPEC = {
    (S.DRAFT, Action.SUBMIT): (S.PENDING_APPROVAL, "market.approval_requested"),
    (S.PENDING_APPROVAL, Action.APPROVE): (S.APPROVED, "market.approved"),
    (S.PENDING_APPROVAL, Action.REJECT): (S.REJECTED, "market.rejected"),
    (S.APPROVED, Action.START_ACTIVATION): (S.ACTIVATING, "market.activation_started"),
    (S.ACTIVATING, Action.COMPLETE_ACTIVATION): (S.ACTIVE, "market.activated"),
    (S.ACTIVATING, Action.FAIL_ACTIVATION): (S.APPROVED, "market.activation_failed"),
    (S.ACTIVE, Action.PAUSE): (S.PAUSED, "market.paused"),
    (S.PAUSED, Action.RESUME): (S.ACTIVE, "market.resumed"),
    (S.ACTIVE, Action.ARCHIVE): (S.ARCHIVED, "market.archived"),
    (S.PAUSED, Action.ARCHIVE): (S.ARCHIVED, "market.archived"),
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(S, Action)))
def test_every_pair_of_status_and_action_follows_the_spec(status: S, action: Action) -> None:
    expected = SPEC.get((status, action))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            transition_for(status, action)
        assert info.value.current_status == status.value
    else:
        found = transition_for(status, action)
        assert (found.target, found.event_type) == expected


def test_the_table_has_no_extra_transitions() -> None:
    assert {(t.source, t.action) for t in TRANSITIONS} == set(SPEC)


def test_terminal_statuses_allow_nothing() -> None:
    assert allowed_actions(S.REJECTED) == ()
    assert allowed_actions(S.ARCHIVED) == ()


class SteppingClock(Clock):
    def __init__(self) -> None:
        self._t = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self._t += timedelta(milliseconds=1)
        return self._t


ADMIN = Actor(id="admin-1", roles=("admin",))
ISSUER = Actor(id="issuer-1", roles=("issuer",))
MAX_ATTEMPTS = 3

# command -> (status it needs, status after, events it writes)
EXPECTED: dict[str, tuple[S, S, list[str]]] = {
    "approve": (S.PENDING_APPROVAL, S.ACTIVATING, ["market.approved", "market.activation_started"]),
    "reject": (S.PENDING_APPROVAL, S.REJECTED, ["market.rejected"]),
    "activate": (S.APPROVED, S.ACTIVATING, ["market.activation_started"]),
    "deploy_ok": (S.ACTIVATING, S.ACTIVE, ["market.activated"]),
    "deploy_fail_retry": (S.ACTIVATING, S.ACTIVATING, []),
    "deploy_fail_final": (S.ACTIVATING, S.APPROVED, ["market.activation_failed"]),
    "pause": (S.ACTIVE, S.PAUSED, ["market.paused"]),
    "resume": (S.PAUSED, S.ACTIVE, ["market.resumed"]),
    "archive_active": (S.ACTIVE, S.ARCHIVED, ["market.archived"]),
    "archive_paused": (S.PAUSED, S.ARCHIVED, ["market.archived"]),
}
COMMANDS = sorted({*EXPECTED, "archive"} - {"archive_active", "archive_paused"})
JOB_COMMANDS = {"deploy_ok", "deploy_fail_retry", "deploy_fail_final"}


async def run_sequence(commands: list[str]) -> None:
    storage = MemoryStorage()
    clock = SteppingClock()
    chain = FlakyChain()
    jobs = RecordingJobQueue()
    uc = MarketUseCases(storage, Authorizer(LocalPolicyPermissions()), clock)
    deployment = TokenDeployment(
        storage,
        chain,
        jobs,
        clock,
        RetryPolicy(max_attempts=MAX_ATTEMPTS, base_delay_seconds=1),
        custody=KEYS,
    )
    market = await uc.register(
        ISSUER,
        RegisterMarket(
            name="Tower",
            asset_type="real_estate",
            token_symbol="TWR",
            token_name="Tower Token",
            total_supply=1000,
        ),
    )
    history = await _events(storage, market.id)
    assert history == ["market.registered", "market.approval_requested"]
    assert market.status is S.PENDING_APPROVAL

    for command in commands:
        before = await _market(storage, market.id)
        before_events = await _events(storage, market.id)
        key = command
        if command == "archive":
            key = "archive_paused" if before.status is S.PAUSED else "archive_active"
        needed, after_status, written = EXPECTED[key]
        legal = before.status is needed
        try:
            if command == "approve":
                await uc.decide(ADMIN, market.id, "approve")
            elif command == "reject":
                await uc.decide(ADMIN, market.id, "reject", reason="papers missing")
            elif command == "activate":
                await uc.activate(ADMIN, market.id)
            elif command == "pause":
                await uc.pause(ADMIN, market.id)
            elif command == "resume":
                await uc.resume(ADMIN, market.id)
            elif command == "archive":
                await uc.archive(ADMIN, market.id)
            else:
                attempt = MAX_ATTEMPTS if command == "deploy_fail_final" else 1
                chain.failures = 0 if command == "deploy_ok" else 1
                await deployment.handle(DeployTokenJob(market_id=market.id, attempt=attempt))
            refused = False
        except IllegalTransition as exc:
            assert exc.current_status == before.status.value
            refused = True

        now = await _market(storage, market.id)
        new_events = (await _events(storage, market.id))[len(before_events) :]
        assert now.status in set(S) - {S.DRAFT}
        if legal:
            assert not refused, f"{command} from {before.status} was refused"
            assert now.status is after_status, (command, before.status, now.status)
            assert new_events == written, (command, new_events)
        elif command in JOB_COMMANDS:
            # A stale job is ignored: nothing changes and nothing is written.
            assert now == before and new_events == []
        else:
            assert refused, f"{command} from {before.status} was accepted"
            assert now == before and new_events == []
        if now.status is S.ACTIVE:
            assert now.contract_address and now.deployment_tx_hash and now.activated_at
        if now.status is S.REJECTED:
            assert now.rejected_reason == "papers missing"


async def _market(storage: MemoryStorage, market_id: str):  # type: ignore[no-untyped-def]
    async with storage.unit_of_work() as uow:
        found = await uow.markets.get(market_id)
    assert found is not None
    return found


async def _events(storage: MemoryStorage, market_id: str) -> list[str]:
    async with storage.unit_of_work() as uow:
        return [e.type for e in await uow.events.for_aggregate(market_id)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(COMMANDS), max_size=14))
def test_random_command_sequences_never_reach_an_illegal_state(commands: list[str]) -> None:
    asyncio.run(run_sequence(commands))


def test_the_happy_path_explicitly() -> None:
    asyncio.run(run_sequence(["approve", "deploy_ok", "pause", "resume", "archive"]))


def test_failed_deployment_then_manual_retry() -> None:
    asyncio.run(run_sequence(["approve", "deploy_fail_final", "activate", "deploy_ok"]))
