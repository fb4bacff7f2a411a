"""Tasks as a collection and as items: create, list, read (now or as of a point), update, drop."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import falcon

from api.parsing import caller, expected_version, idempotency_key
from api.problems import Problem
from api.representations import etag, task_doc, write_headers, written_doc
from ledger.application import TaskLedger
from ledger.commands import CreateTask, DropTask, UpdateTask
from ledger.errors import TaskDroppedError, TaskNotFoundError
from projections.queries import TaskFilter, TaskView

FILTERS = ("namespace", "namespace_prefix", "facade", "type", "name_prefix", "name_contains", "worker", "submitter",
           "error_contains", "created_after", "created_before", "updated_after", "updated_before")
DEFAULT_LIMIT = 50
# `total` is counted up to this many matches; beyond, it is the planner's estimate (`total_is_estimate`).
# Counting costs what it counts, a heap page per match once the view outgrows the database's cache: at
# 200 a count costs about what the page does at any size (docs/indexes.md).
EXACT_TOTAL = 200


def task_path(base: str, task_id: UUID | str) -> str:
    return f"{base}/tasks/{task_id}"


class TaskCollection:
    """`/tasks`: create a task, list tasks."""

    def __init__(self, ledger: TaskLedger, view: TaskView, base: str) -> None:
        self.ledger, self.view, self.base = ledger, view, base

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = dict(req.context.body)
        if "steps" in body:
            body["steps"] = tuple(body["steps"])
        written = self.ledger.create_task(CreateTask(**body, idempotency_key=idempotency_key(req)), caller(req))
        # A replayed create answers the task as first created, not as it is now.
        resp.media = task_doc(written_doc(written))
        resp.status = falcon.HTTP_201
        resp.location = task_path(self.base, written.task_id)
        write_headers(resp, written)
        if written.replayed:
            resp.set_header("Idempotent-Replayed", "true")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = req.context.query
        sort = query.get("sort", "created_at")
        page = self.view.list(task_filter(query), sort.lstrip("-"), sort.startswith("-"), query.get("cursor"),
                              query.get("limit", DEFAULT_LIMIT), exact_up_to=EXACT_TOTAL)
        resp.media = {"items": [task_doc(d) for d in page.items], "total": page.total,
                      "total_is_estimate": page.total_is_estimate, "next_cursor": page.next_cursor}
        if page.next_cursor is not None:
            resp.append_header("Link", f'<{_next_page(req, page.next_cursor)}>; rel="next"')


def task_filter(query: dict[str, Any]) -> TaskFilter:
    """The view's filter from a validated `TaskFilterQuery`."""
    selectors = [label.partition(":") for label in query.get("label", ())]
    return TaskFilter(states=tuple(query.get("state", ())),
                      labels=tuple((key, value) for key, colon, value in selectors if colon),
                      label_keys=tuple(key for key, colon, _ in selectors if not colon),
                      **{k: query[k] for k in FILTERS if k in query})


def _next_page(req: falcon.Request, cursor: str) -> str:
    params: dict[str, Any] = {k: v for k, v in req.params.items() if k != "cursor"}
    params["cursor"] = cursor
    return f"{req.path}?{urlencode(params, doseq=True)}"


class TaskItem:
    """`/tasks/{id}`: read, update, drop one task."""

    def __init__(self, ledger: TaskLedger, view: TaskView) -> None:
        self.ledger, self.view = ledger, view

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: UUID) -> None:
        as_of = req.context.query.get("as_of")
        doc = self._current(task_id) if as_of is None else self._as_of(task_id, as_of)
        resp.media = task_doc(doc)
        resp.set_header("ETag", etag(doc["version"]))

    def _current(self, task_id: UUID) -> dict[str, Any]:
        doc = self.view.get(task_id)
        if doc is None:
            raise TaskNotFoundError(task_id)
        if doc["dropped"]:
            raise TaskDroppedError(task_id)
        return doc

    def _as_of(self, task_id: UUID, as_of: Any) -> dict[str, Any]:
        """History on purpose: replays the event store, dropped tasks included."""
        if not isinstance(as_of, int):
            return self.ledger.task_as_of(task_id, at=as_of).to_dict()
        state = self.ledger.task_as_of(task_id, version=as_of)
        if state.version < as_of:
            raise Problem(404, "version-not-found", f"task {task_id} has {state.version} versions, not {as_of}")
        return state.to_dict()

    def on_put(self, req: falcon.Request, resp: falcon.Response, task_id: UUID) -> None:
        cmd = UpdateTask(task_id, req.context.body, expected_version(req))
        written = self.ledger.update_task(cmd, caller(req))
        resp.media = task_doc(written_doc(written))
        write_headers(resp, written)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: UUID) -> None:
        written = self.ledger.drop_task(DropTask(task_id, req.context.query.get("force", False)), caller(req))
        resp.status = falcon.HTTP_204
        write_headers(resp, written)
