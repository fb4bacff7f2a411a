"""Too many failed logins answer 429 with Retry-After in each facade's own error format."""

from __future__ import annotations

import base64
import json

import pytest
from falcon import testing

from api.app import create_app
from api.auth import LoginLimiter
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger.accounts import PostgresAccounts

ROUTES = {
    "kylin": "/kylin/api/jobs?timeFilter=4",
    "openlookeng": "/v1/task",
    "hugegraph": "/graphs/hugegraph/tasks",
    "pandora": "/api/v1/export/task/list",
}


def wrong(n: int) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"fac-admin:wrong-{n}".encode()).decode()}


@pytest.mark.parametrize("facade", sorted(ROUTES))
def test_a_flood_of_wrong_passwords_gets_429_in_the_facades_format(
        ledger_app: TaskLedger, queries: PostgresTaskView, facade_accounts: PostgresAccounts, facade: str) -> None:
    client = testing.TestClient(create_app(ledger_app, queries, facade_accounts,
                                           limiter=LoginLimiter(per_source=5, per_name=1000)))
    path, _, query = ROUTES[facade].partition("?")
    for n in range(5):
        assert client.simulate_get(path, query_string=query, headers=wrong(n)).status_code == 401
    refused = client.simulate_get(path, query_string=query, headers=wrong(99))
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert "application/problem+json" not in refused.headers.get("Content-Type", "")
    if facade == "kylin":
        assert "Too many failed logins" in json.loads(refused.text)["msg"]
    elif facade == "hugegraph":
        assert "Too many failed logins" in refused.json["message"]
    elif facade == "pandora":
        assert "Too many failed logins" in refused.json["error"]
    else:  # openLooKeng's server answers errors as a plain-text line
        assert refused.headers["Content-Type"].startswith("text/plain")
        assert "Too many failed logins" in refused.text
