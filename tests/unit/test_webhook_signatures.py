"""The webhook's authenticity checks on their own: HMAC headers and the SNS canonical string."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from adapters.inbound.webhooks.signatures import SignatureError, parse_header, sign, verify
from adapters.inbound.webhooks.sns import (
    MalformedSnsMessage,
    parse,
    sns_url_problem,
    string_to_sign,
)
from tests.harness.permissions_core import signature_header
from tests.harness.sns import SnsSigner

BODY = b'{"event_id":"evt-1","event_type":"market.approved"}'
NOW = 1_800_000_000


def code_of(header: str | None, secrets: tuple[str, ...] = ("s1",), now: float = NOW) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(header, BODY, secrets, now=now)
    return caught.value.code


def test_the_signature_is_hmac_sha256_of_t_dot_body() -> None:
    expected = hmac.new(b"s1", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s1", NOW) == f"t={NOW},v1={expected}"
    assert signature_header(BODY, "s1", NOW) == sign(BODY, "s1", NOW)  # the stand-in agrees


def test_a_good_signature() -> None:
    assert verify(sign(BODY, "s1", NOW), BODY, ("s1",), now=NOW) == NOW


def test_a_wrong_secret() -> None:
    assert code_of(sign(BODY, "other", NOW)) == "invalid_signature"


def test_every_configured_secret_is_tried_during_rotation() -> None:
    secrets = ("new", "old")
    assert verify(sign(BODY, "old", NOW), BODY, secrets, now=NOW) == NOW
    assert verify(sign(BODY, "new", NOW), BODY, secrets, now=NOW) == NOW
    assert code_of(sign(BODY, "older", NOW), secrets) == "invalid_signature"


def test_one_matching_signature_among_several_is_enough() -> None:
    good = sign(BODY, "s1", NOW).split("v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v0=legacy,v1={good.upper()}"
    assert verify(header, BODY, ("s1",), now=NOW) == NOW


def test_a_changed_body_or_timestamp_fails() -> None:
    header = sign(BODY, "s1", NOW)
    with pytest.raises(SignatureError):
        verify(header, BODY + b" ", ("s1",), now=NOW)
    forged = header.replace(f"t={NOW}", f"t={NOW + 1}")
    assert code_of(forged) == "invalid_signature"


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_the_tolerance_is_300_seconds_both_ways(offset: int, ok: bool) -> None:
    header = sign(BODY, "s1", NOW + offset)
    if ok:
        assert verify(header, BODY, ("s1",), now=NOW) == NOW + offset
    else:
        assert code_of(header) == "stale_signature"


def test_a_custom_tolerance() -> None:
    with pytest.raises(SignatureError, match="10s"):
        verify(sign(BODY, "s1", NOW - 11), BODY, ("s1",), now=NOW, tolerance_seconds=10)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header(header: str | None) -> None:
    assert code_of(header) == "missing_signature"


@pytest.mark.parametrize(
    "header",
    [
        "sha256=abc",
        f"t={NOW}",
        "v1=" + "a" * 64,
        f"t=-{NOW},v1=" + "a" * 64,
        f"t={NOW}.5,v1=" + "a" * 64,
        f"t={NOW},t={NOW},v1=" + "a" * 64,
        f"t={NOW},v1=" + "g" * 64,
        f"t={NOW},v1=" + "a" * 65,
        f"t={NOW},v1",
        "t=" + "9" * 13 + ",v1=" + "a" * 64,
        f"t={NOW},v1=" + "a" * 64 + "," * 3000,
    ],
)
def test_malformed_headers(header: str) -> None:
    assert code_of(header) == "invalid_signature"


def test_parse_header() -> None:
    assert parse_header(f" t={NOW} , v1={'A' * 64}") == (NOW, ["a" * 64])


# -- SNS -------------------------------------------------------------------------------------


def test_the_canonical_string_of_a_notification() -> None:
    message = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:t",
        "Message": "hello",
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "UnsubscribeURL": "https://x",
        "Signature": "ignored",
    }
    assert string_to_sign(message) == (
        b"Message\nhello\nMessageId\nm-1\nTimestamp\n2026-01-01T00:00:00.000Z\n"
        b"TopicArn\narn:t\nType\nNotification\n"
    )
    with_subject = {**message, "Subject": "s"}
    assert b"MessageId\nm-1\nSubject\ns\nTimestamp" in string_to_sign(with_subject)


def test_the_canonical_string_of_a_confirmation() -> None:
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "m-2",
        "Token": "tok",
        "TopicArn": "arn:t",
        "Message": "confirm",
        "SubscribeURL": "https://sub",
        "Timestamp": "ts",
        "Subject": "never signed for confirmations",
    }
    assert string_to_sign(message) == (
        b"Message\nconfirm\nMessageId\nm-2\nSubscribeURL\nhttps://sub\nTimestamp\nts\n"
        b"Token\ntok\nTopicArn\narn:t\nType\nSubscriptionConfirmation\n"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem", None),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem", None),
        ("https://SNS.US-EAST-1.AMAZONAWS.COM/x.pem", None),
        ("http://sns.us-east-1.amazonaws.com/x.pem", "https"),
        ("https://sns.us-east-1.amazonaws.com.attacker.example/x.pem", "SNS host"),
        ("https://attacker.example/x.pem", "SNS host"),
        ("https://sqs.us-east-1.amazonaws.com/x.pem", "SNS host"),
        ("https://sns.us-east-1.amazonaws.com:444/x.pem", "port"),
        ("https://a:b@sns.us-east-1.amazonaws.com/x.pem", "credentials"),
        ("https://sns.us-east-1.amazonaws.com/x.crt", ".pem"),
        ("https://[::1/x.pem", "not a URL"),
    ],
)
def test_certificate_urls(url: str, problem: str | None) -> None:
    found = sns_url_problem(url, pem=True)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_subscribe_url_need_not_be_a_pem() -> None:
    assert sns_url_problem("https://sns.eu-west-1.amazonaws.com/?Action=X", pem=False) is None


def test_parse_needs_the_fields_it_signs() -> None:
    envelope = SnsSigner(key_size=1024).envelope(message={"a": 1})
    assert parse(envelope).message_id == envelope["MessageId"]
    for name in ("MessageId", "Timestamp", "TopicArn", "Message"):
        broken = {k: v for k, v in envelope.items() if k != name}
        with pytest.raises(MalformedSnsMessage) as caught:
            parse(broken)
        assert name in caught.value.fields
    with pytest.raises(MalformedSnsMessage):
        parse([envelope])
    with pytest.raises(MalformedSnsMessage):
        parse(envelope, header_type="SubscriptionConfirmation")
    with pytest.raises(SignatureError):
        parse({k: v for k, v in envelope.items() if k != "SignatureVersion"})
