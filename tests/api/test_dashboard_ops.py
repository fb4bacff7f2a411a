"""The dashboard's schedules and operations pages (/ui/schedules, /ui/schedules/{id}, /ui/operations) in
falcon.testing over the real database: recurring tasks with their cron in words and their next occurrences
in their own time zone, a schedule's recorded occurrences paged and sorted, every projection's position,
head and lag, the watchdog's lease expiries, sign-in, and bad paging answered as a 400 page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

import falcon
import pytest
from falcon import testing

from api import ui
from api.ui.schedules import describe_cron
from ledger import commands as c
from ledger.application import TaskLedger
from ledger.errors import LedgerError
from projections.queries import PostgresTaskView
from projections.registry import PROJECTIONS
from taskledger.accounts import PostgresAccounts
from taskledger.calendar import CronCalendar
from tests.api.conftest import BASE, SUITE_LIMITER, Api

PASSWORDS = {"viewer": "viewer-secret-pw", "operator": "operator-secret-pw", "worker": "worker-secret-pw"}
OPERATOR = c.Caller("api-operator", "req-dashboard-ops")
SCHEDULER = c.Caller("scheduler", "tick-dashboard-ops", "ledger")
WATCHDOG = c.Caller("watchdog", "sweep-dashboard-ops", "ledger")
BERLIN = {"cron": "0 */5 * * * ?", "timezone": "Europe/Berlin"}
NEW_YORK = {"cron": "30 9 * * 1-5", "timezone": "America/New_York"}
SATURDAYS = {"cron": "0 0 12 ? * L", "timezone": "UTC"}  # Quartz `L` alone: Saturday; cron-descriptor has no words
EVERY_2S = {"cron": "*/2 * * * * ?", "timezone": "UTC"}


@pytest.fixture(autouse=True)
def _users(credentials: dict[str, dict[str, str]]) -> None:
    """The suite's users of each role (api-viewer, api-operator, …) exist."""




def _login(client: testing.TestClient, role: str = "viewer") -> dict[str, str]:
    """Signs in through the form; the session cookie as a header to send."""
    result = client.simulate_post("/ui/login", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                  body=urlencode({"user": f"api-{role}", "password": PASSWORDS[role],
                                                  "next": "/ui/schedules"}))
    assert result.status_code == 303, result.text
    assert result.headers["Location"].endswith("/ui/schedules")
    return {"Cookie": f"taskledger_session={result.cookies['taskledger_session'].value}"}


def _rows(text: str, attribute: str) -> dict[str, str]:
    """The page's table rows by their `data-<attribute>` value: each row's HTML."""
    return {m.group(1): m.group(2) for m in re.finditer(
        rf'<tr data-{attribute}="([^"]+)"[^>]*>(.*?)</tr>', text, re.DOTALL)}


def _times(row: str) -> list[tuple[str, str]]:
    """The (UTC ISO instant, wall-clock text) of each <time> in the row, in order."""
    return re.findall(r'<time datetime="([^"]+)"[^>]*>([^<]+)</time>', row)


def _cell(row: str, css: str) -> str:
    found = re.search(rf'<td class="{css}">(.*?)</td>', row, re.DOTALL)
    assert found, f"no {css} cell in {row}"
    return found.group(1)


def _status(row: str) -> str:
    found = re.search(r'class="badge o-(\w+)"', row)
    assert found, f"no status in {row}"
    return found.group(1)


