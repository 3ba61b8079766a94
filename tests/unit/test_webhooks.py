"""The Entity Permissions Core webhook over HTTP: direct (HMAC) and SNS forms, idempotency,
and bad input that changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

import bootstrap
from adapters.inbound.webhooks.signatures import sign
from adapters.outbound.sns.memory import MemorySnsGateway
from bootstrap import Runtime, Settings
from core.markets.model import AssetType, Market, MarketAsset, MarketStatus
from core.ports.inbox import ProcessedEvent, ProcessStatus
from core.ports.storage import MarketFilter
from core.shared.events import DomainEvent
from tests.harness.permissions_core import approval_event
from tests.harness.sns import CERT_URL, SUBSCRIBE_URL, TOPIC_ARN, SnsSigner
from tests.unit.conftest import SECRET, bearer

URL = "/api/v1/webhooks/entity-permissions"
OLD_SECRET = "webhook-secret-old-0123456789"
NEW_SECRET = "webhook-secret-new-9876543210"


@pytest.fixture
def runtime() -> Runtime:
    settings = Settings(
        profile="test",
        jwt_secret=SECRET,
        deploy_backoff_seconds=0.01,
        webhook_secrets=(NEW_SECRET, OLD_SECRET),
        sns_topic_arns=(TOPIC_ARN,),
    )
    return bootstrap.build(settings)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[Any]:
    app = runtime.http_app()
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner()


@pytest.fixture
def sns(runtime: Runtime, signer: SnsSigner) -> MemorySnsGateway:
    gateway = runtime.container.sns_gateway()
    assert isinstance(gateway, MemorySnsGateway)
    gateway.publish_certificate(CERT_URL, signer.pem)
    return gateway


_symbols = iter(range(1, 10**6))


async def register(client: Any, runtime: Runtime) -> str:
    body = {
        "name": "Harbour View Offices",
        "assetType": "real_estate",
        "tokenSymbol": f"WH{next(_symbols)}",
        "tokenName": "Harbour View Offices Token",
        "totalSupply": 1000000,
        "entityId": "entity-7",
        "asset": {"valuation": "25000000.00", "currency": "USD"},
    }
    response = await client.post(
        "/api/v1/markets/register", json=body, headers=bearer(runtime, "iss-1", "issuer")
    )
    assert response.status_code == 201
    market_id: str = (await response.get_json())["data"]["market"]["id"]
    return market_id


def signed(event: Any, secret: str = NEW_SECRET, *, at: int | None = None) -> dict[str, Any]:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    return {
        "data": raw,
        "headers": {
            "Content-Type": "application/json",
            "X-Signature": sign(raw, secret, int(time.time()) if at is None else at),
        },
    }


async def post(client: Any, event: Any, secret: str = NEW_SECRET, **kw: Any) -> Any:
    return await client.post(URL, **signed(event, secret, **kw))


async def record(runtime: Runtime, event_id: str) -> ProcessedEvent | None:
    async with runtime.container.storage().unit_of_work() as uow:
        return await uow.processed_events.get(event_id)


async def snapshot(runtime: Runtime) -> tuple[list[Market], dict[str, list[DomainEvent]]]:
    async with runtime.container.storage().unit_of_work() as uow:
        markets = await uow.markets.list(MarketFilter(), limit=1000)
        events = {m.id: await uow.events.for_aggregate(m.id) for m in markets}
    return markets, events


async def market(runtime: Runtime, market_id: str) -> Market:
    async with runtime.container.storage().unit_of_work() as uow:
        found = await uow.markets.get(market_id)
    assert found is not None
    return found


async def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data()
    body = await response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


# -- health ----------------------------------------------------------------------------------


async def test_health(client: Any) -> None:
    response = await client.get("/api/v1/webhooks/health")
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["status"] == "ok" and data["forms"] == ["direct", "sns"]
    assert data["toleranceSeconds"] == 300 and data["snsTopics"] == 1
    assert NEW_SECRET not in json.dumps(data)


# -- direct form: the happy paths --------------------------------------------------------------


async def test_a_signed_approval_goes_through_the_approval_use_case(
    client: Any, runtime: Runtime
) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-approve-1", market_id, reason="KYB done", actor_id="core-9")
    response = await post(client, event)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["data"] == {
        "eventId": "evt-approve-1",
        "eventType": "market.approved",
        "status": "success",
        "marketId": market_id,
        "marketStatus": "activating",
    }
    assert body["message"] == "event applied"
    approved = await market(runtime, market_id)
    assert approved.approved_by == "core-9"
    assert approved.status in {MarketStatus.ACTIVATING, MarketStatus.ACTIVE}
    _, history = await snapshot(runtime)
    decision = next(e for e in history[market_id] if e.type == "market.approved")
    assert (decision.actor_id, decision.actor_type) == ("core-9", "permissions_core")
    assert decision.reason == "KYB done"
    assert decision.metadata["source"] == "webhook"
    assert decision.metadata["permissionsEventId"] == "evt-approve-1"
    stored = await record(runtime, "evt-approve-1")
    assert stored is not None
    assert stored.status is ProcessStatus.SUCCESS and stored.source == "webhook"
    assert stored.payload == event["payload"] and stored.context == event["context"]
    assert stored.error is None and stored.attempts == 1
    # and activation runs as after an HTTP approval
    await runtime.container.jobs().join(5)
    for _ in range(100):
        if (await market(runtime, market_id)).status is MarketStatus.ACTIVE:
            break
        await asyncio.sleep(0.02)
    assert (await market(runtime, market_id)).status is MarketStatus.ACTIVE


async def test_a_signed_rejection(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-reject-1", market_id, decision="reject", reason="no KYB")
    data = (await (await post(client, event)).get_json())["data"]
    assert data["status"] == "success" and data["marketStatus"] == "rejected"
    rejected = await market(runtime, market_id)
    assert rejected.status is MarketStatus.REJECTED
    assert rejected.rejected_reason == "no KYB" and rejected.rejected_by == "core-admin-1"


async def test_a_rejection_without_reason_gets_a_default_one(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-reject-2", market_id, decision="reject")
    assert (await (await post(client, event)).get_json())["data"]["status"] == "success"
    assert "Entity Permissions Core" in ((await market(runtime, market_id)).rejected_reason or "")


async def test_the_previous_secret_still_works_during_rotation(
    client: Any, runtime: Runtime
) -> None:
    market_id = await register(client, runtime)
    response = await post(client, approval_event("evt-rot-1", market_id), OLD_SECRET)
    assert response.status_code == 200
    assert (await response.get_json())["data"]["status"] == "success"


async def test_text_plain_bodies_are_accepted(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    request = signed(approval_event("evt-plain-1", market_id))
    request["headers"]["Content-Type"] = "text/plain; charset=UTF-8"
    response = await client.post(URL, **request)
    assert response.status_code == 200


# -- idempotency -------------------------------------------------------------------------------


async def test_a_duplicate_returns_200_and_does_nothing(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-dup-1", market_id)
    assert (await (await post(client, event)).get_json())["data"]["status"] == "success"
    await runtime.container.jobs().join(5)
    before = await snapshot(runtime)
    first = await record(runtime, "evt-dup-1")
    again = await post(client, event)
    assert again.status_code == 200
    body = await again.get_json()
    assert body["data"]["status"] == "duplicate"
    assert body["data"]["recordedStatus"] == "success"
    assert body["message"] == "event already processed; nothing done"
    assert await snapshot(runtime) == before
    assert await record(runtime, "evt-dup-1") == first
    # even a conflicting redelivery under the same id changes nothing
    twisted = approval_event("evt-dup-1", market_id, decision="reject", reason="changed mind")
    assert (await (await post(client, twisted)).get_json())["data"]["status"] == "duplicate"
    assert await snapshot(runtime) == before


async def test_concurrent_deliveries_of_one_event_apply_once(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-race-1", market_id)
    responses = await asyncio.gather(*(post(client, event) for _ in range(8)))
    statuses = sorted([(await r.get_json())["data"]["status"] for r in responses])
    assert all(r.status_code == 200 for r in responses)
    assert statuses == ["duplicate"] * 7 + ["success"]
    _, history = await snapshot(runtime)
    assert [e.type for e in history[market_id]].count("market.approved") == 1
    stored = await record(runtime, "evt-race-1")
    assert stored is not None and stored.attempts == 1


async def test_a_failed_event_is_retried_on_redelivery(client: Any, runtime: Runtime) -> None:
    missing_id = "0190aaaa-0000-7000-8000-000000000001"
    event = approval_event("evt-retry-1", missing_id)
    data = (await (await post(client, event)).get_json())["data"]
    assert data["status"] == "failed" and data["error"].startswith("not_found")
    failed = await record(runtime, "evt-retry-1")
    assert failed is not None and failed.status is ProcessStatus.FAILED and failed.attempts == 1
    # the market turns up (say, replicated late); the Core delivers the event again
    now = datetime.now(UTC)
    late = Market(
        id=missing_id,
        name="Late market",
        asset_type=AssetType.COMMODITY,
        issuer_id="iss-2",
        token_symbol="LATE",
        token_name="Late Token",
        total_supply=10,
        status=MarketStatus.PENDING_APPROVAL,
        created_at=now,
        updated_at=now,
    )
    async with runtime.container.storage().unit_of_work() as uow:
        await uow.markets.add(late, MarketAsset(market_id=missing_id))
        await uow.commit()
    data = (await (await post(client, event)).get_json())["data"]
    assert data["status"] == "success"
    retried = await record(runtime, "evt-retry-1")
    assert retried is not None
    assert retried.status is ProcessStatus.SUCCESS and retried.attempts == 2
    assert retried.error is None and retried.received_at == failed.received_at
    assert (await market(runtime, missing_id)).approved_by == "core-admin-1"
    # and now it is final
    assert (await (await post(client, event)).get_json())["data"]["status"] == "duplicate"


# -- bad input: the right status, and nothing else changes --------------------------------------


async def _assert_unchanged(
    runtime: Runtime, before: Any, market_id: str, event_id: str | None
) -> None:
    assert await snapshot(runtime) == before
    assert (await market(runtime, market_id)).status is MarketStatus.PENDING_APPROVAL
    if event_id is not None:
        assert await record(runtime, event_id) is None


async def test_unsigned_is_401(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    response = await client.post(URL, json=approval_event("evt-unsigned", market_id))
    error = await error_of(response, 401, "missing_signature")
    assert error["details"] == {"form": "direct"}
    await _assert_unchanged(runtime, before, market_id, "evt-unsigned")


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=123",
        "v1=" + "a" * 64,
        "t=abc,v1=" + "a" * 64,
        "t=1,t=2,v1=" + "a" * 64,
        "t={now},v1=zz",
        "t={now},v1=" + "a" * 63,
        "t={now},v1=" + "a" * 64,
        "t={now};v1=" + "a" * 64,
    ],
)
async def test_malformed_or_wrong_signatures_are_401(
    client: Any, runtime: Runtime, header: str
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    raw = json.dumps(approval_event("evt-badsig", market_id)).encode()
    response = await client.post(
        URL,
        data=raw,
        headers={
            "Content-Type": "application/json",
            "X-Signature": header.format(now=int(time.time())),
        },
    )
    await error_of(response, 401, "invalid_signature")
    await _assert_unchanged(runtime, before, market_id, "evt-badsig")


async def test_a_wrong_secret_is_401(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    response = await post(client, approval_event("evt-wrong", market_id), "not-our-secret")
    await error_of(response, 401, "invalid_signature")
    await _assert_unchanged(runtime, before, market_id, "evt-wrong")


async def test_a_body_changed_after_signing_is_401(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    request = signed(approval_event("evt-tamper", market_id))
    request["data"] = request["data"].replace(b"market.approved", b"market.rejected")
    await error_of(await client.post(URL, **request), 401, "invalid_signature")
    await _assert_unchanged(runtime, before, market_id, "evt-tamper")


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
async def test_stale_or_future_timestamps_are_401(
    client: Any, runtime: Runtime, offset: int
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    event = approval_event("evt-stale", market_id)
    response = await post(client, event, at=int(time.time()) + offset)
    await error_of(response, 401, "stale_signature")
    await _assert_unchanged(runtime, before, market_id, "evt-stale")


async def test_a_timestamp_within_the_tolerance_is_fine(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    response = await post(
        client, approval_event("evt-old-ok", market_id), at=int(time.time()) - 290
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"\xff\xfe", b'{"event_id": NaN}', b"[1, 2", b"null"]
)
async def test_malformed_json_is_400(client: Any, runtime: Runtime, raw: bytes) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    response = await post(client, raw)
    error = await error_of(response, 400, "malformed_json" if raw != b"null" else "malformed_event")
    assert error["message"]
    await _assert_unchanged(runtime, before, market_id, None)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("event_id"), "event_id"),
        (lambda e: e.update(event_id=""), "event_id"),
        (lambda e: e.update(event_id=7), "event_id"),
        (lambda e: e.update(event_id="x" * 201), "event_id"),
        (lambda e: e.pop("event_type"), "event_type"),
        (lambda e: e.pop("payload"), "payload"),
        (lambda e: e.update(payload=[1]), "payload"),
        (lambda e: e["payload"].pop("market_id"), "payload.market_id"),
        (lambda e: e["payload"].update(market_id=5), "payload.market_id"),
        (lambda e: e["payload"].update(decision="reject"), "payload.decision"),
        (lambda e: e["payload"].update(reason=["x"]), "payload.reason"),
        (lambda e: e["payload"].update(entity_id=3), "payload.entity_id"),
        (lambda e: e.update(context="admin"), "context"),
        (lambda e: e.update(context={"actor_id": 1}), "context.actor_id"),
    ],
)
async def test_a_payload_of_the_wrong_shape_is_400(
    client: Any, runtime: Runtime, mutate: Any, field: str
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    event = approval_event("evt-shape", market_id)
    mutate(event)
    error = await error_of(await post(client, event), 400, "malformed_event")
    assert field in error["details"]["fields"]
    await _assert_unchanged(runtime, before, market_id, "evt-shape")


async def test_an_unknown_event_type_is_recorded_as_skipped(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    event = {
        "event_id": "evt-unknown-type",
        "event_type": "entity.renamed",
        "payload": {"entity_id": "entity-7", "name": "New name"},
        "context": {"actor_id": "core-1"},
    }
    response = await post(client, event)
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["status"] == "skipped" and "unknown event type" in data["error"]
    await _assert_unchanged(runtime, before, market_id, None)
    stored = await record(runtime, "evt-unknown-type")
    assert stored is not None and stored.status is ProcessStatus.SKIPPED
    assert stored.error == "unknown event type entity.renamed"
    assert stored.payload == event["payload"]
    # skipped is final: a redelivery is a duplicate
    assert (await (await post(client, event)).get_json())["data"]["status"] == "duplicate"


async def test_an_unknown_market_is_recorded_as_failed(client: Any, runtime: Runtime) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    response = await post(client, approval_event("evt-nomarket", "no-such-market"))
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["status"] == "failed"
    assert data["error"] == "not_found: market no-such-market not found"
    await _assert_unchanged(runtime, before, market_id, None)
    stored = await record(runtime, "evt-nomarket")
    assert stored is not None and stored.status is ProcessStatus.FAILED
    assert stored.error == data["error"]


async def test_a_market_that_is_not_pending_is_recorded_as_skipped(
    client: Any, runtime: Runtime
) -> None:
    market_id = await register(client, runtime)
    first = approval_event("evt-reject-first", market_id, decision="reject", reason="no")
    assert (await (await post(client, first)).get_json())["data"]["status"] == "success"
    before = await snapshot(runtime)
    response = await post(client, approval_event("evt-too-late", market_id))
    assert response.status_code == 200
    data = (await response.get_json())["data"]
    assert data["status"] == "skipped"
    assert data["error"] == "illegal_transition: cannot approve a market whose status is rejected"
    assert await snapshot(runtime) == before
    stored = await record(runtime, "evt-too-late")
    assert stored is not None and stored.status is ProcessStatus.SKIPPED


# -- SNS ---------------------------------------------------------------------------------------


async def post_sns(client: Any, envelope: dict[str, Any], *, header: bool = True) -> Any:
    headers = {"Content-Type": "text/plain; charset=UTF-8"}
    if header:
        headers["x-amz-sns-message-type"] = envelope["Type"]
    return await client.post(URL, data=json.dumps(envelope).encode(), headers=headers)


@pytest.mark.parametrize("version", ["1", "2"])
async def test_an_sns_notification_is_verified_and_processed(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway, version: str
) -> None:
    market_id = await register(client, runtime)
    event = approval_event(f"evt-sns-v{version}", market_id)
    envelope = signer.envelope(message=event, version=version, subject="approval")
    response = await post_sns(client, envelope)
    assert response.status_code == 200, await response.get_data()
    data = (await response.get_json())["data"]
    assert data["status"] == "success" and data["topicArn"] == TOPIC_ARN
    assert data["snsMessageId"] == envelope["MessageId"]
    stored = await record(runtime, f"evt-sns-v{version}")
    assert stored is not None and stored.source == "sns"
    assert (await market(runtime, market_id)).approved_by == "core-admin-1"


async def test_sns_is_recognised_without_its_header(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    envelope = signer.envelope(message=approval_event("evt-sns-nohdr", market_id))
    response = await post_sns(client, envelope, header=False)
    assert (await response.get_json())["data"]["status"] == "success"


async def test_an_sns_duplicate_does_nothing(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    event = approval_event("evt-sns-dup", market_id)
    assert (await (await post_sns(client, signer.envelope(message=event))).get_json())["data"][
        "status"
    ] == "success"
    # SNS redelivers; the Core may also send it directly: both are duplicates
    again = await post_sns(client, signer.envelope(message=event, version="2"))
    assert (await again.get_json())["data"]["status"] == "duplicate"
    assert (await (await post(client, event)).get_json())["data"]["status"] == "duplicate"


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://s3.amazonaws.com/sns-cert.pem",
        "https://sns.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
        "https://user@sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.txt",
        "ftp://sns.eu-west-1.amazonaws.com/cert.pem",
        "not a url",
    ],
)
async def test_a_certificate_url_off_sns_is_401(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway, cert_url: str
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    sns.publish_certificate(cert_url, signer.pem)  # even if it serves the right certificate
    envelope = signer.envelope(message=approval_event("evt-certurl", market_id), cert_url=cert_url)
    await error_of(await post_sns(client, envelope), 401, "untrusted_certificate_url")
    assert sns.fetches == 0
    await _assert_unchanged(runtime, before, market_id, "evt-certurl")


async def test_an_http_certificate_url_is_401(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    url = CERT_URL.replace("https://", "http://")
    envelope = signer.envelope(message=approval_event("evt-http", market_id), cert_url=url)
    error = await error_of(await post_sns(client, envelope), 401, "untrusted_certificate_url")
    assert "https" in error["message"]
    assert sns.fetches == 0
    await _assert_unchanged(runtime, before, market_id, "evt-http")


async def test_a_topic_off_the_allow_list_is_403(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    other = "arn:aws:sns:eu-west-1:999999999999:someone-else"
    envelope = signer.envelope(message=approval_event("evt-topic", market_id), topic_arn=other)
    error = await error_of(await post_sns(client, envelope), 403, "topic_not_allowed")
    assert error["details"]["topicArn"] == other
    await _assert_unchanged(runtime, before, market_id, "evt-topic")


@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp", "Subject", "key"])
async def test_a_tampered_sns_message_is_401(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway, field: str
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    envelope = signer.envelope(message=approval_event("evt-sns-tamper", market_id))
    if field == "Message":
        envelope["Message"] = json.dumps(
            approval_event("evt-sns-tamper", market_id, decision="reject", reason="forged")
        )
    elif field == "Subject":
        envelope["Subject"] = "added after signing"
    elif field == "key":
        envelope["Signature"] = SnsSigner().sign(envelope)["Signature"]  # someone else's key
    else:
        envelope[field] = envelope[field] + "0"
    await error_of(await post_sns(client, envelope), 401, "invalid_signature")
    await _assert_unchanged(runtime, before, market_id, "evt-sns-tamper")


async def test_sns_signature_problems_are_401(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    good = signer.envelope(message=approval_event("evt-sns-sig", market_id))
    cases = [
        ({**good, "SignatureVersion": "3"}, "invalid_signature"),
        ({**good, "Signature": "%%% not base64 %%%"}, "invalid_signature"),
        ({k: v for k, v in good.items() if k != "Signature"}, "missing_signature"),
        ({k: v for k, v in good.items() if k != "SigningCertURL"}, "missing_signature"),
    ]
    for envelope, code in cases:
        await error_of(await post_sns(client, envelope), 401, code)
    expired = SnsSigner(
        not_before=datetime.now(UTC) - timedelta(days=60),
        not_after=datetime.now(UTC) - timedelta(days=1),
    )
    expired_url = CERT_URL.replace("test0001", "expired")
    sns.publish_certificate(expired_url, expired.pem)
    envelope = expired.envelope(
        message=approval_event("evt-sns-sig", market_id), cert_url=expired_url
    )
    error = await error_of(await post_sns(client, envelope), 401, "invalid_signature")
    assert "expired" in error["message"]
    await _assert_unchanged(runtime, before, market_id, "evt-sns-sig")


async def test_malformed_sns_envelopes_are_400(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    headers = {"Content-Type": "text/plain", "x-amz-sns-message-type": "Notification"}
    await error_of(await client.post(URL, data=b"{oops", headers=headers), 400, "malformed_json")
    good = signer.envelope(message=approval_event("evt-sns-bad", market_id))
    no_id = {k: v for k, v in good.items() if k != "MessageId"}
    error = await error_of(await post_sns(client, no_id), 400, "malformed_sns_message")
    assert "MessageId" in error["details"]["fields"]
    wrong_type = await post_sns(client, {**good, "Type": "Surprise"}, header=False)
    await error_of(wrong_type, 401, "missing_signature")  # not SNS-looking: the direct form
    mismatch = await client.post(
        URL,
        data=json.dumps(good).encode(),
        headers={"Content-Type": "text/plain", "x-amz-sns-message-type": "UnsubscribeConfirmation"},
    )
    await error_of(mismatch, 400, "malformed_sns_message")
    # a genuine notification whose message is not an event
    not_event = signer.envelope(message="hello")
    await error_of(await post_sns(client, not_event), 400, "malformed_json")
    shapeless = signer.envelope(message={"event_id": "evt-x", "event_type": "market.approved"})
    await error_of(await post_sns(client, shapeless), 400, "malformed_event")
    await _assert_unchanged(runtime, before, market_id, "evt-sns-bad")


async def test_a_subscription_confirmation_is_confirmed_through_the_port(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    before = await snapshot(runtime)
    for version in ("1", "2"):
        envelope = signer.envelope("SubscriptionConfirmation", version=version)
        response = await post_sns(client, envelope)
        assert response.status_code == 200, await response.get_data()
        data = (await response.get_json())["data"]
        assert data == {
            "type": "SubscriptionConfirmation",
            "status": "confirmed",
            "topicArn": TOPIC_ARN,
        }
    assert sns.confirmed == [SUBSCRIBE_URL, SUBSCRIBE_URL]
    assert await snapshot(runtime) == before


async def test_a_confirmation_is_verified_before_anything_is_visited(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    forged = signer.envelope("SubscriptionConfirmation")
    forged["SubscribeURL"] = "https://sns.eu-west-1.amazonaws.com/?Action=Other"
    await error_of(await post_sns(client, forged), 401, "invalid_signature")
    elsewhere = signer.envelope(
        "SubscriptionConfirmation", subscribe_url="https://attacker.example/confirm"
    )
    error = await error_of(await post_sns(client, elsewhere), 400, "malformed_sns_message")
    assert "SubscribeURL" in error["details"]["fields"]
    other_topic = signer.envelope(
        "SubscriptionConfirmation", topic_arn="arn:aws:sns:eu-west-1:1:other"
    )
    await error_of(await post_sns(client, other_topic), 403, "topic_not_allowed")
    assert sns.confirmed == []


async def test_an_unsubscribe_confirmation_is_acknowledged(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    before = await snapshot(runtime)
    response = await post_sns(client, signer.envelope("UnsubscribeConfirmation", version="2"))
    assert response.status_code == 200
    assert (await response.get_json())["data"]["status"] == "acknowledged"
    assert sns.confirmed == []
    assert await snapshot(runtime) == before


async def test_an_unreachable_certificate_is_503(
    client: Any, runtime: Runtime, signer: SnsSigner, sns: MemorySnsGateway
) -> None:
    market_id = await register(client, runtime)
    before = await snapshot(runtime)
    url = CERT_URL.replace("test0001", "missing")
    envelope = signer.envelope(message=approval_event("evt-503", market_id), cert_url=url)
    await error_of(await post_sns(client, envelope), 503, "service_unavailable")
    await _assert_unchanged(runtime, before, market_id, "evt-503")


async def test_webhooks_are_not_served_without_their_dependencies(runtime: Runtime) -> None:
    from adapters.inbound.http.app import create_app

    deps = attrs.evolve(runtime.http_app().config["RWA_DEPS"], webhooks=None)
    async with create_app(deps).test_app() as test_app:
        response = await test_app.test_client().get("/api/v1/webhooks/health")
    assert response.status_code == 404
