"""``X-Request-Id``: one id per HTTP request, in every log line the request causes and in the
answer's header.

A client's own ``X-Request-Id`` is kept when it is short and plain (``logs.REQUEST_ID``: up
to 64 letters, digits and ``._:-``); anything else is replaced by a fresh id (a tracing
header never fails a request). Jobs the request enqueues carry it as their correlation id.
"""

from __future__ import annotations

from quart import Quart, Response, g, request

from logs import bind_request, new_id, valid_request_id

HEADER = "X-Request-Id"


def install_request_id(app: Quart) -> None:
    @app.before_request
    async def _bind() -> None:
        request_id = valid_request_id(request.headers.get(HEADER)) or new_id()
        g.request_id = request_id
        bind_request(request_id)

    @app.after_request
    async def _answer(response: Response) -> Response:
        request_id = getattr(g, "request_id", None)
        if request_id is not None:
            response.headers[HEADER] = request_id
        return response