def _local(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {local.tzname()}"


def _expected_next(schedule: dict[str, str], after: datetime) -> list[str]:
    return [_local(t, schedule["timezone"])
            for t in CronCalendar().occurrences(schedule, after, after + timedelta(days=30), 3)]


def _recurring(api: Api, ended: list[str], namespace: str, name: str, schedule: dict[str, str]) -> dict[str, Any]:
    task = api.create(namespace, name, schedule=schedule)
    ended.append(task["id"])
    return task


def test_describe_cron_reads_both_dialects_and_macros_and_never_raises() -> None:
    assert describe_cron("0 */5 * * * ?") == "Every 5 minutes"
    assert describe_cron("*/5 * * * *") == "Every 5 minutes"
    assert describe_cron("0 0 12 ? * 2") == "At 12:00, only on Monday"  # Quartz: 2 = Monday
    assert describe_cron("0 12 * * 2") == "At 12:00, only on Tuesday"  # standard cron: 2 = Tuesday
    assert describe_cron("@daily") == "At 00:00"
    assert describe_cron("0 0 12 ? * L") is None
    assert describe_cron("not a cron") is None


def test_the_schedules_page_lists_recurring_tasks_with_their_cron_in_words_and_next_occurrences_in_their_zone(
        api: Api, client: testing.TestClient, namespace: str, ended: list[str]) -> None:
    berlin = _recurring(api, ended, namespace, "berlin-every-5", BERLIN)
    new_york = _recurring(api, ended, namespace, "ny-weekdays", NEW_YORK)
    saturdays = _recurring(api, ended, namespace, "saturdays", SATURDAYS)
    paused = _recurring(api, ended, namespace, "paused-every-5", BERLIN)
    api.create(namespace, "one-shot")
    assert api.post(f"/tasks/{paused['id']}/pause", {"reason": "maintenance"}, role="operator").status_code == 200
    api.get(f"/tasks/{paused['id']}")  # the view holds them all (the client reads its writes)
    session = _login(client)

    before = datetime.now(timezone.utc)
    page = client.simulate_get("/ui/schedules", params={"namespace": namespace}, headers=session)
    after = datetime.now(timezone.utc)

    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html") and "api-viewer" in page.text
    assert 'href="/ui/schedules" class="here"' in page.text
    rows = _rows(page.text, "task")
    assert set(rows) == {berlin["id"], new_york["id"], saturdays["id"], paused["id"]}  # not the one-shot task
    assert list(rows) == sorted(rows)  # in id order (the indexes' order)

    row = rows[berlin["id"]]
    assert "berlin-every-5" in row and namespace in row and "QUEUED" in row and "Europe/Berlin" in row
    assert "<code>0 */5 * * * ?</code>" in row and "Every 5 minutes" in row
    shown = [local for _, local in _times(_cell(row, "next"))]
    assert shown in (_expected_next(BERLIN, before), _expected_next(BERLIN, after))
    assert all(text.endswith((" CET", " CEST")) for text in shown)
    assert f'href="/ui/schedules/{berlin["id"]}"' in row and f'href="/ui/tasks/{berlin["id"]}"' in row
    assert re.search(r'<td class="num"[^>]*>0</td>', row)  # run_count
    assert _cell(row, "time") == "—"  # no last run yet

    row = rows[new_york["id"]]
    assert "At 09:30, Monday through Friday" in row and "America/New_York" in row
    upcoming = _times(_cell(row, "next"))
    assert [local for _, local in upcoming] in (_expected_next(NEW_YORK, before), _expected_next(NEW_YORK, after))
    for instant, local in upcoming:
        at = datetime.fromisoformat(instant).astimezone(ZoneInfo("America/New_York"))
        assert (at.hour, at.minute, at.weekday() < 5) == (9, 30, True)
        assert local.endswith(("09:30:00 EST", "09:30:00 EDT"))

    row = rows[saturdays["id"]]  # a cron without words still shows, with its next Saturdays
    assert "(no description)" in row and "<code>0 0 12 ? * L</code>" in row
    saturdays_next = _times(_cell(row, "next"))
    assert len(saturdays_next) == 3 and all(
        datetime.fromisoformat(i).weekday() == 5 and local.endswith("12:00:00 UTC") for i, local in saturdays_next)

    row = rows[paused["id"]]  # a stopped schedule is listed too, and says it records nothing while paused
    assert "PAUSED" in row and "paused: recorded only once resumed" in row


def test_the_schedules_list_pages_by_id(api: Api, client: testing.TestClient, namespace: str,
                                        ended: list[str]) -> None:
    made = {_recurring(api, ended, namespace, f"every-5-{i}", BERLIN)["id"] for i in range(3)}
    api.get(f"/tasks/{sorted(made)[-1]}")
    session = _login(client)

    first = client.simulate_get("/ui/schedules", params={"namespace": namespace, "limit": "2"}, headers=session)

    assert first.status_code == 200, first.text
    following = re.search(r'id="next" href="\?([^"]+)"', first.text)
    assert following, "no next page link"
    second = client.simulate_get("/ui/schedules", query_string=html.unescape(following.group(1)), headers=session)
    assert second.status_code == 200, second.text
    assert len(_rows(first.text, "task")) == 2 and len(_rows(second.text, "task")) == 1
    assert set(_rows(first.text, "task")) | set(_rows(second.text, "task")) == made
    assert 'id="next"' not in second.text and "First page" in second.text
    assert re.search(r"<b>3</b> active", first.text)


def test_the_schedule_history_lists_recorded_occurrences_paged_and_sorted(
        api: Api, client: testing.TestClient, ledger_app: TaskLedger, queries: PostgresTaskView,
        namespace: str, ended: list[str]) -> None:
    task = _recurring(api, ended, namespace, "every-2s", EVERY_2S)
    task_id = UUID(task["id"])
    created = datetime.fromisoformat(task["created_at"])
    calendar = CronCalendar()
    due = calendar.occurrences(EVERY_2S, created, created + timedelta(seconds=7), 10)
    # A scheduler that ran late: every occurrence but the latest was passed over (missed); the latest runs.
    ledger_app.record_occurrences(c.RecordOccurrences(task_id, due[-1] + timedelta(seconds=1), timedelta(seconds=5)),
                                  SCHEDULER)
    # The next one comes while that run still waits: skipped (overlap).
    later = calendar.occurrences(EVERY_2S, due[-1], due[-1] + timedelta(seconds=3), 1)[0]
    skipped = ledger_app.record_occurrences(
        c.RecordOccurrences(task_id, later + timedelta(milliseconds=500), timedelta(seconds=5)), SCHEDULER)
    assert queries.wait_for(skipped.position, 10)
    api.position = max(api.position, skipped.position)
    claimed = api.claim(namespace)
    assert claimed["task_id"] == task["id"]
    done = api.post(f"/tasks/{task['id']}/complete", {"lease_epoch": claimed["lease_epoch"], "result": {"rows": 1}},
                    role="worker")
    assert done.status_code == 200, done.text
    api.get(f"/tasks/{task['id']}")
    runs = len(due) + 1
    session = _login(client)

    page = client.simulate_get(f"/ui/schedules/{task['id']}", headers=session)

    assert page.status_code == 200, page.text
    assert "every-2s" in page.text and "Every 2 seconds" in page.text and "runs JSON" in page.text
    assert f'<span id="occurrences-total">{runs}</span>' in page.text
    rows = _rows(page.text, "run")
    assert list(rows) == [str(n) for n in range(runs, 0, -1)]  # newest first by default
    statuses = {int(n): _status(r) for n, r in rows.items()}
    assert statuses == {**{n: "missed" for n in range(1, runs - 1)}, runs - 1: "succeeded", runs: "skipped"}
    assert "<td>overlap</td>" in rows[str(runs)]
    took = re.findall(r'<td class="num">(\d+|—)</td>', rows[str(runs - 1)])
    assert took[-1].isdigit(), rows[str(runs - 1)]  # took_ms of the run that ended
    times = [instant for instant, _ in _times(rows[str(runs - 1)])]
    assert datetime.fromisoformat(times[0]) == due[-1]  # the occurrence's own time
    upcoming = re.search(r'id="next-occurrences">(.*?)</ol>', page.text, re.DOTALL)
    assert upcoming and len(_times(upcoming.group(1))) == 3

    by_run = client.simulate_get(f"/ui/schedules/{task['id']}", params={"sort": "run", "limit": "2"}, headers=session)
    assert by_run.status_code == 200, by_run.text
    assert list(_rows(by_run.text, "run")) == ["1", "2"]
    following = re.search(r'id="next" href="\?([^"]+)"', by_run.text)
    assert following, "no next page link"
    second = client.simulate_get(f"/ui/schedules/{task['id']}", query_string=html.unescape(following.group(1)),
                                 headers=session)
    assert list(_rows(second.text, "run")) == ["3", "4"] and 'id="previous"' in second.text
    by_status = client.simulate_get(f"/ui/schedules/{task['id']}", params={"sort": "status"}, headers=session)
    assert [_status(r) for r in _rows(by_status.text, "run").values()] == sorted(statuses.values())


def test_the_history_of_a_task_without_schedule_or_of_no_task_is_a_404_page(
        api: Api, client: testing.TestClient, namespace: str) -> None:
    one_shot = api.create(namespace, "one-shot")
    api.get(f"/tasks/{one_shot['id']}")
    session = _login(client)
    for path in (f"/ui/schedules/{one_shot['id']}", "/ui/schedules/not-a-uuid",
                 "/ui/schedules/00000000-0000-4000-8000-000000000000"):
        page = client.simulate_get(path, headers=session)
        assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html"), path
        assert "Traceback" not in page.text


def test_the_operations_page_lists_every_projection_with_position_head_and_lag(
        api: Api, client: testing.TestClient, queries: PostgresTaskView, namespace: str) -> None:
    api.get(f"/tasks/{api.create(namespace, 'moving-the-log')['id']}")
    assert queries.wait_for(queries.head(), 10)
    session = _login(client)

    page = client.simulate_get("/ui/operations", headers=session)

    assert page.status_code == 200, page.text
    assert 'href="/ui/operations" class="here"' in page.text
    rows = _rows(page.text, "projection")
    assert set(rows) == set(PROJECTIONS)
    head = int(re.search(r'<b id="head">(\d+)</b>', page.text).group(1))  # type: ignore[union-attr]
    assert head >= api.position
    for name, row in rows.items():
        values = dict(re.findall(r'data-field="(\w+)">([\d.]+)<', row))
        assert int(values["head"]) == head, name
        assert int(values["position"]) + int(values["lag_events"]) == head, name
        assert float(values["lag_seconds"]) >= 0
        status = re.search(r'data-status="(\w+)"', row).group(1)  # type: ignore[union-attr]
        assert status == ("ok" if values["lag_events"] == "0" else status) and status in ("ok", "lagging", "held")


def test_a_lease_expiry_shows_on_the_operations_page(api: Api, client: testing.TestClient, ledger_app: TaskLedger,
                                                     queries: PostgresTaskView, namespace: str) -> None:
    task_id, epoch = api.running(namespace, name="stalls", heartbeat_timeout=0.5, max_retries=1)
    expired = ledger_app.expire_lease(c.ExpireLease(UUID(task_id), datetime.now(timezone.utc) + timedelta(seconds=5)),
                                      WATCHDOG)
    assert expired.lease_epoch == epoch
    assert queries.wait_for(expired.position, 10)
    session = _login(client)

    page = client.simulate_get("/ui/operations", headers=session)

    assert page.status_code == 200, page.text
    rows = _rows(page.text, "task")
    assert task_id in rows, "the expiry is not listed"
    row = rows[task_id]
    assert f'data-epoch="{epoch}"' in page.text
    assert "stalls" in row and namespace in row and "worker-1" in row and f'<td class="num">{epoch}</td>' in row
    assert "retrying" in row and "QUEUED" in row
    expiry, deadline = (datetime.fromisoformat(instant) for instant, _ in _times(row))
    started = datetime.fromisoformat(api.get(f"/tasks/{task_id}").json["started_at"])
    assert deadline == started + timedelta(seconds=0.5) and expiry >= started
    assert list(rows)[0] == task_id  # the newest first

    fewer = client.simulate_get("/ui/operations", params={"limit": "1"}, headers=session)
    assert list(_rows(fewer.text, "task")) == [task_id]


@pytest.mark.parametrize("path", ["/ui/schedules", "/ui/schedules/00000000-0000-4000-8000-000000000000",
                                  "/ui/operations"])
def test_the_pages_need_a_sign_in(client: testing.TestClient, path: str) -> None:
    away = client.simulate_get(path, params={"limit": "5"})
    assert away.status_code == 303
    assert away.headers["Location"].startswith("/ui/login?next=" + path.replace("/", "%2F"))


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/ui/schedules", {"limit": "0"}, "limit"),
    ("/ui/schedules", {"limit": "many"}, "limit"),
    ("/ui/schedules", {"after": "not-an-id"}, "after"),
    ("/ui/schedules", {"page": "2"}, "page"),
    ("/ui/schedules/{id}", {"offset": "-1"}, "offset"),
    ("/ui/schedules/{id}", {"limit": "501"}, "limit"),
    ("/ui/schedules/{id}", {"sort": "worker"}, "sort"),
    ("/ui/operations", {"limit": "0"}, "limit"),
    ("/ui/operations", {"limit": "x"}, "limit"),
])
def test_bad_paging_is_a_400_page_naming_the_parameter(api: Api, client: testing.TestClient, namespace: str,
                                                       ended: list[str], path: str, params: dict[str, str],
                                                       field: str) -> None:
    if "{id}" in path:
        task = _recurring(api, ended, namespace, "every-5", BERLIN)
        api.get(f"/tasks/{task['id']}")
        path = path.replace("{id}", task["id"])
    page = client.simulate_get(path, params=params, headers=_login(client))
    assert page.status_code == 400, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    assert f"<b>{field}</b>" in page.text and "Traceback" not in page.text


