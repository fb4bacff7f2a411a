"""Every refused transition and malformed request: a 4xx in HugeGraph's error format, and no event written."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
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

ILLEGAL_ARGUMENT = "java.lang.IllegalArgumentException"
BAD_REQUEST = "jakarta.ws.rs.BadRequestException"
NOT_FOUND = "org.apache.hugegraph.exception.NotFoundException"
JAXRS_NOT_FOUND = "jakarta.ws.rs.NotFoundException"
NOT_SUPPORTED = "jakarta.ws.rs.NotSupportedException"
STATUSES = ("[UNKNOWN, NEW, SCHEDULING, SCHEDULED, QUEUED, RESTORING, RUNNING, SUCCESS, CANCELLING, CANCELLED, "
            "FAILED, HANGING, DELETING]")


@pytest.fixture
def refused(space_graph: Graph) -> Iterator[Graph]:
    """A graph whose event log position is checked unchanged after the test's refused requests."""
    space_graph.create()  # so the graph exists and its namespace has a number sequence
    position = space_graph.ledger.head_position()
    yield space_graph
    assert space_graph.ledger.head_position() == position, "a refused request wrote an event"


def cancel(graph: Graph, number: int | str) -> requests.Response:
    return graph.call("PUT", f"/tasks/{number}", params={"action": "cancel"})


# ------------------------------------------------------------------------ refused transitions
@pytest.mark.parametrize("state", ["SUCCEEDED", "FAILED", "CANCELLED", "ABORTED", "CANCELLING"])
def test_cancelling_a_completed_or_cancelling_task_is_400(space_graph: Graph, state: str) -> None:
    number = space_graph.in_state(state)
    position = space_graph.ledger.head_position()
    assert_error(cancel(space_graph, number), 400, BAD_REQUEST,
                 f"Can't cancel task '{number}' which is completed or cancelling")
    assert space_graph.ledger.head_position() == position


@pytest.mark.parametrize(("state", "status"), [("QUEUED", "QUEUED"), ("RUNNING", "RUNNING"),
                                               ("PAUSED", "QUEUED"), ("CANCELLING", "CANCELLING")])
def test_deleting_an_incomplete_task_without_force_is_400(space_graph: Graph, state: str, status: str) -> None:
    number = space_graph.in_state(state)
    position = space_graph.ledger.head_position()
    assert_error(space_graph.call("DELETE", f"/tasks/{number}"), 400, ILLEGAL_ARGUMENT,
                 f"Can't delete incomplete task '{number}' in status {status}, Please try to cancel the task first")
    assert space_graph.ledger.head_position() == position
    assert space_graph.call("GET", f"/tasks/{number}").status_code == 200


def test_deleting_a_deleted_task_is_404(space_graph: Graph) -> None:
    number = space_graph.in_state("SUCCEEDED")
    space_graph.call("DELETE", f"/tasks/{number}")
    position = space_graph.ledger.head_position()
    assert_error(space_graph.call("DELETE", f"/tasks/{number}"), 404, NOT_FOUND,
                 f"Can't find task with id '{number}'")
    assert_error(cancel(space_graph, number), 404, NOT_FOUND)
    assert space_graph.ledger.head_position() == position


# ------------------------------------------------------------------------ unknown tasks and graphs
@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_an_unknown_task_is_404_for_every_method(refused: Graph, method: str) -> None:
    answer = refused.call(method, "/tasks/77", params={"action": "cancel"} if method == "PUT" else None)
    assert_error(answer, 404, NOT_FOUND, "Can't find task with id '77'")


@pytest.mark.parametrize("method", ["DELETE", "PUT"])
def test_a_non_numeric_task_id_is_404_for_writes_too(refused: Graph, method: str) -> None:
    answer = refused.call(method, "/tasks/seven", params={"action": "cancel", "force": "true"})
    assert_error(answer, 404, JAXRS_NOT_FOUND, "HTTP 404 Not Found")


def test_a_graph_name_no_namespace_can_hold_does_not_exist(refused: Graph) -> None:
    name = "g" * 300
    answer = requests.post(f"{refused.base}/graphs/{name}/jobs/gremlin", json={"gremlin": "g.V()"},
                           auth=USERS["admin"], timeout=15)
    assert_error(answer, 404, NOT_FOUND, f"Graph '{name}' does not exist")


def test_a_graph_name_with_a_nul_character_does_not_exist(refused: Graph) -> None:
    answer = requests.post(f"{refused.base}/graphspaces/DEFAULT/graphs/bad%00name/jobs/gremlin",
                           json={"gremlin": "g.V()"}, auth=USERS["admin"], timeout=15)
    assert_error(answer, 404, NOT_FOUND, "Graph 'bad\x00name' does not exist")


