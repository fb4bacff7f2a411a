"""DDL of the read tables. Created by `taskledger migrate`, never on import."""

from __future__ import annotations

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
        doc jsonb NOT NULL
    )
    """,
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
