"""Embedded profile: the roles in the bearer token decide, by a fixed role table."""

from __future__ import annotations

from adapters.outbound.permissions.role_policy import decide_by_roles
from core.ports.permissions import AuthorizationDecision, AuthorizationRequest, Permissions


class LocalPolicyPermissions(Permissions):
    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision:
        return decide_by_roles(request)
