"""kylinpy 2.8.4, unchanged, against the Kylin facade: v1 (bare JSON) and v2 (envelope, KE3 service).

Every job call kylinpy offers is driven here (real-clients.md §2): v1 `list_job`, `service.jobs`, `get_job`,
`get_desc`, `status`, `pause`/`resume`/`cancel`/`drop`, `service.maintain_job`/`job_desc`/`drop_job`,
`service.fullbuild` and `service.build`; v2 `list_job`, `service.jobs`, `service.resume_job`, and kylinpy's own
transport (`_get_client()`) for what its v2 job objects cannot do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from kylinpy import Kylin
from kylinpy.client import BadRequestsError, ForbiddenError, NotFoundError, UnauthorizedError
from kylinpy.exceptions import KylinCubeError, KylinJobError
from kylinpy.job import Ke3Job, KylinJob

from ledger import state as st
from ledger.commands import ReportProgress, UpdateStep
from tests.facades.conftest import USERS
from tests.facades.kylin_support import NATIVE, Tasks, ledger_at, port_of, project, tasks

__all__ = ["ledger_at", "project", "tasks"]

UNKNOWN = "3f0c8f4e-9a59-4c1b-8d6e-0d5b8e7f6a11"
DAY_1, DAY_2 = 1388534400000, 1388620800000  # 2014-01-01, 2014-01-02 GMT
STAMP = r"GMT\+00:00 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
BUILD_STEPS, MERGE_STEPS = 11, 8
# Each ledger state as kylinpy's `job.status` reads it (`job_status`).
STATUS_OF = {st.QUEUED: "PENDING", st.RUNNING: "RUNNING", st.PAUSED: "STOPPED", st.CANCELLING: "RUNNING",
             st.SUCCEEDED: "FINISHED", st.FAILED: "ERROR", st.CANCELLED: "DISCARDED", st.ABORTED: "DISCARDED"}


def connect(server: str, project: str | None, version: str, role: str = "admin",
            password: str | None = None) -> Any:
    name, secret = USERS[role]
    return Kylin("127.0.0.1", username=name, password=password or secret, port=port_of(server),
                 project=project, version=version)


@pytest.fixture
def v1(server: str, project: str) -> Any:
    return connect(server, project, "v1")


@pytest.fixture
def v2(server: str, project: str) -> Any:
    return connect(server, project, "v2")


@pytest.fixture
def reader1(server: str, project: str) -> Any:
    """A v1 client of a user who builds nothing, so a list holds exactly the project's own jobs (the facade lists
    a user's builds that named no project in every project that user lists: see the xfails below)."""
    return connect(server, project, "v1", role="viewer")


@pytest.fixture
def reader2(server: str, project: str) -> Any:
    return connect(server, project, "v2", role="viewer")


@pytest.fixture
def built(server: str) -> Iterator[list[str]]:
    """Jobs a test builds through kylinpy; they land in the shared project `default` (see the xfails below),
    so they are discarded afterwards and no worker of another test claims them."""
    made: list[str] = []
    yield made
    k = connect(server, None, "v1")
    for job_id in made:
        job = k.get_job(job_id)
        if job.status in ("PENDING", "STOPPED"):
            job.cancel()


def version_of(tasks: Tasks, job_id: str) -> int:
    return int(tasks.native(job_id)["version"])


# ------------------------------------------------------------------------------------------------- v1
def test_v1_list_job_gives_job_objects_of_the_project_newest_first(
        reader1: Any, tasks: Tasks, project: str) -> None:
    ids = [tasks.create(project, f"job-{i}") for i in range(3)]
    tasks.create(project + "_other", "elsewhere")
    assert [job.job_id for job in reader1.list_job()] == ids[::-1]


def test_v1_service_jobs_filters_by_time_and_status(reader1: Any, tasks: Tasks, project: str) -> None:
    done = tasks.in_state(project, st.SUCCEEDED)
    failed = tasks.in_state(project, st.FAILED)
    tasks.create(project, "pending")
    listed = reader1.service.jobs(timeFilter=1, status=[4, 8])
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


