"""Paths under a facade's prefix that no route serves answer in that facade's own error format."""

from __future__ import annotations

import requests


def test_an_unknown_hugegraph_path_is_a_404_in_hugegraphs_error_body(server: str, admin_auth: tuple[str, str]) -> None:
    for path in ("/graphs/g1/nothing", "/graphspaces/DEFAULT/graphs/g1/tasks/1/extra", "/graphs"):
        answer = requests.get(server + path, auth=admin_auth, timeout=10)
        assert answer.status_code == 404, path
        assert set(answer.json()) == {"exception", "message", "cause"}
        assert answer.json()["exception"].startswith("class ")


def test_an_unknown_pandora_path_is_a_404_in_pandoras_error_body(server: str, admin_auth: tuple[str, str]) -> None:
    answer = requests.get(server + "/api/v1/export/tasks/everything", auth=admin_auth, timeout=10)
    assert answer.status_code == 404
    assert list(answer.json()) == ["error"]


def test_served_facade_paths_are_not_shadowed_by_the_catch_all(server: str, admin_auth: tuple[str, str]) -> None:
    assert requests.get(server + "/graphs/g1/tasks", auth=admin_auth, timeout=10).status_code == 200
    listing = requests.get(server + "/api/v1/export/task/list", auth=admin_auth, timeout=10)
    assert listing.status_code == 200 and "total" in listing.json()
