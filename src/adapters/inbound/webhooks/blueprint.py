"""``/api/v1/webhooks``: the Entity Permissions Core's events, direct or through SNS.

Statuses: 200 once the event is recorded (``success``, ``failed``, ``skipped``) or was
already (``duplicate``); 400 for a body that is not JSON or not an event; 401 when the
request is not authentic; 403 for an SNS topic off the allow-list; 503 when a dependency
cannot answer (the sender retries). Nothing but the ``processed_events`` row and the
decision itself ever changes, and only on 200.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from adapters.inbound.http.errors import error_response
from adapters.inbound.http.openapi import (
    WebhookEventBody,
    WebhookHeaders,
    WebhookHealthEnvelope,
    WebhookOutcomeEnvelope,
    documented,
)
from adapters.inbound.webhooks import signatures
from adapters.inbound.webhooks.dependencies import WebhookDependencies
from adapters.inbound.webhooks.signatures import SIGNATURE_HEADER, SignatureError
from adapters.inbound.webhooks.sns import (
    NOTIFICATION,
    SNS_TYPE_HEADER,
    SUBSCRIPTION_CONFIRMATION,
    MalformedSnsMessage,
    SnsMessage,
    StaleSnsMessage,
    TopicNotAllowed,
    looks_like_sns,
    sns_url_problem,
)
from core.markets.permission_events import EventOutcome, MalformedEvent
from core.shared.exact_json import check_nesting

log = logging.getLogger(__name__)

webhooks = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")

_MESSAGES = {
    "success": "event applied",
    "failed": "event recorded as failed; a redelivery will try again",
    "skipped": "event recorded as skipped",
    "duplicate": "event already processed; nothing done",
}


def deps() -> WebhookDependencies:
    found: WebhookDependencies | None = current_app.config["RWA_DEPS"].webhooks
    if found is None:  # pragma: no cover - bootstrap always wires it
        raise RuntimeError("webhooks are not configured")
    return found


def _ok(data: Any, message: str | None = None) -> Response:
    body: dict[str, Any] = {"data": data}
    if message:
        body["message"] = message
    return jsonify(body)


def _unauthenticated(error: SignatureError, form: str) -> Response:
    log.warning("webhook refused (%s form): %s", form, error.message)
    return error_response(401, error.code, error.message, {"form": form})


def _malformed_json() -> Response:
    return error_response(400, "malformed_json", "the request body is not valid JSON")


def _loads(raw: bytes) -> Any:
    check_nesting(raw)
    try:
        return json.loads(raw, parse_constant=lambda name: _raise_value_error(name))
    except RecursionError as exc:  # nested deeper than the decoder goes: not an event
        raise ValueError("the JSON is nested too deeply") from exc


def _raise_value_error(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _outcome(outcome: EventOutcome, **extra: Any) -> Response:
    data: dict[str, Any] = {
        "eventId": outcome.event_id,
        "eventType": outcome.event_type,
        "status": outcome.status,
        "marketId": outcome.market_id,
    }
    if outcome.market_status is not None:
        data["marketStatus"] = outcome.market_status
    if outcome.recorded_status is not None:
        data["recordedStatus"] = outcome.recorded_status
    if outcome.error is not None:
        data["error"] = outcome.error
    data.update(extra)
    return _ok(data, _MESSAGES.get(outcome.status))


async def _process(raw: str | bytes, source: str, **extra: Any) -> Response:
    try:
        outcome = await deps().events.handle(raw, source=source)
    except MalformedEvent as exc:
        return error_response(400, exc.code, exc.message, exc.details)
    return _outcome(outcome, **extra)


@webhooks.get("/health")
@documented(WebhookHealthEnvelope)
async def health() -> Response:
    """The webhook receiver is up, and which forms it accepts."""
    d = deps()
    return _ok(
        {
            "status": "ok",
            "forms": ["direct", "sns"],
            "signature": "X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of '{t}.{body}'>",
            "toleranceSeconds": d.tolerance_seconds,
            "snsTopics": len(d.sns.topic_arns),
        }
    )


@webhooks.post("/entity-permissions")
@documented(
    WebhookOutcomeEnvelope,
    errors=[400, 401, 403, 413],
    body=WebhookEventBody,
    headers=WebhookHeaders,
    implied=False,
)
async def entity_permissions() -> Response:
    """An Entity Permissions Core event: a signed direct payload, or an SNS envelope."""
    raw = await request.get_data(True, False, False)  # cache, bytes, no form parsing
    sns_type = request.headers.get(SNS_TYPE_HEADER)
    if sns_type is not None:
        return await _sns(raw, sns_type)
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is None:
        try:
            data = _loads(raw)
        except ValueError:
            data = None
        if looks_like_sns(data):
            return await _sns(raw, None)
    d = deps()
    try:
        signatures.verify(
            signature,
            raw,
            d.secrets,
            now=d.clock.now().timestamp(),
            tolerance_seconds=d.tolerance_seconds,
        )
    except SignatureError as exc:
        return _unauthenticated(exc, "direct")
    return await _process(raw, "webhook")


async def _sns(raw: bytes, header_type: str | None) -> Response:
    try:
        data = _loads(raw)
    except ValueError:
        return _malformed_json()
    d = deps()
    try:
        message = await d.sns.verify(data, now=d.clock.now(), header_type=header_type)
    except MalformedSnsMessage as exc:
        details = {"fields": exc.fields} if exc.fields else None
        return error_response(400, "malformed_sns_message", exc.message, details)
    except SignatureError as exc:
        return _unauthenticated(exc, "sns")
    except StaleSnsMessage as exc:
        return await _stale(exc)
    except TopicNotAllowed as exc:
        log.warning("SNS message from a topic off the allow-list: %s", exc.topic_arn)
        return error_response(
            403, "topic_not_allowed", str(exc), {"topicArn": exc.topic_arn, "form": "sns"}
        )
    if message.type == NOTIFICATION:
        return await _process(
            message.message, "sns", snsMessageId=message.message_id, topicArn=message.topic_arn
        )
    if message.type == SUBSCRIPTION_CONFIRMATION:
        return await _confirm(message)
    log.info("SNS unsubscribed us from %s", message.topic_arn)
    return _ok(
        {"type": message.type, "status": "acknowledged", "topicArn": message.topic_arn},
        "unsubscribe confirmation acknowledged; nothing done",
    )


async def _stale(stale: StaleSnsMessage) -> Response:
    """An authentic SNS message too old (a replay) or dated in the future: never applied. A
    notification's event is recorded as failed and answered 200 (SNS stops redelivering a
    message that can only get older); anything else is refused with 400."""
    message = stale.message
    log.warning(
        "SNS message %s from %s refused: %s", message.message_id, message.topic_arn, stale.reason
    )
    if message.type != NOTIFICATION:
        return error_response(
            400,
            "stale_sns_message",
            stale.reason,
            {"form": "sns", "timestamp": message.timestamp},
        )
    try:
        outcome = await deps().events.refuse(message.message, source="sns", error=stale.reason)
    except MalformedEvent as exc:
        return error_response(400, exc.code, exc.message, exc.details)
    return _outcome(outcome, snsMessageId=message.message_id, topicArn=message.topic_arn)


async def _confirm(message: SnsMessage) -> Response:
    url = message.subscribe_url or ""
    problem = sns_url_problem(url, pem=False)
    if problem is not None:
        return error_response(
            400,
            "malformed_sns_message",
            f"SubscribeURL {problem}",
            {"fields": {"SubscribeURL": problem}},
        )
    await deps().sns.gateway.confirm_subscription(url)
    log.info("SNS subscription to %s confirmed", message.topic_arn)
    return _ok(
        {"type": message.type, "status": "confirmed", "topicArn": message.topic_arn},
        "subscription confirmed",
    )
