"""`taskledger tasks …` against `taskledger serve`: list, show, actions, watch, errors (issue 12, part 2).

The CLI runs as a subprocess with stdin and stdout not a terminal, as in a script or a pipe.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.services import Process, free_port, start_service

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b"


@dataclass(frozen=True)
class Service:
    url: str
    password: str
    viewer_password: str

    def http(self) -> requests.Session:
        session = requests.Session()
        session.auth = ("admin", self.password)
        return session

    def env(self, user: str = "admin") -> dict[str, str]:
        password = self.password if user == "admin" else self.viewer_password
        return {"TASKLEDGER_URL": self.url, "TASKLEDGER_USER": user, "TASKLEDGER_PASSWORD": password}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]) -> Iterator[Service]:
    home, database_url = tmp_path_factory.mktemp("tasks-cli"), new_database()
    port, password = free_port(), secrets.token_urlsafe(12)
    process: Process = start_service(home, port, database_url, password, {"TASKLEDGER_WORKERS": "2"}, home)
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_http_ok(f"{url}/readyz", timeout=120)
        viewer_password = secrets.token_urlsafe(12)
        made = requests.post(f"{url}/ledger/v1/users", auth=("admin", password), timeout=30,
                             json={"name": "viewer", "password": viewer_password, "role": "viewer"})
        assert made.status_code == 201, made.text
        yield Service(url, password, viewer_password)
    finally:
        process.stop()


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
    return {**env, **extra}


def _cli(service: Service, *args: str, user: str = "admin", **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "taskledger", "tasks", *args], cwd=ROOT,
                          env=_env({**service.env(user), **variables}), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def _create(service: Service, namespace: str, count: int, **fields: Any) -> list[str]:
    """Tasks, created in order; returns once the task view holds them all."""
    ids, position = [], 0
    with service.http() as http:
        for i in range(count):
            answer = http.post(f"{service.url}/ledger/v1/tasks", timeout=30,
                               json={"namespace": namespace, "name": f"job-{i}", "labels": {"batch": "b1"}, **fields})
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
            position = max(position, int(answer.headers["Ledger-Position"]))
        _wait_for(service, position)
    return ids


def _wait_for(service: Service, position: int) -> None:
    with service.http() as http:
        answer = http.get(f"{service.url}/ledger/v1/tasks", params={"limit": "1"}, timeout=30,
                          headers={"Ledger-Min-Position": str(position)})
        assert answer.status_code == 200, answer.text


def _api_list(service: Service, params: list[tuple[str, str]]) -> dict[str, Any]:
    with service.http() as http:
        answer = http.get(f"{service.url}/ledger/v1/tasks", params=params, timeout=30)
        assert answer.status_code == 200, answer.text
        page: dict[str, Any] = answer.json()
        return page


def _state(service: Service, task_id: str, expected: str) -> str:
    """The task's state as the API shows it, once it is `expected` (the view follows the log within ms)."""
    deadline, state = time.monotonic() + 10, ""
    with service.http() as http:
        while time.monotonic() < deadline:
            state = http.get(f"{service.url}/ledger/v1/tasks/{task_id}", timeout=30).json()["state"]
            if state == expected:
                break
            time.sleep(0.05)
    return state


def _claim(service: Service, namespace: str) -> dict[str, Any]:
    with service.http() as http:
        answer = http.post(f"{service.url}/ledger/v1/claims", json={"worker": "w-1", "namespace": namespace},
                           timeout=30)
        assert answer.status_code == 200, answer.text
        claimed: dict[str, Any] = answer.json()
        return claimed


