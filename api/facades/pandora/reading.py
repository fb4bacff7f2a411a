"""Reading Pandora requests: task bodies, batch status bodies and paging queries, each refused with a 400."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import falcon

from api.facades.pandora.errors import BadField
from api.facades.pandora.interval import schedule_of
from api.parsing import read_json, storable

MAX_NAME = 1000
MAX_SPL = 100_000
MAX_BATCH = 1000
MAX_PAGE_SIZE = 1000
MAX_PAGE_NO = 10**9
DEFAULT_PAGE_SIZE = 10
STATUSES = ("running", "stopped")


@dataclass(frozen=True)
class TaskSpec:
    """What a create or update body asks for, in ledger terms."""

    name: str
    input: dict[str, Any]
    schedule: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """A page of a list: ledger sort column, direction, 1-based page number and size, name prefix."""

    sort: str
    descending: bool
    number: int
    size: int
    prefix: str | None

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def read_task(req: falcon.Request) -> TaskSpec:
    """The create/update body; unknown fields are ignored, as Qiniu's servers do."""
    body = read_json(req)
    name = _text(body, "name", MAX_NAME)
    spl = _text(body, "spl", MAX_SPL)
    schedule, schedule_field = schedule_of(body.get("interval"))
    req.context.pandora_schedule_field = schedule_field
    return TaskSpec(name, {"spl": spl, "interval": body["interval"]}, schedule)


def _text(body: dict[str, Any], name: str, high: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadField(name, "is required and must be a non-empty string")
    if len(value) > high:
        raise BadField(name, f"must have at most {high} characters")
    return value


def read_statuses(req: falcon.Request) -> tuple[list[str], str]:
    """The batch start/stop body: the task ids (duplicates once) and the target status."""
    body = read_json(req)
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise BadField("tasks", "is required and must be a JSON array of task ids (strings)")
    if len(tasks) > MAX_BATCH:
        raise BadField("tasks", f"must list at most {MAX_BATCH} task ids")
    status = body.get("status")
    if status not in STATUSES:
        raise BadField("status", f"must be one of {', '.join(STATUSES)}")
    return list(dict.fromkeys(tasks)), status


def read_page(req: falcon.Request, sorts: dict[str, str], default_sort: str) -> Page:
    """sort, order, pageNo (1-based), pageSize and prefix; empty values mean the default."""
    sort = _param(req, "sort") or default_sort
    if sort not in sorts:
        raise BadField("sort", f"must be one of {', '.join(sorts)}")
    order = (_param(req, "order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise BadField("order", "must be asc or desc")
    number = _count(req, "pageNo", 1, MAX_PAGE_NO)
    size = _count(req, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    prefix = _param(req, "prefix")
    if prefix is not None and len(prefix) > MAX_NAME:
        raise BadField("prefix", f"must have at most {MAX_NAME} characters")
    return Page(sorts[sort], order == "desc", number, size, prefix)


def _count(req: falcon.Request, name: str, default: int, high: int) -> int:
    raw = _param(req, name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not 1 <= int(raw) <= high:
        raise BadField(name, f"must be a whole number from 1 to {high}")
    return int(raw)


def _param(req: falcon.Request, name: str) -> str | None:
    value = req.params.get(name)
    if isinstance(value, list):
        raise BadField(name, "must be given only once")
    if value is not None and not storable(value):
        raise BadField(name, "must not contain NUL characters or invalid UTF-8")
    return value or None
