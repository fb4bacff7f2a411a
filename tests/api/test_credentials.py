"""Credential changes apply on the very next request, in every process; tokens expire and are revoked."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from falcon import testing
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.app import create_app
from api.auth import CredentialsUnavailableError
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger.accounts import CONFIRM_SECONDS, PostgresAccounts, Principal, VerifiedPasswords
from tests.api.conftest import BASE, Api, assert_problem, basic

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def elsewhere(database_url: str) -> Iterator[PostgresAccounts]:
    """The same account tables seen by another process (its own pool and cache), as the CLI would be."""
    other = PostgresAccounts(database_url, max_size=1)
    other.open()
    yield other
    other.close()


@pytest.fixture
def user(api: Api, namespace: str) -> str:
    """A fresh worker, signed in once so the API process has its password verified and remembered."""
    name = f"{namespace}-w"
    assert api.post("/users", {"name": name, "password": "first-password", "role": "worker"}).status_code == 201
    assert _get_tasks(api, basic(name, "first-password")).status_code == 200
    return name


def _get_tasks(api: Api, headers: dict[str, str]) -> testing.Result:
    return api.client.simulate_get(BASE + "/tasks", headers=headers, params={"limit": "1"})


def _claim(api: Api, namespace: str, headers: dict[str, str]) -> testing.Result:
    return api.client.simulate_post(BASE + "/claims", headers=headers,
                                    json={"worker": "w", "namespace": f"{namespace}-none"})


def test_a_password_changed_by_another_process_refuses_the_old_one_on_the_very_next_request(
        api: Api, user: str, elsewhere: PostgresAccounts) -> None:
    elsewhere.create_user(user, "second-password", "worker")

    assert_problem(_get_tasks(api, basic(user, "first-password")), 401, "unauthorized")
    assert _get_tasks(api, basic(user, "second-password")).status_code == 200


def test_a_role_changed_by_another_process_applies_at_once(
        api: Api, namespace: str, user: str, elsewhere: PostgresAccounts) -> None:
    assert _claim(api, namespace, basic(user, "first-password")).status_code == 204

    elsewhere.create_user(user, "first-password", "viewer")

    assert_problem(_claim(api, namespace, basic(user, "first-password")), 403, "forbidden")
    assert _get_tasks(api, basic(user, "first-password")).status_code == 200


def test_a_removed_user_is_refused_at_once_and_its_tokens_with_it(
        api: Api, user: str, elsewhere: PostgresAccounts) -> None:
    minted = api.post("/tokens", {}, role=None, headers=basic(user, "first-password"))
    bearer = {"Authorization": f"Bearer {minted.json['token']}"}
    assert _get_tasks(api, bearer).status_code == 200

    assert elsewhere.remove_user(user)

    assert_problem(_get_tasks(api, basic(user, "first-password")), 401, "unauthorized")
    assert_problem(_get_tasks(api, bearer), 401, "unauthorized")
    assert not elsewhere.remove_user(user)


def test_no_request_that_starts_after_a_password_change_returns_is_let_in_with_the_old_password(
        accounts: PostgresAccounts, user: str, elsewhere: PostgresAccounts) -> None:
    """A signed-in client keeps calling while another process changes its password."""
    answers: list[tuple[float, bool]] = []
    stop = threading.Event()

    def keep_calling() -> None:
        while not stop.is_set():
            started = time.monotonic()
            answers.append((started, accounts.authenticate_basic(user, "first-password") is not None))

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        time.sleep(0.2)
        changing = time.monotonic()
        elsewhere.create_user(user, "second-password", "worker")
        returned = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        caller.join()

    before = [ok for started, ok in answers if started < changing]
    after = [ok for started, ok in answers if started > returned]
    assert len(before) > 10 and all(before), before[-5:]
    assert after and not any(after), after


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_what_a_process_remembers_is_trusted_only_at_a_version_read_less_than_the_confirm_time_ago() -> None:
    clock = Clock()
    cache = VerifiedPasswords(clock)
    key = ("ann", "digest")
    cache.read(7, sent_at=clock.now)
    cache.remember(key, "hash", "worker", 7)
    assert cache.trusted(key) is not None

    clock.now += CONFIRM_SECONDS
    assert cache.trusted(key) is None  # must be confirmed again
    cache.read(7, sent_at=clock.now)
    assert cache.trusted(key) is not None
    cache.read(8, sent_at=clock.now + 0.01)
    assert cache.trusted(key) is None  # something changed: the entry is checked against its row again
    cache.read(7, sent_at=clock.now)  # a slower read sent earlier does not bring the old version back
    assert cache.trusted(key) is None


def test_the_issue_scenario_users_add_through_the_cli_resets_password_and_role_for_the_next_request(
        api: Api, namespace: str, user: str, database_url: str) -> None:
    assert _claim(api, namespace, basic(user, "first-password")).status_code == 204

    done = subprocess.run([sys.executable, "-m", "taskledger.cli", "users", "add", user, "--role", "viewer",
                           "--password-stdin"], input="reset-password\n", capture_output=True, text=True,
                          check=False, timeout=60, cwd=ROOT, env={**os.environ, "TASKLEDGER_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr

    assert_problem(_claim(api, namespace, basic(user, "first-password")), 401, "unauthorized")
    assert_problem(_claim(api, namespace, basic(user, "reset-password")), 403, "forbidden")


def test_a_token_revoked_through_the_api_is_refused_on_the_next_request(api: Api, user: str) -> None:
    minted = api.post("/tokens", {"label": "ci"}, role=None, headers=basic(user, "first-password"))
    assert minted.status_code == 201 and len(minted.json["id"]) == 16 and minted.json["expires_at"] is None
    bearer = {"Authorization": f"Bearer {minted.json['token']}"}
    assert _get_tasks(api, bearer).status_code == 200

    revoked = api.client.simulate_delete(f"{BASE}/tokens/{minted.json['id']}", headers=bearer)

    assert revoked.status_code == 204, revoked.text
    assert_problem(_get_tasks(api, bearer), 401, "unauthorized")
    again = api.client.simulate_delete(f"{BASE}/tokens/{minted.json['id']}", headers=basic(user, "first-password"))
    assert_problem(again, 404, "token-not-found")


def test_only_the_owner_or_an_admin_revokes_a_token(api: Api, user: str) -> None:
    minted = api.post("/tokens", {}, role=None, headers=basic(user, "first-password")).json
    bearer = {"Authorization": f"Bearer {minted['token']}"}

    assert_problem(api.delete(f"/tokens/{minted['id']}", role="operator"), 404, "token-not-found")
    assert _get_tasks(api, bearer).status_code == 200
    assert api.delete(f"/tokens/{minted['id']}", role="admin").status_code == 204
    assert_problem(_get_tasks(api, bearer), 401, "unauthorized")


def test_a_token_revoked_by_another_process_is_refused_on_the_next_request(
        api: Api, user: str, elsewhere: PostgresAccounts) -> None:
    minted = api.post("/tokens", {}, role=None, headers=basic(user, "first-password")).json
    bearer = {"Authorization": f"Bearer {minted['token']}"}
    assert _get_tasks(api, bearer).status_code == 200

    assert elsewhere.revoke_token(minted["token"]) is not None

    assert_problem(_get_tasks(api, bearer), 401, "unauthorized")


def test_a_token_is_refused_once_it_expires(api: Api, user: str) -> None:
    minted = api.post("/tokens", {"expires_in": 1}, role=None, headers=basic(user, "first-password"))
    assert minted.status_code == 201 and minted.json["expires_at"]
    bearer = {"Authorization": f"Bearer {minted.json['token']}"}
    assert _get_tasks(api, bearer).status_code == 200

    time.sleep(1.2)

    assert_problem(_get_tasks(api, bearer), 401, "unauthorized")


@pytest.mark.parametrize(("expires_in", "rule"), [
    (0, "must be 1 or more"), (-5, "must be 1 or more"), (10**12, "must be 315360000 or less"),
    ("30d", "must be an integer"), (1.5, "must be an integer"), (None, "must not be null")])
def test_a_bad_token_lifetime_is_refused_naming_the_field(api: Api, expires_in: object, rule: str) -> None:
    refused = api.post("/tokens", {"expires_in": expires_in}, role="viewer")

    assert_problem(refused, 422, "invalid-request", "expires_in")
    assert rule in refused.json["errors"][0]["rule"]


@pytest.mark.parametrize("token_id", ["nope", "0123456789abcdef", "tl_" + "x" * 40, "%00"])
def test_revoking_a_token_that_is_not_yours_or_not_an_id_is_404(api: Api, token_id: str) -> None:
    assert_problem(api.delete(f"/tokens/{token_id}", role="viewer"), 404, "token-not-found")


def _seconds(store: PostgresAccounts, name: str, password: str) -> float:
    started = time.perf_counter()
    assert store.authenticate_basic(name, password) is None
    return time.perf_counter() - started


def test_an_unknown_or_removed_name_costs_what_a_known_name_with_a_wrong_password_costs(
        accounts: PostgresAccounts, namespace: str) -> None:
    """Measured at the account store: the API adds the same constant to both (and a rate limit in front of
    it would hide the store's timing from repeated tries)."""
    accounts.create_user(f"{namespace}-known", "known-password", "viewer")
    accounts.create_user(f"{namespace}-gone", "gone-password", "viewer")
    accounts.remove_user(f"{namespace}-gone")
    cases = {"known": (f"{namespace}-known", "wrong-password"), "unknown": (f"{namespace}-nobody", "wrong-password"),
             "removed": (f"{namespace}-gone", "gone-password")}
    for name, password in cases.values():  # warm-up: the dummy hash is made on first use
        _seconds(accounts, name, password)
    samples: dict[str, list[float]] = {case: [] for case in cases}
    for round_ in range(20):  # interleaved, so a busy moment of the machine hits every case alike
        for case, (name, password) in cases.items():
            if case != "removed" or round_ % 2:  # the same path as an unknown name: fewer tries suffice
                samples[case].append(_seconds(accounts, name, password))
    median = {case: sorted(times)[len(times) // 2] for case, times in samples.items()}

    assert 0.5 <= median["unknown"] / median["known"] <= 2.0, median
    assert 0.5 <= median["removed"] / median["known"] <= 2.0, median
    assert median["known"] > 0.005, median  # argon2 really ran (it takes tens of milliseconds)


def _terminate(application_name: str, database_url: str) -> int:
    """Terminates the backends of one application, as a server restart would (once the pool has one again)."""
    deadline = time.monotonic() + 5
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            killed = len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE application_name = %s", (application_name,)).fetchall())
            if killed or time.monotonic() > deadline:
                return killed
            time.sleep(0.02)


@pytest.fixture
def own_pool(database_url: str) -> Iterator[tuple[PostgresAccounts, str]]:
    """An account store whose pooled backends can be told apart (by application name) and terminated."""
    app_name = f"tl-accounts-{uuid.uuid4().hex[:8]}"
    store = PostgresAccounts(make_conninfo(database_url, application_name=app_name), max_size=2)
    store.open()
    yield store, app_name
    store.close()


def test_the_account_pool_replaces_connections_the_server_closed(
        own_pool: tuple[PostgresAccounts, str], database_url: str, namespace: str) -> None:
    store, app_name = own_pool
    name = f"{namespace}-p"
    store.create_user(name, "pool-password", "operator")
    token = store.create_token(name)
    assert token is not None
    for _ in range(3):
        assert _terminate(app_name, database_url) >= 1
        assert store.authenticate_basic(name, "pool-password") == Principal(name, "operator")
        assert store.authenticate_basic(name, "wrong-password") is None
        assert _terminate(app_name, database_url) >= 1
        assert store.authenticate_token(token.token) == Principal(name, "operator")
        assert store.authenticate_token("tl_not-a-token") is None


def test_basic_auth_answers_through_a_pool_whose_backends_were_terminated(
        own_pool: tuple[PostgresAccounts, str], database_url: str, namespace: str, ledger_app: TaskLedger,
        queries: PostgresTaskView) -> None:
    store, app_name = own_pool
    store.create_user(f"{namespace}-p", "pool-password", "viewer")
    client = testing.TestClient(create_app(ledger_app, queries, store))
    headers = basic(f"{namespace}-p", "pool-password")
    assert client.simulate_get(BASE + "/tasks", headers=headers, params={"limit": "1"}).status_code == 200

    _terminate(app_name, database_url)

    assert_problem(client.simulate_get(BASE + "/tasks", headers=basic(f"{namespace}-p", "wrong-password")), 401)
    _terminate(app_name, database_url)
    time.sleep(CONFIRM_SECONDS)  # what the process remembers has to be confirmed again, on the dead pool
    assert client.simulate_get(BASE + "/tasks", headers=headers, params={"limit": "1"}).status_code == 200


@pytest.fixture
def unreachable(new_database: Callable[[], str]) -> Iterator[tuple[PostgresAccounts, str]]:
    """An account store whose database then refuses every connection (as while it restarts)."""
    url = new_database()
    store = PostgresAccounts(url, max_size=1)
    store.open()
    store.create_user("away", "away-password", "viewer")
    dbname = sql.Identifier(str(conninfo_to_dict(url)["dbname"]))
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(dbname))
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                      "AND pid <> pg_backend_pid()", (conninfo_to_dict(url)["dbname"],))
        try:
            yield store, url
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(dbname))
            store.close()


def test_an_unreachable_account_database_is_a_clear_error_then_recovers_at_once(
        unreachable: tuple[PostgresAccounts, str], ledger_app: TaskLedger, queries: PostgresTaskView) -> None:
    store, url = unreachable
    client = testing.TestClient(create_app(ledger_app, queries, store))
    started = time.monotonic()
    with pytest.raises(CredentialsUnavailableError):
        store.authenticate_basic("away", "away-password")
    assert time.monotonic() - started < 5
    refused = client.simulate_get(BASE + "/tasks", headers=basic("away", "away-password"))
    assert_problem(refused, 503, "database-unavailable")
    assert refused.headers["Retry-After"] == "1"
    bearer = client.simulate_get(BASE + "/tasks", headers={"Authorization": "Bearer tl_whatever"})
    assert_problem(bearer, 503, "database-unavailable")

    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
            sql.Identifier(str(conninfo_to_dict(url)["dbname"]))))

    assert store.authenticate_basic("away", "away-password") is not None
    assert client.simulate_get(BASE + "/tasks", headers=basic("away", "away-password"),
                               params={"limit": "1"}).status_code == 200
