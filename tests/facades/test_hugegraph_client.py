"""The real hugegraph-python 1.7.1 client against the facade, in both of the URL layouts it can pick.

Every task call the client offers is driven here (real-clients.md §1): `client.task()` `list_tasks` (with
`status` and `limit`), `get_task`, `cancel_task`, `delete_task`, and the `/versions` probe and
`client.version()`. The client has no call for `?ids=` or for gremlin jobs (`client.gremlin()` runs scripts
synchronously at `/gremlin`, which this service does not serve); those go through the client's own session
(`manager.session.request`), which sends the same auth, headers and graph base URL.
"""

from __future__ import annotations

import json

import pytest
from pyhugegraph.client import PyHugeClient
from pyhugegraph.utils.exceptions import NotAuthorizedError, NotFoundError, ServerError

from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from tests.facades.conftest import USERS
from tests.facades.hugegraph_support import Graph, make_graph, space_graph  # noqa: F401 -- fixture

ADMIN, PASSWORD = USERS["admin"]
SUMMARY = {"id": int, "task_type": str, "task_name": str, "task_status": str, "task_progress": int,
           "task_create": int, "task_update": int, "task_retries": int}
DETAILS = ("task_callable", "task_input", "task_result")


def client_for(graph: Graph, user: str = ADMIN, password: str = PASSWORD) -> PyHugeClient:
    return PyHugeClient(graph.base, graph.name, user, password, graphspace=graph.graphspace)


@pytest.fixture
def default_graph(server: str, ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str) -> Graph:
    """A graph of graphspace DEFAULT, which a client without a graphspace reaches after its /versions probe."""
    return make_graph(server, ledger_app, queries, namespace, "legacy")


def test_the_client_with_an_explicit_graphspace_lists_gets_cancels_and_deletes_tasks(space_graph: Graph) -> None:
    done, running = space_graph.in_state("SUCCEEDED"), space_graph.in_state("RUNNING")
    tasks = client_for(space_graph).task()
    assert [t["id"] for t in tasks.list_tasks()["tasks"]] == [done, running]
    assert tasks.get_task(done)["task_status"] == "success"
    assert tasks.cancel_task(running)["task_status"] == "cancelling"
    assert tasks.delete_task(done) == {}
    assert [t["id"] for t in tasks.list_tasks()["tasks"]] == [running]


def test_the_client_without_a_graphspace_probes_versions_and_then_uses_graphspace_default(
        default_graph: Graph) -> None:
    queued = default_graph.in_state("QUEUED")
    client = PyHugeClient(default_graph.base, default_graph.name, ADMIN, PASSWORD)
    assert (client.cfg.gs_supported, client.cfg.graphspace, client.cfg.version) == (True, "DEFAULT", [1, 7, 0])
    tasks = client.task()
    assert [t["id"] for t in tasks.list_tasks()["tasks"]] == [queued]
    assert tasks.cancel_task(queued)["task_status"] == "cancelled"
    assert tasks.get_task(queued)["task_status"] == "cancelled"
    assert tasks.delete_task(queued) == {}
    assert tasks.list_tasks() == {"tasks": []}


def test_a_client_configured_for_a_1_5_server_uses_the_legacy_graphs_path(default_graph: Graph) -> None:
    queued = default_graph.in_state("QUEUED")
    client = PyHugeClient(default_graph.base, default_graph.name, ADMIN, PASSWORD)
    client.cfg.gs_supported, client.cfg.graphspace = False, None  # what its probe of a 1.5.x server decides
    tasks = client.task()
    assert tasks.get_task(queued)["id"] == queued
    assert tasks.cancel_task(queued)["task_status"] == "cancelled"
    assert tasks.delete_task(queued) == {}


def test_the_client_filters_by_status_in_any_case_and_limits_the_list(space_graph: Graph) -> None:
    done = [space_graph.in_state("SUCCEEDED") for _ in range(3)]
    space_graph.in_state("RUNNING")
    tasks = client_for(space_graph).task()
    assert [t["id"] for t in tasks.list_tasks(status="SUCCESS", limit=2)["tasks"]] == done[:2]
    assert [t["id"] for t in tasks.list_tasks(status="success")["tasks"]] == done
    assert [t["task_status"] for t in tasks.list_tasks(status="running")["tasks"]] == ["running"]


def test_the_client_raises_not_found_for_an_unknown_task_with_hugegraphs_message(space_graph: Graph) -> None:
    tasks = client_for(space_graph).task()
    for call in (tasks.get_task, tasks.delete_task, tasks.cancel_task):
        with pytest.raises(NotFoundError) as raised:
            call(999999)
        assert "Can\\'t find task with id \\'999999\\'" in str(raised.value)


