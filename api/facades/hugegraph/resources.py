"""Falcon resources of the HugeGraph facade: versions, the task list, one task, gremlin jobs."""

from __future__ import annotations

from uuid import UUID

import falcon

from api.facades.common import FacadeResource
from api.facades.hugegraph.jobs import gremlin_request
from api.facades.hugegraph.listing import find, list_tasks
from api.facades.hugegraph.params import first as first_param
from api.facades.hugegraph.params import force_flag, graph_namespace, list_query, parse_task_id
from api.facades.hugegraph.wire import (
    BAD_REQUEST,
    COMPLETED,
    DEFAULT_GRAPHSPACE,
    NOT_SUPPORTED,
    STATUS_OF_STATE,
    FACADE,
    WIRE,
    bad_argument,
    error,
    status_of,
    task_map,
    task_not_found,
)
from api.representations import written_doc
from ledger.commands import CancelTask, CreateTask, DropTask
from ledger.errors import IllegalTransitionError, TaskDroppedError, TaskNotFoundError

VERSIONS = {"versions": {"version": "v1", "core": "1.7.0", "gremlin": "3.5.1", "api": "0.72.0.0"}}
ACTION_CANCEL = "cancel"
GONE = (TaskDroppedError, TaskNotFoundError)


class HugeGraphResource(FacadeResource):
    wire = WIRE


class Versions(HugeGraphResource):
    """`GET /versions`, open to anyone like the real `@PermitAll`; clients probe it to pick the URL layout."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = VERSIONS


class TaskList(HugeGraphResource):
    """`GET …/tasks`."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, graph: str,
               graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        self.read(req, "list tasks")
        namespace = graph_namespace(graphspace, graph)
        resp.media = list_tasks(self.deps.view, namespace, list_query(req))


class TaskItem(HugeGraphResource):
    """`GET`, `DELETE` and `PUT ?action=cancel` on `…/tasks/{id}`."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, graph: str, task_id: str,
               graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        self.read(req, "read tasks")
        namespace, number = graph_namespace(graphspace, graph), parse_task_id(task_id)
        resp.media = task_map(find(self.deps.view, namespace, number), details=True)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, graph: str, task_id: str,
                  graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        who = self.control(req, "delete tasks")
        namespace, number, force = graph_namespace(graphspace, graph), parse_task_id(task_id), force_flag(req)
        self.min_position(req)
        doc = find(self.deps.view, namespace, number)
        if status_of(doc) not in COMPLETED and not force:
            raise _incomplete(number, status_of(doc))
        try:
            written = self.deps.ledger.drop_task(DropTask(UUID(doc["id"]), force), self.caller(req, who))
        except IllegalTransitionError as refused:
            raise _incomplete(number, STATUS_OF_STATE.get(refused.state, refused.state)) from None
        except GONE:
            raise task_not_found(number) from None
        self.written(resp, written)
        resp.status = falcon.HTTP_204

    def on_put(self, req: falcon.Request, resp: falcon.Response, graph: str, task_id: str,
               graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        who = self.control(req, "cancel tasks")
        namespace, number = graph_namespace(graphspace, graph), parse_task_id(task_id)
        action = first_param(req, "action")
        if action != ACTION_CANCEL:
            raise error(415, NOT_SUPPORTED, f"Not support action '{'null' if action is None else action}'")
        self.min_position(req)
        doc = find(self.deps.view, namespace, number)
        if status_of(doc) in (*COMPLETED, "cancelling"):
            raise _cannot_cancel(number)
        try:
            written = self.deps.ledger.cancel_task(CancelTask(UUID(doc["id"])), self.caller(req, who))
        except IllegalTransitionError:
            raise _cannot_cancel(number) from None
        except GONE:
            raise task_not_found(number) from None
        self.written(resp, written)
        resp.status = falcon.HTTP_202
        resp.media = task_map(written_doc(written), details=True)


class GremlinJobs(HugeGraphResource):
    """`POST …/jobs/gremlin`: a gremlin job becomes a queued ledger task that workers claim natively."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, graph: str,
                graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        who = self.control(req, "create gremlin jobs")
        namespace = graph_namespace(graphspace, graph)
        job = gremlin_request(req)
        written = self.deps.ledger.create_task(
            CreateTask(namespace, job.name(), "gremlin", job.task_input(graph)), self.caller(req, who))
        self.written(resp, written)
        number = written_doc(written)["external_ids"][FACADE]
        resp.status = falcon.HTTP_201
        resp.media = {"task_id": int(number)}


def _incomplete(number: int, status: str) -> Exception:
    return bad_argument(f"Can't delete incomplete task '{number}' in status {status.upper()}, "
                        "Please try to cancel the task first")


def _cannot_cancel(number: int) -> Exception:
    return error(400, BAD_REQUEST, f"Can't cancel task '{number}' which is completed or cancelling")
