"""Client text rules, the same at every entry point (HTTP bodies, query and path parameters,
webhooks, SNS envelopes, the polled feed).

- every string is NFC-normalised;
- control characters (NUL included; newline, carriage return and tab only in multi-line
  fields), lone surrogates, bidirectional overrides and isolates (U+202A-U+202E,
  U+2066-U+2069) and, in single-line fields, the Unicode line and paragraph separators are
  refused;
- a string that is empty once whitespace and invisible characters (zero-width spaces, joiners,
  fillers) are stripped is refused;
- every string has a maximum length (counted after normalisation);
- identifiers must match their pattern in full (``fullmatch``: ``$`` would let a trailing
  newline through);
- digit strings have a maximum length before they are converted to numbers;
- free-form JSON has bounded depth, size, key and string lengths, and exact numbers only.

Refusals raise ``TextError`` (a ``ValueError``) whose message says what is wrong, never echoing
the offending text; callers turn it into a 4xx naming the field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LINE_SEPARATORS = frozenset("\u2028\u2029")
MULTILINE_CONTROLS = frozenset("\n\r\t")
# Characters that draw nothing although they are not "format" (Cf) or separators (Z*).
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc"})

MAX_DIGITS = 100  # longest digit string (or JSON number) converted to a number
MAX_ID_LENGTH = 200

# Free-form JSON (attributes, regulatory information)
MAX_JSON_DEPTH = 5
MAX_JSON_ITEMS = 500  # keys and list items, all levels together
MAX_JSON_KEY_LENGTH = 100
MAX_JSON_STRING_LENGTH = 2000


class TextError(ValueError):
    """The value breaks a text rule; the message is safe to show and to log."""


class OversizedNumber:
    """A JSON number with more than ``MAX_DIGITS`` characters, kept unconverted.

    JSON decoders of the edges produce it instead of converting (Python refuses to convert
    integers of more than 4,300 digits, and nothing needs them): validators refuse it with a
    field error. It is deliberately no ``str``, ``int`` or ``Decimal``.
    """

    __slots__ = ("length",)

    def __init__(self, text: str) -> None:
        self.length = len(text)

    def __repr__(self) -> str:
        return f"OversizedNumber(<{self.length} characters>)"


def _is_invisible(ch: str) -> bool:
    return ch.isspace() or ch in _FILLERS or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


# Everything ``text_problem`` refuses, as one C-speed search; the loop below only runs to
# name what was found. Cc is exactly U+0000-U+001F and U+007F-U+009F.
_SURROGATES = "\ud800-\udfff"
_BIDI = "\u202a-\u202e\u2066-\u2069"
_REFUSED_SINGLE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029{_SURROGATES}]")
_REFUSED_MULTI = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}{_SURROGATES}]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` breaks the character rules (``None`` when it does not)."""
    found = (_REFUSED_MULTI if multiline else _REFUSED_SINGLE).search(value)
    if found is None:
        return None
    ch = found.group()
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        return "must not contain lone surrogates"
    if ch in BIDI_CONTROLS:
        return "must not contain bidirectional override or isolate characters"
    if ch in LINE_SEPARATORS:
        return "must not contain line separators (it is a single line)"
    return "must not contain control characters" + ("" if multiline else " (it is a single line)")


def is_blank(value: str) -> bool:
    """Empty once whitespace and invisible characters are taken away."""
    return all(_is_invisible(ch) for ch in value)


def clean_text(value: object, *, max_length: int, multiline: bool = False) -> str:
    """The NFC form of ``value`` if it is acceptable client text; ``TextError`` if not."""
    if not isinstance(value, str):
        raise TextError("must be a string")
    if len(value) > max_length * 4:  # no normalisation work for absurd input
        raise TextError(f"must be at most {max_length} characters")
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise TextError(problem)
    normal = unicodedata.normalize("NFC", value)
    if len(normal) > max_length:
        raise TextError(f"must be at most {max_length} characters")
    if is_blank(normal):
        raise TextError("must not be blank (or only invisible characters)")
    return normal


