"""A long poll whose client went away frees its slot: one user's bound is not held by abandoned polls.

Its own module: the service of tests/e2e/test_slow_clients.py is stopped first (a shared PostgreSQL has room
for the connection budget of one service at a time beside the test session's own).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from bench.attacks import Target, prepare
from bench.services import free_port, start_service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory,
               new_database: Callable[[], str]) -> Iterator[tuple[Target, str]]:
    """One gunicorn worker, so that one user's long polls all meet the same per-worker bound."""
    home, database_url = tmp_path_factory.mktemp("one-worker"), new_database()
    port, password = free_port(), secrets.token_urlsafe(12)
    process = start_service(home, port, database_url, password, {"TASKLEDGER_WORKERS": "1"}, home)
    try:
        process.wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=120)
        target = Target("127.0.0.1", port, ("admin", password))
        _, presto_task = prepare(target)
        yield target, presto_task
    finally:
        process.stop()


def _poll(target: Target, presto_task: str, wait: str) -> socket.socket:
    conn = socket.create_connection((target.host, target.port), timeout=10)
    conn.sendall(f"GET /v1/task/{presto_task}/status HTTP/1.1\r\nHost: x\r\nAuthorization: {target.basic()}\r\n"
                 f"X-Presto-Current-State: PLANNED\r\nX-Presto-Max-Wait: {wait}\r\nConnection: close\r\n\r\n".encode())
    return conn


def test_a_long_poll_whose_client_left_frees_its_slot_at_once(one_worker: tuple[Target, str]) -> None:
    target, presto_task = one_worker
    abandoned = [_poll(target, presto_task, "60s") for _ in range(8)]  # the user's whole bound, then gone
    time.sleep(0.5)
    for conn in abandoned:
        conn.close()
    time.sleep(0.5)  # a waiting poll looks every 200 ms
    began = time.monotonic()
    with _poll(target, presto_task, "2s") as conn:
        answer = conn.recv(65536)
    waited = time.monotonic() - began
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    # Granted a slot, it waits its 2 s; with the 8 abandoned polls still counted it would answer at once.
    assert waited >= 1.5, f"answered after {waited:.2f} s: the abandoned polls still held the user's slots"
