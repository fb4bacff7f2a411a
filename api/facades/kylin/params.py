"""Query parameters as Kylin's controllers read them, each refused by name with a 400 when malformed."""

from __future__ import annotations

import re
from typing import Any

import falcon
from falcon.uri import parse_query_string

from api.facades.common import Refusal
from api.parsing import storable

JAVA_INT_MAX = 2**31 - 1
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")
_TRUE = ("true", "on", "yes", "1")
_FALSE = ("false", "off", "no", "0")

Query = dict[str, list[str]]


def query_of(req: falcon.Request) -> Query:
    """Every parameter with all its values; blank values count as absent, as Spring binds them."""
    parsed = parse_query_string(req.query_string, keep_blank=True, csv=False)
    query: Query = {}
    for name, value in parsed.items():
        values = value if isinstance(value, list) else [value]
        if not all(storable(text) for text in (name, *values)):
            raise Refusal(400, f"Parameter '{name}' must not contain NUL characters or invalid UTF-8")
        kept = [v for v in values if v.strip()]
        if kept:
            query[name] = kept
    return query


def single(query: Query, name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise Refusal(400, f"Parameter '{name}' must be given once")
    return values[0]


def integer(query: Query, name: str, default: int | None, low: int = 0, high: int = JAVA_INT_MAX) -> int | None:
    text = single(query, name)
    if text is None:
        return default
    return _integer(name, text.strip(), low, high)


def _integer(name: str, text: str, low: int, high: int) -> int:
    if not _INTEGER.fullmatch(text):
        raise Refusal(400, f"Parameter '{name}' must be an integer, not '{text[:50]}'")
    value = int(text)
    if not low <= value <= high:
        raise Refusal(400, f"Parameter '{name}' must be between {low} and {high}, not {value}")
    return value


def required_integer(query: Query, name: str, low: int, high: int) -> int:
    value = integer(query, name, None, low, high)
    if value is None:
        raise Refusal(400, f"Required Integer parameter '{name}' is not present")
    return value


def integers(query: Query, name: str, allowed: Any) -> list[int]:
    """A repeatable integer parameter (`status=2&status=8`, or `status=2,8` as Spring splits it)."""
    codes = []
    for value in query.get(name, []):
        for text in value.split(","):
            code = _integer(name, text.strip(), -JAVA_INT_MAX, JAVA_INT_MAX)
            if code not in allowed:
                listed = ", ".join(str(c) for c in sorted(allowed))
                raise Refusal(400, f"Parameter '{name}' must be one of {listed}, not {code}")
            codes.append(code)
    return codes


def boolean(query: Query, name: str, default: bool) -> bool:
    text = single(query, name)
    if text is None:
        return default
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise Refusal(400, f"Parameter '{name}' must be true or false, not '{text[:50]}'")


def choice(query: Query, name: str, allowed: tuple[str, ...], default: str) -> str:
    text = single(query, name)
    if text is None:
        return default
    if text not in allowed:
        raise Refusal(400, f"Parameter '{name}' must be one of {', '.join(allowed)}, not '{text[:50]}'")
    return text


def text(query: Query, name: str, limit: int = 1000) -> str | None:
    value = single(query, name)
    if value is not None and len(value) > limit:
        raise Refusal(400, f"Parameter '{name}' must be at most {limit} characters")
    return value
