"""`PUT /kylin/api/cubes/{cube}/rebuild|build`: a cubing job as a ledger task that workers claim natively."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import pytest
import requests

from tests.facades.conftest import USERS
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

CUBES = "/kylin/api/cubes"
DAY_1, DAY_2 = 1388534400000, 1388620800000  # 2014-01-01, 2014-01-02 GMT


def build(kylin: KylinHttp, project: str, body: dict[str, Any], cube: str = "kylin_sales_cube",
          verb: str = "rebuild", **kwargs: Any) -> requests.Response:
    return kylin.request("PUT", f"{CUBES}/{cube}/{verb}", params={"project": project}, json=body, **kwargs)


def test_a_build_creates_a_pending_job_named_as_kylin_names_it(kylin: KylinHttp, project: str) -> None:
    response = build(kylin, project, {"startTime": DAY_1, "endTime": DAY_2, "buildType": "BUILD"})
    assert response.status_code == 200, response.text
    job = response.json()["data"]
    assert re.fullmatch(r"BUILD CUBE - kylin_sales_cube - 20140101000000_20140102000000 - GMT\+00:00 "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", job["name"]), job["name"]
    assert (job["job_status"], job["type"], job["project_name"]) == ("PENDING", "BUILD", project)
    assert job["related_cube"] == "kylin_sales_cube" and UUID(job["related_segment"])
    assert [s["name"] for s in job["steps"]][:2] == ["Create Intermediate Flat Hive Table",
                                                     "Redistribute Flat Hive Table"]
    assert len(job["steps"]) == 11 and job["submitter"] == USERS["admin"][0]
    assert kylin.data("GET", f"{JOBS}/{job['uuid']}") == job


def test_a_built_job_is_a_native_task_that_a_worker_claims(kylin: KylinHttp, project: str, server: str) -> None:
    job = build(kylin, project, {"startTime": 0, "endTime": 0, "buildType": "BUILD"}, verb="build").json()["data"]
    native = requests.get(f"{server}/ledger/v1/tasks/{job['uuid']}", auth=USERS["viewer"], timeout=30).json()
    assert (native["namespace"], native["facade"], native["type"]) == (f"kylin:{project}", "kylin", "BUILD")
    assert native["input"]["cube"] == "kylin_sales_cube" and native["input"]["segmentName"] == "FULL_BUILD"
    claim = requests.post(f"{server}/ledger/v1/claims", auth=USERS["worker"], timeout=30,
                          json={"worker": "cube-builder", "namespace": f"kylin:{project}"})
    assert claim.status_code == 200 and claim.json()["task_id"] == job["uuid"]
    seen = kylin.data("GET", f"{JOBS}/{job['uuid']}",
                      headers={"Ledger-Min-Position": claim.headers["Ledger-Position"]})
    assert seen["job_status"] == "RUNNING"


def test_a_merge_is_a_merge_job_with_merge_steps(kylin: KylinHttp, project: str) -> None:
    job = build(kylin, project, {"startTime": DAY_1, "endTime": DAY_2, "buildType": "MERGE"}).json()["data"]
    assert job["name"].startswith("MERGE CUBE - kylin_sales_cube - 20140101000000_20140102000000 - ")
    assert job["type"] == "MERGE" and job["steps"][0]["name"] == "Merge Segment Dictionary"


def test_a_refresh_is_a_build_named_job_of_type_refresh(kylin: KylinHttp, project: str) -> None:
    job = build(kylin, project, {"startTime": DAY_1, "endTime": DAY_2, "buildType": "REFRESH"}, v2=False).json()
    assert job["name"].startswith("BUILD CUBE - ") and job["type"] == "REFRESH"


def test_the_project_comes_from_the_body_or_defaults_to_default(kylin: KylinHttp, project: str) -> None:
    body = {"startTime": DAY_1, "endTime": DAY_2, "buildType": "BUILD", "project": project}
    job = kylin.request("PUT", f"{CUBES}/c1/rebuild", json=body).json()["data"]
    assert job["project_name"] == project
    del body["project"]
    job = kylin.request("PUT", f"{CUBES}/c1/rebuild", json=body).json()["data"]
    assert job["project_name"] == "default"


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "buildType"),
    ({"buildType": "FULL"}, "buildType"),
    ({"buildType": "BUILD", "startTime": "2014"}, "startTime"),
    ({"buildType": "BUILD", "startTime": -1, "endTime": 5}, "startTime"),
    ({"buildType": "BUILD", "startTime": 1.5, "endTime": 5}, "startTime"),
    ({"buildType": "BUILD", "startTime": 0, "endTime": True}, "endTime"),
    ({"buildType": "BUILD", "startTime": 0, "endTime": 10**17}, "endTime"),
    ({"buildType": "BUILD", "startTime": DAY_2, "endTime": DAY_1}, "endTime"),
    ({"buildType": "MERGE", "startTime": 0, "endTime": 0}, "MERGE"),
    ({"buildType": "BUILD", "force": "yes"}, "force"),
    ({"buildType": "BUILD", "priorityOffset": "high"}, "priorityOffset"),
    ({"buildType": "BUILD", "segment": "x"}, "Unknown field 'segment'"),
    ({"buildType": "BUILD", "project": "bad-name"}, "project name"),
    ({"buildType": "BUILD", "project": 7}, "project"),
])
def test_a_malformed_build_request_is_400_and_records_nothing(
        kylin: KylinHttp, tasks: Tasks, project: str, body: dict[str, Any], fragment: str) -> None:
    head = tasks.ledger.head_position()
    response = kylin.request("PUT", f"{CUBES}/kylin_sales_cube/rebuild", json=body)
    assert_kylin_error(response, 400, fragment)
    assert tasks.ledger.head_position() == head


def test_a_malformed_cube_name_or_body_is_refused_before_anything_is_recorded(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    head = tasks.ledger.head_position()
    ok = {"buildType": "BUILD"}
    assert_kylin_error(build(kylin, project, ok, cube="no-such%20cube"), 400, "Invalid cube name")
    assert_kylin_error(build(kylin, project + "_x", {**ok, "project": project}), 400, "differ")
    bad_json = kylin.request("PUT", f"{CUBES}/c/rebuild", data=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert_kylin_error(bad_json, 400, "JSON")
    not_object = kylin.request("PUT", f"{CUBES}/c/rebuild", json=[1, 2])
    assert_kylin_error(not_object, 400, "object")
    as_text = kylin.request("PUT", f"{CUBES}/c/rebuild", data=b"x", headers={"Content-Type": "text/plain"})
    assert_kylin_error(as_text, 415)
    huge = kylin.request("PUT", f"{CUBES}/c/rebuild", json={"buildType": "BUILD", "x": "y" * (1 << 20)})
    assert_kylin_error(huge, 413)
    assert tasks.ledger.head_position() == head


@pytest.mark.parametrize("role", ["worker", "viewer"])
def test_only_admins_and_operators_build(kylin: KylinHttp, tasks: Tasks, project: str, role: str) -> None:
    head = tasks.ledger.head_position()
    assert_kylin_error(build(kylin, project, {"buildType": "BUILD"}, role=role), 403, "Access is denied")
    assert_kylin_error(build(kylin, project, {"buildType": "BUILD"}, role=None), 401)
    assert tasks.ledger.head_position() == head
    assert build(kylin, project, {"buildType": "BUILD"}, role="operator").status_code == 200


def test_a_build_naming_no_project_is_listed_in_every_project_its_submitter_lists(kylin: KylinHttp,
                                                                                   project: str) -> None:
    """kylinpy's `fullbuild` sends no project: the job is the submitter's wherever they work (project P here)."""
    cube = f"cube_{project}"
    job = kylin.data("PUT", f"{CUBES}/{cube}/build", role="operator",
                     json={"startTime": 0, "endTime": 0, "buildType": "BUILD"})
    assert job["project_name"] == "default"

    def listed(role: str, listed_project: str, v2: bool) -> bool:
        params = {"projectName": listed_project, **({"timeFilter": 4, "pageSize": 100} if v2 else {"limit": 100})}
        answer = kylin.request("GET", JOBS, v2=v2, role=role, params=params)
        assert answer.status_code == 200, answer.text
        jobs = answer.json()["data"]["jobs"] if v2 else answer.json()
        return job["uuid"] in [j["uuid"] for j in jobs]

    assert listed("operator", project, v2=False) and listed("operator", project, v2=True)
    assert listed("operator", "default", v2=False)
    assert not listed("admin", project, v2=False)  # another user's project P holds only P's jobs
    stated = build(kylin, project, {"startTime": 0, "endTime": 0, "buildType": "BUILD"}, cube=cube,
                   role="operator").json()["data"]
    assert stated["project_name"] == project
    assert kylin.jobs(projectName=f"{project}_other", timeFilter=4)["size"] == 0
