"""Structured log records (structlog) that a client cannot forge and that carry no secret.

Every record, from the standard ``logging`` loggers the code uses and from hypercorn's access
and error loggers (they propagate to the root), goes through one structlog
``ProcessorFormatter`` on the root handler. Its processors add the time, the level, the
logger's name and the context bound for the current task (``request_id`` of an HTTP request,
``connection_id`` of a WebSocket connection, ``correlation_id`` and ``job`` of a job run: see
``bind_request``, ``bind_connection``, ``job_context``), and then redact secrets: a field
whose name says it holds one (token, secret, password, mnemonic, authorization, key), any
bearer token (a JWT) in any text, and every secret value of the settings registered at
``configure_logging``. Then one of two renderers:

- ``text`` (a terminal): one line per record, ``time LEVEL logger [context]: message``; in the
  message, the context and the exception text every character that is not printable is
  escaped (``\\n`` -> ``\\\\n``, NUL -> ``\\\\x00``, a right-to-left override -> ``\\\\u202e``),
  so a newline in a request path or an SNS field cannot start a line of its own. A traceback
  keeps its line breaks but every line after the first is indented.
- ``json`` (production, or not a terminal): one JSON object per line (``time``, ``level``,
  ``logger``, ``message``, the context, ``exception``), ``ensure_ascii``: no raw control
  character or line separator reaches the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import IO, Any

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, get_contextvars
from structlog.types import EventDict, Processor, WrappedLogger

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTINUATION = "\n    "
CONTEXT_KEYS = ("request_id", "connection_id", "correlation_id", "job")
REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"token|secret|passw|mnemonic|authori[sz]ation|private.?key|api.?key|cookie", re.I
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
# a request id a client may choose: short, plain, nothing a log line could be forged with
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_secrets: tuple[str, ...] = ()


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every non-printable character (space excepted) escaped."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if ch.isprintable() or (keep_newlines and ch == "\n"):
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def _block(text: str) -> str:
    """A multi-line block (a traceback) escaped, every line after the first indented."""
    return escape(text.replace("\r\n", "\n"), keep_newlines=True).replace("\n", _CONTINUATION)


# -- context -----------------------------------------------------------------------------------


def new_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """``value`` when it is an acceptable client-chosen request id, else None."""
    if value is not None and REQUEST_ID.fullmatch(value):
        return value
    return None


def bind_request(request_id: str) -> None:
    """The current task (an HTTP request) logs with ``request_id``."""
    structlog.contextvars.clear_contextvars()
    bind_contextvars(request_id=request_id)


def bind_connection(connection_id: str) -> None:
    """The current task (a WebSocket connection, and the tasks it starts) logs with
    ``connection_id``."""
    structlog.contextvars.clear_contextvars()
    bind_contextvars(connection_id=connection_id)


def correlation_id() -> str | None:
    """What a job enqueued now is correlated with: the running job's correlation id, else
    the current request's or connection's id."""
    context = get_contextvars()
    for key in ("correlation_id", "request_id", "connection_id"):
        value = context.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@contextmanager
def correlated(correlation: str | None) -> Iterator[None]:
    """Reactions to an event run with the correlation id of what wrote it (so the jobs they
    enqueue carry it on); nothing changes without one."""
    if correlation is None:
        yield
        return
    with bound_contextvars(correlation_id=correlation):
        yield


@contextmanager
def job_context(job: str, correlation: str | None) -> Iterator[None]:
    """A job run logs with its name and the correlation id it was enqueued with (a fresh one
    when it came without)."""
    with bound_contextvars(job=job, correlation_id=correlation or new_id()):
        yield


# -- processors --------------------------------------------------------------------------------


def _scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _JWT.sub(REDACTED, text)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """No secret reaches a log line: by field name, by shape (a JWT, a bearer token) and by
    the registered secret values."""
    for key, value in list(event.items()):
        if key in ("logger", "level", "time"):
            continue
        if _SECRET_NAME.search(key):
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = _scrub(value)
    return event


def _message(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog's ``event`` is the message."""
    event["message"] = str(event.pop("event", ""))
    if "stack_info" in event:
        event["stack"] = event.pop("stack_info")
    return event


