"""Operations endpoints, the OpenAPI document, request ids, read-your-writes and HTTP-level errors."""

from __future__ import annotations

import builtins
import json
import re
import time
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from falcon import testing

from api.app import create_app
from api.openapi import openapi_path
from api.routes import ROUTES
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView, TaskFilter, TaskPage
from taskledger.accounts import PostgresAccounts
from tests.api.conftest import Api, assert_problem


class BrokenView:
    """A read side whose database is down or whose projections lag: what readiness must report."""

    def __init__(self, *, reachable: bool = True, lag: int = 0) -> None:
        self.reachable, self.lag = reachable, lag

    def ping(self) -> None:
        if not self.reachable:
            raise ConnectionError("connection refused")

    def status(self) -> list[dict[str, Any]]:
        return [{"name": "task_view", "position": 10, "head": 10 + self.lag, "lag_events": self.lag,
                 "lag_seconds": 1.5}]

    def get(self, task_id: UUID) -> dict[str, Any] | None:
        return None

    def find_external(self, namespace: str, external_id: str) -> dict[str, Any] | None:
        return None

    def output_pages(self, task_id: UUID, buffer: str, from_sequence: int, max_bytes: int) -> builtins.list[Any]:
        return []

    def list(self, flt: TaskFilter, sort: str = "created_at", descending: bool = False,
             cursor: str | None = None, limit: int = 50, offset: int = 0) -> TaskPage:
        return TaskPage([], 0, None)

    def claim_candidates(self, namespace: str | None, type: str | None, limit: int) -> builtins.list[UUID]:
        return []

    def runs(self, task_id: UUID) -> builtins.list[dict[str, Any]]:
        return []

    def wait_for(self, position: int, timeout: float) -> bool:
        return False

    def head(self) -> int:
        return 10 + self.lag


def test_health_answers_with_the_injected_clock_at_the_root_and_under_the_base(
        ledger_app: TaskLedger, accounts: PostgresAccounts) -> None:
    noon = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    client = testing.TestClient(create_app(ledger_app, BrokenView(), accounts, clock=lambda: noon))
    for path in ("/healthz", "/ledger/v1/healthz"):
        assert client.simulate_get(path).json == {"status": "ok", "time": "2024-05-01T12:00:00+00:00"}


def test_readiness_lists_every_projection_when_all_are_within_budget(client: testing.TestClient) -> None:
    ready = client.simulate_get("/readyz").json
    assert ready["status"] == "ready"
    assert {p["name"] for p in ready["projections"]} == {"task_view", "run_history"}


def test_readiness_fails_with_reasons_when_the_database_is_down_or_a_projection_lags(
        ledger_app: TaskLedger, accounts: PostgresAccounts) -> None:
    down = testing.TestClient(create_app(ledger_app, BrokenView(reachable=False), accounts))
    assert_problem(down.simulate_get("/readyz"), 503, "not-ready")
    assert "not reachable" in down.simulate_get("/ledger/v1/readyz").json["reasons"][0]
    lagging = testing.TestClient(create_app(ledger_app, BrokenView(lag=11), accounts, lag_budget_events=10))
    answer = lagging.simulate_get("/readyz")
    assert_problem(answer, 503, "not-ready")
    assert answer.json["reasons"] == ["projection task_view is 11 events behind (budget 10)"]
    within = testing.TestClient(create_app(ledger_app, BrokenView(lag=10), accounts, lag_budget_events=10))
    assert within.simulate_get("/readyz").status_code == 200


def test_projection_status_shows_position_head_and_lag_to_viewers(api: Api, namespace: str) -> None:
    api.create(namespace)
    status = api.get("/projections", role="viewer").json["projections"]
    assert {p["name"] for p in status} == {"task_view", "run_history"}
    assert all(p["head"] >= api.position and p["lag_events"] == p["head"] - p["position"] >= 0 for p in status)


def test_a_read_waits_for_the_position_it_names_and_gives_up_with_503(
        api: Api, namespace: str, ledger_app: TaskLedger, queries: PostgresTaskView,
        accounts: PostgresAccounts) -> None:
    created = api.post("/tasks", {"namespace": namespace, "name": "rw"}, role="operator")
    seen = api.client.simulate_get(f"/ledger/v1/tasks/{created.json['id']}", headers={
        **api.credentials["viewer"], "Ledger-Min-Position": created.headers["Ledger-Position"]})
    assert seen.status_code == 200
    lagging_view = testing.TestClient(create_app(ledger_app, BrokenView(lag=11), accounts, min_position_wait=0.05))
    for path in ("/ledger/v1/tasks", f"/ledger/v1/tasks/{created.json['id']}",
                 f"/ledger/v1/tasks/{created.json['id']}/runs"):
        lagging = lagging_view.simulate_get(path, headers={**api.credentials["viewer"], "Ledger-Min-Position": "15"})
        assert_problem(lagging, 503, "projection-lagging")
        assert lagging.headers["Retry-After"] == "1"


