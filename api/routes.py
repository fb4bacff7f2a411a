"""The route table: every path, method, role, schema and status of the native API, in one place.

The app mounts it, the gate middleware enforces it, and the OpenAPI document is generated from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema

from api import representations as r
from api import schemas as s
from api.auth import ADMIN, CONTROL, READ, TOKEN_USERS, WORK, Authenticator
from api.metrics import MetricsEndpoint
from api.resources import accounts, actions, bulk, history, ops, tasks, workers
from ledger.application import TaskLedger
from projections.queries import TaskView

BASE = "/ledger/v1"
TASK = BASE + "/tasks/{task_id:uuid}"


@dataclass(frozen=True)
class Deps:
    """The collaborators resources are built from."""

    ledger: TaskLedger
    view: TaskView
    auth: Authenticator
    clock: Callable[[], datetime]
    min_position_wait: float
    lag_budget_events: int
    openapi: dict[str, Any]
    multiprocess_metrics: bool = False


@dataclass(frozen=True)
class Operation:
    """One method on one path. `roles=None` means no authentication."""

    method: str
    name: str
    summary: str
    roles: frozenset[str] | None = READ
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    reads_view: bool = False
    writes: bool = False
    headers: tuple[str, ...] = ()
    also: tuple[tuple[int, str], ...] = ()
    tag: str = "tasks"


@dataclass(frozen=True)
class Route:
    template: str
    make: Callable[[Deps], object]
    operations: tuple[Operation, ...]


def _action_route(action: actions.Action) -> Route:
    return Route(f"{TASK}/{action.name}", lambda d: actions.TaskAction(d.ledger, action), (
        Operation("POST", f"{action.name}Task", action.summary, action.roles, body=action.schema,
                  response=r.WriteReceiptSchema, writes=True, headers=action.headers, tag="actions"),))


BULK_SUMMARIES = {"pause": "Pause", "resume": "Resume", "cancel": "Cancel", "abort": "Abort", "drop": "Drop"}


def _bulk_route(action: str) -> Route:
    body = {"resume": s.BulkSchema, "drop": s.BulkDropSchema}.get(action, s.BulkReasonSchema)
    return Route(f"{BASE}/bulk/{action}", lambda d: bulk.BulkAction(d.ledger, d.view, action), (
        Operation("POST", f"{action}Tasks", f"{BULK_SUMMARIES[action]} every task the filter selects "
                  "(or count them: dry_run)", CONTROL, body=body, query=s.TaskFilterQuery,
                  response=r.BulkResultSchema, reads_view=True, writes=True, headers=("Ledger-Min-Position",),
                  also=((422, "More tasks match than `max` (`bulk-over-max`); nothing was written"),),
                  tag="bulk"),))


def _ops_routes(base: str, suffix: str) -> tuple[Route, ...]:
    return (
        Route(base + "/healthz", lambda d: ops.Health(d.clock), (
            Operation("GET", f"health{suffix}", "Is the process up", None, response=r.HealthSchema, tag="ops"),)),
        Route(base + "/readyz", lambda d: ops.Ready(d.view, d.lag_budget_events), (
            Operation("GET", f"ready{suffix}", "Is the service ready: database reachable, projections within "
                      "the lag budget", None, response=r.ReadySchema,
                      also=((503, "Not ready; the problem lists the reasons"),), tag="ops"),)),
        Route(base + "/metrics", lambda d: MetricsEndpoint(d.view, d.multiprocess_metrics), (
            Operation("GET", f"metrics{suffix}", "Prometheus metrics: requests by route and status, latency, "
                      "projection lag, tasks by namespace and state, lease expiries, skipped and missed "
                      "occurrences, claim latency, the build (docs/observability.md)", None,
                      also=((503, "The database does not answer (`database-unavailable`)"),), tag="ops"),)),
    )


ROUTES: tuple[Route, ...] = (
    Route(BASE + "/tasks", lambda d: tasks.TaskCollection(d.ledger, d.view, BASE), (
        Operation("POST", "createTask", "Create a task", CONTROL, body=s.CreateTaskSchema,
                  response=r.TaskSchema, status=201, writes=True, headers=("Idempotency-Key",)),
        Operation("GET", "listTasks", "List tasks", query=s.ListTasksQuery, response=r.TaskPageSchema,
                  reads_view=True, headers=("Ledger-Min-Position",)),
    )),
    Route(TASK, lambda d: tasks.TaskItem(d.ledger, d.view), (
        Operation("GET", "getTask", "Read a task, now or as of a version or an instant", query=s.TaskQuery,
                  response=r.TaskSchema, reads_view=True, headers=("Ledger-Min-Position",)),
        Operation("PUT", "updateTask", "Update a task", CONTROL, body=s.UpdateTaskSchema, response=r.TaskSchema,
                  writes=True, headers=("If-Match",)),
        Operation("DELETE", "dropTask", "Drop a task", CONTROL, query=s.DropQuery, status=204, writes=True),
    )),
    *(_action_route(a) for a in actions.ACTIONS),
    *(_bulk_route(a) for a in BULK_SUMMARIES),
    Route(TASK + "/steps/{index:int(min=0)}", lambda d: actions.TaskStep(d.ledger), (
        Operation("POST", "updateStep", "Update a step of a running task", WORK, body=s.StepUpdateSchema,
                  response=r.WriteReceiptSchema, writes=True, tag="actions"),)),
    Route(TASK + "/outputs/{buffer}", lambda d: actions.TaskOutput(d.ledger), (
        Operation("POST", "appendOutput", "Append a page to an output buffer", WORK, body=s.OutputPageSchema,
                  response=r.WriteReceiptSchema, writes=True, tag="actions"),
        Operation("DELETE", "closeOutput", "Close an output buffer", CONTROL | WORK,
                  response=r.WriteReceiptSchema, writes=True, tag="actions"),
    )),
    Route(BASE + "/claims", lambda d: workers.Claims(d.ledger, d.view, d.min_position_wait), (
        Operation("POST", "claimTask", "Claim the oldest matching queued task", WORK, body=s.ClaimSchema,
                  response=r.ClaimedSchema, writes=True, reads_view=True, headers=("Ledger-Min-Position",),
                  also=((204, "No queued task matches"),), tag="workers"),)),
    Route(BASE + "/heartbeats", lambda d: workers.Heartbeats(d.ledger), (
        Operation("POST", "recordHeartbeats", "Record many heartbeats", WORK, body=s.HeartbeatBatchSchema,
                  response=r.HeartbeatResultsSchema, tag="workers"),)),
    Route(TASK + "/events", lambda d: history.TaskEvents(d.ledger), (
        Operation("GET", "listTaskEvents", "Read a task's audit timeline", query=s.TaskEventsQuery,
                  response=r.TaskEventsSchema, tag="history"),)),
    Route(TASK + "/runs", lambda d: history.TaskRuns(d.view), (
        Operation("GET", "listTaskRuns", "Read a task's runs", query=s.TaskRunsQuery, response=r.RunsSchema,
                  reads_view=True, headers=("Ledger-Min-Position",), tag="history"),)),
    Route(BASE + "/events", lambda d: history.EventFeed(d.ledger), (
        Operation("GET", "listEvents", "Read the global event feed", query=s.FeedQuery, response=r.FeedSchema,
                  tag="history"),)),
    Route(BASE + "/projections", lambda d: ops.ProjectionStatus(d.view), (
        Operation("GET", "listProjections", "Read projection positions and lag", response=r.ProjectionsSchema,
                  tag="ops"),)),
    Route(BASE + "/openapi.json", lambda d: ops.OpenApiDocument(d.openapi), (
        Operation("GET", "getOpenApi", "Read this OpenAPI document", None, tag="ops"),)),
    Route(BASE + "/users", lambda d: accounts.Users(d.auth), (
        Operation("POST", "createUser", "Create a user", ADMIN, body=s.CreateUserSchema, response=r.UserSchema,
                  status=201, also=((409, "A user with that name exists (`user-exists`); it is never overwritten"),),
                  tag="accounts"),)),
    Route(BASE + "/tokens", lambda d: accounts.Tokens(d.auth), (
        Operation("POST", "createToken", "Mint a bearer token", TOKEN_USERS, body=s.CreateTokenSchema,
                  response=r.TokenSchema, status=201, tag="accounts"),)),
    Route(BASE + "/tokens/{token_id}", lambda d: accounts.Token(d.auth), (
        Operation("DELETE", "revokeToken", "Revoke a bearer token (yours; an admin: anyone's)", TOKEN_USERS,
                  status=204, tag="accounts"),)),
    *_ops_routes(BASE, ""),
    *_ops_routes("", "Root"),
)