def test_v1_list_job_gives_kylin_job_objects_of_at_most_15_jobs_its_default_page(
        reader1: Any, tasks: Tasks, project: str) -> None:
    ids = [tasks.create(project, f"job-{i:02d}") for i in range(16)]
    jobs = reader1.list_job()  # limit=15&offset=0&projectName=<project>
    assert all(isinstance(job, KylinJob) for job in jobs)
    assert [job.job_id for job in jobs] == ids[::-1][:15]


def test_v1_list_job_without_a_time_filter_shows_the_last_week_as_kylins_default(
        reader1: Any, ledger_at: Callable[[datetime], Tasks], tasks: Tasks, project: str) -> None:
    old = ledger_at(datetime.now(timezone.utc) - timedelta(days=8)).create(project, "last month")
    recent = tasks.create(project, "today")
    assert [job.job_id for job in reader1.list_job()] == [recent]
    assert {job["uuid"] for job in reader1.service.jobs(timeFilter=4)} == {old, recent}


def test_v1_list_job_filters_lose_their_values_in_the_client_and_the_server_ignores_them(
        reader1: Any, tasks: Tasks, project: str) -> None:
    done = tasks.in_state(project, st.SUCCEEDED)
    pending = tasks.create(project, "pending")
    # kylinpy sends `params=status&params=timeFilter`: Kylin (Spring) ignores a parameter it does not know.
    assert {job.job_id for job in reader1.list_job(status=[4], timeFilter=4)} == {done, pending}


def test_v1_service_jobs_filters_by_cube_name_and_pages_by_row_offset_and_limit(
        reader1: Any, tasks: Tasks, project: str) -> None:
    sales = [tasks.create(project, f"sales-{i}", input={"cube": "KYLIN_SALES_cube"}) for i in range(3)]
    tasks.create(project, "other", input={"cube": "kylin_streaming_cube"})
    assert [job["uuid"] for job in reader1.service.jobs(cubeName="sales")] == sales[::-1]
    assert [job["uuid"] for job in reader1.service.jobs(cubeName="sales", limit=1, offset=1)] == [sales[1]]
    assert reader1.service.jobs(projectName=project + "_none") == []


def test_v1_get_desc_reads_a_job_instance_with_kylins_fields_and_types(
        v1: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project, "BUILD CUBE - c - FULL_BUILD", input={"cube": "c", "segment": "seg-1"},
                          steps=("Create Intermediate Flat Hive Table", "Build Cube In-Mem"))
    epoch = tasks.start(job_id)
    tasks.settle(tasks.ledger.report_progress(ReportProgress(UUID(job_id), epoch, 50.0), NATIVE))
    tasks.settle(tasks.ledger.update_step(UpdateStep(UUID(job_id), epoch, 0, "SUCCEEDED"), NATIVE))
    job = v1.get_job(job_id)
    assert isinstance(job, KylinJob) and job.job_id == job_id
    desc = job.get_desc()
    assert (desc["uuid"], desc["name"], desc["type"], desc["job_status"]) == (
        job_id, "BUILD CUBE - c - FULL_BUILD", "BUILD", "RUNNING")
    assert (desc["related_cube"], desc["display_cube_name"], desc["related_segment"]) == ("c", "c", "seg-1")
    assert desc["project_name"] == project and desc["progress"] == 50.0 and isinstance(desc["progress"], float)
    now_ms = datetime.now(timezone.utc).timestamp() * 1000
    for key in ("last_modified", "exec_start_time"):
        assert isinstance(desc[key], int) and abs(desc[key] - now_ms) < 60_000, (key, desc[key])
    assert desc["exec_end_time"] == 0 and isinstance(desc["duration"], int)
    assert [(s["id"], s["sequence_id"], s["name"], s["step_status"]) for s in desc["steps"]] == [
        (f"{job_id}-00", 0, "Create Intermediate Flat Hive Table", "FINISHED"),
        (f"{job_id}-01", 1, "Build Cube In-Mem", "PENDING")]
    assert job.status == "RUNNING"


def test_v1_status_reads_the_kylin_status_of_every_ledger_state(v1: Any, tasks: Tasks, project: str) -> None:
    jobs = {state: v1.get_job(tasks.in_state(project, state)) for state in STATUS_OF}
    assert {state: job.status for state, job in jobs.items()} == STATUS_OF


