"""Slow and hostile clients against a running service, and a well-behaved client measured meanwhile.

Used by tests/e2e/test_slow_clients.py (a few seconds per attack) and by `python -m bench.slow_clients`
(longer, with the gthread worker class as the baseline). Every attack runs in threads of this process
until `stop` is set:

* slowloris: connections that send a header line every second and never finish the request;
* slow bodies: authenticated POSTs that announce a body and send it one byte a second;
* long polls: openLooKeng task-status polls waiting up to 60 s for a change that never comes;
* wrong passwords: as many Basic logins with wrong passwords as the server answers.
"""

from __future__ import annotations

import base64
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

ATTACKS = ("slowloris", "slow-bodies", "long-polls", "wrong-passwords")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    auth: tuple[str, str]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def basic(self, name: str | None = None, password: str | None = None) -> str:
        pair = f"{name or self.auth[0]}:{password or self.auth[1]}"
        return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass
class Outcome:
    """What the well-behaved client saw."""

    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.failures.values())

    @property
    def success(self) -> float:
        return len(self.latencies) / self.requests if self.requests else 0.0

    @property
    def p99(self) -> float:
        if len(self.latencies) < 2:
            return float("inf")
        return statistics.quantiles(self.latencies, n=100)[98]

    def line(self) -> str:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        return (f"{self.requests} requests, success {self.success:.2%}, p50 {statistics.median(self.latencies or [0]):.3f} s, "
                f"p99 {self.p99:.3f} s, failures: {failures}")


def well_behaved(target: Target, task_id: str, stop: threading.Event, pause: float = 0.02,
                 timeout: float = 5.0) -> Outcome:
    """Reads a task, then creates one, and again, each on a new connection; counts anything but 2xx as failed."""
    outcome = Outcome()
    headers = {"Authorization": target.basic()}
    n = 0
    while not stop.is_set():
        n += 1
        began = time.monotonic()
        try:
            if n % 4:
                answer = requests.get(f"{target.url}/ledger/v1/tasks/{task_id}", headers=headers, timeout=timeout)
            else:
                answer = requests.post(f"{target.url}/ledger/v1/tasks", headers=headers, timeout=timeout,
                                       json={"namespace": "well-behaved", "name": f"t{n}", "type": "probe"})
            ok, kind = answer.status_code < 300, f"http {answer.status_code}"
        except requests.RequestException as error:
            ok, kind = False, type(error).__name__
        if ok:
            outcome.latencies.append(time.monotonic() - began)
        else:
            outcome.failures[kind] = outcome.failures.get(kind, 0) + 1
        stop.wait(pause)
    return outcome


def slowloris(target: Target, stop: threading.Event) -> None:
    """One connection that never finishes its request headers (reopened when the server closes it)."""
    while not stop.is_set():
        try:
            with socket.create_connection((target.host, target.port), timeout=5) as conn:
                conn.sendall(b"GET /ledger/v1/tasks HTTP/1.1\r\nHost: x\r\n")
                while not stop.wait(1.0):
                    conn.sendall(b"X-Slow: 1\r\n")
        except OSError:
            stop.wait(0.2)


def slow_body(target: Target, stop: threading.Event) -> None:
    """One authenticated POST whose 100 kB body arrives one byte a second."""
    head = (f"POST /ledger/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: {target.basic()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n").encode()
    while not stop.is_set():
        try:
            with socket.create_connection((target.host, target.port), timeout=5) as conn:
                conn.sendall(head + b"{")
                while not stop.wait(1.0):
                    conn.sendall(b" ")
        except OSError:
            stop.wait(0.2)


def long_poll(target: Target, stop: threading.Event, presto_task: str) -> None:
    """openLooKeng status polls for a change that never comes, each waiting up to 60 s, again and again."""
    request = (f"GET /v1/task/{presto_task}/status HTTP/1.1\r\nHost: x\r\nAuthorization: {target.basic()}\r\n"
               f"X-Presto-Current-State: PLANNED\r\nX-Presto-Max-Wait: 60s\r\nConnection: close\r\n\r\n").encode()
    while not stop.is_set():
        try:
            with socket.create_connection((target.host, target.port), timeout=5) as conn:
                conn.sendall(request)
                conn.settimeout(0.5)
                while not stop.is_set():  # until the answer (at the latest after 60 s) or the attack ends
                    try:
                        if not conn.recv(65536):
                            break
                    except TimeoutError:
                        continue
        except OSError:
            stop.wait(0.2)


def wrong_password(target: Target, stop: threading.Event) -> None:
    """Basic logins with a new wrong password each time, as fast as they are answered."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            requests.get(f"{target.url}/ledger/v1/tasks/x", timeout=5,
                         headers={"Authorization": target.basic(password=f"guess-{n}")})
        except requests.RequestException:
            stop.wait(0.05)


def prepare(target: Target) -> tuple[str, str]:
    """A native task to read and an openLooKeng task to poll; the client's credentials verified in every worker."""
    headers = {"Authorization": target.basic()}
    created = requests.post(f"{target.url}/ledger/v1/tasks", headers=headers, timeout=30,
                            json={"namespace": "well-behaved", "name": "read-me", "type": "probe"})
    created.raise_for_status()
    presto_task = f"20260101_000000_{int(time.time() * 1000) % 100000:05d}_slow.1.0"
    update = {"session": {"queryId": presto_task.split(".")[0], "user": "bench"}, "sources": [],
              "outputIds": {"type": "PARTITIONED", "version": 0, "noMoreBufferIds": True, "buffers": {}}}
    made = requests.post(f"{target.url}/v1/task/{presto_task}", headers=headers, timeout=30, json=update)
    made.raise_for_status()
    for _ in range(60):  # new connections land on every worker: each verifies the password once
        requests.get(f"{target.url}/ledger/v1/tasks/{created.json()['id']}", headers=headers, timeout=30)
    return created.json()["id"], presto_task


def recover(target: Target, task_id: str, timeout: float = 75.0) -> float:
    """Seconds until the well-behaved client's reads succeed 5 times in a row (at most `timeout`): what an attack
    leaves behind on the server (a long poll waits up to 60 s after its client left) must not count against the
    next measurement."""
    began = time.monotonic()
    headers = {"Authorization": target.basic()}
    streak = 0
    while streak < 5 and time.monotonic() - began < timeout:
        try:
            answer = requests.get(f"{target.url}/ledger/v1/tasks/{task_id}", headers=headers, timeout=2)
            streak = streak + 1 if answer.status_code < 300 else 0
        except requests.RequestException:
            streak = 0
        time.sleep(0.05)
    return time.monotonic() - began


def run_attack(target: Target, attack: str, task_id: str, presto_task: str, seconds: float,
               clients: int = 16, settle: float = 1.0) -> Outcome:
    """The well-behaved client's outcome while `clients` attackers of one kind run (they start `settle` s before)."""
    stop = threading.Event()
    workers: dict[str, Callable[[], None]] = {
        "slowloris": lambda: slowloris(target, stop),
        "slow-bodies": lambda: slow_body(target, stop),
        "long-polls": lambda: long_poll(target, stop, presto_task),
        "wrong-passwords": lambda: wrong_password(target, stop),
    }
    attackers = [threading.Thread(target=workers[attack], daemon=True) for _ in range(clients)]
    for thread in attackers:
        thread.start()
    time.sleep(settle)
    done = threading.Event()
    timer = threading.Timer(seconds, done.set)
    timer.start()
    try:
        outcome = well_behaved(target, task_id, done)
    finally:
        stop.set()
        timer.cancel()
    deadline = time.monotonic() + 10
    for thread in attackers:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return outcome
