"""DDL of the read tables. Created by `taskledger migrate`, never on import."""

from __future__ import annotations

# Read tables are derived data: a commit lost in a crash is applied again from the durable log (the
# rows and their tracking position commit together either way), so projections do not wait for fsync.
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO off"

# Tasks whose schedule records occurrences (ledger.recurrence.ACTIVE); queries repeat it to use the index.
ACTIVE_SCHEDULE = "NOT dropped AND state IN ('QUEUED', 'RUNNING') AND json_typeof(doc -> 'schedule') = 'object'"
# Recurring tasks whose schedule is stopped (PAUSED) or ending (CANCELLING): the dashboard's schedules page
# lists them beside the active ones. Its own index, so that the active one (the scheduler's) keeps its
# definition; the state test comes first, so other tasks' writes never parse the document for it.
STOPPED_SCHEDULE = "NOT dropped AND state IN ('PAUSED', 'CANCELLING') AND json_typeof(doc -> 'schedule') = 'object'"
# A run (lease) the watchdog ended: the message projections.runs writes for a `LeaseExpired`. Queries
# repeat it to use the index (with each % doubled where the statement has parameters).
LEASE_EXPIRED = "message LIKE 'lease % expired: no heartbeat by %'"

# What searches read, kept beside the document as generated columns: PostgreSQL computes them from `doc`
# on every write (the projection writes `doc` only), and a search reads them without parsing the document
# (a `json` document is parsed whole for every `doc -> key`), with statistics of their own for the planner.
SEARCH_COLUMNS = {
    # the labels as jsonb: `@>` for key:value, `?&` for keys present, GIN-indexed
    "labels": "jsonb GENERATED ALWAYS AS ((doc -> 'labels')::jsonb) STORED",
    "error": "text GENERATED ALWAYS AS (doc ->> 'error') STORED",
    # a Kylin job's cube: its input's `cube`, else its `cube` label, else empty (api.facades.kylin.jobs.cube_of)
    "kylin_cube": "text GENERATED ALWAYS AS (coalesce(CASE WHEN json_typeof(doc -> 'input' -> 'cube') = 'string' "
                  "THEN doc -> 'input' ->> 'cube' END, doc -> 'labels' ->> 'cube', '')) STORED",
}
SEARCH_STATISTICS = 1000
# A GIN index first collects new entries in an unsorted pending list that every search reads whole, up to
# gin_pending_list_limit (4 MB by default) before the writer merges it into the index. Every write of a task
# row adds to it (updated_at changes, so no update is HOT): a full list made a substring search 5.9-6.8 ms
# instead of 1.9-3.4 at 1M tasks, while the writes cost about the same (docs/indexes.md). Hence 256 kB.
GIN_PENDING_KB = 256
# Substring search (`ILIKE '%x%'`) by trigrams. pg_trgm ships with PostgreSQL and is a trusted extension (the
# database owner may create it); where it cannot be created the searches still answer, unindexed, and the
# server logs a warning. The operator class is named with the extension's schema: rebuild builds its tables in a scratch
# schema with that schema alone on the search_path.
TRIGRAM_INDEXES = f"""
DO $$
DECLARE ext_schema text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pg_trgm cannot be created (%): substring searches run unindexed', SQLERRM;
    END;
    SELECT n.nspname INTO ext_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS tasks_name_trgm ON tasks USING gin (name %I.gin_trgm_ops) '
                       'WITH (gin_pending_list_limit = {GIN_PENDING_KB}) WHERE NOT dropped', ext_schema);
        EXECUTE format('CREATE INDEX IF NOT EXISTS tasks_error_trgm ON tasks USING gin (error %I.gin_trgm_ops) '
                       'WITH (gin_pending_list_limit = {GIN_PENDING_KB}) WHERE NOT dropped', ext_schema);
        EXECUTE format('CREATE INDEX IF NOT EXISTS tasks_cube_trgm ON tasks USING gin (kylin_cube %I.gin_trgm_ops) '
                       'WITH (gin_pending_list_limit = {GIN_PENDING_KB}) WHERE NOT dropped', ext_schema);
    END IF;
END $$
"""

