"""Listing tasks: filters, sort orders and cursor pagination with a stable order."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.api.conftest import Api, assert_problem


def _ids(page: dict[str, Any]) -> list[str]:
    return [t["id"] for t in page["items"]]


def _all_pages(api: Api, params: dict[str, Any], between_pages: Any = None) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get("/tasks", params={**params, **({"cursor": cursor} if cursor else {})}).json
        seen += _ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        if between_pages:
            between_pages()


def test_pages_neither_overlap_nor_skip_while_tasks_are_added(api: Api, namespace: str) -> None:
    originals = [api.create(namespace, name=f"t{i}")["id"] for i in range(7)]
    added: list[str] = []
    seen = _all_pages(api, {"namespace": namespace, "limit": 3},
                      lambda: added.append(api.create(namespace, name="late")["id"]))
    assert seen == originals + added
    assert len(set(seen)) == len(seen)


def test_descending_pages_keep_their_place_while_newer_tasks_arrive(api: Api, namespace: str) -> None:
    originals = [api.create(namespace, name=f"t{i}")["id"] for i in range(5)]
    seen = _all_pages(api, {"namespace": namespace, "limit": 2, "sort": "-created_at"},
                      lambda: api.create(namespace, name="newer"))
    assert seen == originals[::-1]


def test_a_page_has_a_total_a_cursor_and_a_link_to_the_next_page(api: Api, namespace: str) -> None:
    for i in range(3):
        api.create(namespace, name=f"t{i}")
    first = api.get("/tasks", params={"namespace": namespace, "limit": 2})
    assert first.json["total"] == 3 and len(first.json["items"]) == 2
    assert first.json["total_is_estimate"] is False  # exact up to EXACT_TOTAL (200) matches
    assert first.json["next_cursor"]
    link = first.headers["Link"]
    assert 'rel="next"' in link and "cursor=" in link and f"namespace={namespace}" in link
    following = api.client.simulate_get(link[link.index("<") + 1:link.index(">")],
                                        headers=api.credentials["viewer"])
    assert [t["name"] for t in following.json["items"]] == ["t2"]
    assert following.json["next_cursor"] is None and "Link" not in following.headers


def test_tasks_filter_by_state_in_either_spelling(api: Api, namespace: str) -> None:
    running, _ = api.running(namespace, name="running")
    queued = api.create(namespace, name="queued")["id"]
    paused = api.create(namespace, name="paused")["id"]
    api.post(f"/tasks/{paused}/pause", role="operator")
    both = {"namespace": namespace, "sort": "name"}
    assert _ids(api.get("/tasks", params={**both, "state": "QUEUED,PAUSED"}).json) == [paused, queued]
    assert _ids(api.get("/tasks", params={**both, "state": ["RUNNING", "PAUSED"]}).json) == [paused, running]
    assert _ids(api.get("/tasks", params={**both, "worker": "worker-1"}).json) == [running]


def test_tasks_filter_by_namespace_prefix_name_prefix_type_and_facade(api: Api, namespace: str) -> None:
    a = api.create(namespace + "/a", name="cube build", type="kylin")["id"]
    b = api.create(namespace + "/b", name="cube merge", type="kylin")["id"]
    api.create(namespace + "/b", name="export", type="pandora")
    assert _ids(api.get("/tasks", params={"namespace_prefix": namespace, "name_prefix": "cube"}).json) == [a, b]
    assert _ids(api.get("/tasks", params={"namespace_prefix": namespace + "/b", "type": "kylin"}).json) == [b]
    assert api.get("/tasks", params={"namespace_prefix": namespace, "facade": "native"}).json["total"] == 3
    assert api.get("/tasks", params={"namespace_prefix": namespace, "facade": "kylin"}).json["total"] == 0


def test_tasks_filter_by_creation_and_update_time(api: Api, namespace: str) -> None:
    old = api.create(namespace, name="old")
    new = api.create(namespace, name="new")
    cut = new["created_at"]
    assert _ids(api.get("/tasks", params={"namespace": namespace, "created_after": cut}).json) == [new["id"]]
    assert _ids(api.get("/tasks", params={"namespace": namespace, "created_before": cut}).json) == [old["id"]]
    api.post(f"/tasks/{old['id']}/pause", role="operator")
    touched = api.get(f"/tasks/{old['id']}").json["updated_at"]
    assert _ids(api.get("/tasks", params={"namespace": namespace, "updated_after": touched}).json) == [old["id"]]
    later = (datetime.fromisoformat(touched) + timedelta(hours=1)).isoformat()
    assert _ids(api.get("/tasks", params={"namespace": namespace, "updated_before": later, "sort": "-name"}).json) \
        == [old["id"], new["id"]]


def test_tasks_sort_by_name_and_state_with_the_id_breaking_ties(api: Api, namespace: str) -> None:
    ids = {name: api.create(namespace, name=name)["id"] for name in ("b", "c", "a")}
    api.post(f"/tasks/{ids['c']}/pause", role="operator")
    assert [t["name"] for t in api.get("/tasks", params={"namespace": namespace, "sort": "name"}).json["items"]] \
        == ["a", "b", "c"]
    by_state = api.get("/tasks", params={"namespace": namespace, "sort": "-state"}).json["items"]
    assert [t["state"] for t in by_state] == ["QUEUED", "QUEUED", "PAUSED"]
    assert _all_pages(api, {"namespace": namespace, "sort": "state", "limit": 1}) == \
        [ids["c"], *sorted([ids["a"], ids["b"]])]


def test_a_cursor_from_another_sort_order_is_refused(api: Api, namespace: str) -> None:
    for i in range(2):
        api.create(namespace, name=f"t{i}")
    cursor = api.get("/tasks", params={"namespace": namespace, "limit": 1}).json["next_cursor"]
    assert_problem(api.get("/tasks", params={"namespace": namespace, "sort": "name", "cursor": cursor}), 400,
                   "invalid-cursor", "cursor")


def _names(api: Api, params: dict[str, Any]) -> list[str]:
    page = api.get("/tasks", params=params)
    assert page.status_code == 200, page.json
    return sorted(t["name"] for t in page.json["items"])


def test_labels_select_by_value_and_by_presence_and_all_must_match(api: Api, namespace: str) -> None:
    api.create(namespace, name="eu-prod", labels={"region": "eu", "env": "prod"})
    api.create(namespace, name="eu-dev", labels={"region": "eu", "env": "dev"})
    api.create(namespace, name="us", labels={"region": "us:east"})
    api.create(namespace, name="bare")
    assert _names(api, {"namespace": namespace, "label": "region:eu"}) == ["eu-dev", "eu-prod"]
    assert _names(api, {"namespace": namespace, "label": ["region:eu", "env:prod"]}) == ["eu-prod"]
    assert _names(api, {"namespace": namespace, "label": "env"}) == ["eu-dev", "eu-prod"]
    assert _names(api, {"namespace": namespace, "label": "region:us:east"}) == ["us"]  # the key ends at the 1st colon
    assert _names(api, {"namespace": namespace, "label": "region:EU"}) == []  # values match exactly
    page = api.get("/tasks", params={"namespace": namespace, "label": "region", "limit": 2})
    assert page.json["total"] == 3


def test_name_and_error_substrings_match_in_any_case_and_wildcards_are_literal(api: Api, namespace: str) -> None:
    failed, epoch = api.running(namespace, name="loader")  # claimed: the oldest queued task of the namespace
    api.create(namespace, name="Nightly_Export 100%")
    api.create(namespace, name="nightlyXexport")
    api.post(f"/tasks/{failed}/fail", {"lease_epoch": epoch, "error": "Disk FULL on /data", "retry": False},
             role="worker")
    assert _names(api, {"namespace": namespace, "name_contains": "nightly_"}) == ["Nightly_Export 100%"]
    assert _names(api, {"namespace": namespace, "name_contains": "00%"}) == ["Nightly_Export 100%"]
    assert _names(api, {"namespace": namespace, "name_contains": "EXPORT"}) == ["Nightly_Export 100%",
                                                                               "nightlyXexport"]
    assert _names(api, {"namespace": namespace, "error_contains": "disk full"}) == ["loader"]
    assert _names(api, {"namespace": namespace, "submitter": "nobody-by-that-name"}) == []
    submitter = api.get("/tasks", params={"namespace": namespace, "limit": 1}).json["items"][0]["submitter"]
    assert len(_names(api, {"namespace": namespace, "submitter": submitter})) == 3


def test_a_malformed_search_is_a_400_naming_the_parameter(api: Api, namespace: str) -> None:
    for params, field in (({"label": ":value"}, "label"), ({"label": ""}, "label"),
                          ({"name_contains": ""}, "name_contains"), ({"name_contains": "ab"}, "name_contains"),
                          ({"error_contains": "x" * 201}, "error_contains")):
        result = api.get("/tasks", params={"namespace": namespace, **params})
        assert_problem(result, 400)
        assert field in result.text, result.text


def test_beyond_the_exact_bound_the_total_is_an_estimate_said_so_and_never_below_what_was_counted(
        api: Api, namespace: str, monkeypatch: Any) -> None:
    from api.resources import tasks

    for i in range(5):
        api.create(namespace, name=f"t{i}")
    monkeypatch.setattr(tasks, "EXACT_TOTAL", 5)
    exact = api.get("/tasks", params={"namespace": namespace}).json
    assert (exact["total"], exact["total_is_estimate"]) == (5, False)
    monkeypatch.setattr(tasks, "EXACT_TOTAL", 3)
    whole = api.get("/tasks", params={"namespace": namespace}).json  # one page holds them all: counted
    assert (whole["total"], whole["total_is_estimate"], len(whole["items"])) == (5, False, 5)
    estimated = api.get("/tasks", params={"namespace": namespace, "limit": 2}).json
    assert estimated["total_is_estimate"] is True and estimated["total"] >= 4
    following = api.get("/tasks", params={"namespace": namespace, "limit": 2, "cursor": estimated["next_cursor"]})
    assert following.json["total_is_estimate"] is True
