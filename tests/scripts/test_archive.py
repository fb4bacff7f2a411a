"""`taskledger archive` and `taskledger verify --archive`, through the CLI against real databases: ended tasks
older than the policy go to a file that verifies offline, leave the read tables (and with --prune-events the
event store), and `verify` and `rebuild` of the database stay clean without bringing them back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from projections.registry import PROJECTIONS
from projections.runner import start_projections
from taskledger.calendar import CronCalendar
from taskledger.config import eventsourcing_env
from taskledger.tools import archive_settle
from taskledger.tools.archive_file import check_archive
from taskledger.tools.archive_settle import READ_TABLES
from taskledger.tools.commands import main
from taskledger.tools.rebuild.tables import projection_tables
from tests.projections.helpers import WHO, drive, positions, project_to_head
from tests.scripts.conftest import CLI

OLD = datetime.now(timezone.utc) - timedelta(days=40)


def _populate(url: str) -> dict[str, Any]:
    """etl tasks that lived 40 days ago, etl tasks of today, tasks of another namespace; all projected."""
    env = eventsourcing_env(url, pool_size=1)
    old = TaskLedger(env, clock=lambda: OLD, calendar=CronCalendar(lambda: OLD))
    new = TaskLedger(env)
    try:
        made: dict[str, Any] = {"url": url, "old_etl": drive(old, n_tasks=12, seed=3, namespace="etl"),
                "new_etl": drive(new, n_tasks=2, seed=4, namespace="etl"),
                "other": drive(old, n_tasks=3, seed=5, namespace="other")}
        made["recurring"] = _failed_recurring(old)
        made["old_etl"].append(_finished_job(old, "job-1"))
    finally:
        old.close()
        new.close()
    project_to_head(url)
    return made


@pytest.fixture
def ledger_db(new_database: Callable[[], str]) -> dict[str, Any]:
    return _populate(new_database())


@pytest.fixture(scope="module")
def archive_file(new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One archive of a populated database, for the tests that only read (and tamper with copies of) it."""
    made, out = _populate(new_database()), tmp_path_factory.mktemp("archive") / "etl.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TASKLEDGER_DATABASE_URL", made["url"])
        with projecting(made["url"]):
            assert main(["archive", "--namespace", "etl", "--ended-before", "30d", "--output", str(out),
                         "--quiet"]) == 0
    return out


def _failed_recurring(app: TaskLedger) -> UUID:
    """A FAILED task that was given a schedule: resuming it runs the schedule, so it must never be archived."""
    task = app.create_task(c.CreateTask("etl", "nightly"), WHO).task_id
    epoch = app.start_task(c.StartTask(task, "w1"), WHO).lease_epoch or 0
    app.fail_task(c.FailTask(task, epoch, "boom", retry=False), WHO)
    app.update_task(c.UpdateTask(task, {"schedule": {"cron": "0 0 * * * ?"}}), WHO)
    return task


def _finished_job(app: TaskLedger, external_id: str) -> UUID:
    """A task named by an external id (its id is derived from it), run to SUCCEEDED."""
    task = app.create_task(c.CreateTask("etl", "job", external_id=external_id), WHO).task_id
    epoch = app.start_task(c.StartTask(task, "w1"), WHO).lease_epoch or 0
    app.complete_task(c.CompleteTask(task, epoch, {"rows": 1}), WHO)
    return task


@contextmanager
def projecting(url: str) -> Iterator[None]:
    """The real projection runners, as a running service would have them, for the duration of a command."""
    stopping = threading.Event()
    threads = start_projections(eventsourcing_env(url, pool_size=2), url, stopping)
    try:
        yield
        _caught_up(url)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=10)


def _caught_up(url: str, timeout: float = 30.0) -> None:
    """Every projection at or past the log's head (past it once the newest events are pruned)."""
    deadline = time.monotonic() + timeout
    while (now := positions(url))["task_view"] < now["head"] or now["run_history"] < now["head"]:
        assert time.monotonic() < deadline, f"projections did not catch up: {now}"
        time.sleep(0.05)


