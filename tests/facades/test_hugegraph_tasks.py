"""Reading HugeGraph tasks over plain HTTP: the exact task JSON, statuses, the list, filters and paging."""

from __future__ import annotations

import time

import pytest
import requests

from ledger.commands import CreateTask
from tests.facades.conftest import USERS
from tests.facades.hugegraph_support import (  # noqa: F401 -- fixtures
    NATIVE,
    Graph,
    assert_error,
    graph,
    space_graph,
)

LIST_KEYS = {"id", "task_type", "task_name", "task_status", "task_progress", "task_create", "task_update",
             "task_retries"}
DETAIL_KEYS = LIST_KEYS | {"task_callable", "task_input"}


def test_versions_answer_without_credentials_with_a_core_that_makes_clients_use_graphspaces(server: str) -> None:
    answer = requests.get(f"{server}/versions", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"versions": {"version": "v1", "core": "1.7.0", "gremlin": "3.5.1", "api": "0.72.0.0"}}


def test_a_task_created_natively_in_the_graph_appears_with_a_numeric_id_and_millisecond_times(graph: Graph) -> None:
    before = int(time.time() * 1000)
    number = graph.create(name="rebuild person index", type="rebuild_index", input={"label": "person"})
    (listed,) = graph.tasks()
    assert set(listed) == LIST_KEYS
    assert listed["id"] == number == 1 and type(listed["id"]) is int
    assert (listed["task_type"], listed["task_name"], listed["task_status"]) == (
        "rebuild_index", "rebuild person index", "queued")
    assert type(listed["task_create"]) is int and before - 1000 <= listed["task_create"] <= time.time() * 1000
    assert type(listed["task_update"]) is int and listed["task_update"] >= listed["task_create"]
    assert (listed["task_progress"], listed["task_retries"]) == (0, 0)


def test_one_task_also_carries_its_callable_and_its_input_as_a_json_string(graph: Graph) -> None:
    number = graph.create(type="gremlin", input={"gremlin": "g.V()", "bindings": {}})
    answer = graph.call("GET", f"/tasks/{number}")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    task = answer.json()
    assert set(task) == DETAIL_KEYS
    assert task["task_callable"] == "org.apache.hugegraph.job.GremlinJob"
    assert task["task_input"] == '{"bindings":{},"gremlin":"g.V()"}'


def test_text_input_stays_as_is_and_a_result_is_a_string(space_graph: Graph) -> None:
    number = space_graph.in_state("SUCCEEDED", input="g.V().count()")
    task = space_graph.call("GET", f"/tasks/{number}").json()
    assert (task["task_input"], task["task_result"]) == ("g.V().count()", '{"vertices":42}')
    assert task["task_callable"] == "org.apache.hugegraph.job.UserJob"
    assert "task_result" not in space_graph.tasks()[0] and "task_input" not in space_graph.tasks()[0]


def test_a_failed_task_shows_its_error_as_the_result(space_graph: Graph) -> None:
    number = space_graph.in_state("FAILED")
    task = space_graph.call("GET", f"/tasks/{number}").json()
    assert (task["task_status"], task["task_result"]) == ("failed", "java.lang.ArithmeticException: / by zero")


@pytest.mark.parametrize(("state", "status"), [
    ("QUEUED", "queued"), ("RUNNING", "running"), ("PAUSED", "queued"), ("CANCELLING", "cancelling"),
    ("SUCCEEDED", "success"), ("FAILED", "failed"), ("CANCELLED", "cancelled"), ("ABORTED", "cancelled")])
def test_each_ledger_state_shows_as_its_hugegraph_status(space_graph: Graph, state: str, status: str) -> None:
    number = space_graph.in_state(state)
    assert space_graph.call("GET", f"/tasks/{number}").json()["task_status"] == status


def test_the_worker_shows_as_task_server_and_a_description_label_as_task_description(space_graph: Graph) -> None:
    number = space_graph.in_state("RUNNING", labels={"description": "nightly reindex"})
    task = space_graph.call("GET", f"/tasks/{number}").json()
    assert (task["task_server"], task["task_description"]) == ("hg-worker-1", "nightly reindex")
    assert "task_server" not in space_graph.call("GET", f"/tasks/{space_graph.create()}").json()


def test_the_legacy_path_is_graphspace_default_and_graphspaces_are_separate(graph: Graph) -> None:
    number = graph.create()
    legacy = requests.get(f"{graph.base}/graphs/{graph.name}/tasks/{number}", auth=USERS["admin"], timeout=5)
    default = requests.get(f"{graph.base}/graphspaces/DEFAULT/graphs/{graph.name}/tasks/{number}",
                           auth=USERS["admin"], timeout=5)
    other = requests.get(f"{graph.base}/graphspaces/elsewhere/graphs/{graph.name}/tasks", auth=USERS["admin"],
                         timeout=5)
    found_by_default = graph.graphspace is None
    assert (legacy.status_code == 200, default.status_code == 200) == (found_by_default, found_by_default)
    assert other.json() == {"tasks": []}


def test_each_graph_numbers_its_own_tasks_from_one(graph: Graph, space_graph: Graph) -> None:
    assert [graph.create() for _ in range(3)] == [1, 2, 3]
    assert space_graph.create() == 1


