"""Permissions port contract: every adapter decides the role table the same way."""

from __future__ import annotations

import pytest

from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.permissions.memory import MemoryPermissions
from core.ports.permissions import AuthorizationRequest, Permissions


def request(action: str, *roles: str, owner: str | None = None) -> AuthorizationRequest:
    return AuthorizationRequest(
        principal_id="p-1",
        principal_type="user",
        action=action,
        roles=roles,
        resource_owner_id=owner,
    )


class PermissionsContract:
    """Mixin: subclasses provide ``make()``."""

    def make(self) -> Permissions:
        raise NotImplementedError

    @pytest.mark.parametrize(
        "action",
        ["market.approve", "market.reject", "market.pause", "market.resume", "market.archive"],
    )
    async def test_admin_may_decide_and_run_the_lifecycle(self, action: str) -> None:
        decision = await self.make().authorize(request(action, "admin"))
        assert decision.allowed
        assert decision.effective_roles == ("admin",)

    async def test_issuer_may_register_but_not_approve(self) -> None:
        perms = self.make()
        assert (await perms.authorize(request("market.register", "issuer"))).allowed
        refused = await perms.authorize(request("market.approve", "issuer"))
        assert not refused.allowed
        assert any("market.approve" in r for r in refused.reasons)

    async def test_issuer_activates_only_its_own_market(self) -> None:
        perms = self.make()
        assert (await perms.authorize(request("market.activate", "issuer", owner="p-1"))).allowed
        other = await perms.authorize(request("market.activate", "issuer", owner="p-2"))
        assert not other.allowed
        assert other.reasons

    async def test_trader_submits_orders_but_cannot_register(self) -> None:
        perms = self.make()
        assert (await perms.authorize(request("order.submit", "trader"))).allowed
        assert not (await perms.authorize(request("market.register", "trader"))).allowed

    async def test_no_role_is_refused_with_a_reason(self) -> None:
        decision = await self.make().authorize(request("market.register"))
        assert not decision.allowed
        assert decision.effective_roles == ()
        assert any("no known role" in r for r in decision.reasons)

    async def test_unknown_roles_are_ignored(self) -> None:
        decision = await self.make().authorize(request("market.approve", "superuser", "issuer"))
        assert not decision.allowed
        assert decision.effective_roles == ("issuer",)

    async def test_ping_answers(self) -> None:
        await self.make().ping()


class TestLocalPolicy(PermissionsContract):
    def make(self) -> Permissions:
        return LocalPolicyPermissions()


class TestMemoryPermissions(PermissionsContract):
    def make(self) -> Permissions:
        return MemoryPermissions()

    async def test_explicit_denial_beats_a_role(self) -> None:
        perms = MemoryPermissions()
        perms.deny("p-1", "market.approve")
        decision = await perms.authorize(request("market.approve", "admin"))
        assert not decision.allowed
        assert "explicitly denied" in decision.reasons[0]

    async def test_explicit_grant_without_a_role(self) -> None:
        perms = MemoryPermissions()
        perms.grant("p-1", "market.approve")
        assert (await perms.authorize(request("market.approve"))).allowed