def _render_text(_: WrappedLogger, __: str, event: EventDict) -> str:
    time = str(event.pop("time", ""))
    level = str(event.pop("level", "")).upper()
    name = str(event.pop("logger", ""))
    message = escape(str(event.pop("message", "")))
    exception = event.pop("exception", None)
    stack = event.pop("stack", None)
    keys = [k for k in CONTEXT_KEYS if k in event] + sorted(
        k for k in event if k not in CONTEXT_KEYS
    )
    context = " ".join(f"{escape(str(k))}={escape(str(event[k]))}" for k in keys)
    line = f"{time} {level} {escape(name)}{f' [{context}]' if context else ''}: {message}"
    if exception:
        line += _CONTINUATION + _block(str(exception))
    if stack:
        line += _CONTINUATION + _block(str(stack))
    return line


def _render_json(_: WrappedLogger, __: str, event: EventDict) -> str:
    ordered = {k: event.pop(k) for k in ("time", "level", "logger", "message") if k in event}
    ordered["level"] = str(ordered.get("level", "")).upper()
    ordered.update(event)
    return json.dumps(ordered, ensure_ascii=True, default=str)


def _access_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """hypercorn's access line names the request it answered: the ``X-Request-Id`` of the
    answer (the arguments of a foreign record are not kept otherwise)."""
    args = event.pop("positional_args", None)
    if isinstance(args, Mapping):
        request_id = args.get("{x-request-id}o")
        if isinstance(request_id, str) and valid_request_id(request_id):
            event["request_id"] = request_id
    return event


def _pre_chain() -> list[Processor]:
    return [
        _access_fields,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]


class _Formatter(structlog.stdlib.ProcessorFormatter):
    def __init__(self, renderer: Processor) -> None:
        super().__init__(
            foreign_pre_chain=_pre_chain(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _message,
                redact,
                renderer,
            ],
            keep_exc_info=False,
            keep_stack_info=False,
            pass_foreign_args=True,
        )


class EscapingFormatter(_Formatter):
    """The human format, one line per record, client text escaped."""

    def __init__(self) -> None:
        super().__init__(_render_text)


class JsonFormatter(_Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``, the bound
    context, ``exception``."""

    def __init__(self) -> None:
        super().__init__(_render_json)


class CancellationFilter(logging.Filter):
    """A task cancelled while the service stops is expected, not an error: a record whose
    exception is a ``CancelledError`` (taskiq logs one, with a traceback, for every job it
    sees cancelled) becomes one WARNING line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):
            record.msg = f"{record.getMessage()} (cancelled)"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    if kind == "text":
        return EscapingFormatter()
    raise ValueError(f"unknown log format {kind!r}")


def register_secrets(values: Iterable[str | None]) -> None:
    """Values that never appear in a log line (the settings' secrets): replaced by
    ``[redacted]`` wherever they occur. Values shorter than 8 characters are ignored (they
    would redact ordinary words)."""
    global _secrets
    found = {v for v in values if v and len(v) >= 8}
    _secrets = tuple(sorted(found, key=len, reverse=True))


def configure_logging(
    level: str,
    kind: str,
    stream: IO[str] | None = None,
    *,
    secrets: Iterable[str | None] = (),
) -> None:
    """The root logger writes to ``stream`` (stderr) through the chosen formatter; loggers
    that installed handlers of their own (hypercorn's, taskiq's) are brought to it;
    structlog's own loggers go the same way. ``secrets`` are never written."""
    register_secrets(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(kind))
    handler.addFilter(CancellationFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("hypercorn.access", "hypercorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def context_fields(event: MutableMapping[str, Any]) -> dict[str, Any]:
    """The correlation fields of a rendered JSON record (tests and tools)."""
    return {k: event[k] for k in CONTEXT_KEYS if k in event}