def _namespace() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def test_list_json_is_exactly_the_apis_page(service: Service) -> None:
    namespace = _namespace()
    _create(service, namespace, 3)

    done = _cli(service, "list", "--namespace", namespace, "--label", "batch:b1", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _api_list(service, [("namespace", namespace), ("label", "batch:b1")])
    paged = _cli(service, "list", "--namespace", namespace, "--state", "QUEUED", "--limit", "2",
                 "--sort=-created_at", "--output", "json")
    assert paged.returncode == 0, paged.stderr
    page = json.loads(paged.stdout)
    assert page == _api_list(service, [("namespace", namespace), ("state", "QUEUED"), ("sort", "-created_at"),
                                       ("limit", "2")])
    assert (len(page["items"]), page["total"], page["total_is_estimate"]) == (2, 3, False)
    assert page["next_cursor"]

    refused = _cli(service, "list", "--all", "--output", "json")
    assert refused.returncode == 2 and "--output jsonl --all" in refused.stderr, refused.stderr


def test_jsonl_all_follows_the_cursor_and_yields_each_task_once(service: Service) -> None:
    namespace = _namespace()
    ids = _create(service, namespace, 12)

    every = _cli(service, "list", "--namespace", namespace, "--limit", "5", "--all", "--output", "jsonl")
    assert every.returncode == 0, every.stderr
    listed = [json.loads(line)["id"] for line in every.stdout.splitlines()]
    assert listed == ids  # creation order, each once
    one_page = _cli(service, "list", "--namespace", namespace, "--limit", "5", "--output", "jsonl")
    assert [json.loads(line)["id"] for line in one_page.stdout.splitlines()] == ids[:5]
    table = _cli(service, "list", "--namespace", namespace, "--limit", "5", "--all")
    assert table.returncode == 0, table.stderr
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == ids
    assert table.stderr.strip() == "12 tasks"


def test_a_table_on_a_pipe_is_plain_aligned_text_with_the_full_ids(service: Service) -> None:
    namespace = _namespace()
    name = "a [bold]name[/bold] that is much longer than forty characters, so cut"  # not rich markup either
    ids = _create(service, namespace, 3, name=name)

    for colour in ({}, {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}):  # rich honours these: not here
        done = _cli(service, "list", "--namespace", namespace, **colour)
        assert done.returncode == 0, done.stderr
        assert ESC not in done.stdout + done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split() == ["ID", "STATE", "NAMESPACE", "NAME", "PROGRESS", "WORKER", "UPDATED"]
        assert [line.split()[0] for line in lines[1:]] == ids
        assert all(f"{i}  QUEUED  " in line for i, line in zip(ids, lines[1:], strict=True))
        assert all(f"  {name[:39]}…  " in line for line in lines[1:])  # cut at 40 characters
        assert len({line.index("QUEUED") for line in lines[1:]}) == 1  # aligned
        assert not any(set(line) & set("─━│┃┌┏") or line != line.rstrip() for line in lines)
        assert done.stderr == "3 of 3 tasks\n"


def test_show_has_the_task_and_its_last_events(service: Service) -> None:
    namespace = _namespace()
    (task_id,) = _create(service, namespace, 1)
    claimed = _claim(service, namespace)
    with service.http() as http:
        progress = http.post(f"{service.url}/ledger/v1/tasks/{task_id}/progress", timeout=30,
                             json={"lease_epoch": claimed["lease_epoch"], "progress": 42.5, "message": "halfway"})
        assert progress.status_code == 200, progress.text
        _wait_for(service, progress.json()["position"])
        task = http.get(f"{service.url}/ledger/v1/tasks/{task_id}", timeout=30).json()
        events = http.get(f"{service.url}/ledger/v1/tasks/{task_id}/events", timeout=30).json()["events"]
    assert [e["type"] for e in events] == ["Created", "Started", "ProgressReported"]

    shown = _cli(service, "show", task_id)
    assert shown.returncode == 0, shown.stderr
    assert ESC not in shown.stdout
    for expected in (f"id              {task_id}", "state           RUNNING", "progress        42%  halfway",
                     "worker          w-1 (lease 1)", "labels          batch=b1", "all 3 events:"):
        assert expected in shown.stdout, shown.stdout
    timeline = shown.stdout.split("all 3 events:\n")[1].splitlines()
    assert timeline[0].split() == ["VERSION", "TIME", "(UTC)", "TYPE", "ACTOR", "DATA"]
    assert [line.split()[0] + " " + line.split()[3] for line in timeline[1:]] == [
        "1 Created", "2 Started", "3 ProgressReported"]
    assert "progress=42.5 message=halfway" in timeline[3]

    as_json = _cli(service, "show", task_id, "--output", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"task": task, "events": events}
    last = _cli(service, "show", task_id, "--output", "json", "--events", "1")
    assert json.loads(last.stdout)["events"] == events[-1:]
    two = _cli(service, "show", task_id, "--events", "2")
    assert "the last 2 of 3 events:" in two.stdout and "Created" not in two.stdout.split("events:")[1]
    none = _cli(service, "show", task_id, "--output", "json", "--events", "0")
    assert json.loads(none.stdout)["events"] == []


def test_pause_resume_cancel_change_the_state_and_a_refusal_exits_1(service: Service) -> None:
    namespace = _namespace()
    task_id, other = _create(service, namespace, 2)

    refused = _cli(service, "resume", task_id)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(f"{task_id}: 409 illegal-transition: ") and "QUEUED" in refused.stderr

    paused = _cli(service, "pause", task_id, "--reason", "disk full")
    assert (paused.returncode, paused.stdout, paused.stderr) == (0, f"{task_id}: paused (version 2)\n", "")
    assert _state(service, task_id, "PAUSED") == "PAUSED"
    with service.http() as http:
        events = http.get(f"{service.url}/ledger/v1/tasks/{task_id}/events", timeout=30).json()["events"]
    assert (events[-1]["type"], events[-1]["data"]["reason"]) == ("Paused", "disk full")
    resumed = _cli(service, "resume", task_id)
    assert (resumed.returncode, resumed.stdout) == (0, f"{task_id}: resumed, queued again (version 3)\n")
    assert _state(service, task_id, "QUEUED") == "QUEUED"
    cancelled = _cli(service, "cancel", task_id)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"{task_id}: cancelled (version 4)\n")
    assert _state(service, task_id, "CANCELLED") == "CANCELLED"

    # One request per id, in order; a refused one does not stop the others.
    both = _cli(service, "pause", task_id, other)
    assert both.returncode == 1
    assert both.stdout == f"{other}: paused (version 2)\n"
    assert both.stderr.startswith(f"{task_id}: 409 illegal-transition: ") and len(both.stderr.splitlines()) == 1
    assert _state(service, other, "PAUSED") == "PAUSED"
    aborted = _cli(service, "abort", other, "--reason", "stuck")
    assert (aborted.returncode, aborted.stdout) == (0, f"{other}: aborted (version 3)\n")
    (queued,) = _create(service, namespace, 1)
    unended = _cli(service, "drop", queued)
    assert unended.returncode == 1 and "409 illegal-transition" in unended.stderr, unended.stderr
    forced = _cli(service, "drop", queued, "--force")
    assert (forced.returncode, forced.stdout) == (0, f"{queued}: dropped\n")
    dropped = _cli(service, "drop", task_id, other)
    assert (dropped.returncode, dropped.stdout) == (0, f"{task_id}: dropped\n{other}: dropped\n")
    gone = _cli(service, "show", task_id)
    assert gone.returncode == 1 and "410 task-dropped" in gone.stderr, gone.stderr


