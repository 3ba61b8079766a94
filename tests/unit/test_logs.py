"""``logs``: every record is one line (text) or one JSON object (json), client text escaped."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest

from logs import CancellationFilter, EscapingFormatter, JsonFormatter, configure_logging, escape


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain text, spaces kept", "plain text, spaces kept"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("nul\x00 del\x7f esc\x1b", "nul\\x00 del\\x7f esc\\x1b"),
        ("rtl\u202e zw\u200b ls\u2028", "rtl\\u202e zw\\u200b ls\\u2028"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("café ✓", "café ✓"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\n2026-01-01 00:00:00 CRITICAL forged")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("rwa.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_the_text_format_keeps_one_line_per_record() -> None:
    line = EscapingFormatter().format(_record("topic %s refused", "t\n2026 CRITICAL forged\x00"))
    assert "\n" not in line and "\x00" not in line
    assert line.endswith("topic t\\n2026 CRITICAL forged\\x00 refused")


def test_a_traceback_cannot_start_a_line_of_its_own() -> None:
    text = EscapingFormatter().format(_record("failed", exc=True))
    first, *rest = text.split("\n")
    assert "failed" in first and rest
    assert all(line.startswith("    ") for line in rest)
    assert "ValueError: bad" in text


def test_the_json_format_is_one_object_per_line() -> None:
    line = JsonFormatter().format(_record("arn %s", "x\n\u2028\x00", exc=True))
    assert "\n" not in line and "\u2028" not in line and "\x00" not in line
    entry = json.loads(line)
    assert entry["message"] == "arn x\n\u2028\x00"
    assert (entry["level"], entry["logger"]) == ("WARNING", "rwa.test")
    assert "ValueError" in entry["exception"]


def test_configure_logging_brings_hypercorn_to_the_root_handler() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "text", stream)
        logging.getLogger("hypercorn.access").info("%s", "GET /x\nFORGED")
        assert stream.getvalue().count("\n") == 1
        assert "GET /x\\nFORGED" in stream.getvalue()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_cancelled_task_is_one_warning_line() -> None:
    try:
        raise asyncio.CancelledError
    except asyncio.CancelledError:
        record = logging.LogRecord(
            "taskiq.receiver.receiver",
            logging.ERROR,
            __file__,
            1,
            "Exception found while executing function.",
            (),
            sys.exc_info(),
        )
    assert CancellationFilter().filter(record)
    line = EscapingFormatter().format(record)
    assert "\n" not in line and "Traceback" not in line
    assert "WARNING" in line and line.endswith("function. (cancelled)")


def test_the_text_format_shows_the_bound_context_escaped() -> None:
    from structlog.contextvars import bound_contextvars

    with bound_contextvars(request_id="r-1", job="x\ny"):
        line = EscapingFormatter().format(_record("done"))
    assert "\n" not in line
    assert " WARNING rwa.test [request_id=r-1 job=x\\ny]: done" in line


def test_registered_secrets_and_bearer_tokens_never_reach_a_line() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    secret = "a-very-secret-value-0123"
    try:
        configure_logging("INFO", "text", stream, secrets=[secret, None, "short"])
        logging.getLogger("rwa.test").warning(
            "saw %s and Authorization: Bearer abc.def.ghi and short", secret
        )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    text = stream.getvalue()
    assert secret not in text and "abc.def.ghi" not in text
    assert "saw [redacted] and Authorization: Bearer [redacted] and short" in text


async def test_a_pair_writer_started_by_a_request_does_not_keep_its_context() -> None:
    """The first order of a pair starts its writer inside that request: the writer serves
    every later request, so it must not log with the first one's id."""
    from structlog.contextvars import bound_contextvars, get_contextvars

    from adapters.outbound.clock.system import SystemClock
    from adapters.outbound.storage.memory.storage import MemoryStorage
    from core.trading.writer import PairWriter

    writer = PairWriter("pair-1", MemoryStorage(), SystemClock())
    seen: list[dict[str, object]] = []
    original = writer._run

    async def spy() -> None:
        seen.append(dict(get_contextvars()))
        await original()

    writer._run = spy  # type: ignore[method-assign]
    with bound_contextvars(request_id="first-request"):
        writer.start()
    await asyncio.sleep(0)
    await writer.stop()
    assert seen == [{}]
