"""An authentic SNS message is refused when it is too old (a replay) or dated in the future:
the event is recorded as failed, with the reason, and never applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.outbound.sns.memory import MemorySnsGateway
from bootstrap import Runtime
from core.markets.model import MarketStatus
from core.ports.inbox import ProcessStatus
from tests.harness.permissions_core import approval_event
from tests.harness.sns import SnsSigner
from tests.unit.test_webhooks import (  # the webhook tests' fixtures and helpers
    client,
    error_of,
    market,
    post_sns,
    record,
    register,
    runtime,
    signer,
    sns,
)

__all__ = ["client", "runtime", "signer", "sns"]


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def test_a_message_within_the_hour_is_applied(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    envelope = signer.envelope(message=approval_event("evt-age-ok", market_id), sent_at=_ago(3000))
    response = await post_sns(client, envelope)
    assert (await response.get_json())["data"]["status"] == "success"
    assert (await market(runtime, market_id)).status is not MarketStatus.PENDING_APPROVAL


async def test_a_message_older_than_an_hour_is_refused_and_recorded(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-age-old", market_id)
    response = await post_sns(client, signer.envelope(message=event, sent_at=_ago(3700)))
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["status"] == "failed" and "more than the 3600 s accepted" in data["error"]
    stored = await record(runtime, "evt-age-old")
    assert stored is not None and stored.status is ProcessStatus.FAILED
    assert stored.source == "sns" and "ago" in (stored.error or "")
    assert (await market(runtime, market_id)).status is MarketStatus.PENDING_APPROVAL
    # a fresh delivery of the same event is applied: failed events run again
    fresh = await post_sns(client, signer.envelope(message=event))
    assert (await fresh.get_json())["data"]["status"] == "success"
    # and a replay of the old one after that is a duplicate, nothing done
    replay = await post_sns(client, signer.envelope(message=event, sent_at=_ago(7200)))
    assert (await replay.get_json())["data"]["status"] == "duplicate"


async def test_a_message_from_the_future_is_refused(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-age-future", market_id)
    response = await post_sns(client, signer.envelope(message=event, sent_at=_ago(-600)))
    data = (await response.get_json())["data"]
    assert data["status"] == "failed" and "in the future" in data["error"]
    assert (await market(runtime, market_id)).status is MarketStatus.PENDING_APPROVAL
    slightly_ahead = signer.envelope(
        message=approval_event("evt-age-skew", market_id), sent_at=_ago(-60)
    )
    assert (await (await post_sns(client, slightly_ahead)).get_json())["data"]["status"] == (
        "success"
    )


async def test_a_stale_subscription_confirmation_is_400(
    client: Any, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    envelope = signer.envelope("SubscriptionConfirmation", sent_at=_ago(4000))
    await error_of(await post_sns(client, envelope), 400, "stale_sns_message")
    assert sns.confirmed == []


async def test_a_timestamp_that_is_not_a_time_is_400(
    client: Any, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    envelope = signer.envelope(message=approval_event("evt-age-bad", "m-1"))
    envelope = signer.sign({**envelope, "Timestamp": "yesterday"})
    error = await error_of(await post_sns(client, envelope), 400, "malformed_sns_message")
    assert "Timestamp" in error["details"]["fields"]
