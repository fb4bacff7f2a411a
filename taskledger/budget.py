"""How many PostgreSQL connections each taskledger process opens: the sizes the wiring uses, and their sums.

The wiring (taskledger/wsgi.py, serve.py, roles.py, projections) takes its pool sizes from here, so the
budget docs/architecture.md states and `serve` checks at start is the one the processes keep.
`bench/connections.py` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

# A projection process, per projection: the event reader's pool and the view writer's pool (one connection
# each, one more while a restart replaces a closed one), the leader lock and the log tail.
PROJECTION_POOL = 1
PROJECTION_OVERFLOW = 1
PROJECTION_OWN = 2  # leader lock + tail
# A scheduler or watchdog: its ledger (one connection, one more in a burst), its view reads, and the
# notifier of the events it writes.
ROLE_POOL = 1
ROLE_OVERFLOW = 1
ROLE_VIEW = 2
# An API worker: the ledger's pool and the read pool (shared with the accounts) each grow to the pool size;
# the accounts open at most one connection of their own (while the read pool is exhausted or reconnecting),
# and the notifier one.
API_OWN = 2
# What the API workers' pools grow to in all, by default: the pool size is 4, less with more workers.
API_POOLS_DEFAULT_TOTAL = 16
POOL_SIZE_DEFAULT = 4
# Connections left for the operator (psql, taskledger commands, a rebuild) when `serve` checks the server.
HEADROOM = 10


def default_pool_size(workers: int) -> int:
    """TASKLEDGER_POOL_SIZE's default: 4, or 16 // workers with more than 4 workers (at least 2)."""
    return max(2, min(POOL_SIZE_DEFAULT, API_POOLS_DEFAULT_TOTAL // workers))


# An event store pool that may overflow holds one connection more than its size once two statements overlapped
# (at start already), until it has been idle for 10 minutes: its idle count.
def _ledger_idle(size: int, overflow: int) -> int:
    return size + min(1, overflow)


@dataclass(frozen=True)
class Budget:
    """Connections held when idle and at most, with how they add up."""

    idle: int
    peak: int
    formula: str

    def __add__(self, other: Budget) -> Budget:
        return Budget(self.idle + other.idle, self.peak + other.peak, f"{self.formula} + {other.formula}")


def api_worker(pool_size: int) -> Budget:
    return Budget(_ledger_idle(1, pool_size - 1) + 1, 2 * pool_size + API_OWN, f"(2 x pool {pool_size} + {API_OWN})")


def api(workers: int, pool_size: int) -> Budget:
    one = api_worker(pool_size)
    return Budget(workers * one.idle, workers * one.peak, f"{workers} workers x {one.formula}")


def api_replica(workers: int, pool_size: int) -> Budget:
    """The API workers' read pools on the replica (TASKLEDGER_READ_DATABASE_URL): one connection each when idle,
    up to the pool size; the primary's budget (`api`) stays as it is (writes, accounts and the waits of writes
    still read there, and every GET falls back to it while the replica is down)."""
    return Budget(workers, workers * pool_size, f"{workers} workers x replica pool {pool_size}")


def projections(count: int) -> Budget:
    idle = 2 * _ledger_idle(PROJECTION_POOL, PROJECTION_OVERFLOW) + PROJECTION_OWN
    peak = 2 * (PROJECTION_POOL + PROJECTION_OVERFLOW) + PROJECTION_OWN
    return Budget(count * idle, count * peak, f"{count} projections x {peak}")


def role() -> Budget:
    return Budget(_ledger_idle(ROLE_POOL, ROLE_OVERFLOW) + 1, ROLE_POOL + ROLE_OVERFLOW + ROLE_VIEW + 1, "role")


def serve_budget(workers: int, pool_size: int, projection_count: int = 2) -> Budget:
    """`taskledger serve`: the API workers, and in its own process the projections, the scheduler and the watchdog."""
    roles = role() + role()
    return api(workers, pool_size) + projections(projection_count) + Budget(
        roles.idle, roles.peak, f"scheduler and watchdog {roles.peak}")


# A `taskledger project` replica that does not lead a projection waits for its leader lock on one connection.
PROJECTION_FOLLOWER = 1


def projection_replicas(replicas: int, count: int = 2) -> Budget:
    """`replicas` processes running `count` projections: each projection's leader, and the others' waits."""
    lead = projections(count)
    waiting = (replicas - 1) * count * PROJECTION_FOLLOWER
    return Budget(lead.idle + waiting, lead.peak + waiting, f"{lead.formula} leading + {waiting} waiting")


def per_role(api_machines: int, workers: int, pool_size: int, projection_replicas_: int, schedulers: int,
             watchdogs: int, projection_count: int = 2) -> dict[str, Budget]:
    """A deployment of separate processes (docs/deployment.md): each role's connections, all its replicas."""
    def times(n: int, one: Budget, what: str) -> Budget:
        return Budget(n * one.idle, n * one.peak, f"{n} x {what}")

    one_api = api(workers, pool_size)
    return {
        "api": times(api_machines, one_api, f"({one_api.formula})"),
        "project": projection_replicas(projection_replicas_, projection_count),
        "schedule": times(schedulers, role(), str(role().peak)),
        "watchdog": times(watchdogs, role(), str(role().peak)),
    }
