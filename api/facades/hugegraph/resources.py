"""Falcon resources of the HugeGraph facade: versions, the task list, one task, gremlin jobs."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

import falcon

from api.auth import CONTROL, READ
from api.facades.common import FacadeDeps, caller, guarded, wait_own_write
from api.facades.hugegraph.gate import map_error, not_allowed, require
from api.facades.hugegraph.jobs import gremlin_request
from api.facades.hugegraph.listing import find, list_tasks
from api.facades.hugegraph.params import first as first_param
from api.facades.hugegraph.params import force_flag, graph_namespace, list_query, parse_task_id
from api.facades.hugegraph.wire import (
    BAD_REQUEST,
    COMPLETED,
    DEFAULT_GRAPHSPACE,
    FACADE,
    NOT_SUPPORTED,
    STATUS_OF_STATE,
    bad_argument,
    error,
    status_of,
    task_map,
    task_not_found,
)
from api.parsing import wait_for_position
from api.representations import written_doc
from ledger.commands import CancelTask, CreateTask, DropTask
from ledger.errors import IllegalTransitionError, TaskDroppedError, TaskNotFoundError

VERSIONS = {"versions": {"version": "v1", "core": "1.7.0", "gremlin": "3.5.1", "api": "0.72.0.0"}}
ACTION_CANCEL = "cancel"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
GONE = (TaskDroppedError, TaskNotFoundError)
R = TypeVar("R")


def refusing_others(cls: type[R]) -> type[R]:
    """Answers the methods a resource does not serve with HugeGraph's 405 rather than falcon's own.

    HEAD is served wherever GET is, as JAX-RS does (falcon sends no body for HEAD).
    """
    if "on_get" in vars(cls):
        setattr(cls, "on_head", vars(cls)["on_get"])
    allowed = tuple(m for m in METHODS if f"on_{m.lower()}" in vars(cls))

    def refuse(self: object, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        raise not_allowed(allowed)

    def options(self: object, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        resp.set_header("Allow", ", ".join((*allowed, "OPTIONS")))

    for method in METHODS:
        if method not in allowed:
            setattr(cls, f"on_{method.lower()}", refuse)
    setattr(cls, "on_options", options)
    return cls


@guarded(map_error)
@refusing_others
class Versions:
    """`GET /versions`, open to anyone like the real `@PermitAll`; clients probe it to pick the URL layout."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = VERSIONS


@guarded(map_error)
@refusing_others
class TaskList:
    """`GET …/tasks`."""

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response, graph: str,
               graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        require(self.deps, req, READ, "list tasks")
        namespace = graph_namespace(graphspace, graph)
        _read_your_writes(self.deps, req)
        resp.media = list_tasks(self.deps.view, namespace, list_query(req))


@guarded(map_error)
@refusing_others
class TaskItem:
    """`GET`, `DELETE` and `PUT ?action=cancel` on `…/tasks/{id}`."""

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response, graph: str, task_id: str,
               graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        require(self.deps, req, READ, "read tasks")
        namespace, number = graph_namespace(graphspace, graph), parse_task_id(task_id)
        _read_your_writes(self.deps, req)
        resp.media = task_map(find(self.deps.view, namespace, number), details=True)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, graph: str, task_id: str,
                  graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        who = require(self.deps, req, CONTROL, "delete tasks")
        namespace, number, force = graph_namespace(graphspace, graph), parse_task_id(task_id), force_flag(req)
        _read_your_writes(self.deps, req)
        doc = find(self.deps.view, namespace, number)
        if status_of(doc) not in COMPLETED and not force:
            raise _incomplete(number, status_of(doc))
        try:
            written = self.deps.ledger.drop_task(DropTask(UUID(doc["id"]), force), caller(req, who, FACADE))
        except IllegalTransitionError as refused:
            raise _incomplete(number, STATUS_OF_STATE.get(refused.state, refused.state)) from None
        except GONE:
            raise task_not_found(number) from None
        _written(self.deps, resp, written.position)
        resp.status = falcon.HTTP_204

    def on_put(self, req: falcon.Request, resp: falcon.Response, graph: str, task_id: str,
               graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        who = require(self.deps, req, CONTROL, "cancel tasks")
        namespace, number = graph_namespace(graphspace, graph), parse_task_id(task_id)
        action = first_param(req, "action")
        if action != ACTION_CANCEL:
            raise error(415, NOT_SUPPORTED, f"Not support action '{'null' if action is None else action}'")
        _read_your_writes(self.deps, req)
        doc = find(self.deps.view, namespace, number)
        if status_of(doc) in (*COMPLETED, "cancelling"):
            raise _cannot_cancel(number)
        try:
            written = self.deps.ledger.cancel_task(CancelTask(UUID(doc["id"])), caller(req, who, FACADE))
        except IllegalTransitionError:
            raise _cannot_cancel(number) from None
        except GONE:
            raise task_not_found(number) from None
        _written(self.deps, resp, written.position)
        resp.status = falcon.HTTP_202
        resp.media = task_map(written_doc(written), details=True)


@guarded(map_error)
@refusing_others
class GremlinJobs:
    """`POST …/jobs/gremlin`: a gremlin job becomes a queued ledger task that workers claim natively."""

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps

    def on_post(self, req: falcon.Request, resp: falcon.Response, graph: str,
                graphspace: str = DEFAULT_GRAPHSPACE) -> None:
        who = require(self.deps, req, CONTROL, "create gremlin jobs")
        namespace = graph_namespace(graphspace, graph)
        job = gremlin_request(req)
        written = self.deps.ledger.create_task(
            CreateTask(namespace, job.name(), "gremlin", job.task_input(graph)), caller(req, who, FACADE))
        _written(self.deps, resp, written.position)
        number = written_doc(written)["external_ids"][FACADE]
        resp.status = falcon.HTTP_201
        resp.media = {"task_id": int(number)}


def _read_your_writes(deps: FacadeDeps, req: falcon.Request) -> None:
    """Reads honour the native `Ledger-Min-Position` header (real clients never send it)."""
    wait_for_position(req, deps.view, deps.min_position_wait)


def _written(deps: FacadeDeps, resp: falcon.Response, position: int) -> None:
    """A write answers once the views show it, with its log position as the native API gives it."""
    wait_own_write(deps, position)
    resp.set_header("Ledger-Position", str(position))


def _incomplete(number: int, status: str) -> Exception:
    return bad_argument(f"Can't delete incomplete task '{number}' in status {status.upper()}, "
                        "Please try to cancel the task first")


def _cannot_cancel(number: int) -> Exception:
    return error(400, BAD_REQUEST, f"Can't cancel task '{number}' which is completed or cancelling")
