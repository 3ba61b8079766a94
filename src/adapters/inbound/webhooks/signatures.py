"""Authenticity of the direct webhook form: ``X-Signature: t=<unix>,v1=<hex>``.

``v1`` is the hex HMAC-SHA256, keyed with one of the configured secrets, of the bytes
``"{t}." + raw body``. Several secrets are tried (rotation: the old and the new one are
both valid for a while), each compared in constant time; ``t`` must be within the tolerance
of our clock, in either direction, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_MAX_HEADER = 2048


class SignatureError(Exception):
    """The request is not authentic (401). ``code`` says why, for the error envelope."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The header value a sender puts on ``body`` (used by tests and tools)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def parse_header(header: str) -> tuple[int, list[str]]:
    """``(t, [v1 signatures])``; ``SignatureError`` when the header is not of that form."""
    if len(header) > _MAX_HEADER:
        raise SignatureError("invalid_signature", "the X-Signature header is too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("invalid_signature", "X-Signature must be t=<unix>,v1=<hex>")
        if key == "t":
            if timestamp is not None or not value.isdigit() or len(value) > 12:
                raise SignatureError("invalid_signature", "X-Signature needs one numeric t=")
            timestamp = int(value)
        elif key == "v1":
            if not _HEX64.match(value):
                raise SignatureError("invalid_signature", "v1 must be 64 hex digits")
            signatures.append(value.lower())
        # other schemes (v0, v2, ...) are ignored, so senders can add one during a migration
    if timestamp is None or not signatures:
        raise SignatureError("invalid_signature", "X-Signature must be t=<unix>,v1=<hex>")
    return timestamp, signatures


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Return the signed timestamp if some secret signed ``body``; ``SignatureError`` if not."""
    if not header or not header.strip():
        raise SignatureError("missing_signature", "the X-Signature header is required")
    timestamp, signatures = parse_header(header)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(
            "stale_signature",
            f"the signature timestamp is more than {tolerance_seconds}s from our clock",
        )
    matched = False
    for secret in secrets:
        expected = _digest(secret, timestamp, body)
        for candidate in signatures:
            # no early exit: every comparison runs, each in constant time
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("invalid_signature", "the signature does not match")
    return timestamp
