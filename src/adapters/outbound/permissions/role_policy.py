"""The local policies decide by the role table of ``core.shared.roles``."""

from __future__ import annotations

from core.ports.permissions import AuthorizationDecision, AuthorizationRequest
from core.shared.roles import OWNER_ONLY, ROLE_ACTIONS

__all__ = ["OWNER_ONLY", "ROLE_ACTIONS", "decide_by_roles"]


def decide_by_roles(request: AuthorizationRequest) -> AuthorizationDecision:
    """Allow when one of the principal's roles grants the action (and owns it where needed)."""
    known = tuple(r for r in request.roles if r in ROLE_ACTIONS)
    reasons: list[str] = []
    for role in known:
        if request.action not in ROLE_ACTIONS[role]:
            continue
        if (role, request.action) in OWNER_ONLY and request.resource_owner_id not in (
            None,
            request.principal_id,
        ):
            reasons.append(f"role {role} may {request.action} only its own markets")
            continue
        return AuthorizationDecision(
            allowed=True, reasons=(f"granted by role {role}",), effective_roles=known
        )
    if not known:
        reasons.append("the principal has no known role")
    reasons.append(f"no role of the principal grants {request.action}")
    return AuthorizationDecision(allowed=False, reasons=tuple(reasons), effective_roles=known)