def test_v1_service_maintain_job_job_desc_and_drop_job_act_on_the_job(
        v1: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.RUNNING)
    service = v1.service
    assert service.maintain_job(job_id, "pause")["job_status"] == "STOPPED"
    assert service.job_desc(job_id)["job_status"] == "STOPPED"
    assert service.maintain_job(job_id, "resume")["job_status"] == "PENDING"
    assert service.maintain_job(job_id, "cancel")["job_status"] == "DISCARDED"
    assert tasks.native(job_id)["state"] == st.CANCELLED
    dropped = service.drop_job(job_id)
    assert (dropped["uuid"], dropped["job_status"]) == (job_id, "DISCARDED")
    with pytest.raises(NotFoundError) as raised:
        service.job_desc(job_id)
    assert raised.value.status_code == 404 and str(raised.value) == f"Cannot find job '{job_id}'."


def test_v1_maintain_job_refuses_other_actions_in_the_client_before_any_request(
        v1: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    before = version_of(tasks, job_id)
    with pytest.raises(KylinJobError, match="Unsupported maintain type: drop"):
        v1.service.maintain_job(job_id, "drop")
    assert version_of(tasks, job_id) == before and v1.get_job(job_id).status == "PENDING"


def test_v1_a_no_op_action_answers_the_job_unchanged_and_records_nothing(
        v1: Any, tasks: Tasks, project: str) -> None:
    pending, paused = v1.get_job(tasks.create(project)), v1.get_job(tasks.in_state(project, st.PAUSED))
    versions = (version_of(tasks, pending.job_id), version_of(tasks, paused.job_id))
    assert pending.resume()["job_status"] == "PENDING" and paused.pause()["job_status"] == "STOPPED"
    assert (version_of(tasks, pending.job_id), version_of(tasks, paused.job_id)) == versions


def test_v1_a_refused_transition_raises_the_clients_400_error_and_changes_nothing(
        v1: Any, tasks: Tasks, project: str) -> None:
    job = v1.get_job(tasks.in_state(project, st.SUCCEEDED))
    with pytest.raises(BadRequestsError) as raised:
        job.pause()
    assert raised.value.status_code == 400
    assert str(raised.value).startswith(
        f"there is no valid state transfer from:FINISHED to:STOPPED, job id: {job.job_id}")
    assert job.status == "FINISHED"


def test_v1_a_dropped_job_leaves_list_job_and_cannot_be_dropped_again(
        v1: Any, reader1: Any, tasks: Tasks, project: str) -> None:
    kept, gone = tasks.create(project, "kept"), v1.get_job(tasks.in_state(project, st.SUCCEEDED))
    assert gone.drop()["job_status"] == "FINISHED"
    assert [job.job_id for job in reader1.list_job()] == [kept]
    with pytest.raises(NotFoundError):
        gone.drop()
    assert tasks.native(gone.job_id)["dropped"]


def test_v1_fullbuild_creates_a_pending_full_build_job_of_the_cube(
        server: str, tasks: Tasks, built: list[str]) -> None:
    k = connect(server, "default", "v1")
    job = k.service.fullbuild("kylinpy_full_cube")  # PUT /cubes/<cube>/build {"startTime":0,"endTime":0,...}
    built.append(job["uuid"])
    assert re.fullmatch(rf"BUILD CUBE - kylinpy_full_cube - FULL_BUILD - {STAMP}", job["name"]), job["name"]
    assert (job["type"], job["job_status"], job["related_cube"]) == ("BUILD", "PENDING", "kylinpy_full_cube")
    assert UUID(job["related_segment"]) and len(job["steps"]) == BUILD_STEPS
    assert {s["step_status"] for s in job["steps"]} == {"PENDING"}
    assert job["submitter"] == USERS["admin"][0] and job["progress"] == 0.0
    assert k.get_job(job["uuid"]).get_desc() == job
    assert tasks.native(job["uuid"])["input"]["segmentName"] == "FULL_BUILD"


@pytest.mark.parametrize(("build_type", "verb", "steps"), [
    ("BUILD", "BUILD", BUILD_STEPS), ("REFRESH", "BUILD", BUILD_STEPS), ("MERGE", "MERGE", MERGE_STEPS)])
def test_v1_build_creates_a_job_of_its_build_type_over_the_segment_range(
        server: str, tasks: Tasks, built: list[str], build_type: str, verb: str, steps: int) -> None:
    k = connect(server, "default", "v1")
    job = k.service.build("kylinpy_range_cube", build_type, DAY_1, DAY_2)
    built.append(job["uuid"])
    assert re.fullmatch(rf"{verb} CUBE - kylinpy_range_cube - 20140101000000_20140102000000 - {STAMP}",
                        job["name"]), job["name"]
    assert (job["type"], job["job_status"], len(job["steps"])) == (build_type, "PENDING", steps)
    native = tasks.native(job["uuid"])
    assert (native["type"], native["input"]["startTime"], native["input"]["endTime"]) == (build_type, DAY_1, DAY_2)
    assert job["uuid"] in [j.job_id for j in k.list_job()]


def test_v1_build_refuses_an_unknown_build_type_in_the_client(server: str) -> None:
    with pytest.raises(KylinCubeError, match="Unsupported build type: FULL"):
        connect(server, "default", "v1").service.build("c", "FULL", 0, 0)


def test_v1_a_build_whose_range_kylin_refuses_raises_the_clients_400_error(server: str) -> None:
    with pytest.raises(BadRequestsError) as raised:
        connect(server, "default", "v1").service.build("c", "MERGE", DAY_2, DAY_1)
    assert "endTime" in str(raised.value)


@pytest.mark.xfail(strict=True, reason="known limit (docs/compatibility.md, Kylin: projects): a build naming no project is listed in every project its "
                   "submitter lists (GET /jobs?projectName=P shows the user's builds of any cube); Kylin lists a job "
                   "only in its cube's project")
def test_v1_a_projects_list_holds_only_its_jobs_after_the_same_user_built_in_another_project(
        server: str, v1: Any, tasks: Tasks, project: str, built: list[str]) -> None:
    own = tasks.create(project, "own")
    elsewhere = connect(server, "default", "v1").service.fullbuild("cube_of_default")  # the same user
    built.append(elsewhere["uuid"])
    assert elsewhere["project_name"] == "default"
    assert [job.job_id for job in v1.list_job()] == [own]
    assert [job["uuid"] for job in v1.service.jobs(timeFilter=4)] == [own]


@pytest.mark.xfail(strict=True, reason="known limit (docs/compatibility.md, Kylin: projects): a kylinpy build (PUT /cubes/{cube}/build, no project in "
                   "query or body) is filed under project 'default' (project_name 'default', also in GET and in the "
                   "'default' list); Kylin files it under the cube's project, project_name P")
@pytest.mark.parametrize("call", ["fullbuild", "build"])
def test_v1_a_build_through_a_project_client_is_a_job_of_that_project(
        v1: Any, project: str, built: list[str], call: str) -> None:
    service = v1.service
    job = service.fullbuild("cube_of_p") if call == "fullbuild" else service.build("cube_of_p", "BUILD", DAY_1, DAY_2)
    built.append(job["uuid"])
    assert job["project_name"] == project
    assert [listed.job_id for listed in v1.list_job()] == [job["uuid"]]


# ------------------------------------------------------------------------------------------------- v2
def test_v2_list_job_reads_the_envelope(v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    assert job_id in [job.job_id for job in v2.list_job()]


def test_v2_service_jobs_sends_real_filters(reader2: Any, tasks: Tasks, project: str) -> None:
    running = tasks.in_state(project, st.RUNNING)
    queued = tasks.create(project, "queued")
    tasks.in_state(project, st.SUCCEEDED)
    listed = reader2.service.jobs(projectName=project, status=[1, 2], timeFilter=0, pageSize=5)
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


def test_v2_list_job_gives_the_newest_20_jobs_of_every_project_as_its_default_page(
        reader2: Any, tasks: Tasks, project: str) -> None:
    ids = [tasks.create(project, f"job-{i:02d}") for i in range(20)]
    elsewhere = tasks.create(project + "_other", "elsewhere")  # v2 list_job sends no projectName
    jobs = reader2.list_job()  # pageOffset=0&pageSize=20&timeFilter=4
    assert all(isinstance(job, Ke3Job) for job in jobs)
    assert [job.job_id for job in jobs] == [elsewhere, *ids[::-1][:19]]


def test_v2_list_job_filters_lose_their_values_in_the_client_and_the_server_ignores_them(
        reader2: Any, tasks: Tasks, project: str) -> None:
    pending, running = tasks.create(project, "pending"), tasks.in_state(project, st.RUNNING)
    assert [job.job_id for job in reader2.list_job(projectName=project, status=[4])][:2] == [running, pending]


def test_v2_service_jobs_pages_sorts_and_filters_by_name(reader2: Any, tasks: Tasks, project: str) -> None:
    ids = {name: tasks.create(project, name) for name in ("beta-2", "alpha", "beta-1", "gamma")}
    page = reader2.service.jobs(projectName=project, pageSize=2, pageOffset=1)
    assert [job["uuid"] for job in page] == [ids["alpha"], ids["beta-2"]]
    by_name = reader2.service.jobs(projectName=project, sortby="job_name", reverse=False)
    assert [job["name"] for job in by_name] == ["alpha", "beta-1", "beta-2", "gamma"]
    assert [job["name"] for job in reader2.service.jobs(projectName=project, jobName="BETA")] == ["beta-1", "beta-2"]


def test_v2_resume_job_of_a_failed_job_queues_it_again(v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.FAILED)
    assert v2.service.resume_job(job_id)["job_status"] == "PENDING"  # PUT /jobs/<id>/resume?jobId=<id>
    assert tasks.native(job_id)["state"] == st.QUEUED


def test_v2_resume_job_refused_raises_the_clients_400_error(v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.in_state(project, st.CANCELLED)
    with pytest.raises(BadRequestsError) as raised:
        v2.service.resume_job(job_id)
    assert str(raised.value).startswith(f"there is no valid state transfer from:DISCARDED to:PENDING, job id: {job_id}")


def test_v2_job_objects_fail_inside_kylinpy_and_send_nothing(v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    before = version_of(tasks, job_id)
    job = v2.get_job(job_id)
    with pytest.raises(AttributeError, match="job_desc"):
        job.get_desc()
    for action in (job.pause, job.resume, job.cancel):
        with pytest.raises(TypeError, match="maintain_job"):
            action()
    with pytest.raises(AttributeError, match="drop_job"):
        job.drop()
    assert version_of(tasks, job_id) == before and tasks.native(job_id)["state"] == st.QUEUED


def test_v2_the_clients_transport_reads_envelopes_resumes_and_reads_step_output(
        v2: Any, reader2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project, steps=("Create Intermediate Flat Hive Table", "Build Cube In-Mem"))
    epoch = tasks.start(job_id)
    tasks.settle(tasks.ledger.update_step(UpdateStep(UUID(job_id), epoch, 1, "RUNNING", "result code:0"), NATIVE))
    client = v2._get_client()
    listed = reader2._get_client().get("/jobs", params={"projectName": project, "timeFilter": 4}).json()
    assert (listed["code"], listed["msg"], listed["data"]["size"]) == ("000", "", 1)
    assert client.put(f"/jobs/{job_id}/pause").json()["data"]["job_status"] == "STOPPED"
    resumed = client.put(f"/jobs/{job_id}/resume").json()
    assert (resumed["code"], resumed["data"]["job_status"]) == ("000", "PENDING")
    output = client.get(f"/jobs/{job_id}/steps/{job_id}-01/output").json()["data"]
    assert output == {"jobId": job_id, "stepId": f"{job_id}-01", "cmd_output": "result code:0"}


def test_v2_the_clients_transport_raises_not_found_with_kylins_message(v2: Any, tasks: Tasks, project: str) -> None:
    job_id = tasks.create(project)
    client = v2._get_client()
    for call in (lambda: client.get(f"/jobs/{UNKNOWN}"), lambda: client.put(f"/jobs/{UNKNOWN}/cancel"),
                 lambda: client.delete(f"/jobs/{UNKNOWN}/drop")):
        with pytest.raises(NotFoundError) as raised:
            call()
        assert str(raised.value) == f"Cannot find job '{UNKNOWN}'."
        assert raised.value.json()["code"] == "999"
    with pytest.raises(NotFoundError) as raised:
        client.get(f"/jobs/{job_id}/steps/{job_id}-07/output")
    assert str(raised.value) == f"Cannot find step '{job_id}-07' of job '{job_id}'."
