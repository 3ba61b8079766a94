"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import time

from quart import Blueprint, Response, current_app, jsonify

from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.openapi import HealthEnvelope, ReadinessEnvelope, documented

health = Blueprint("health", __name__)

CHECK_TIMEOUT_SECONDS = 3.0


@health.get("/healthz")
@documented(HealthEnvelope, api=False)
async def healthz() -> Response:
    """The process is alive."""
    return jsonify({"data": {"status": "ok"}})


@health.get("/readyz")
@documented(ReadinessEnvelope, errors=[503], api=False)
async def readyz() -> Response:
    """Storage, bus, chain and jobs are reachable: 200, else 503 naming what is not."""
    deps: HttpDependencies = current_app.config["RWA_DEPS"]

    async def run(name: str) -> tuple[str, dict[str, object]]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(deps.readiness[name](), timeout=CHECK_TIMEOUT_SECONDS)
            outcome: dict[str, object] = {"ok": True}
        except Exception as exc:  # report, never raise: this endpoint answers for everything
            outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        outcome["ms"] = round((time.perf_counter() - started) * 1000)
        return name, outcome

    results = dict(await asyncio.gather(*(run(n) for n in deps.readiness)))
    ready = all(bool(r["ok"]) for r in results.values())
    if ready:
        return jsonify({"data": {"status": "ready", "checks": results}})
    response = jsonify(
        {
            "error": {
                "code": "not_ready",
                "message": "a dependency is unreachable",
                "details": {"checks": results},
            }
        }
    )
    response.status_code = 503
    return response
