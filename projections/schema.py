"""DDL of the read tables. Created by `taskledger migrate`, never on import."""

from __future__ import annotations

# Read tables are derived data: a commit lost in a crash is applied again from the durable log (the
# rows and their tracking position commit together either way), so projections do not wait for fsync.
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO off"

# Tasks whose schedule records occurrences (ledger.recurrence.ACTIVE); queries repeat it to use the index.
ACTIVE_SCHEDULE = "NOT dropped AND state IN ('QUEUED', 'RUNNING') AND json_typeof(doc -> 'schedule') = 'object'"

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
    "CREATE INDEX IF NOT EXISTS tasks_state_created ON tasks (state, created_at, id) WHERE NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_namespace_created ON tasks (namespace, created_at, id)",
    "CREATE INDEX IF NOT EXISTS tasks_created ON tasks (created_at, id)",
    "CREATE INDEX IF NOT EXISTS tasks_updated ON tasks (updated_at, id)",
    "CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name text_pattern_ops, id)",
    "CREATE INDEX IF NOT EXISTS tasks_claimable ON tasks (created_at, id) WHERE claimable AND NOT dropped",
    "CREATE INDEX IF NOT EXISTS tasks_lease_deadline ON tasks (lease_deadline) "
    "WHERE lease_deadline IS NOT NULL AND NOT dropped",
    f"CREATE INDEX IF NOT EXISTS tasks_scheduled ON tasks (id) WHERE {ACTIVE_SCHEDULE}",
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
]