# The task document is `json`, not `jsonb`: jsonb keeps numbers as `numeric`, so a float written as
# -2.947458573671565e+127 would read back as a 128-digit integer, and -0.0 as 0. Tables made with a
# jsonb document are converted (their numbers were already normalised: `taskledger rebuild task_view
# --accept-differences` writes them again from the log).
DOC_AS_JSON = """
DO $$
BEGIN
    IF (SELECT data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'tasks' AND column_name = 'doc') = 'jsonb' THEN
        DROP INDEX IF EXISTS tasks_scheduled;
        ALTER TABLE tasks ALTER COLUMN doc TYPE json USING doc::json;
    END IF;
END $$
"""

TASKS_DDL = [
    """
    CREATE TABLE IF NOT EXISTS tasks (
        id uuid PRIMARY KEY,
        namespace text NOT NULL,
        facade text NOT NULL,
        name text NOT NULL,
        type text NOT NULL,
        state text NOT NULL,
        submitter text NOT NULL,
        worker text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL,
        dropped boolean NOT NULL DEFAULT false,
        position bigint NOT NULL,
        external_id text,
        lease_deadline timestamptz,
        claimable boolean NOT NULL DEFAULT true,
        doc json NOT NULL
    )
    """,
    # Tables made before recurring tasks and the watchdog: the columns arrive empty and fill as tasks change.
    "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS lease_deadline timestamptz",
    "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS claimable boolean NOT NULL DEFAULT true",
    DOC_AS_JSON,
    # (a table made before them is rewritten once, under an exclusive lock: seconds per million tasks)
    *(f"ALTER TABLE tasks ADD COLUMN IF NOT EXISTS {name} {kind}" for name, kind in SEARCH_COLUMNS.items()),
    "CREATE UNIQUE INDEX IF NOT EXISTS tasks_external ON tasks (namespace, external_id) WHERE external_id IS NOT NULL",
    """
    CREATE TABLE IF NOT EXISTS task_output_pages (
        task_id uuid NOT NULL,
        buffer text NOT NULL,
        sequence integer NOT NULL,
        data text NOT NULL,
        positions bigint NOT NULL,
        last boolean NOT NULL,
        position bigint NOT NULL,
        PRIMARY KEY (task_id, buffer, sequence)
    )
    """,
    # Every list filter and sort has an index (docs/indexes.md): a list query always says NOT dropped, so the
    # new ones leave dropped tasks out. A sort walks its index and stops at the page; a selective filter's
    # index finds the few rows and sorts them; the planner chooses between the two.
    "CREATE INDEX IF NOT EXISTS tasks_state_created ON tasks (state, created_at, id) WHERE NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_state_order ON tasks (state, id) WHERE NOT dropped",
    # One state in name order (`state=QUEUED&sort=name`, the slowest list): the page's rows and no
    # others, where walking tasks_name_order reads 20 rows per QUEUED one from all over the table (87 ms
    # for a page read cold at 1M tasks, 1 ms by this index).
    "CREATE INDEX IF NOT EXISTS tasks_state_name ON tasks (state, name, id) WHERE NOT dropped",
    # A namespace's tasks in some states, newest first (the operators' most common list), and their count
    # from the index alone.
    "CREATE INDEX IF NOT EXISTS tasks_namespace_state ON tasks (namespace, state, created_at, id) WHERE NOT dropped",
    # text_pattern_ops serves `namespace = x` and `namespace LIKE 'x%'` alike (the default collation is not C).
    "DROP INDEX IF EXISTS tasks_namespace_created",
    "CREATE INDEX IF NOT EXISTS tasks_namespace ON tasks (namespace text_pattern_ops, created_at, id) WHERE NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at, id)",
    "CREATE INDEX IF NOT EXISTS tasks_updated ON tasks (updated_at, id)",
    "CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name text_pattern_ops, id)",  # name_prefix
    "CREATE INDEX IF NOT EXISTS tasks_name_order ON tasks (name, id) WHERE NOT dropped",  # sort=name
    "CREATE INDEX IF NOT EXISTS tasks_facade ON tasks (facade, created_at, id) WHERE NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_type ON tasks (type, created_at, id) WHERE NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_submitter ON tasks (submitter, created_at, id) WHERE NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, created_at, id) WHERE worker IS NOT NULL AND NOT dropped",
    f"CREATE INDEX IF NOT EXISTS tasks_labels ON tasks USING gin (labels) WITH (gin_pending_list_limit = "
    f"{GIN_PENDING_KB}) WHERE NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_cube ON tasks (kylin_cube, id) WHERE NOT dropped",
    TRIGRAM_INDEXES,
    # Indexes made before the setting: changing it takes a lock that lets reads and writes go on.
    *(f"ALTER INDEX IF EXISTS {index} SET (gin_pending_list_limit = {GIN_PENDING_KB})"
      for index in ("tasks_labels", "tasks_name_trgm", "tasks_error_trgm", "tasks_cube_trgm")),
    # A substring list's total may be the planner's estimate (projections.queries.PostgresTaskView._total),
    # which it draws for `ILIKE '%x%'` from the column's histogram: 1 000 entries judge a share to 0.1 %
    # where the default 100 judge it to 1 % (ANALYZE then samples 300 000 rows instead of 30 000).
    *(f"ALTER TABLE tasks ALTER COLUMN {column} SET STATISTICS {SEARCH_STATISTICS}"
      for column in ("name", "error", "kylin_cube")),
    "CREATE INDEX IF NOT EXISTS tasks_claimable ON tasks (created_at, id) WHERE claimable AND NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_lease_deadline ON tasks (lease_deadline) "
    "WHERE lease_deadline IS NOT NULL AND NOT dropped",
    f"CREATE INDEX IF NOT EXISTS tasks_scheduled ON tasks (id) WHERE {ACTIVE_SCHEDULE}",
    f"CREATE INDEX IF NOT EXISTS tasks_schedule_stopped ON tasks (id) WHERE {STOPPED_SCHEDULE}",
]

