"""The job list: Kylin's v2 and v1 list parameters, turned into one search over the task view."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from api.facades.kylin import params as p
from api.facades.kylin.build import DEFAULT_PROJECT, UNSTATED_PROJECT
from api.facades.kylin.jobs import PREFIX, STATUS_CODES
from projections.queries import TaskFilter, TaskView

TIME_FILTERS = (0, 1, 2, 3, 4)  # last day, week, month, year; all
SORTS = ("last_modify", "job_name", "cube_name")
SEARCH_MODES = ("CUBING_ONLY", "ALL", "CHECKPOINT_ONLY")
MAX_PAGE = 10_000
VIEW_SORT = {"last_modify": "updated_at", "job_name": "name", "cube_name": "kylin_cube"}


@dataclass(frozen=True)
class JobSearch:
    """One list request, whichever API version it came through."""

    since: datetime | None
    states: tuple[str, ...] = ()
    project: str | None = None
    name_contains: str | None = None
    cube_contains: str | None = None
    sort: str = "last_modify"
    descending: bool = True
    offset: int = 0
    limit: int = 10
    nothing: bool = False
    caller: str | None = None


def v2_search(query: p.Query, now: datetime) -> JobSearch:
    """`GET /jobs` as JobControllerV2 reads it: timeFilter required, pageOffset a page index."""
    page_size = p.integer(query, "pageSize", 10, 0, MAX_PAGE) or 0
    page = p.integer(query, "pageOffset", 0) or 0
    return JobSearch(
        since=window_start(p.required_integer(query, "timeFilter", 0, 4), now),
        states=_states(query), project=p.text(query, "projectName"), name_contains=p.text(query, "jobName"),
        sort=p.choice(query, "sortby", SORTS, "last_modify"), descending=p.boolean(query, "reverse", True),
        offset=page * page_size, limit=page_size)


def v1_search(query: p.Query, now: datetime) -> JobSearch:
    """`GET /jobs` as the v1 JobController reads it: row offset and limit, newest first."""
    mode = p.choice(query, "jobSearchMode", SEARCH_MODES, "CUBING_ONLY")
    return JobSearch(
        since=window_start(p.integer(query, "timeFilter", 1, 0, 4) or 0, now),
        states=_states(query), project=p.text(query, "projectName"), cube_contains=p.text(query, "cubeName"),
        offset=p.integer(query, "offset", 0) or 0, limit=p.integer(query, "limit", 30, 0, MAX_PAGE) or 0,
        nothing=mode == "CHECKPOINT_ONLY")


def _states(query: p.Query) -> tuple[str, ...]:
    codes = p.integers(query, "status", STATUS_CODES)
    return tuple(sorted({state for code in codes for state in STATUS_CODES[code]}))


def window_start(code: int, now: datetime) -> datetime | None:
    """Start of a timeFilter window: a day, a week, a calendar month or year back; None for all."""
    if code == 0:
        return now - timedelta(days=1)
    if code == 1:
        return now - timedelta(weeks=1)
    if code == 2:
        year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        return now.replace(year=year, month=month, day=min(now.day, calendar.monthrange(year, month)[1]))
    if code == 3:
        return now.replace(year=now.year - 1, day=min(now.day, calendar.monthrange(now.year - 1, now.month)[1]))
    return None


def search(view: TaskView, job: JobSearch) -> tuple[list[dict[str, Any]], int]:
    """One page of matching tasks and the number of matches before paging."""
    if job.nothing:
        return [], 0
    flt = TaskFilter(states=job.states, namespace=PREFIX + job.project if job.project else None,
                     namespace_prefix=None if job.project else PREFIX, updated_after=job.since,
                     name_contains=job.name_contains, kylin_cube_contains=job.cube_contains)
    if job.project and job.project != DEFAULT_PROJECT and job.caller is not None:
        # The caller's own builds that named no project belong to whichever project they work in.
        flt = replace(flt, also=replace(flt, namespace=PREFIX + DEFAULT_PROJECT, submitter=job.caller,
                                        labels=(UNSTATED_PROJECT,)))
    # The view pages at least one row; pageSize=0 still answers the total, as Kylin does. Kylin's clients
    # page by the total, so it stays exact.
    page = view.list(flt, sort=VIEW_SORT[job.sort], descending=job.descending, limit=max(job.limit, 1),
                     offset=job.offset)
    return page.items[:job.limit], page.total
