"""The real hugegraph-python 1.7.1 client against the facade, in both of the URL layouts it can pick."""

from __future__ import annotations

import pytest
from pyhugegraph.client import PyHugeClient
from pyhugegraph.utils.exceptions import NotAuthorizedError, NotFoundError, ServerError

from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from tests.facades.conftest import USERS
from tests.facades.hugegraph_support import Graph, make_graph, space_graph  # noqa: F401 -- fixture

ADMIN, PASSWORD = USERS["admin"]


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
