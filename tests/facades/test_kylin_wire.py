"""The Kylin facade's wire format over plain HTTP: envelope, JobInstance fields, types and units, errors."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

import pytest

from ledger import state as st
from ledger.commands import CreateTask, UpdateStep
from tests.facades.kylin_support import (
    JOBS,
    NATIVE,
    V2_MEDIA,
    KylinHttp,
    Tasks,
    assert_kylin_error,
    kylin,
    project,
    tasks,
)

__all__ = ["kylin", "project", "tasks"]

JOB_FIELDS = {
    "uuid": str, "last_modified": int, "version": str, "name": str, "type": str, "duration": int,
    "related_cube": str, "display_cube_name": str, "related_segment": str, "project_name": str,
    "exec_start_time": int, "exec_end_time": int, "exec_interrupt_time": int, "mr_waiting": int,
    "steps": list, "submitter": str, "job_status": str, "progress": float, "is_broken": bool,
}
STEP_FIELDS = {
    "id": str, "name": str, "sequence_id": int, "exec_cmd": type(None), "interrupt_cmd": type(None),
    "interruptCmd": type(None), "exec_start_time": int, "exec_end_time": int, "exec_wait_time": int,
    "step_status": str, "cmd_type": str, "info": dict, "run_async": bool,
}


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def test_a_v2_answer_is_the_envelope_with_the_v2_media_type(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    response = kylin.request("GET", f"{JOBS}/{job_id}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(V2_MEDIA)
    body = response.json()
    assert set(body) == {"code", "data", "msg"}
    assert body["code"] == "000" and body["msg"] == "" and body["data"]["uuid"] == job_id


def test_a_v1_answer_is_the_bare_job_as_json(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    response = kylin.request("GET", f"{JOBS}/{job_id}", v2=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["uuid"] == job_id and "code" not in response.json()


def test_a_job_has_every_jobinstance_field_with_kylins_types(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project, input={"cube": "kylin_sales_cube", "segment": "seg-1"}, submitter="ADMIN")
    job = kylin.data("GET", f"{JOBS}/{job_id}")
    assert {k: type(v) for k, v in job.items()} == JOB_FIELDS
    assert job["version"] == "3.0.0.1" and job["type"] == "BUILD" and job["is_broken"] is False
    assert (job["related_cube"], job["display_cube_name"], job["related_segment"]) == (
        "kylin_sales_cube", "kylin_sales_cube", "seg-1")
    assert job["project_name"] == project and job["submitter"] == "ADMIN"
    assert (job["exec_start_time"], job["exec_end_time"], job["exec_interrupt_time"], job["duration"]) == (0, 0, 0, 0)


def test_steps_are_numbered_jobid_dash_two_digits_with_kylins_step_fields(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    names = tuple(f"Step {i}" for i in range(12))
    job_id = tasks.create(project, steps=names)
    steps = kylin.data("GET", f"{JOBS}/{job_id}")["steps"]
    assert [s["id"] for s in steps] == [f"{job_id}-{i:02d}" for i in range(12)]
    assert [s["sequence_id"] for s in steps] == list(range(12)) and [s["name"] for s in steps] == list(names)
    assert {k: type(v) for k, v in steps[0].items()} == STEP_FIELDS
    assert steps[0]["cmd_type"] == "SHELL_CMD_HADOOP" and steps[0]["step_status"] == "PENDING"
    assert steps[0]["info"] == {} and steps[0]["run_async"] is False


def test_times_are_milliseconds_and_duration_is_seconds(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.SUCCEEDED)
    native = tasks.native(job_id)
    job = kylin.data("GET", f"{JOBS}/{job_id}")
    assert job["last_modified"] == ms(native["updated_at"])
    assert job["exec_start_time"] == ms(native["started_at"]) and job["exec_end_time"] == ms(native["ended_at"])
    expected = int((datetime.fromisoformat(native["ended_at"]) - datetime.fromisoformat(native["started_at"]))
                   .total_seconds())
    assert job["duration"] == expected and job["progress"] == 100.0


def test_a_running_job_lasts_until_now(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.RUNNING)
    started = datetime.fromisoformat(tasks.native(job_id)["started_at"])
    job = kylin.data("GET", f"{JOBS}/{job_id}")
    assert job["exec_end_time"] == 0
    assert abs(job["duration"] - (datetime.now(timezone.utc) - started).total_seconds()) < 5


@pytest.mark.parametrize(("state", "status"), [
    (st.QUEUED, "PENDING"), (st.RUNNING, "RUNNING"), (st.PAUSED, "STOPPED"), (st.CANCELLING, "RUNNING"),
    (st.SUCCEEDED, "FINISHED"), (st.FAILED, "ERROR"), (st.CANCELLED, "DISCARDED"), (st.ABORTED, "DISCARDED"),
])
def test_each_ledger_state_reads_as_its_kylin_job_status(
        kylin: KylinHttp, tasks: Tasks, project: str, state: str, status: str) -> None:
    job_id = tasks.in_state(project, state)
    assert kylin.data("GET", f"{JOBS}/{job_id}")["job_status"] == status


def test_step_statuses_read_as_kylin_step_statuses(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    statuses = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
    job_id = tasks.create(project, steps=statuses)
    epoch = tasks.start(job_id)
    for index, status in enumerate(statuses):
        tasks.settle(tasks.ledger.update_step(UpdateStep(UUID(job_id), epoch, index, status, None), NATIVE))
    steps = kylin.data("GET", f"{JOBS}/{job_id}")["steps"]
    assert [s["step_status"] for s in steps] == ["PENDING", "RUNNING", "FINISHED", "ERROR", "DISCARDED", "DISCARDED"]


def test_cube_and_segment_come_from_labels_when_the_input_has_none(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    labelled = tasks.create(project, labels={"cube": "from_label", "segment": "s9"}, input={"other": 1})
    plain = tasks.create(project, input=["not", "an", "object"])
    job = kylin.data("GET", f"{JOBS}/{labelled}")
    assert (job["related_cube"], job["related_segment"]) == ("from_label", "s9")
    assert kylin.data("GET", f"{JOBS}/{plain}")["related_cube"] == ""


@pytest.mark.parametrize(("task_type", "job_type"), [("MERGE", "MERGE"), ("refresh", "REFRESH"),
                                                     ("generic", "BUILD")])
def test_the_job_type_is_build_merge_or_refresh(
        kylin: KylinHttp, tasks: Tasks, project: str, task_type: str, job_type: str) -> None:
    job_id = tasks.create(project, type=task_type)
    assert kylin.data("GET", f"{JOBS}/{job_id}")["type"] == job_type


def test_step_output_answers_the_steps_output(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    epoch = tasks.start(job_id)
    tasks.settle(tasks.ledger.update_step(UpdateStep(UUID(job_id), epoch, 1, None, "result code:0"), NATIVE))
    data = kylin.data("GET", f"{JOBS}/{job_id}/steps/{job_id}-01/output")
    assert data == {"jobId": job_id, "stepId": f"{job_id}-01", "cmd_output": "result code:0"}
    bare = kylin.request("GET", f"{JOBS}/{job_id}/steps/{job_id}-00/output", v2=False).json()
    assert bare == {"jobId": job_id, "stepId": f"{job_id}-00", "cmd_output": ""}


@pytest.mark.parametrize("step", ["{job}-02", "{job}-1x", "{other}-00", "nonsense"])
def test_an_unknown_step_is_404_in_kylins_error_body(
        kylin: KylinHttp, tasks: Tasks, project: str, step: str) -> None:
    job_id = tasks.create(project)
    step_id = step.format(job=job_id, other="0cf1fb9e-05a8-4e0f-9bbc-1a2e9b1c0f00")
    response = kylin.request("GET", f"{JOBS}/{job_id}/steps/{step_id}/output")
    assert_kylin_error(response, 404, f"Cannot find step '{step_id}'")


def test_an_unknown_job_is_404_in_kylins_error_body_for_v1_and_v2(kylin: KylinHttp) -> None:
    unknown = "6a0a6f49-5b43-4c4b-a1bd-8d8b3e6d0d4e"
    body = assert_kylin_error(kylin.request("GET", f"{JOBS}/{unknown}"), 404, f"Cannot find job '{unknown}'")
    assert body["url"].endswith(f"{JOBS}/{unknown}")
    assert_kylin_error(kylin.request("GET", f"{JOBS}/{unknown}", v2=False), 404, unknown)
    assert_kylin_error(kylin.request("GET", f"{JOBS}/not-a-uuid"), 404, "Cannot find job 'not-a-uuid'")


def test_a_task_outside_the_kylin_namespaces_is_not_a_kylin_job(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    other = tasks.create(project, namespace=f"openlookeng:{project}")
    assert_kylin_error(kylin.request("GET", f"{JOBS}/{other}"), 404, other)


def test_a_job_created_natively_a_moment_ago_is_found(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    written = tasks.ledger.create_task(CreateTask(namespace=f"kylin:{project}", name="fresh"), NATIVE)
    assert kylin.data("GET", f"{JOBS}/{written.task_id}")["name"] == "fresh"


def test_a_method_kylin_does_not_serve_is_405_in_kylins_error_body(kylin: KylinHttp, tasks: Tasks,
                                                                    project: str) -> None:
    job_id = tasks.create(project)
    response = kylin.request("POST", f"{JOBS}/{job_id}/pause")
    assert_kylin_error(response, 405, "Request method 'POST' not supported")
    assert response.headers["Allow"] == "PUT"
    assert_kylin_error(kylin.request("DELETE", JOBS), 405)
    assert kylin.request("OPTIONS", f"{JOBS}/{job_id}/drop", role=None).headers["Allow"] == "DELETE, OPTIONS"  # Spring adds OPTIONS too


def test_an_unknown_path_under_kylin_api_is_404_in_kylins_error_body(kylin: KylinHttp) -> None:
    assert_kylin_error(kylin.request("GET", "/kylin/api/nothing/here"), 404, "/kylin/api/nothing/here")
    assert_kylin_error(kylin.request("GET", f"{JOBS}/x/steps/y"), 404)


def test_without_credentials_the_answer_is_401_in_kylins_error_body(kylin: KylinHttp, tasks: Tasks,
                                                                     project: str) -> None:
    job_id = tasks.create(project)
    response = kylin.request("GET", f"{JOBS}/{job_id}", role=None)
    assert_kylin_error(response, 401, "Unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    wrong = kylin.request("GET", JOBS, role=None, auth=("fac-admin", "wrong-password"), params={"timeFilter": 4})
    assert_kylin_error(wrong, 401)


@pytest.mark.parametrize("role", ["admin", "operator", "worker", "viewer"])
def test_every_role_reads_jobs(kylin: KylinHttp, tasks: Tasks, project: str, role: str) -> None:
    job_id = tasks.create(project)
    assert kylin.data("GET", f"{JOBS}/{job_id}", role=role)["uuid"] == job_id
    # Membership, not a count: a list by a submitter also shows its builds that named no project.
    assert job_id in [j["uuid"] for j in kylin.data("GET", JOBS, role=role,
                                                   params={"timeFilter": 4, "projectName": project})["jobs"]]


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "pause"), ("PUT", "resume"), ("PUT", "cancel"), ("DELETE", "drop")])
@pytest.mark.parametrize("role", ["worker", "viewer"])
def test_only_admins_and_operators_control_jobs(
        kylin: KylinHttp, tasks: Tasks, project: str, role: str, method: str, path: str) -> None:
    job_id = tasks.in_state(project, st.SUCCEEDED)
    head = tasks.ledger.head_position()
    assert_kylin_error(kylin.request(method, f"{JOBS}/{job_id}/{path}", role=role), 403, "Access is denied")
    assert tasks.ledger.head_position() == head


def test_an_operator_controls_jobs(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    assert kylin.data("PUT", f"{JOBS}/{job_id}/pause", role="operator")["job_status"] == "STOPPED"


def test_a_ledger_min_position_from_a_native_write_is_honoured_and_checked(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    head = str(tasks.ledger.head_position())
    assert kylin.data("GET", f"{JOBS}/{job_id}", headers={"Ledger-Min-Position": head})["uuid"] == job_id
    response = kylin.request("GET", f"{JOBS}/{job_id}", headers={"Ledger-Min-Position": "soon"})
    assert_kylin_error(response, 400, "Ledger-Min-Position")
