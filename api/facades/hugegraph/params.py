"""Reading HugeGraph requests: path names, task ids, list parameters and flags, each refused in its format."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import falcon

from api.facades.hugegraph.wire import (
    HUGE_EXCEPTION,
    JAXRS_NOT_FOUND,
    NOT_FOUND,
    STATUS_NAMES,
    bad_argument,
    error,
    namespace,
)
from api.parsing import storable

DEFAULT_LIMIT = 100
NO_LIMIT = -1
MAX_IDS = 500
MAX_NAMESPACE = 200
JAVA_LONG = 2 ** 63
_LONG = re.compile(r"[+-]?[0-9]{1,19}")


@dataclass(frozen=True)
class ListQuery:
    """`GET …/tasks` parameters: status (a TaskStatus name), ids, limit (None = no limit) and page."""

    status: str | None
    ids: tuple[int, ...] | None
    limit: int | None
    page: str | None


def graph_namespace(graphspace: str, graph: str) -> str:
    """The ledger namespace of a graph; a name no namespace can hold is a graph that does not exist."""
    name = namespace(graphspace, graph)
    if not storable(graphspace) or not graphspace.isprintable() or not graphspace:
        raise error(404, NOT_FOUND, f"Graph space '{graphspace}' does not exist")
    if not storable(graph) or not graph.isprintable() or not graph or len(name) > MAX_NAMESPACE:
        raise error(404, NOT_FOUND, f"Graph '{graph}' does not exist")
    return name


def parse_task_id(text: str) -> int:
    """A `{id}` path segment as a Java long; anything else matches no resource (JAX-RS answers 404)."""
    number = _long(text)
    if number is None:
        raise error(404, JAXRS_NOT_FOUND, "HTTP 404 Not Found")
    return number


def list_query(req: falcon.Request) -> ListQuery:
    """The list parameters, checked in the order TaskAPI.list checks them."""
    status, page, limit_text = first(req, "status"), first(req, "page"), first(req, "limit")
    limit = _limit_value(limit_text)
    ids = _ids(req)
    if ids is not None:
        if status is not None:
            raise bad_argument(f"Not support status when query task by ids, but got status='{status}'")
        if page is not None:
            raise bad_argument(f"Not support page when query task by ids, but got page='{page}'")
        return ListQuery(None, ids, None, None)
    if status is not None and status.upper() not in STATUS_NAMES:
        raise bad_argument(f"Status value must be in [{', '.join(STATUS_NAMES)}], but got '{status}'")
    if limit < 0 and limit != NO_LIMIT:
        raise bad_argument(f"Invalid limit {limit}")
    if page:
        check_page(page)
    return ListQuery(status.upper() if status is not None else None, None,
                     None if limit == NO_LIMIT else limit, page)


def force_flag(req: falcon.Request) -> bool:
    value = first(req, "force")
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise bad_argument(f"Invalid boolean value '{value}' for force, expect 'true' or 'false'")


def first(req: falcon.Request, name: str) -> str | None:
    """A single-valued query parameter: JAX-RS takes the first one given."""
    value: Any = req.params.get(name)
    return value[0] if isinstance(value, list) else value


def check_page(page: str) -> None:
    """A page token must be one this facade made (see `docs/compatibility.md (HugeGraph)`)."""
    try:
        raw = base64.urlsafe_b64decode(page + "=" * (-len(page) % 4))
        sort, value, last_id = json.loads(raw)
        if sort != "created_at" or not isinstance(value, str) or not isinstance(last_id, str):
            raise ValueError(page)
        datetime.fromisoformat(value)
        UUID(last_id)
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise error(400, HUGE_EXCEPTION, f"Invalid page: '{page}'") from None


def _limit_value(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    number = _long(text)
    if number is None:
        raise bad_argument(f"Invalid limit '{text}', it must be an integer")
    return number


def _ids(req: falcon.Request) -> tuple[int, ...] | None:
    given: Any = req.params.get("ids")
    if given is None:
        return None
    texts = given if isinstance(given, list) else [given]
    if len(texts) > MAX_IDS:
        raise bad_argument(f"Too many ids: at most {MAX_IDS} may be queried at once, but got {len(texts)}")
    numbers = [_long(text) for text in texts]
    for text, number in zip(texts, numbers):
        if number is None:
            raise bad_argument(f"Invalid task id '{text}', it must be an integer")
    return tuple(dict.fromkeys(n for n in numbers if n is not None))


def _long(text: str) -> int | None:
    if not _LONG.fullmatch(text):
        return None
    number = int(text)
    return number if -JAVA_LONG <= number < JAVA_LONG else None
