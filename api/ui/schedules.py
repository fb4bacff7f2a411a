"""`/ui/schedules` (every recurring task, its cron in words, its next occurrences) and `/ui/schedules/{id}`
(one schedule's recorded occurrences, paged and sortable like `GET /tasks/{id}/runs`).

Both read the projections only: the list walks the partial indexes of active and stopped schedules in id
order and stops at the page (`TaskView.schedules`), the history is `TaskView.schedule_runs`. Next
occurrences come from the ledger's own calendar (`TaskLedger.calendar`, the `ledger.schedule.Calendar`
port the composition root injects), read at the ledger's clock: the dashboard shows exactly the instants
the scheduler will record, in the same cron dialects, without reading cron itself.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

import falcon
from cron_descriptor import CasingTypeEnum, ExpressionDescriptor
from marshmallow import fields

from api import schemas as s
from api.fields import QueryInt, QuerySchema, Str
from api.rules import Between, Printable, Size
from api.ui.pages import Pages, _params, _task_id, form_query, page
from ledger.errors import InvalidValueError, TaskNotFoundError
from ledger.schedule import Calendar

log = logging.getLogger(__name__)
PAGE_SIZE = 50
COUNT_BOUND = 1_000  # the summary counts active and stopped schedules up to this many each ("1000+")
NEXT_COUNT = 3  # next occurrences shown per schedule
# How far ahead next occurrences are looked for (a yearly schedule still shows three).
HORIZON = timedelta(days=5 * 366)
OCCURRENCE_PAGE = 50
# Where a schedule records occurrences, and where it would again once resumed.
RECORDING = ("QUEUED", "RUNNING")
STOPPED = ("PAUSED",)
# The cron macros the calendar reads, as the 5-field expressions cron-descriptor can put in words.
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
TIME = "%Y-%m-%d %H:%M:%S"


class ScheduleListQuery(QuerySchema):
    namespace = Str(validate=[Size(1, 200), Printable()])
    after = fields.UUID(error_messages={"invalid_uuid": "must be a task id (a UUID)"})
    limit = QueryInt(validate=Between(1, 200))


@functools.lru_cache(maxsize=4096)
def describe_cron(cron: str) -> str | None:
    """The expression in English (cron-descriptor), or None when it cannot say: the page shows the expression
    alone then. 6 and 7 fields are Quartz (seconds first, days of the week 1 = Sunday), 5 are standard cron."""
    expression = MACROS.get(cron.strip().lower(), cron)
    quartz = len(expression.split()) >= 6
    try:
        described = ExpressionDescriptor(expression, casing_type=CasingTypeEnum.Sentence, verbose=False,
                                         use_24hour_time_format=True, day_of_week_start_index_zero=not quartz,
                                         locale_code="en_US").get_description()
    except Exception as error:  # noqa: BLE001 - any failure of the describer only loses the words
        log.debug("cron %r has no description: %s", cron, error)
        return None
    return str(described) if described else None


def zone_of(schedule: Any) -> ZoneInfo:
    """The schedule's time zone (UTC when it names none the machine knows)."""
    name = schedule.get("timezone") if isinstance(schedule, dict) else None
    try:
        return ZoneInfo(str(name or "UTC"))
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return ZoneInfo("UTC")


def moment(value: Any, zone: ZoneInfo) -> dict[str, str] | None:
    """An instant (ISO-8601 text or datetime) as the page shows it: wall clock in the zone, and in UTC."""
    if value is None or value == "":
        return None
    try:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return {"local": str(value), "utc": str(value), "iso": str(value)}
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    local = at.astimezone(zone)
    utc = at.astimezone(timezone.utc)
    return {"local": f"{local.strftime(TIME)} {local.tzname()}", "utc": f"{utc.strftime(TIME)} UTC",
            "iso": utc.isoformat()}


def next_occurrences(calendar: Calendar | None, schedule: Any, cursor: Any, now: datetime,
                     count: int = NEXT_COUNT) -> list[datetime] | None:
    """The schedule's next `count` instants after its cursor and after now, by the ledger's calendar; None
    when there is no calendar or it cannot read the schedule (the page says so, the others still show)."""
    if calendar is None or not isinstance(schedule, dict):
        return None
    try:
        after = max(datetime.fromisoformat(str(cursor)), now) if cursor else now
    except (ValueError, TypeError):
        after = now
    try:
        return calendar.occurrences(schedule, after, after + HORIZON, count)
    except (InvalidValueError, KeyError, TypeError, ValueError, OverflowError) as error:
        log.info("a schedule cannot be read for its next occurrences (%s)", error)
        return None