def test_the_client_reports_a_refused_cancel_as_a_server_error_with_the_reason(space_graph: Graph) -> None:
    done = space_graph.in_state("SUCCEEDED")
    with pytest.raises(ServerError, match=f"Can't cancel task '{done}' which is completed or cancelling"):
        client_for(space_graph).task().cancel_task(done)


def test_the_client_with_a_wrong_password_gets_not_authorized(space_graph: Graph) -> None:
    with pytest.raises(NotAuthorizedError):
        client_for(space_graph, password="not-the-password").task().list_tasks()


def test_list_items_carry_the_summary_fields_with_hugegraphs_types_and_leave_out_the_details(
        space_graph: Graph) -> None:
    space_graph.in_state("SUCCEEDED", input={"script": "g.V()"})
    [item] = client_for(space_graph).task().list_tasks()["tasks"]
    assert {key: type(item[key]) for key in SUMMARY} == SUMMARY
    assert not set(DETAILS) & set(item), item  # HugeTask.asMap(false), as the 1.7 server lists (not the seed)
    assert (item["task_type"], item["task_name"], item["task_status"], item["task_progress"]) == (
        "generic", "job", "success", 100)
    assert item["task_update"] >= item["task_create"] > 1_500_000_000_000  # ms since the epoch


def test_get_task_carries_the_details_as_strings(space_graph: Graph) -> None:
    done = space_graph.in_state("SUCCEEDED", input={"script": "g.V()", "limit": 3})
    failed = space_graph.in_state("FAILED", type="gremlin")
    tasks = client_for(space_graph).task()
    task = tasks.get_task(done)
    assert {key: type(task[key]) for key in SUMMARY} == SUMMARY
    assert task["task_callable"] == "org.apache.hugegraph.job.UserJob"
    assert json.loads(task["task_input"]) == {"script": "g.V()", "limit": 3}
    assert json.loads(task["task_result"]) == {"vertices": 42}
    failure = tasks.get_task(str(failed))  # the client formats the id into the path: a string works too
    assert (failure["id"], failure["task_status"], failure["task_callable"]) == (
        failed, "failed", "org.apache.hugegraph.job.GremlinJob")
    assert failure["task_result"] == "java.lang.ArithmeticException: / by zero"


def test_list_tasks_with_limit_0_lists_nothing_and_a_limit_alone_pages_from_the_first(space_graph: Graph) -> None:
    ids = [space_graph.in_state("QUEUED") for _ in range(3)]
    tasks = client_for(space_graph).task()
    assert tasks.list_tasks(limit=0) == {"tasks": []}
    assert [t["id"] for t in tasks.list_tasks(limit=2)["tasks"]] == ids[:2]
    assert "page" not in tasks.list_tasks(limit=2)


def test_list_tasks_by_status_queued_also_finds_paused_tasks(space_graph: Graph) -> None:
    queued, paused = space_graph.in_state("QUEUED"), space_graph.in_state("PAUSED")
    space_graph.in_state("RUNNING")
    listed = client_for(space_graph).task().list_tasks(status="QUEUED")["tasks"]
    assert [(t["id"], t["task_status"]) for t in listed] == [(queued, "queued"), (paused, "queued")]


def test_list_tasks_by_an_unknown_status_raises_server_error_naming_the_statuses(space_graph: Graph) -> None:
    with pytest.raises(ServerError, match=r"Status value must be in \[UNKNOWN, NEW, .*, DELETING\], "
                                          r"but got 'pending'"):
        client_for(space_graph).task().list_tasks(status="pending")


def test_cancel_task_answers_the_task_map_with_details_not_cancelled_true(space_graph: Graph) -> None:
    queued, paused = space_graph.in_state("QUEUED"), space_graph.in_state("PAUSED")
    tasks = client_for(space_graph).task()
    answer = tasks.cancel_task(queued)
    assert "cancelled" not in answer  # the seed's {"cancelled": true} is stale; 1.7 answers HugeTask.asMap()
    assert (answer["id"], answer["task_status"], answer["task_callable"]) == (
        queued, "cancelled", "org.apache.hugegraph.job.UserJob")
    assert {key: type(answer[key]) for key in SUMMARY} == SUMMARY
    assert tasks.cancel_task(paused)["task_status"] == "cancelled"
    assert [t["task_status"] for t in tasks.list_tasks()["tasks"]] == ["cancelled", "cancelled"]


def test_cancel_task_of_a_cancelling_task_is_refused_as_a_server_error(space_graph: Graph) -> None:
    running = space_graph.in_state("RUNNING")
    tasks = client_for(space_graph).task()
    assert tasks.cancel_task(running)["task_status"] == "cancelling"
    with pytest.raises(ServerError, match=f"Can't cancel task '{running}' which is completed or cancelling"):
        tasks.cancel_task(running)
    assert tasks.get_task(running)["task_status"] == "cancelling"


