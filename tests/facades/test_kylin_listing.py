"""`GET /kylin/api/jobs`: v2 filters, paging by page index, sorting, time windows; the v1 list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from ledger import state as st
from tests.facades.kylin_support import (
    JOBS,
    KylinHttp,
    Tasks,
    kylin,
    ledger_at,
    project,
    tasks,
)

__all__ = ["kylin", "ledger_at", "project", "tasks"]


def names(data: dict[str, object] | list[dict[str, object]]) -> list[object]:
    jobs = data if isinstance(data, list) else data["jobs"]
    assert isinstance(jobs, list)
    return [job["name"] for job in jobs]


def make(tasks: Tasks, project: str, count: int) -> list[str]:
    """Jobs job-00, job-01, … created in that order (so also modified in that order)."""
    return [tasks.create(project, f"job-{i:02d}") for i in range(count)]


def test_size_is_the_total_and_page_offset_is_a_page_index(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    make(tasks, project, 7)
    first = kylin.jobs(projectName=project, pageSize=3)
    third = kylin.jobs(projectName=project, pageSize=3, pageOffset=2)
    beyond = kylin.jobs(projectName=project, pageSize=3, pageOffset=3)
    assert first["size"] == third["size"] == beyond["size"] == 7
    assert names(first) == ["job-06", "job-05", "job-04"]
    assert names(third) == ["job-00"] and beyond["jobs"] == []


def test_the_page_size_defaults_to_ten_and_zero_answers_only_the_size(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    make(tasks, project, 12)
    assert len(kylin.jobs(projectName=project)["jobs"]) == 10
    assert kylin.jobs(projectName=project, pageSize=0) == {"jobs": [], "size": 12}


@pytest.mark.parametrize(("sortby", "reverse", "expected"), [
    ("last_modify", "true", ["b-job", "c-job", "a-job"]),
    ("last_modify", "false", ["a-job", "c-job", "b-job"]),
    ("job_name", "false", ["a-job", "b-job", "c-job"]),
    ("job_name", "true", ["c-job", "b-job", "a-job"]),
    ("cube_name", "false", ["c-job", "a-job", "b-job"]),
    ("cube_name", "true", ["b-job", "a-job", "c-job"]),
])
def test_sortby_and_reverse_order_the_jobs(
        kylin: KylinHttp, tasks: Tasks, project: str, sortby: str, reverse: str, expected: list[str]) -> None:
    tasks.create(project, "a-job", input={"cube": "cube_m"})
    tasks.create(project, "c-job", input={"cube": "cube_a"})
    tasks.create(project, "b-job", input={"cube": "cube_z"})
    assert names(kylin.jobs(projectName=project, sortby=sortby, reverse=reverse)) == expected


def test_the_cube_sort_pages_like_any_other(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    for i in (3, 1, 4, 0, 2):
        tasks.create(project, f"job-{i}", input={"cube": f"cube_{i}"})
    page = kylin.jobs(projectName=project, sortby="cube_name", reverse="false", pageSize=2, pageOffset=1)
    assert names(page) == ["job-2", "job-3"] and page["size"] == 5


def test_status_codes_are_repeatable_and_ored(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    ids = {state: tasks.in_state(project, state) for state in
           (st.QUEUED, st.RUNNING, st.PAUSED, st.CANCELLING, st.SUCCEEDED, st.FAILED, st.CANCELLED, st.ABORTED)}

    def selected(*codes: int) -> set[str]:
        return {job["uuid"] for job in kylin.jobs(projectName=project, status=list(codes))["jobs"]}

    assert selected(0) == selected(1) == {ids[st.QUEUED]}
    assert selected(2) == {ids[st.RUNNING], ids[st.CANCELLING]}
    assert selected(4, 8) == {ids[st.SUCCEEDED], ids[st.FAILED]}
    assert selected(16) == {ids[st.CANCELLED], ids[st.ABORTED]}
    assert selected(32) == {ids[st.PAUSED]}
    assert selected() == set(ids.values())
    comma = kylin.data("GET", f"{JOBS}?timeFilter=4&projectName={project}&status=4,32")
    assert {job["uuid"] for job in comma["jobs"]} == {ids[st.SUCCEEDED], ids[st.PAUSED]}


def test_job_name_matches_a_substring_in_any_case(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    tasks.create(project, "BUILD CUBE - sales - FULL_BUILD")
    tasks.create(project, "MERGE CUBE - sales - x")
    tasks.create(project, "BUILD CUBE - stock - FULL_BUILD")
    assert names(kylin.jobs(projectName=project, jobName="build cube - s")) == [
        "BUILD CUBE - stock - FULL_BUILD", "BUILD CUBE - sales - FULL_BUILD"]
    found = kylin.jobs(projectName=project, jobName="SALES", pageSize=1)
    assert found["size"] == 2 and names(found) == ["MERGE CUBE - sales - x"]
    # Shorter than a trigram: matched without the trigram index, the same way.
    assert kylin.jobs(projectName=project, jobName="sT")["size"] == 1
    assert kylin.jobs(projectName=project, jobName="E")["size"] == 3


def test_project_name_selects_one_project_and_an_unknown_one_nothing(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    mine = tasks.create(project, "mine")
    theirs = tasks.create(project + "_other", "theirs")
    assert names(kylin.jobs(projectName=project)) == ["mine"]
    assert kylin.jobs(projectName=project + "_nobody") == {"jobs": [], "size": 0}
    everything = {job["uuid"] for job in kylin.jobs(pageSize=10_000)["jobs"]}
    assert {mine, theirs} <= everything


def test_tasks_created_natively_in_kylin_namespaces_are_listed_and_others_not(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    listed = tasks.create(project, "native kylin task", type="generic")
    hidden = tasks.create(project, "hugegraph task", namespace=f"hugegraph:{project}/g")
    everything = {job["uuid"] for job in kylin.jobs(pageSize=10_000)["jobs"]}
    assert listed in everything and hidden not in everything


@pytest.mark.parametrize(("time_filter", "visible"), [
    (0, {"hour"}), (1, {"hour", "days"}), (2, {"hour", "days", "weeks"}),
    (3, {"hour", "days", "weeks", "months"}), (4, {"hour", "days", "weeks", "months", "years"}),
])
def test_time_filter_windows_are_a_day_week_month_year_or_all_on_the_last_modification(
        kylin: KylinHttp, ledger_at: Callable[[datetime], Tasks], project: str, time_filter: int,
        visible: set[str]) -> None:
    now = datetime.now(timezone.utc)
    ages = {"hour": timedelta(hours=1), "days": timedelta(days=3), "weeks": timedelta(days=20),
            "months": timedelta(days=120), "years": timedelta(days=800)}
    for name, age in ages.items():
        ledger_at(now - age).create(project, name)
    assert set(names(kylin.jobs(projectName=project, timeFilter=time_filter))) == visible


def test_a_change_brings_an_old_job_back_into_the_window(
        kylin: KylinHttp, ledger_at: Callable[[datetime], Tasks], tasks: Tasks, project: str) -> None:
    job_id = ledger_at(datetime.now(timezone.utc) - timedelta(days=30)).create(project, "old")
    assert kylin.jobs(projectName=project, timeFilter=0)["size"] == 0
    tasks.drive(job_id, st.PAUSED)
    assert names(kylin.jobs(projectName=project, timeFilter=0)) == ["old"]


def test_v1_lists_a_bare_array_with_row_offset_and_limit(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    make(tasks, project, 5)
    response = kylin.request("GET", JOBS, v2=False, params={"projectName": project, "limit": 2, "offset": 1})
    assert response.status_code == 200 and isinstance(response.json(), list)
    assert names(response.json()) == ["job-03", "job-02"]


def test_v1_defaults_to_the_last_week_and_thirty_jobs(
        kylin: KylinHttp, ledger_at: Callable[[datetime], Tasks], tasks: Tasks, project: str) -> None:
    ledger_at(datetime.now(timezone.utc) - timedelta(days=10)).create(project, "ten days old")
    make(tasks, project, 31)
    listed = kylin.request("GET", JOBS, v2=False, role="viewer", params={"projectName": project}).json()
    assert len(listed) == 30 and "ten days old" not in names(listed)
    everything = kylin.request("GET", JOBS, v2=False, role="viewer", params={"projectName": project,
                                                                              "timeFilter": 4, "limit": 100}).json()
    assert len(everything) == 32


def test_v1_filters_by_cube_name_substring_and_status(kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    tasks.create(project, "sales", input={"cube": "Kylin_Sales_Cube"})
    tasks.in_state(project, st.SUCCEEDED, input={"cube": "kylin_sales_cube_2"})
    tasks.create(project, "stock", input={"cube": "stock_cube"})
    query = {"projectName": project, "cubeName": "SALES", "status": [4]}
    assert names(kylin.request("GET", JOBS, v2=False, params=query).json()) == [f"job in {st.SUCCEEDED}"]
    mode = kylin.request("GET", JOBS, v2=False, params={"projectName": project, "jobSearchMode": "CHECKPOINT_ONLY"})
    assert mode.json() == []


def test_list_params_kylin_does_not_know_are_ignored_as_spring_does(
        kylin: KylinHttp, tasks: Tasks, project: str) -> None:
    tasks.create(project, "only")
    assert names(kylin.jobs(projectName=project, params="timeFilter")) == ["only"]
