"""export → import into an empty database → the same events, byte for byte, the same read tables,
and a clean verify; a bad file or a non-empty target imports nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from taskledger.config import eventsourcing_env
from taskledger.tools.verify import verify
from tests.projections.helpers import read_tables
from tests.projections.helpers import project_to_head
from tests.scripts.conftest import CLI, Workload

Made = Callable[..., Workload]


def _events(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT notification_id, originator_id, originator_version, topic, state "
                            "FROM taskledger_events ORDER BY notification_id").fetchall()


def _export(cli: CLI, url: str, path: Path) -> None:
    assert cli(url, "export", "--out", str(path), "--quiet") == 0


def test_export_then_import_gives_the_same_events_views_and_a_clean_verify(
        workload: Made, new_database: Callable[[], str], cli: CLI, tmp_path: Path) -> None:
    source = workload(n=25, seed=21)
    with psycopg.connect(source.url) as conn:  # a gap in the log, as a rolled-back write leaves one
        conn.execute("SELECT nextval(pg_get_serial_sequence('taskledger_events', 'notification_id'))")
    app = TaskLedger(eventsourcing_env(source.url, pool_size=1))
    app.create_task(c.CreateTask("after-gap", "late"), c.Caller("t", "r", "native"))
    app.close()
    project_to_head(source.url)
    target = new_database()
    path = tmp_path / "ledger.jsonl"

    _export(cli, source.url, path)
    assert cli(target, "import", str(path), "--quiet") == 0
    project_to_head(target)

    assert _events(target) == _events(source.url)
    assert read_tables(target) == read_tables(source.url)
    assert verify(target, progress=False).findings == []


def test_an_imported_ledger_keeps_writing_after_the_last_imported_position(
        workload: Made, new_database: Callable[[], str], cli: CLI, tmp_path: Path) -> None:
    source, target, path = workload(n=3), new_database(), tmp_path / "e.jsonl"
    _export(cli, source.url, path)
    cli(target, "import", str(path), "--quiet")
    app = TaskLedger(eventsourcing_env(target, pool_size=1))

    written = app.create_task(c.CreateTask("ns", "new"), c.Caller("t", "r", "native"))

    assert written.position == _events(source.url)[-1][0] + 1
    app.close()


def test_export_writes_one_readable_json_line_per_event(workload: Made, cli: CLI, tmp_path: Path) -> None:
    w = workload(n=3)
    path = tmp_path / "e.jsonl"

    _export(cli, w.url, path)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    stored = _events(w.url)
    assert [(x["position"], x["originator_version"], x["topic"]) for x in lines] == \
           [(s[0], s[2], s[3]) for s in stored]
    assert lines[0]["state"]["name"] and lines[0]["state"]["timestamp"]["_type_"] == "datetime_iso"


def test_import_refuses_a_database_that_already_holds_events(workload: Made, cli: CLI, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=2)
    path = tmp_path / "e.jsonl"
    _export(cli, w.url, path)
    before = _events(w.url)

    code = cli(w.url, "import", str(path), "--quiet")

    assert code == 2 and "already holds events" in capsys.readouterr().err
    assert _events(w.url) == before


def test_a_bad_line_names_its_number_and_imports_nothing(workload: Made, new_database: Callable[[], str],
                                                        cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=2)
    path = tmp_path / "e.jsonl"
    _export(cli, w.url, path)
    lines = path.read_text().splitlines()
    broken = json.loads(lines[2])
    broken["position"] = 0
    lines[2] = json.dumps(broken)
    target = new_database()
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))

    code = cli(target, "import", "-", "--quiet")

    assert code == 2 and "line 3: position must be an integer above" in capsys.readouterr().err
    assert _events(target) == []
