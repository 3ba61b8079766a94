"""HTTP metrics: every request counted and timed by route template, and ``GET /metrics``.

The route label is the matched rule (``/api/v1/markets/<market_id>``), never the raw path:
unmatched paths count as ``<unmatched>``, so a scan of random URLs cannot grow the series.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from quart import Quart, Response, g, request
from quart_schema import hide

from core.ports.metrics import Metrics

Exposition = Callable[[], tuple[bytes, str]]

UNMATCHED = "<unmatched>"


def install_metrics(app: Quart, metrics: Metrics, exposition: Exposition | None) -> None:
    """Time every request; serve ``exposition`` (text format) at ``/metrics`` when given."""

    @app.before_request
    async def start_timer() -> None:
        g.rwa_request_started = time.perf_counter()

    @app.after_request
    async def count_request(response: Response) -> Response:
        started = g.get("rwa_request_started")
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
            elapsed = time.perf_counter() - started
            metrics.http_request(request.method, rule, response.status_code, elapsed)
        return response

    if exposition is None:
        return

    @hide
    async def metrics_endpoint() -> Response:
        """The Prometheus text format (every worker's values in multiprocess mode)."""
        body, content_type = exposition()
        return Response(body, status=200, content_type=content_type)

    app.add_url_rule("/metrics", "metrics", metrics_endpoint, methods=["GET"])