RUNS_DDL = [
    """
    CREATE TABLE IF NOT EXISTS task_runs (
        task_id uuid NOT NULL,
        attempt integer NOT NULL,
        worker text NOT NULL,
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        outcome text NOT NULL,
        message text,
        duration_ms bigint,
        position bigint NOT NULL,
        PRIMARY KEY (task_id, attempt)
    )
    """,
    # The newest lease expiries (the dashboard's operations page): few rows, read newest first.
    f"CREATE INDEX IF NOT EXISTS task_runs_lease_expired ON task_runs (ended_at, task_id, attempt) "
    f"WHERE {LEASE_EXPIRED}",
]

OCCURRENCES_DDL = [
    """
    CREATE TABLE IF NOT EXISTS task_occurrences (
        task_id uuid NOT NULL,
        run integer NOT NULL,
        time timestamptz NOT NULL,
        status text NOT NULL,
        reason text,
        message text,
        started_at timestamptz,
        ended_at timestamptz,
        took_ms bigint,
        position bigint NOT NULL,
        PRIMARY KEY (task_id, run)
    )
    """,
    "CREATE INDEX IF NOT EXISTS task_occurrences_open ON task_occurrences (task_id, run) "
    "WHERE status IN ('pending', 'running')",
    # /metrics counts the occurrences that did not run at each scrape (docs/observability.md): by this index
    # alone, never by reading the whole history.
    "CREATE INDEX IF NOT EXISTS task_occurrences_not_run ON task_occurrences (status) "
    "WHERE status IN ('skipped', 'missed')",
]

# What `taskledger archive` removed from the read tables (docs/retention.md). Not a projection's table: no
# projection writes it and rebuild leaves it in place; verify and rebuild read it to leave archived events out.
# Created by the archive tool itself, idempotently, the first time it runs.
ARCHIVED_DDL = [
    """
    CREATE TABLE IF NOT EXISTS archived_tasks (
        task_id uuid PRIMARY KEY,
        namespace text NOT NULL,
        archive text NOT NULL,
        archive_sha256 text NOT NULL,
        archived_at timestamptz NOT NULL DEFAULT now(),
        events integer NOT NULL,
        version integer NOT NULL,
        last_position bigint NOT NULL,
        pruned boolean NOT NULL DEFAULT false
    )
    """,
    "CREATE INDEX IF NOT EXISTS archived_tasks_unpruned ON archived_tasks (archive) WHERE NOT pruned",
]
