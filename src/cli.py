"""``rwa-market``: serve, migrate, run job workers and matching engines, and mint development
bearer tokens."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

import bootstrap
from adapters.inbound.http.auth import KNOWN_ROLES, TokenIssuer
from adapters.inbound.reconcile_cli import run_reconcile
from adapters.inbound.ws.compression import decline_permessage_deflate
from core.shared.errors import ChainError, ServiceUnavailable
from gc_tuning import tune_gc
from logs import configure_logging
from settings import ConfigurationError, Settings

log = logging.getLogger("rwa")


def _migrate(settings: Settings) -> None:
    print(bootstrap.migrate(settings))


async def _serve(settings: Settings) -> None:
    runtime = bootstrap.build(settings)
    app = runtime.http_app()
    tune_gc(freeze=settings.gc_freeze, thresholds=settings.gc_thresholds)
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    # hypercorn's loggers propagate to the root handler of logs.configure_logging: client
    # text in the access log (a path with %0A) is escaped like every other record
    config.accesslog = logging.getLogger("hypercorn.access") if settings.access_log else None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 10
    config.websocket_max_message_size = settings.ws_max_message_bytes  # larger: close 1009
    if not settings.ws_compression:  # one deflate per frame per connection: see compression.py
        decline_permessage_deflate()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving profile=%s on http://%s:%s", settings.profile, settings.host, settings.port)

    async def shutdown() -> None:
        await stop.wait()
        runtime.container.ws_gateway().close_connections()  # 1001 now, not after the grace

    await hypercorn_serve(app, config, shutdown_trigger=shutdown)


async def _reconcile(settings: Settings) -> int:
    runtime = bootstrap.build(settings)
    c = runtime.container
    try:
        return await run_reconcile(c.reconciliation())
    finally:
        await c.chain().close()
        await c.storage().close()


def _token(settings: Settings, args: argparse.Namespace) -> int:
    issuer = TokenIssuer(
        settings.jwt_secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        max_ttl_seconds=settings.jwt_max_ttl_seconds,
    )
    try:
        token = issuer.issue(args.sub, args.role, entity_id=args.entity_id, ttl_seconds=args.ttl)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.link:  # development: opening it signs the web app in (the token stays in the tab)
        print(f"http://{settings.host}:{settings.port}/#token={token}")
    else:
        print(token)
    return 0


WALKTHROUGH = """
RWA market service - profile {profile}, listening on {base}
  Web app: {base}/   sign-in link: .venv/bin/rwa-market token --sub ID --role ROLE --link
  OpenAPI: {base}/openapi.json   docs: {base}/docs   health: {base}/healthz  {base}/readyz

Bearer tokens (HS256, signed with RWA_JWT_SECRET):
  .venv/bin/rwa-market token --sub <id> --role admin|issuer|trader [--entity-id E] [--ttl S]

Walk-through, in a second terminal (needs curl and python3):
  ISSUER=$(.venv/bin/rwa-market token --sub issuer-1 --role issuer)
  ADMIN=$(.venv/bin/rwa-market token --sub admin-1 --role admin)

  # 1. register a market: it is pending_approval at once
  MARKET=$(curl -s -X POST {base}/api/v1/markets/register \\
    -H "Authorization: Bearer $ISSUER" -H 'Content-Type: application/json' \\
    -d '{{"name": "Harbour View Offices", "assetType": "real_estate", "tokenSymbol": "HVO",
         "tokenName": "Harbour View Offices Token", "totalSupply": 1000000,
         "asset": {{"valuation": "25000000.00", "currency": "USD", "location": "Lisbon, PT"}}}}' \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["market"]["id"])')

  # 2. approve it: activation starts by itself and the worker deploys the ERC-20 token
  curl -s -X POST {base}/api/v1/markets/$MARKET/approve \\
    -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \\
    -d '{{"decision": "approve", "reason": "documents verified"}}'

  # 3. a moment later it is active, with its contract address and tx hash
  curl -s {base}/api/v1/markets/$MARKET
  curl -s {base}/api/v1/markets/$MARKET/onchain     # code size and totalSupply read from the chain
  curl -s {base}/api/v1/markets/$MARKET/events      # the audit trail, newest first

  # 4. pause, resume, archive (admin)
  curl -s -X POST {base}/api/v1/markets/$MARKET/pause -H "Authorization: Bearer $ADMIN"
