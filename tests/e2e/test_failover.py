"""PostgreSQL failover under write load: nothing acknowledged is lost and the service reconnects by itself.

A pg_auto_failover formation on loopback (a monitor, a primary, a synchronous standby; tuned by ops/failover/),
`taskledger migrate` on the formation URI, two API processes (gunicorn, ops/gunicorn.conf.py) and one
`taskledger project` on that URI with target_session_attrs=read-write. Four writers run task life cycles
(create, start, progress ×3, complete) through taskledger.client and a probe creates a task every 0.1 s; then
the primary's machine is lost: its keeper and its PostgreSQL are SIGKILLed at once, so nothing restarts it in
place (bench/failover/ and docs/failover.md). 50-90 s here: the formation and the service take most of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bench.failover.formation import SYSTEM_USER, Formation, pg_autoctl_missing
from bench.failover.run import Outcome, formation_and_service, run_failover
from bench.failover.service import Service

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(480)]

# Tuned, the formation is writable ~6 s after the kill and the service writes again at ~7 s (docs/failover.md);
# pg_auto_failover's defaults took 60 s. A manager a little slower on a busy machine misses the pools' reconnect
# attempt at ~7 s and is used at the next one, ~15 s; the bound still fails if the tuning stops being applied.
OUTAGE_BOUND = 25.0


@pytest.fixture
def formation() -> Iterator[tuple[Formation, Service]]:
    missing = pg_autoctl_missing()
    if missing:  # CI must run it: scripts/test installs pg_autoctl
        pytest.fail(f"the failover test needs pg_autoctl: {missing}", pytrace=False)
    with formation_and_service() as running:  # kills every process and removes the data dirs, also on failure
        yield running


def _replication(formation: Formation) -> tuple[str, str, list[str]]:
    """The primary's synchronous_standby_names, synchronous_commit and its standbys' sync_state."""
    primary = formation.primary()
    with psycopg.connect(host="127.0.0.1", port=primary.port, user=SYSTEM_USER, dbname="postgres",
                         autocommit=True) as conn:
        names = conn.execute("SHOW synchronous_standby_names").fetchone()
        commit = conn.execute("SHOW synchronous_commit").fetchone()
        states = [str(r[0]) for r in conn.execute("SELECT sync_state FROM pg_stat_replication").fetchall()]
    return str(names[0] if names else ""), str(commit[0] if commit else ""), states


def test_a_lost_primary_is_replaced_and_every_acknowledged_write_survives(
        formation: tuple[Formation, Service]) -> None:
    cluster, service = formation
    names, commit, states = _replication(cluster)
    assert names and commit == "on" and states and set(states) <= {"sync", "quorum"}, (names, commit, states)
    standby = cluster.node_in({"secondary"})
    assert standby is not None, cluster.show_state_text()

    outcome: Outcome = run_failover(cluster, service)
    print(f"\nfailover: {outcome.summary()}\n{outcome.states}")

    # the manager promoted the standby, and the lost primary is no longer primary
    assert outcome.promoted == standby.name, outcome.states
    rows = {r["name"]: r for r in cluster.state()}
    assert rows[standby.name]["reported"] in ("wait_primary", "primary"), outcome.states
    lost = next(name for name in rows if name != standby.name)
    assert rows[lost]["assigned"] not in ("primary", "wait_primary", "single"), outcome.events

    # the service reconnected by itself: the same processes (gunicorn masters and workers) answered after it
    assert outcome.pids_after == outcome.pids_before, (outcome.pids_before, outcome.pids_after)
    after = outcome.acknowledged_after_kill()
    assert set(after) == set(service.bases) and min(after.values()) >= 10, after
    assert outcome.outage < OUTAGE_BOUND, f"{outcome.summary()}\n{outcome.events}"

    # while the database was away the service answered 503 (with Retry-After), never another 5xx
    assert not [a for a in outcome.probe_answers if a.startswith("5") and a != "503"], outcome.probe_answers
    assert not [e for e in outcome.errors if "503" not in e and e != "ConnectionFailedError"], outcome.errors

    # every acknowledged write is in the event store, with the event it answered for, and in the view
    assert outcome.acknowledged > 200, outcome.summary()
    assert not outcome.missing, f"{len(outcome.missing)} acknowledged writes are gone, e.g. {outcome.missing[:3]}"
    assert outcome.projections_caught_up, "the projections did not reach the event store's head after failover"
    assert not outcome.view_behind, f"the view lags acknowledged writes of {outcome.view_behind[:3]}"
    assert outcome.verify_code == 0, outcome.verify_output
