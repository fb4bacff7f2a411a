"""Pause, resume, cancel and drop through the Kylin facade, in every ledger state (the action × state table)."""

from __future__ import annotations

from uuid import UUID

import pytest

from ledger import state as st
from tests.facades.kylin_support import (
    JOBS,
    KylinHttp,
    Tasks,
    assert_kylin_error,
    kylin,
    project,
    tasks,
)

__all__ = ["kylin", "project", "tasks"]

# (action, ledger state before) → ledger state after; None = refused with 400.
TABLE = {
    "pause": {st.QUEUED: st.PAUSED, st.RUNNING: st.PAUSED, st.PAUSED: st.PAUSED, st.CANCELLING: None,
              st.SUCCEEDED: None, st.FAILED: None, st.CANCELLED: None, st.ABORTED: None},
    "resume": {st.QUEUED: st.QUEUED, st.RUNNING: None, st.PAUSED: st.QUEUED, st.CANCELLING: None,
               st.SUCCEEDED: None, st.FAILED: st.QUEUED, st.CANCELLED: None, st.ABORTED: None},
    "cancel": {st.QUEUED: st.CANCELLED, st.RUNNING: st.CANCELLING, st.PAUSED: st.CANCELLED,
               st.CANCELLING: st.CANCELLED, st.SUCCEEDED: None, st.FAILED: None, st.CANCELLED: st.CANCELLED,
               st.ABORTED: st.ABORTED},
}
KYLIN_STATUS = {st.QUEUED: "PENDING", st.RUNNING: "RUNNING", st.PAUSED: "STOPPED", st.CANCELLING: "RUNNING",
                st.SUCCEEDED: "FINISHED", st.FAILED: "ERROR", st.CANCELLED: "DISCARDED", st.ABORTED: "DISCARDED"}
TARGET = {"pause": "STOPPED", "resume": "PENDING", "cancel": "DISCARDED"}
# Kylin treats setting the status a job already has as a no-op: 200 and nothing recorded.
NO_OPS = {("pause", st.PAUSED), ("resume", st.QUEUED), ("cancel", st.CANCELLED), ("cancel", st.ABORTED)}

ALLOWED = [(a, s) for a, row in TABLE.items() for s, after in row.items() if after is not None]
REFUSED = [(a, s) for a, row in TABLE.items() for s, after in row.items() if after is None]


@pytest.mark.parametrize(("action", "state"), ALLOWED)
def test_an_allowed_action_answers_the_job_as_it_is_afterwards(
        kylin: KylinHttp, tasks: Tasks, project: str, action: str, state: str) -> None:
    job_id = tasks.in_state(project, state)
    head = tasks.ledger.head_position()
    job = kylin.data("PUT", f"{JOBS}/{job_id}/{action}")
    after = TABLE[action][state]
    assert after is not None
    assert job["uuid"] == job_id and job["job_status"] == KYLIN_STATUS[after]
    assert tasks.ledger.task_as_of(UUID(job_id)).state == after
    wrote = tasks.ledger.head_position() > head
    assert wrote is ((action, state) not in NO_OPS)


@pytest.mark.parametrize(("action", "state"), REFUSED)
def test_a_refused_action_is_400_in_kylins_error_body_and_records_nothing(
        kylin: KylinHttp, tasks: Tasks, project: str, action: str, state: str) -> None:
    job_id = tasks.in_state(project, state)
    head = tasks.ledger.head_position()
    response = kylin.request("PUT", f"{JOBS}/{job_id}/{action}")
    assert_kylin_error(response, 400, f"there is no valid state transfer from:{KYLIN_STATUS[state]} "
                       f"to:{TARGET[action]}, job id: {job_id}")
    assert tasks.ledger.head_position() == head
    assert tasks.ledger.task_as_of(UUID(job_id)).state == state


