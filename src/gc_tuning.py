"""The garbage collector of a long-running process, set once the process is built.

Importing the service's libraries (web3 and py-evm, SQLAlchemy, pydantic, Quart) leaves
hundreds of thousands of objects that live as long as the process; CPython's oldest-generation
collection walks all of them each time it runs. ``tune_gc`` collects once, then moves
everything alive into the permanent generation (``gc.freeze``: never walked again) and sets
the thresholds: the youngest generation collected every ``thresholds[0]`` allocations instead
of 700. Measured (bench/README.md, "WebSocket fan-out"): with 1,000 subscribers the default
collector stopped the event loop long enough to put the trade lag's p99 at about 200 ms.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = (10_000, 50, 100)


def tune_gc(*, freeze: bool, thresholds: tuple[int, int, int]) -> None:
    """Freeze what the process built so far (when ``freeze``) and set ``thresholds``."""
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*thresholds)
    frozen = gc.get_freeze_count()
    log.info("gc: %d objects frozen, thresholds %s", frozen, "/".join(map(str, thresholds)))