"""


def taskiq_worker_argv(settings: Settings, args: argparse.Namespace) -> list[str]:
    """``taskiq worker worker:broker`` with the arguments this service needs."""
    return [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        "worker:broker",
        *args.modules,  # right after the broker: taskiq's parser takes positionals together
        "--app-dir",
        str(Path(__file__).resolve().parent),
        "--workers",
        str(args.processes),
        "--max-async-tasks",
        str(args.max_async_tasks),
        # acknowledge after the job ran and its result was saved: a killed worker's job
        # stays pending in the stream and another worker claims it
        "--ack-type",
        "when_saved",
        "--wait-tasks-timeout",
        str(args.wait_tasks_timeout),
        "--log-level",
        settings.log_level.upper(),
    ]


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.jobs_kind != "redis":
        print(
            "configuration error: `rwa-market worker` consumes the Redis job queue; "
            f"set RWA_REDIS_URL (profile {settings.profile} has job queue {settings.jobs_kind})",
            file=sys.stderr,
        )
        return 2
    argv = taskiq_worker_argv(settings, args)
    if args.dry_run:
        print(shlex.join(argv))
        return 0
    log.info("starting: %s", shlex.join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # the worker keeps this PID: stop it by PID


async def _poll(settings: Settings) -> None:
    runtime = bootstrap.build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "polling %s/api/v1/events every %ss (profile %s)",
        settings.permissions_base_url,
        settings.permissions_poll_seconds,
        settings.profile,
    )
    await runtime.run_poller(stop)


async def _engine(settings: Settings) -> None:
    runtime = bootstrap.build(settings)
    tune_gc(freeze=settings.gc_freeze, thresholds=settings.gc_thresholds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.run_engine(stop)


def _walkthrough(settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    print(WALKTHROUGH.format(profile=settings.profile, base=base))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rwa-market", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API, WebSocket and embedded worker")
    serve.add_argument("--migrate", action="store_true", help="migrate the database first")
    sub.add_parser("migrate", help="upgrade the database schema to the newest revision")
    sub.add_parser("walkthrough", help="print a copy-paste walk-through of the lifecycle")
    sub.add_parser(
        "reconcile",
        help="compare on-chain balances with the ledger and print any drift (exit 1 on drift)",
    )
    sub.add_parser(
        "poll",
        help="poll the Entity Permissions Core's event feed, the webhook's fallback "
        "(needs RWA_PERMISSIONS_BASE_URL; runs until SIGTERM)",
    )
    sub.add_parser(
        "engine",
        help="own trading pairs by lease and run their order books (production: orders "
        "arrive from the API processes over Redis Streams; runs until SIGTERM)",
    )
    worker = sub.add_parser(
        "worker",
        help="run `taskiq worker` processes on the Redis job queue (needs RWA_REDIS_URL)",
    )
    worker.add_argument(
        "--processes", "-w", type=int, default=1, help="worker child processes (default 1)"
    )
    worker.add_argument(
        "--max-async-tasks", type=int, default=16, help="concurrent jobs per process"
    )
    worker.add_argument(
        "--wait-tasks-timeout",
        type=float,
        default=25.0,
        help="on SIGTERM, seconds to let running jobs finish; unfinished ones stay "
        "unacknowledged and another worker runs them after RWA_JOBS_CLAIM_IDLE_SECONDS",
    )
    worker.add_argument("--dry-run", action="store_true", help="print the command only")
    worker.add_argument("modules", nargs="*", help="extra task modules to import")
    token = sub.add_parser("token", help="print a bearer token signed with RWA_JWT_SECRET")
    token.add_argument("--sub", required=True, help="principal id (the token's sub claim)")
    token.add_argument(
        "--role", action="append", required=True, choices=KNOWN_ROLES, help="repeatable"
    )
    token.add_argument("--entity-id", default=None)
    token.add_argument(
        "--link", action="store_true", help="print a sign-in link to the web app (development)"
    )
    token.add_argument(
        "--ttl", type=int, default=None, help="lifetime in s (default RWA_JWT_MAX_TTL_SECONDS)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        settings.check()
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level, settings.effective_log_format, secrets=settings.secret_values()
    )
    unknown = Settings.unknown_variables()
    if unknown:
        log.warning("ignoring unknown variables (typos?): %s", ", ".join(unknown))
    if args.command == "migrate":
        _migrate(settings)
    elif args.command == "walkthrough":
        _walkthrough(settings)
    elif args.command == "token":
        return _token(settings, args)
    elif args.command == "reconcile":
        return asyncio.run(_reconcile(settings))
    elif args.command == "poll":
        if settings.permission_feed_kind != "http" or settings.permissions_poll_seconds <= 0:
            print(
                "configuration error: `rwa-market poll` needs RWA_PERMISSIONS_BASE_URL, "
                "RWA_PERMISSIONS_POLL_SECONDS > 0 and a profile other than test",
                file=sys.stderr,
            )
            return 2
        asyncio.run(_poll(settings))
    elif args.command == "worker":
        return _worker(settings, args)
    elif args.command == "engine":
        if settings.engine_kind != "remote":
            print(
                "configuration error: `rwa-market engine` serves the production profile "
                "(RWA_PROFILE=production, RWA_REDIS_URL); other profiles run the books in "
                "the API process",
                file=sys.stderr,
            )
            return 2
        asyncio.run(_engine(settings))
    elif args.command == "serve":
        if args.migrate:
            _migrate(settings)
        try:
            asyncio.run(_serve(settings))
        except (ChainError, ServiceUnavailable) as exc:  # a dependency refused at start
            print(f"cannot start: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
