"""Every libpq parameter of the database URL reaches the event store's pool (issue 14.1): a multi-host URL's
`target_session_attrs=read-write` must keep a pool off a read-only standby after a failover."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ledger import commands as c
from ledger.application import TaskLedger
from taskledger.config import eventsourcing_env

WHO = c.Caller("tester", "req")


def _ledger(url: str, **params: str) -> TaskLedger:
    return TaskLedger(eventsourcing_env(make_conninfo(url, **params), pool_size=1))


def test_application_name_and_target_session_attrs_reach_the_pool(database_url: str) -> None:
    name = f"tl-conninfo-{uuid.uuid4().hex[:8]}"
    app = _ledger(database_url, application_name=name, target_session_attrs="read-write")
    try:
        app.create_task(c.CreateTask("conninfo", "one"), WHO)
        with psycopg.connect(database_url, autocommit=True) as conn:
            seen = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                (name,)).fetchone()
        assert seen is not None and seen[0] >= 1
    finally:
        app.close()


def test_a_session_attribute_the_server_cannot_meet_refuses_to_connect(database_url: str) -> None:
    # The test server is a primary: a pool told to want a standby must not connect to it (it did, before:
    # the parameter was dropped).
    env = eventsourcing_env(make_conninfo(database_url, target_session_attrs="standby"), pool_size=1)
    with pytest.raises(OperationalError):  # the recorder's first connection already fails
        TaskLedger({**env, "POSTGRES_CONNECT_TIMEOUT": "2"}).create_task(c.CreateTask("conninfo", "never"), WHO)


def test_the_five_settings_eventsourcing_names_are_not_repeated_as_extras(database_url: str) -> None:
    env = eventsourcing_env(make_conninfo(database_url, sslmode="prefer"))
    assert conninfo_to_dict(env["POSTGRES_CONNINFO_EXTRA"]) == {"sslmode": "prefer"}
    assert eventsourcing_env(database_url)["POSTGRES_CONNINFO_EXTRA"] == ""
