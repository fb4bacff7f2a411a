"""rebuild builds fresh read tables beside the live ones, verifies them, and switches them in; --dry-run
changes nothing; one projection is rebuilt alone; differing tables are switched only on request."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from projections.runner import lock_key
from taskledger.config import eventsourcing_env
from taskledger.migrate import migrate
from taskledger.tools.verify import verify
from tests.projections.helpers import WHO, positions, read_tables, replay_into_fresh
from tests.projections.helpers import project_to_head
from tests.scripts.conftest import CLI, Workload

Made = Callable[..., Workload]
ROOT = Path(__file__).resolve().parents[2]


def catalog(url: str) -> dict[str, Any]:
    """Everything a rebuild may change: schemas, tables (by oid), indexes, tracking positions."""
    with psycopg.connect(url) as conn:
        schemas = [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'taskledger\\_%' ORDER BY 1").fetchall()]
        tables = dict(conn.execute("SELECT relname, oid::bigint FROM pg_class WHERE relkind = 'r' "
                                   "AND relnamespace = 'public'::regnamespace").fetchall())
    return {"schemas": schemas, "tables": tables, "indexes": indexes(url), "positions": positions(url)}


def indexes(url: str) -> set[tuple[str, str]]:
    """Every index and constraint of the public read tables, definitions without the schema."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT indexname, replace(indexdef, 'public.', '') FROM pg_indexes "
                            "WHERE schemaname = 'public' AND tablename NOT LIKE 'taskledger%'").fetchall()
    return {(str(a), str(b)) for a, b in rows}


def schemas_like(url: str, prefix: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) "
                                           "ORDER BY 1", (prefix,)).fetchall()]


def assert_equal_to_a_fresh_replay(url: str, new_database: Callable[[], str]) -> None:
    fresh = new_database()
    replay_into_fresh(url, fresh)
    assert read_tables(url) == read_tables(fresh)
    report = verify(url, progress=False)
    assert report.ok, [f.to_dict() for f in report.findings]


def test_rebuild_switches_in_tables_equal_to_a_fresh_replay_with_the_same_indexes(
        workload: Made, cli: CLI, new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=15)
    before = catalog(w.url)

    code = cli(w.url, "rebuild", "--quiet")

    out = capsys.readouterr().out
    after = catalog(w.url)
    assert code == 0, out
    assert "task_view: switched at position" in out and "run_history: switched at position" in out
    assert after["tables"]["tasks"] != before["tables"]["tasks"], "the tasks table was not replaced"
    assert after["tables"]["task_runs"] != before["tables"]["task_runs"]
    assert after["indexes"] == before["indexes"]
    assert after["positions"] == before["positions"]
    assert [s for s in after["schemas"] if s.startswith("taskledger_rebuild")] == []
    migrate(w.url)
    assert catalog(w.url) == after, "migrate treated the rebuilt tables as tables to migrate"
    assert_equal_to_a_fresh_replay(w.url, new_database)


def test_the_old_tables_are_kept_in_a_retired_schema_until_dropped(workload: Made, cli: CLI) -> None:
    w = workload(n=3)
    with psycopg.connect(w.url) as conn:
        live_tasks = conn.execute("SELECT 'public.tasks'::regclass::oid::bigint").fetchone()

    assert cli(w.url, "rebuild", "task_view", "--quiet") == 0

    retired = schemas_like(w.url, "taskledger_retired_task_view_")
    assert len(retired) == 1
    with psycopg.connect(w.url) as conn:
        moved = conn.execute("SELECT %s::regclass::oid::bigint", (f"{retired[0]}.tasks",)).fetchone()
    assert moved == live_tasks
    assert cli(w.url, "rebuild", "task_view", "--quiet", "--drop-retired") == 0
    assert schemas_like(w.url, "taskledger_retired_") == []


def test_dry_run_reports_tables_positions_and_events_and_changes_nothing(
        workload: Made, cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=4)
    before = catalog(w.url)

    code = cli(w.url, "rebuild", "--dry-run")

    out = capsys.readouterr().out
    head = before["positions"]["head"]
    assert code == 0
    assert catalog(w.url) == before
    for text in ("public.tasks (4 rows)", "public.task_runs", f"live position    {head}",
                 f"events to apply  {head} (positions 1..{head})", "taskledger_rebuild_run_history",
                 "dry run: nothing was changed"):
        assert text in out


def test_rebuilding_one_projection_leaves_the_other_untouched(workload: Made, cli: CLI) -> None:
    w = workload(n=6)
    before = catalog(w.url)

    assert cli(w.url, "rebuild", "task_view", "--quiet") == 0

    after = catalog(w.url)
    assert after["tables"]["tasks"] != before["tables"]["tasks"]
    for table in ("task_runs", "task_occurrences", "run_history_tracking"):
        assert after["tables"][table] == before["tables"][table]
    assert schemas_like(w.url, "taskledger_retired_run_history") == []


