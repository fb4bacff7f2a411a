"""Fixtures of the facade tests: the whole API served over real HTTP, so real clients can talk to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from api.app import create_app
from api.auth import LoginLimiter
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger.accounts import PostgresAccounts

USERS = {"admin": ("fac-admin", "admin-secret-pw"), "operator": ("fac-operator", "operator-secret-pw"),
         "worker": ("fac-worker", "worker-secret-pw"), "viewer": ("fac-viewer", "viewer-secret-pw")}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the stdlib's name
        pass


@pytest.fixture(scope="session")
def facade_accounts(database_url: str) -> Iterator[PostgresAccounts]:
    store = PostgresAccounts(database_url)
    store.open()
    for role, (name, password) in USERS.items():
        store.create_user(name, password, role)
    yield store
    store.close()


@pytest.fixture(scope="session")
def server(ledger_app: TaskLedger, queries: PostgresTaskView, facade_accounts: PostgresAccounts,
           projections_running: Any) -> Iterator[str]:
    """Base URL (http://127.0.0.1:PORT) of the full API, facades included, on a threaded WSGI server."""
    app = create_app(ledger_app, queries, facade_accounts, min_position_wait=5.0,
                     limiter=LoginLimiter(per_source=10**6, per_name=10**6))  # defaults: test_login_limits.py
    httpd = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def admin_auth() -> tuple[str, str]:
    return USERS["admin"]