def test_a_refusal_says_why_in_kylins_terms(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    finished = tasks.in_state(project, st.SUCCEEDED)
    discarding = tasks.in_state(project, st.CANCELLING)
    refused = kylin.request("PUT", f"{JOBS}/{finished}/pause").json()["exception"]
    assert refused.endswith("(pause is allowed only for PENDING, RUNNING jobs)")
    refused = kylin.request("PUT", f"{JOBS}/{discarding}/pause").json()["exception"]
    assert refused.endswith("(the job is being discarded)")


@pytest.mark.parametrize("state", [st.SUCCEEDED, st.CANCELLED, st.ABORTED])
def test_a_finished_or_discarded_job_is_dropped_and_answered_as_it_was(
        kylin: KylinHttp, tasks: Tasks, project: str, state: str) -> None:
    job_id = tasks.in_state(project, state)
    job = kylin.data("DELETE", f"{JOBS}/{job_id}/drop")
    assert job["uuid"] == job_id and job["job_status"] == KYLIN_STATUS[state]
    assert tasks.native(job_id)["dropped"] is True
    assert_kylin_error(kylin.request("GET", f"{JOBS}/{job_id}"), 404, job_id)
    assert job_id not in [j["uuid"] for j in kylin.jobs(projectName=project)["jobs"]]


@pytest.mark.parametrize("state", [st.QUEUED, st.RUNNING, st.PAUSED, st.CANCELLING, st.FAILED])
def test_any_other_job_cannot_be_dropped_even_a_failed_one(
        kylin: KylinHttp, tasks: Tasks, project: str, state: str) -> None:
    job_id = tasks.in_state(project, state)
    head = tasks.ledger.head_position()
    response = kylin.request("DELETE", f"{JOBS}/{job_id}/drop")
    assert_kylin_error(response, 400, f"Cannot drop running job job in {state}, please discard it first.")
    assert tasks.ledger.head_position() == head
    assert tasks.native(job_id)["dropped"] is False


def test_a_dropped_job_cannot_be_controlled_any_more(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.CANCELLED)
    kylin.data("DELETE", f"{JOBS}/{job_id}/drop")
    head = tasks.ledger.head_position()
    for method, action in (("PUT", "resume"), ("PUT", "cancel"), ("DELETE", "drop")):
        assert_kylin_error(kylin.request(method, f"{JOBS}/{job_id}/{action}"), 404, job_id)
    assert tasks.ledger.head_position() == head


@pytest.mark.parametrize(("method", "action"), [("PUT", "pause"), ("PUT", "resume"), ("PUT", "cancel"),
                                                ("DELETE", "drop")])
def test_an_action_on_an_unknown_job_is_404(kylin: KylinHttp, tasks: Tasks, method: str, action: str) -> None:
    unknown = "0d9a41f2-39d5-4a8f-8c5e-2b2b0e5f1a77"
    head = tasks.ledger.head_position()
    assert_kylin_error(kylin.request(method, f"{JOBS}/{unknown}/{action}"), 404, unknown)
    assert_kylin_error(kylin.request(method, f"{JOBS}/x{unknown}/{action}", v2=False), 404)
    assert tasks.ledger.head_position() == head


def test_actions_are_recorded_as_the_caller_through_the_kylin_facade(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    kylin.data("PUT", f"{JOBS}/{job_id}/pause", role="operator")
    kylin.data("PUT", f"{JOBS}/{job_id}/resume", params={"jobId": job_id})
    events = tasks.ledger.task_events(UUID(job_id))[-2:]
    assert [(e["actor"], e["facade"]) for e in events] == [("fac-operator", "kylin"), ("fac-admin", "kylin")]


def test_v1_actions_answer_the_bare_job(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    response = kylin.request("PUT", f"{JOBS}/{job_id}/pause", v2=False)
    assert response.status_code == 200 and response.json()["job_status"] == "STOPPED"
    assert kylin.request("PUT", f"{JOBS}/{job_id}/cancel", v2=False).json()["job_status"] == "DISCARDED"
    assert kylin.request("DELETE", f"{JOBS}/{job_id}/drop", v2=False).json()["uuid"] == job_id