def test_an_unknown_projection_exits_2_and_names_the_known_ones(
        workload: Made, cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli("postgresql://nobody@127.0.0.1:1/none", "rebuild", "task_view", "tasks_by_colour")

    err = capsys.readouterr().err
    assert code == 2
    assert "unknown projection 'tasks_by_colour'; known: task_view, run_history" in err


def test_tables_that_differ_from_the_live_ones_are_switched_only_with_accept_differences(
        workload: Made, cli: CLI, new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=5)
    tampered = w.task_ids[2]
    with psycopg.connect(w.url) as conn:
        conn.execute("UPDATE tasks SET name = 'edited by hand' WHERE id = %s", (tampered,))
    before = catalog(w.url)

    refused = cli(w.url, "rebuild", "--quiet")

    err = capsys.readouterr().err
    assert refused == 1
    assert "differ from the live ones" in err and f"tasks (id={tampered}) differs: name: live 'edited by hand'" in err
    assert catalog(w.url)["tables"] == before["tables"], "nothing may be switched"
    assert schemas_like(w.url, "taskledger_rebuild_") == ["taskledger_rebuild_run_history",
                                                          "taskledger_rebuild_task_view"]
    assert cli(w.url, "rebuild", "--quiet", "--accept-differences") == 0
    assert "switching anyway" in capsys.readouterr().err
    assert_equal_to_a_fresh_replay(w.url, new_database)


def test_the_rebuilt_tables_keep_the_live_tables_grants(workload: Made, cli: CLI) -> None:
    w = workload(n=2)
    role = f"tl_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(w.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role}")
        conn.execute(f"GRANT SELECT ON tasks, task_runs TO {role}")
    try:
        assert cli(w.url, "rebuild", "--quiet") == 0
        with psycopg.connect(w.url) as conn:
            granted = conn.execute("SELECT has_table_privilege(%s, 'public.tasks', 'SELECT'), "
                                   "has_table_privilege(%s, 'public.task_runs', 'SELECT'), "
                                   "has_table_privilege(%s, 'public.tasks', 'UPDATE')", (role, role, role)).fetchone()
        assert granted == (True, True, False)
    finally:
        with psycopg.connect(w.url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_scripts_rebuild_runs_the_cli_subcommand(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "_setup.sh").write_text(f'cd "{ROOT}"\n')
    shutil.copy2(ROOT / "scripts" / "rebuild", scripts / "rebuild")

    done = subprocess.run([str(scripts / "rebuild"), "--help"], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: taskledger rebuild ") and "example:" in done.stdout


def test_live_tables_a_hand_edit_broke_are_replaced_only_with_accept_differences(
        workload: Made, cli: CLI, new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=3)
    app = TaskLedger(eventsourcing_env(w.url, pool_size=1))
    created = app.create_task(c.CreateTask(namespace="ns", name="row deleted by hand"), WHO)
    project_to_head(w.url)
    with psycopg.connect(w.url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (created.task_id,))
    app.cancel_task(c.CancelTask(created.task_id), WHO)  # the live view can no longer apply this one
    app.close()

    refused = cli(w.url, "rebuild", "task_view", "--quiet")

    assert refused == 1
    assert (f"the live tables cannot be brought to the head to be compared: task_view cannot apply the event at "
            f"position {created.position + 1} (task {created.task_id} v2)") in capsys.readouterr().err
    assert cli(w.url, "rebuild", "task_view", "--quiet", "--accept-differences") == 0
    err = capsys.readouterr().err
    assert "the live tables cannot be brought to the head" in err and f"tasks (id={created.task_id}) missing" in err
    assert_equal_to_a_fresh_replay(w.url, new_database)


def _leave_an_unfinished_rebuild(w: Workload, cli: CLI) -> None:
    with psycopg.connect(w.url, autocommit=True) as holder:  # a runner that never hands over: no switch
        holder.execute("SELECT pg_advisory_lock(%s::bigint)", (lock_key("task_view"),))
        assert cli(w.url, "rebuild", "task_view", "--quiet", "--handover-timeout", "0.5") == 2


def test_an_unfinished_rebuild_made_by_other_projection_code_or_with_restart_starts_over(
        workload: Made, cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=3)
    _leave_an_unfinished_rebuild(w, cli)
    with psycopg.connect(w.url, autocommit=True) as conn:
        conn.execute("""COMMENT ON SCHEMA taskledger_rebuild_task_view IS '{"code": "older code"}'""")
    capsys.readouterr()

    assert cli(w.url, "rebuild", "task_view", "--quiet") == 0
    err = capsys.readouterr().err
    assert "discarding the unfinished rebuild in schema taskledger_rebuild_task_view (it was made by different " \
           "projection code)" in err and "building fresh tables in schema taskledger_rebuild_task_view" in err
    _leave_an_unfinished_rebuild(w, cli)
    capsys.readouterr()
    assert cli(w.url, "rebuild", "task_view", "--quiet", "--restart") == 0
    assert "(--restart)" in capsys.readouterr().err