def test_delete_task_of_an_incomplete_task_is_refused_and_keeps_it(space_graph: Graph) -> None:
    running = space_graph.in_state("RUNNING")
    tasks = client_for(space_graph).task()
    with pytest.raises(ServerError, match=f"Can't delete incomplete task '{running}' in status RUNNING, "
                                          "Please try to cancel the task first"):
        tasks.delete_task(running)  # the client never sends force
    assert tasks.get_task(running)["task_status"] == "running"


def test_a_deleted_task_is_gone_for_every_call_of_the_client(space_graph: Graph) -> None:
    done, failed = space_graph.in_state("SUCCEEDED"), space_graph.in_state("FAILED")
    tasks = client_for(space_graph).task()
    assert tasks.delete_task(done) == {} and tasks.delete_task(failed) == {}
    assert tasks.list_tasks() == {"tasks": []}
    for call in (tasks.get_task, tasks.delete_task, tasks.cancel_task):
        with pytest.raises(NotFoundError) as raised:
            call(done)
        assert f"Can\\'t find task with id \\'{done}\\'" in str(raised.value)


def test_a_viewer_may_read_tasks_but_not_cancel_or_delete_them(space_graph: Graph) -> None:
    done = space_graph.in_state("SUCCEEDED")
    viewer, password = USERS["viewer"]
    tasks = client_for(space_graph, viewer, password).task()
    assert [t["id"] for t in tasks.list_tasks()["tasks"]] == [done]
    assert tasks.get_task(done)["task_status"] == "success"
    with pytest.raises(ServerError, match="Permission denied: role 'viewer' may not cancel tasks"):
        tasks.cancel_task(done)
    with pytest.raises(ServerError, match="Permission denied: role 'viewer' may not delete tasks"):
        tasks.delete_task(done)
    assert client_for(space_graph).task().get_task(done)["task_status"] == "success"


def test_the_versions_probe_needs_no_credentials_and_the_version_manager_reads_the_versions(
        default_graph: Graph) -> None:
    client = PyHugeClient(default_graph.base, default_graph.name, ADMIN, "not-the-password")
    assert (client.cfg.gs_supported, client.cfg.graphspace) == (True, "DEFAULT")  # the probe sends no auth
    with pytest.raises(NotAuthorizedError):
        client.task().list_tasks()
    versions = client_for(default_graph).version().version()  # GET /versions through the session
    assert versions == {"versions": {"version": "v1", "core": "1.7.0", "gremlin": "3.5.1", "api": "0.72.0.0"}}


def test_both_layouts_reach_the_same_tasks_of_graphspace_default(default_graph: Graph) -> None:
    queued = default_graph.in_state("QUEUED")
    explicit = PyHugeClient(default_graph.base, default_graph.name, ADMIN, PASSWORD, graphspace="DEFAULT").task()
    legacy = PyHugeClient(default_graph.base, default_graph.name, ADMIN, PASSWORD)
    legacy.cfg.gs_supported, legacy.cfg.graphspace = False, None
    assert explicit.get_task(queued) == legacy.task().get_task(queued)
    assert legacy.task().cancel_task(queued)["task_status"] == "cancelled"
    assert explicit.get_task(queued)["task_status"] == "cancelled"


def test_tasks_by_ids_through_the_clients_session_come_in_the_order_asked(space_graph: Graph) -> None:
    first, second, third = (space_graph.in_state("QUEUED") for _ in range(3))
    session = client_for(space_graph).task().session
    listed = session.request("tasks", params={"ids": [third, 999999, first, third]})["tasks"]
    assert [t["id"] for t in listed] == [third, first]
    assert not set(DETAILS) & set(listed[0])
    with pytest.raises(ServerError, match="Not support status when query task by ids, but got status='success'"):
        session.request("tasks", params={"ids": [first], "status": "success"})


def test_a_gremlin_job_through_the_clients_session_is_a_queued_gremlin_task(space_graph: Graph) -> None:
    tasks = client_for(space_graph).task()
    script = "g.V().count()\n// second line"
    created = tasks.session.request("jobs/gremlin", "POST", data=json.dumps(
        {"gremlin": script, "bindings": {"x": 1}, "language": "gremlin-groovy"}))
    assert set(created) == {"task_id"} and isinstance(created["task_id"], int)
    task = tasks.get_task(created["task_id"])
    assert (task["task_type"], task["task_name"], task["task_status"], task["task_callable"]) == (
        "gremlin", "g.V().count()", "queued", "org.apache.hugegraph.job.GremlinJob")
    assert json.loads(task["task_input"]) == {"gremlin": script, "bindings": {"x": 1}, "language": "gremlin-groovy",
                                              "aliases": {space_graph.name: "graph"}}
    with pytest.raises(ServerError, match="There is no need to pass gremlin aliases"):
        tasks.session.request("jobs/gremlin", "POST", data=json.dumps({"gremlin": "g", "aliases": {"g": "x"}}))
