"""The export-task resources: create, update, delete, batch start/stop, list and run history."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import falcon

from api.auth import CONTROL, Principal
from api.facades.common import FacadeResource
from api.facades.pandora.errors import WIRE, not_found, reply
from api.facades.pandora.reading import read_page, read_statuses, read_task
from api.facades.pandora.wire import (
    READER_OPERATIONS, RUNNING_STATES, WRITER_OPERATIONS, history_json, page_json, task_json,
)
from ledger.commands import CreateTask, DropTask, PauseTask, ResumeTask, UpdateTask
from projections.queries import TaskFilter

NAMESPACE = "pandora:default"
TASK_TYPE = "export"
SORTS = {"createTime": "created_at", "updateTime": "updated_at", "name": "name", "status": "state"}
HISTORY_SORTS = {"time": "time", "count": "run", "status": "status", "tookMillis": "took_ms"}
# A stopped task can be started again from these states; from the others (cancelled, finished) it cannot.
STARTABLE = ("PAUSED", "FAILED")


class Resource(FacadeResource):
    """Base of the export-task resources: finding the tasks a request names."""

    wire = WIRE

    def _tasks(self, raw_ids: list[str], *, fresh: bool = False) -> list[dict[str, Any]]:
        """The export tasks named by the ids, or a 404 naming the first that is not one.

        `fresh` first lets the view catch up with every write so far (a write decides from the state it reads);
        otherwise the view gets that moment only when a task is missing (it may have been written just now).
        """
        if fresh:
            self.caught_up()
        docs = {raw: self._doc(raw) for raw in raw_ids}
        if None in docs.values() and not fresh:
            self.caught_up()
            docs = {raw: doc or self._doc(raw) for raw, doc in docs.items()}
        for raw, doc in docs.items():
            if doc is None:
                raise not_found(raw)
        # Two spellings of one UUID name one task: it is acted on once.
        return list({doc["id"]: doc for doc in docs.values() if doc is not None}.values())

    def _doc(self, raw: str) -> dict[str, Any] | None:
        try:
            doc = self.deps.view.get(UUID(raw))
        except ValueError:
            return None
        if doc is None or doc["dropped"] or doc["namespace"] != NAMESPACE:
            return None
        return doc

    def _done(self, resp: falcon.Response, position: int, body: dict[str, Any] | None = None) -> None:
        self.written(resp, position)
        resp.media = body or {}


class ExportTasks(Resource):
    """`POST /api/v1/export/task`: a recurring ledger task of type export."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.control(req, "create export tasks")
        spec = read_task(req)
        cmd = CreateTask(NAMESPACE, spec.name, type=TASK_TYPE, input=spec.input, schedule=spec.schedule)
        written = self.deps.ledger.create_task(cmd, self.caller(req, who))
        self._done(resp, written.position, {"id": str(written.task_id)})


class ExportTask(Resource):
    """`/api/v1/export/task/{id}`: update (name, spl, interval) and delete."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.control(req, "update export tasks")
        doc = self._tasks([task_id], fresh=True)[0]
        spec = read_task(req)
        changes = {"name": spec.name, "input": spec.input, "schedule": spec.schedule}
        written = self.deps.ledger.update_task(UpdateTask(UUID(doc["id"]), changes), self.caller(req, who))
        self._done(resp, written.position)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.control(req, "delete export tasks")
        doc = self._tasks([task_id], fresh=True)[0]
        # Forced: a recurring task is never finished, it waits QUEUED for its next run.
        written = self.deps.ledger.drop_task(DropTask(UUID(doc["id"]), force=True), self.caller(req, who))
        self._done(resp, written.position)


class ExportTaskStatuses(Resource):
    """`PUT /api/v1/export/tasks/status`: start (resume) or stop (pause) many tasks; all checked first."""

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.control(req, "start or stop export tasks")
        raw_ids, status = read_statuses(req)
        docs = self._tasks(raw_ids, fresh=True)
        if status == "running":
            for doc in docs:
                if doc["state"] not in (*RUNNING_STATES, *STARTABLE):
                    raise reply(409, f"export task {doc['id']} is stopped ({doc['state'].lower()}): cannot start it now")
        position = 0
        for doc in docs:
            position = max(position, self._apply(doc, status, req, who))
        self._done(resp, position)

    def _apply(self, doc: dict[str, Any], status: str, req: falcon.Request, who: Principal) -> int:
        """Writes the change a task needs, if any; the position of the write, else 0."""
        task_id, by = UUID(doc["id"]), self.caller(req, who)
        if status == "stopped" and doc["state"] in RUNNING_STATES:
            return self.deps.ledger.pause_task(PauseTask(task_id, "stopped through the Pandora API"), by).position
        if status == "running" and doc["state"] in STARTABLE:
            return self.deps.ledger.resume_task(ResumeTask(task_id), by).position
        return 0


class ExportTaskList(Resource):
    """`GET /api/v1/export/task/list`: the tasks of the namespace, paged, sorted, filtered by name prefix."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.read(req)
        page = read_page(req, SORTS, "createTime")
        found = self.deps.view.list(TaskFilter(namespace=NAMESPACE, name_prefix=page.prefix), page.sort,
                                    page.descending, None, page.size, page.offset)
        operations = WRITER_OPERATIONS if who.role in CONTROL else READER_OPERATIONS
        resp.media = page_json(found.total, page.number, page.size, "tasks",
                               [task_json(doc, operations) for doc in found.items])


class ExportTaskHistory(Resource):
    """`GET /api/v1/export/task/{id}/history`: the task's runs, paged and sorted."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        self.read(req)
        doc = self._tasks([task_id])[0]
        page = read_page(req, HISTORY_SORTS, "time")
        rows, total = self.deps.view.schedule_runs(UUID(doc["id"]), sort=page.sort, descending=page.descending,
                                                   limit=page.size, offset=page.offset)
        resp.media = page_json(total, page.number, page.size, "histories",
                               [history_json(doc["id"], row) for row in rows])