# ------------------------------------------------------------------------ cancel action
@pytest.mark.parametrize(("params", "shown"), [({}, "null"), ({"action": "pause"}, "pause"),
                                               ({"action": "CANCEL"}, "CANCEL"), ({"action": ""}, "")])
def test_a_put_without_the_cancel_action_is_415(space_graph: Graph, params: dict[str, str], shown: str) -> None:
    number = space_graph.in_state("QUEUED")
    position = space_graph.ledger.head_position()
    assert_error(space_graph.call("PUT", f"/tasks/{number}", params=params), 415, NOT_SUPPORTED,
                 f"Not support action '{shown}'")
    assert space_graph.ledger.head_position() == position


# ------------------------------------------------------------------------ delete force
@pytest.mark.parametrize("force", ["yes", "1", ""])
def test_a_force_that_is_not_true_or_false_is_400(space_graph: Graph, force: str) -> None:
    number = space_graph.in_state("RUNNING")
    position = space_graph.ledger.head_position()
    assert_error(space_graph.call("DELETE", f"/tasks/{number}", params={"force": force}), 400, ILLEGAL_ARGUMENT,
                 f"Invalid boolean value '{force}' for force, expect 'true' or 'false'")
    assert space_graph.ledger.head_position() == position


# ------------------------------------------------------------------------ list parameters
@pytest.mark.parametrize("status", ["pending", "", "SUCCEEDED", "paused"])
def test_a_status_that_is_not_a_task_status_is_400_with_the_real_message(refused: Graph, status: str) -> None:
    assert_error(refused.call("GET", params={"status": status}), 400, ILLEGAL_ARGUMENT,
                 f"Status value must be in {STATUSES}, but got '{status}'")


def test_ids_with_a_status_is_400(refused: Graph) -> None:
    assert_error(refused.call("GET", params={"ids": 1, "status": "success"}), 400, ILLEGAL_ARGUMENT,
                 "Not support status when query task by ids, but got status='success'")


@pytest.mark.parametrize("page", ["", "abc"])
def test_ids_with_a_page_is_400(refused: Graph, page: str) -> None:
    assert_error(refused.call("GET", params={"ids": 1, "page": page}), 400, ILLEGAL_ARGUMENT,
                 f"Not support page when query task by ids, but got page='{page}'")


@pytest.mark.parametrize("limit", ["-5", "-2"])
def test_a_negative_limit_other_than_minus_one_is_400(refused: Graph, limit: str) -> None:
    assert_error(refused.call("GET", params={"limit": limit}), 400, ILLEGAL_ARGUMENT, f"Invalid limit {limit}")


@pytest.mark.parametrize("limit", ["abc", "1.5", "", "99999999999999999999"])
def test_a_limit_that_is_not_a_java_long_is_400(refused: Graph, limit: str) -> None:
    assert_error(refused.call("GET", params={"limit": limit}), 400, ILLEGAL_ARGUMENT,
                 f"Invalid limit '{limit}', it must be an integer")


@pytest.mark.parametrize("ids", [["abc"], ["1", "x"], [""]])
def test_ids_that_are_not_numbers_are_400(refused: Graph, ids: list[str]) -> None:
    answer = refused.call("GET", params={"ids": ids})
    assert_error(answer, 400, ILLEGAL_ARGUMENT)
    assert answer.json()["message"].startswith("Invalid task id '")


def test_more_than_500_ids_is_400(refused: Graph) -> None:
    answer = refused.call("GET", params={"ids": list(range(1, 502))})
    assert_error(answer, 400, ILLEGAL_ARGUMENT, "Too many ids: at most 500 may be queried at once, but got 501")


