"""The Pandora export-task facade: create, update, delete, list — exact wire format, over real HTTP."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from ledger.application import TaskLedger
from tests.facades.conftest import USERS
from tests.facades.pandora_support import BASE, CRONTAB, NAMESPACE, TASK_KEYS, Pandora, unique


@pytest.fixture
def pandora(server: str) -> Pandora:
    return Pandora(server)


def test_a_created_task_answers_200_with_its_id_and_lists_with_the_seed_fields(pandora: Pandora) -> None:
    prefix = unique()
    before = int(time.time() * 1000)
    resp = pandora.create({"name": prefix + "daily", "spl": "* | stats count()", "interval": CRONTAB})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    task_id = resp.json()["id"]
    assert str(uuid.UUID(task_id)) == task_id
    listed = pandora.listed(prefix)
    assert [t["id"] for t in listed] == [task_id]
    task = listed[0]
    assert set(task) == TASK_KEYS
    assert task["name"] == prefix + "daily"
    assert task["spl"] == "* | stats count()"
    assert task["interval"] == CRONTAB
    assert task["description"] is None
    assert task["owner"] == USERS["admin"][0]
    assert task["operations"] == ["create", "edit", "list", "share", "delete"]
    assert task["status"] == "running"
    assert task["count"] == 0
    assert task["lastRunTime"] == -1
    assert isinstance(task["createTime"], int) and before - 1000 <= task["createTime"] <= before + 60_000
    assert task["updateTime"] == task["createTime"]


def test_a_created_task_is_a_recurring_export_task_of_the_pandora_namespace_natively(pandora: Pandora) -> None:
    task_id = pandora.create_task(unique() + "n", spl="error | head 5")
    doc = pandora.native(task_id).json()
    assert (doc["namespace"], doc["facade"], doc["type"], doc["state"]) == (NAMESPACE, "pandora", "export", "QUEUED")
    assert doc["input"] == {"spl": "error | head 5", "interval": CRONTAB}
    assert doc["schedule"]["cron"] == "*/5 * * * * ?"
    assert doc["submitter"] == USERS["admin"][0]
    events = pandora.call("GET", f"/ledger/v1/tasks/{task_id}/events").json()
    assert {e["facade"] for e in events["events"]} == {"pandora"}


def test_a_task_created_natively_in_the_namespace_appears_in_the_list(pandora: Pandora) -> None:
    prefix = unique("native")
    body = {"namespace": NAMESPACE, "name": prefix + "x", "type": "export", "input": {"spl": "*"},
            "schedule": {"cron": "0 0 * * * ?", "timezone": "UTC"}}
    created = pandora.call("POST", "/ledger/v1/tasks", json=body)
    assert created.status_code == 201
    [task] = pandora.listed(prefix)
    assert task["id"] == created.json()["id"]
    assert (task["spl"], task["status"], task["count"]) == ("*", "running", 0)
    assert task["interval"] == {"type": "crontab", "crontab": "0 0 * * * ?"}


def test_an_update_replaces_name_spl_and_interval_and_the_schedule(pandora: Pandora) -> None:
    prefix = unique()
    task_id = pandora.create_task(prefix + "old")
    created = pandora.task(task_id, prefix)
    interval = {"type": "cronDate", "cronDate": {"frequency": "day", "hour": "3", "minute": "15"}}
    resp = pandora.update(task_id, {"name": prefix + "new", "spl": "warn", "interval": interval})
    assert (resp.status_code, resp.json()) == (200, {})
    task = pandora.task(task_id, prefix)
    assert (task["name"], task["spl"], task["interval"]) == (prefix + "new", "warn", interval)
    assert task["createTime"] == created["createTime"] and task["updateTime"] >= created["updateTime"]
    assert pandora.native(task_id).json()["schedule"]["cron"] == "0 15 3 * * ?"


def test_an_update_needs_the_whole_body_as_on_create(pandora: Pandora, ledger_app: TaskLedger) -> None:
    task_id = pandora.create_task(unique())
    head = ledger_app.head_position()
    resp = pandora.update(task_id, {"name": "only a name"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "spl: is required and must be a non-empty string"}
    assert ledger_app.head_position() == head


def test_a_deleted_task_leaves_the_list_and_is_dropped_natively(pandora: Pandora) -> None:
    prefix = unique()
    task_id = pandora.create_task(prefix + "gone")
    resp = pandora.delete(task_id)
    assert (resp.status_code, resp.json()) == (200, {})
    assert pandora.listed(prefix) == []
    assert pandora.native(task_id).status_code == 410
    again = pandora.delete(task_id)
    assert again.status_code == 404
    assert again.json() == {"error": f"export task {task_id!r} does not exist"}


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid", "list-of-things"])
def test_unknown_task_ids_are_404_in_pandora_format(pandora: Pandora, task_id: str) -> None:
    body = {"name": "x", "spl": "*", "interval": CRONTAB}
    for resp in (pandora.update(task_id, body), pandora.delete(task_id), pandora.history(task_id)):
        assert resp.status_code == 404
        assert resp.json() == {"error": f"export task {task_id!r} does not exist"}


def test_a_task_of_another_namespace_is_not_an_export_task(pandora: Pandora, namespace: str) -> None:
    created = pandora.call("POST", "/ledger/v1/tasks", json={"namespace": namespace, "name": "elsewhere"})
    task_id = created.json()["id"]
    assert pandora.delete(task_id).status_code == 404
    assert pandora.native(task_id).json()["dropped"] is False


def test_list_pages_are_1_based_with_the_total_and_the_page_echoed(pandora: Pandora) -> None:
    prefix = unique()
    ids = [pandora.create_task(f"{prefix}{n}") for n in range(5)]
    pages = [pandora.list_page(prefix=prefix, pageNo=n, pageSize=2, sort="name", order="asc").json() for n in (1, 2, 3)]
    assert [(p["total"], p["pageNo"], p["pageSize"]) for p in pages] == [(5, 1, 2), (5, 2, 2), (5, 3, 2)]
    assert [t["id"] for p in pages for t in p["tasks"]] == ids
    assert set(pages[0]) == {"total", "pageNo", "pageSize", "tasks"}
    assert pandora.list_page(prefix=prefix, pageNo=4, pageSize=2).json()["tasks"] == []


def test_list_defaults_to_the_newest_first_ten_per_page(pandora: Pandora) -> None:
    prefix = unique()
    ids = [pandora.create_task(f"{prefix}{n:02}") for n in range(11)]
    page = pandora.list_page(prefix=prefix).json()
    assert (page["total"], page["pageNo"], page["pageSize"]) == (11, 1, 10)
    assert [t["id"] for t in page["tasks"]] == ids[::-1][:10]


@pytest.mark.parametrize(("sort", "order", "expect"), [
    ("name", "asc", ["a", "b", "c"]), ("name", "desc", ["c", "b", "a"]),
    ("createTime", "asc", ["b", "c", "a"]), ("createTime", "DESC", ["a", "c", "b"]),
    ("updateTime", "asc", ["c", "a", "b"]),
])
def test_list_sorts_by_the_given_column_and_order(pandora: Pandora, sort: str, order: str, expect: list[str]) -> None:
    prefix = unique()
    ids = {name: pandora.create_task(prefix + name) for name in ("b", "c", "a")}
    pandora.update(ids["a"], {"name": prefix + "a", "spl": "*", "interval": CRONTAB})
    pandora.update(ids["b"], {"name": prefix + "b", "spl": "*", "interval": CRONTAB})
    names = [t["name"][len(prefix):] for t in pandora.listed(prefix, sort=sort, order=order)]
    assert names == expect


def test_list_by_status_puts_stopped_tasks_first_in_ascending_order(pandora: Pandora) -> None:
    prefix = unique()
    running, stopped = pandora.create_task(prefix + "r"), pandora.create_task(prefix + "s")
    assert pandora.set_status([stopped], "stopped").status_code == 200
    assert [t["id"] for t in pandora.listed(prefix, sort="status", order="asc")] == [stopped, running]


def test_the_prefix_is_taken_literally(pandora: Pandora) -> None:
    prefix = unique()
    wanted = pandora.create_task(prefix + "50%_off")
    pandora.create_task(prefix + "50xyoff")
    assert [t["id"] for t in pandora.listed(prefix + "50%_")] == [wanted]


@pytest.mark.parametrize(("params", "field"), [
    ({"sort": "id"}, "sort"), ({"sort": "created_at"}, "sort"), ({"order": "up"}, "order"),
    ({"pageNo": "0"}, "pageNo"), ({"pageNo": "x"}, "pageNo"), ({"pageNo": "-1"}, "pageNo"),
    ({"pageSize": "0"}, "pageSize"), ({"pageSize": "1001"}, "pageSize"), ({"pageSize": "1e3"}, "pageSize"),
    ({"pageNo": ["1", "2"]}, "pageNo"), ({"prefix": "a\x00b"}, "prefix"),
])
def test_bad_list_queries_are_400_naming_the_parameter(pandora: Pandora, params: dict[str, str], field: str) -> None:
    resp = pandora.list_page(**params)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith(field + ": ")


def test_readers_list_with_the_list_operation_only_and_cannot_write(pandora: Pandora) -> None:
    prefix = unique()
    task_id = pandora.create_task(prefix + "r")
    for role in ("viewer", "worker"):
        reader = pandora.as_role(role)
        assert reader.task(task_id, prefix)["operations"] == ["list"]
        for resp in (reader.create({"name": "x", "spl": "*", "interval": CRONTAB}), reader.delete(task_id),
                     reader.set_status([task_id], "stopped")):
            assert resp.status_code == 403
            assert resp.json()["error"].startswith("forbidden: ")
    operator = pandora.as_role("operator")
    assert operator.update(task_id, {"name": prefix + "o", "spl": "*", "interval": CRONTAB}).status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/task"), ("GET", "/task/list"), ("PUT", f"/task/{uuid.uuid4()}"), ("PUT", "/tasks/status"),
    ("GET", f"/task/{uuid.uuid4()}/history"),
])
@pytest.mark.parametrize("auth", [None, ("nobody", "wrong-password")])
def test_every_endpoint_needs_credentials(server: str, method: str, path: str, auth: tuple[str, str] | None) -> None:
    resp = requests.request(method, server + BASE + path, auth=auth, json={}, timeout=30)
    assert resp.status_code == 401
    assert resp.json()["error"].startswith("unauthorized")
    assert "Basic" in resp.headers["WWW-Authenticate"]


@pytest.mark.parametrize(("data", "content_type", "status", "message"), [
    ('{"name": "x"}', "text/plain", 415, "Content-Type: must be application/json"),
    ('{"name": ', "application/json", 400, "body: must be valid JSON (UTF-8)"),
    ('["x"]', "application/json", 400, "body: must be a JSON object"),
    ("", "application/json", 400, "name: is required and must be a non-empty string"),
])
def test_a_body_that_is_not_a_json_object_is_refused_and_records_nothing(
        pandora: Pandora, ledger_app: TaskLedger, data: str, content_type: str, status: int, message: str) -> None:
    head = ledger_app.head_position()
    resp = pandora.call("POST", f"{BASE}/task", data=data, headers={"Content-Type": content_type})
    assert (resp.status_code, resp.json()) == (status, {"error": message})
    assert ledger_app.head_position() == head


@pytest.mark.parametrize(("body", "field"), [
    ({"spl": "*", "interval": CRONTAB}, "name"), ({"name": "  ", "spl": "*", "interval": CRONTAB}, "name"),
    ({"name": 7, "spl": "*", "interval": CRONTAB}, "name"), ({"name": "x" * 1001, "spl": "*", "interval": CRONTAB},
                                                              "name"),
    ({"name": "x", "interval": CRONTAB}, "spl"), ({"name": "x", "spl": ["*"], "interval": CRONTAB}, "spl"),
    ({"name": "x", "spl": "*"}, "interval"), ({"name": "x\u0000", "spl": "*", "interval": CRONTAB}, "name"),
])
def test_missing_or_malformed_fields_are_400_naming_the_field(
        pandora: Pandora, ledger_app: TaskLedger, body: dict[str, object], field: str) -> None:
    head = ledger_app.head_position()
    resp = pandora.create(body)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith(field + ": ")
    assert ledger_app.head_position() == head


def test_unknown_body_fields_are_ignored(pandora: Pandora) -> None:
    prefix = unique()
    resp = pandora.create({"name": prefix + "x", "spl": "*", "interval": CRONTAB, "status": "stopped", "x": 1})
    assert resp.status_code == 200
    assert pandora.task(resp.json()["id"], prefix)["status"] == "running"


def test_a_method_a_path_does_not_serve_is_405_in_pandora_format(pandora: Pandora) -> None:
    resp = pandora.call("GET", f"{BASE}/task")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    assert resp.json() == {"error": "GET is not allowed here; use POST"}


def test_writes_answer_their_log_position_and_reads_wait_for_a_position_given(pandora: Pandora) -> None:
    resp = pandora.create({"name": unique(), "spl": "*", "interval": CRONTAB})
    assert int(resp.headers["Ledger-Position"]) > 0
    bad = pandora.call("GET", f"{BASE}/task/list", headers={"Ledger-Min-Position": "soon"})
    assert (bad.status_code, bad.json()) == (400, {"error": "Ledger-Min-Position: must be a log position "
                                                            "(an integer 0 or more)"})
