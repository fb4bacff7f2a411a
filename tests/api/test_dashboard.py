"""The dashboard (/ui/) in falcon.testing over the real database: sign-in, sessions, CSRF, roles, the pages'
content, time travel, actions recorded with facade `dashboard`, and bad input answered as HTML."""

from __future__ import annotations

import re
import pytest
from falcon import testing

from tests.api.conftest import Api

PASSWORDS = {"viewer": "viewer-secret-pw", "operator": "operator-secret-pw"}


@pytest.fixture(autouse=True)
def _users(credentials: dict[str, dict[str, str]]) -> None:
    """The suite's users of each role (api-viewer, api-operator, …) exist."""


def _login(client: testing.TestClient, role: str) -> dict[str, str]:
    """Signs in through the form; the session cookie as a header to send."""
    result = client.simulate_post("/ui/login", params=None, headers={"Content-Type": "application/x-www-form-urlencoded"},
                                  body=f"user=api-{role}&password={PASSWORDS[role]}&next=/ui/tasks")
    assert result.status_code == 303, result.text
    assert result.headers["Location"].endswith("/ui/tasks")
    cookie = result.cookies["taskledger_session"]
    assert cookie.http_only and cookie.same_site == "Strict"
    return {"Cookie": f"taskledger_session={cookie.value}"}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no csrf field in the page"
    return found.group(1)


