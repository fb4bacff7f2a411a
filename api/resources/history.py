"""History on purpose: a task's audit timeline, its runs, and the global event feed."""

from __future__ import annotations

from uuid import UUID

import falcon

from api.representations import events, occurrences, runs
from ledger.application import TaskLedger
from ledger.errors import TaskNotFoundError
from projections.queries import TaskView

DEFAULT_LIMIT = 100
DEFAULT_OCCURRENCES = 50


class TaskEvents:
    """`/tasks/{id}/events`: every event of one task, oldest first, from the event store."""

    def __init__(self, ledger: TaskLedger) -> None:
        self.ledger = ledger

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: UUID) -> None:
        after = req.context.query.get("after_version", 0)
        found = self.ledger.task_events(task_id, after, req.context.query.get("limit", DEFAULT_LIMIT))
        resp.media = {"events": events(found), "next_after_version": found[-1]["version"] if found else after}


class TaskRuns:
    """`/tasks/{id}/runs`: one row per lease (attempt), and a page of the schedule's occurrences."""

    def __init__(self, view: TaskView) -> None:
        self.view = view

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: UUID) -> None:
        if self.view.get(task_id) is None:
            raise TaskNotFoundError(task_id)
        query = req.context.query
        sort = query.get("sort", "-time")
        page, total = self.view.schedule_runs(task_id, sort=sort.lstrip("-"), descending=sort.startswith("-"),
                                              limit=query.get("limit", DEFAULT_OCCURRENCES),
                                              offset=query.get("offset", 0))
        resp.media = {"runs": runs(self.view.runs(task_id)), "occurrences": occurrences(page),
                      "occurrences_total": total}


class EventFeed:
    """`/events`: every event after a log position, in log order."""

    def __init__(self, ledger: TaskLedger) -> None:
        self.ledger = ledger

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        after = req.context.query.get("after", 0)
        found = self.ledger.events_after(after, req.context.query.get("limit", DEFAULT_LIMIT))
        resp.media = {"events": events(found), "next_after": found[-1]["position"] if found else after}