def _token(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("page", [
    "not-a-token", "%%%", _token("created_at", "not a time", str(uuid.uuid4())),
    _token("updated_at", "2024-01-01T00:00:00+00:00", str(uuid.uuid4())),
    _token("created_at", "2024-01-01T00:00:00+00:00", "not-a-uuid"), _token("created_at", 5, "x")])
def test_a_page_token_this_facade_did_not_make_is_400(refused: Graph, page: str) -> None:
    assert_error(refused.call("GET", params={"page": page}), 400, "org.apache.hugegraph.HugeException",
                 f"Invalid page: '{page}'")


@pytest.mark.parametrize("position", ["-1", "soon", "1" * 19])
def test_a_malformed_ledger_min_position_is_400(refused: Graph, position: str) -> None:
    answer = refused.call("GET", headers={"Ledger-Min-Position": position})
    assert_error(answer, 400, ILLEGAL_ARGUMENT)
    assert "Ledger-Min-Position" in answer.json()["message"]


# ------------------------------------------------------------------------ gremlin job bodies
def post_job(graph: Graph, **kwargs: Any) -> requests.Response:
    return graph.call("POST", "/jobs/gremlin", **kwargs)


@pytest.mark.parametrize(("body", "message"), [
    ({}, "The gremlin parameter can't be null"),
    ({"gremlin": None}, "The gremlin parameter can't be null"),
    ({"gremlin": "g.V()", "language": None}, "The language parameter can't be null"),
    ({"gremlin": "g.V()", "aliases": {"g": "graph"}}, "There is no need to pass gremlin aliases"),
    ({"gremlin": 5}, "The gremlin parameter must be a JSON string"),
    ({"gremlin": "g.V()", "bindings": [1]}, "The bindings parameter must be a JSON object"),
    ({"gremlin": "g.V()", "language": 3}, "The language parameter must be a JSON string"),
    ({"gremlin": "g.V()", "script": "x"}, 'Unrecognized field "script", known fields: gremlin, bindings, '
                                          "language, aliases"),
])
def test_a_gremlin_job_body_hugegraph_would_refuse_is_400(refused: Graph, body: dict[str, Any],
                                                          message: str) -> None:
    assert_error(post_job(refused, json=body), 400, ILLEGAL_ARGUMENT, message)


def test_a_gremlin_job_without_a_body_is_400(refused: Graph) -> None:
    assert_error(post_job(refused), 400, ILLEGAL_ARGUMENT, "The request body can't be empty")


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'{"gremlin": NaN}', b'"g.V()"'])
def test_a_gremlin_job_body_that_is_not_a_json_object_is_400(refused: Graph, raw: bytes) -> None:
    answer = post_job(refused, data=raw, headers={"Content-Type": "application/json"})
    assert_error(answer, 400, ILLEGAL_ARGUMENT)


def test_a_gremlin_job_body_that_is_not_json_content_is_415(refused: Graph) -> None:
    answer = post_job(refused, data=b"g.V()", headers={"Content-Type": "text/plain"})
    assert_error(answer, 415, NOT_SUPPORTED)


@pytest.mark.parametrize("body", [b'{"gremlin": "g.V()\\u0000"}', b'{"gremlin": "\\ud800"}'])
def test_a_gremlin_job_with_text_the_store_cannot_hold_is_400(refused: Graph, body: bytes) -> None:
    answer = post_job(refused, data=body, headers={"Content-Type": "application/json"})
    assert_error(answer, 400, ILLEGAL_ARGUMENT)


def test_a_gremlin_job_with_bindings_nested_too_deep_is_400(refused: Graph) -> None:
    deep: Any = 1
    for _ in range(40):
        deep = {"x": deep}
    assert_error(post_job(refused, json={"gremlin": "g.V()", "bindings": deep}), 400, ILLEGAL_ARGUMENT)


def test_a_gremlin_job_body_over_one_mebibyte_is_413(refused: Graph) -> None:
    answer = post_job(refused, json={"gremlin": "x" * (1024 * 1024 + 1)})
    assert_error(answer, 413, ILLEGAL_ARGUMENT)


# ------------------------------------------------------------------------ methods
@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/tasks", "GET, HEAD"), ("DELETE", "/tasks", "GET, HEAD"), ("POST", "/tasks/1", "GET, HEAD, PUT, DELETE"),
    ("PATCH", "/tasks/1", "GET, HEAD, PUT, DELETE"), ("GET", "/jobs/gremlin", "POST")])
def test_a_method_the_resource_does_not_serve_is_405(refused: Graph, method: str, path: str, allowed: str) -> None:
    answer = refused.call(method, path)
    assert_error(answer, 405, "jakarta.ws.rs.NotAllowedException", "HTTP 405 Method Not Allowed")
    assert answer.headers["Allow"] == allowed


def test_options_names_only_the_methods_served(refused: Graph) -> None:
    answer = refused.call("OPTIONS", "/tasks/1")
    assert answer.status_code == 200 and answer.headers["Allow"] == "GET, HEAD, PUT, DELETE, OPTIONS"


def test_head_answers_like_get_without_a_body(refused: Graph) -> None:
    answer = refused.call("HEAD", "/tasks")
    assert (answer.status_code, answer.content) == (200, b"")
    assert refused.call("HEAD", "/tasks/404404").status_code == 404