def _rows(url: str, query: str, *params: Any) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def _ended(url: str, ids: list[UUID]) -> set[UUID]:
    return {r[0] for r in _rows(url, "SELECT id FROM tasks WHERE id = ANY(%s) AND (dropped OR state IN "
                                     "('SUCCEEDED', 'FAILED', 'CANCELLED', 'ABORTED'))", ids)}


def _per_task_rows(url: str, ids: list[UUID]) -> dict[str, int]:
    return {table: _rows(url, f"SELECT count(*) FROM {table} WHERE {column} = ANY(%s)", ids)[0][0]
            for table, column in READ_TABLES.items()}


def _event_count(url: str, ids: list[UUID]) -> int:
    return int(_rows(url, "SELECT count(*) FROM taskledger_events WHERE originator_id = ANY(%s)", ids)[0][0])


def test_archive_takes_only_ended_old_tasks_of_the_namespace_once_and_verify_and_rebuild_stay_clean(
        ledger_db: dict[str, Any], cli: CLI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, out = ledger_db["url"], tmp_path / "etl.jsonl"
    chosen = _ended(url, ledger_db["old_etl"])
    assert 5 <= len(chosen) < len(ledger_db["old_etl"])  # the workload leaves some tasks queued
    kept_other = _per_task_rows(url, ledger_db["other"])
    events_before = _event_count(url, list(chosen))

    assert cli(url, "archive", "--namespace", "etl", "--ended-before", "30d", "--dry-run") == 0
    assert f"would archive {len(chosen)} tasks" in capsys.readouterr().out
    assert not out.exists() and _ended(url, ledger_db["old_etl"]) == chosen

    with projecting(url):
        assert cli(url, "archive", "--namespace", "etl", "--ended-before", "30d", "--output", str(out),
                   "--quiet") == 0
    assert f"{out} archived {len(chosen)} tasks" in capsys.readouterr().out

    assert _per_task_rows(url, list(chosen)) == dict.fromkeys(READ_TABLES, 0)
    left = {r[0] for r in _rows(url, "SELECT id FROM tasks WHERE namespace = 'etl'")}
    assert left == (set(ledger_db["old_etl"]) - chosen) | set(ledger_db["new_etl"]) | {ledger_db["recurring"]}
    assert _per_task_rows(url, ledger_db["other"]) == kept_other
    report = check_archive(str(out))
    assert report.ok and set(map(UUID, report.heads)) == chosen
    assert report.events == _event_count(url, list(chosen)) > events_before  # the events stay in the store
    drops = _rows(url, "SELECT count(*) FROM taskledger_events WHERE originator_id = ANY(%s) "
                       "AND topic LIKE '%%Task.Dropped'", list(chosen))
    assert drops == [(len(chosen),)]  # each dropped exactly once: by the workload, or by archive before it

    assert cli(url, "verify", "--archive", str(out)) == 0
    assert cli(url, "verify", "--quiet") == 0
    assert "consistent" in capsys.readouterr().out

    # The same command again finishes nothing and writes nothing; into another file it finds nothing new.
    written = out.read_bytes()
    assert cli(url, "archive", "--namespace", "etl", "--ended-before", "30d", "--output", str(out), "--quiet") == 0
    assert "more tasks match" not in capsys.readouterr().out and out.read_bytes() == written
    again = tmp_path / "again.jsonl"
    assert cli(url, "archive", "--namespace", "etl", "--ended-before", "30d", "--output", str(again), "--quiet") == 0
    assert "nothing to archive" in capsys.readouterr().out and not again.exists()

    assert cli(url, "rebuild", "--quiet", "--handover-timeout", "5") == 0
    assert _per_task_rows(url, list(chosen)) == dict.fromkeys(READ_TABLES, 0)  # not resurrected
    assert cli(url, "verify", "--quiet") == 0


def test_an_interrupted_run_leaves_verify_clean_and_the_same_command_finishes_it(
        ledger_db: dict[str, Any], cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, out = ledger_db["url"], tmp_path / "etl.jsonl"
    chosen = _ended(url, ledger_db["old_etl"])
    real, calls = archive_settle._settle_batch, []

    def stop_at_the_second_batch(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C between two batches
        return real(*args)

    monkeypatch.setattr(archive_settle, "_settle_batch", stop_at_the_second_batch)
    argv = ("archive", "--namespace", "etl", "--ended-before", "30d", "--output", str(out), "--quiet",
            "--batch-size", "2")
    with projecting(url), pytest.raises(KeyboardInterrupt):
        cli(url, *argv)
    assert len(_ended(url, list(chosen))) == len(chosen) - 2  # the first batch went, atomically
    assert cli(url, "verify", "--quiet", "--skip-projections") == 0
    assert cli(url, "verify", "--quiet") == 0

    monkeypatch.setattr(archive_settle, "_settle_batch", real)
    with projecting(url):
        assert cli(url, *argv) == 0
    assert "finishing it" in capsys.readouterr().err
    assert _per_task_rows(url, list(chosen)) == dict.fromkeys(READ_TABLES, 0)
    assert cli(url, "verify", "--quiet") == 0


def test_an_event_edited_in_the_store_stops_the_archive_before_anything_is_dropped_or_removed(
        ledger_db: dict[str, Any], cli: CLI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, out, job = ledger_db["url"], tmp_path / "etl.jsonl", ledger_db["old_etl"][-1]
    with psycopg.connect(url) as conn:  # the last event of a SUCCEEDED task, edited with SQL
        conn.execute("UPDATE taskledger_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
                     "'\"tester\"', '\"mallory\"'), 'UTF8') WHERE originator_id = %s AND originator_version = "
                     "(SELECT max(originator_version) FROM taskledger_events WHERE originator_id = %s)", (job, job))
    before = _event_count(url, ledger_db["old_etl"])
    with projecting(url):
        assert cli(url, "archive", "--namespace", "etl", "--ended-before", "30d", "--output", str(out),
                   "--quiet") == 1
    assert f"task {job}: its last stored event" in capsys.readouterr().err
    assert not out.exists() and _event_count(url, ledger_db["old_etl"]) == before  # nothing dropped
    assert _rows(url, "SELECT count(*) FROM tasks WHERE id = %s", job) == [(1,)]


def test_prune_events_deletes_the_archived_streams_and_verify_rebuild_and_import_agree(
        ledger_db: dict[str, Any], cli: CLI, tmp_path: Path, new_database: Callable[[], str]) -> None:
    url, out = ledger_db["url"], tmp_path / "all.jsonl"
    chosen = _ended(url, ledger_db["old_etl"] + ledger_db["other"])
    with projecting(url):
        assert cli(url, "archive", "--namespace-prefix", "", "--ended-before", "30d", "--output", str(out),
                   "--prune-events", "--quiet") == 0
    assert _event_count(url, list(chosen)) == 0
    assert _rows(url, "SELECT count(*) FROM taskledger_snapshots WHERE originator_id = ANY(%s)", list(chosen)) == [(0,)]
    assert _rows(url, "SELECT count(*) FROM archived_tasks WHERE pruned") == [(len(chosen),)]
    assert cli(url, "verify", "--archive", str(out)) == 0
    assert cli(url, "verify", "--quiet") == 0
    assert cli(url, "rebuild", "--quiet", "--handover-timeout", "5") == 0
    assert _per_task_rows(url, list(chosen)) == dict.fromkeys(READ_TABLES, 0)
    assert cli(url, "verify", "--quiet") == 0

    # Pruned, the external id is free: the same create makes a new task (same id, version 1) after the
    # highest position ever given out, which projects and verifies like any other.
    before = positions(url)
    app = TaskLedger(eventsourcing_env(url, pool_size=1))
    try:
        again = app.create_task(c.CreateTask("etl", "job", external_id="job-1"), WHO)
    finally:
        app.close()
    assert again.task_id in chosen and again.version == 1 and again.position > before["task_view"]
    with projecting(url):
        pass
    assert _rows(url, "SELECT version, state FROM tasks WHERE id = %s", again.task_id) == [(1, "QUEUED")]
    assert cli(url, "verify", "--quiet") == 0

    # The event lines are `export`'s: without the archive's own lines, `import` loads them back.
    events_only = tmp_path / "events.jsonl"
    events_only.write_text("".join(line for line in out.read_text().splitlines(keepends=True)
                                   if not line.startswith('{"archive":')))
    target = new_database()
    assert cli(target, "import", str(events_only), "--quiet") == 0
    project_to_head(target)
    assert {r[0] for r in _rows(target, "SELECT id FROM tasks WHERE dropped")} == chosen
    assert cli(target, "verify", "--quiet") == 0


def _edit_line(path: Path, number: int, edit: Callable[[dict[str, Any]], None]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[number - 1])
    edit(record)
    lines[number - 1] = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))


def test_verify_archive_needs_no_database_and_names_the_task_version_and_position_of_a_tampered_event(
        archive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = archive_file
    monkeypatch.setenv("TASKLEDGER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing")  # nothing listens
    assert main(["verify", "--archive", str(out)]) == 0
    assert "verify --archive: intact" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    number, event = next((n, json.loads(line)) for n, line in enumerate(lines, 1)
                         if '"originator_version":2,' in line)
    capsys.readouterr()

    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text(out.read_text())
    _edit_line(tampered, number, lambda r: r["state"].update(actor="mallory"))
    assert main(["verify", "--archive", str(tampered)]) == 1
    shown = capsys.readouterr().out
    assert (f"task {event['originator_id']}" in shown and "v2" in shown and "edited" in shown
            and f"line {number} (position {event['position']})" in shown and "digest" in shown)


def test_an_edited_last_event_a_cut_file_and_a_lost_line_all_fail(
        archive_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = archive_file
    lines = out.read_text().splitlines(keepends=True)
    heads = [json.loads(line) for line in lines if line.startswith('{"archive":"head"')]
    last = next(n for n, line in enumerate(lines, 1) if f'"position":{heads[0]["last_position"]},' in line)
    capsys.readouterr()

    edited = tmp_path / "edited.jsonl"
    edited.write_text(out.read_text())
    _edit_line(edited, last, lambda r: r["state"].update(actor="mallory"))
    assert main(["verify", "--archive", str(edited)]) == 1
    assert f"task {heads[0]['task_id']}" in capsys.readouterr().out

    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-3]))
    assert main(["verify", "--archive", str(cut)]) == 1
    assert "incomplete" in capsys.readouterr().out

    lost = tmp_path / "lost.jsonl"
    lost.write_text("".join(lines[:3] + lines[4:]))
    assert main(["verify", "--archive", str(lost), "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert not found["ok"] and {f["kind"] for f in found["findings"]} & {"deleted", "count"}


def test_every_read_table_of_every_projection_is_cleared_by_archive(new_database: Callable[[], str]) -> None:
    url = new_database()
    tables = {t for name in PROJECTIONS for t in projection_tables(url, name)[:-1]}
    assert tables == set(READ_TABLES)


def test_bad_arguments_are_refused_with_the_option_and_the_rule(
        cli: CLI, database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(database_url, "archive", "--all-namespaces", "--ended-before", "30x", "--dry-run")
    assert exited.value.code == 2 and "'30x' is not an age like 30d" in capsys.readouterr().err
    assert cli(database_url, "archive", "--all-namespaces", "--ended-before", "30d") == 2
    assert "--output FILE is required" in capsys.readouterr().err
    missing = tmp_path / "nothing.jsonl"
    assert cli(database_url, "verify", "--archive", str(missing)) == 2
    assert f"cannot read {missing}" in capsys.readouterr().err
