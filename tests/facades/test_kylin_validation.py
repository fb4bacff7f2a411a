"""Malformed list parameters: 400 in Kylin's error body naming the parameter (where Kylin would 500)."""

from __future__ import annotations

import pytest

from tests.facades.kylin_support import (
    JOBS,
    KylinHttp,
    Tasks,
    assert_kylin_error,
    kylin,
    tasks,
)

__all__ = ["kylin", "tasks"]

V2_CASES = [
    ("", "Required Integer parameter 'timeFilter' is not present"),
    ("timeFilter=", "Required Integer parameter 'timeFilter' is not present"),
    ("timeFilter=9", "'timeFilter' must be between 0 and 4"),
    ("timeFilter=-1", "'timeFilter' must be between 0 and 4"),
    ("timeFilter=week", "'timeFilter' must be an integer"),
    ("timeFilter=1&timeFilter=2", "'timeFilter' must be given once"),
    ("timeFilter=4&status=3", "'status' must be one of 0, 1, 2, 4, 8, 16, 32"),
    ("timeFilter=4&status=RUNNING", "'status' must be an integer"),
    ("timeFilter=4&status=2,,8", "'status' must be an integer"),
    ("timeFilter=4&pageOffset=-1", "'pageOffset' must be between 0 and"),
    ("timeFilter=4&pageOffset=1.5", "'pageOffset' must be an integer"),
    ("timeFilter=4&pageOffset=99999999999", "'pageOffset' must be between 0 and"),
    ("timeFilter=4&pageSize=-1", "'pageSize' must be between 0 and 10000"),
    ("timeFilter=4&pageSize=10001", "'pageSize' must be between 0 and 10000"),
    ("timeFilter=4&sortby=name", "'sortby' must be one of last_modify, job_name, cube_name"),
    ("timeFilter=4&reverse=maybe", "'reverse' must be true or false"),
    ("timeFilter=4&jobName=" + "x" * 1001, "'jobName' must be at most 1000 characters"),
    ("timeFilter=4&jobName=a%00b", "'jobName' must not contain NUL"),
]
V1_CASES = [
    ("limit=-1", "'limit' must be between 0 and 10000"),
    ("offset=first", "'offset' must be an integer"),
    ("timeFilter=5", "'timeFilter' must be between 0 and 4"),
    ("status=64", "'status' must be one of"),
    ("jobSearchMode=EVERYTHING", "'jobSearchMode' must be one of CUBING_ONLY, ALL, CHECKPOINT_ONLY"),
]


@pytest.mark.parametrize(("query", "message"), V2_CASES)
def test_a_malformed_v2_list_parameter_is_400_naming_it(
        kylin: KylinHttp, tasks: Tasks, query: str, message: str) -> None:
    head = tasks.ledger.head_position()
    assert_kylin_error(kylin.request("GET", f"{JOBS}?{query}"), 400, message)
    assert tasks.ledger.head_position() == head


@pytest.mark.parametrize(("query", "message"), V1_CASES)
def test_a_malformed_v1_list_parameter_is_400_naming_it(
        kylin: KylinHttp, tasks: Tasks, query: str, message: str) -> None:
    head = tasks.ledger.head_position()
    response = kylin.request("GET", f"{JOBS}?{query}", v2=False)
    assert_kylin_error(response, 400, message)
    assert response.headers["Content-Type"].startswith("application/json")
    assert tasks.ledger.head_position() == head


def test_well_formed_spring_spellings_are_accepted(kylin: KylinHttp) -> None:
    for query in ("timeFilter=%2B4&reverse=FALSE", "timeFilter=4&reverse=1&pageOffset=&jobName=",
                  "timeFilter=4&status=1&status=0,2"):
        assert kylin.request("GET", f"{JOBS}?{query}").status_code == 200, query
