"""Book presentation helpers: engine units to wire strings, and the Kraken-style checksum.

DESIGN §6: CRC32 (unsigned) of the concatenation, for the top 10 asks (lowest first) and
then the top 10 bids (highest first), of each level's price string and size string with the
`.` removed and leading zeros stripped.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

CHECKSUM_LEVELS = 10
# The deeper windows a book can be streamed at (WebSocket depth 25 and 100): a book change that
# removes a level also carries the levels that moved into them.
STREAMED_DEPTHS = (25, 100)


def format_units(value: int, decimals: int) -> str:
    """`value` units of 10**-decimals as a decimal string with exactly `decimals` places."""
    if value < 0:
        raise ValueError("a book price or size is never negative")
    if decimals == 0:
        return str(value)
    digits = str(value).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def level_strings(
    levels: Sequence[tuple[int, int]],
    *,
    tick: int,
    price_decimals: int,
    lot: int,
    size_decimals: int,
) -> list[tuple[str, str]]:
    """Engine levels (price in ticks, size in lots) as wire strings. `tick` is the tick size
    in units of 10**-price_decimals and `lot` the lot size in units of 10**-size_decimals
    (e.g. tickSize "0.05" with 2 price decimals is tick=5)."""
    return [
        (format_units(price * tick, price_decimals), format_units(size * lot, size_decimals))
        for price, size in levels
    ]


def _strip(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> int:
    """The checksum of a book given as wire strings, bids highest first, asks lowest first."""
    parts: list[str] = []
    for price, size in asks[:CHECKSUM_LEVELS]:
        parts.append(_strip(price))
        parts.append(_strip(size))
    for price, size in bids[:CHECKSUM_LEVELS]:
        parts.append(_strip(price))
        parts.append(_strip(size))
    return zlib.crc32("".join(parts).encode("ascii")) & 0xFFFFFFFF


def book_checksum(
    bids: Sequence[tuple[int, int]],
    asks: Sequence[tuple[int, int]],
    *,
    tick: int,
    price_decimals: int,
    lot: int,
    size_decimals: int,
) -> int:
    """The checksum of engine levels (as `MatchingEngine.depth` returns them)."""
    scale = {
        "tick": tick,
        "price_decimals": price_decimals,
        "lot": lot,
        "size_decimals": size_decimals,
    }
    return checksum(
        level_strings(bids[:CHECKSUM_LEVELS], **scale),
        level_strings(asks[:CHECKSUM_LEVELS], **scale),
    )
