"""Bad input on every endpoint: a 4xx problem naming the field and the rule, and nothing recorded."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import falcon
import pytest
from falcon import testing

from api.routes import ROUTES
from ledger.application import TaskLedger
from tests.api.conftest import Api, assert_problem

JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024


class Case(NamedTuple):
    method: str
    path: str
    request: dict[str, Any]  # keyword arguments of simulate_request: json, body, params, headers
    status: int
    field: str | None = None
    base: str = "/ledger/v1"


def raw(text: str | bytes) -> dict[str, Any]:
    return {"body": text, "headers": JSON}


CASES: dict[str, Case] = {
    # POST /tasks
    "create: malformed JSON": Case("POST", "/tasks", raw('{"namespace": "a",'), 400, "body"),
    "create: a JSON array": Case("POST", "/tasks", raw("[1, 2]"), 400, "body"),
    "create: a JSON string": Case("POST", "/tasks", raw('"task"'), 400, "body"),
    "create: NaN": Case("POST", "/tasks", raw('{"namespace": "a", "name": "b", "heartbeat_timeout": NaN}'), 400,
                        "body"),
    "create: overflowing number": Case("POST", "/tasks", raw('{"namespace": "a", "name": "b", "input": 1e999}'),
                                       400, "body"),
    "create: 5000-digit integer": Case("POST", "/tasks", raw('{"namespace":"a","name":"b","input":' + "9" * 5000 + "}"),
                                       400, "body"),
    "create: nesting too deep": Case("POST", "/tasks", raw('{"input":' + "[" * 100_000 + "]" * 100_000 + "}"),
                                     400, "body"),
    "create: input nested too deeply": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "input": json.loads("[" * 300 + "]" * 300)}}, 422, "input"),
    "create: not UTF-8": Case("POST", "/tasks", raw(b'{"namespace": "\xff\xfe"}'), 400, "body"),
    "create: not JSON content type": Case("POST", "/tasks", {"body": "namespace=a", "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, 415, "Content-Type"),
    "create: body over 1 MiB": Case("POST", "/tasks", {"json": {"namespace": "a", "name": "x" * MIB}}, 413, "body"),
    "create: missing namespace": Case("POST", "/tasks", {"json": {"name": "n"}}, 422, "namespace"),
    "create: no body": Case("POST", "/tasks", {}, 400, "body"),
    "token: a body of only white space": Case("POST", "/tokens", raw("\n"), 400, "body"),
    "create: empty object": Case("POST", "/tasks", {"json": {}}, 422, "namespace"),
    "create: namespace not a string": Case("POST", "/tasks", {"json": {"namespace": 5, "name": "n"}}, 422,
                                           "namespace"),
    "create: empty name": Case("POST", "/tasks", {"json": {"namespace": "a", "name": ""}}, 422, "name"),
    "create: null name": Case("POST", "/tasks", {"json": {"namespace": "a", "name": None}}, 422, "name"),
    "create: unknown field": Case("POST", "/tasks", {"json": {"namespace": "a", "name": "n", "colour": "red"}}, 422,
                                  "colour"),
    "create: facade is not the caller's to set": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "facade": "kylin"}}, 422, "facade"),
    "create: zero heartbeat_timeout": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "heartbeat_timeout": 0}}, 422, "heartbeat_timeout"),
    "create: negative heartbeat_timeout": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "heartbeat_timeout": -5}}, 422, "heartbeat_timeout"),
    "create: heartbeat_timeout as a string": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "heartbeat_timeout": "30"}}, 422, "heartbeat_timeout"),
    "create: negative max_retries": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "max_retries": -1}}, 422, "max_retries"),
    "create: fractional max_retries": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "max_retries": 1.5}}, 422, "max_retries"),
    "create: boolean max_retries": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "max_retries": True}}, 422, "max_retries"),
    "create: huge max_retries": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "max_retries": 10**30}}, 422, "max_retries"),
    "create: label value not a string": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "labels": {"team": 1}}}, 422, "labels.team.value"),
    "create: labels not an object": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "labels": ["team"]}}, 422, "labels"),
    "create: steps not a list": Case("POST", "/tasks", {"json": {"namespace": "a", "name": "n", "steps": "ab"}},
                                     422, "steps"),
    "create: a step name not a string": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "steps": ["ok", 7]}}, 422, "steps.1"),
    "create: schedule not an object": Case("POST", "/tasks", {"json": {
        "namespace": "a", "name": "n", "schedule": "daily"}}, 422, "schedule"),
    "create: NUL in a string": Case("POST", "/tasks", raw('{"namespace": "a\\u0000", "name": "n"}'), 422,
                                    "namespace"),
    "create: NUL deep in input": Case("POST", "/tasks", raw('{"namespace": "a", "name": "n", '
                                                            '"input": {"k": ["x", "\\u0000"]}}'), 422, "input.k.1"),
    "create: UTF-8-encoded lone surrogate": Case("POST", "/tasks", raw(b'{"namespace": "a", "name": "\xed\xa0\x80"}'),
                                                 400, "body"),
    "create: lone surrogate": Case("POST", "/tasks", raw('{"namespace": "a", "name": "\\ud800"}'), 422, "name"),
    "create: control character in namespace": Case("POST", "/tasks", {"json": {"namespace": "a\nb", "name": "n"}},
                                                   422, "namespace"),
    "create: idempotency key too long": Case("POST", "/tasks", {"json": {"namespace": "a", "name": "n"},
                                                                 "headers": {"Idempotency-Key": "k" * 256}},
                                             400, "Idempotency-Key"),
    # GET /tasks
    "list: unknown state": Case("GET", "/tasks", {"params": {"state": "RUNNIN"}}, 400, "state.0"),
    "list: unknown state after a comma": Case("GET", "/tasks", {"params": {"state": "QUEUED,nope"}}, 400, "state.1"),
    "list: limit 0": Case("GET", "/tasks", {"params": {"limit": "0"}}, 400, "limit"),
    "list: limit 501": Case("GET", "/tasks", {"params": {"limit": "501"}}, 400, "limit"),
    "list: limit not a number": Case("GET", "/tasks", {"params": {"limit": "ten"}}, 400, "limit"),
    "list: unknown sort": Case("GET", "/tasks", {"params": {"sort": "colour"}}, 400, "sort"),
    "list: time without offset": Case("GET", "/tasks", {"params": {"created_after": "2024-01-01T00:00:00"}}, 400,
                                      "created_after"),
    "list: time that is not a time": Case("GET", "/tasks", {"params": {"updated_before": "yesterday"}}, 400,
                                          "updated_before"),
    "list: forged cursor": Case("GET", "/tasks", {"params": {"cursor": "not-a-cursor"}}, 400, "cursor"),
    "list: unknown parameter": Case("GET", "/tasks", {"params": {"stat": "RUNNING"}}, 400, "stat"),
    "list: namespace given twice": Case("GET", "/tasks", {"query_string": "namespace=a&namespace=b"}, 400,
                                        "namespace"),
    "list: NUL in a parameter": Case("GET", "/tasks", {"query_string": "namespace=a%00b"}, 400, "query"),
    "list: bad Ledger-Min-Position": Case("GET", "/tasks", {"headers": {"Ledger-Min-Position": "soon"}}, 400,
                                          "Ledger-Min-Position"),
    "list: negative Ledger-Min-Position": Case("GET", "/tasks", {"headers": {"Ledger-Min-Position": "-1"}}, 400,
                                               "Ledger-Min-Position"),
    # GET, PUT, DELETE /tasks/{id}
    "get: id not a UUID": Case("GET", "/tasks/12345", {}, 404),
    "get: as_of version 0": Case("GET", "/tasks/{id}", {"params": {"as_of": "0"}}, 400, "as_of"),
    "get: as_of not a time": Case("GET", "/tasks/{id}", {"params": {"as_of": "last tuesday"}}, 400, "as_of"),
    "get: as_of without offset": Case("GET", "/tasks/{id}", {"params": {"as_of": "2024-01-01T00:00:00"}}, 400,
                                      "as_of"),
    "get: as_of huge version": Case("GET", "/tasks/{id}", {"params": {"as_of": "9" * 40}}, 400, "as_of"),
    "update: empty object": Case("PUT", "/tasks/{id}", {"json": {}}, 422, "body"),
    "update: state is not updatable": Case("PUT", "/tasks/{id}", {"json": {"state": "SUCCEEDED"}}, 422, "state"),
    "update: zero heartbeat_timeout": Case("PUT", "/tasks/{id}", {"json": {"heartbeat_timeout": 0}}, 422,
                                           "heartbeat_timeout"),
    "update: malformed If-Match": Case("PUT", "/tasks/{id}", {"json": {"name": "x"},
                                                              "headers": {"If-Match": "version three"}},
                                       400, "If-Match"),
    "update: a JSON array": Case("PUT", "/tasks/{id}", raw("[]"), 400, "body"),
    "update: id not a UUID": Case("PUT", "/tasks/x", {"json": {"name": "x"}}, 404),
    "drop: force not a boolean": Case("DELETE", "/tasks/{id}", {"params": {"force": "maybe"}}, 400, "force"),
    "drop: unknown parameter": Case("DELETE", "/tasks/{id}", {"params": {"hard": "true"}}, 400, "hard"),
    # actions
    "start: missing worker": Case("POST", "/tasks/{id}/start", {"json": {}}, 422, "worker"),
    "start: worker not a string": Case("POST", "/tasks/{id}/start", {"json": {"worker": ["w"]}}, 422, "worker"),
    "heartbeat: missing lease_epoch": Case("POST", "/tasks/{id}/heartbeat", {"json": {}}, 422, "lease_epoch"),
    "heartbeat: lease_epoch as a string": Case("POST", "/tasks/{id}/heartbeat", {"json": {"lease_epoch": "1"}},
                                               422, "lease_epoch"),
    "heartbeat: negative lease_epoch": Case("POST", "/tasks/{id}/heartbeat", {"json": {"lease_epoch": -1}}, 422,
                                            "lease_epoch"),
    "heartbeat: huge lease_epoch": Case("POST", "/tasks/{id}/heartbeat", {"json": {"lease_epoch": 2**64}}, 422,
                                        "lease_epoch"),
    "heartbeat: progress over 100": Case("POST", "/tasks/{id}/heartbeat", {"json": {
        "lease_epoch": 1, "progress": 101}}, 422, "progress"),
    "heartbeat: stats not an object": Case("POST", "/tasks/{id}/heartbeat", {"json": {
        "lease_epoch": 1, "stats": [1]}}, 422, "stats"),
    "heartbeat: id not a UUID": Case("POST", "/tasks/abc/heartbeat", {"json": {"lease_epoch": 1}}, 404),
    "progress: missing progress": Case("POST", "/tasks/{id}/progress", {"json": {"lease_epoch": 1}}, 422,
                                       "progress"),
    "progress: negative progress": Case("POST", "/tasks/{id}/progress", {"json": {
        "lease_epoch": 1, "progress": -0.5}}, 422, "progress"),
    "complete: unknown field": Case("POST", "/tasks/{id}/complete", {"json": {"lease_epoch": 1, "output": 1}}, 422,
                                    "output"),
    "complete: malformed JSON": Case("POST", "/tasks/{id}/complete", raw("{lease_epoch: 1}"), 400, "body"),
    "fail: missing error": Case("POST", "/tasks/{id}/fail", {"json": {"lease_epoch": 1}}, 422, "error"),
    "fail: retry not a boolean": Case("POST", "/tasks/{id}/fail", {"json": {
        "lease_epoch": 1, "error": "e", "retry": "yes"}}, 422, "retry"),
    "pause: reason not a string": Case("POST", "/tasks/{id}/pause", {"json": {"reason": 5}}, 422, "reason"),
    "resume: unknown field": Case("POST", "/tasks/{id}/resume", {"json": {"now": True}}, 422, "now"),
    "cancel: reason too long": Case("POST", "/tasks/{id}/cancel", {"json": {"reason": "r" * 2001}}, 422, "reason"),
    "abort: a JSON array": Case("POST", "/tasks/{id}/abort", raw('["now"]'), 400, "body"),
    "step: unknown status": Case("POST", "/tasks/{id}/steps/0", {"json": {"lease_epoch": 1, "status": "DONE"}},
                                 422, "status"),
    "step: append not a boolean": Case("POST", "/tasks/{id}/steps/0", {"json": {"lease_epoch": 1, "append": 1}},
                                       422, "append"),
    "step: index beyond the steps": Case("POST", "/tasks/{id}/steps/9", {"json": {"lease_epoch": 1}}, 422, "step"),
    "step: index not a number": Case("POST", "/tasks/{id}/steps/first", {"json": {"lease_epoch": 1}}, 404),
    "step: negative index": Case("POST", "/tasks/{id}/steps/-1", {"json": {"lease_epoch": 1}}, 404),
    "output: missing data": Case("POST", "/tasks/{id}/outputs/out", {"json": {"lease_epoch": 1}}, 422, "data"),
    "output: data not a string": Case("POST", "/tasks/{id}/outputs/out", {"json": {"lease_epoch": 1, "data": {}}},
                                      422, "data"),
    "output: negative positions": Case("POST", "/tasks/{id}/outputs/out", {"json": {
        "lease_epoch": 1, "data": "x", "positions": -1}}, 422, "positions"),
    "close output: buffer name not allowed": Case("DELETE", "/tasks/{id}/outputs/a%20b", {}, 404),
    "close output: id not a UUID": Case("DELETE", "/tasks/nope/outputs/out", {}, 404),
    "output: buffer name not allowed": Case("POST", "/tasks/{id}/outputs/-bad", {"json": {
        "lease_epoch": 1, "data": "x"}}, 404),
    # workers
    "claim: missing worker": Case("POST", "/claims", {"json": {"namespace": "a"}}, 422, "worker"),
    "claim: type not a string": Case("POST", "/claims", {"json": {"worker": "w", "type": 3}}, 422, "type"),
    "heartbeats: missing list": Case("POST", "/heartbeats", {"json": {}}, 422, "heartbeats"),
    "heartbeats: empty list": Case("POST", "/heartbeats", {"json": {"heartbeats": []}}, 422, "heartbeats"),
    "heartbeats: task_id not a UUID": Case("POST", "/heartbeats", {"json": {
        "heartbeats": [{"task_id": "t-1", "lease_epoch": 1}]}}, 422, "heartbeats.0.task_id"),
    "heartbeats: more than 500": Case("POST", "/heartbeats", {"json": {
        "heartbeats": [{"task_id": "{id}", "lease_epoch": 1}] * 501}}, 422, "heartbeats"),
    "heartbeats: an item not an object": Case("POST", "/heartbeats", {"json": {"heartbeats": [1]}}, 422,
                                              "heartbeats.0"),
    # bulk actions (a case that got through would act on every task of the shared database)
    "bulk pause: max 0": Case("POST", "/bulk/pause", {"json": {"max": 0}}, 422, "max"),
    "bulk pause: max over a million": Case("POST", "/bulk/pause", {"json": {"max": 1_000_001}}, 422, "max"),
    "bulk resume: a reason": Case("POST", "/bulk/resume", {"json": {"reason": "x"}}, 422, "reason"),
    "bulk cancel: unknown state": Case("POST", "/bulk/cancel", {"json": {}, "params": {"state": "DONE"}}, 400,
                                       "state.0"),
    "bulk cancel: sort is no filter": Case("POST", "/bulk/cancel", {"json": {}, "params": {"sort": "name"}}, 400,
                                           "sort"),
    "bulk abort: a cursor that is none": Case("POST", "/bulk/abort", {"json": {"cursor": "x" * 40}}, 400, "cursor"),
    "bulk drop: force not a boolean": Case("POST", "/bulk/drop", {"json": {"force": "yes"}}, 422, "force"),
    "bulk drop: a label without a key": Case("POST", "/bulk/drop", {"json": {}, "params": {"label": ":v"}}, 400,
                                             "label.0"),
    # history and operations
    "events: negative after_version": Case("GET", "/tasks/{id}/events", {"params": {"after_version": "-1"}}, 400,
                                           "after_version"),
    "events: limit over 1000": Case("GET", "/tasks/{id}/events", {"params": {"limit": "1001"}}, 400, "limit"),
    "runs: unknown parameter": Case("GET", "/tasks/{id}/runs", {"params": {"bogus": "5"}}, 400, "bogus"),
    "feed: after not a number": Case("GET", "/events", {"params": {"after": "start"}}, 400, "after"),
    "feed: limit 0": Case("GET", "/events", {"params": {"limit": "0"}}, 400, "limit"),
    "projections: unknown parameter": Case("GET", "/projections", {"params": {"name": "x"}}, 400, "name"),
    "openapi: unknown parameter": Case("GET", "/openapi.json", {"params": {"format": "yaml"}}, 400, "format"),
    "health: unknown parameter": Case("GET", "/healthz", {"params": {"deep": "1"}}, 400, "deep"),
    "readiness: unknown parameter": Case("GET", "/readyz", {"params": {"deep": "1"}}, 400, "deep"),
    "root health: unknown parameter": Case("GET", "/healthz", {"params": {"deep": "1"}}, 400, "deep", base=""),
    "root readiness: unknown parameter": Case("GET", "/readyz", {"params": {"deep": "1"}}, 400, "deep", base=""),
    "metrics: unknown parameter": Case("GET", "/metrics", {"params": {"name[]": "x"}}, 400, "name[]"),
    "root metrics: unknown parameter": Case("GET", "/metrics", {"params": {"name[]": "x"}}, 400, "name[]", base=""),
    # accounts
    "users: short password": Case("POST", "/users", {"json": {"name": "u", "password": "short", "role": "viewer"}},
                                  422, "password"),
    "users: unknown role": Case("POST", "/users", {"json": {"name": "u", "password": "long enough", "role": "god"}},
                                422, "role"),
    "users: colon in name": Case("POST", "/users", {"json": {"name": "a:b", "password": "long enough",
                                                             "role": "viewer"}}, 422, "name"),
    "tokens: user not a string": Case("POST", "/tokens", {"json": {"user": 5}}, 422, "user"),
    "tokens: unknown field": Case("POST", "/tokens", {"json": {"expires": "never"}}, 422, "expires"),
    "tokens: lifetime not an integer": Case("POST", "/tokens", {"json": {"expires_in": "30d"}}, 422, "expires_in"),
    "tokens: lifetime of 0": Case("POST", "/tokens", {"json": {"expires_in": 0}}, 422, "expires_in"),
    "tokens: revoke by something that is no id": Case("DELETE", "/tokens/not-an-id", {}, 404),
    "tokens: revoke an unknown id": Case("DELETE", "/tokens/0123456789abcdef", {}, 404),
}


def _fill(value: Any, task_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{id}", task_id)
    if isinstance(value, dict):
        return {k: _fill(v, task_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, task_id) for v in value]
    return value


@pytest.fixture(scope="module")
def running_task(app: falcon.App, credentials: dict[str, dict[str, str]]) -> str:
    """One running task with one step, shared by every case (none of them may change it)."""
    task_id, _ = Api(testing.TestClient(app), credentials).running(f"validation-{uuid4().hex}", steps=["only"])
    return task_id


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_with_a_problem_naming_the_field_and_nothing_is_recorded(
        api: Api, ledger_app: TaskLedger, running_task: str, case: Case) -> None:
    task_id = running_task
    version = ledger_app.task_as_of(UUID(task_id)).version
    head = ledger_app.head_position()
    request = _fill(case.request, task_id)
    headers = {**api.credentials["admin"], **request.pop("headers", {})}
    answer = api.client.simulate_request(case.method, case.base + _fill(case.path, task_id), headers=headers,
                                         **request)
    assert_problem(answer, case.status, field=case.field)
    assert ledger_app.head_position() == head
    assert ledger_app.task_as_of(UUID(task_id)).version == version


def _template(case: Case) -> str:
    path = case.base + case.path.replace("{id}", "{task_id:uuid}")
    path = re.sub(r"/steps/[^/]+$", "/steps/{index:int(min=0)}", path)
    path = re.sub(r"/tokens/[^/]+$", "/tokens/{token_id}", path)
    return re.sub(r"/outputs/[^/]+$", "/outputs/{buffer}", path)


def test_every_operation_of_the_route_table_has_a_bad_input_case() -> None:
    covered = {(case.method, _template(case)) for case in CASES.values()}
    missing = [(op.method, route.template) for route in ROUTES for op in route.operations
               if (op.method, route.template) not in covered]
    assert missing == []


def test_a_validation_problem_lists_every_offending_field_with_its_rule(api: Api) -> None:
    answer = api.post("/tasks", {"namespace": "", "name": "n", "heartbeat_timeout": 0, "max_retries": -2},
                      role="operator")
    assert_problem(answer, 422, "invalid-request")
    assert sorted(answer.json["errors"], key=lambda e: e["field"]) == [
        {"field": "heartbeat_timeout", "rule": "must be more than 0"},
        {"field": "max_retries", "rule": "must be 0 or more"},
        {"field": "namespace", "rule": "must not be empty"},
    ]
    assert json.loads(answer.text) == answer.json
