"""The Quart application: blueprints, the error envelope, OpenAPI, body limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Quart, request
from quart_schema import QuartSchema
from werkzeug.exceptions import UnsupportedMediaType

from adapters.inbound.http.audit import audit
from adapters.inbound.http.dependencies import HttpDependencies
from adapters.inbound.http.docs import docs
from adapters.inbound.http.errors import install_error_handlers
from adapters.inbound.http.guard import is_guarded
from adapters.inbound.http.health import health
from adapters.inbound.http.jsonio import install_exact_json
from adapters.inbound.http.markets import markets
from adapters.inbound.http.metrics import install_metrics
from adapters.inbound.http.openapi import SECURITY_SCHEMES, RwaOpenAPIProvider
from adapters.inbound.http.rate_limit import install_rate_limit
from adapters.inbound.http.reconciliation import reconciliation
from adapters.inbound.http.request_id import install_request_id
from adapters.inbound.http.token_operations import token_operations
from adapters.inbound.http.tokens import tokens
from adapters.inbound.http.trading import trading
from adapters.inbound.http.wallets import wallets
from adapters.inbound.web import web
from adapters.inbound.webhooks.blueprint import webhooks
from adapters.inbound.ws.route import install_ws

LifecycleHook = Callable[[], Awaitable[None]]


def create_app(
    deps: HttpDependencies,
    *,
    on_startup: list[LifecycleHook] | None = None,
    on_shutdown: list[LifecycleHook] | None = None,
) -> Quart:
    app = Quart("rwa")
    app.config["RWA_DEPS"] = deps
    app.config["MAX_CONTENT_LENGTH"] = deps.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    QuartSchema(
        app,
        openapi_path="/openapi.json",
        swagger_ui_path=None,  # /docs is the docs blueprint: assets served here, no CDN
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={"title": "RWA tokenization and trading API", "version": "1"},
        security_schemes=SECURITY_SCHEMES,
        openapi_provider_class=RwaOpenAPIProvider,
    )
    install_exact_json(app)  # numbers in bodies and answers exactly as sent
    install_error_handlers(app)
    install_metrics(app, deps.metrics, deps.metrics_exposition)  # first: times every request
    install_request_id(app)  # then: every log line of the request carries its id
    app.register_blueprint(docs)
    app.register_blueprint(health)
    app.register_blueprint(markets)
    app.register_blueprint(wallets)
    app.register_blueprint(tokens)
    app.register_blueprint(token_operations)
    app.register_blueprint(trading)
    app.register_blueprint(audit)
    app.register_blueprint(reconciliation)
    app.register_blueprint(web)  # the web app at / (static files, no build step)
    if deps.webhooks is not None:
        app.register_blueprint(webhooks)
    if deps.ws is not None:
        install_ws(app, deps.ws)  # before the runtime's hooks: it stops before the bus closes

    if deps.rate_limit is not None:
        install_rate_limit(app, deps.rate_limit)

    @app.before_request
    async def require_json_bodies() -> None:
        if request.blueprint == webhooks.name:  # SNS posts JSON as text/plain; raw bodies
            return
        if is_guarded(app.view_functions.get(request.endpoint or "")):
            return  # checked after authentication, by guard.read_body
        if request.method in {"POST", "PUT", "PATCH"} and request.mimetype != "application/json":
            body = await request.get_data()
            if body.strip():
                raise UnsupportedMediaType()

    for hook in on_startup or []:
        app.before_serving(hook)
    for hook in on_shutdown or []:
        app.after_serving(hook)
    return app
