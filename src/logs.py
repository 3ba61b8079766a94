"""Log records that a client cannot forge.

Every record goes through one of two formatters on the root logger (hypercorn's access and
error loggers propagate to it):

- ``text`` (the terminal): one line per record; in the message, and in the exception text,
  every character that is not printable is escaped (``\\n`` -> ``\\\\n``, NUL -> ``\\\\x00``,
  a right-to-left override -> ``\\\\u202e``), so a newline in a request path or an SNS field
  cannot start a line of its own. A traceback keeps its line breaks but every line after the
  first is indented, so none of them can pass for a record.
- ``json`` (production): one JSON object per line, ``ensure_ascii``: no raw control
  character or line separator reaches the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTINUATION = "\n    "


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


class EscapingFormatter(logging.Formatter):
    """The human format, one line per record, client text escaped."""

    def __init__(self, fmt: str = TEXT_FORMAT, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += _CONTINUATION + _block(record.exc_text)
        if record.stack_info:
            line += _CONTINUATION + _block(self.formatStack(record.stack_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


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


def configure_logging(level: str, kind: str, stream: IO[str] | None = None) -> None:
    """The root logger writes to ``stream`` (stderr) through the chosen formatter; loggers
    that installed handlers of their own (hypercorn's, taskiq's) are brought to it."""
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
