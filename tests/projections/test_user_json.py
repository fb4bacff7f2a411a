"""What a worker wrote is what every reader reads: user JSON keeps its numbers' values and types in the view."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView

WHO = c.Caller("json-test", "req")
# What the HTTP edge lets through: no NUL, no lone surrogate (they cannot be stored as UTF-8 text).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
NUMBERS = st.one_of(st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=False, allow_infinity=False))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)


def exact(value: Any) -> str:
    """JSON text that tells 1 from 1.0 and -0.0 from 0: equal only if values and types are."""
    return json.dumps(value, sort_keys=True)


def lived(app: TaskLedger, namespace: str, payload: Any, labels: dict[str, str], output: str) -> c.Written:
    """A task that got `payload` as its input, its heartbeat stats and its result."""
    task = app.create_task(c.CreateTask(namespace=namespace, name="json", input=payload, labels=labels,
                                        steps=("only",)), WHO).task_id
    epoch = app.start_task(c.StartTask(task, "w"), WHO).lease_epoch or 0
    app.record_heartbeat(c.RecordHeartbeat(task, epoch, 10.0, stats={"payload": payload}), WHO)
    app.update_step(c.UpdateStep(task, epoch, 0, "SUCCEEDED", output), WHO)
    return app.complete_task(c.CompleteTask(task, epoch, payload), WHO)


def assert_view_equals_replay(app: TaskLedger, queries: PostgresTaskView, written: c.Written) -> None:
    assert queries.wait_for(written.position, 15), "the projections did not reach the write"
    doc = queries.get(written.task_id)
    assert doc is not None
    assert exact(doc) == exact(app.task_as_of(written.task_id).to_dict())


def test_a_float_with_a_big_exponent_reads_back_as_that_float_not_as_an_integer(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: Any, namespace: str) -> None:
    odd = {"x": -2.947458573671565e+127, "zero": -0.0, "e16": 1e16, "int": 12345678901234567890, "tiny": 1.5e-07,
           "one": 1.0, "list": [1, 1.0, -0.0, 5e-324, 1.7976931348623157e308]}
    written = lived(ledger_app, namespace, odd, {"k": "v"}, "out")

    assert_view_equals_replay(ledger_app, queries, written)
    result = (queries.get(written.task_id) or {})["result"]
    assert type(result["x"]) is float and result["x"] == -2.947458573671565e+127
    assert exact(result) == exact(odd)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=JSON, labels=st.dictionaries(TEXT.filter(bool), TEXT, max_size=3), output=TEXT)
def test_any_json_a_caller_writes_reads_back_from_the_view_exactly_as_the_replay_has_it(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: Any, namespace: str,
        payload: Any, labels: dict[str, str], output: str) -> None:
    assert_view_equals_replay(ledger_app, queries, lived(ledger_app, namespace, payload, labels, output))


@pytest.mark.parametrize("value", [-0.0, 1e16, 2.5e300, 10**30, 0.1, 1.0])
def test_each_number_kind_survives_the_view(ledger_app: TaskLedger, queries: PostgresTaskView,
                                            projections_running: Any, namespace: str, value: Any) -> None:
    written = lived(ledger_app, namespace, {"n": value}, {}, "")
    assert_view_equals_replay(ledger_app, queries, written)


def test_migrate_turns_an_older_jsonb_document_column_into_json(new_database: Any) -> None:
    import psycopg

    from taskledger.migrate import migrate

    url = new_database()
    with psycopg.connect(url) as conn:  # the table as earlier releases made it
        # (they had none of the search columns generated from the document, which came later)
        conn.execute("DROP INDEX tasks_scheduled")
        conn.execute("DROP INDEX tasks_schedule_stopped")  # (came after the json document)
        conn.execute("ALTER TABLE tasks DROP COLUMN labels, DROP COLUMN error, DROP COLUMN kylin_cube")
        conn.execute("ALTER TABLE tasks ALTER COLUMN doc TYPE jsonb USING doc::jsonb")
        conn.execute("CREATE INDEX tasks_scheduled ON tasks (id) WHERE NOT dropped AND state IN ('QUEUED', "
                     "'RUNNING') AND jsonb_typeof(doc -> 'schedule') = 'object'")
    migrate(url)
    migrate(url)  # and again: nothing left to do
    with psycopg.connect(url) as conn:
        kind = conn.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'tasks' "
                            "AND column_name = 'doc'").fetchone()
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'tasks_scheduled'").fetchone()
    assert kind == ("json",)
    assert index is not None and "json_typeof" in index[0] and "jsonb_typeof" not in index[0]