def schedule_row(row: dict[str, Any], calendar: Calendar | None, now: datetime) -> dict[str, Any]:
    """What the page shows of one recurring task (a row of TaskView.schedules, or a task document)."""
    given = row.get("schedule")
    schedule: dict[str, Any] = given if isinstance(given, dict) else {}
    zone = zone_of(schedule)
    cron = str(schedule.get("cron") or "")
    state = row.get("state")
    upcoming = next_occurrences(calendar, schedule, row.get("cursor"), now) if state in (*RECORDING, *STOPPED) else []
    return {**row, "id": str(row["id"]), "schedule": schedule, "cron": cron,
            "description": describe_cron(cron) if cron else None,
            "timezone": str(schedule.get("timezone") or "UTC"), "zone": zone,
            "next": None if upcoming is None else [moment(t, zone) for t in upcoming],
            "stopped": state in STOPPED, "recording": state in RECORDING,
            "last_run": moment(row.get("last_run_time"), zone), "cursor_at": moment(row.get("cursor"), zone),
            "run_count": row.get("run_count") or 0, "occurrence_count": row.get("occurrence_count") or 0,
            "waiting_runs": row.get("waiting_runs") or 0}


class Schedules:
    """`/ui/schedules`: every recurring task (active, paused or ending), a page at a time in id order."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.pages.viewer(req)
        params = _params(req)
        query, errors = form_query(ScheduleListQuery(), params)
        if errors:
            self.pages.render(req, resp, "schedules.html", 400, who, errors=errors,
                              params=params, items=[], counts=None, count_bound=COUNT_BOUND, next_after=None)
            return
        deps = self.pages.deps
        limit, namespace = query.get("limit", PAGE_SIZE), query.get("namespace")
        rows = deps.view.schedules(query.get("after"), limit + 1, namespace)
        now = deps.ledger.clock()
        items = [schedule_row(r, deps.ledger.calendar, now) for r in rows[:limit]]
        following = None
        if len(rows) > limit:
            following = urlencode({**{k: v for k, v in params.items() if k != "after"}, "after": items[-1]["id"]})
        self.pages.render(req, resp, "schedules.html", 200, who, errors=[], params=params, items=items,
                          counts=deps.view.schedule_counts(COUNT_BOUND, namespace), count_bound=COUNT_BOUND,
                          next_after=following, paged=bool(query.get("after")), now=moment(now, ZoneInfo("UTC")))


class ScheduleHistory:
    """`/ui/schedules/{id}`: a recurring task's schedule, next occurrences and recorded occurrences (run,
    skipped, missed …) a page at a time, sorted by time, run, status or took_ms as `/tasks/{id}/runs` sorts."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.pages.viewer(req)
        deps, tid = self.pages.deps, _task_id(task_id)
        doc = deps.view.get(tid)
        if doc is None:
            raise TaskNotFoundError(tid)
        if not isinstance(doc.get("schedule"), dict):
            self.pages.render(req, resp, "error.html", 404, who, title="Not a recurring task",
                              message=f"Task {tid} has no schedule; its page shows its runs.")
            return
        params = _params(req)
        query, errors = form_query(s.TaskRunsQuery(), params)
        now = deps.ledger.clock()
        task = schedule_row(_as_schedule_row(tid, doc), deps.ledger.calendar, now)
        sort, limit = query.get("sort", "-time"), query.get("limit", OCCURRENCE_PAGE)
        offset = query.get("offset", 0)
        rows, total = ([], 0) if errors else deps.view.schedule_runs(
            tid, sort=sort.lstrip("-"), descending=sort.startswith("-"), limit=limit, offset=offset)
        zone = task["zone"]
        shown = [{**o, "time_at": moment(o.get("time"), zone), "started": moment(o.get("started_at"), zone),
                  "ended": moment(o.get("ended_at"), zone)} for o in rows]
        pager = _pager(params, offset, limit, len(rows), total)
        self.pages.render(req, resp, "schedule.html", 400 if errors else 200, who, errors=errors, params=params,
                          task=task, occurrences=shown, total=total, sort=sort, offset=offset, pager=pager,
                          api=f"{deps.base}/tasks/{tid}/runs")


def _as_schedule_row(tid: UUID, doc: dict[str, Any]) -> dict[str, Any]:
    pending = doc.get("pending_runs")
    return {"id": tid, "namespace": doc.get("namespace"), "name": doc.get("name"), "state": doc.get("state"),
            "updated_at": doc.get("updated_at"), "schedule": doc.get("schedule"),
            "cursor": doc.get("schedule_cursor") or doc.get("created_at"), "run_count": doc.get("run_count"),
            "last_run_time": doc.get("last_run_time"), "occurrence_count": doc.get("occurrence_count"),
            "current_run": doc.get("current_run"), "waiting_runs": len(pending) if isinstance(pending, list) else 0}


def _pager(params: dict[str, Any], offset: int, limit: int, shown: int, total: int) -> dict[str, Any]:
    def link(at: int) -> str:
        return "?" + urlencode({**{k: v for k, v in params.items() if k != "offset"}, "offset": str(at)})

    return {"first": offset + 1 if shown else offset, "last": offset + shown,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "next": link(offset + limit) if offset + shown < total else None}