def test_a_position_beyond_the_log_head_is_refused_at_once_not_waited_for(
        api: Api, namespace: str, ledger_app: TaskLedger, queries: PostgresTaskView,
        accounts: PostgresAccounts) -> None:
    patient = testing.TestClient(create_app(ledger_app, queries, accounts, min_position_wait=30))
    future = str(ledger_app.head_position() + 1000)
    started = time.monotonic()
    refused = patient.simulate_get("/ledger/v1/tasks", params={"namespace": namespace},
                                   headers={**api.credentials["viewer"], "Ledger-Min-Position": future})
    assert time.monotonic() - started < 10, "a position that cannot exist yet was waited for"
    assert_problem(refused, 400, "position-beyond-head")
    assert refused.json["errors"][0]["field"] == "Ledger-Min-Position"
    assert "beyond the log's head" in refused.json["errors"][0]["rule"]


def test_the_openapi_document_describes_every_route_and_method(client: testing.TestClient) -> None:
    doc = client.simulate_get("/ledger/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] and doc["info"]["version"]
    for route in ROUTES:
        path = doc["paths"][openapi_path(route.template)]
        assert {op.method.lower() for op in route.operations} <= set(path), route.template
        for op in route.operations:
            operation = path[op.method.lower()]
            assert str(op.status) in operation["responses"]
            assert ("requestBody" in operation) == (op.body is not None)
    ids = [op["operationId"] for path in doc["paths"].values() for op in path.values() if isinstance(op, dict)
           and "operationId" in op]
    assert len(ids) == len(set(ids))
    assert {"Task", "Problem", "CreateTask", "WriteReceipt"} <= set(doc["components"]["schemas"])
    create = doc["paths"]["/ledger/v1/tasks"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CreateTask"}
    assert doc["components"]["schemas"]["CreateTask"]["required"] == ["name", "namespace"]
    assert doc["paths"]["/ledger/v1/tasks/{task_id}"]["parameters"][0]["schema"]["format"] == "uuid"
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


def test_request_ids_are_echoed_or_generated(ledger_app: TaskLedger, queries: PostgresTaskView,
                                             accounts: PostgresAccounts) -> None:
    client = testing.TestClient(create_app(ledger_app, queries, accounts, request_ids=lambda: "generated-1"))
    assert client.simulate_get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    assert client.simulate_get("/healthz").headers["X-Request-Id"] == "generated-1"
    too_long = client.simulate_get("/healthz", headers={"X-Request-Id": "x" * 129})
    assert too_long.headers["X-Request-Id"] == "generated-1"
    assert client.simulate_get("/nowhere").headers["X-Request-Id"] == "generated-1"


def test_unknown_routes_and_methods_answer_problems(client: testing.TestClient, api: Api) -> None:
    assert_problem(client.simulate_get("/ledger/v1/nowhere"), 404, "not-found")
    assert_problem(client.simulate_get("/ledger/v1/tasks/not-a-uuid", headers=api.credentials["admin"]), 404)
    assert_problem(client.simulate_post("/ledger/v1/tasks/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12 + "/bogus",
                                        headers=api.credentials["admin"]), 404)
    wrong = client.simulate_patch("/ledger/v1/tasks", headers=api.credentials["admin"])
    assert_problem(wrong, 405, "method-not-allowed")
    assert wrong.headers["Allow"] == "GET, POST, OPTIONS"



def test_metrics_count_requests_by_route_template_and_report_projection_lag(
        api: Api, namespace: str, projections_running: object) -> None:
    task = api.create(namespace)
    api.get(f"/tasks/{task['id']}")
    answer = api.get("/metrics", role=None)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert re.search(r'taskledger_http_requests_total\{method="POST",route="/ledger/v1/tasks",status="201"\} '
                     r'[1-9]', text)
    assert 'route="/ledger/v1/tasks/{task_id:uuid}"' in text
    assert str(task["id"]) not in text, "raw paths would explode the label cardinality"
    assert re.search(r'taskledger_projection_lag_events\{projection="task_view"\} \d', text)
    assert "taskledger_event_log_head" in text
