"""`Ledger`: every endpoint of the native API as a method (docs/api.md is the reference for each).

Tasks, events and runs come back as the JSON objects the API answers (`dict`s, typed as `Task` for the
editor); writes of task actions answer a `Receipt`. Reads that the API lets wait for a position
(get, list, runs, claims) send the highest `Ledger-Position` this `Ledger` has seen, so a read after your
own write always sees it, across threads and lease objects sharing the `Ledger`.
"""

from __future__ import annotations

import base64
import builtins
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import quote

from taskledger.client._transport import Answer, Transport
from taskledger.client.errors import ClientError

DEFAULT_URL = "http://127.0.0.1:8080"  # what `taskledger serve` binds by default
FILTERS = ("namespace", "namespace_prefix", "facade", "type", "name_prefix", "name_contains", "worker",
           "submitter", "error_contains", "created_after", "created_before", "updated_after", "updated_before")


class Task(TypedDict, total=False):
    """A task as the native API shows it (docs/api.md); times are ISO-8601 strings in UTC."""

    id: str
    version: int
    namespace: str
    facade: str
    name: str
    type: str
    input: Any
    submitter: str
    labels: dict[str, str]
    state: str
    progress: float
    message: str | None
    stats: dict[str, Any]
    steps: list[dict[str, Any]]
    buffers: dict[str, dict[str, Any]]
    retries: int
    max_retries: int
    heartbeat_timeout: float
    worker: str | None
    lease_epoch: int
    last_heartbeat: str | None
    result: Any
    error: str | None
    created_at: str
    updated_at: str | None
    started_at: str | None
    ended_at: str | None
    schedule: dict[str, Any] | None
    dropped: bool


@dataclass(frozen=True)
class Receipt:
    """What a task action answers: the version it made and its log position (and, by action, more)."""

    task_id: str
    version: int
    position: int
    lease_epoch: int | None = None
    directive: str | None = None
    sequence: int | None = None
    replayed: bool = False

    @classmethod
    def of(cls, answer: Answer) -> Receipt:
        body = answer.body or {}
        return cls(str(body["task_id"]), int(body["version"]), int(body["position"]), body.get("lease_epoch"),
                   body.get("directive"), body.get("sequence"),
                   answer.headers.get("Idempotent-Replayed", "").lower() == "true")


@dataclass(frozen=True)
class Claimed:
    """A claimed task: the lease (`lease_epoch`) and the task as the claim left it."""

    receipt: Receipt
    task: Task


@dataclass(frozen=True)
class Page:
    """One page of `GET /tasks`: `total` is exact up to 200, an estimate beyond (`total_is_estimate`)."""

    items: list[Task]
    total: int
    total_is_estimate: bool
    next_cursor: str | None


@dataclass(frozen=True)
class Heartbeat:
    """One item of a batch heartbeat (`POST /heartbeats`)."""

    task_id: str
    lease_epoch: int
    progress: float | None = None
    message: str | None = None
    stats: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return _given(task_id=self.task_id, lease_epoch=self.lease_epoch, progress=self.progress,
                      message=self.message, stats=self.stats)


@dataclass(frozen=True)
class HeartbeatResult:
    """How one heartbeat of a batch went: `status` 200 with the `directive`, or the problem it met."""

    task_id: str
    status: int
    directive: str | None = None
    version: int | None = None
    position: int | None = None
    problem: dict[str, Any] = field(default_factory=dict)


