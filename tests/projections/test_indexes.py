"""Every list filter and sort the API and the facades use is served by an index (docs/indexes.md).

The plans are read from a database of its own holding 60 000 generated rows (the planner's choices
depend on the table's size and statistics; these rows test the indexes and the planner, not the
projection, which the other tests do). Each filter selects well under 1 % of the rows, as a search
does; the bench (bench/search.py) measures the same queries at 10k–1M tasks made through the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from psycopg import sql

from projections.queries import SORTABLE, PostgresTaskView, TaskFilter, _page_query, _plan_of

MOMENT = datetime(2026, 1, 1, tzinfo=timezone.utc)  # after all but the rows updated in 2026

# A filter, and the index that must serve it.
FILTERS: list[tuple[str, TaskFilter, tuple[str, ...]]] = [
    ("state", TaskFilter(states=("QUEUED",)), ("tasks_state_created", "tasks_state_order", "tasks_state_name")),
    ("namespace", TaskFilter(namespace="ns-a"), ("tasks_namespace",)),
    ("namespace_prefix", TaskFilter(namespace_prefix="kylin:"), ("tasks_namespace",)),
    ("facade", TaskFilter(facade="kylin"), ("tasks_facade",)),
    ("type", TaskFilter(type="etl"), ("tasks_type",)),
    ("name_prefix", TaskFilter(name_prefix="etl-"), ("tasks_name", "tasks_name_trgm")),
    ("worker", TaskFilter(worker="w-1"), ("tasks_worker",)),
    ("submitter", TaskFilter(submitter="alice"), ("tasks_submitter",)),
    ("label value", TaskFilter(labels=(("team", "a"),)), ("tasks_labels",)),
    ("label key", TaskFilter(label_keys=("team",)), ("tasks_labels",)),
    ("name_contains", TaskFilter(name_contains="nightly"), ("tasks_name_trgm",)),
    ("error_contains", TaskFilter(error_contains="timeout"), ("tasks_error_trgm",)),
    ("kylin cube contains", TaskFilter(kylin_cube_contains="sales"), ("tasks_cube_trgm",)),
    ("created_after", TaskFilter(created_after=datetime(2025, 2, 11, 15, tzinfo=timezone.utc)), ("tasks_created",)),
    ("updated_after", TaskFilter(updated_after=MOMENT), ("tasks_updated",)),
]
SORT_INDEXES = {"created_at": "tasks_created", "updated_at": "tasks_updated", "name": "tasks_name_order",
                "state": "tasks_state_order", "kylin_cube": "tasks_cube"}


ROWS = 60_000
# Every column a filter reads: one row in 1 000 (or so) matches each of FILTERS.
FILL = f"""
INSERT INTO tasks (id, namespace, facade, name, type, state, submitter, worker, created_at, updated_at, version,
                   position, doc)
SELECT gen_random_uuid(),
       CASE WHEN i % 1000 = 0 THEN 'ns-a' WHEN i % 1000 = 1 THEN 'kylin:p' ELSE 'ns-' || (i % 97) END,
       CASE WHEN i % 1000 = 2 THEN 'kylin' ELSE 'native' END,
       CASE WHEN i % 1000 = 3 THEN 'etl-nightly-' || i ELSE 'job-' || md5(i::text) END,
       CASE WHEN i % 1000 = 4 THEN 'etl' ELSE 'type-' || (i % 13) END,
       CASE WHEN i % 1000 = 5 THEN 'QUEUED' ELSE (ARRAY['SUCCEEDED', 'FAILED', 'CANCELLED'])[1 + i % 3] END,
       CASE WHEN i % 1000 = 6 THEN 'alice' ELSE 'user-' || (i % 31) END,
       CASE WHEN i % 1000 = 7 THEN 'w-1' WHEN i % 2 = 0 THEN 'w-' || (i % 53 + 2) END,
       TIMESTAMPTZ '2025-01-01' + i * INTERVAL '1 minute',
       CASE WHEN i % 1000 = 8 THEN TIMESTAMPTZ '2026-06-01' ELSE TIMESTAMPTZ '2025-06-01' END
           + i * INTERVAL '1 second',
       1, i,
       json_build_object(
           'labels', CASE WHEN i % 1000 = 9 THEN json_build_object('team', 'a') ELSE
                         json_build_object('group', 'g' || (i % 7)) END,
           'error', CASE WHEN i % 1000 = 10 THEN 'read timeout after 30 s' ELSE 'exit ' || md5(i::text) END,
           'input', json_build_object('cube', CASE WHEN i % 1000 = 11 THEN 'sales_cube' ELSE
                                                 'cube_' || md5(i::text) END),
           'output', repeat(md5(i::text), 25))  -- about 1 kB a row, as a real task's document
