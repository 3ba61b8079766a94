"""Test profile: the role table, plus grants and denials that a test or an operator sets live."""

from __future__ import annotations

from adapters.outbound.permissions.role_policy import decide_by_roles
from core.ports.permissions import AuthorizationDecision, AuthorizationRequest, Permissions


class MemoryPermissions(Permissions):
    """Explicit per-principal rules win over roles: a denial always, then a grant."""

    def __init__(self) -> None:
        self._grants: set[tuple[str, str]] = set()
        self._denials: set[tuple[str, str]] = set()
        self.requests: list[AuthorizationRequest] = []

    def grant(self, principal_id: str, action: str) -> None:
        self._denials.discard((principal_id, action))
        self._grants.add((principal_id, action))

    def deny(self, principal_id: str, action: str) -> None:
        self._grants.discard((principal_id, action))
        self._denials.add((principal_id, action))

    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision:
        self.requests.append(request)
        key = (request.principal_id, request.action)
        by_roles = decide_by_roles(request)
        if key in self._denials:
            return AuthorizationDecision(
                allowed=False,
                reasons=(f"{request.action} explicitly denied to {request.principal_id}",),
                effective_roles=by_roles.effective_roles,
            )
        if key in self._grants:
            return AuthorizationDecision(
                allowed=True,
                reasons=(f"{request.action} explicitly granted to {request.principal_id}",),
                effective_roles=by_roles.effective_roles,
            )
        return by_roles
