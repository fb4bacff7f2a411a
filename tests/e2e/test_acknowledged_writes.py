"""Nothing acknowledged is lost: writers under SIGKILLs of gunicorn workers and of the whole `serve` tree.

Four clients create tasks as fast as they are answered. Meanwhile gunicorn workers are SIGKILLed one at a
time, then `serve`'s whole process group, and `serve` is started again on the same database and port. Every
task a client got a 201 for must then be readable, no answer may have been a 500, and `taskledger verify`
must find the projections equal to the replay of the log.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import requests

from bench.services import free_port

pytestmark = pytest.mark.e2e

WRITERS = 4
WORKER_KILLS = 3


class Serve:
    """`taskledger serve` on a given database, in a session of its own (its group can be killed)."""

    def __init__(self, home: Path, port: int, database_url: str, password: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
        env.update(TASKLEDGER_HOME=str(home), TASKLEDGER_PORT=str(port), TASKLEDGER_DATABASE_URL=database_url,
                   TASKLEDGER_ADMIN_PASSWORD=password, TASKLEDGER_WORKERS="2")
        self.env, self.home, self.port = env, home, port
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        log = (self.home / "serve.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "taskledger.cli", "serve"], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def restart(self) -> None:
        self.process = self._start()

    def wait_ready(self, budget: float = 90.0) -> None:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        tail = (self.home / "serve.log").read_text(errors="replace").splitlines()[-30:]
        raise AssertionError("serve did not get ready:\n" + "\n".join(tail))

    def workers(self) -> list[psutil.Process]:
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "gunicorn" in " ".join(child.cmdline()) and child.parent().pid != self.process.pid:
                    found.append(child)  # a worker: its parent is the gunicorn master, not serve
        return found

    def kill_tree(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def serve(new_database: Callable[[], str]) -> Iterator[tuple[Serve, str]]:
    password = secrets.token_urlsafe(12)
    database_url = new_database()
    with tempfile.TemporaryDirectory(prefix="taskledger-ack-") as home:
        service = Serve(Path(home), free_port(), database_url, password)
        try:
            service.wait_ready()
            yield service, database_url
        finally:
            service.stop()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGKILL)


def _writer(base: str, auth: tuple[str, str], stop: threading.Event, acknowledged: list[str],
            statuses: dict[int, int], lock: threading.Lock) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        try:
            answer = requests.post(f"{base}/ledger/v1/tasks", auth=auth, timeout=10,
                                   json={"namespace": "acknowledged", "name": f"{threading.get_ident()}-{n}"})
        except requests.RequestException:  # a killed worker or a restarting service: not acknowledged
            stop.wait(0.05)
            continue
        with lock:
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 201:
                acknowledged.append(answer.json()["id"])


def test_every_acknowledged_write_survives_worker_and_whole_tree_kills(serve: tuple[Serve, str]) -> None:
    service, database_url = serve
    base, auth = f"http://127.0.0.1:{service.port}", ("admin", service.env["TASKLEDGER_ADMIN_PASSWORD"])
    stop, lock = threading.Event(), threading.Lock()
    acknowledged: list[str] = []
    statuses: dict[int, int] = {}
    writers = [threading.Thread(target=_writer, args=(base, auth, stop, acknowledged, statuses, lock), daemon=True)
               for _ in range(WRITERS)]
    for thread in writers:
        thread.start()
    try:
        for _ in range(WORKER_KILLS):
            time.sleep(1.5)
            workers = service.workers()
            assert workers, "no gunicorn worker found"
            workers[0].kill()
        time.sleep(1.5)
        service.kill_tree()
        time.sleep(0.5)
        service.restart()
        service.wait_ready()
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=15)
    print(f"acknowledged {len(acknowledged)}; answers {statuses}")
    assert len(acknowledged) > 50, statuses
    assert not any(status >= 500 and status != 503 for status in statuses), statuses

    missing = [task for task in acknowledged if not _readable(base, auth, task)]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged tasks are gone, e.g. {missing[:3]}"
    verified = subprocess.run([sys.executable, "-m", "taskledger.cli", "verify"], env=service.env,
                              capture_output=True, text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]


def _readable(base: str, auth: tuple[str, str], task: str, budget: float = 30.0) -> bool:
    """The task answers 200 once the projections caught up (a restart replays what they had not applied)."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/ledger/v1/tasks/{task}", auth=auth, timeout=5).status_code == 200:
                return True
        time.sleep(0.2)
    return False
