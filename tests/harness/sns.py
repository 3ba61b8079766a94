"""Signing SNS messages the way Amazon SNS does, with a key and certificate made here.

``SnsSigner`` holds an RSA key and a self-signed X.509 certificate; ``envelope`` builds a
``Notification`` / ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation`` and signs its
canonical string with SignatureVersion 1 (SHA1withRSA) or 2 (SHA256withRSA).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test0001.pem"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:entity-permissions"
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC_ARN}&Token=tok-1"
)

_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def canonical(message: dict[str, Any]) -> bytes:
    names = _NOTIFICATION if message["Type"] == "Notification" else _CONFIRMATION
    return "".join(
        f"{name}\n{message[name]}\n" for name in names if message.get(name) is not None
    ).encode()


class SnsSigner:
    def __init__(
        self,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key_size: int = 2048,
    ) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(days=1))
            .not_valid_after(not_after or now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical(message), padding.PKCS1v15(), algorithm)
        return {
            **message,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
        }

    def envelope(
        self,
        kind: str = "Notification",
        *,
        message: Any = None,
        version: str = "1",
        topic_arn: str = TOPIC_ARN,
        cert_url: str = CERT_URL,
        subject: str | None = None,
        subscribe_url: str = SUBSCRIBE_URL,
        sent_at: datetime | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": (sent_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SigningCertURL": cert_url,
        }
        if kind == "Notification":
            if subject is not None:
                body["Subject"] = subject
            body["UnsubscribeURL"] = "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
        else:
            body["Token"] = "tok-1"
            body["SubscribeURL"] = subscribe_url
            if not isinstance(message, str):
                body["Message"] = f"You have chosen to subscribe to the topic {topic_arn}."
        return self.sign(body, version)
