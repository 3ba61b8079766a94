"""The error envelope: ``{"error": {"code", "message", "details"}}``. A 500 is a bug."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from quart import Quart, Response, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from adapters.inbound.http.auth import AuthError
from core.shared.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationFailed,
)

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    return response


def _status_of(error: DomainError) -> int:
    if isinstance(error, ValidationFailed):
        return 422
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, ServiceUnavailable):
        return 503
    return 503  # ChainError and other dependency failures: the caller may retry


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def pydantic_fields(error: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in error.errors():
        name = _field_name(tuple(item.get("loc", ())))
        message = str(item.get("msg", "is invalid"))
        if item.get("type") == "missing":
            message = "is required"
        elif item.get("type") == "extra_forbidden":
            message = "is not a known field"
        fields.setdefault(name, message.removeprefix("Value error, "))
    return fields


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(DomainError)
    async def domain_error(error: DomainError) -> Response:
        status = _status_of(error)
        if status == 503:
            log.warning("dependency failure: %s", error.message)
        return error_response(status, error.code, error.message, error.details)

    @app.errorhandler(AuthError)
    async def auth_error(error: AuthError) -> Response:
        response = error_response(401, error.code, error.message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="rwa"'
        return response

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(error: RequestSchemaValidationError) -> Response:
        inner = error.validation_error
        if isinstance(inner, ValidationError):
            fields = pydantic_fields(inner)
            if list(fields) == ["body"] or any(k == "body" for k in fields):
                return error_response(
                    422, "validation_failed", "the body must be a JSON object", {"fields": fields}
                )
            return error_response(
                422, "validation_failed", "the request body is invalid", {"fields": fields}
            )
        return error_response(422, "validation_failed", "the request body is invalid")

    @app.errorhandler(ValidationError)
    async def body_error(error: ValidationError) -> Response:
        return error_response(
            422,
            "validation_failed",
            "the request body is invalid",
            {"fields": pydantic_fields(error)},
        )

    @app.errorhandler(UnicodeDecodeError)
    async def not_utf8(error: UnicodeDecodeError) -> Response:
        return error_response(400, "malformed_json", "the request body is not UTF-8 JSON")

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = HTTP_CODES.get(status, "http_error")
        message = error.description or error.name
        if status == 400:
            code, message = "malformed_json", "the request body is not valid JSON"
        if status == 415:
            message = "send the body as JSON with Content-Type: application/json"
        if status == 413:
            message = "the request body is too large"
        response = error_response(status, code, message)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal_error", "an unexpected error occurred")
