"""Bearer tokens: HS256 JWTs carrying ``sub``, ``roles``, optional ``entity_id`` and ``exp``."""

from __future__ import annotations

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


class TokenIssuer:
    """Signs and verifies the service's bearer tokens with one secret."""

    def __init__(self, secret: str, *, leeway_seconds: int = 10) -> None:
        if not secret:
            raise ValueError("the JWT secret must not be empty")
        self._secret = secret
        self._leeway = leeway_seconds

    def issue(
        self,
        sub: str,
        roles: Sequence[str],
        *,
        entity_id: str | None = None,
        ttl_seconds: int = 86_400,
    ) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": sub,
            "roles": list(roles),
            "iat": now,
            "exp": now + ttl_seconds,
        }
        if entity_id:
            claims["entity_id"] = entity_id
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Actor:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["sub", "exp"]},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token_expired", "the bearer token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("invalid_token", f"the bearer token is invalid: {exc}") from exc
        sub = claims.get("sub")
        roles = claims.get("roles", [])
        entity_id = claims.get("entity_id")
        if not isinstance(sub, str) or not sub:
            raise AuthError("invalid_token", "the token's sub claim must be a non-empty string")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthError("invalid_token", "the token's roles claim must be a list of strings")
        if entity_id is not None and not isinstance(entity_id, str):
            raise AuthError("invalid_token", "the token's entity_id claim must be a string")
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
