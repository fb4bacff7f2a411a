"""The read side's lookups that facades rely on: by external id, and output pages by sequence."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView

WHO = c.Caller("tester", "req", "hugegraph")


def test_a_task_is_found_by_the_number_its_ecosystem_knows_it_by(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: object, namespace: str) -> None:
    graph = f"hugegraph:DEFAULT/{namespace}"
    first = ledger_app.create_task(c.CreateTask(graph, "g.V().count()", type="gremlin"), WHO)
    second = ledger_app.create_task(c.CreateTask(graph, "g.E().count()", type="gremlin"), WHO)
    assert queries.wait_for(second.position, 10)

    found = queries.find_external(graph, "2")

    assert found is not None and found["id"] == str(second.task_id)
    assert queries.find_external(graph, "1")["id"] == str(first.task_id)  # type: ignore[index]
    assert queries.find_external(graph, "3") is None
    assert queries.find_external(f"hugegraph:DEFAULT/other-{namespace}", "1") is None


def test_output_pages_come_in_sequence_from_a_token_within_a_byte_budget(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: object, namespace: str) -> None:
    task = ledger_app.create_task(c.CreateTask(namespace, "query"), WHO).task_id
    epoch = ledger_app.start_task(c.StartTask(task, "node-1"), WHO).lease_epoch or 0
    for i, data in enumerate(["aaaa", "bbbb", "cccc"]):
        last = ledger_app.append_output(c.AppendOutput(task, epoch, "0", data, positions=i, last=i == 2), WHO)
    assert queries.wait_for(last.position, 10)

    assert [p["data"] for p in queries.output_pages(task, "0", 0, max_bytes=8)] == ["aaaa", "bbbb"]
    assert [p["sequence"] for p in queries.output_pages(task, "0", 1, max_bytes=1)] == [1]
    assert [p["last"] for p in queries.output_pages(task, "0", 2, max_bytes=100)] == [True]
    assert queries.output_pages(task, "0", 3, max_bytes=100) == []
    assert queries.output_pages(task, "1", 0, max_bytes=100) == []


def test_a_forged_cursor_with_a_non_time_value_is_refused_before_the_database(queries: PostgresTaskView) -> None:
    import base64
    import json

    import pytest

    from projections.queries import InvalidCursorError, TaskFilter

    forged = base64.urlsafe_b64encode(json.dumps(["created_at", "yesterday", str(uuid4())]).encode()).decode()
    with pytest.raises(InvalidCursorError):
        queries.list(TaskFilter(), cursor=forged)


def test_a_zero_limit_answers_an_empty_page_with_the_total(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: object, namespace: str) -> None:
    from projections.queries import TaskFilter

    written = ledger_app.create_task(c.CreateTask(namespace, "one"), WHO)
    assert queries.wait_for(written.position, 10)

    page = queries.list(TaskFilter(namespace=namespace), limit=0)

    assert (page.items, page.total, page.next_cursor) == ([], 1, None)


def test_a_total_past_the_exact_bound_is_the_planners_estimate_and_says_so(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: object, namespace: str) -> None:
    from projections.queries import TaskFilter

    written = [ledger_app.create_task(c.CreateTask(namespace, f"t{i}"), WHO) for i in range(5)]
    assert queries.wait_for(written[-1].position, 10)
    flt = TaskFilter(namespace=namespace)

    exact = queries.list(flt, limit=2, exact_up_to=5)
    estimated = queries.list(flt, limit=2, exact_up_to=3)

    assert (exact.total, exact.total_is_estimate, len(exact.items)) == (5, False, 2)
    assert estimated.total_is_estimate and estimated.total >= 4  # never fewer than the rows it counted
    assert [d["id"] for d in estimated.items] == [d["id"] for d in exact.items]
    assert queries.list(flt).total_is_estimate is False  # without a bound the count is exact


def test_each_state_is_counted_on_its_own_up_to_the_bound(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: object, namespace: str) -> None:
    from projections.queries import TaskFilter

    queued = [ledger_app.create_task(c.CreateTask(namespace, f"q{i}", labels={"k": "v"}), WHO) for i in range(5)]
    paused = [ledger_app.create_task(c.CreateTask(namespace, f"p{i}"), WHO) for i in range(2)]
    last = [ledger_app.pause_task(c.PauseTask(w.task_id), WHO) for w in paused][-1]
    assert queries.wait_for(last.position, 10)
    states = ("QUEUED", "PAUSED", "RUNNING")

    counted = queries.count_each_state(TaskFilter(namespace=namespace), states, up_to=3)
    labelled = queries.count_each_state(TaskFilter(namespace=namespace, labels=(("k", "v"),)), states, up_to=10)

    assert counted == {"QUEUED": 3, "PAUSED": 2, "RUNNING": 0}  # 5 queued, counted to the bound; paused in full
    assert labelled == {"QUEUED": 5, "PAUSED": 0, "RUNNING": 0}
    assert len(queued) == 5


def _analyze(queries: PostgresTaskView) -> None:
    with queries.pool.connection() as conn:
        conn.execute("ANALYZE tasks")


def _named(ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str, marker: str, n: int) -> None:
    """`n` tasks named `marker-i`, projected, then ANALYZE (the histogram estimates are drawn from)."""
    written = [ledger_app.create_task(c.CreateTask(namespace, f"{marker}-{i}"), WHO) for i in range(n)]
    assert queries.wait_for(written[-1].position, 30)
    _analyze(queries)


def _statements(queries: PostgresTaskView, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every statement the view sends (to the real database)."""
    from psycopg import sql

    sent: list[str] = []
    real = queries._all

    def recording(query: object, params: object = (), settings: tuple[str, ...] = ()) -> object:
        with queries.pool.connection() as conn:
            sent.append(query.as_string(conn) if isinstance(query, sql.Composable) else str(query))
        return real(query, params, settings)  # type: ignore[arg-type]

    monkeypatch.setattr(queries, "_all", recording)
    return sent


def test_a_substring_the_planner_expects_far_beyond_the_bound_is_estimated_without_counting(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: object, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from projections.queries import TaskFilter

    marker = f"wide{uuid4().hex[:8]}"
    _named(ledger_app, queries, namespace, marker, 300)  # the name's histogram holds 1 000 entries
    sent = _statements(queries, monkeypatch)

    page = queries.list(TaskFilter(name_contains=marker.upper()), limit=2, exact_up_to=5)

    assert page.total_is_estimate and page.total >= 3 and len(page.items) == 2
    assert 150 <= page.total <= 600  # the planner's reading of 300 matches, not a count of 6
    assert not [s for s in sent if "count(*)" in s], sent  # no bounded count: the trigram bitmap is not read


def test_a_substring_with_a_few_more_matches_than_the_page_is_counted_exactly(
        ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: object, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from projections.queries import TaskFilter

    marker = f"few{uuid4().hex[:8]}"
    _named(ledger_app, queries, namespace, marker, 6)
    sent = _statements(queries, monkeypatch)

    page = queries.list(TaskFilter(name_contains=marker), limit=2, exact_up_to=10)
    error_page = queries.list(TaskFilter(error_contains=marker), limit=2, exact_up_to=10)

    assert (page.total, page.total_is_estimate, len(page.items)) == (6, False, 2)
    assert (error_page.total, error_page.total_is_estimate) == (0, False)
    assert [s for s in sent if "count(*)" in s]  # counted up to the bound, as any other filter
