"""Authentication (Basic and bearer) and the role each endpoint allows."""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from ledger.application import TaskLedger
from tests.api.conftest import ROLES, Api, assert_problem, basic

CHALLENGE = 'Basic realm="taskledger", Bearer'

# (method, path template, body, roles allowed)
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/tasks", {"namespace": "{ns}", "name": "n"}, {"admin", "operator"}),
    ("GET", "/tasks", None, set(ROLES)),
    ("GET", "/tasks/{id}", None, set(ROLES)),
    ("PUT", "/tasks/{id}", {"name": "renamed"}, {"admin", "operator"}),
    ("DELETE", "/tasks/{id}", None, {"admin", "operator"}),
    ("POST", "/tasks/{id}/pause", {}, {"admin", "operator"}),
    ("POST", "/tasks/{id}/cancel", {}, {"admin", "operator"}),
    ("POST", "/tasks/{id}/start", {"worker": "w"}, {"admin", "worker"}),
    ("POST", "/tasks/{id}/heartbeat", {"lease_epoch": 1}, {"admin", "worker"}),
    ("POST", "/tasks/{id}/complete", {"lease_epoch": 1}, {"admin", "worker"}),
    ("POST", "/tasks/{id}/steps/0", {"lease_epoch": 1}, {"admin", "worker"}),
    ("POST", "/tasks/{id}/outputs/out", {"lease_epoch": 1, "data": "x"}, {"admin", "worker"}),
    ("POST", "/claims", {"worker": "w", "namespace": "{ns}-none"}, {"admin", "worker"}),
    ("POST", "/heartbeats", {"heartbeats": [{"task_id": "{id}", "lease_epoch": 1}]}, {"admin", "worker"}),
    ("GET", "/tasks/{id}/events", None, set(ROLES)),
    ("GET", "/tasks/{id}/runs", None, set(ROLES)),
    ("GET", "/events", None, set(ROLES)),
    ("GET", "/projections", None, set(ROLES)),
    ("POST", "/users", {"name": "{ns}-user", "password": "long enough", "role": "viewer"}, {"admin"}),
    ("POST", "/tokens", {}, set(ROLES)),
    ("DELETE", "/tokens/0123456789abcdef", None, set(ROLES)),
]


def _fill(value: Any, ns: str, task_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{ns}", ns).replace("{id}", task_id)
    if isinstance(value, dict):
        return {k: _fill(v, ns, task_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ns, task_id) for v in value]
    return value


def _call(client: testing.TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> testing.Result:
    return client.simulate_request(method, "/ledger/v1" + path, headers=headers,
                                   **({"json": body} if body is not None else {}))


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS, ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS])
def test_each_role_is_allowed_or_refused_with_403_and_strangers_get_401(
        api: Api, namespace: str, ledger_app: TaskLedger, method: str, path: str, body: Any,
        allowed: set[str]) -> None:
    task_id = api.create(namespace)["id"]
    path, body = _fill(path, namespace, task_id), _fill(body, namespace, task_id)
    head = ledger_app.head_position()
    for headers in ({}, basic("api-admin", "wrong-password"), {"Authorization": "Bearer tl_not-a-token"},
                    {"Authorization": "Digest abc"}, {"Authorization": "Basic !!!"}, basic("api-\x00admin", "x")):
        refused = _call(api.client, method, path, body, headers)
        assert_problem(refused, 401, "unauthorized")
        assert refused.headers["WWW-Authenticate"] == CHALLENGE
    for role in sorted(set(ROLES) - allowed):
        assert_problem(_call(api.client, method, path, body, api.credentials[role]), 403, "forbidden")
    assert ledger_app.head_position() == head
    for role in sorted(allowed):
        assert _call(api.client, method, path, body, api.credentials[role]).status_code not in (401, 403)


def test_a_user_may_mint_a_bearer_token_for_themself_and_use_it(api: Api, namespace: str) -> None:
    minted = api.post("/tokens", {"label": "ci"}, role="worker")
    assert minted.status_code == 201 and minted.json["user"] == "api-worker"
    assert minted.headers["Cache-Control"] == "no-store"
    bearer = {"Authorization": f"Bearer {minted.json['token']}"}
    api.create(namespace)
    claimed = api.post("/claims", {"worker": "w", "namespace": namespace}, role=None, headers=bearer)
    assert claimed.status_code == 200
    events = api.get(f"/tasks/{claimed.json['task_id']}/events").json["events"]
    assert events[-1]["actor"] == "api-worker"
    assert_problem(api.post("/tasks", {"namespace": namespace, "name": "x"}, role=None, headers=bearer), 403)


def test_only_an_admin_mints_tokens_for_someone_else(api: Api) -> None:
    assert_problem(api.post("/tokens", {"user": "api-admin"}, role="operator"), 403, "forbidden")
    assert api.post("/tokens", {"user": "api-viewer"}, role="admin").json["user"] == "api-viewer"
    assert_problem(api.post("/tokens", {"user": "nobody-at-all"}, role="admin"), 422, "user-not-found", "user")


def test_an_admin_creates_users_who_can_then_sign_in_and_names_are_never_overwritten(
        api: Api, namespace: str) -> None:
    name = f"{namespace}-ops"
    made = api.post("/users", {"name": name, "password": "correct horse", "role": "operator"})
    assert made.status_code == 201 and made.json == {"name": name, "role": "operator"}
    assert api.get("/tasks", role=None, headers=basic(name, "correct horse")).status_code == 200
    again = api.post("/users", {"name": name, "password": "another password", "role": "admin"})
    assert_problem(again, 409, "user-exists")
    assert api.get("/tasks", role=None, headers=basic(name, "correct horse")).status_code == 200


def test_every_event_records_the_authenticated_user_and_the_request_id(api: Api, namespace: str) -> None:
    created = api.post("/tasks", {"namespace": namespace, "name": "audited", "submitter": "someone-else"},
                       role="operator", headers={"X-Request-Id": "req-audit-1"})
    assert created.headers["X-Request-Id"] == "req-audit-1"
    event = api.get(f"/tasks/{created.json['id']}/events").json["events"][0]
    assert (event["actor"], event["request_id"], event["facade"]) == ("api-operator", "req-audit-1", "native")
    assert created.json["submitter"] == "someone-else"


def test_health_readiness_and_the_openapi_document_need_no_credentials(client: testing.TestClient) -> None:
    for path in ("/healthz", "/readyz", "/ledger/v1/healthz", "/ledger/v1/readyz", "/ledger/v1/openapi.json"):
        assert client.simulate_get(path).status_code == 200, path