def test_an_unknown_task_is_404_with_hugegraphs_body(graph: Graph) -> None:
    answer = graph.call("GET", "/tasks/424242")
    assert answer.json() == {"exception": "class org.apache.hugegraph.exception.NotFoundException",
                             "message": "Can't find task with id '424242'", "cause": ""}
    assert answer.status_code == 404


@pytest.mark.parametrize("task_id", ["abc", "1.5", "99999999999999999999", "0x1"])
def test_a_task_id_that_is_not_a_java_long_is_404_as_jax_rs_answers(space_graph: Graph, task_id: str) -> None:
    assert_error(space_graph.call("GET", f"/tasks/{task_id}"), 404, "jakarta.ws.rs.NotFoundException",
                 "HTTP 404 Not Found")


def test_leading_zeros_name_the_same_task(space_graph: Graph) -> None:
    number = space_graph.create()
    assert space_graph.call("GET", f"/tasks/00{number}").json()["id"] == number


def test_the_list_is_in_creation_order_and_limit_defaults_to_100(space_graph: Graph) -> None:
    numbers = [space_graph.create(name=f"t{i}") for i in range(101)]
    assert [t["id"] for t in space_graph.tasks()] == numbers[:100]
    assert [t["id"] for t in space_graph.tasks(limit=-1)] == numbers
    assert [t["id"] for t in space_graph.tasks(limit=7)] == numbers[:7]
    assert space_graph.call("GET", params={"limit": 0}).json() == {"tasks": []}


def test_the_status_filter_ignores_case_and_finds_paused_tasks_as_queued(space_graph: Graph) -> None:
    queued, paused = space_graph.in_state("QUEUED"), space_graph.in_state("PAUSED")
    space_graph.in_state("RUNNING")
    cancelled, aborted = space_graph.in_state("CANCELLED"), space_graph.in_state("ABORTED")
    assert [t["id"] for t in space_graph.tasks(status="queued")] == [queued, paused]
    assert [t["id"] for t in space_graph.tasks(status="Cancelled")] == [cancelled, aborted]


@pytest.mark.parametrize("status", ["NEW", "UNKNOWN", "scheduling", "SCHEDULED", "RESTORING", "HANGING",
                                    "DELETING"])
def test_a_status_no_ledger_task_can_have_matches_nothing(space_graph: Graph, status: str) -> None:
    space_graph.in_state("QUEUED")
    assert space_graph.call("GET", params={"status": status}).json() == {"tasks": []}
    assert space_graph.call("GET", params={"status": status, "page": ""}).json() == {"tasks": [], "page": None}


def test_page_tokens_walk_the_list_without_skipping_or_repeating_even_as_tasks_arrive(graph: Graph) -> None:
    numbers = [graph.create() for _ in range(7)]
    seen: list[int] = []
    page: str | None = ""
    while page is not None:
        body = graph.call("GET", params={"limit": 3, "page": page}).json()
        assert set(body) == {"tasks", "page"} and len(body["tasks"]) <= 3
        seen += [t["id"] for t in body["tasks"]]
        page = body["page"]
        if len(seen) == 3:
            numbers.append(graph.create())
    assert seen == numbers


def test_paging_keeps_the_status_filter(space_graph: Graph) -> None:
    done = [space_graph.in_state(state) for state in ("SUCCEEDED", "QUEUED", "SUCCEEDED", "SUCCEEDED")]
    first = space_graph.call("GET", params={"status": "SUCCESS", "limit": 2, "page": ""}).json()
    second = space_graph.call("GET", params={"status": "SUCCESS", "limit": 2, "page": first["page"]}).json()
    assert [t["id"] for t in first["tasks"] + second["tasks"]] == [done[0], done[2], done[3]]
    assert second["page"] is None


def test_without_page_the_answer_has_no_page_key_even_when_more_tasks_exist(space_graph: Graph) -> None:
    for _ in range(3):
        space_graph.create()
    assert set(space_graph.call("GET", params={"limit": 1}).json()) == {"tasks"}


def test_ids_pick_tasks_ignoring_limit_unknown_ids_and_repeats(space_graph: Graph) -> None:
    numbers = [space_graph.create() for _ in range(4)]
    answer = space_graph.call("GET", params={"ids": [numbers[3], numbers[1], 999, numbers[3]], "limit": 1})
    assert [t["id"] for t in answer.json()["tasks"]] == [numbers[3], numbers[1]]
    assert set(answer.json()) == {"tasks"} and set(answer.json()["tasks"][0]) == LIST_KEYS


def test_a_deleted_task_is_gone_from_the_list_from_ids_and_from_get(space_graph: Graph) -> None:
    kept, dropped = space_graph.in_state("SUCCEEDED"), space_graph.in_state("SUCCEEDED")
    assert space_graph.call("DELETE", f"/tasks/{dropped}").status_code == 204
    assert [t["id"] for t in space_graph.tasks()] == [kept]
    assert space_graph.tasks(ids=[dropped]) == []
    assert space_graph.call("GET", f"/tasks/{dropped}").status_code == 404


def test_a_task_with_a_non_numeric_native_external_id_is_left_out_of_the_list(space_graph: Graph) -> None:
    numbered = space_graph.create()
    written = space_graph.ledger.create_task(CreateTask(space_graph.namespace, "export", external_id="nightly"), NATIVE)
    space_graph.view.wait_for(written.position, 5)
    assert [t["id"] for t in space_graph.tasks()] == [numbered]
