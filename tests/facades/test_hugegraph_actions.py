"""Writing through the HugeGraph facade: cancel, delete, gremlin jobs, and who may do them."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.facades.conftest import USERS
from tests.facades.hugegraph_support import (  # noqa: F401 -- fixtures
    Graph,
    assert_error,
    graph,
    space_graph,
)

GREMLIN: dict[str, Any] = {"gremlin": "g.V().count()", "bindings": {}, "language": "gremlin-groovy", "aliases": {}}


def native(graph: Graph, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{graph.base}/ledger/v1{path}", auth=USERS["admin"], timeout=15, **kwargs)


def test_cancelling_a_running_task_answers_202_with_the_whole_task_cancelling(graph: Graph) -> None:
    number = graph.in_state("RUNNING", input={"gremlin": "g.V()"})
    answer = graph.call("PUT", f"/tasks/{number}", params={"action": "cancel"})
    assert answer.status_code == 202
    task = answer.json()
    assert (task["id"], task["task_status"], task["task_input"]) == (number, "cancelling", '{"gremlin":"g.V()"}')
    assert {"task_callable", "task_create", "task_update", "task_server"} <= set(task)
    assert graph.call("GET", f"/tasks/{number}").json()["task_status"] == "cancelling"


@pytest.mark.parametrize("state", ["QUEUED", "PAUSED"])
def test_cancelling_a_task_no_worker_runs_cancels_it_at_once(space_graph: Graph, state: str) -> None:
    number = space_graph.in_state(state)
    answer = space_graph.call("PUT", f"/tasks/{number}", params={"action": "cancel"})
    assert answer.status_code == 202 and answer.json()["task_status"] == "cancelled"
    assert native(space_graph, "GET", f"/tasks/{space_graph.task_id(number)}").json()["state"] == "CANCELLED"


def test_a_worker_heartbeating_a_task_cancelled_through_hugegraph_is_told_to_cancel(space_graph: Graph) -> None:
    number = space_graph.in_state("RUNNING")
    space_graph.call("PUT", f"/tasks/{number}", params={"action": "cancel"})
    beat = requests.post(f"{space_graph.base}/ledger/v1/tasks/{space_graph.task_id(number)}/heartbeat",
                         json={"lease_epoch": 1}, auth=USERS["worker"], timeout=15)
    assert beat.status_code == 200 and beat.json()["directive"] == "cancel"


@pytest.mark.parametrize("state", ["SUCCEEDED", "FAILED", "CANCELLED", "ABORTED"])
def test_deleting_a_completed_task_answers_204_and_keeps_its_history_natively(space_graph: Graph, state: str) -> None:
    number = space_graph.in_state(state)
    task_id = space_graph.task_id(number)
    answer = space_graph.call("DELETE", f"/tasks/{number}")
    assert (answer.status_code, answer.text) == (204, "")
    assert space_graph.call("GET", f"/tasks/{number}").status_code == 404
    assert native(space_graph, "GET", f"/tasks/{task_id}").status_code == 410
    events = native(space_graph, "GET", f"/tasks/{task_id}/events").json()["events"]
    assert (events[-1]["type"], events[-1]["facade"], events[-1]["actor"]) == ("Dropped", "hugegraph", "fac-admin")


@pytest.mark.parametrize("state", ["QUEUED", "RUNNING", "PAUSED", "CANCELLING"])
def test_deleting_an_incomplete_task_with_force_removes_it(space_graph: Graph, state: str) -> None:
    number = space_graph.in_state(state)
    assert space_graph.call("DELETE", f"/tasks/{number}", params={"force": "true"}).status_code == 204
    assert space_graph.tasks() == []
    events = native(space_graph, "GET", f"/tasks/{space_graph.task_id(number)}/events").json()
    assert events["events"][-1]["data"] == {"force": True}


def test_the_worker_of_a_running_task_deleted_with_force_is_told_to_stop(space_graph: Graph) -> None:
    number = space_graph.in_state("RUNNING")
    space_graph.call("DELETE", f"/tasks/{number}", params={"force": "TRUE"})
    beat = requests.post(f"{space_graph.base}/ledger/v1/tasks/{space_graph.task_id(number)}/heartbeat",
                         json={"lease_epoch": 1}, auth=USERS["worker"], timeout=15)
    assert beat.status_code == 200 and beat.json()["directive"] == "stop"


def test_a_completed_task_deleted_with_force_false_is_still_deleted(space_graph: Graph) -> None:
    number = space_graph.in_state("SUCCEEDED")
    assert space_graph.call("DELETE", f"/tasks/{number}", params={"force": "False"}).status_code == 204


def test_a_cancel_is_recorded_with_the_hugegraph_facade_the_actor_and_the_request_id(space_graph: Graph) -> None:
    number = space_graph.in_state("QUEUED")
    space_graph.call("PUT", f"/tasks/{number}", params={"action": "cancel"}, role="operator",
                     headers={"X-Request-Id": "hg-cancel-1"})
    last = native(space_graph, "GET", f"/tasks/{space_graph.task_id(number)}/events").json()["events"][-1]
    assert (last["type"], last["facade"], last["actor"], last["request_id"]) == (
        "Cancelled", "hugegraph", "fac-operator", "hg-cancel-1")


def test_a_gremlin_job_answers_201_with_its_number_and_is_visible_natively(graph: Graph) -> None:
    graph.create()
    answer = graph.call("POST", "/jobs/gremlin", json=GREMLIN)
    assert answer.status_code == 201 and answer.json() == {"task_id": 2}
    assert int(answer.headers["Ledger-Position"]) == graph.ledger.head_position()
    task = native(graph, "GET", f"/tasks/{graph.task_id(2)}").json()
    assert (task["namespace"], task["facade"], task["type"], task["name"], task["state"]) == (
        graph.namespace, "hugegraph", "gremlin", "g.V().count()", "QUEUED")
    assert task["input"] == {**GREMLIN, "aliases": {graph.name: "graph"}}
    assert task["external_ids"] == {"hugegraph": "2"} and task["submitter"] == "fac-admin"


def test_a_gremlin_job_is_claimable_by_a_worker_and_then_shows_running(space_graph: Graph) -> None:
    number = space_graph.call("POST", "/jobs/gremlin", json={"gremlin": "g.E().count()"}).json()["task_id"]
    claim = requests.post(f"{space_graph.base}/ledger/v1/claims", auth=USERS["worker"], timeout=15,
                          json={"worker": "gremlin-worker", "namespace": space_graph.namespace, "type": "gremlin"})
    assert claim.status_code == 200 and claim.json()["task_id"] == str(space_graph.task_id(number))
    seen = {"Ledger-Min-Position": claim.headers["Ledger-Position"]}
    task = space_graph.call("GET", f"/tasks/{number}", headers=seen).json()
    assert (task["task_status"], task["task_server"]) == ("running", "gremlin-worker")
    assert task["task_callable"] == "org.apache.hugegraph.job.GremlinJob"
    assert task["task_input"] == ('{"aliases":{"%s":"graph"},"bindings":{},"gremlin":"g.E().count()",'
                                  '"language":"gremlin-groovy"}' % space_graph.name)


def test_a_gremlin_job_is_named_after_its_first_line_cut_to_256_utf8_bytes(space_graph: Graph) -> None:
    script = "é" * 200 + "\r\nsecond line"
    number = space_graph.call("POST", "/jobs/gremlin", json={"gremlin": script}).json()["task_id"]
    assert space_graph.call("GET", f"/tasks/{number}").json()["task_name"] == "é" * 128
    short = space_graph.call("POST", "/jobs/gremlin", json={"gremlin": "g.V()\nline 2"}).json()["task_id"]
    assert space_graph.call("GET", f"/tasks/{short}").json()["task_name"] == "g.V()"


def test_a_gremlin_job_through_the_legacy_path_is_in_graphspace_default(graph: Graph) -> None:
    legacy = requests.post(f"{graph.base}/graphs/{graph.name}/jobs/gremlin", json=GREMLIN,
                           auth=USERS["operator"], timeout=15)
    assert legacy.status_code == 201
    in_default = requests.get(f"{graph.base}/graphspaces/DEFAULT/graphs/{graph.name}/tasks",
                              auth=USERS["viewer"], timeout=15).json()["tasks"]
    assert [t["id"] for t in in_default] == [legacy.json()["task_id"]]


@pytest.mark.parametrize("role", ["admin", "operator", "worker", "viewer"])
def test_every_role_may_read_tasks(space_graph: Graph, role: str) -> None:
    number = space_graph.create()
    assert space_graph.call("GET", role=role).status_code == 200
    assert space_graph.call("GET", f"/tasks/{number}", role=role).status_code == 200


@pytest.mark.parametrize("role", ["worker", "viewer"])
def test_only_admins_and_operators_may_cancel_delete_or_create_jobs(space_graph: Graph, role: str) -> None:
    number = space_graph.in_state("QUEUED")
    position = space_graph.ledger.head_position()
    for method, path, kwargs in (("PUT", f"/tasks/{number}", {"params": {"action": "cancel"}}),
                                 ("DELETE", f"/tasks/{number}", {"params": {"force": "true"}}),
                                 ("POST", "/jobs/gremlin", {"json": GREMLIN})):
        answer = space_graph.call(method, path, role=role, **kwargs)
        assert_error(answer, 403, "jakarta.ws.rs.ForbiddenException")
        assert f"role '{role}'" in answer.json()["message"]
    assert space_graph.ledger.head_position() == position


def test_a_call_without_credentials_is_401_in_hugegraphs_format(graph: Graph) -> None:
    answer = graph.call("GET", "/tasks/1", role=None)
    assert_error(answer, 401, "jakarta.ws.rs.NotAuthorizedException", "Authentication credentials are required")
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_a_call_with_a_wrong_password_is_401_authentication_failed(space_graph: Graph) -> None:
    answer = requests.get(space_graph.url + "/tasks", auth=("fac-admin", "wrong"), timeout=15)
    assert_error(answer, 401, "jakarta.ws.rs.NotAuthorizedException", "Authentication failed")


def test_a_bearer_token_is_accepted_like_on_the_native_api(space_graph: Graph) -> None:
    token = native(space_graph, "POST", "/tokens", json={}).json()["token"]
    answer = requests.get(space_graph.url + "/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=15)
    assert answer.status_code == 200 and answer.json() == {"tasks": []}
