"""PostgreSQL failover under write load (docs/failover.md): a pg_auto_failover formation on loopback, the
service in its production shape on the formation URI (two API processes, one projection runner), the primary's
machine "lost" (SIGKILL of its keeper and its PostgreSQL) and the outage timed. tests/e2e/test_failover.py runs
one failover and checks every acknowledged write; this runs several and reports the median:

    .venv/bin/python -m bench.failover --runs 5          # tuned (ops/failover/)
    .venv/bin/python -m bench.failover --runs 1 --untuned  # pg_auto_failover's default timeouts

Needs pg_autoctl (Debian: postgresql-15-auto-failover, pg-auto-failover-cli); ports 18401-18403 (PostgreSQL)
and 18410-18411 (API) must be free.
"""
