"""audit and replay answer from the event store exactly as the API's history does, dropped tasks included."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.representations import TaskSchema, task_doc
from ledger import commands as c
from ledger.application import TaskLedger
from taskledger.tools.audit import BOOKKEEPING, timeline
from taskledger.tools.replay import replay
from taskledger.tools.store import ToolError
from tests.projections.helpers import drive
from tests.scripts.conftest import CLI

WHO = c.Caller("auditor-test", "req-audit", "native")


def _finished_and_dropped(app: TaskLedger, namespace: str, external_id: str | None = None) -> UUID:
    task_id = app.create_task(c.CreateTask(namespace, "nightly", external_id=external_id, steps=("a",)), WHO).task_id
    epoch = app.start_task(c.StartTask(task_id, "w1"), WHO).lease_epoch or 0
    app.record_heartbeat(c.RecordHeartbeat(task_id, epoch, 40.0, "halfway", {"rows": 7}), WHO)
    app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 14}), WHO)
    app.drop_task(c.DropTask(task_id), WHO)
    return task_id


def test_audit_lists_every_event_as_the_api_history_describes_it(ledger_app: TaskLedger, database_url: str,
                                                                 namespace: str) -> None:
    for task_id in drive(ledger_app, n_tasks=4, seed=11, namespace=namespace):
        found = timeline(database_url, task_id)

        events = [{k: v for k, v in e.event.items() if k != "position"} for e in found.entries]
        assert events == ledger_app.task_events(task_id)
        positions = [e.event["position"] for e in found.entries]
        assert positions == sorted(positions) and found.findings == []


def test_audit_changes_are_the_state_differences_between_versions(ledger_app: TaskLedger, database_url: str,
                                                                  namespace: str) -> None:
    task_id = drive(ledger_app, n_tasks=1, seed=12, namespace=namespace)[0]

    found = timeline(database_url, task_id)

    for entry in found.entries[1:]:
        version = entry.event["version"]
        state = ledger_app.task_as_of(task_id, version=version - 1).to_dict()
        for name, change in entry.changes.items():
            assert state[name] == change["before"]
            state[name] = change["after"]
        after = ledger_app.task_as_of(task_id, version=version).to_dict()
        assert {k: v for k, v in state.items() if k not in BOOKKEEPING} == \
               {k: v for k, v in after.items() if k not in BOOKKEEPING}


def test_audit_of_a_dropped_task_shows_who_did_what_and_an_intact_chain(
        ledger_app: TaskLedger, database_url: str, namespace: str, cli: CLI,
        capsys: pytest.CaptureFixture[str]) -> None:
    task_id = _finished_and_dropped(ledger_app, namespace)

    code = cli(database_url, "audit", str(task_id))

    out = capsys.readouterr().out
    assert code == 0, out
    headers = [line for line in out.splitlines() if line.startswith("v")]
    assert [h.split()[2] for h in headers] == ["Created", "Started", "HeartbeatRecorded", "Completed", "Dropped"]
    assert all("actor auditor-test" in h and "facade native" in h and "request req-audit" in h for h in headers)
    assert "(dropped)" in out.splitlines()[0]
    assert 'progress: 0.0 → 40.0' in out and "hash chain: intact over 5 events" in out


def test_audit_json_has_one_line_per_event_with_its_changes(ledger_app: TaskLedger, database_url: str,
                                                            namespace: str, cli: CLI,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    task_id = _finished_and_dropped(ledger_app, namespace, external_id="ext-42")

    code = cli(database_url, "audit", "--namespace", namespace, "ext-42", "--json")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [e["version"] for e in lines] == [1, 2, 3, 4, 5] and {e["task_id"] for e in lines} == {str(task_id)}
    assert lines[4]["changes"] == {"dropped": {"before": False, "after": True}}


def test_replay_at_every_version_equals_the_api_as_of(ledger_app: TaskLedger, database_url: str,
                                                      namespace: str) -> None:
    task_id = drive(ledger_app, n_tasks=1, seed=13, namespace=namespace)[0]
    versions = len(ledger_app.task_events(task_id))

    for version in range(1, versions + 1):
        assert replay(database_url, task_id, version=version) == \
               task_doc(ledger_app.task_as_of(task_id, version=version).to_dict())


def test_replay_at_a_time_is_the_task_after_the_last_event_by_then(ledger_app: TaskLedger, database_url: str,
                                                                    namespace: str) -> None:
    task_id = _finished_and_dropped(ledger_app, namespace)

    for event in ledger_app.task_events(task_id):
        at = datetime.fromisoformat(event["time"])
        assert replay(database_url, task_id, at=at)["version"] == event["version"]
        assert replay(database_url, task_id, at=at + timedelta(microseconds=1))["version"] == event["version"]


def test_replay_prints_the_native_api_shape(ledger_app: TaskLedger, database_url: str, namespace: str, cli: CLI,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    task_id = _finished_and_dropped(ledger_app, namespace)

    code = cli(database_url, "replay", str(task_id), "--version", "3")

    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(doc) == set(TaskSchema().fields) and doc["progress"] == 40.0 and doc["state"] == "RUNNING"


@pytest.mark.parametrize(("argv", "message"), [
    (("replay", "{unknown}", "--version", "1"), "no task {unknown}"),
    (("replay", "{task}", "--version", "9"), "has 5 versions, not 9"),
    (("replay", "{task}", "--at", "2001-01-01T00:00:00Z"), "did not exist yet at 2001-01-01T00:00:00+00:00"),
    (("audit", "{unknown}"), "no task {unknown}"),
    (("audit", "not-a-uuid"), "add --namespace NAMESPACE"),
])
def test_tools_refuse_what_they_cannot_answer_with_a_clear_message_and_exit_2(
        argv: tuple[str, ...], message: str, ledger_app: TaskLedger, database_url: str, namespace: str,
        cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    names = {"task": str(_finished_and_dropped(ledger_app, namespace)), "unknown": str(uuid4())}

    code = cli(database_url, *(a.format(**names) for a in argv))

    assert code == 2
    assert message.format(**names) in capsys.readouterr().err


def test_a_time_without_utc_offset_is_a_usage_error(database_url: str, cli: CLI,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(database_url, "replay", str(uuid4()), "--at", "2025-05-01T12:00:00")

    assert exit_.value.code == 2 and "has no UTC offset" in capsys.readouterr().err


def test_an_unreachable_database_is_named_with_what_to_check(cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli("postgresql://postgres@127.0.0.1:1/nowhere", "verify", "--quiet")

    err = capsys.readouterr().err
    assert code == 2
    assert "cannot reach PostgreSQL at 127.0.0.1:1/nowhere" in err and "TASKLEDGER_DATABASE_URL" in err


@pytest.mark.parametrize("command", ["audit", "replay", "verify", "export", "import"])
def test_every_command_has_help_with_an_example(command: str, cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli("postgresql://unused", command, "--help")

    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "\nexample:\n  " in out and f"taskledger {command} " in out.split("example:")[1]


def test_the_tools_module_runs_as_a_program(ledger_app: TaskLedger, database_url: str, namespace: str) -> None:
    task_id = _finished_and_dropped(ledger_app, namespace)

    done = subprocess.run([sys.executable, "-m", "taskledger.tools.commands", "replay", str(task_id), "--version", "2"],
                          env={"TASKLEDGER_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["worker"] == "w1"