class HeldView:
    """The suite's view, but its projections wait at a gap for a transaction open a minute (as status() says)."""

    def __init__(self, view: PostgresTaskView) -> None:
        self.view = view

    def __getattr__(self, name: str) -> Any:
        return getattr(self.view, name)

    def status(self) -> list[dict[str, Any]]:
        by = {"pid": 4242, "database": "ledger", "application_name": "psql", "state": "idle in transaction",
              "open_seconds": 61.0}
        return [{"name": "task_view", "position": 90, "head": 100, "lag_events": 10, "lag_seconds": 61.5,
                 "held_at": 91, "held_by": by},
                {"name": "run_history", "position": 97, "head": 100, "lag_events": 3, "lag_seconds": 0.4,
                 "held_at": None, "held_by": None}]


def test_a_held_projection_shows_what_holds_it(ledger_app: TaskLedger, queries: PostgresTaskView,
                                              accounts: PostgresAccounts,
                                              credentials: dict[str, dict[str, str]]) -> None:
    held_app = falcon.App()
    view: Any = HeldView(queries)
    ui.mount(held_app, ui.UiDeps(ledger_app, view, accounts, SUITE_LIMITER, BASE))

    page = testing.TestClient(held_app).simulate_get("/ui/operations", headers=credentials["viewer"])

    assert page.status_code == 200, page.text
    rows = _rows(page.text, "projection")
    assert 'data-status="held"' in rows["task_view"] and "(stalled)" in rows["task_view"]
    assert "at position 91" in rows["task_view"] and "<code>4242</code>" in rows["task_view"]
    assert "idle in transaction" in rows["task_view"] and "pg_terminate_backend" in rows["task_view"]
    assert 'data-status="lagging"' in rows["run_history"] and "pg_terminate_backend" not in rows["run_history"]
