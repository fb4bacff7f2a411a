"""openLooKeng refusals: each malformed request is a 4xx in this API's plain format and records nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from ledger.application import TaskLedger
from tests.facades.openlookeng_support import UPDATE, Presto, new_task_id, no_event, presto

__all__ = ["presto"]


def assert_plain(answer: requests.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain") and answer.text


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/task"), ("GET", "/v1/task/{tid}"), ("POST", "/v1/task/{tid}"), ("DELETE", "/v1/task/{tid}"),
    ("GET", "/v1/task/{tid}/status"), ("GET", "/v1/task/{tid}/results/0/0"),
    ("GET", "/v1/task/{tid}/results/0/0/acknowledge"), ("DELETE", "/v1/task/{tid}/results/0"),
])
def test_every_endpoint_needs_credentials(presto: Presto, ledger_app: TaskLedger, method: str, path: str) -> None:
    tid = presto.create()["taskId"]
    with no_event(ledger_app):
        for auth in (None, ("fac-admin", "wrong-password")):
            answer = requests.request(method, presto.base + path.format(tid=tid), auth=auth, json=UPDATE, timeout=30)
            assert_plain(answer, 401)
            assert answer.headers["WWW-Authenticate"] == 'Basic realm="taskledger"'


def test_a_bearer_token_is_accepted(presto: Presto) -> None:
    token = presto.request("POST", "/ledger/v1/tokens", json={}).json()["token"]
    answer = requests.get(presto.base + "/v1/task", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/task/{tid}"), ("DELETE", "/v1/task/{tid}"), ("DELETE", "/v1/task/{tid}/results/0"),
])
def test_a_viewer_may_read_but_not_change_tasks(presto: Presto, ledger_app: TaskLedger, method: str, path: str) -> None:
    tid = presto.create()["taskId"]
    with no_event(ledger_app):
        assert_plain(presto.request(method, path.format(tid=tid), role="viewer", json=UPDATE), 403)
    assert presto.get(f"/v1/task/{tid}", role="viewer").status_code == 200


@pytest.mark.parametrize("body", [b"", b"null", b"  \n"])
def test_an_empty_or_null_update_is_400_with_an_empty_body(presto: Presto, ledger_app: TaskLedger, body: bytes) -> None:
    with no_event(ledger_app):
        answer = presto.request("POST", f"/v1/task/{new_task_id()}", data=body,
                                headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.content == b""


@pytest.mark.parametrize(("body", "status"), [
    (b"[1, 2]", 400), (b"\"text\"", 400), (b"{\"session\": ", 400), (b"{\"x\": NaN}", 400),
    (b"{\"x\": 1e999}", 400), (b"\xff\xfe{}", 400), (b"{\"x\": \"\\u0000\"}", 400), (b"{\"x\": \"\\ud800\"}", 400),
    (("[" * 40 + "]" * 40).join([b"{\"x\": ".decode(), "}"]).encode(), 400),
])
def test_a_malformed_update_is_refused(presto: Presto, ledger_app: TaskLedger, body: bytes, status: int) -> None:
    with no_event(ledger_app):
        answer = presto.request("POST", f"/v1/task/{new_task_id()}", data=body,
                                headers={"Content-Type": "application/json"})
    assert_plain(answer, status)


def test_an_update_that_is_not_json_is_415(presto: Presto, ledger_app: TaskLedger) -> None:
    with no_event(ledger_app):
        answer = presto.request("POST", f"/v1/task/{new_task_id()}", data=json.dumps(UPDATE),
                                headers={"Content-Type": "application/x-jackson-smile"})
    assert_plain(answer, 415)


def test_unknown_update_fields_are_kept_as_the_real_server_ignores_them(presto: Presto) -> None:
    body: dict[str, Any] = {**UPDATE, "someFutureField": {"x": 1}}
    tid = presto.create(body=body)["taskId"]
    ledger_task = presto.get("/ledger/v1/tasks", params={"namespace": "openlookeng:default",
                                                         "name_prefix": tid}).json()["items"][0]
    assert ledger_task["input"] == body


@pytest.mark.parametrize("tid", ["x" * 201, "a%20b", "a%09b", "%E2%80%83"])
def test_a_malformed_task_id_is_404(presto: Presto, ledger_app: TaskLedger, tid: str) -> None:
    with no_event(ledger_app):
        for answer in (presto.post(f"/v1/task/{tid}"), presto.get(f"/v1/task/{tid}"), presto.delete(f"/v1/task/{tid}")):
            assert_plain(answer, 404)


def test_a_task_id_of_200_characters_is_accepted(presto: Presto) -> None:
    tid = "q" * 198 + ".0"
    assert presto.create(tid)["taskId"] == tid


@pytest.mark.parametrize("headers", [
    {"X-Presto-Current-State": "BOGUS", "X-Presto-Max-Wait": "1s"},
    {"X-Presto-Current-State": "planned", "X-Presto-Max-Wait": "1s"},
    {"X-Presto-Current-State": "PLANNED", "X-Presto-Max-Wait": "soon"},
    {"X-Presto-Current-State": "PLANNED", "X-Presto-Max-Wait": "-1s"},
    {"X-Presto-Current-State": "PLANNED", "X-Presto-Max-Wait": "1 sec"},
    {"X-Presto-Current-State": "BOGUS"},
    {"X-Presto-Max-Wait": "10"},
])
@pytest.mark.parametrize("suffix", ["", "/status"])
def test_a_malformed_long_poll_header_is_400(presto: Presto, headers: dict[str, str], suffix: str) -> None:
    tid = presto.create()["taskId"]
    assert_plain(presto.get(f"/v1/task/{tid}{suffix}", headers=headers), 400)


@pytest.mark.parametrize("query", [
    "?targetState=RUNNING", "?targetState=PLANNED", "?targetState=canceled", "?targetState=BOGUS",
    "?targetState=CANCELED_TO_RESUME", "?targetState=", "?abort=maybe", "?abort=", "?targetState=ABORTED&abort=true",
    "?targetState=ABORTED&targetState=CANCELED",
])
def test_a_malformed_delete_is_400_and_leaves_the_task_alone(presto: Presto, ledger_app: TaskLedger,
                                                              query: str) -> None:
    tid = presto.create()["taskId"]
    with no_event(ledger_app):
        assert_plain(presto.delete(f"/v1/task/{tid}{query}"), 400)
    assert presto.get(f"/v1/task/{tid}").json()["state"] == "PLANNED"


@pytest.mark.parametrize("path", [
    "/results/a%20b/0", "/results/0/-1", "/results/0/abc", "/results/0/9223372036854775808",
    "/results/0/1.5", "/results/%C3%A9/0", "/results/0/-1/acknowledge", "/results/x%20y/0/acknowledge",
])
def test_a_malformed_buffer_id_or_token_is_404(presto: Presto, path: str) -> None:
    tid = presto.create()["taskId"]
    assert_plain(presto.get(f"/v1/task/{tid}{path}"), 404)


def test_a_malformed_buffer_id_on_close_is_404_and_records_nothing(presto: Presto, ledger_app: TaskLedger) -> None:
    tid = presto.create()["taskId"]
    with no_event(ledger_app):
        assert_plain(presto.delete(f"/v1/task/{tid}/results/a%20b"), 404)


@pytest.mark.parametrize("headers", [{"X-Presto-Max-Size": "lots"}, {"X-Presto-Max-Size": "16mb"},
                                     {"X-Presto-Max-Wait": "1 minute"}])
def test_a_malformed_results_header_is_400(presto: Presto, headers: dict[str, str]) -> None:
    tid = presto.create()["taskId"]
    assert_plain(presto.get(f"/v1/task/{tid}/results/0/0", headers=headers), 400)


def test_the_results_of_an_unknown_task_are_404_and_closing_them_records_nothing(
        presto: Presto, ledger_app: TaskLedger) -> None:
    tid = new_task_id()
    with no_event(ledger_app):
        for answer in (presto.get(f"/v1/task/{tid}/results/0/0"), presto.get(f"/v1/task/{tid}/results/0/0/acknowledge"),
                       presto.delete(f"/v1/task/{tid}/results/0")):
            assert_plain(answer, 404)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/v1/task/{tid}", "GET, HEAD, POST, DELETE"), ("POST", "/v1/task", "GET, HEAD"),
    ("POST", "/v1/task/{tid}/status", "GET, HEAD"), ("GET", "/v1/task/{tid}/results/0", "DELETE"),
    ("DELETE", "/v1/task/{tid}/results/0/0", "GET, HEAD"),
])
def test_a_method_a_resource_does_not_serve_is_405_with_allow(presto: Presto, ledger_app: TaskLedger, method: str,
                                                                path: str, allow: str) -> None:
    tid = presto.create()["taskId"]
    with no_event(ledger_app):
        answer = presto.request(method, path.format(tid=tid), json=UPDATE)
    assert_plain(answer, 405)
    assert answer.headers["Allow"] == allow


def test_an_unknown_path_under_a_task_is_a_plain_404(presto: Presto) -> None:
    tid = presto.create()["taskId"]
    assert_plain(presto.get(f"/v1/task/{tid}/suspend"), 404)
    assert_plain(presto.delete(f"/v1/task/{tid}/results/0/0/acknowledge/more"), 404)


def test_an_update_over_8_mib_is_413(presto: Presto, ledger_app: TaskLedger) -> None:
    body = json.dumps({"fragment": "x" * (8 * 1024 * 1024)})
    with no_event(ledger_app):
        assert_plain(presto.request("POST", f"/v1/task/{new_task_id()}", data=body,
                                    headers={"Content-Type": "application/json"}), 413)