def test_cancel_of_a_running_task_says_it_is_cancelling(service: Service) -> None:
    namespace = _namespace()
    (task_id,) = _create(service, namespace, 1)
    _claim(service, namespace)

    done = _cli(service, "cancel", task_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{task_id}: cancelling: its worker is told to stop at its next heartbeat (version 3)\n"
    assert _state(service, task_id, "CANCELLING") == "CANCELLING"


def test_an_unknown_id_exits_1(service: Service) -> None:
    unknown = str(uuid.uuid4())
    shown = _cli(service, "show", unknown)
    assert (shown.returncode, shown.stdout) == (1, "")
    assert shown.stderr == f"taskledger tasks show: 404 task-not-found: task {unknown} does not exist\n"
    paused = _cli(service, "pause", unknown)
    assert paused.returncode == 1 and paused.stderr.startswith(f"{unknown}: 404 task-not-found"), paused.stderr
    malformed = _cli(service, "show", "nope")
    assert malformed.returncode == 1 and "'nope' is not a task id" in malformed.stderr, malformed.stderr


def test_errors_are_one_line_saying_what_to_do(service: Service) -> None:
    (task_id,) = _create(service, _namespace(), 1)
    for args in (("list",), ("show", task_id), ("pause", task_id), ("watch", "--count", "1")):
        unreachable = _cli(service, *args, TASKLEDGER_URL="http://127.0.0.1:1")
        assert unreachable.returncode == 2, (args, unreachable.stderr)
        assert len(unreachable.stderr.splitlines()) == 1 and "Traceback" not in unreachable.stderr
        assert "cannot reach http://127.0.0.1:1 (Connection refused); is the service running?" in unreachable.stderr
        assert "--url" in unreachable.stderr and "TASKLEDGER_URL" in unreachable.stderr
    flag = subprocess.run([sys.executable, "-m", "taskledger", "tasks", "list", "--url", "http://127.0.0.1:1"],
                          cwd=ROOT, env=_env(service.env()), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert flag.returncode == 2 and "cannot reach http://127.0.0.1:1" in flag.stderr, flag.stderr

    wrong = _cli(service, "list", TASKLEDGER_PASSWORD="wrong-password")
    assert wrong.returncode == 1 and "401" in wrong.stderr and "TASKLEDGER_PASSWORD" in wrong.stderr, wrong.stderr
    viewer = _cli(service, "pause", task_id, user="viewer")
    assert viewer.returncode == 1 and "403" in viewer.stderr and "operator" in viewer.stderr, viewer.stderr
    assert _cli(service, "list", "--namespace", "x", user="viewer").returncode == 0  # viewers may read
    nobody = subprocess.run([sys.executable, "-m", "taskledger", "tasks", "list"], cwd=ROOT,
                            env=_env({"TASKLEDGER_URL": service.url}), capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert nobody.returncode == 2 and "--user" in nobody.stderr and "--token" in nobody.stderr, nobody.stderr
    bad = _cli(service, "list", "--name-contains", "ab")
    assert bad.returncode == 1 and "400" in bad.stderr and "name_contains" in bad.stderr, bad.stderr
    argument = _cli(service, "list", "--limit", "501")
    assert argument.returncode == 2 and "see `taskledger tasks list --help`" in argument.stderr, argument.stderr


def test_a_token_works_as_well(service: Service) -> None:
    with service.http() as http:
        token = http.post(f"{service.url}/ledger/v1/tokens", json={"label": "cli"}, timeout=30).json()["token"]
    done = subprocess.run([sys.executable, "-m", "taskledger", "tasks", "list", "--output", "json"], cwd=ROOT,
                          env=_env({"TASKLEDGER_URL": service.url, "TASKLEDGER_TOKEN": token}),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "items" in json.loads(done.stdout)


def test_watch_prints_the_table_once_per_refresh(service: Service) -> None:
    namespace = _namespace()
    ids = _create(service, namespace, 2)

    done = _cli(service, "watch", "--namespace", namespace, "--count", "2", "--interval", "0.2")
    assert done.returncode == 0, done.stderr
    assert ESC not in done.stdout
    refreshes = done.stdout.rstrip("\n").split("\n\n")
    assert len(refreshes) == 2
    for refresh in refreshes:
        head, header, *rows = refresh.splitlines()
        assert head.endswith(f"UTC  2 of 2 tasks  (namespace={namespace})")
        assert header.split()[0] == "ID" and [row.split()[0] for row in rows] == ids


def test_ctrl_c_ends_watch_with_exit_code_0(service: Service) -> None:
    watching = subprocess.Popen([sys.executable, "-m", "taskledger", "tasks", "watch", "--interval", "0.2"],
                                cwd=ROOT, env=_env(service.env()), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, stdin=subprocess.DEVNULL)
    try:
        assert watching.stdout is not None
        for line in iter(watching.stdout.readline, ""):
            if line.startswith("ID"):
                break  # the first refresh is out: the handlers are in place
        watching.send_signal(signal.SIGINT)
        out, err = watching.communicate(timeout=30)
    finally:
        watching.kill()
    assert watching.returncode == 0, err
    assert "Traceback" not in err


def test_version_and_python_dash_m() -> None:
    version = subprocess.run([sys.executable, "-m", "taskledger", "--version"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert (version.returncode, version.stdout) == (0, f"taskledger {importlib.metadata.version('taskledger')}\n")
    helped = subprocess.run([sys.executable, "-m", "taskledger", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0
    assert "taskledger tasks list --state RUNNING" in helped.stdout and "    tasks " in helped.stdout
