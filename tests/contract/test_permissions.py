"""Permissions port contract: every adapter decides the role table the same way."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.outbound.permissions.http import HttpPermissions
from adapters.outbound.permissions.local import LocalPolicyPermissions
from adapters.outbound.permissions.memory import MemoryPermissions
from core.ports.permissions import AuthorizationRequest, Permissions
from core.shared.errors import ServiceUnavailable
from tests.harness.permissions_core import TEST_API_KEY, PermissionsCore


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


class TestHttpPermissions(PermissionsContract):
    """The same contract, over real HTTP to the stand-in Entity Permissions Core."""

    @pytest.fixture(autouse=True)
    async def _core(self, permissions_core: PermissionsCore) -> AsyncIterator[None]:
        self.core = permissions_core
        self.made: list[HttpPermissions] = []
        yield
        for perms in self.made:
            await perms.close()

    def make(self, **kwargs: Any) -> HttpPermissions:
        options: dict[str, Any] = {"api_key": TEST_API_KEY, "timeout_seconds": 2.0}
        options.update(kwargs)
        perms = HttpPermissions(options.pop("base_url", self.core.base_url), **options)
        self.made.append(perms)
        return perms

    async def test_the_request_carries_the_api_key_and_the_documented_body(self) -> None:
        perms = self.make()
        await perms.authorize(
            AuthorizationRequest(
                principal_id="p-9",
                principal_type="user",
                action="market.activate",
                entity_id="entity-3",
                roles=("issuer",),
                resource_owner_id="p-9",
                context={"ip": "127.0.0.1"},
            )
        )
        [recorded] = self.core.requests_to("/api/v1/authorize")
        assert recorded.method == "POST"
        assert recorded.headers["x-api-key"] == TEST_API_KEY
        assert recorded.body == {
            "principalId": "p-9",
            "principalType": "user",
            "entityId": "entity-3",
            "action": "market.activate",
            "context": {"ip": "127.0.0.1", "roles": ["issuer"], "resourceOwnerId": "p-9"},
        }

    async def test_the_cores_own_role_assignment_wins(self) -> None:
        self.core.policy.assignments["p-1"] = ("admin",)
        decision = await self.make().authorize(request("market.approve", "trader"))
        assert decision.allowed and decision.effective_roles == ("admin",)

    async def test_a_denial_by_the_core_carries_its_reasons(self) -> None:
        self.core.policy.denials.add(("p-1", "market.approve"))
        decision = await self.make().authorize(request("market.approve", "admin"))
        assert not decision.allowed
        assert decision.reasons == ("market.approve is denied to p-1 by the Core",)

    async def test_an_answer_inside_a_data_envelope_is_accepted(self) -> None:
        def handler(req: httpx.Request) -> httpx.Response:
            return httpx.Response(
                200, json={"data": {"allowed": True, "reasons": [], "effectiveRoles": ["x"]}}
            )

        perms = self.make(transport=httpx.MockTransport(handler))
        decision = await perms.authorize(request("market.approve"))
        assert decision.allowed and decision.effective_roles == ("x",)

    # -- failing closed ----------------------------------------------------------------------

    async def _assert_unavailable(self, perms: HttpPermissions, why: str) -> None:
        with pytest.raises(ServiceUnavailable, match=why) as caught:
            await perms.authorize(request("market.approve", "admin"))
        assert caught.value.code == "service_unavailable"

    async def test_a_slow_core_times_out(self) -> None:
        self.core.delay_seconds = 1.5
        perms = self.make(timeout_seconds=0.3)
        started = time.monotonic()
        await self._assert_unavailable(perms, "no answer within 0.3s")
        assert time.monotonic() - started < 1.2

    async def test_a_refused_connection(self) -> None:
        self.core.down()
        await self._assert_unavailable(self.make(), "ConnectError")
        with pytest.raises(ServiceUnavailable):
            await self.make().ping()

    @pytest.mark.parametrize("status", [500, 502, 503])
    async def test_a_5xx(self, status: int) -> None:
        self.core.fail_status = status
        await self._assert_unavailable(self.make(), f"HTTP {status}")

    async def test_a_wrong_api_key_is_unavailable_not_allowed(self) -> None:
        await self._assert_unavailable(self.make(api_key="wrong"), "HTTP 401")

    async def test_an_answer_that_is_not_json(self) -> None:
        self.core.malformed = True
        await self._assert_unavailable(self.make(), "not JSON")

    @pytest.mark.parametrize(
        "answer",
        [
            {"reasons": [], "effectiveRoles": []},
            {"allowed": "yes", "reasons": [], "effectiveRoles": []},
            {"allowed": True, "reasons": "fine", "effectiveRoles": []},
            {"allowed": True, "reasons": [], "effectiveRoles": [1]},
            ["allowed"],
        ],
    )
    async def test_a_malformed_answer_never_allows(self, answer: Any) -> None:
        def handler(req: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json=answer)

        await self._assert_unavailable(
            self.make(transport=httpx.MockTransport(handler)), "malformed answer"
        )

    async def test_recovers_when_the_core_comes_back(self) -> None:
        perms = self.make()
        self.core.down()
        await self._assert_unavailable(perms, "ConnectError")
        self.core.up()
        assert (await perms.authorize(request("market.approve", "admin"))).allowed
        await perms.ping()
        assert self.core.requests_to("/api/v1/health")[-1].headers["x-api-key"] == TEST_API_KEY
