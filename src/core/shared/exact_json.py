"""JSON whose numbers stay exactly as sent: ``0.95`` is read as ``Decimal("0.95")`` and written
back as the JSON number ``0.95``, never through a binary float.

- ``loads``: fractions and exponents become ``Decimal``, integers ``int``; a number longer than
  ``MAX_DIGITS`` characters becomes ``OversizedNumber`` (validators refuse it with a field
  error instead of Python's 4,300-digit conversion limit raising); ``NaN``/``Infinity`` and
  nesting too deep for the decoder are ``ValueError``.
- ``dumps``: ``Decimal`` is written as its own text, a JSON number. The common case (no
  ``Decimal`` anywhere) takes the standard library's C encoder.
- ``check``: refuse what a JSON column could not hold exactly (floats, non-finite decimals,
  non-string keys, other objects); the storage adapters call it before writing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from core.shared.text import MAX_DIGITS, OversizedNumber


def _parse_int(text: str) -> int | OversizedNumber:
    return OversizedNumber(text) if len(text) > MAX_DIGITS else int(text)


def _parse_float(text: str) -> Decimal | OversizedNumber:
    return OversizedNumber(text) if len(text) > MAX_DIGITS else Decimal(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


MAX_NESTING = 64


def check_nesting(text: str | bytes, *, max_depth: int = MAX_NESTING) -> None:
    """``ValueError`` when arrays and objects nest deeper than ``max_depth``.

    Checked before decoding: the C decoder recurses on the C stack, and with a raised
    recursion limit deep input can overflow it (a crash, not an exception).
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                raise ValueError(f"the JSON nests deeper than {max_depth} levels")
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1


def loads(text: str | bytes) -> Any:
    """Decode JSON with exact numbers. ``ValueError`` for anything that is not JSON."""
    check_nesting(text)
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
        )
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc


class _HasDecimal(Exception):
    pass


def _no_decimal(value: object) -> Any:
    raise _HasDecimal


def dumps(
    value: Any,
    *,
    ensure_ascii: bool = True,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """Compact JSON text; ``Decimal`` values are written as JSON numbers with their own text."""

    def fallback(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            raise _HasDecimal
        if default is None:
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
        return default(obj)

    try:
        return json.dumps(
            value,
            ensure_ascii=ensure_ascii,
            sort_keys=sort_keys,
            separators=(",", ":"),
            default=fallback,
            allow_nan=False,
        )
    except _HasDecimal:
        pass
    encode_str = (
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    )
    parts: list[str] = []

    def write(node: Any) -> None:
        if isinstance(node, str):
            parts.append(encode_str(node))
        elif node is None:
            parts.append("null")
        elif node is True:
            parts.append("true")
        elif node is False:
            parts.append("false")
        elif isinstance(node, int):
            parts.append(int.__repr__(node))
        elif isinstance(node, Decimal):
            if not node.is_finite():
                raise ValueError("a non-finite Decimal is not JSON")
            parts.append(str(node))
        elif isinstance(node, float):
            parts.append(json.dumps(node, allow_nan=False))
        elif isinstance(node, Mapping):
            parts.append("{")
            items = sorted(node.items()) if sort_keys else node.items()
            for index, (key, item) in enumerate(items):
                if not isinstance(key, str):
                    raise TypeError("JSON object keys must be strings")
                if index:
                    parts.append(",")
                parts.append(encode_str(key))
                parts.append(":")
                write(item)
            parts.append("}")
        elif isinstance(node, list | tuple):
            parts.append("[")
            for index, item in enumerate(node):
                if index:
                    parts.append(",")
                write(item)
            parts.append("]")
        else:
            write(fallback(node))

    write(value)
    return "".join(parts)


def check(value: Any, *, where: str = "value") -> None:
    """``TypeError`` unless ``value`` is JSON with exact numbers only (what storage keeps)."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{where}: a non-finite Decimal is not JSON")
        return
    if isinstance(value, float):
        raise TypeError(f"{where}: floats are not stored (numbers must be exact: use Decimal)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: JSON object keys must be strings")
            check(item, where=f"{where}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check(item, where=f"{where}[{index}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not a JSON value")
