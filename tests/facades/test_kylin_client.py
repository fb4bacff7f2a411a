"""kylinpy 2.8.4, unchanged, against the Kylin facade: v1 (bare JSON) and v2 (envelope, KE3 service)."""

from __future__ import annotations

from typing import Any

import pytest
from kylinpy import Kylin
from kylinpy.client import BadRequestsError, ForbiddenError, NotFoundError, UnauthorizedError

from ledger import state as st
from tests.facades.conftest import USERS
from tests.facades.kylin_support import Tasks, port_of, project, tasks

__all__ = ["project", "tasks"]

UNKNOWN = "3f0c8f4e-9a59-4c1b-8d6e-0d5b8e7f6a11"


def connect(server: str, project: str, version: str, role: str = "admin", password: str | None = None) -> Any:
    name, secret = USERS[role]
    return Kylin("127.0.0.1", username=name, password=password or secret, port=port_of(server),
                 project=project, version=version)


@pytest.fixture
def v1(server: str, project: str) -> Any:
    return connect(server, project, "v1")


@pytest.fixture
def v2(server: str, project: str) -> Any:
    return connect(server, project, "v2")


# ------------------------------------------------------------------------------------------------- v1
def test_v1_list_job_gives_job_objects_of_the_project_newest_first(v1: Any, tasks: Tasks, project: str) -> None:
    ids = [tasks.create(project, f"job-{i}") for i in range(3)]
    tasks.create(project + "_other", "elsewhere")
    assert [job.job_id for job in v1.list_job()] == ids[::-1]


def test_v1_service_jobs_filters_by_time_and_status(v1: Any, tasks: Tasks, project: str) -> None:
    done = tasks.in_state(project, st.SUCCEEDED)
    failed = tasks.in_state(project, st.FAILED)
    tasks.create(project, "pending")
    listed = v1.service.jobs(timeFilter=1, status=[4, 8])
    assert {job["uuid"] for job in listed} == {done, failed}


def test_v1_job_desc_and_status_read_the_job(v1: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.PAUSED)
    job = v1.get_job(job_id)
    assert job.get_desc()["uuid"] == job_id
    assert job.status == "STOPPED"


def test_v1_pause_resume_cancel_and_drop_a_job(v1: Any, tasks: Tasks, project: str) -> None:
    job = v1.get_job(tasks.in_state(project, st.RUNNING))
    assert job.pause()["job_status"] == "STOPPED"
    assert job.resume()["job_status"] == "PENDING"
    assert job.cancel()["job_status"] == "DISCARDED"
    assert job.drop()["uuid"] == job.job_id
    with pytest.raises(NotFoundError):
        job.get_desc()


def test_v1_dropping_a_running_job_raises_the_clients_400_error(v1: Any, tasks: Tasks, project: str) -> None:
    job = v1.get_job(tasks.in_state(project, st.RUNNING))
    with pytest.raises(BadRequestsError) as raised:
        job.drop()
    assert raised.value.status_code == 400
    assert str(raised.value) == "Cannot drop running job job in RUNNING, please discard it first."


def test_v1_an_unknown_job_raises_not_found(v1: Any) -> None:
    with pytest.raises(NotFoundError) as raised:
        v1.get_job(UNKNOWN).get_desc()
    assert str(raised.value) == f"Cannot find job '{UNKNOWN}'."


def test_v1_a_build_creates_a_job_the_client_lists(server: str, tasks: Tasks) -> None:
    k = connect(server, "default", "v1")
    created = k.service.build("kylin_sales_cube", "BUILD", 1388534400000, 1388620800000)
    assert created["job_status"] == "PENDING" and created["project_name"] == "default"
    assert created["uuid"] in [job.job_id for job in k.list_job()]
    assert tasks.native(created["uuid"])["facade"] == "kylin"


def test_v1_wrong_credentials_raise_unauthorized_and_a_viewer_is_forbidden_to_pause(
        server: str, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    with pytest.raises(UnauthorizedError):
        connect(server, project, "v1", password="not-the-password").list_job()
    with pytest.raises(ForbiddenError) as raised:
        connect(server, project, "v1", role="viewer").get_job(job_id).pause()
    assert str(raised.value).startswith("Access is denied")


# ------------------------------------------------------------------------------------------------- v2
def test_v2_list_job_reads_the_envelope(v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    assert job_id in [job.job_id for job in v2.list_job()]


def test_v2_service_jobs_sends_real_filters(v2: Any, tasks: Tasks, project: str) -> None:
    running = tasks.in_state(project, st.RUNNING)
    queued = tasks.create(project, "queued")
    tasks.in_state(project, st.SUCCEEDED)
    listed = v2.service.jobs(projectName=project, status=[1, 2], timeFilter=0, pageSize=5)
    assert [job["uuid"] for job in listed] == [queued, running]


def test_v2_resume_job_resumes_a_paused_job(v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.PAUSED)
    resumed = v2.service.resume_job(job_id)
    assert resumed["uuid"] == job_id and resumed["job_status"] == "PENDING"


def test_v2_get_pause_cancel_drop_and_step_output_through_the_clients_transport(
        v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.RUNNING)
    client = v2._get_client()
    assert client.get(f"/jobs/{job_id}").json()["data"]["job_status"] == "RUNNING"
    assert client.put(f"/jobs/{job_id}/pause").json()["data"]["job_status"] == "STOPPED"
    assert client.put(f"/jobs/{job_id}/cancel").json()["data"]["job_status"] == "DISCARDED"
    output = client.get(f"/jobs/{job_id}/steps/{job_id}-00/output").json()["data"]
    assert output == {"jobId": job_id, "stepId": f"{job_id}-00", "cmd_output": ""}
    assert client.delete(f"/jobs/{job_id}/drop").json()["data"]["uuid"] == job_id


def test_v2_refusals_raise_the_clients_400_error_with_kylins_message(v2: Any, tasks: Tasks, project: str) -> None:
    finished = tasks.in_state(project, st.SUCCEEDED)
    running = tasks.in_state(project, st.RUNNING)
    client = v2._get_client()
    with pytest.raises(BadRequestsError) as raised:
        client.put(f"/jobs/{finished}/pause")
    refusal = f"there is no valid state transfer from:FINISHED to:STOPPED, job id: {finished}"
    assert str(raised.value).startswith(refusal)
    with pytest.raises(BadRequestsError) as raised:
        client.delete(f"/jobs/{running}/drop")
    assert str(raised.value) == "Cannot drop running job job in RUNNING, please discard it first."
    with pytest.raises(NotFoundError):
        v2.service.resume_job(UNKNOWN)