def _post_form(client: testing.TestClient, path: str, fields: dict[str, str], headers: dict[str, str]
               ) -> testing.Result:
    from urllib.parse import urlencode

    return client.simulate_post(path, body=urlencode(fields), headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"})


def test_pages_need_a_sign_in_and_the_login_page_starts_a_session(client: testing.TestClient) -> None:
    away = client.simulate_get("/ui/tasks", params={"state": "QUEUED"})
    assert away.status_code == 303 and away.headers["Location"].startswith("/ui/login?next=")
    assert client.simulate_get("/").headers["Location"] == "/ui/tasks"
    login = client.simulate_get("/ui/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    wrong = client.simulate_post("/ui/login", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                 body="user=api-viewer&password=nope")
    assert wrong.status_code == 401 and "do not match" in wrong.text and "taskledger_session" not in wrong.cookies
    session = _login(client, "viewer")
    page = client.simulate_get("/ui/tasks", headers=session)
    assert page.status_code == 200 and "api-viewer" in page.text
    assert "no-store" in page.headers["Cache-Control"] and "frame-ancestors 'none'" in page.headers[
        "Content-Security-Policy"]


def test_login_never_redirects_to_another_site(client: testing.TestClient) -> None:
    result = client.simulate_post("/ui/login", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                  body="user=api-viewer&password=viewer-secret-pw&next=//evil.example/x")
    assert result.status_code == 303 and result.headers["Location"].endswith("/ui/tasks")


def test_the_list_filters_sorts_pages_and_counts_states(api: Api, client: testing.TestClient, namespace: str) -> None:
    made = [api.create(namespace, f"report-{i:02d}", labels={"team": "data" if i % 2 else "web"}) for i in range(7)]
    api.get(f"/tasks/{made[-1]['id']}")  # the view holds them (the API client reads its writes)
    session = _login(client, "viewer")
    params = {"namespace": namespace, "label": "team:data", "sort": "name", "limit": "2"}
    page = client.simulate_get("/ui/tasks", params=params, headers={**session, "Ledger-Min-Position": "0"})
    assert page.status_code == 200, page.text
    names = re.findall(r'<td class="name"><a href="/ui/tasks/[0-9a-f-]+">([^<]+)</a>', page.text)
    assert names == ["report-01", "report-03"]
    assert '<span id="total">3</span>' in page.text
    assert re.search(r"QUEUED <b>3</b>", page.text) and re.search(r"PAUSED <b>0</b>", page.text)  # under the other filters
    following = re.search(r'id="next" href="\?([^"]+)"', page.text)
    assert following, "no next page link"
    second = client.simulate_get("/ui/tasks", query_string=following.group(1).replace("&amp;", "&"), headers=session)
    assert re.findall(r'<td class="name"><a href="/ui/tasks/[0-9a-f-]+">([^<]+)</a>', second.text) == [
        "report-05"]
    assert {t["id"] for t in made} >= set(re.findall(r'href="/ui/tasks/([0-9a-f-]{36})"', page.text))


def test_bad_filters_are_a_400_page_naming_the_field(client: testing.TestClient) -> None:
    session = _login(client, "viewer")
    page = client.simulate_get("/ui/tasks", params={"name_contains": "ab", "state": "NOPE"}, headers=session)
    assert page.status_code == 400 and page.headers["Content-Type"].startswith("text/html")
    assert "name_contains" in page.text and "state" in page.text and "Traceback" not in page.text


def test_live_rows_answer_204_until_the_log_moves(api: Api, client: testing.TestClient, namespace: str) -> None:
    api.get(f"/tasks/{api.create(namespace, 'first')['id']}")
    session = _login(client, "viewer")
    page = client.simulate_get("/ui/tasks", params={"namespace": namespace}, headers=session)
    head = int(re.search(r'data-head="(\d+)"', page.text).group(1))  # type: ignore[union-attr]
    assert client.simulate_get("/ui/tasks/rows", params={"namespace": namespace, "since": str(head)},
                               headers=session).status_code == 204
    api.create(namespace, "second")
    rows = client.simulate_get("/ui/tasks/rows", params={"namespace": namespace, "since": str(head)},
                               headers={**session})
    assert rows.status_code in (200, 204)
    if rows.status_code == 200:  # the view may not have the new task yet; then the next poll brings it
        assert int(rows.headers["X-Ledger-Head"]) > head and "<tr>" in rows.text


def test_the_detail_shows_fields_steps_timeline_chain_and_time_travel(api: Api, client: testing.TestClient,
                                                                     namespace: str) -> None:
    task_id, epoch = api.running(namespace, steps=["extract", "load"], labels={"team": "data"}, input={"n": 1})
    api.post(f"/tasks/{task_id}/steps/0", {"lease_epoch": epoch, "status": "SUCCEEDED", "output": "rows: 12\n"},
             role="worker")
    done = api.post(f"/tasks/{task_id}/progress", {"lease_epoch": epoch, "progress": 60}, role="worker")
    session = _login(client, "viewer")
    headers = {**session, "Ledger-Min-Position": done.headers["Ledger-Position"]}
    api.get(f"/tasks/{task_id}", headers={"Ledger-Min-Position": done.headers["Ledger-Position"]})
    page = client.simulate_get(f"/ui/tasks/{task_id}", headers=headers)
    assert page.status_code == 200, page.text
    text = page.text
    assert "hash chain intact" in text and "rows: 12" in text and "team:data" in text
    events = api.get(f"/tasks/{task_id}/events").json["events"]
    assert [int(v) for v in re.findall(r'data-version="(\d+)"', text)] == [e["version"] for e in events]
    assert all(e["type"] in text for e in events)
    assert 'data-field="progress">60.0<' in text
    past = client.simulate_get(f"/ui/tasks/{task_id}", params={"as_of": "1"}, headers=session)
    assert past.status_code == 200
    assert 'data-field="state">QUEUED<' in past.text and 'data-field="version">1<' in past.text
    assert "Showing the task as it was after event 1" in past.text
    for bad in ("999", "abc", "0"):
        beyond = client.simulate_get(f"/ui/tasks/{task_id}", params={"as_of": bad}, headers=session)
        assert beyond.status_code == 400 and beyond.headers["Content-Type"].startswith("text/html"), bad
        assert "as_of" in beyond.text
    missing = client.simulate_get("/ui/tasks/not-a-uuid", headers=session)
    assert missing.status_code == 404 and "No such task" in missing.text


def test_a_viewer_sees_no_action_and_is_refused_one(api: Api, client: testing.TestClient, namespace: str) -> None:
    task = api.create(namespace, "watched")
    api.get(f"/tasks/{task['id']}")
    session = _login(client, "viewer")
    page = client.simulate_get(f"/ui/tasks/{task['id']}", headers=session)
    assert page.status_code == 200 and "/pause" not in page.text
    refused = _post_form(client, f"/ui/tasks/{task['id']}/pause", {"csrf": _csrf(page.text)}, session)
    assert refused.status_code == 403 and "operator" in refused.text
    assert [e["type"] for e in api.get(f"/tasks/{task['id']}/events").json["events"]] == ["Created"]


def test_an_operator_pauses_with_csrf_and_the_event_says_dashboard(api: Api, client: testing.TestClient,
                                                                   namespace: str) -> None:
    task = api.create(namespace, "to pause")
    api.get(f"/tasks/{task['id']}")
    session = _login(client, "operator")
    page = client.simulate_get(f"/ui/tasks/{task['id']}", headers=session)
    csrf = _csrf(page.text)
    assert _post_form(client, f"/ui/tasks/{task['id']}/pause", {"reason": "x"}, session).status_code == 403
    forged = _post_form(client, f"/ui/tasks/{task['id']}/pause", {"csrf": csrf},
                        {**session, "Origin": "https://evil.example"})
    assert forged.status_code == 403
    done = _post_form(client, f"/ui/tasks/{task['id']}/pause", {"csrf": csrf, "reason": "maintenance"}, session)
    assert done.status_code == 303 and done.headers["Location"].endswith("done=pause")
    last = api.get(f"/tasks/{task['id']}/events").json["events"][-1]
    assert (last["type"], last["actor"], last["facade"], last["data"]["reason"]) == (
        "Paused", "api-operator", "dashboard", "maintenance")
    again = _post_form(client, f"/ui/tasks/{task['id']}/pause", {"csrf": csrf}, session)
    assert again.status_code == 409 and "PAUSED" in again.text and "Traceback" not in again.text
    after = client.simulate_get(done.headers["Location"], headers=session)
    assert "Done: pause" in after.text and ">PAUSED<" in after.text


def test_basic_credentials_work_too_and_logout_ends_the_session(client: testing.TestClient,
                                                                 credentials: dict[str, dict[str, str]]) -> None:
    assert client.simulate_get("/ui/tasks", headers=credentials["viewer"]).status_code == 200
    session = _login(client, "operator")
    page = client.simulate_get("/ui/tasks", headers=session)
    out = _post_form(client, "/ui/logout", {"csrf": _csrf(page.text)}, session)
    assert out.status_code == 303
    assert client.simulate_get("/ui/tasks", headers=session).status_code == 303  # the token was revoked


@pytest.mark.parametrize("path", ["/ledger/v1/docs", "/ledger/v1/docs/swagger-ui-bundle.js",
                                  "/ledger/v1/docs/init.js", "/ui/static/ui.css", "/ui/static/ui.js"])
def test_the_api_docs_and_static_files_are_served_from_this_process(client: testing.TestClient, path: str) -> None:
    result = client.simulate_get(path)
    assert result.status_code == 200 and len(result.content) > 100
    if path.endswith("/docs"):
        assert "swagger-ui-bundle.js" in result.text and "http" not in result.text.replace("http-equiv", "")
    assert client.simulate_get("/ui/static/../pages.py").status_code == 404


def test_links_keep_every_repeated_filter(api: Api, client: testing.TestClient, namespace: str) -> None:
    api.get(f"/tasks/{api.create(namespace, 'x')['id']}")
    session = _login(client, "viewer")
    page = client.simulate_get("/ui/tasks", query_string=f"namespace={namespace}&state=QUEUED&state=PAUSED",
                               headers=session)
    assert page.status_code == 200
    assert "state=QUEUED&amp;state=PAUSED" in page.text and "%5B" not in page.text  # no Python list in a link