def clean_optional(value: object, *, max_length: int, multiline: bool = False) -> str | None:
    return None if value is None else clean_text(value, max_length=max_length, multiline=multiline)


def clean_identifier(value: object, pattern: re.Pattern[str], *, message: str) -> str:
    """A code or symbol that must match ``pattern`` in full (no trailing newline slips by)."""
    if not isinstance(value, str):
        raise TextError("must be a string")
    if len(value) > MAX_ID_LENGTH or not pattern.fullmatch(value):
        raise TextError(message)
    return value


def check_digits(text: str, *, max_length: int = MAX_DIGITS) -> None:
    """Refuse number text too long to convert (before ``int()`` or ``Decimal()`` sees it)."""
    if len(text) > max_length:
        raise TextError(f"must be at most {max_length} characters")


def escape(value: str, *, max_length: int = 500) -> str:
    """A printable, single-line rendition of untrusted text for records and log lines:
    control, bidirectional, separator and surrogate characters become ``\\uXXXX``."""
    out: list[str] = []
    for ch in value[:max_length]:
        code = ord(ch)
        if (
            0xD800 <= code <= 0xDFFF
            or ch in BIDI_CONTROLS
            or ch in LINE_SEPARATORS
            or ch == "\\"
            or unicodedata.category(ch) == "Cc"
        ):
            out.append("\\\\" if ch == "\\" else f"\\u{code:04x}")
        else:
            out.append(ch)
    if len(value) > max_length:
        out.append(f"...(+{len(value) - max_length})")
    return "".join(out)


def clean_json(
    value: object,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_items: int = MAX_JSON_ITEMS,
    max_key_length: int = MAX_JSON_KEY_LENGTH,
    max_string_length: int = MAX_JSON_STRING_LENGTH,
) -> Any:
    """A normalised copy of free-form JSON, or ``TextError`` naming the path of the problem.

    Accepted: objects with string keys, lists, strings (multi-line allowed), exact numbers
    (``int`` and finite ``Decimal``, at most ``MAX_DIGITS`` characters), booleans, null.
    Floats are refused: a number must come back exactly as it was sent.
    """
    budget = [max_items]

    def walk(node: object, path: str, depth: int) -> Any:
        where = f"{path}: " if path else ""
        if node is None or isinstance(node, bool):
            return node
        if isinstance(node, int):
            if len(str(abs(node))) > MAX_DIGITS:
                raise TextError(f"{where}numbers must have at most {MAX_DIGITS} digits")
            return node
        if isinstance(node, Decimal):
            if not node.is_finite() or len(str(node)) > MAX_DIGITS:
                raise TextError(f"{where}numbers must be finite, at most {MAX_DIGITS} characters")
            return node
        if isinstance(node, OversizedNumber):
            raise TextError(f"{where}numbers must have at most {MAX_DIGITS} characters")
        if isinstance(node, float):
            raise TextError(f"{where}numbers must be exact (no binary floating point)")
        if isinstance(node, str):
            try:
                return clean_text(node, max_length=max_string_length, multiline=True)
            except TextError as exc:
                raise TextError(f"{where}{exc}") from None
        if depth >= max_depth:
            raise TextError(f"{where}nesting deeper than {max_depth} levels")
        if isinstance(node, Mapping):
            result: dict[str, Any] = {}
            for key, item in node.items():
                budget[0] -= 1
                if budget[0] < 0:
                    raise TextError(f"more than {max_items} keys and items in all")
                try:
                    name = clean_text(key, max_length=max_key_length)
                except TextError as exc:
                    raise TextError(f"{where}keys {exc}") from None
                if name in result:
                    raise TextError(f"{where}two keys are the same once normalised")
                result[name] = walk(item, f"{path}.{name}" if path else name, depth + 1)
            return result
        if isinstance(node, list | tuple):
            items: list[Any] = []
            for index, item in enumerate(node):
                budget[0] -= 1
                if budget[0] < 0:
                    raise TextError(f"more than {max_items} keys and items in all")
                items.append(walk(item, f"{path}[{index}]", depth + 1))
            return items
        raise TextError(f"{where}is not a JSON value")

    return walk(value, "", 0)
