"""Cost of one log record through the service's structlog formatter (``logs.py``), beside a
plain ``logging.Formatter`` in the same run: the access line every HTTP request writes.

``.venv/bin/python bench/log_format.py [--records 20000] [--runs 5]`` prints one JSON line: the
median microseconds per record of each formatter and the ratios to the plain one.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

from structlog.contextvars import bound_contextvars

from logs import EscapingFormatter, JsonFormatter, register_secrets

ACCESS = '%(h)s %(l)s %(l)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
ATOMS = {
    "h": "127.0.0.1:51234",
    "l": "-",
    "t": "[23/Nov/2026:16:40:00 +0000]",
    "r": "GET /api/v1/markets/01J7 1.1",
    "s": 200,
    "b": 512,
    "f": "-",
    "a": "python-httpx/0.28.1",
    "{x-request-id}o": "0123456789abcdef0123456789abcdef",
}


def record() -> logging.LogRecord:
    return logging.LogRecord("hypercorn.access", logging.INFO, __file__, 1, ACCESS, (ATOMS,), None)


def per_record_us(formatter: logging.Formatter, n: int) -> float:
    records = [record() for _ in range(n)]
    with bound_contextvars(request_id="0123456789abcdef0123456789abcdef"):
        started = time.perf_counter()
        for r in records:
            formatter.format(r)
        return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # the settings' secrets, as the service registers them (a long mnemonic, a JWT secret...)
    register_secrets(["test " * 11 + "junk", "x" * 48, "DEVELOPMENT-ONLY-webhook-secret"])
    formatters = {
        "plain": logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"),
        "text": EscapingFormatter(),
        "json": JsonFormatter(),
    }
    samples: dict[str, list[float]] = {name: [] for name in formatters}
    for _ in range(args.runs):  # interleaved: each run measures all three side by side
        for name, formatter in formatters.items():
            samples[name].append(per_record_us(formatter, args.records))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(
        json.dumps(
            {
                "bench": "log_record_format",
                "records_per_run": args.records,
                "runs": args.runs,
                "us_per_record": {k: round(v, 2) for k, v in medians.items()},
                "ratio_to_plain": {
                    k: round(v / medians["plain"], 2) for k, v in medians.items() if k != "plain"
                },
            }
        )
    )


if __name__ == "__main__":
    main()
