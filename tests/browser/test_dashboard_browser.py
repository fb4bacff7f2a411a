"""The dashboard (/ui/) in headless Chromium against a real `taskledger serve` (issue 13).

One service and database for the module (2 workers), filled through the API with 200 native tasks and a few
created through the openLooKeng facade; a viewer and an operator. In the browser: sign in, filter, page and
sort the list and compare with `GET /ledger/v1/tasks`, the list's live refresh, a task's timeline against
`GET /tasks/{id}/events`, time travel, an operator's pause through the confirm dialog, and a viewer's forged
action refused. Each page is saved as a 1280×800 screenshot: to a temporary folder, or to
`TASKLEDGER_SCREENSHOTS` (`TASKLEDGER_SCREENSHOTS=docs/screenshots` makes the README's images).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, Response, expect

from bench.services import Process, free_port, start_service
from tests.browser.conftest import VIEWPORT

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

TASKS = 200
STEP_TIMEOUT_MS = 10_000  # any one browser wait; the live refresh polls every 3 s
SCHEDULES = {"nightly-backup": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
             "hourly-usage-report": {"cron": "0 0 * * * ?", "timezone": "UTC"},
             "weekly-compaction": {"cron": "30 4 * * 0", "timezone": "America/New_York"}}
OPENLOOKENG_UPDATE: dict[str, Any] = {
    "session": {"queryId": "q", "user": "alice"}, "extraCredentials": {}, "fragment": None, "sources": [],
    "outputIds": {"type": "PARTITIONED", "version": 1, "noMoreBufferIds": True, "buffers": {"0": 0}},
    "totalPartitions": 1}


@dataclass
class Ledger:
    """The native API as one user, reading its own writes (`Ledger-Min-Position`)."""

    base: str
    auth: tuple[str, str]
    position: int = 0
    http: requests.Session = field(default_factory=requests.Session)

    def request(self, method: str, path: str, body: Any = None, params: Any = None,
                expect: tuple[int, ...] = (200, 201)) -> requests.Response:
        headers = {"Ledger-Min-Position": str(self.position)} if method == "GET" else {}
        answer = self.http.request(method, self.base + path, json=body, params=params, auth=self.auth,
                                   headers=headers, timeout=30)
        assert answer.status_code in expect, f"{method} {path}: {answer.status_code} {answer.text}"
        if "Ledger-Position" in answer.headers:
            self.position = max(self.position, int(answer.headers["Ledger-Position"]))
        return answer

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", "/ledger/v1" + path, params=params).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", "/ledger/v1" + path, body if body is not None else {}).json()

    def create(self, namespace: str, name: str, **fields: Any) -> str:
        task_id: str = self.post("/tasks", {"namespace": namespace, "name": name, **fields})["id"]
        return task_id

    def listing(self, **params: Any) -> dict[str, Any]:
        page: dict[str, Any] = self.get("/tasks", **params)
        return page

    def events(self, task_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.get(f"/tasks/{task_id}/events", limit=1000)["events"]
        return events

    def sync(self) -> None:
        """Returns once the view holds every write so far (the browser sends no Ledger-Min-Position)."""
        self.get("/tasks", limit=1)


@dataclass
class Site:
    base: str
    admin: Ledger
    users: dict[str, tuple[str, str]]  # role -> (name, password)
    namespace: str  # the 200 tasks
    scheduled: list[str]  # names of the recurring tasks


def _fill(base: str, auth: tuple[str, str], namespace: str, indexes: range) -> int:
    """Creates the tasks of `indexes` (one connection), moves some of them on; the last log position."""
    ledger = Ledger(base, auth)
    with ledger.http:
        for i in indexes:
            kind = "ingest" if i % 3 == 0 else "report"
            task_id = ledger.create(namespace, f"{kind}-{i:03d}", type=kind,
                                    labels={"team": "data" if i % 2 else "web", "batch": f"b{i % 4}"},
                                    steps=["extract", "load"] if i % 5 == 0 else [], input={"n": i})
            if i % 7 == 3:
                ledger.post(f"/tasks/{task_id}/cancel", {"reason": "not needed"})
            elif i % 17 == 5:
                epoch = ledger.post(f"/tasks/{task_id}/start", {"worker": f"worker-{i % 3 + 1}"})["lease_epoch"]
                ledger.post(f"/tasks/{task_id}/progress", {"lease_epoch": epoch, "progress": (i * 7) % 100})
                if i % 2:
                    ledger.post(f"/tasks/{task_id}/complete", {"lease_epoch": epoch, "result": {"rows": i}})
                elif i % 4 == 0:
                    ledger.post(f"/tasks/{task_id}/fail", {"lease_epoch": epoch, "error": "upstream timed out"})
    return ledger.position


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]) -> Iterator[Site]:
    home, database_url = tmp_path_factory.mktemp("browser"), new_database()
    port, password = free_port(), secrets.token_urlsafe(12)
    process: Process = start_service(home, port, database_url, password, {"TASKLEDGER_WORKERS": "2"}, home)
    try:
        base = f"http://127.0.0.1:{port}"
        process.wait_http_ok(f"{base}/readyz", timeout=120)
        admin = Ledger(base, ("admin", password))
        users = {role: (f"ui-{role}", secrets.token_urlsafe(12)) for role in ("viewer", "operator")}
        for role, (name, secret) in users.items():
            admin.post("/users", {"name": name, "password": secret, "role": role})
        namespace = f"ui-{uuid.uuid4().hex[:8]}"
        parts = [range(k, TASKS, 4) for k in range(4)]
        with ThreadPoolExecutor(len(parts)) as pool:
            admin.position = max(pool.map(lambda part: _fill(base, admin.auth, namespace, part), parts))
        for n in range(3):  # a few through a facade: openLooKeng's POST /v1/task/{taskId}
            tid = f"20261201_101500_{n:05d}_{uuid.uuid4().hex[:5]}.1.0"
            admin.request("POST", f"/v1/task/{tid}", OPENLOOKENG_UPDATE, expect=(200,))
        for name, schedule in SCHEDULES.items():
            admin.create("ops", name, type="maintenance", schedule=schedule)
        admin.sync()
        yield Site(base, admin, users, namespace, list(SCHEDULES))
    finally:
        process.stop()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages, each in a context of its own (its own cookies), 1280×800. A script error, a console error (a
    CSP refusal, say) or a stylesheet, script or image that does not load fails the test; the statuses of the
    pages themselves are the tests' to check."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make() -> Page:
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: _console(errors, page, message))
        page.on("response", lambda answer: _subresource(errors, answer))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"the browser reported errors: {errors}"


def _console(errors: list[str], page: Page, message: ConsoleMessage) -> None:
    # "Failed to load resource" is also said of a page or fetch answering 4xx on purpose: _subresource judges.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(f"{page.url}: console: {message.text}")


def _subresource(errors: list[str], answer: Response) -> None:
    kind = answer.request.resource_type
    if kind in ("stylesheet", "script", "image", "font") and answer.status >= 400:
        errors.append(f"{kind} {answer.url} answered {answer.status}")


def _sign_in(page: Page, site: Site, role: str, shot: Path | None = None) -> None:
    name, password = site.users[role]
    page.goto(f"{site.base}/ui/login")
    if shot is not None:
        page.screenshot(path=shot)
    page.fill("input[name=user]", name)
    page.fill("input[name=password]", password)
    page.click("form[action='/ui/login'] button[type=submit]")
    page.wait_for_url(f"{site.base}/ui/tasks")
    expect(page.locator("header form.who")).to_contain_text(f"{name} ({role})")


def _row_ids(page: Page) -> list[str]:
    hrefs = page.eval_on_selector_all("#rows tr > td:first-child > a", "links => links.map(a => a.pathname)")
    return [str(h).rsplit("/", 1)[-1] for h in hrefs]


def _ids(listing: dict[str, Any]) -> list[str]:
    return [str(t["id"]) for t in listing["items"]]


def test_an_operator_filters_pages_and_sorts_the_list_as_the_api_does(site: Site, new_page: Callable[[], Page],
                                                                    screenshots: Path) -> None:
    page = new_page()
    away = page.goto(f"{site.base}/ui/tasks?namespace={site.namespace}")
    assert away is not None and "/ui/login?next=" in page.url  # not signed in: to the login page
    _sign_in(page, site, "operator", screenshots / "login.png")
    expect(page.locator("#rows tr")).to_have_count(50)
    page.screenshot(path=screenshots / "tasks.png")

    page.fill("input[name=namespace]", site.namespace)
    page.check("input[name=state][value=QUEUED]")
    page.fill("input[name=name_contains]", "report")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/ui/tasks?*name_contains=report*")
    query = {"namespace": site.namespace, "state": "QUEUED", "name_contains": "report", "limit": 50}
    first = site.admin.listing(**query, sort="-created_at")  # the dashboard's default: the newest first
    assert first["total"] > 50 and first["next_cursor"], "the filter should select more than one page"
    assert _row_ids(page) == _ids(first)
    expect(page.locator("#total")).to_have_text(str(first["total"]))
    expect(page.locator("input[name=state][value=QUEUED]")).to_be_checked()
    assert all(state == "QUEUED" for state in page.locator("#rows tr > td:nth-child(2)").all_inner_texts())

    page.click("#next")
    second = site.admin.listing(**query, sort="-created_at", cursor=first["next_cursor"])
    expect(page.locator("#rows tr").first).to_contain_text(second["items"][0]["name"])
    assert _row_ids(page) == _ids(second)

    page.click("thead a:has-text('Name')")  # from the second page: sorting starts over at the first
    page.wait_for_url("**sort=name*")
    assert _row_ids(page) == _ids(site.admin.listing(**query, sort="name"))
    expect(page.locator("thead a:has-text('Name')")).to_contain_text("▲")
    names = page.locator("#rows td.name").all_inner_texts()
    assert names == sorted(names)
    page.click("thead a:has-text('Name')")
    page.wait_for_url("**sort=-name*")
    assert _row_ids(page) == _ids(site.admin.listing(**query, sort="-name"))
    expect(page.locator("thead a:has-text('Name')")).to_contain_text("▼")


def test_the_list_shows_a_new_task_without_a_reload(site: Site, new_page: Callable[[], Page]) -> None:
    page = new_page()
    _sign_in(page, site, "viewer")
    page.goto(f"{site.base}/ui/tasks?namespace={site.namespace}&state=QUEUED&name_contains=report")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#live")).to_have_text("live")
    other = site.admin.create(site.namespace, "ingest-live")  # the filter leaves it out
    made = site.admin.create(site.namespace, "report-live", labels={"team": "data"})
    started = time.monotonic()
    expect(page.locator("#rows tr").first).to_contain_text("report-live", timeout=10_000)
    waited = time.monotonic() - started
    assert page.evaluate("window.__notReloaded") is True
    assert _row_ids(page)[0] == made and other not in _row_ids(page)
    expect(page.locator("#live")).to_contain_text("live · updated")
    assert waited < 10, waited


def test_two_states_survive_the_sort_links_and_the_live_refresh(site: Site, new_page: Callable[[], Page]) -> None:
    page = new_page()
    _sign_in(page, site, "viewer")
    page.fill("input[name=namespace]", site.namespace)
    page.check("input[name=state][value=QUEUED]")
    page.check("input[name=state][value=CANCELLED]")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**state=CANCELLED*")
    query = {"namespace": site.namespace, "state": ["QUEUED", "CANCELLED"], "limit": 50}
    assert _row_ids(page) == _ids(site.admin.listing(**query, sort="-created_at"))
    rows = page.get_attribute("#live", "data-rows")
    polled = page.evaluate("async url => (await fetch(url + '&since=0')).status", rows)
    with page.expect_navigation():
        page.click("thead a:has-text('Name')")
    assert (polled, page.url.count("state=")) == (200, 2), (polled, page.url)
    assert _row_ids(page) == _ids(site.admin.listing(**query, sort="name"))


def _worked_task(site: Site) -> tuple[str, str]:
    """A task claimed by a worker that ran a step, reported progress, wrote output: (id, namespace)."""
    namespace, ledger = f"ui-detail-{uuid.uuid4().hex[:6]}", site.admin
    task_id = ledger.create(namespace, "nightly-export", type="export", steps=["extract", "load"],
                            labels={"team": "data", "nightly": ""}, input={"tables": ["orders", "customers"]})
    claimed = ledger.post("/claims", {"worker": "worker-7", "namespace": namespace})
    assert claimed["task_id"] == task_id
    epoch = claimed["lease_epoch"]
    ledger.post(f"/tasks/{task_id}/steps/0", {"lease_epoch": epoch, "status": "RUNNING"})
    ledger.post(f"/tasks/{task_id}/outputs/stdout", {"lease_epoch": epoch, "data": "extracting orders\n"})
    ledger.post(f"/tasks/{task_id}/steps/0", {"lease_epoch": epoch, "status": "SUCCEEDED", "output": "rows: 1200\n"})
    ledger.post(f"/tasks/{task_id}/progress", {"lease_epoch": epoch, "progress": 40, "message": "loading"})
    ledger.post(f"/tasks/{task_id}/steps/1", {"lease_epoch": epoch, "status": "RUNNING"})
    ledger.sync()
    return task_id, namespace


def test_the_timeline_time_travel_and_a_pause_through_the_confirm_dialog(
        site: Site, new_page: Callable[[], Page], screenshots: Path) -> None:
    task_id, namespace = _worked_task(site)
    events = site.admin.events(task_id)
    assert len(events) >= 6
    page = new_page()
    _sign_in(page, site, "operator")
    page.goto(f"{site.base}/ui/tasks?namespace={namespace}")
    page.click(f"#rows a[href='/ui/tasks/{task_id}'] >> text=nightly-export")
    page.wait_for_url(f"{site.base}/ui/tasks/{task_id}")
    timeline = page.locator("#timeline tr[data-version]")
    expect(timeline).to_have_count(len(events))
    shown = [(int(row.get_attribute("data-version") or 0), row.locator("td:nth-child(3)").inner_text())
             for row in timeline.all()]
    assert shown == [(e["version"], e["type"]) for e in events]
    expect(page.locator("#chain")).to_have_text("hash chain intact")
    expect(page.locator("td[data-field=state]")).to_have_text("RUNNING")
    expect(page.locator("td[data-field=progress]")).to_have_text("40.0")
    page.screenshot(path=screenshots / "task-detail.png")

    page.click("#timeline tr[data-version='1'] a:has-text('as of')")
    page.wait_for_url("**as_of=1")
    expect(page.locator("td[data-field=state]")).to_have_text("QUEUED")
    expect(page.locator("td[data-field=version]")).to_have_text("1")
    expect(page.locator("#as_of_note")).to_contain_text("after event 1")
    expect(page.locator("#older")).to_have_count(0)
    page.click("#newer")
    page.wait_for_url("**as_of=2")
    expect(page.locator("td[data-field=version]")).to_have_text("2")
    then = site.admin.get(f"/tasks/{task_id}", as_of=2)
    expect(page.locator("td[data-field=state]")).to_have_text(then["state"])
    expect(page.locator("#timeline tr.current")).to_have_attribute("data-version", "2")
    page.screenshot(path=screenshots / "time-travel.png")
    page.fill("#as_of_range", "4")  # the slider, then Show
    expect(page.locator("#as_of_value")).to_have_text("4")
    page.click("section.timetravel button[type=submit]")
    page.wait_for_url("**as_of=4")
    expect(page.locator("td[data-field=version]")).to_have_text("4")

    page.click("section.timetravel a:has-text('now')")
    page.wait_for_url(f"{site.base}/ui/tasks/{task_id}")
    asked: list[str] = []

    def answer(accept: bool) -> Callable[[Dialog], None]:
        def respond(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        return respond

    page.once("dialog", answer(False))  # "no" to the confirmation: nothing is sent
    page.click("form[action$='/abort'] button")
    assert asked == ["Abort task nightly-export?"]
    assert page.url == f"{site.base}/ui/tasks/{task_id}"
    page.once("dialog", answer(True))
    page.fill("form[action$='/pause'] input[name=reason]", "browser test")
    page.click("form[action$='/pause'] button")
    page.wait_for_url("**done=pause")
    assert asked[1] == "Pause task nightly-export?"
    expect(page.locator("#state")).to_have_text("PAUSED")
    expect(page.locator("p.flash.good")).to_contain_text("Done: pause")
    after = site.admin.events(task_id)
    assert len(after) == len(events) + 1  # the dismissed abort recorded nothing
    last = after[-1]
    assert (last["type"], last["facade"], last["actor"], last["data"].get("reason")) == (
        "Paused", "dashboard", site.users["operator"][0], "browser test")


def test_a_viewer_sees_no_action_and_a_forged_one_is_refused(site: Site, new_page: Callable[[], Page]) -> None:
    namespace = f"ui-viewer-{uuid.uuid4().hex[:6]}"
    task_id = site.admin.create(namespace, "paused-by-api")
    site.admin.post(f"/tasks/{task_id}/pause", {"reason": "hold"})
    site.admin.sync()
    page = new_page()
    _sign_in(page, site, "viewer")
    page.goto(f"{site.base}/ui/tasks/{task_id}")
    expect(page.locator("#state")).to_have_text("PAUSED")
    expect(page.locator("section.actions")).to_have_count(0)
    expect(page.locator("form[method=post][action^='/ui/tasks/']")).to_have_count(0)
    for action in ("Pause", "Resume", "Cancel", "Abort", "Drop"):
        expect(page.get_by_role("button", name=action)).to_have_count(0)
    csrf = page.input_value("header form.who input[name=csrf]")
    status, text = page.evaluate(
        """async ([url, csrf]) => {
            const answer = await fetch(url, {method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/x-www-form-urlencoded"},
                body: new URLSearchParams({csrf: csrf, do: "resume"})});
            return [answer.status, await answer.text()];
        }""", [f"/ui/tasks/{task_id}/resume", csrf])
    assert status == 403 and "operator" in text, (status, text[:500])
    assert [e["type"] for e in site.admin.events(task_id)] == ["Created", "Paused"]


@pytest.mark.parametrize("path", ["/ui/schedules", "/ui/operations"])
def test_the_other_pages_answer_and_are_shown(site: Site, new_page: Callable[[], Page], screenshots: Path,
                                              path: str) -> None:
    page = new_page()
    _sign_in(page, site, "operator")
    answer = page.goto(site.base + path)
    assert answer is not None
    if answer.status == 404:
        pytest.skip(f"{path} is not served yet")
    assert answer.status == 200, answer.status
    if path == "/ui/schedules":
        for name in site.scheduled:
            expect(page.locator("main")).to_contain_text(name)
    page.screenshot(path=screenshots / f"{path.rsplit('/', 1)[-1]}.png")
