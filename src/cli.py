"""``rwa-market``: serve, migrate, and mint development bearer tokens."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

import bootstrap
from adapters.inbound.http.auth import KNOWN_ROLES, TokenIssuer

log = logging.getLogger("rwa")


def _migrate(settings: bootstrap.Settings) -> None:
    print(bootstrap.migrate(settings))


async def _serve(settings: bootstrap.Settings) -> None:
    runtime = bootstrap.build(settings)
    app = runtime.http_app()
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = "-"
    config.errorlog = "-"
    config.graceful_timeout = 10
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving profile=%s on http://%s:%s", settings.profile, settings.host, settings.port)
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def _token(settings: bootstrap.Settings, args: argparse.Namespace) -> None:
    issuer = TokenIssuer(settings.jwt_secret)
    print(issuer.issue(args.sub, args.role, entity_id=args.entity_id, ttl_seconds=args.ttl))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rwa-market", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API, WebSocket and embedded worker")
    serve.add_argument("--migrate", action="store_true", help="migrate the database first")
    sub.add_parser("migrate", help="upgrade the database schema to the newest revision")
    token = sub.add_parser("token", help="print a bearer token signed with RWA_JWT_SECRET")
    token.add_argument("--sub", required=True, help="principal id (the token's sub claim)")
    token.add_argument(
        "--role", action="append", required=True, choices=KNOWN_ROLES, help="repeatable"
    )
    token.add_argument("--entity-id", default=None)
    token.add_argument("--ttl", type=int, default=86_400, help="lifetime in seconds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = bootstrap.Settings.from_env()
        settings.check()
    except bootstrap.ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "migrate":
        _migrate(settings)
    elif args.command == "token":
        _token(settings, args)
    elif args.command == "serve":
        if args.migrate:
            _migrate(settings)
        asyncio.run(_serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
