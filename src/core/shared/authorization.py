"""Asking the permissions port before acting, the same way for every use case."""

from __future__ import annotations

from core.ports.permissions import AuthorizationRequest, Permissions
from core.shared.errors import PermissionDenied
from core.shared.events import Actor

# Internal actors whose authority was established elsewhere (a worker acting on an approved
# job; the Entity Permissions Core whose signed webhook *is* the decision).
TRUSTED_ACTOR_TYPES = frozenset({"system", "permissions_core"})


class Authorizer:
    def __init__(self, permissions: Permissions) -> None:
        self._permissions = permissions

    async def require(
        self,
        actor: Actor,
        action: str,
        *,
        entity_id: str | None = None,
        owner_id: str | None = None,
        context: dict[str, str] | None = None,
    ) -> None:
        """Return if ``actor`` may perform ``action``; raise ``PermissionDenied`` otherwise."""
        if actor.type in TRUSTED_ACTOR_TYPES:
            return
        decision = await self._permissions.authorize(
            AuthorizationRequest(
                principal_id=actor.id,
                principal_type=actor.type,
                action=action,
                entity_id=entity_id if entity_id is not None else actor.entity_id,
                roles=actor.roles,
                resource_owner_id=owner_id,
                context=dict(context or {}),
            )
        )
        if not decision.allowed:
            raise PermissionDenied(action, decision.reasons or ("denied by policy",))
