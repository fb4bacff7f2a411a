"""TASKLEDGER_LOG_FORMAT=json: every line `taskledger serve` and the role processes write is one JSON object in
one format, and gunicorn's access log names each request's id and its authenticated user."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from bench.services import Process, start_service

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
COMMON = {"time", "level", "logger", "message", "pid"}
ACCESS = {"method", "path", "status", "duration_ms", "request_id", "user", "remote"}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
JSON_LOGS = {"TASKLEDGER_LOG_FORMAT": "json", "TASKLEDGER_ACCESS_LOG": "-", "TASKLEDGER_WORKERS": "1",
             "TASKLEDGER_POOL_SIZE": "2"}


def _port() -> int:
    """A free port of this test's range (18150-18199)."""
    for port in range(18150, 18200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18150-18199")


def _records(text: str, source: str) -> list[dict[str, Any]]:
    """Every line as a JSON object in the one format; a line that is not fails the test, naming it."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{source} line {number} is not JSON: {line!r}")
        assert isinstance(record, dict) and COMMON <= set(record), f"{source} line {number}: {line!r}"
        assert ISO_UTC.fullmatch(record["time"]), record
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), record
        records.append(record)
    return records


def _roles(env: dict[str, str], database_url: str, tmp: Path) -> dict[str, tuple[int, str]]:
    """`taskledger project`, `schedule` and `watchdog` as their own processes (DEBUG, so they say what they can),
    stopped by SIGTERM once each is connected: the exit code and what each wrote on stdout and stderr."""
    started = {}
    for role in (["project"], ["schedule", "--interval", "0.2"], ["watchdog", "--interval", "0.2"]):
        out = open(tmp / f"{role[0]}.log", "wb")
        started[role[0]] = (out, subprocess.Popen([sys.executable, "-m", "taskledger", *role], cwd=ROOT, env=env,
                                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    deadline, names = time.monotonic() + 90, {f"taskledger-{role}" for role in started}
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            seen = {r[0] for r in conn.execute("SELECT application_name FROM pg_stat_activity WHERE datname = "
                                               "current_database()")}
            if names <= seen:
                break
            time.sleep(0.2)
    assert names <= seen, f"the roles did not connect: {sorted(names - seen)}"
    time.sleep(1.5)  # past the signal handlers, into the roles' loops
    for out, process in started.values():
        process.send_signal(signal.SIGTERM)
    for out, process in started.values():
        process.wait(timeout=30)
        out.close()
    return {name: (process.returncode, (tmp / f"{name}.log").read_text()) for name, (_, process) in started.items()}


def test_every_line_of_the_service_and_the_roles_is_json_and_the_access_log_has_request_id_and_user(
        tmp_path: Path, new_database: Callable[[], str]) -> None:
    database_url, password, alice = new_database(), secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    port = _port()
    process: Process = start_service(tmp_path / "home", port, database_url, password, JSON_LOGS, tmp_path)
    url = f"http://127.0.0.1:{port}"
    ids = {what: f"obs-{what}-{uuid.uuid4().hex[:8]}" for what in ("create", "list", "facade", "anonymous")}
    try:
        process.wait_http_ok(f"{url}/readyz", timeout=120)
        made = requests.post(f"{url}/ledger/v1/users", auth=("admin", password), timeout=30,
                             json={"name": "alice", "password": alice, "role": "operator"})
        assert made.status_code == 201, made.text
        created = requests.post(f"{url}/ledger/v1/tasks", auth=("alice", alice), timeout=30,
                                headers={"X-Request-Id": ids["create"]}, json={"namespace": "logs", "name": "job"})
        assert created.status_code == 201 and created.headers["X-Request-Id"] == ids["create"], created.text
        listed = requests.get(f"{url}/ledger/v1/tasks", auth=("admin", password), timeout=30,
                              params={"namespace": "logs"}, headers={"X-Request-Id": ids["list"]})
        assert listed.status_code == 200, listed.text
        facade = requests.get(f"{url}/graphs/hugegraph/tasks", auth=("alice", alice), timeout=30,
                              headers={"X-Request-Id": ids["facade"]})
        assert facade.status_code == 200, facade.text
        stalls = requests.post(f"{url}/ledger/v1/tasks", auth=("alice", alice), timeout=30,
                               json={"namespace": "stalls", "name": "job", "heartbeat_timeout": 0.5})
        assert stalls.status_code == 201, stalls.text
        claimed = requests.post(f"{url}/ledger/v1/claims", auth=("admin", password), timeout=30,
                                json={"worker": "w-1", "namespace": "stalls"})
        assert claimed.status_code == 200, claimed.text  # serve's watchdog expires it within seconds
        refused = requests.get(f"{url}/ledger/v1/tasks", timeout=30, headers={"X-Request-Id": ids["anonymous"]})
        assert refused.status_code == 401
        process.wait_ready_line(re.compile("expired without a heartbeat"), timeout=60)
    finally:
        process.stop()
    # Once serve stopped, so that `project` leads (and says so) instead of waiting for serve's runners.
    role_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
    role_env.update(JSON_LOGS, TASKLEDGER_DATABASE_URL=database_url, TASKLEDGER_HOME=str(tmp_path / "roles"),
                    TASKLEDGER_LOG_LEVEL="DEBUG")
    roles = _roles(role_env, database_url, tmp_path)

    records = _records(process.log_path.read_text(), "taskledger serve")
    access = {r["request_id"]: r for r in records if r["logger"] == "gunicorn.access"}
    for request_id in ids.values():
        assert ACCESS <= set(access[request_id]), access[request_id]
        assert access[request_id]["remote"] == "127.0.0.1" and access[request_id]["duration_ms"] >= 0
    assert {k: access[ids["create"]][k] for k in ("method", "path", "status", "user")} == {
        "method": "POST", "path": "/ledger/v1/tasks", "status": 201, "user": "alice"}
    assert access[ids["list"]]["user"] == "admin" and access[ids["list"]]["status"] == 200
    assert access[ids["facade"]]["user"] == "alice" and access[ids["facade"]]["path"] == "/graphs/hugegraph/tasks"
    assert access[ids["anonymous"]]["user"] is None and access[ids["anonymous"]]["status"] == 401
    assert access[ids["list"]]["message"] == '"GET /ledger/v1/tasks?namespace=logs HTTP/1.1" 200'
    loggers = {r["logger"] for r in records}
    # the serve process, its projection and role threads, gunicorn's master and its worker: all one format
    assert {"taskledger.serve", "projections.runner", "gunicorn.error", "gunicorn.access"} <= loggers
    assert any("serving at" in r["message"] for r in records if r["logger"] == "taskledger.serve")
    assert len({r["pid"] for r in records}) >= 3  # serve, the gunicorn master, a worker
    assert any(r["logger"] == "taskledger.watchdog" and "expired without a heartbeat" in r["message"]
               for r in records)
    for name, (code, text) in roles.items():
        assert code == 0, f"taskledger {name} ended with {code}: {text}"
        _records(text, f"taskledger {name}")
    assert any("leading" in r["message"] for r in _records(roles["project"][1], "taskledger project"))


def test_a_log_format_taskledger_does_not_know_is_refused_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
    env.update(TASKLEDGER_LOG_FORMAT="yaml", TASKLEDGER_HOME=str(tmp_path))
    ran = subprocess.run([sys.executable, "-m", "taskledger", "watchdog"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)

    assert ran.returncode == 2
    assert ran.stderr == ("taskledger: TASKLEDGER_LOG_FORMAT='yaml' is not one of text, json; fix it or unset it "
                          "(default text)\n")