FROM generate_series(1, {ROWS}) AS i
"""


@pytest.fixture(scope="module")
def strict_view(new_database: Any) -> Iterator[PostgresTaskView]:
    import psycopg

    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL)
        conn.execute("VACUUM ANALYZE tasks")
    view = PostgresTaskView(url)
    view.open()
    yield view
    view.close()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _indexes(plan: dict[str, Any]) -> set[str]:
    return {n["Index Name"] for n in _nodes(plan) if "Index Name" in n}


def _reads_whole_table(plan: dict[str, Any]) -> bool:
    return any(n["Node Type"] == "Seq Scan" for n in _nodes(plan))


@pytest.mark.parametrize(("name", "flt", "expected"), FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_is_served_by_its_index(strict_view: PostgresTaskView, name: str, flt: TaskFilter,
                                            expected: tuple[str, ...]) -> None:
    _page, count = strict_view.plans(flt)
    assert not _reads_whole_table(count), count
    assert _indexes(count) & set(expected) or _skip_scans(count, SKIP_SCANNABLE.get(name)), (
        name, _indexes(count), count)


# A time filter is also served, from PostgreSQL 18 on, by a skip scan of an index that has the time after a
# column of few values (`tasks_facade`: facade, created_at, id): one range per facade, not the whole index.
SKIP_SCANNABLE = {"created_after": "created_at", "updated_after": "updated_at"}


def _skip_scans(plan: dict[str, Any], column: str | None) -> bool:
    return column is not None and any(
        n["Node Type"] in ("Index Scan", "Index Only Scan") and f"({column} " in n.get("Index Cond", "")
        for n in _nodes(plan))


@pytest.mark.parametrize("sort", SORTABLE)
@pytest.mark.parametrize("descending", [False, True])
def test_each_sort_walks_its_index_and_sorts_nothing(strict_view: PostgresTaskView, sort: str,
                                                     descending: bool) -> None:
    page, _count = strict_view.plans(TaskFilter(), sort=sort, descending=descending)
    assert not any(n["Node Type"] in ("Sort", "Incremental Sort") for n in _nodes(page)), page
    assert SORT_INDEXES[sort] in _indexes(page), page


@pytest.mark.parametrize("cursor", [False, True])
def test_one_state_in_name_order_reads_only_the_pages_rows(strict_view: PostgresTaskView, cursor: bool) -> None:
    flt = TaskFilter(states=("SUCCEEDED",))  # a third of the rows: a walk of the name order would filter
    after = strict_view.list(flt, sort="name", limit=5).next_cursor if cursor else None
    query, params = _page_query(flt, "name", False, after)
    plan = strict_view._all(sql.SQL("EXPLAIN (FORMAT JSON) ") + query, [*params, 6, 0])[0]
    nodes = list(_nodes(_plan_of(plan)[0]["Plan"]))
    assert [n["Index Name"] for n in nodes if "Index Name" in n] == ["tasks_state_name"], nodes
    assert not any("Filter" in n or n["Node Type"] in ("Sort", "Incremental Sort") for n in nodes), nodes


def test_the_lists_of_the_issue_read_an_index_not_the_table(strict_view: PostgresTaskView) -> None:
    for flt, sort, descending in ((TaskFilter(namespace="ns-5", states=("FAILED",)), "created_at", True),
                                  (TaskFilter(states=("QUEUED",)), "name", False),
                                  (TaskFilter(namespace_prefix="kylin:", name_contains="nightly"), "kylin_cube", True)):
        page, count = strict_view.plans(flt, sort=sort, descending=descending)
        assert not _reads_whole_table(page) and not _reads_whole_table(count), (flt, page, count)


@pytest.mark.parametrize("flt", [TaskFilter(labels=(("group", "g1"),)), TaskFilter(label_keys=("group",)),
                                 TaskFilter(name_contains="job-a"), TaskFilter(error_contains="exit 1")],
                         ids=["label value", "label key", "name", "error"])
def test_a_search_that_matches_many_tasks_walks_the_sort_index_instead_of_sorting_them_all(
        strict_view: PostgresTaskView, flt: TaskFilter) -> None:
    """One task in 7 (or 16) matches: the first page is found by walking the order, not by sorting every match."""
    page, _count = strict_view.plans(flt, sort="created_at", descending=True)
    assert not any(n["Node Type"] == "Sort" for n in _nodes(page)), page
    assert "tasks_created" in _indexes(page), page


def test_a_namespace_and_one_state_walk_their_index_in_creation_order(strict_view: PostgresTaskView) -> None:
    """`state = ANY('{FAILED}')` would hide the order of (namespace, state, created_at): one state is `=`."""
    for descending in (False, True):
        page, count = strict_view.plans(TaskFilter(namespace="ns-5", states=("FAILED",)), descending=descending)
        assert "tasks_namespace_state" in _indexes(page), page
        assert not any(n["Node Type"] == "Sort" for n in _nodes(page)), page
        assert "tasks_namespace_state" in _indexes(count), count


@pytest.mark.parametrize("text", ["job-a", "job-f"])
def test_a_substring_count_never_walks_a_btree_in_name_order(strict_view: PostgresTaskView, text: str) -> None:
    """`job-a…` names sit together in name order (at its start or its end): a count that walked (name, id)
    expecting its matches spread evenly would read everything before them. It reads the trigram index."""
    _page, count = strict_view.plans(TaskFilter(name_contains=text))
    assert not _indexes(count) & {"tasks_name_order", "tasks_name"}, count
    assert "tasks_name_trgm" in _indexes(count) or _reads_whole_table(count), count


def test_reads_run_without_jit(strict_view: PostgresTaskView) -> None:
    """Compiling a list's expressions would cost more than the list (docs/indexes.md)."""
    assert strict_view._all("SHOW jit")[0]["jit"] == "off"


def test_reads_start_their_sequential_scans_at_the_first_page(strict_view: PostgresTaskView) -> None:
    """A bounded count that joins another reader's scan where it is can read a long run of non-matching
    rows first (docs/indexes.md: concurrent label counts at 1M tasks held 120-190 ms together)."""
    assert strict_view._all("SHOW synchronize_seqscans")[0]["synchronize_seqscans"] == "off"


def test_gin_indexes_keep_a_short_pending_list_also_when_made_before_the_setting(new_database: Any) -> None:
    import psycopg

    from taskledger.migrate import migrate

    gin = ("tasks_labels", "tasks_name_trgm", "tasks_error_trgm", "tasks_cube_trgm")
    url = new_database()
    query = "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)"
    with psycopg.connect(url, autocommit=True) as conn:
        made = dict(conn.execute(query, [list(gin)]).fetchall())
        for index in gin:  # as an older version made them
            conn.execute(f"ALTER INDEX {index} RESET (gin_pending_list_limit)")
        migrate(url)
        migrated = dict(conn.execute(query, [list(gin)]).fetchall())
    assert made == migrated == {index: ["gin_pending_list_limit=256"] for index in gin}
