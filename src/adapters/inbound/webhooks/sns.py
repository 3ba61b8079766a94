"""Amazon SNS envelopes: parse, check where they claim to come from, verify the signature.

SNS signs a canonical string built from the message's fields, each as ``"Key\\nValue\\n"`` in
a fixed order (``Subject`` only when present):

- ``Notification``: Message, MessageId, Subject, Timestamp, TopicArn, Type
- ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation``:
  Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type

``SignatureVersion`` 1 is RSA PKCS#1 v1.5 with SHA-1, version 2 the same with SHA-256; the
key is in the X.509 certificate at ``SigningCertURL``. That URL must be https on an SNS host
(``sns.<region>.amazonaws.com``, or ``.amazonaws.com.cn``) and name a ``.pem``: otherwise
anyone could sign with a certificate of their own. ``TopicArn`` must be on the allow-list.
The certificate is fetched through the ``SnsGateway`` port (which caches it).

An authentic message is still refused (``StaleSnsMessage``) when its ``Timestamp`` is older
than ``max_age_seconds`` (a replay of a captured message) or further in the future than
``future_tolerance_seconds`` (a clock that cannot be trusted).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.inbound.webhooks.signatures import SignatureError
from core.ports.sns import SnsGateway
from core.shared.errors import ServiceUnavailable
from core.shared.text import escape, text_problem

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
MESSAGE_TYPES = (NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION)
SNS_TYPE_HEADER = "x-amz-sns-message-type"

_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_SIGNATURE_FIELDS = ("Signature", "SignatureVersion", "SigningCertURL")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
# The longest value we accept in each field SNS defines (its own limits, with room).
_FIELD_LIMITS = {
    "Type": 40,
    "MessageId": 100,
    "TopicArn": 300,
    "Subject": 100,
    "Message": 262_144,
    "Timestamp": 40,
    "SignatureVersion": 4,
    "Signature": 2048,
    "SigningCertURL": 2048,
    "SubscribeURL": 2048,
    "Token": 2048,
    "UnsubscribeURL": 2048,
}
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


class MalformedSnsMessage(Exception):
    """Not an SNS envelope we understand (400)."""

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


class StaleSnsMessage(Exception):
    """An authentic message sent too long ago, or dated too far in the future."""

    def __init__(self, message: SnsMessage, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


class TopicNotAllowed(Exception):
    """A genuine-looking message from a topic that is not on the allow-list (403)."""

    def __init__(self, topic_arn: str) -> None:
        super().__init__(f"topic {topic_arn} is not allowed")
        self.topic_arn = topic_arn


@attrs.frozen
class SnsMessage:
    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    subject: str | None = None
    subscribe_url: str | None = None
    token: str | None = None


def looks_like_sns(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("Type") in MESSAGE_TYPES and "Signature" in data


def sns_url_problem(url: str, *, pem: bool) -> str | None:
    """Why ``url`` is not an https URL on an SNS host (None when it is)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme != "https":
        return "must be https"
    if parts.username or parts.password or port not in (None, 443):
        return "must not carry credentials or a port"
    if not SNS_HOST.fullmatch((parts.hostname or "").lower()):
        return "must be on an SNS host (sns.<region>.amazonaws.com)"
    if pem and not parts.path.endswith(".pem"):
        return "must name a .pem certificate"
    return None


