"""Reading requests: JSON bodies, query strings and the ledger's own headers, each refused with a 4xx."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import falcon
from marshmallow import Schema, ValidationError

from api.problems import Problem, invalid_body, invalid_query, malformed
from ledger.commands import Caller
from ledger.state import MAX_JSON_DEPTH
from projections.queries import TaskView

MAX_BODY = 1024 * 1024
# The body may wrap caller JSON a few levels deep; the ledger names the field past MAX_JSON_DEPTH.
MAX_DEPTH = MAX_JSON_DEPTH + 4
JSON_TYPES = ("application/json",)
# The header rules, as regular expressions the OpenAPI document repeats (optional whitespace is HTTP's SP/HTAB).
IF_MATCH = re.compile(r'[ \t]*(?:(\*)|(?:W/)?"?([0-9]{1,18})"?)[ \t]*')
MIN_POSITION = re.compile(r"[0-9]{1,18}")
IDEMPOTENCY_KEY = re.compile(r"[ -~]{1,255}")
# Text the store can hold: PostgreSQL text carries no NUL (lone surrogates cannot be sent as UTF-8 at all).
STORABLE_PATTERN = r"^[^\u0000]*$"


@cache
def schema(cls: type[Schema]) -> Schema:
    """One instance per schema class; marshmallow schemas are safe to share for load and dump."""
    return cls()


ABSENT: Any = object()


def load_body(cls: type[Schema], req: falcon.Request) -> dict[str, Any]:
    """The body loaded by its schema; an absent body is `{}` where that is a valid body, else a 400. A body of only
    white space is not absent: it is not JSON (400)."""
    data = _read_json(req, blank_is_absent=False)
    if data is ABSENT:
        required = body_required(cls)
        if required is not None:
            raise malformed("body", f"is required: {required}")
        data = {}
    try:
        loaded: dict[str, Any] = schema(cls).load(data)
    except ValidationError as error:
        raise invalid_body(error) from None
    return loaded


def load_query(cls: type[Schema] | None, req: falcon.Request) -> dict[str, Any]:
    params = dict(req.params)
    texts = [text for name, value in params.items()
             for text in (name, *(value if isinstance(value, list) else [value]))]
    if not all(storable(text) for text in texts):
        raise invalid_query(ValidationError({"query": ["must not contain NUL characters or invalid UTF-8"]}))
    if cls is None:
        if params:
            raise invalid_query(ValidationError({k: ["is not a known query parameter"] for k in params}))
        return {}
    try:
        loaded: dict[str, Any] = schema(cls).load(params)
    except ValidationError as error:
        raise invalid_query(error) from None
    return loaded


@cache
def body_required(cls: type[Schema]) -> str | None:
    """What a body of this schema must hold when `{}` is not a valid one (None when it is)."""
    if not schema(cls).validate({}):
        return None
    names = [name for name, field in schema(cls).fields.items() if field.required]
    return f"a JSON object with {' and '.join(names)}" if names else "a JSON object"


def read_json(req: falcon.Request, *, max_bytes: int = MAX_BODY, media_default: str = "") -> Any:
    """The body as a JSON object; an empty body means `{}`."""
    data = _read_json(req, max_bytes=max_bytes, media_default=media_default)
    return {} if data is ABSENT else data


def read_json_or_none(req: falcon.Request, *, max_bytes: int = MAX_BODY, media_default: str = "") -> Any:
    """The body as a JSON object, or None when there is none (no body, only white space, or JSON `null`)."""
    data = _read_json(req, max_bytes=max_bytes, media_default=media_default, null_is_absent=True)
    return None if data is ABSENT else data


def _read_json(req: falcon.Request, blank_is_absent: bool = True, *, max_bytes: int = MAX_BODY,
               media_default: str = "", null_is_absent: bool = False) -> Any:
    if req.content_length is not None and req.content_length > max_bytes:
        raise _too_large(max_bytes)
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    if not raw:
        return ABSENT
    if not raw.strip():
        if blank_is_absent:  # the facades' clients: kept as it was
            return ABSENT
        raise malformed("body", "must be a JSON object (or no body at all), not only white space")
    media_type = (req.content_type or media_default).partition(";")[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        raise malformed("Content-Type", "must be application/json", 415, "unsupported-media-type")
    try:
        # Decoding strictly first: json.loads(bytes) would let encoded lone surrogates through.
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise malformed("body", "must be valid JSON (UTF-8)") from None
    if data is None and null_is_absent:
        return ABSENT
    if not isinstance(data, dict):
        raise malformed("body", "must be a JSON object")
    _refuse_deep_nesting(data)
    if b"\\u" in raw:
        _refuse_unstorable_text(data)
    return data


def _too_large(max_bytes: int) -> Problem:
    return malformed("body", f"must be at most {max_bytes} bytes", 413, "payload-too-large")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _refuse_deep_nesting(data: dict[str, Any]) -> None:
    """Deeply nested values would exhaust the recursion of every reader of the event, projections included."""
    stack: list[tuple[str, Any, int]] = [(str(key), value, 2) for key, value in data.items()]
    while stack:
        field, value, depth = stack.pop()
        if depth > MAX_DEPTH and isinstance(value, (dict, list)):
            raise Problem(422, "invalid-request", f"The request body is not valid: {field} is nested too deeply",
                          errors=[{"field": field, "rule": f"must not nest more than {MAX_DEPTH} levels deep"}])
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((field, child, depth + 1) for child in children)


def _refuse_unstorable_text(data: Any) -> None:
    """NUL characters and unpaired surrogates cannot be stored as PostgreSQL text or UTF-8."""
    bad = [{"field": path or "body", "rule": "must not contain NUL characters or unpaired surrogates"}
           for path in _unstorable(data, "")]
    if bad:
        raise Problem(422, "invalid-request", f"The request body is not valid: {bad[0]['field']} "
                      f"{bad[0]['rule']}", errors=bad)


def _unstorable(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if not storable(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if not storable(key):
                yield path or "body"
            else:
                yield from _unstorable(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, f"{path}.{index}" if path else str(index))


def storable(text: str) -> bool:
    """Whether PostgreSQL can store the text (no NUL) and it encodes as UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def wait_for_position(req: falcon.Request, view: TaskView, timeout: float) -> None:
    """Read-your-writes: waits, bounded, until the projections reached `Ledger-Min-Position`."""
    raw = req.get_header("Ledger-Min-Position")
    if raw is None:
        return
    if not MIN_POSITION.fullmatch(raw):
        raise malformed("Ledger-Min-Position", "must be a log position (an integer 0 or more)")
    position = int(raw)
    if view.wait_for(position, 0):
        return
    head = view.head()
    if position > head:
        raise malformed("Ledger-Min-Position", f"is beyond the log's head ({head}): no write has answered that "
                        f"position yet", code="position-beyond-head")
    if not view.wait_for(position, timeout):
        raise Problem(503, "projection-lagging", f"The read models have not reached position {raw} within "
                      f"{timeout:g} s; retry shortly.", headers={"Retry-After": "1"})


def expected_version(req: falcon.Request) -> int | None:
    """The version named by If-Match (`"3"`, `W/"3"` or `3`); None without the header or with `*`."""
    raw = req.get_header("If-Match")
    if raw is None:
        return None
    match = IF_MATCH.fullmatch(raw)
    if match is None:
        raise malformed("If-Match", 'must be the ETag of the task, such as "3", or *')
    return None if match.group(1) else int(match.group(2))


def idempotency_key(req: falcon.Request) -> str | None:
    key = req.get_header("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise malformed("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
    return key


def caller(req: falcon.Request) -> Caller:
    return Caller(req.context.principal.name, req.context.request_id)
