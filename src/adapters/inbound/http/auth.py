"""Bearer tokens: HS256 JWTs carrying ``sub``, ``roles``, optional ``entity_id`` and ``exp``."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import jwt
from quart import request

from core.shared.events import Actor

KNOWN_ROLES = ("admin", "issuer", "trader")


class AuthError(Exception):
    """401: the caller is not authenticated."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


MAX_ID_LENGTH = 256  # sub and entity_id
DEFAULT_MAX_TTL_SECONDS = 86_400


def _identifier_problem(value: object) -> str | None:
    """Why a ``sub`` or ``entity_id`` claim is unusable (None when it is fine)."""
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return "must not be blank"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    if not value.isprintable():  # control, format (zero-width, bidi) and separator characters
        return "must not contain control or invisible characters"
    return None


def _numeric_date(value: object) -> bool:
    """A JWT NumericDate: a JSON number (not a bool, not a digit string), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class TokenIssuer:
    """Signs and verifies the service's bearer tokens with one secret.

    ``verify`` accepts a token only when it is signed with the secret (HS256), its ``exp`` is
    a number no further ahead than ``max_ttl_seconds``, its ``sub`` is a printable, non-blank
    string of at most 256 characters, and, when configured, its ``iss`` and ``aud`` match.
    """

    def __init__(
        self,
        secret: str,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        max_ttl_seconds: int = DEFAULT_MAX_TTL_SECONDS,
        leeway_seconds: int = 10,
    ) -> None:
        if not secret:
            raise ValueError("the JWT secret must not be empty")
        if max_ttl_seconds <= 0:
            raise ValueError("the longest token lifetime must be positive")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.max_ttl_seconds = max_ttl_seconds
        self._leeway = leeway_seconds

    def issue(
        self,
        sub: str,
        roles: Sequence[str],
        *,
        entity_id: str | None = None,
        ttl_seconds: int | None = None,
    ) -> str:
        ttl = self.max_ttl_seconds if ttl_seconds is None else ttl_seconds
        if not 0 < ttl <= self.max_ttl_seconds:
            raise ValueError(f"the token lifetime must be 1 to {self.max_ttl_seconds} seconds")
        problem = _identifier_problem(sub)
        if problem is not None:
            raise ValueError(f"sub {problem}")
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": sub,
            "roles": list(roles),
            "iat": now,
            "exp": now + ttl,
        }
        if entity_id:
            claims["entity_id"] = entity_id
        if self._issuer is not None:
            claims["iss"] = self._issuer
        if self._audience is not None:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _check_dates(self, claims: object) -> None:
        if not isinstance(claims, dict):
            raise AuthError("invalid_token", "the token's claims must be a JSON object")
        exp = claims.get("exp")
        if not _numeric_date(exp):
            raise AuthError("invalid_token", "the token's exp claim must be a number")
        assert isinstance(exp, int | float)
        if exp > time.time() + self.max_ttl_seconds + self._leeway:
            raise AuthError(
                "invalid_token",
                f"the token's exp claim is more than {self.max_ttl_seconds} seconds ahead",
            )
        for name in ("iat", "nbf"):
            if name in claims and not _numeric_date(claims[name]):
                raise AuthError("invalid_token", f"the token's {name} claim must be a number")

    def verify(self, token: str) -> Actor:
        required = ["sub", "exp"]
        if self._issuer is not None:
            required.append("iss")
        if self._audience is not None:
            required.append("aud")
        try:
            # the claims' types first: pyjwt would take a digit string or a bool for a date
            self._check_dates(jwt.decode(token, options={"verify_signature": False}))
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": required, "verify_aud": self._audience is not None},
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token_expired", "the bearer token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("invalid_token", f"the bearer token is invalid: {exc}") from exc
        sub = claims.get("sub")
        problem = _identifier_problem(sub)
        if problem is not None:
            raise AuthError("invalid_token", f"the token's sub claim {problem}")
        assert isinstance(sub, str)
        roles = claims.get("roles", [])
        entity_id = claims.get("entity_id")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthError("invalid_token", "the token's roles claim must be a list of strings")
        if entity_id is not None:
            problem = _identifier_problem(entity_id)
            if problem is not None:
                raise AuthError("invalid_token", f"the token's entity_id claim {problem}")
            assert isinstance(entity_id, str)
        return Actor(id=sub, type="user", roles=tuple(roles), entity_id=entity_id)


def bearer_actor(issuer: TokenIssuer) -> Actor:
    """The actor of the current request, or ``AuthError``."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise AuthError("unauthenticated", "an Authorization: Bearer <token> header is required")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("invalid_token", "the Authorization header must be 'Bearer <token>'")
    return issuer.verify(token.strip())