def string_to_sign(data: Mapping[str, Any]) -> bytes:
    fields = _NOTIFICATION_FIELDS if data.get("Type") == NOTIFICATION else _CONFIRMATION_FIELDS
    parts: list[str] = []
    for name in fields:
        value = data.get(name)
        if value is None:  # only Subject may be absent; parse() checked the others
            continue
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def parse_timestamp(value: str) -> datetime | None:
    """SNS's ``Timestamp`` (``2026-01-01T12:00:00.000Z``) as an aware UTC time, or None."""
    if len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def parse(data: Any, *, header_type: str | None = None) -> SnsMessage:
    if not isinstance(data, Mapping):
        raise MalformedSnsMessage("the SNS message must be a JSON object")
    kind = data.get("Type")
    if kind not in MESSAGE_TYPES:
        raise MalformedSnsMessage(
            "unknown SNS message type", {"Type": f"must be one of {', '.join(MESSAGE_TYPES)}"}
        )
    if header_type is not None and header_type != kind:
        raise MalformedSnsMessage(
            f"the {SNS_TYPE_HEADER} header says {escape(header_type, max_length=40)} "
            f"but the body is {kind}"
        )
    missing_signature = [f for f in _SIGNATURE_FIELDS if not isinstance(data.get(f), str)]
    if missing_signature:
        raise SignatureError(
            "missing_signature", f"the SNS message lacks {', '.join(missing_signature)}"
        )
    required = _NOTIFICATION_FIELDS if kind == NOTIFICATION else _CONFIRMATION_FIELDS
    fields: dict[str, str] = {}
    for name in required:
        value = data.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            fields[name] = "is required: a string"
    if fields:
        raise MalformedSnsMessage("the SNS message lacks required fields", fields)
    for name, limit in _FIELD_LIMITS.items():
        value = data.get(name)
        if not isinstance(value, str):
            continue
        if len(value) > limit:
            fields[name] = f"at most {limit} characters"
        elif (problem := text_problem(value, multiline=name == "Message")) is not None:
            # SNS signs UTF-8: a lone surrogate cannot be authentic; control characters
            # in the other fields would forge log lines
            fields[name] = problem
    if fields:
        raise MalformedSnsMessage("the SNS message has fields that break the text rules", fields)
    return SnsMessage(
        type=kind,
        message_id=data["MessageId"],
        topic_arn=data["TopicArn"],
        message=data["Message"],
        timestamp=data["Timestamp"],
        subject=data.get("Subject"),
        subscribe_url=data.get("SubscribeURL"),
        token=data.get("Token"),
    )


class SnsVerifier:
    """Checks an SNS envelope's origin, topic and signature."""

    def __init__(
        self,
        gateway: SnsGateway,
        topic_arns: Iterable[str],
        *,
        max_age_seconds: float = 3600.0,
        future_tolerance_seconds: float = 300.0,
    ) -> None:
        self.gateway = gateway
        self.topic_arns = frozenset(arn for arn in topic_arns if arn)
        self.max_age_seconds = max_age_seconds
        self.future_tolerance_seconds = future_tolerance_seconds

    async def verify(
        self, data: Any, *, now: datetime, header_type: str | None = None
    ) -> SnsMessage:
        """The parsed message when it is authentic and allowed.

        Raises ``MalformedSnsMessage`` (400), ``SignatureError`` (401), ``TopicNotAllowed``
        (403), ``ServiceUnavailable`` (503: the certificate could not be fetched) or, for an
        authentic message sent too long ago or dated in the future, ``StaleSnsMessage``.
        """
        message = parse(data, header_type=header_type)
        cert_url = str(data["SigningCertURL"])
        problem = sns_url_problem(cert_url, pem=True)
        if problem is not None:
            raise SignatureError("untrusted_certificate_url", f"SigningCertURL {problem}")
        if message.topic_arn not in self.topic_arns:
            raise TopicNotAllowed(message.topic_arn)
        algorithm = _HASHES.get(str(data["SignatureVersion"]))
        if algorithm is None:
            raise SignatureError(
                "invalid_signature", "SignatureVersion must be 1 (SHA1) or 2 (SHA256)"
            )
        try:
            signature = base64.b64decode(str(data["Signature"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError("invalid_signature", "Signature is not base64") from exc
        public_key = self._public_key(await self.gateway.fetch_certificate(cert_url), now)
        try:
            public_key.verify(signature, string_to_sign(data), padding.PKCS1v15(), algorithm())
        except InvalidSignature as exc:
            raise SignatureError("invalid_signature", "the SNS signature does not match") from exc
        sent_at = parse_timestamp(message.timestamp)
        if sent_at is None:  # signed by SNS, yet not a time: nothing we can trust
            raise MalformedSnsMessage(
                "the SNS message's Timestamp is not a time",
                {"Timestamp": "must be an ISO 8601 UTC time, e.g. 2026-01-01T12:00:00.000Z"},
            )
        age = (now - sent_at).total_seconds()
        if age > self.max_age_seconds:
            raise StaleSnsMessage(
                message,
                f"the SNS message was sent {age:.0f} s ago, more than the "
                f"{self.max_age_seconds:g} s accepted",
            )
        if -age > self.future_tolerance_seconds:
            raise StaleSnsMessage(
                message,
                f"the SNS message is dated {-age:.0f} s in the future, more than the "
                f"{self.future_tolerance_seconds:g} s tolerated",
            )
        return message

    @staticmethod
    def _public_key(pem: bytes, now: datetime) -> rsa.RSAPublicKey:
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise ServiceUnavailable("the SNS signing certificate cannot be read") from exc
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureError("invalid_signature", "the SNS signing certificate has expired")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("invalid_signature", "the SNS signing key is not RSA")
        return key
