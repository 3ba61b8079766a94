"""The app's JSON provider: exact numbers in and out (``core.shared.exact_json``).

Request bodies are read with fractions as ``Decimal`` (so a free-form ``0.95`` is never a
float) and over-long numbers as ``OversizedNumber`` (refused by validation with a 422, not a
500 from Python's integer-conversion limit); nesting too deep is a 400. Responses write a
``Decimal`` as a JSON number with its own text. Everything else is as quart-schema's provider
does it (pydantic models, dates).
"""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.json.provider import DefaultJSONProvider

from core.shared import exact_json


class ExactJsonProvider(DefaultJSONProvider):
    def __init__(self, app: Quart, inner: DefaultJSONProvider) -> None:
        super().__init__(app)
        self._inner = inner
        self.sort_keys = False
        self.ensure_ascii = inner.ensure_ascii
        self.compact = inner.compact

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.get("indent") is not None:  # the OpenAPI document, pretty-printed
            kwargs.setdefault("default", self._inner.default)
            kwargs.setdefault("sort_keys", self.sort_keys)
            return self._inner.dumps(obj, **kwargs)
        return exact_json.dumps(
            obj,
            ensure_ascii=self.ensure_ascii,
            sort_keys=bool(kwargs.get("sort_keys", self.sort_keys)),
            default=self._inner.default,
        )

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return exact_json.loads(s)


def install_exact_json(app: Quart) -> None:
    """Replace the app's JSON provider (after quart-schema has installed its own)."""
    inner = app.json
    if isinstance(inner, ExactJsonProvider):
        return
    assert isinstance(inner, DefaultJSONProvider)
    app.json = ExactJsonProvider(app, inner)
