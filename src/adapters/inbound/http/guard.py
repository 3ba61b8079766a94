"""The order of checks on every endpoint (DESIGN 5.1), in one place.

1. no or bad bearer token: 401;
2. a caller none of whose roles grants any of the endpoint's actions: 403;
3. path parameters, query parameters and the body, by the text rules: 400/415/422;
4. then the use case, which asks the permissions port for the precise action (403 with its
   reasons).

``@guarded(*actions)`` does 1-3 for path parameters; the route reads its body with
``read_body(Model)`` and its query parameters with ``query_text``, after the guard has run.
``@public`` cleans the path parameters of a route that needs no token.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from quart import current_app, g, request
from werkzeug.exceptions import UnsupportedMediaType

from adapters.inbound.http.auth import TokenIssuer, bearer_actor
from core.shared.errors import PermissionDenied, ValidationFailed
from core.shared.events import Actor
from core.shared.roles import roles_allow_any
from core.shared.text import TextError, clean_text

View = Callable[..., Awaitable[Any]]
V = TypeVar("V", bound=View)
M = TypeVar("M", bound=BaseModel)

MAX_PATH_PARAM = 100
_ACTOR = "rwa_actor"
_GUARDED = "rwa_guarded"


def _tokens() -> TokenIssuer:
    issuer: TokenIssuer = current_app.config["RWA_DEPS"].tokens
    return issuer


def _clean_path(kwargs: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name, value in kwargs.items():
        if isinstance(value, str):
            try:
                value = clean_text(value, max_length=MAX_PATH_PARAM)
            except TextError as exc:
                fields[_camel(name)] = str(exc)
        cleaned[name] = value
    if fields:
        raise ValidationFailed("a path parameter is invalid", fields=fields)
    return cleaned


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def guarded(*actions: str) -> Callable[[V], V]:
    """Authenticate (401), refuse callers whose roles allow none of ``actions`` (403), clean
    the path parameters (422); then run the route."""

    def decorate(view: V) -> V:
        @functools.wraps(view)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor = bearer_actor(_tokens())
            if not roles_allow_any(actor.roles, actions):
                raise PermissionDenied(
                    " or ".join(actions),
                    (f"none of the caller's roles grants {' or '.join(actions)}",),
                )
            setattr(g, _ACTOR, actor)
            return await view(*args, **_clean_path(kwargs))

        setattr(wrapper, _GUARDED, True)
        return wrapper  # type: ignore[return-value]

    return decorate


def is_guarded(view: object) -> bool:
    """Whether ``view`` is behind ``@guarded`` (it reads its body only after the token)."""
    return bool(getattr(view, _GUARDED, False))


def public(view: V) -> V:
    """A route without a token: its path parameters are still cleaned (422)."""

    @functools.wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await view(*args, **_clean_path(kwargs))

    return wrapper  # type: ignore[return-value]


def current_actor() -> Actor:
    """The actor ``@guarded`` authenticated for this request."""
    actor: Actor = getattr(g, _ACTOR)
    return actor


async def _json_body(*, optional: bool) -> Any:
    raw = await request.get_data()
    if optional and not raw.strip():
        return None
    if raw.strip() and request.mimetype != "application/json":
        raise UnsupportedMediaType()
    return await request.get_json(force=True)


async def read_body(model: type[M]) -> M:
    """The request body as ``model``: 400 not JSON, 415 not sent as JSON, 422 invalid."""
    payload = await _json_body(optional=False)
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "the body must be a JSON object", fields={"body": "must be a JSON object"}
        )
    return model.model_validate(payload)


async def read_optional_body(model: type[M]) -> M | None:
    """Like ``read_body``, but an empty body is ``None``."""
    payload = await _json_body(optional=True)
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "the body must be a JSON object", fields={"body": "must be a JSON object"}
        )
    return model.model_validate(payload)


def query_text(name: str, *, max_length: int) -> str | None:
    """A query parameter by the text rules (``None`` when absent or empty); 422 if bad."""
    values = request.args.getlist(name)
    if not values or values[-1] == "":
        return None
    if len(values) > 1:
        raise ValidationFailed(
            f"{name} is given more than once", fields={name: "must be given at most once"}
        )
    try:
        return clean_text(values[0], max_length=max_length)
    except TextError as exc:
        raise ValidationFailed(f"{name} is invalid", fields={name: str(exc)}) from exc
