"""verify names every edited, deleted or reordered event by task and version, and every read-table
row that differs from a replay; a clean database verifies with exit code 0."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
import pytest

from tests.scripts.conftest import CLI, Workload

Made = Callable[..., Workload]


def _verify_json(cli: CLI, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = cli(url, "verify", "--json", "--quiet")
    return code, json.loads(capsys.readouterr().out)


def _problems(report: dict[str, Any], check: str) -> set[tuple[str | None, int | None, str]]:
    return {(f["task_id"], f["version"], f["kind"]) for f in report["findings"] if f["check"] == check}


def _stream(url: str, task_id: UUID) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT originator_version, topic FROM taskledger_events WHERE originator_id = %s "
                            "ORDER BY originator_version", (task_id,)).fetchall()
    return [(int(v), str(t)) for v, t in rows]


def _task_with_heartbeat_inside(w: Workload) -> tuple[UUID, int]:
    for task_id in w.task_ids:
        stream = _stream(w.url, task_id)
        for version, topic in stream[1:-1]:
            if topic.endswith("HeartbeatRecorded"):
                return task_id, version
    raise AssertionError("the workload has no task with a heartbeat before its last event")


def _long_task(w: Workload, at_least: int = 5, skip: int = 0) -> UUID:
    found = [t for t in w.task_ids if len(_stream(w.url, t)) >= at_least]
    return found[skip]


def _edit(url: str, task_id: UUID, version: int, **changes: Any) -> None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT state FROM taskledger_events WHERE originator_id = %s AND originator_version = %s",
                           (task_id, version)).fetchone()
        assert row is not None
        state = {**json.loads(bytes(row[0])), **changes}
        conn.execute("UPDATE taskledger_events SET state = %s WHERE originator_id = %s AND originator_version = %s",
                     (json.dumps(state).encode(), task_id, version))


def _sql(url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(statement, params)


def test_a_clean_database_verifies_with_exit_code_0(workload: Made, cli: CLI,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    w = workload()

    code = cli(w.url, "verify", "--quiet")

    out = capsys.readouterr().out
    assert code == 0, out
    assert "verify: consistent" in out and "task_view at" in out and "run_history at" in out


def test_an_edited_heartbeat_is_named_by_task_and_version(workload: Made, cli: CLI,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    w = workload()
    task_id, version = _task_with_heartbeat_inside(w)
    _edit(w.url, task_id, version, progress=12.5)

    code = cli(w.url, "verify", "--quiet")

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("chain")]
    assert code == 1
    assert len(lines) == 1 and f"task {task_id}" in lines[0] and f"v{version} " in lines[0] and "edited" in lines[0]


def test_a_deleted_middle_event_is_named_by_task_and_version(workload: Made, cli: CLI,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    w = workload()
    task_id = _long_task(w)
    _sql(w.url, "DELETE FROM taskledger_events WHERE originator_id = %s AND originator_version = 3", task_id)

    code, report = _verify_json(cli, w.url, capsys)

    assert code == 1 and report["ok"] is False
    assert _problems(report, "chain") == {(str(task_id), 3, "deleted")}


def test_swapped_versions_are_named_as_reordered(workload: Made, cli: CLI,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    w = workload()
    task_id = _long_task(w)
    for old, new in ((2, -2), (3, 2), (-2, 3)):
        _sql(w.url, "UPDATE taskledger_events SET originator_version = %s "
                    "WHERE originator_id = %s AND originator_version = %s", new, task_id, old)

    code, report = _verify_json(cli, w.url, capsys)

    assert code == 1
    assert _problems(report, "chain") == {(str(task_id), 2, "reordered"), (str(task_id), 3, "reordered")}


def test_an_edited_last_event_is_caught_by_the_head_the_view_recorded(workload: Made, cli: CLI,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    w = workload()
    task_id = _long_task(w)
    last = _stream(w.url, task_id)[-1][0]
    _edit(w.url, task_id, last, actor="mallory")

    code, report = _verify_json(cli, w.url, capsys)

    assert code == 1
    assert _problems(report, "chain") == {(str(task_id), last, "edited")}
    assert (str(task_id), last, "differs") in _problems(report, "task_view")


def test_several_tamperings_are_all_reported_in_one_run(workload: Made, cli: CLI,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=20, seed=8)
    edited, version = _task_with_heartbeat_inside(w)
    deleted = next(t for t in w.task_ids if t != edited and len(_stream(w.url, t)) >= 5)
    _edit(w.url, edited, version, progress=99.0)
    _sql(w.url, "DELETE FROM taskledger_events WHERE originator_id = %s AND originator_version = 4", deleted)

    code, report = _verify_json(cli, w.url, capsys)

    assert code == 1
    assert _problems(report, "chain") == {(str(edited), version, "edited"), (str(deleted), 4, "deleted")}


def test_read_table_rows_that_differ_from_a_replay_are_reported(workload: Made, cli: CLI,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    w = workload()
    with psycopg.connect(w.url) as conn:
        run = conn.execute("SELECT task_id, attempt FROM task_runs ORDER BY task_id, attempt LIMIT 1").fetchone()
        assert run is not None, "the workload ran no task"
        gone = conn.execute("SELECT id FROM tasks WHERE id <> %s ORDER BY id LIMIT 1", (run[0],)).fetchone()
        assert gone is not None
        gone = gone[0]
        conn.execute("UPDATE task_runs SET outcome = 'succeeded', worker = 'nobody' WHERE task_id = %s AND attempt = %s",
                     run)
        conn.execute("DELETE FROM tasks WHERE id = %s", (gone,))

    code, report = _verify_json(cli, w.url, capsys)

    assert code == 1
    assert _problems(report, "chain") == set()
    runs = [f for f in report["findings"] if f["check"] == "run_history"]
    assert len(runs) == 1 and runs[0]["task_id"] == str(run[0]) and runs[0]["kind"] == "differs"
    assert "worker: live 'nobody'" in runs[0]["detail"]
    assert (str(gone), None, "missing") in _problems(report, "task_view")
    assert any(f["check"] == "task_view" and f["kind"] == "missing" and "tasks" in f["detail"]
               for f in report["findings"]), "the table diff names the missing row too"


def test_verify_can_skip_the_projection_replay(workload: Made, cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=4)
    _sql(w.url, "UPDATE task_runs SET worker = 'nobody'")

    code = cli(w.url, "verify", "--quiet", "--skip-projections")

    assert code == 0, capsys.readouterr().out


def _long_stream(url: str, events: int) -> UUID:
    """A running task with `events` events, so that it has snapshots (one every 50 versions)."""
    from ledger import commands as c
    from ledger.application import TaskLedger
    from taskledger.config import eventsourcing_env

    app = TaskLedger(eventsourcing_env(url, pool_size=1))
    try:
        who = c.Caller("verify-test", "r")
        task_id = app.create_task(c.CreateTask(namespace="snap", name="long"), who).task_id
        epoch = app.start_task(c.StartTask(task_id, "w"), who).lease_epoch or 0
        for n in range(events - 2):
            app.record_heartbeat(c.RecordHeartbeat(task_id, epoch, progress=float(n % 100)), who)
        return task_id
    finally:
        app.close()


def test_snapshots_are_checked_against_the_replay_of_their_events(
        workload: Made, cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=2)
    task_id = _long_stream(w.url, 120)
    code, clean = _verify_json(cli, w.url, capsys)
    assert code == 0 and clean["snapshots"] == 2  # versions 50 and 100

    with psycopg.connect(w.url) as conn:
        row = conn.execute("SELECT state FROM taskledger_snapshots WHERE originator_id = %s AND originator_version = 100",
                           (task_id,)).fetchone()
        assert row is not None
        stored = json.loads(bytes(row[0]))
        task = json.loads(stored["state"]["task"])
        stored["state"]["task"] = json.dumps({**task, "lease_epoch": task["lease_epoch"] + 7})
        conn.execute("UPDATE taskledger_snapshots SET state = %s WHERE originator_id = %s AND originator_version = 100",
                     (json.dumps(stored).encode(), task_id))

    code, report = _verify_json(cli, w.url, capsys)
    assert code == 1
    assert _problems(report, "snapshot") == {(str(task_id), 100, "differs")}
    assert "lease_epoch" in next(f["detail"] for f in report["findings"] if f["check"] == "snapshot")
