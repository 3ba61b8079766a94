"""The web app's WebSocket client (``static/js/live.js``) under node with a scripted socket
(``web_live_check.mjs``): it authenticates and subscribes on open, routes snapshots and
updates to their subscriber, reports a refused channel, and after a drop reconnects with
backoff, authenticates and subscribes again (so each channel gets a fresh snapshot), showing
its state throughout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from adapters.inbound.web import STATIC_DIR
from tests.harness.common import missing_service

CHECK = Path(__file__).with_name("web_live_check.mjs")


def test_live_socket_subscribes_routes_and_resubscribes_after_a_drop() -> None:
    node = shutil.which("node") or ""
    if not node:
        missing_service("node (apt-get install nodejs)")
    done = subprocess.run(
        [node, str(CHECK), str(STATIC_DIR / "js")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["url"] == "ws://127.0.0.1:8000/api/v1/ws"
    assert out["firstSent"] == [
        ["auth", None, "a.b.c"],
        ["subscribe", "markets", None],
        ["subscribe", "book", None],
    ]
    # routed by channel; the book's frames name the pair by id and still reach it
    # ... and a refresh's own "unsubscribed" answer is not passed on
    assert out["got"]["markets"] == ["subscribed", "snapshot", "snapshot", "subscribed", "snapshot"]
    assert out["refreshSent"] == [["unsubscribe", "markets"], ["subscribe", "markets"]]
    # order ops: answered by reqId; refused (the service's code) or unanswered (retry over HTTP)
    assert out["calls"] == {
        "sentOp": "order.submit",
        "ackedId": "o-1",
        "refused": ["order_not_open", False],
        "lost": ["connection_lost", True],
        "offline": "not_connected",
    }
    assert out["liveDuringRefresh"] is True
    assert out["got"]["book"] == [["snapshot", 4], ["update", 5]]
    assert out["liveBefore"] == [True, True]
    assert out["got"]["refused"] == ["channel_unavailable"]
    # the drop: subscribers told, nothing counts as live, a new socket after the backoff
    assert out["downsBeforeStop"] == 1
    assert out["liveAfterDrop"] is False
    assert out["sockets"] == 2
    assert out["secondSent"] == [["auth", None], ["subscribe", "markets"], ["subscribe", "book"]]
    assert out["states"][:3] == ["offline", "connecting", "live"]
    assert "reconnecting" in out["states"]
    assert out["states"][-2:] == ["live", "offline"]  # live again, then stopped
    assert out["liveAgain"] is False  # stop() ends it
