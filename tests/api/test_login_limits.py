"""Failed logins are limited per source address and per user name: 429 with Retry-After, before any argon2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from falcon import testing

from api.app import create_app
from api.auth import LoginLimiter
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger.accounts import PostgresAccounts
from tests.api.conftest import BASE, assert_problem, basic


class CountingHasher(PasswordHasher):
    """argon2 as usual, counting the verifications (what a flood of wrong passwords would cost)."""

    verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 -- argon2's name
        CountingHasher.verifications += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited_accounts(database_url: str) -> Iterator[PostgresAccounts]:
    store = PostgresAccounts(database_url)
    store.hasher = CountingHasher()
    store.open()
    store.create_user("limit-user", "right-password-1", "viewer")
    store.create_user("limit-other", "right-password-2", "viewer")
    yield store
    store.close()


@pytest.fixture
def accounts_token(limited_accounts: PostgresAccounts) -> str:
    issued = limited_accounts.create_token("limit-other")
    assert issued is not None
    return issued.token


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(ledger_app: TaskLedger, queries: PostgresTaskView, limited_accounts: PostgresAccounts,
           clock: Clock) -> testing.TestClient:
    limiter = LoginLimiter(per_source=20, per_name=10, window=60.0, clock=clock)
    return testing.TestClient(create_app(ledger_app, queries, limited_accounts, limiter=limiter))


def get(client: testing.TestClient, headers: dict[str, str], source: str = "10.0.0.1") -> Any:
    return client.simulate_get(f"{BASE}/tasks", params={"namespace": "limits"}, headers=headers, remote_addr=source)


def test_past_the_bound_a_source_gets_429_with_retry_after_and_no_password_is_checked(
        client: testing.TestClient, clock: Clock) -> None:
    for n in range(20):
        assert_problem(get(client, basic(f"nobody-{n}", "wrong")), 401, "unauthorized")
    before = CountingHasher.verifications
    refused = get(client, basic("limit-user", "right-password-1"))  # never verified here: it would cost argon2
    assert_problem(refused, 429, "too-many-failed-logins")
    assert refused.headers["Retry-After"] == "60"
    assert_problem(get(client, {"Authorization": "Bearer not-a-token"}), 429, "too-many-failed-logins")
    assert_problem(get(client, {"Authorization": "Basic !!"}), 429, "too-many-failed-logins")
    assert CountingHasher.verifications == before
    clock.now += 30
    assert get(client, basic("nobody", "x")).headers["Retry-After"] == "30"
    clock.now += 30.5
    assert get(client, basic("limit-user", "right-password-1")).status_code == 200
    assert CountingHasher.verifications == before + 1


def test_a_client_whose_password_was_verified_keeps_working_through_a_flood_from_its_address(
        client: testing.TestClient, accounts_token: str) -> None:
    assert get(client, basic("limit-user", "right-password-1")).status_code == 200
    for n in range(30):  # its own name's bound and its address's bound are both reached
        assert get(client, basic("limit-user" if n % 2 else f"nobody-{n}", f"wrong-{n}")).status_code in (401, 429)
    assert get(client, basic("limit-user", "wrong")).status_code == 429
    before = CountingHasher.verifications
    assert get(client, basic("limit-user", "right-password-1")).status_code == 200
    assert get(client, {"Authorization": f"Bearer {accounts_token}"}).status_code == 200
    assert CountingHasher.verifications == before
    assert get(client, basic("limit-other", "right-password-2")).status_code == 429  # would need argon2


def test_guessing_one_users_password_from_many_sources_is_limited_by_name(client: testing.TestClient) -> None:
    for n in range(10):
        assert_problem(get(client, basic("limit-user", f"guess-{n}"), source=f"10.1.0.{n}"), 401)
    refused = get(client, basic("limit-user", "right-password-1"), source="10.1.0.99")
    assert_problem(refused, 429, "too-many-failed-logins")
    assert int(refused.headers["Retry-After"]) > 0
    assert get(client, basic("limit-other", "right-password-2"), source="10.1.0.99").status_code == 200


def test_successful_logins_do_not_count(client: testing.TestClient) -> None:
    for _ in range(40):
        assert get(client, basic("limit-user", "right-password-1")).status_code == 200


def test_the_source_is_the_peer_unless_the_peer_is_a_trusted_proxy() -> None:
    limiter = LoginLimiter(trusted_proxies=frozenset({"127.0.0.1", "10.9.9.9"}))

    def source(peer: str, forwarded: str | None) -> str:
        headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
        return limiter.source_of(testing.create_req(remote_addr=peer, headers=headers))

    assert source("192.0.2.7", "198.51.100.1") == "192.0.2.7"  # a client cannot pick its own address
    assert source("127.0.0.1", "198.51.100.1") == "198.51.100.1"
    assert source("127.0.0.1", "203.0.113.5, 198.51.100.1, 10.9.9.9") == "198.51.100.1"
    assert source("127.0.0.1", None) == "127.0.0.1"


def test_old_failures_leave_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_source=3, per_name=100, window=10.0, clock=clock)
    for _ in range(3):
        limiter.failed("s", None)
        clock.now += 1
    assert limiter.wait("s", None) == pytest.approx(7.0)
    clock.now += 7
    assert limiter.wait("s", None) == 0.0


def test_the_limiter_forgets_the_oldest_keys_past_its_size() -> None:
    limiter = LoginLimiter(per_source=1, max_keys=100)
    for n in range(1000):
        limiter.failed(f"source-{n}", None)
    assert limiter.wait("source-999", None) > 0
    assert limiter.wait("source-0", None) == 0.0
