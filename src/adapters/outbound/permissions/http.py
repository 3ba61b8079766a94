"""Production profile: ask the Entity Permissions Core over HTTP.

``POST {base}/api/v1/authorize`` with ``X-API-Key`` and

    {"principalId", "principalType", "entityId", "action",
     "context": {..., "roles": [...token roles], "resourceOwnerId"?}}

answers ``{"allowed": bool, "reasons": [str], "effectiveRoles": [str]}`` (bare or inside
``{"data": ...}``). Anything else - timeout, refusal, 5xx, 4xx, a malformed answer - raises
``ServiceUnavailable``: the action is never allowed when the Core cannot say so.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.outbound.permissions.client import (
    AUTHORIZE_PATH,
    DEFAULT_TIMEOUT_SECONDS,
    HEALTH_PATH,
    PermissionsCoreClient,
    unwrap,
)
from core.ports.permissions import AuthorizationDecision, AuthorizationRequest, Permissions


def authorize_body(request: AuthorizationRequest) -> dict[str, Any]:
    context: dict[str, Any] = dict(request.context)
    # The bearer token's roles and the resource's owner travel as context: the Core may use
    # them or rely on its own role assignments.
    context["roles"] = list(request.roles)
    if request.resource_owner_id is not None:
        context["resourceOwnerId"] = request.resource_owner_id
    return {
        "principalId": request.principal_id,
        "principalType": request.principal_type,
        "entityId": request.entity_id,
        "action": request.action,
        "context": context,
    }


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


class HttpPermissions(Permissions):
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = PermissionsCoreClient(
            base_url, api_key=api_key, timeout_seconds=timeout_seconds, transport=transport
        )

    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision:
        answer = unwrap(
            await self.client.request("POST", AUTHORIZE_PATH, json_body=authorize_body(request))
        )
        what = f"POST {AUTHORIZE_PATH}"
        if not isinstance(answer, dict):
            raise self.client.malformed(what, "not a JSON object")
        allowed = answer.get("allowed")
        if not isinstance(allowed, bool):
            raise self.client.malformed(what, "`allowed` is not a boolean")
        reasons = _strings(answer.get("reasons", []))
        roles = _strings(answer.get("effectiveRoles", []))
        if reasons is None or roles is None:
            raise self.client.malformed(what, "`reasons`/`effectiveRoles` are not string lists")
        return AuthorizationDecision(allowed=allowed, reasons=reasons, effective_roles=roles)

    async def ping(self) -> None:
        await self.client.request("GET", HEALTH_PATH)

    async def close(self) -> None:
        await self.client.close()