class Ledger:
    """A client of one taskledger service.

    `auth` is `(user, password)` for Basic authentication; `token` a bearer token instead. Requests are
    retried by the rules in docs/client.md (`retries` times within `retry_deadline` seconds); a refusal
    raises a `ProblemError` subclass (`taskledger.client.errors`), an unreachable service
    `ConnectionFailedError`.
    """

    def __init__(self, url: str = DEFAULT_URL, auth: tuple[str, str] | None = None, *, token: str | None = None,
                 timeout: float = 30.0, retries: int = 5, retry_deadline: float = 30.0) -> None:
        if auth is not None and token is not None:
            raise ValueError("give auth=(user, password) or token=..., not both")
        authorization = None
        if token is not None:
            authorization = f"Bearer {token}"
        elif auth is not None:
            authorization = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.url = url.rstrip("/")
        self.user = auth[0] if auth else None
        self.http = Transport(self.url, authorization, timeout=timeout, retries=retries,
                              retry_deadline=retry_deadline)

    @classmethod
    def from_env(cls, url: str | None = None, **options: Any) -> Ledger:
        """From TASKLEDGER_URL and TASKLEDGER_TOKEN, or TASKLEDGER_USER and TASKLEDGER_PASSWORD."""
        env = os.environ
        url = url or env.get("TASKLEDGER_URL") or DEFAULT_URL
        token = env.get("TASKLEDGER_TOKEN")
        if token:
            return cls(url, token=token, **options)
        user = env.get("TASKLEDGER_USER")
        if user:
            password = env.get("TASKLEDGER_PASSWORD")
            if password is None:
                raise ClientError(f"TASKLEDGER_USER is {user} but TASKLEDGER_PASSWORD is not set")
            return cls(url, (user, password), **options)
        raise ClientError("no credentials: set TASKLEDGER_TOKEN, or TASKLEDGER_USER and TASKLEDGER_PASSWORD "
                          "(`taskledger users add NAME --role worker` makes a user)")

    @property
    def position(self) -> int:
        """The highest log position a write of this client answered."""
        return self.http.position

    def observe(self, position: int) -> None:
        """Makes later reads wait for a log position (e.g. a `Receipt.position` another client got)."""
        self.http.note_position(position)

    def close(self) -> None:
        self.http.session.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ tasks
    def create(self, namespace: str, name: str, *, type: str | None = None, input: Any = None,
               submitter: str | None = None, labels: Mapping[str, str] | None = None,
               steps: Iterable[str] | None = None, max_retries: int | None = None,
               heartbeat_timeout: float | None = None, schedule: Mapping[str, Any] | None = None,
               external_id: str | None = None, idempotency_key: str | None = None) -> Task:
        """Creates a task. Always sent with an `Idempotency-Key` (a new one unless given), so a retry after a
        lost answer gets the task first created instead of a second one."""
        body = _given(namespace=namespace, name=name, type=type, input=input, submitter=submitter,
                      labels=dict(labels) if labels is not None else None,
                      steps=list(steps) if steps is not None else None, max_retries=max_retries,
                      heartbeat_timeout=heartbeat_timeout, schedule=dict(schedule) if schedule else None,
                      external_id=external_id)
        key = idempotency_key or uuid.uuid4().hex
        answer = self.http.request("POST", "/tasks", json=body, headers={"Idempotency-Key": key}, repeatable=True)
        return _task(answer.body)

    def get(self, task_id: str, *, as_of: int | str | None = None) -> Task:
        """The task now (waiting for this client's writes), or as of a version number or ISO-8601 instant."""
        params = {"as_of": str(as_of)} if as_of is not None else None
        return _task(self.http.request("GET", f"/tasks/{_id(task_id)}", params=params,
                                       wait_for_writes=as_of is None).body)

    def list(self, *, state: str | Iterable[str] | None = None, label: str | Iterable[str] | Mapping[str, str | None]
             | None = None, sort: str | None = None, limit: int | None = None, cursor: str | None = None,
             **filters: str | None) -> Page:
        """One page of tasks. Filters as `GET /tasks`: `state` (one or several, any of them), `label`
        (`"key:value"`, `"key"`, a list of them, or a mapping with None for "present"; all must match), and the
        keyword filters `namespace`, `namespace_prefix`, `facade`, `type`, `name_prefix`, `name_contains`,
        `worker`, `submitter`, `error_contains`, `created_after|before`, `updated_after|before`."""
        params = filter_params(state=state, label=label, **filters)
        params += _pairs(sort=sort, limit=limit, cursor=cursor)
        body = self.http.request("GET", "/tasks", params=params, wait_for_writes=True).body
        return Page([_task(t) for t in body["items"]], int(body["total"]), bool(body.get("total_is_estimate")),
                    body.get("next_cursor"))

    def iter_tasks(self, *, page_size: int = 200, **query: Any) -> Iterator[Task]:
        """Every task the filters select, page after page (keyset paging: no task twice, none skipped)."""
        cursor = None
        while True:
            page = self.list(limit=page_size, cursor=cursor, **query)
            yield from page.items
            if not page.next_cursor or not page.items:
                return
            cursor = page.next_cursor

    def update(self, task_id: str, *, if_match: int | None = None, **changes: Any) -> Task:
        """Changes the fields given (name, input, labels, max_retries, heartbeat_timeout, schedule); with
        `if_match` only if the task is still at that version (else `VersionMismatchError`)."""
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        answer = self.http.request("PUT", f"/tasks/{_id(task_id)}", json=changes, headers=headers,
                                   repeatable=if_match is not None)
        return _task(answer.body)

    def drop(self, task_id: str, *, force: bool = False) -> None:
        """Drops the task (an unended one only with `force`); its history stays readable."""
        self.http.request("DELETE", f"/tasks/{_id(task_id)}", params={"force": "true"} if force else None)

    # ---------------------------------------------------------- control actions
    def pause(self, task_id: str, reason: str | None = None) -> Receipt:
        return self._action(task_id, "pause", _given(reason=reason))

    def resume(self, task_id: str) -> Receipt:
        return self._action(task_id, "resume", {})

    def cancel(self, task_id: str, reason: str | None = None) -> Receipt:
        """Cancels: a running task becomes CANCELLING until its worker stops (it is told by its heartbeat)."""
        return self._action(task_id, "cancel", _given(reason=reason))

    def abort(self, task_id: str, reason: str | None = None) -> Receipt:
        return self._action(task_id, "abort", _given(reason=reason))

    # ----------------------------------------------------------- worker actions
    def claim(self, worker: str, *, namespace: str | None = None, type: str | None = None) -> Claimed | None:
        """Starts the oldest queued task matching namespace and type for `worker`; None when there is none.

        Not retried once sent (a second claim could lease a second task); a lost answer leaves the task
        leased until its heartbeat timeout, when the watchdog puts it back in the queue."""
        answer = self.http.request("POST", "/claims", json=_given(worker=worker, namespace=namespace, type=type),
                                   repeatable=False, wait_for_writes=True)
        if answer.status == 204 or not answer.body:
            return None
        return Claimed(Receipt.of(answer), _task(answer.body["task"]))

    def start(self, task_id: str, worker: str) -> Receipt:
        return self._action(task_id, "start", {"worker": worker}, repeatable=False)

    def heartbeat(self, task_id: str, lease_epoch: int, *, progress: float | None = None,
                  message: str | None = None, stats: Mapping[str, Any] | None = None) -> Receipt:
        """Records a heartbeat; the receipt's `directive` is continue, pause, cancel or stop."""
        body = _given(lease_epoch=lease_epoch, progress=progress, message=message,
                      stats=dict(stats) if stats is not None else None)
        return self._action(task_id, "heartbeat", body, repeatable=True)

    def heartbeats(self, items: Iterable[Heartbeat]) -> builtins.list[HeartbeatResult]:
        """Up to 500 heartbeats in one request; each answers on its own."""
        body = {"heartbeats": [i.body() for i in items]}
        answer = self.http.request("POST", "/heartbeats", json=body, repeatable=True)
        return [HeartbeatResult(str(r["task_id"]), int(r["status"]), r.get("directive"), r.get("version"),
                                r.get("position"), r.get("problem") or {}) for r in answer.body["results"]]

    def progress(self, task_id: str, lease_epoch: int, progress: float, message: str | None = None) -> Receipt:
        return self._action(task_id, "progress", _given(lease_epoch=lease_epoch, progress=progress,
                                                        message=message), repeatable=True)

    def step(self, task_id: str, index: int, lease_epoch: int, *, status: str | None = None,
             output: str | None = None, append: bool = False) -> Receipt:
        """Sets a step's status and/or output (`append` adds to it; such a write is not retried once sent)."""
        body = _given(lease_epoch=lease_epoch, status=status, output=output, append=append or None)
        return self.http_receipt("POST", f"/tasks/{_id(task_id)}/steps/{int(index)}", body, repeatable=not append)

    def output(self, task_id: str, buffer: str, lease_epoch: int, data: str, *, positions: int | None = None,
               last: bool = False) -> Receipt:
        """Appends a page to an output buffer (the receipt's `sequence` numbers it); not retried once sent."""
        body = _given(lease_epoch=lease_epoch, data=data, positions=positions, last=last or None)
        return self.http_receipt("POST", f"/tasks/{_id(task_id)}/outputs/{quote(buffer, safe='')}", body,
                                 repeatable=False)

    def close_output(self, task_id: str, buffer: str) -> Receipt:
        return self.http_receipt("DELETE", f"/tasks/{_id(task_id)}/outputs/{quote(buffer, safe='')}", None,
                                 repeatable=True)

    def complete(self, task_id: str, lease_epoch: int, result: Any = None, *,
                 idempotency_key: str | None = None) -> Receipt:
        """Completes the task under its lease; sent with an `Idempotency-Key`, so a retry after a lost answer
        gets the first receipt (`replayed`) and never a second event."""
        body = _given(lease_epoch=lease_epoch, result=result)
        return self._action(task_id, "complete", body, repeatable=True,
                            headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex})

    def fail(self, task_id: str, lease_epoch: int, error: str, *, retry: bool = True,
             idempotency_key: str | None = None) -> Receipt:
        """Fails the task under its lease (requeued while retries are left, unless `retry=False`); a task being
        cancelled ends CANCELLED. Idempotent on retry, as `complete`."""
        body = {"lease_epoch": lease_epoch, "error": error, "retry": retry}
        return self._action(task_id, "fail", body, repeatable=True,
                            headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex})

    # ------------------------------------------------------------------- bulk
    def bulk(self, action: str, *, dry_run: bool = False, max: int | None = None, reason: str | None = None,
             force: bool | None = None, cursor: str | None = None, state: Any = None, label: Any = None,
             **filters: str | None) -> dict[str, Any]:
        """One part of a bulk action (or its dry run) on every task the filters select; follow `cursor`
        while `done` is false (see `bulk_all`)."""
        body = _given(dry_run=dry_run or None, max=max, reason=reason, force=force, cursor=cursor)
        answer = self.http.request("POST", f"/bulk/{action}", params=filter_params(state=state, label=label,
                                                                                   **filters),
                                   json=body, repeatable=dry_run or cursor is not None)
        result: dict[str, Any] = answer.body
        return result

    # ---------------------------------------------------------------- history
    def events(self, task_id: str, *, after_version: int = 0, limit: int | None = None) -> dict[str, Any]:
        """One page of the task's audit timeline: `events` and `next_after_version`."""
        params = _pairs(after_version=after_version or None, limit=limit)
        page: dict[str, Any] = self.http.request("GET", f"/tasks/{_id(task_id)}/events", params=params).body
        return page

    def iter_events(self, task_id: str, *, after_version: int = 0) -> Iterator[dict[str, Any]]:
        """The whole timeline from a version on, oldest first."""
        while True:
            page = self.events(task_id, after_version=after_version, limit=1000)
            yield from page["events"]
            if not page["events"]:
                return
            after_version = page["next_after_version"]

    def runs(self, task_id: str, *, sort: str | None = None, limit: int | None = None,
             offset: int | None = None) -> dict[str, Any]:
        params = _pairs(sort=sort, limit=limit, offset=offset)
        runs: dict[str, Any] = self.http.request("GET", f"/tasks/{_id(task_id)}/runs", params=params,
                                                 wait_for_writes=True).body
        return runs

    def feed(self, *, after: int = 0, limit: int | None = None) -> dict[str, Any]:
        """The global event feed after a log position: `events` and `next_after`."""
        feed: dict[str, Any] = self.http.request("GET", "/events", params=_pairs(after=after, limit=limit)).body
        return feed

    # ------------------------------------------------------------- operations
    def projections(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request("GET", "/projections").body
        return answer

    def ready(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request("GET", "/readyz").body
        return answer

    def openapi(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request("GET", "/openapi.json").body
        return answer

    def create_user(self, name: str, password: str, role: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request(
            "POST", "/users", json={"name": name, "password": password, "role": role}).body
        return answer

    def create_token(self, *, user: str | None = None, label: str | None = None,
                     expires_in: int | None = None) -> dict[str, Any]:
        """Mints a bearer token (`token` is in the answer once; `id` names it for revoking)."""
        answer: dict[str, Any] = self.http.request(
            "POST", "/tokens", json=_given(user=user, label=label, expires_in=expires_in)).body
        return answer

    def revoke_token(self, token_id: str) -> None:
        self.http.request("DELETE", f"/tokens/{quote(token_id, safe='')}", repeatable=True)

    # --------------------------------------------------------------- plumbing
    def _action(self, task_id: str, verb: str, body: dict[str, Any], *, repeatable: bool = False,
                headers: Mapping[str, str] | None = None) -> Receipt:
        return self.http_receipt("POST", f"/tasks/{_id(task_id)}/{verb}", body, repeatable=repeatable,
                                 headers=headers)

    def http_receipt(self, method: str, path: str, body: Any, *, repeatable: bool,
                     headers: Mapping[str, str] | None = None) -> Receipt:
        return Receipt.of(self.http.request(method, path, json=body, repeatable=repeatable, headers=headers))


def filter_params(*, state: str | Iterable[str] | None = None,
                  label: str | Iterable[str] | Mapping[str, str | None] | None = None,
                  **filters: str | None) -> list[tuple[str, str]]:
    """The query string of a task filter (`GET /tasks`, bulk actions)."""
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise TypeError(f"unknown task filter {', '.join(unknown)}; the filters are state, label, "
                        f"{', '.join(FILTERS)}")
    params: list[tuple[str, str]] = []
    if state is not None:
        params += [("state", s) for s in ([state] if isinstance(state, str) else state)]
    if label is not None:
        if isinstance(label, Mapping):
            params += [("label", k if v is None else f"{k}:{v}") for k, v in label.items()]
        else:
            params += [("label", v) for v in ([label] if isinstance(label, str) else label)]
    return params + _pairs(**filters)


def _pairs(**values: Any) -> list[tuple[str, str]]:
    return [(k, _text(v)) for k, v in values.items() if v is not None]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat() if isoformat else value)


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _id(task_id: Any) -> str:
    return quote(str(task_id), safe="")


def _task(body: Any) -> Task:
    if not isinstance(body, dict):
        raise ClientError(f"the service answered {type(body).__name__}, not a task")
    return body  # type: ignore[return-value]
