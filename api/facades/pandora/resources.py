"""The export-task resources: create, update, delete, batch start/stop, list and run history."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import falcon

from api.auth import CONTROL, READ, Principal
from api.facades.common import FacadeDeps, caller, guarded, principal, wait_own_write
from api.facades.pandora.errors import CHALLENGE, not_found, pandora_error, reply
from api.facades.pandora.reading import read_page, read_statuses, read_task
from api.facades.pandora.wire import (
    READER_OPERATIONS, RUNNING_STATES, WRITER_OPERATIONS, history_json, page_json, task_json,
)
from api.parsing import wait_for_position
from ledger.commands import CreateTask, DropTask, PauseTask, ResumeTask, UpdateTask
from projections.queries import TaskFilter

FACADE = "pandora"
NAMESPACE = "pandora:default"
TASK_TYPE = "export"
SORTS = {"createTime": "created_at", "updateTime": "updated_at", "name": "name", "status": "state"}
HISTORY_SORTS = {"time": "time", "count": "run", "status": "status", "tookMillis": "took_ms"}
# A stopped task can be started again from these states; from the others (cancelled, finished) it cannot.
STARTABLE = ("PAUSED", "FAILED")


class Resource:
    """Base of the resources: methods a path does not serve answer 405 in Pandora's format."""

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps
        for method in ("get", "post", "put", "delete", "patch"):
            if not hasattr(self, f"on_{method}"):
                setattr(self, f"on_{method}", self._refuse)

    def _refuse(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        allowed = sorted(n[3:].upper() for n in vars(type(self)) if n.startswith("on_"))
        raise reply(405, f"{req.method} is not allowed here; use {', '.join(allowed)}",
                    {"Allow": ", ".join(allowed)})

    def _who(self, req: falcon.Request, roles: frozenset[str]) -> Principal:
        who = principal(self.deps, req)
        if who is None:
            raise reply(401, "unauthorized: send HTTP Basic credentials or a bearer token",
                        {"WWW-Authenticate": CHALLENGE})
        if who.role not in roles:
            raise reply(403, f"forbidden: role {who.role!r} may not do this; "
                             f"allowed roles: {', '.join(sorted(roles))}")
        return who

    def _tasks(self, raw_ids: list[str], *, fresh: bool = False) -> list[dict[str, Any]]:
        """The export tasks named by the ids, or a 404 naming the first that is not one.

        `fresh` first lets the view catch up with every write so far (a write decides from the state it reads);
        otherwise the view gets that moment only when a task is missing (it may have been written just now).
        """
        if fresh:
            self._catch_up()
        docs = {raw: self._doc(raw) for raw in raw_ids}
        if None in docs.values() and not fresh:
            self._catch_up()
            docs = {raw: doc or self._doc(raw) for raw, doc in docs.items()}
        for raw, doc in docs.items():
            if doc is None:
                raise not_found(raw)
        # Two spellings of one UUID name one task: it is acted on once.
        return list({doc["id"]: doc for doc in docs.values() if doc is not None}.values())

    def _catch_up(self) -> None:
        self.deps.view.wait_for(self.deps.ledger.head_position(), self.deps.min_position_wait)

    def _doc(self, raw: str) -> dict[str, Any] | None:
        try:
            doc = self.deps.view.get(UUID(raw))
        except ValueError:
            return None
        if doc is None or doc["dropped"] or doc["namespace"] != NAMESPACE:
            return None
        return doc

    def _done(self, resp: falcon.Response, position: int, body: dict[str, Any] | None = None) -> None:
        if position:
            wait_own_write(self.deps, position)
            resp.set_header("Ledger-Position", str(position))
        resp.media = body or {}

    def _read(self, req: falcon.Request) -> Principal:
        """A reader, once the view shows the writes the client names in `Ledger-Min-Position` (if any)."""
        who = self._who(req, READ)
        wait_for_position(req, self.deps.view, self.deps.min_position_wait)
        return who


@guarded(pandora_error)
class ExportTasks(Resource):
    """`POST /api/v1/export/task`: a recurring ledger task of type export."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self._who(req, CONTROL)
        spec = read_task(req)
        cmd = CreateTask(NAMESPACE, spec.name, type=TASK_TYPE, input=spec.input, schedule=spec.schedule)
        written = self.deps.ledger.create_task(cmd, caller(req, who, FACADE))
        self._done(resp, written.position, {"id": str(written.task_id)})


@guarded(pandora_error)
class ExportTask(Resource):
    """`/api/v1/export/task/{id}`: update (name, spl, interval) and delete."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self._who(req, CONTROL)
        doc = self._tasks([task_id], fresh=True)[0]
        spec = read_task(req)
        changes = {"name": spec.name, "input": spec.input, "schedule": spec.schedule}
        written = self.deps.ledger.update_task(UpdateTask(UUID(doc["id"]), changes), caller(req, who, FACADE))
        self._done(resp, written.position)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self._who(req, CONTROL)
        doc = self._tasks([task_id], fresh=True)[0]
        # Forced: a recurring task is never finished, it waits QUEUED for its next run.
        written = self.deps.ledger.drop_task(DropTask(UUID(doc["id"]), force=True), caller(req, who, FACADE))
        self._done(resp, written.position)


@guarded(pandora_error)
class ExportTaskStatuses(Resource):
    """`PUT /api/v1/export/tasks/status`: start (resume) or stop (pause) many tasks; all checked first."""

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self._who(req, CONTROL)
        raw_ids, status = read_statuses(req)
        docs = self._tasks(raw_ids, fresh=True)
        if status == "running":
            for doc in docs:
                if doc["state"] not in (*RUNNING_STATES, *STARTABLE):
                    raise reply(409, f"export task {doc['id']} is {doc['state']} and cannot be started again")
        position = 0
        for doc in docs:
            position = max(position, self._apply(doc, status, req, who))
        self._done(resp, position)

    def _apply(self, doc: dict[str, Any], status: str, req: falcon.Request, who: Principal) -> int:
        """Writes the change a task needs, if any; the position of the write, else 0."""
        task_id, by = UUID(doc["id"]), caller(req, who, FACADE)
        if status == "stopped" and doc["state"] in RUNNING_STATES:
            return self.deps.ledger.pause_task(PauseTask(task_id, "stopped through the Pandora API"), by).position
        if status == "running" and doc["state"] in STARTABLE:
            return self.deps.ledger.resume_task(ResumeTask(task_id), by).position
        return 0


@guarded(pandora_error)
class ExportTaskList(Resource):
    """`GET /api/v1/export/task/list`: the tasks of the namespace, paged, sorted, filtered by name prefix."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self._read(req)
        page = read_page(req, SORTS, "createTime")
        found = self.deps.view.list(TaskFilter(namespace=NAMESPACE, name_prefix=page.prefix), page.sort,
                                    page.descending, None, page.size, page.offset)
        operations = WRITER_OPERATIONS if who.role in CONTROL else READER_OPERATIONS
        resp.media = page_json(found.total, page.number, page.size, "tasks",
                               [task_json(doc, operations) for doc in found.items])


@guarded(pandora_error)
class ExportTaskHistory(Resource):
    """`GET /api/v1/export/task/{id}/history`: the task's runs, paged and sorted."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        self._read(req)
        doc = self._tasks([task_id])[0]
        page = read_page(req, HISTORY_SORTS, "time")
        rows, total = self.deps.view.schedule_runs(UUID(doc["id"]), sort=page.sort, descending=page.descending,
                                                   limit=page.size, offset=page.offset)
        resp.media = page_json(total, page.number, page.size, "histories",
                               [history_json(doc["id"], row) for row in rows])
