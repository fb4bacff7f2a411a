"""/metrics shows the domain read from the projections (tasks by namespace and state, lease expiries, skipped
and missed occurrences, claim latency, the build), and the Grafana dashboard asks only for metrics it serves."""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import TASKS_EXACT_UP_TO
from ledger import commands as c
from ledger.application import TaskLedger
from ledger.errors import LedgerError
from ledger.state import STATES
from projections.queries import PostgresTaskView
from taskledger.calendar import CronCalendar
from tests.api.conftest import BASE, Api

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "taskledger.json"
WATCHDOG = c.Caller("watchdog", "sweep-domain-metrics", "ledger")
SCHEDULER = c.Caller("scheduler", "tick-domain-metrics", "ledger")
OPERATOR = c.Caller("api-operator", "req-domain-metrics")
EVERY_2S = {"cron": "*/2 * * * * ?", "timezone": "UTC"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def _users(credentials: dict[str, dict[str, str]]) -> None:
    """The suite's users of each role exist."""




def _scrape(client: testing.TestClient) -> tuple[str, Samples]:
    answer = client.simulate_get(BASE + "/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(answer.text) for s in family.samples}
    return answer.text, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _tasks_of(samples: Samples, namespace: str) -> dict[str, float]:
    return {dict(labels)["state"]: value for (name, labels), value in samples.items()
            if name == "taskledger_tasks" and dict(labels).get("namespace") == namespace}


def test_tasks_by_namespace_and_state_lease_expiries_and_claims_are_what_happened(
        api: Api, client: testing.TestClient, ledger_app: TaskLedger, queries: PostgresTaskView,
        namespace: str) -> None:
    _, before = _scrape(client)
    first = api.create(namespace, "first")["id"]
    second = api.create(namespace, "second")["id"]
    third = api.create(namespace, "third")["id"]
    stalls = api.create(namespace, "stalls", heartbeat_timeout=0.5, max_retries=1)["id"]
    assert api.claim(namespace)["task_id"] == first  # stays RUNNING
    lease = api.claim(namespace)
    assert lease["task_id"] == second
    done = api.post(f"/tasks/{second}/complete", {"lease_epoch": lease["lease_epoch"]}, role="worker")
    assert done.status_code == 200, done.text
    assert api.post(f"/tasks/{third}/cancel", {"reason": "not needed"}, role="operator").status_code == 200
    assert api.claim(namespace)["task_id"] == stalls
    expired = ledger_app.expire_lease(c.ExpireLease(UUID(stalls), datetime.now(timezone.utc) + timedelta(seconds=5)),
                                      WATCHDOG)
    assert expired.lease_epoch == 1  # back to QUEUED: a retry is left
    nothing = api.post("/claims", {"worker": "worker-1", "namespace": namespace + "-empty"}, role="worker")
    assert nothing.status_code == 204
    assert queries.wait_for(expired.position, 10)

    _, after = _scrape(client)

    assert _tasks_of(after, namespace) == {**{state: 0.0 for state in STATES}, "QUEUED": 1.0, "RUNNING": 1.0,
                                           "SUCCEEDED": 1.0, "CANCELLED": 1.0}
    states = {task["state"] for task in api.get("/tasks", params={"namespace": namespace}).json["items"]}
    assert states == {"QUEUED", "RUNNING", "SUCCEEDED", "CANCELLED"}  # what the API itself says
    assert (_value(after, "taskledger_lease_expiries_total") - _value(before, "taskledger_lease_expiries_total")) == 1
    claims = {outcome: _value(after, "taskledger_claim_duration_seconds_count", outcome=outcome)
              - _value(before, "taskledger_claim_duration_seconds_count", outcome=outcome)
              for outcome in ("claimed", "none")}
    assert claims == {"claimed": 3, "none": 1}
    took = (_value(after, "taskledger_claim_duration_seconds_sum", outcome="claimed")
            - _value(before, "taskledger_claim_duration_seconds_sum", outcome="claimed"))
    assert 0 < took < 30
    assert {state: _value(after, "taskledger_tasks_exact_up_to", state=state) for state in STATES} == TASKS_EXACT_UP_TO
    assert 0 < _value(after, "taskledger_domain_scrape_seconds") < 10


def test_skipped_and_missed_occurrences_are_counted(api: Api, client: testing.TestClient, ledger_app: TaskLedger,
                                                    queries: PostgresTaskView, namespace: str,
                                                    ended: list[str]) -> None:
    _, before = _scrape(client)
    task = api.create(namespace, "every-2s", schedule=EVERY_2S)
    ended.append(task["id"])
    created = datetime.fromisoformat(task["created_at"])
    calendar = CronCalendar()
    due = calendar.occurrences(EVERY_2S, created, created + timedelta(seconds=7), 10)
    # A scheduler that ran late: all but the latest occurrence missed, the latest runs; the next is skipped
    # (it would overlap the run still waiting).
    ledger_app.record_occurrences(c.RecordOccurrences(UUID(task["id"]), due[-1] + timedelta(seconds=1),
                                                      timedelta(seconds=5)), SCHEDULER)
    later = calendar.occurrences(EVERY_2S, due[-1], due[-1] + timedelta(seconds=3), 1)[0]
    skipped = ledger_app.record_occurrences(
        c.RecordOccurrences(UUID(task["id"]), later + timedelta(milliseconds=500), timedelta(seconds=5)), SCHEDULER)
    assert queries.wait_for(skipped.position, 10)

    _, after = _scrape(client)

    def grew(name: str) -> float:
        return _value(after, name) - _value(before, name)

    assert len(due) >= 3
    assert grew("taskledger_occurrences_missed_total") == len(due) - 1
    assert grew("taskledger_occurrences_skipped_total") == 1


def test_build_info_names_the_running_versions(client: testing.TestClient, queries: PostgresTaskView) -> None:
    _, samples = _scrape(client)

    build = [dict(labels) for (name, labels), value in samples.items() if name == "taskledger_build_info"]
    assert len(build) == 1
    assert samples[("taskledger_build_info", tuple(sorted(build[0].items())))] == 1
    server = queries._all("SHOW server_version")[0]["server_version"]
    assert build[0] == {"version": version("taskledger"), "python": platform.python_version(),
                        "eventsourcing": version("eventsourcing"), "postgres": server}


def test_a_namespace_and_state_beyond_its_bound_is_estimated_never_below_it(
        api: Api, queries: PostgresTaskView, namespace: str) -> None:
    for name in ("a", "b", "c"):
        api.create(namespace, name)
    api.get("/tasks", params={"namespace": namespace})  # the view holds them

    counts = queries.domain_counts({"QUEUED": 2, "RUNNING": 10**9}, 1000)

    ours = {r["state"]: r for r in counts["tasks"] if r["namespace"] == namespace}
    assert ours["QUEUED"]["estimated"] and ours["QUEUED"]["n"] >= 2
    assert ours["RUNNING"] == {**ours["RUNNING"], "n": 0, "estimated": False}
    exact = queries.domain_counts({"QUEUED": 10**9, "RUNNING": 10**9}, 1000)
    assert not any(row["estimated"] for row in exact["tasks"])
    assert {r["state"]: r["n"] for r in exact["tasks"] if r["namespace"] == namespace} == {"QUEUED": 3, "RUNNING": 0}
    reached = {(r["namespace"], r["state"]) for r in exact["tasks"] if r["n"] >= 2 and r["state"] == "QUEUED"}
    assert reached == {(r["namespace"], r["state"]) for r in counts["tasks"] if r["estimated"]}


# ------------------------------------------------------------------ the Grafana dashboard against /metrics
METRIC = re.compile(r"\btaskledger_[a-z_]+\b")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}


def _expressions(node: Any) -> Iterator[str]:
    """Every PromQL expression of a dashboard: its targets' `expr`, and its template variables' queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                yield value["query"]
            else:
                yield from _expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item)


def _family_of(name: str, families: dict[str, str]) -> str | None:
    """The metric family a series name belongs to (a histogram's _bucket, _sum, _count; a counter's _total)."""
    if families.get(name) in ("gauge", "untyped", "unknown"):
        return name
    for family, kind in families.items():
        if any(name == family + suffix for suffix in SUFFIXES.get(kind, ())):
            return family
    return None


def test_the_dashboard_is_importable_and_every_metric_it_queries_is_served(
        api: Api, client: testing.TestClient, namespace: str) -> None:
    api.create(namespace)
    api.claim(namespace)  # the claim histogram has a series
    dashboard = json.loads(DASHBOARD.read_text())
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["title"] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p["datasource"]["uid"] == "${datasource}" and p["targets"] for p in panels)
    text, _ = _scrape(client)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}

    used = {name for expr in _expressions(dashboard) for name in METRIC.findall(expr)}

    assert {"taskledger_tasks", "taskledger_lease_expiries_total", "taskledger_occurrences_skipped_total",
            "taskledger_occurrences_missed_total", "taskledger_claim_duration_seconds_bucket",
            "taskledger_build_info", "taskledger_http_requests_total",
            "taskledger_http_request_duration_seconds_bucket", "taskledger_projection_lag_events"} <= used
    unknown = {name for name in used if _family_of(name, families) is None}
    assert not unknown, f"the dashboard queries metrics /metrics does not serve: {sorted(unknown)}"
