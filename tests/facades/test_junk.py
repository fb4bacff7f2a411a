"""Junk to every facade route: never a 5xx, and a refusal never writes an event.

hypothesis draws, for every route the four facades mount, a method, path parameters (real ids or junk),
query parameters, headers (the facades' own: `X-Presto-*`, `Ledger-Min-Position`, `If-Match`,
`Content-Type`, credentials good and bad) and a body (bytes, text, or JSON of any shape), and sends
it to the whole application on the real ledger and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.auth import LoginLimiter
from api.facades import FACADES, FacadeDeps
from ledger import commands as c
from ledger.application import TaskLedger
from ledger.commands import Caller
from projections.queries import PostgresTaskView
from taskledger.accounts import PostgresAccounts
from tests.facades.conftest import USERS

FIELD = re.compile(r"\{(\w+)(?::[^}]*)?\}")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
JUNK_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | JUNK_TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(JUNK_TEXT, inner, max_size=4),
                    max_leaves=12)
HEADER_VALUES = st.one_of(JUNK_TEXT.map(lambda t: t.encode("latin-1", "replace").decode("latin-1")),
                          st.sampled_from(["PLANNED", "RUNNING", "FINISHED", "1.00s", "50ms", "0s", "-1s", "1",
                                           "999999999999999999999", '"1"', "*", "application/json",
                                           "text/plain"]))
# The facades' headers; a long-poll wait is kept short (the junk is in its syntax, not its length).
HEADERS = ("X-Presto-Current-State", "X-Presto-Max-Wait", "X-Presto-Task-Instance-Id", "Ledger-Min-Position",
           "If-Match", "Idempotency-Key", "Content-Type", "Accept")


def _basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


AUTHS = st.sampled_from([_basic(*USERS["admin"]), _basic(*USERS["operator"]), _basic(*USERS["viewer"]),
                         _basic(USERS["admin"][0], "wrong-password"), "Bearer tl_nonsense", "Basic !!!", ""])


@pytest.fixture(scope="module")
def junk_client(ledger_app: TaskLedger, queries: PostgresTaskView, facade_accounts: PostgresAccounts,
                projections_running: Any) -> testing.TestClient:
    app = create_app(ledger_app, queries, facade_accounts, min_position_wait=0.5,
                     limiter=LoginLimiter(per_source=10**6, per_name=10**6))
    return testing.TestClient(app)


def facade_templates() -> list[str]:
    """Every route template the four facades mount (their resources are built against nothing: not called)."""
    deps = FacadeDeps(None, None, None, lambda: datetime.now(timezone.utc), 0.5)  # type: ignore[arg-type]
    return sorted({template for facade in FACADES for template, _ in facade.routes(deps)})


TEMPLATES = facade_templates()


def test_every_facade_route_is_fuzzed() -> None:
    assert len(TEMPLATES) >= 20, TEMPLATES


@pytest.fixture(scope="module")
def known_ids(ledger_app: TaskLedger) -> list[str]:
    """Ids of real tasks, so that some junk reaches past the lookup."""
    task = ledger_app.create_task(c.CreateTask(namespace="junk", name="target"),
                                  Caller("junk-tester", "junk-test", "native"))
    return [str(task.task_id), "20260101_000000_00001_junk.1.0", "1", "0"]


@st.composite
def requests(draw: st.DrawFn, template: str, known_ids: list[str]) -> dict[str, Any]:
    segment = st.one_of(st.sampled_from(known_ids), JUNK_TEXT.filter(lambda t: "/" not in t and t not in (".", "..")))
    path = FIELD.sub(lambda _: quote(draw(segment), safe="") or "x", template)  # as a client sends it
    headers = {"Authorization": draw(AUTHS)}
    for name in draw(st.lists(st.sampled_from(HEADERS), max_size=4, unique=True)):
        headers[name] = draw(HEADER_VALUES)
    if "X-Presto-Max-Wait" in headers and re.fullmatch(r"\d+(\.\d+)?s", headers["X-Presto-Max-Wait"]):
        headers["X-Presto-Max-Wait"] = "50ms"
    body = draw(st.one_of(st.none(), st.binary(max_size=200), JUNK_TEXT.map(str.encode),
                          JSON.map(lambda value: json.dumps(value).encode())))
    params = draw(st.dictionaries(st.sampled_from(["limit", "offset", "status", "jobName", "projectName",
                                                   "pageOffset", "pageSize", "cubeName", "timeFilter", "ids",
                                                   "type", "x"]), JUNK_TEXT, max_size=3))
    return {"method": draw(st.sampled_from(METHODS)), "path": path, "headers": headers, "body": body,
            "params": params}


@pytest.mark.parametrize("template", TEMPLATES)
def test_junk_to_a_facade_route_never_answers_5xx_and_a_refusal_records_nothing(
        template: str, junk_client: testing.TestClient, known_ids: list[str], ledger_app: TaskLedger) -> None:
    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(requests(template, known_ids))
    def send(request: dict[str, Any]) -> None:
        head = ledger_app.head_position()
        answer = junk_client.simulate_request(request["method"], request["path"], headers=request["headers"],
                                              body=request["body"], params=request["params"])
        assert answer.status_code < 500, (request, answer.status, answer.text[:500])
        assert "Traceback" not in answer.text
        if answer.status_code >= 400:
            assert ledger_app.head_position() == head, (request, answer.status, "a refusal recorded an event")

    send()
