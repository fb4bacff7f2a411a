"""Bulk actions by filter: dry runs, bounds, one event per task with the bulk's request id, resumable parts."""

from __future__ import annotations

from typing import Any

import pytest

from api.resources import bulk
from tests.api.conftest import Api, assert_problem


def _events(api: Api, task_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = api.get(f"/tasks/{task_id}/events").json["events"]
    return events


def _run(api: Api, action: str, params: dict[str, Any], body: dict[str, Any], role: str = "operator"
         ) -> list[dict[str, Any]]:
    """Every part of a bulk run, following its cursor to the end."""
    parts = []
    answer = api.post(f"/bulk/{action}", body, params=params, role=role)
    while True:
        assert answer.status_code == 200, answer.text
        parts.append(answer.json)
        if answer.json["done"]:
            return parts
        answer = api.post(f"/bulk/{action}", {**body, "cursor": answer.json["cursor"]}, params=params, role=role)


def test_a_dry_run_counts_what_the_list_counts_and_writes_nothing(api: Api, namespace: str) -> None:
    running, _ = api.running(namespace, name="r", labels={"team": "a"})  # claims take the oldest: first
    queued = [api.create(namespace, name=f"q{i}", labels={"team": "a"})["id"] for i in range(4)]
    api.create(namespace, name="other-team", labels={"team": "b"})
    params = {"namespace": namespace, "label": "team:a"}
    listed = api.get("/tasks", params=params).json
    answer = api.post("/bulk/pause", {"dry_run": True}, params=params, role="operator")
    assert answer.status_code == 200, answer.text
    dry = answer.json
    assert dry["dry_run"] is True and dry["done"] is True
    assert dry["matched"] == listed["total"] == 5
    assert dry["by_state"] == {"QUEUED": 4, "RUNNING": 1}
    assert dry["would_act"] == 5 and dry["would_skip"] == 0
    assert sorted(t["id"] for t in dry["items"]) == sorted([*queued, running])
    resume = api.post("/bulk/resume", {"dry_run": True}, params=params, role="operator").json
    assert resume["would_act"] == 0 and resume["would_skip"] == 5 and resume["items"] == []
    assert all(len(_events(api, t)) == 1 for t in queued)  # only Created: nothing written
    assert "Ledger-Position" not in answer.headers


def test_a_run_records_one_event_per_task_with_one_shared_request_id_and_reports_refusals(
        api: Api, namespace: str) -> None:
    done_id, epoch = api.running(namespace, name="finished")
    queued = [api.create(namespace, name=f"q{i}")["id"] for i in range(3)]
    assert api.post(f"/tasks/{done_id}/complete", {"lease_epoch": epoch}, role="worker").status_code == 200
    parts = _run(api, "cancel", {"namespace": namespace}, {"reason": "bad deploy"})
    last = parts[-1]
    assert (last["matched"], last["acted"], last["skipped"]) == (4, 3, 1)
    assert [(s["task_id"], s["state"]) for s in last["skipped_items"]] == [(done_id, "SUCCEEDED")]
    request_ids = set()
    for task_id in queued:
        events = _events(api, task_id)
        assert [e["type"] for e in events] == ["Created", "Cancelled"]
        assert events[-1]["actor"] == "api-operator"
        request_ids.add(events[-1]["request_id"])
        assert api.get(f"/tasks/{task_id}").json["state"] == "CANCELLED"
    assert request_ids == {last["bulk_id"]}
    assert [e["type"] for e in _events(api, done_id)][-1] == "Completed"  # left alone
    # Sent again, the run finds nothing left to do: every task is refused by its state, none changes twice.
    again = _run(api, "cancel", {"namespace": namespace}, {})[-1]
    assert (again["acted"], again["skipped"]) == (0, 4)
    assert all(len(_events(api, t)) == 2 for t in queued)


def test_a_larger_selection_than_max_is_refused_before_anything_is_written(api: Api, namespace: str) -> None:
    ids = [api.create(namespace, name=f"t{i}")["id"] for i in range(3)]
    assert_problem(api.post("/bulk/pause", {"max": 2}, params={"namespace": namespace}, role="operator"),
                   422, "bulk-over-max", "max")
    assert all(api.get(f"/tasks/{t}").json["state"] == "QUEUED" for t in ids)
    dry = api.post("/bulk/pause", {"dry_run": True, "max": 2}, params={"namespace": namespace}, role="operator").json
    assert dry["matched"] == 3 and dry["within_max"] is False
    assert _run(api, "pause", {"namespace": namespace}, {"max": 3})[-1]["acted"] == 3


def test_a_run_goes_on_part_by_part_and_leaves_out_tasks_created_after_it_started(
        api: Api, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [api.create(namespace, name=f"t{i}")["id"] for i in range(7)]
    monkeypatch.setattr(bulk, "CHUNK", 2)
    monkeypatch.setattr(bulk, "PART_SECONDS", 0.0)  # one chunk per answer
    params = {"namespace": namespace}
    first = api.post("/bulk/pause", {"reason": "window"}, params=params, role="operator").json
    assert first["done"] is False and first["part"] == {"acted": 2, "skipped": 0} and first["cursor"]
    late = api.create(namespace, name="late")["id"]
    # Another cursor's selection, or this cursor with another filter, is refused.
    assert_problem(api.post("/bulk/pause", {"cursor": first["cursor"]}, params={"namespace": namespace + "x"},
                            role="operator"), 400, "invalid-cursor", "cursor")
    assert_problem(api.post("/bulk/resume", {"cursor": first["cursor"]}, params=params, role="operator"),
                   400, "invalid-cursor", "cursor")
    assert_problem(api.post("/bulk/pause", {"cursor": "garbage"}, params=params, role="operator"),
                   400, "invalid-cursor", "cursor")
    answer = first
    parts = 1
    while not answer["done"]:
        answer = api.post("/bulk/pause", {"cursor": answer["cursor"]}, params=params, role="operator").json
        parts += 1
    assert parts == 4 and (answer["matched"], answer["acted"], answer["skipped"]) == (7, 7, 0)
    assert all(api.get(f"/tasks/{t}").json["state"] == "PAUSED" for t in ids)
    assert api.get(f"/tasks/{late}").json["state"] == "QUEUED"
    assert len({_events(api, t)[-1]["request_id"] for t in ids}) == 1


def test_a_bulk_cancel_leaves_a_cancelling_task_to_its_worker(api: Api, namespace: str) -> None:
    task_id, _ = api.running(namespace)
    assert api.post(f"/tasks/{task_id}/cancel", {}, role="operator").json["version"] == 3
    last = _run(api, "cancel", {"namespace": namespace}, {})[-1]
    assert (last["acted"], last["skipped"]) == (0, 1)
    assert api.get(f"/tasks/{task_id}").json["state"] == "CANCELLING"
    assert _run(api, "abort", {"namespace": namespace}, {})[-1]["acted"] == 1


def test_drop_takes_ended_tasks_unless_forced(api: Api, namespace: str) -> None:
    failed, epoch = api.running(namespace)
    queued = api.create(namespace)["id"]
    assert api.post(f"/tasks/{failed}/fail", {"lease_epoch": epoch, "error": "x", "retry": False},
                    role="worker").status_code == 200
    assert _run(api, "drop", {"namespace": namespace}, {})[-1]["acted"] == 1
    assert api.get(f"/tasks/{failed}").status_code == 410
    assert _run(api, "drop", {"namespace": namespace}, {"force": True})[-1]["acted"] == 1
    assert api.get(f"/tasks/{queued}").status_code == 410


def test_roles_and_bad_input(api: Api, namespace: str) -> None:
    api.create(namespace)
    params = {"namespace": namespace}
    assert_problem(api.post("/bulk/cancel", {}, params=params, role="viewer"), 403)
    assert_problem(api.post("/bulk/cancel", {}, params=params, role="worker"), 403)
    assert_problem(api.post("/bulk/cancel", {}, params=params, role=None), 401)
    assert_problem(api.post("/bulk/resume", {"reason": "x"}, params=params, role="operator"), 422, field="reason")
    assert_problem(api.post("/bulk/pause", {"force": True}, params=params, role="operator"), 422, field="force")
    assert_problem(api.post("/bulk/pause", {"max": 0}, params=params, role="operator"), 422, field="max")
    assert_problem(api.post("/bulk/pause", {"max": 10**7}, params=params, role="operator"), 422, field="max")
    assert_problem(api.post("/bulk/pause", {}, params={"state": "NOPE"}, role="operator"), 400, field="state.0")
    assert_problem(api.post("/bulk/pause", {}, params={"sort": "name"}, role="operator"), 400, field="sort")
    assert_problem(api.post("/bulk/explode", {}, params=params, role="operator"), 404)
    assert api.get(f"/tasks?namespace={namespace}").json["items"][0]["state"] == "QUEUED"
