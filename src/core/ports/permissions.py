"""Permissions port: may this principal perform this action on this entity?"""

from __future__ import annotations

import abc

import attrs


@attrs.frozen
class AuthorizationRequest:
    principal_id: str
    principal_type: str
    action: str
    entity_id: str | None = None
    roles: tuple[str, ...] = ()
    resource_owner_id: str | None = None
    context: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class AuthorizationDecision:
    allowed: bool
    reasons: tuple[str, ...] = ()
    effective_roles: tuple[str, ...] = ()


class Permissions(abc.ABC):
    """Decides actions. Raises ``ServiceUnavailable`` when it cannot decide (fail closed)."""

    @abc.abstractmethod
    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision: ...

    async def ping(self) -> None:  # noqa: B027 - local policies are always reachable
        """Raise if the decision service cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
