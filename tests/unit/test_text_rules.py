"""``core.shared.text`` and ``core.shared.exact_json``: the rules every entry point uses."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.shared import exact_json
from core.shared.text import (
    OversizedNumber,
    TextError,
    clean_identifier,
    clean_json,
    clean_text,
    escape,
    is_blank,
    text_problem,
)


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        "a\udfffb",
        "a\u0000b",
        "line\nbreak",
        "tab\tin a name",
        "\u202eevil",
        "x\u2069",
        "para\u2029graph",
        "",
        "   ",
        "\u200b\u200c\u200d\u2060\ufeff",
        "\u3164\u115f",
        "x" * 11,
    ],
)
def test_single_line_refusals(value: str) -> None:
    with pytest.raises(TextError):
        clean_text(value, max_length=10)


def test_multi_line_fields_keep_line_breaks_but_not_other_controls() -> None:
    assert clean_text("one\r\ntwo\tthree", max_length=100, multiline=True) == "one\r\ntwo\tthree"
    with pytest.raises(TextError):
        clean_text("bell\u0007", max_length=100, multiline=True)


def test_nfc_and_length_after_normalisation() -> None:
    assert clean_text("Zu\u0308rich", max_length=6) == "Zürich"
    assert clean_text("\u212b", max_length=1) == "\u00c5"  # the angstrom sign composes


def test_identifiers_match_in_full() -> None:
    symbol = re.compile(r"[A-Z0-9]{2,11}")
    assert clean_identifier("HVO", symbol, message="bad") == "HVO"
    for value in ["HVO\n", "HVO ", " HVO", "hvo", "HVO\u0000"]:
        with pytest.raises(TextError, match="bad"):
            clean_identifier(value, symbol, message="bad")


def test_escape_makes_one_printable_line() -> None:
    assert escape("a\nb\u202ec\ud800\\") == "a\\u000ab\\u202ec\\ud800\\\\"
    assert escape("x" * 10, max_length=4) == "xxxx...(+6)"


def test_free_form_json_limits() -> None:
    assert clean_json({"Cafe\u0301": [1, Decimal("0.95"), None, True]}) == {
        "Café": [1, Decimal("0.95"), None, True]
    }
    for bad in [
        {"k" * 101: 1},
        {"a": 0.5},
        {"a": OversizedNumber("1" * 200)},
        {"a": 10**101},
        {"a": "\ud800"},
        {"a\n": 1},
        {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
        {str(n): n for n in range(501)},
        {"a": Decimal("NaN")},
        {"Cafe\u0301": 1, "Café": 2},
    ]:
        with pytest.raises(TextError):
            clean_json(bad)


def test_exact_json_round_trip_keeps_number_text() -> None:
    text = '{"a":0.95,"b":1.50,"c":1E+5,"d":12345678901234567890123,"e":[-0.0,"x"]}'
    value = exact_json.loads(text)
    assert value["a"] == Decimal("0.95") and not isinstance(value["a"], float)
    assert exact_json.dumps(value) == text
    assert isinstance(exact_json.loads("1" * 101), OversizedNumber)
    assert isinstance(exact_json.loads("0." + "1" * 100), OversizedNumber)
    for bad in ["NaN", "[Infinity]", "[" * 100_000 + "]" * 100_000, b'{"a":' * 65 + b"1"]:
        with pytest.raises(ValueError):
            exact_json.loads(bad)
    with pytest.raises(TypeError):
        exact_json.check({"a": 0.95})


@given(st.text(st.characters(codec=None)))
def test_every_string_is_either_refused_or_clean(value: str) -> None:
    try:
        cleaned = clean_text(value, max_length=50, multiline=True)
    except TextError:
        return
    assert text_problem(cleaned, multiline=True) is None
    assert not is_blank(cleaned) and len(cleaned) <= 50
    assert cleaned.encode("utf-8")  # storable: no lone surrogates
