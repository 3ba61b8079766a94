"""Schemathesis against the real server: every operation of ``/openapi.json`` is fuzzed with a
bounded number of generated requests (no token, a trader's, an issuer's or an admin's, chosen
by a hook) and each answer must be no 5xx, a documented status, a documented content type and
match the documented schema. The registration example of the document must register.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.inbound.http.openapi import SEEDS_REGISTRATION as REGISTER_EXAMPLE
from tests.e2e.server import RwaServer, start_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Bounded: the whole module stays under ~2 minutes on 2 cores.
MAX_EXAMPLES = int(os.environ.get("RWA_SCHEMATHESIS_EXAMPLES", "40"))
ROLES: list[str | None] = [None, "trader", "issuer", "admin"]
REGISTER = "/api/v1/markets/register"


@pytest.fixture(scope="module")
def conformance_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RwaServer]:
    # No request limit: a 429 would be documented, but would hide every other answer.
    server = start_server(
        tmp_path_factory.mktemp("rwa-schemathesis"), env={"RWA_HTTP_RATE_LIMIT": "0"}
    )
    try:
        yield server
    finally:
        server.stop()


def _config(tmp: Path) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": 20261123,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "database": "none",
                # Generated text may hold any character; the API must answer it with a 4xx.
                "allow-x00": True,
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        },
        base_dir=str(tmp),
    )


@pytest.fixture(scope="module")
def api_schema(conformance_server: RwaServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return schemathesis.openapi.from_url(
        f"{conformance_server.base_url}/openapi.json",
        config=_config(tmp_path_factory.mktemp("schemathesis-config")),
    )


def bearer_hook(server: RwaServer) -> Callable[[Case, str | None], Case]:
    """The header hook: a secured operation is called with no token or with one role's."""
    tokens = {role: server.token(f"st-{role}", role) for role in ROLES if role is not None}

    def apply(case: Case, role: str | None) -> Case:
        secured = bool(case.operation.definition.raw.get("security"))
        if secured and role is not None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tokens[role]}"}
        return case

    return apply


def _fuzz(operation: Any, mode: GenerationMode, hook: Callable[[Case, str | None], Case]) -> str:
    """Run ``MAX_EXAMPLES`` generated requests; the first failure's report, or ''."""
    found: list[str] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(ROLES))
    def run(case: Case, role: str | None) -> None:
        if found:
            return
        try:
            hook(case, role).call_and_validate(checks=CHECKS, timeout=30)
        except (FailureGroup, Exception) as exc:  # the checks' failures, or a transport error
            found.append(f"{operation.label} ({mode.value}, role {role}):\n{exc}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        return ""  # nothing to get wrong: no parameters and no body
    return found[0] if found else ""


def test_every_operation_conforms_to_the_document(
    api_schema: Any, conformance_server: RwaServer
) -> None:
    hook = bearer_hook(conformance_server)
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            report = _fuzz(operation, mode, hook)
            if report:
                failures.append(report)
    assert conformance_server.alive()
    assert not failures, "\n\n".join(failures)


def test_the_documented_registration_example_registers(
    api_schema: Any, conformance_server: RwaServer
) -> None:
    operation = api_schema[REGISTER]["POST"]
    media = operation.definition.raw["requestBody"]["content"]["application/json"]
    examples = media.get("examples") or {}
    assert examples, "the registration body has no example in /openapi.json"
    issuer = {"Authorization": f"Bearer {conformance_server.token('issuer-uuid', 'issuer')}"}
    for number, (name, example) in enumerate(examples.items()):
        body = dict(example["value"])
        body["tokenSymbol"] = f"EXMPL{number}"  # the fuzzing may have registered the example
        case = operation.Case(body=body, headers=issuer, media_type="application/json")
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == 201, (name, response.text)
        data = response.json()["data"]
        assert data["market"]["status"] == "pending_approval", data


def _call(api_schema: Any, method: str, path: str, **kwargs: Any) -> Any:
    """One request through schemathesis, validated by the same checks as the fuzzing."""
    operation = api_schema[path][method]
    if "body" in kwargs:
        kwargs.setdefault("media_type", "application/json")
    return operation.Case(**kwargs).call_and_validate(checks=CHECKS)


def test_a_market_through_its_lifecycle_answers_as_documented(
    api_schema: Any, conformance_server: RwaServer
) -> None:
    """Fuzzed ids are unknown (404); this walks one real market, so each 2xx answer of the
    market operations is checked against its documented schema."""
    issuer = {"Authorization": f"Bearer {conformance_server.token('issuer-uuid', 'issuer')}"}
    admin = {"Authorization": f"Bearer {conformance_server.token('st-admin', 'admin')}"}
    body = {**REGISTER_EXAMPLE, "tokenSymbol": "WALK"}
    created = _call(api_schema, "POST", REGISTER, body=body, headers=issuer)
    assert created.status_code == 201, created.text
    market_id = created.json()["data"]["market"]["id"]
    ids = {"market_id": market_id}
    approved = _call(
        api_schema,
        "POST",
        "/api/v1/markets/{market_id}/approve",
        path_parameters=ids,
        body={"decision": "approve"},
        headers=admin,
    )
    assert approved.status_code == 200, approved.text
    deadline = time.monotonic() + 90
    while True:
        market = _call(api_schema, "GET", "/api/v1/markets/{market_id}", path_parameters=ids)
        status = market.json()["data"]["status"]
        if status == "active" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == "active", market.text
    for path in ("details", "events", "onchain", "reached/{status}"):
        params = {**ids, "status": "active"} if "{status}" in path else ids
        answer = _call(
            api_schema, "GET", f"/api/v1/markets/{{market_id}}/{path}", path_parameters=params
        )
        assert answer.status_code == 200, (path, answer.text)
    listing = _call(api_schema, "GET", "/api/v1/markets", query={"limit": 1})
    assert listing.status_code == 200 and listing.json()["pagination"]["limit"] == 1
    for action in ("pause", "resume", "archive"):
        answer = _call(
            api_schema,
            "POST",
            f"/api/v1/markets/{{market_id}}/{action}",
            path_parameters=ids,
            body={"reason": f"{action} by the conformance test"},
            headers=admin,
        )
        assert answer.status_code == 200, (action, answer.text)
    again = _call(
        api_schema, "POST", "/api/v1/markets/{market_id}/pause", path_parameters=ids, headers=admin
    )
    assert again.status_code == 409, again.text


def test_the_document_has_no_undocumented_operation(api_schema: Any) -> None:
    for result in api_schema.get_all_operations():
        operation = result.ok()
        raw = operation.definition.raw
        assert raw["responses"], operation.label
        statuses = {int(code) for code in raw["responses"]}
        assert any(200 <= code < 300 for code in statuses), operation.label
        if operation.path.startswith("/api/"):
            assert {429, 503} <= statuses, operation.label
        if raw.get("security"):
            assert {401, 403} <= statuses, operation.label
        if "requestBody" in raw:
            assert 400 in statuses and 413 in statuses, operation.label
